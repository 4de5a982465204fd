"""Model name → embedder: the families Ordo registers, plus a process-wide embedder cache.

``create_embedder("openai/clip-vit-base-patch32")`` (or a local directory) gives an :class:`HFDualEncoder`.
Names a registered family claims (see :mod:`ordo.embedding.registry`) go to that family instead: today
``random-clip:<preset>`` (:mod:`ordo.embedding.random_clip`, a randomly initialised CLIP for benchmarks and
plumbing demos), ``ordo-lite`` (the bundled offline model) and directories written by ``ordo finetune``. This
module registers them, in one place.

``get_embedder`` returns one shared, loaded instance per (model, options), so the search service and an
in-process worker hold one copy of the weights, not two.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import Any

from ordo.embedding import ordo_lite
from ordo.embedding.base import Embedder
from ordo.embedding.hf_dual_encoder import HFDualEncoder
from ordo.embedding.random_clip import (
    RANDOM_CLIP_PREFIX,
    RANDOM_CLIP_SEED,
    RandomClipEmbedder,
    clip_image_processor,
    random_clip_config,
    random_clip_presets,
)
from ordo.embedding.registry import EmbedderConstructor, register_family, registered_families, resolve

__all__ = [
    "RANDOM_CLIP_PREFIX",
    "RANDOM_CLIP_SEED",
    "EmbedderConstructor",
    "RandomClipEmbedder",
    "clear_embedder_cache",
    "clip_image_processor",
    "create_embedder",
    "get_embedder",
    "random_clip_config",
    "random_clip_presets",
    "register_family",
    "registered_families",
]

register_family(RANDOM_CLIP_PREFIX, RandomClipEmbedder)
ordo_lite.register()


def create_embedder(
    model: str,
    *,
    device: str = "auto",
    batch_size: int = 16,
    cache_dir: str | None = None,
    **options: Any,
) -> Embedder:
    """Build (but do not load) the embedder for ``model``.

    ``options`` go to the family's constructor unchanged (for :class:`HFDualEncoder`: ``half_on_gpu``,
    ``local_files_only``, ``torch_threads``, ``model_id``).
    """
    name = model.strip()
    constructor = resolve(name) or HFDualEncoder
    return constructor(name, device=device, batch_size=batch_size, cache_dir=cache_dir, **options)


# ------------------------------------------------------------------ cache

_CACHE: dict[tuple[str, tuple[tuple[str, Hashable], ...]], Embedder] = {}
_CACHE_LOCK = threading.Lock()


def get_embedder(model: str, *, load: bool = True, **options: Any) -> Embedder:
    """The shared embedder for ``(model, options)``, created on first use and loaded unless ``load=False``.

    Creation happens under a global lock (it is cheap); loading happens outside it, under the instance's own
    lock, so loading one model never blocks callers that want another, and concurrent callers of the same
    model wait for a single load. Options are part of the key: a different ``batch_size`` or ``device`` is a
    different instance (and a second copy of the weights), so pass the same options from every caller.
    """
    key = (model.strip(), tuple(sorted(options.items())))
    with _CACHE_LOCK:
        embedder = _CACHE.get(key)
        if embedder is None:
            embedder = create_embedder(model, **options)
            _CACHE[key] = embedder
    if load:
        embedder.load()
    return embedder


def clear_embedder_cache() -> None:
    """Forget all cached embedders (tests; a model switch). Instances already handed out keep working."""
    with _CACHE_LOCK:
        _CACHE.clear()
