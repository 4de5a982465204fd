"""Vocabulary prompt embeddings on disk: the library's own copy and the machine's, each checked before use.

Naming encodes ~10,000 prompts (5,160 terms × 2 templates): ~60 s of CPU on a slow 2-core machine. A library
keeps them in its data dir, so a restart does not pay again; but every new library, and every ``ordo eval``
(each builds a scratch stack), paid it in full. So they are also kept in the machine's cache
(``ORDO_NAMING_CACHE``, default ``~/.cache/ordo/naming``; ``off`` turns it off), shared by every library and
process of the user.

Why each file is checked: a cache file is found by the model's *id*, and an id does not identify weights
(a model loaded from a directory is named by the directory's basename; two libraries can hold different
fine-tunes of that name). So before a file is used, ``CHECK_TERMS`` of its prompts, spread over the
vocabulary, are encoded again and must agree with the stored rows (cosine ≥ ``CHECK_MIN_COSINE``; the
runtimes a model may run in agree to ≥ 0.999). A file that fails is not used; the vocabulary is encoded and
the file written again. The check costs 8 prompts, not 10,000.

Files are written to a unique temporary name and renamed, so two processes filling the shared cache at once
never leave (or read) half a file.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

SHARED_ENV = "ORDO_NAMING_CACHE"
CHECK_TERMS = 8
CHECK_MIN_COSINE = 0.99
STALE_TEMPORARY_S = 3600.0
_OFF = {"off", "false", "0", "no", "none"}


#: Where a caller keeps prompt embeddings: one folder (the library's; the machine's is added), folders in the
#: order to read them (as given), or None (memory only).
CacheDirs = Path | Sequence[Path] | None


def shared_dir(configured: str = "") -> Path | None:
    """The machine's cache folder: ``configured`` (the ``naming_cache`` setting), else ``ORDO_NAMING_CACHE``,
    else ``$XDG_CACHE_HOME/ordo/naming`` or ``~/.cache/ordo/naming``; None when the value is ``off``."""
    value = (configured or os.environ.get(SHARED_ENV, "")).strip()
    if value:
        return None if value.lower() in _OFF else Path(value).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ordo" / "naming"


def folders(cache_dir: CacheDirs) -> list[Path]:
    """Where to look, in order, each once: a single folder is the library's own, then the machine's."""
    if cache_dir is None:
        return []
    found = [Path(cache_dir), shared_dir()] if isinstance(cache_dir, (str, Path)) else list(cache_dir)
    return list(dict.fromkeys(Path(d) for d in found if d is not None))


def cache_file(folder: Path, model_id: str, digest: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model_id).strip("_")[:80] or "model"
    return folder / f"vocab-{slug}-{digest}.npy"


def check_rows(count: int) -> list[int]:
    """The rows re-encoded to check a file: ``CHECK_TERMS`` spread evenly over the vocabulary."""
    return sorted({int(i) for i in np.linspace(0, count - 1, num=min(CHECK_TERMS, count))})


def _agrees(stored: np.ndarray, texts: Sequence[str], encode: Callable[[list[str]], object]) -> bool:
    rows = check_rows(len(texts))
    fresh = np.asarray(encode([texts[i] for i in rows]), dtype=np.float64)
    if fresh.shape != (len(rows), stored.shape[1]) or not np.isfinite(fresh).all():
        return False
    fresh /= np.maximum(np.linalg.norm(fresh, axis=1, keepdims=True), 1e-12)
    return float((fresh * stored[rows]).sum(axis=1).min()) >= CHECK_MIN_COSINE


def load(
    places: Sequence[Path], model_id: str, digest: str, texts: Sequence[str], encode: Callable[[list[str]], object]
) -> tuple[np.ndarray | None, list[Path]]:
    """The first stored matrix that is well formed and agrees with ``encode``, and the folders before it
    that lacked one (to be filled from it)."""
    lacking: list[Path] = []
    for folder in places:
        path = cache_file(folder, model_id, digest)
        if not path.is_file():
            lacking.append(folder)
            continue
        try:
            stored = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            logger.warning("ignoring unreadable vocabulary cache %s: %s", path, exc)
            lacking.append(folder)
            continue
        if not (stored.ndim == 2 and stored.shape[0] == len(texts) and np.isfinite(stored).all()):
            logger.warning("ignoring vocabulary cache %s: shape %s for %d prompts", path, stored.shape, len(texts))
        elif not _agrees(stored, texts, encode):
            logger.warning("ignoring vocabulary cache %s: written by other weights under the id %r", path, model_id)
        else:
            return stored.astype(np.float32, copy=False), lacking
        lacking.append(folder)
    return None, lacking


def _drop_stale_temporaries(folder: Path) -> None:
    """Temporary files a killed writer left (a kill between create and rename), once they are an hour old:
    a younger one may be another process's write in progress."""
    for leftover in folder.glob(".vocab-*.npy"):
        try:
            if time.time() - leftover.stat().st_mtime > STALE_TEMPORARY_S:
                leftover.unlink()
        except OSError:
            pass


def store(places: Sequence[Path], model_id: str, digest: str, matrix: np.ndarray) -> None:
    """Writes ``matrix`` into each folder (temporary file, then rename); a folder that cannot be written
    costs speed, not correctness, so it is logged and skipped."""
    for folder in places:
        path = cache_file(folder, model_id, digest)
        written = ""
        try:
            folder.mkdir(parents=True, exist_ok=True)
            _drop_stale_temporaries(folder)
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".vocab-", suffix=".npy", delete=False) as tmp:
                written = tmp.name
                np.save(tmp, matrix, allow_pickle=False)
            os.chmod(written, 0o644)  # as any file the process writes (a temporary file is made 0600)
            os.replace(written, path)
        except OSError as exc:
            if written:
                Path(written).unlink(missing_ok=True)
            logger.warning("could not write vocabulary cache %s: %s", path, exc)
