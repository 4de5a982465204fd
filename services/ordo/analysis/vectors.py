"""Validation shared by every analysis algorithm: embeddings as unit rows, labels as int64 with ``NOISE``.

Why a module of its own: clustering, projection and the metrics all take the same (n, d) embeddings and
(n,) labels, and the algorithms sit below the orchestrating modules (``clustering.cluster``,
``projection.project``); keeping the checks here lets dependencies point one way.
"""

from __future__ import annotations

import numpy as np

from ordo.errors import InvalidInput

NOISE = -1


def as_unit_vectors(vectors: object, name: str = "vectors") -> np.ndarray:
    """Validate ``vectors`` as a non-empty finite ``(n, d)`` matrix and return an L2-normalised float32 copy.

    Inputs are meant to be normalised already; normalising again is cheap and makes the cosine↔euclidean
    conversion exact even after float round-trips through storage. A zero vector has no direction, so it is
    rejected rather than silently given one.
    """
    try:
        array = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{name} must be a numeric (n, d) array: {exc}") from exc
    if array.ndim != 2:
        raise InvalidInput(f"{name} must be a 2-D (n, d) array, got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise InvalidInput(f"{name} is empty (shape {array.shape}); at least one vector of dimension >= 1 needed")
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).any(axis=1).sum())
        raise InvalidInput(f"{name} contains NaN or infinite values in {bad} row(s)")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    zero = np.flatnonzero(norms[:, 0] == 0)
    if zero.size:
        raise InvalidInput(f"{name} has {zero.size} zero vector(s) (first at row {int(zero[0])}); cosine is undefined")
    return array / norms


def as_labels(labels: object, n: int, name: str = "labels") -> np.ndarray:
    """Validate ``labels`` as ``n`` integer cluster labels (-1 = noise) and return them as int64."""
    array = np.asarray(labels)
    if array.ndim != 1 or array.shape[0] != n:
        raise InvalidInput(f"{name} must be a 1-D array of {n} labels, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise InvalidInput(f"{name} must be integers (-1 = noise), got dtype {array.dtype}")
    return array.astype(np.int64, copy=False)
