"""Frozen-tower features of fine-tuning pairs, computed once and cached on disk (``~/.cache/ordo/finetune``).

Why cached: the towers stay frozen, so their features never change for a given image or caption; training the
heads on cached features takes seconds to a few minutes on a CPU where re-running the towers would take hours.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ordo.embedding import ordo_lite
from ordo.training.pairs import Pair
from ordo.training.tower_tail import check_unfreeze, tower_blocks, tower_part
from ordo.training.train_heads import FEATURES_VERSION

DEFAULT_CACHE = Path.home() / ".cache" / "ordo" / "finetune"
_IMAGE_BATCH = 8
CACHE_CHUNK = 64  # images per cache file


class FeatureCache:
    """Tower features on disk: images by (file, size, mtime), texts by content; the towers load only on a miss."""

    def __init__(self, cache_dir: Path = DEFAULT_CACHE) -> None:
        self.cache_dir = cache_dir
        self._image_tower: torch.nn.Module | None = None
        self._text_tower: Any = None

    def _chunked(self, kind: str, keys: Sequence[str], compute: Callable[[slice], np.ndarray]) -> np.ndarray:
        """Cache in chunks of :data:`CACHE_CHUNK` items, so an interrupted run keeps what it computed."""
        parts = []
        for start in range(0, len(keys), CACHE_CHUNK):
            part = slice(start, min(start + CACHE_CHUNK, len(keys)))
            parts.append(self._cached(self._path(kind, keys[part]), lambda part=part: compute(part)))
        return np.concatenate(parts, axis=0)

    def _path(self, kind: str, keys: Sequence[str]) -> Path:
        digest = hashlib.sha256(FEATURES_VERSION.encode())
        for key in keys:
            digest.update(key.encode() + b"\0")
        return self.cache_dir / f"{kind}-{len(keys)}-{digest.hexdigest()[:16]}.npy"

    def _cached(self, path: Path, compute: Callable[[], np.ndarray]) -> np.ndarray:
        if path.is_file():
            return np.load(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        array = compute()
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, array)
        tmp.replace(path)
        return array

    def images(self, paths: Sequence[Path], on_batch: Callable[[int], None] | None = None) -> np.ndarray:
        keys = []
        for path in paths:
            stat = path.stat()
            keys.append(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}")

        def compute(part: slice) -> np.ndarray:
            if self._image_tower is None:
                self._image_tower = ordo_lite.load_image_tower()
            chunk = paths[part]
            parts = []
            for start in range(0, len(chunk), _IMAGE_BATCH):
                batch = [Image.open(p).convert("RGB") for p in chunk[start : start + _IMAGE_BATCH]]
                parts.append(ordo_lite.image_features(self._image_tower, batch))
                if on_batch:
                    on_batch(len(batch))
            return np.concatenate(parts, axis=0)

        return self._chunked("image", keys, compute)

    def activations(
        self, paths: Sequence[Path], unfreeze: int, on_batch: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """The image tower's activations *before* its last ``unfreeze`` blocks, float16 (n, 208, 9, 9): what an
        unfrozen tail trains on, so the frozen front of the tower still runs once per image, not once per step."""
        check_unfreeze(unfreeze)
        keys = []
        for path in paths:
            stat = path.stat()
            keys.append(f"act{unfreeze}|{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}")

        def compute(part: slice) -> np.ndarray:
            if self._image_tower is None:
                self._image_tower = ordo_lite.load_image_tower()
            tower = self._image_tower
            blocks = tower_blocks(tower)
            stem = [tower_part(tower, name) for name in ("_conv_stem", "_bn0", "_swish")]
            front = len(blocks) - unfreeze
            chunk = paths[part]
            parts = []
            for start in range(0, len(chunk), _IMAGE_BATCH):
                batch = [Image.open(p).convert("RGB") for p in chunk[start : start + _IMAGE_BATCH]]
                x = torch.from_numpy(np.stack([ordo_lite.preprocess_image(image) for image in batch]))
                with torch.inference_mode():
                    for layer in stem:  # the tower's stem: swish(bn0(conv_stem(x)))
                        x = layer(x)
                    for block in blocks[:front]:
                        x = block(x)
                parts.append(x.numpy().astype(np.float16))
                if on_batch:
                    on_batch(len(batch))
            return np.concatenate(parts, axis=0)

        return self._chunked("act", keys, compute)

    def texts(self, texts: Sequence[str]) -> np.ndarray:
        def compute() -> np.ndarray:
            if self._text_tower is None:
                self._text_tower = ordo_lite.load_text_tower()
            return ordo_lite.text_features(self._text_tower, list(texts), batch_size=128)

        return self._cached(self._path("text", list(texts)), compute)


@dataclass
class Encoded:
    """A set of pairs as tower features: image (n, 1280); captions deduplicated: text (m, 384) and, per image,
    the indices of its captions; ``group`` (n,) integer group ids."""

    image: np.ndarray
    text: np.ndarray
    captions: list[str]
    caption_ids: list[list[int]]
    group: np.ndarray
    activations: np.ndarray | None = None  # with --unfreeze-last: the input of the trainable tower tail


def encode(
    pairs: Sequence[Pair],
    cache: FeatureCache,
    on_batch: Callable[[int], None] | None = None,
    unfreeze: int = 0,
) -> Encoded:
    paths = [p.path for p in pairs]
    image = cache.images(paths, on_batch)
    captions = sorted({c for p in pairs for c in p.captions})
    index = {c: i for i, c in enumerate(captions)}
    groups = {g: i for i, g in enumerate(sorted({p.group for p in pairs}))}
    return Encoded(
        image=image,
        text=cache.texts(captions),
        captions=captions,
        caption_ids=[[index[c] for c in p.captions] for p in pairs],
        group=np.array([groups[p.group] for p in pairs]),
        activations=cache.activations(paths, unfreeze, on_batch) if unfreeze else None,
    )
