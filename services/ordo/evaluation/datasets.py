"""Reading evaluation folders: ``captions.jsonl`` (``file``, ``captions``, optional ``split``) or
``labels.jsonl`` (``file``, ``label``), with paths relative to the folder.

Each image is keyed by its asset id (SHA-256 of its bytes), which is how Ordo names it after ingestion,
so results from the service map back to records without trusting file names. Byte-identical files are
one asset: later copies are dropped (and counted) so a query never has two equally right answers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ordo.errors import InvalidInput, Reason
from ordo.ids import asset_id_for


@dataclass(frozen=True)
class CaptionedImage:
    path: Path
    asset_id: str
    captions: tuple[str, ...]


@dataclass(frozen=True)
class LabelledImage:
    path: Path
    asset_id: str
    label: str


@dataclass(frozen=True)
class Loaded:
    """What a reader returns: the usable items, and how many records were dropped and why."""

    items: list[Any]
    duplicates: int
    missing: int


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise InvalidInput(f"{path} does not exist: the dataset folder needs it", reason=Reason.DATASET_INDEX_MISSING)
    records = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{path}:{number} is not JSON: {exc}", reason=Reason.DATASET_INDEX_BAD) from exc
    return records


def _load(
    dataset: Path,
    index_file: str,
    split: str | None,
    limit: int | None,
    build: Callable[[Path, str, dict[str, Any]], Any],
) -> Loaded:
    dataset = dataset.expanduser()
    records = _read_jsonl(dataset / index_file)
    if split:
        splits = {r.get("split") for r in records}
        records = [r for r in records if r.get("split") == split]
        if not records:
            known = ", ".join(sorted(str(s) for s in splits if s)) or "none"
            raise InvalidInput(
                f"no records with split {split!r} in {dataset} (splits: {known})", reason=Reason.NO_SPLIT
            )
    items, seen, duplicates, missing = [], set(), 0, 0
    for number, record in enumerate(records, start=1):
        if limit is not None and len(items) >= limit:
            break
        if "file" not in record:
            raise InvalidInput(f"{dataset / index_file} record {number} has no 'file'", reason=Reason.DATASET_INDEX_BAD)
        path = dataset / record["file"]
        try:
            asset_id = asset_id_for(path.read_bytes())
        except OSError:
            missing += 1
            continue
        if asset_id in seen:
            duplicates += 1
            continue
        seen.add(asset_id)
        items.append(build(path, asset_id, record))
    if not items:
        raise InvalidInput(f"no readable images listed in {dataset / index_file}", reason=Reason.EMPTY_DATASET)
    return Loaded(items, duplicates, missing)


def load_captions(dataset: Path, *, split: str | None = None, limit: int | None = None) -> Loaded:
    """Captioned images of ``dataset/captions.jsonl`` (optionally one split, the first ``limit``)."""

    def build(path: Path, asset_id: str, record: dict[str, Any]) -> CaptionedImage:
        captions = tuple(c.strip() for c in record.get("captions", []) if isinstance(c, str) and c.strip())
        if not captions:
            raise InvalidInput(f"{record['file']} has no captions", reason=Reason.DATASET_INDEX_BAD)
        return CaptionedImage(path, asset_id, captions)

    return _load(dataset, "captions.jsonl", split, limit, build)


def load_labels(dataset: Path, *, split: str | None = None, limit: int | None = None) -> Loaded:
    """Labelled images of ``dataset/labels.jsonl``. With ``limit``, the first images in file order."""

    def build(path: Path, asset_id: str, record: dict[str, Any]) -> LabelledImage:
        label = str(record.get("label", "")).strip()
        if not label:
            raise InvalidInput(f"{record['file']} has no label", reason=Reason.DATASET_INDEX_BAD)
        return LabelledImage(path, asset_id, label)

    return _load(dataset, "labels.jsonl", split, limit, build)
