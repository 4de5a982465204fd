"""Model name → embedder constructor: where model families plug in.

A family registers either a name prefix (``random-clip:``, ``ordo-lite``) or a directory detector (a folder
written by ``ordo finetune``), with a constructor; :func:`resolve` picks the constructor for a name, or
``None`` for names no family claims (:mod:`ordo.embedding.factory` sends those to ``HFDualEncoder``).

This module imports no family, so a family can register itself without importing the factory (that import
was a cycle); :mod:`ordo.embedding.factory` does the registrations of Ordo's own families in one place.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from ordo.embedding.base import Embedder

EmbedderConstructor = Callable[..., Embedder]
"""``constructor(model_name, *, device, batch_size, cache_dir, **options) -> Embedder``; must not load."""

ModelDirDetector = Callable[[str], bool]
"""``detector(model_name) -> bool``: True when the name is a directory this family should load."""

_FAMILIES: dict[str, EmbedderConstructor] = {}
_MODEL_DIRS: list[tuple[ModelDirDetector, EmbedderConstructor]] = []
_LOCK = threading.Lock()


def register_family(prefix: str, constructor: EmbedderConstructor) -> None:
    """Route model names starting with ``prefix`` (e.g. ``"random-clip:"``) to ``constructor``.

    The longest matching prefix wins; names matching none go to the factory's default family.
    """
    if not prefix:
        raise ValueError("a family prefix must not be empty (unmatched names already go to HFDualEncoder)")
    with _LOCK:
        _FAMILIES[prefix] = constructor


def register_model_dir(detector: ModelDirDetector, constructor: EmbedderConstructor) -> None:
    """Route names that ``detector`` recognises as its model directories to ``constructor``; checked before
    prefixes, in registration order. Registering the same pair again is a no-op."""
    with _LOCK:
        if (detector, constructor) not in _MODEL_DIRS:
            _MODEL_DIRS.append((detector, constructor))


def registered_families() -> tuple[str, ...]:
    """The registered prefixes, for ``--help`` texts and error messages."""
    with _LOCK:
        return tuple(sorted(_FAMILIES))


def resolve(name: str) -> EmbedderConstructor | None:
    """The constructor for ``name``: a matching model directory first, then the longest matching prefix."""
    with _LOCK:
        model_dirs = list(_MODEL_DIRS)
        families = sorted(_FAMILIES.items(), key=lambda item: len(item[0]), reverse=True)
    for detector, constructor in model_dirs:
        if detector(name):
            return constructor
    for prefix, constructor in families:
        if name.startswith(prefix):
            return constructor
    return None
