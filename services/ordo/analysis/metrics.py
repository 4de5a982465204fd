"""Quality of a clustering: against ground-truth labels (purity, NMI, ARI) and without them (silhouette).

How noise (-1) is counted — one choice per metric, each stated so numbers are comparable across runs:

- ``purity`` covers only the points that were clustered. It answers "how clean are the clusters that were
  formed?"; a density method that leaves hard points out is not punished here, which is why
  ``noise_fraction`` is always reported beside it (a purity of 0.99 at 40% noise reads differently).
  A singleton cluster is 100% pure by definition, so purity alone rewards over-splitting; NMI and ARI do not.
- ``nmi`` and ``ari`` cover *all* points, with noise treated as one more predicted group (scikit-learn's view
  of the label -1). Noise mixes true classes, so marking too much as noise lowers them: together with purity
  they expose both failure modes (dirty clusters, and cleanliness bought with noise).
- ``noise_fraction``: share of all points labelled -1.
"""

from __future__ import annotations

import numpy as np

from ordo.analysis.vectors import NOISE, as_labels, as_unit_vectors
from ordo.errors import InvalidInput


def purity(labels_pred: np.ndarray, labels_true: np.ndarray) -> float | None:
    """Σ over predicted clusters of the size of its majority true class, divided by the clustered points.

    Equivalently the size-weighted mean of each cluster's majority share. Noise points are excluded (see the
    module docstring); ``None`` when nothing was clustered, since purity is undefined then.
    """
    pred, true = _validated(labels_pred, labels_true)
    clustered = pred != NOISE
    if not clustered.any():
        return None
    return _purity(pred[clustered], true[clustered])


def _purity(pred: np.ndarray, true: np.ndarray) -> float:
    _, true_codes = np.unique(true, return_inverse=True)
    _, pred_codes = np.unique(pred, return_inverse=True)
    contingency = np.zeros((pred_codes.max() + 1, true_codes.max() + 1), dtype=np.int64)
    np.add.at(contingency, (pred_codes, true_codes), 1)
    return float(contingency.max(axis=1).sum() / pred.size)


def evaluate(labels_pred: np.ndarray, labels_true: np.ndarray) -> dict[str, float | None]:
    """Compare predicted cluster labels with ground truth: purity, NMI, ARI and noise fraction.

    ``labels_pred`` are integer cluster labels (-1 = noise); ``labels_true`` may be any comparable values
    (class names from a payload field, ints...). See the module docstring for how noise enters each number.
    ``purity`` is ``None`` when every point is noise. NMI uses the arithmetic-mean normalisation
    (scikit-learn's default), so it equals the V-measure.
    """
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    pred, true = _validated(labels_pred, labels_true)
    clustered = pred != NOISE
    return {
        "purity": _purity(pred[clustered], true[clustered]) if clustered.any() else None,
        "nmi": float(normalized_mutual_info_score(true, pred)),
        "ari": float(adjusted_rand_score(true, pred)),
        "noise_fraction": float(1.0 - clustered.mean()),
    }


def silhouette(vectors: np.ndarray, labels: np.ndarray, sample_size: int = 2000, seed: int = 0) -> float | None:
    """Mean cosine silhouette of clustered points, on a seeded sample of at most ``sample_size`` of them.

    The silhouette is O(n²) in time and memory, so a sample keeps it affordable for any collection; it is a
    mean over points, which a couple of thousand of them estimate well. Noise points are excluded (they belong
    to no cluster, so their silhouette is meaningless). ``None`` when fewer than 2 clusters (or not more points
    than clusters) remain, where the silhouette is undefined.
    """
    if sample_size < 2:
        raise InvalidInput(f"sample_size must be >= 2, got {sample_size}")
    unit = as_unit_vectors(vectors)
    labels = as_labels(labels, unit.shape[0])
    index = np.flatnonzero(labels != NOISE)
    if index.size > sample_size:
        index = np.sort(np.random.default_rng(seed).choice(index, size=sample_size, replace=False))
    sample_labels = labels[index]
    n_clusters = np.unique(sample_labels).size
    if n_clusters < 2 or index.size <= n_clusters:
        return None
    from sklearn.metrics import silhouette_score

    return float(silhouette_score(unit[index], sample_labels, metric="cosine"))


def _validated(labels_pred: np.ndarray, labels_true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    true = np.asarray(labels_true)
    if true.ndim != 1 or true.size == 0:
        raise InvalidInput(f"labels_true must be a non-empty 1-D array, got shape {true.shape}")
    pred = as_labels(labels_pred, true.size, "labels_pred")
    return pred, true
