"""Fine-tuning data: image-caption pairs from a target or background folder, and the held-out split.

Why captions for labels: the contrastive loss pairs images with text, so a ``labels.jsonl`` folder becomes
captions through a template ("a photo of {name}"). Part of each label's images is held out so "after" is
measured on unseen photos.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ordo.errors import InvalidInput, Reason

DEFAULT_TEMPLATE = "a photo of {name}"


@dataclass(frozen=True)
class Pair:
    """One training/evaluation image with its captions and its group (label; the file for captioned data)."""

    path: Path
    captions: tuple[str, ...]
    group: str


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise InvalidInput(f"{path} does not exist", reason=Reason.DATASET_INDEX_MISSING)
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_target(dataset: Path, template: str = DEFAULT_TEMPLATE) -> list[Pair]:
    """A target folder: ``captions.jsonl`` as is, or ``labels.jsonl`` with each label put into ``template``."""
    if "{name}" not in template:
        raise InvalidInput(f"caption template {template!r} needs a {{name}} placeholder", reason=Reason.BAD_TEMPLATE)
    if (dataset / "captions.jsonl").is_file():
        return [
            Pair(dataset / r["file"], tuple(r["captions"]), r["file"])
            for r in _jsonl(dataset / "captions.jsonl")
            if r.get("captions")
        ]
    records = _jsonl(dataset / "labels.jsonl")
    return [Pair(dataset / r["file"], (template.format(name=r["label"]),), r["label"]) for r in records]


def read_background(dataset: Path, split: str | None, limit: int | None) -> list[Pair]:
    """A ``captions.jsonl`` folder (optionally one split, the first ``limit`` images)."""
    records = [r for r in _jsonl(dataset / "captions.jsonl") if split is None or r.get("split") == split]
    if not records:
        raise InvalidInput(f"no background images in {dataset} (split {split!r})", reason=Reason.EMPTY_DATASET)
    records = records[:limit] if limit else records
    return [Pair(dataset / r["file"], tuple(r["captions"]), r["file"]) for r in records]


def split_holdout(pairs: Sequence[Pair], fraction: float) -> tuple[list[Pair], list[Pair]]:
    """``(train, held out)``: within each group (sorted by file), every k-th image is held out, so each label
    keeps training images and gets evaluation images. Groups of one image stay in training."""
    if not 0.0 <= fraction < 1.0:
        raise InvalidInput("the held-out fraction must be in [0, 1)", reason=Reason.BAD_HOLDOUT)
    groups: dict[str, list[Pair]] = {}
    for pair in pairs:
        groups.setdefault(pair.group, []).append(pair)
    train, held = [], []
    for members in groups.values():
        members = sorted(members, key=lambda p: str(p.path))
        count = math.floor(len(members) * fraction) if len(members) > 1 else 0
        step = len(members) / count if count else 0
        chosen = {int(i * step + step / 2) for i in range(count)} if count else set()
        for i, pair in enumerate(members):
            (held if i in chosen else train).append(pair)
    return train, held
