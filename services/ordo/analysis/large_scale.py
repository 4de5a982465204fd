"""Clustering and t-SNE for collections too large for the exact algorithms: PCA, then a sample, then assignment.

Why: exact DBSCAN/HDBSCAN and t-SNE cost O(n²) distance work (or O(n) work per iteration over hundreds of
iterations). Measured on this project's 2-core machine at 100k 512-d vectors: exact DBSCAN ≈ 50 s *after*
reducing to 50-d (far longer in 512-d), openTSNE ≈ 700 s (90 s of approximate neighbours, then ~0.6 s per
iteration × 750). So above ``LARGE_N`` points ``clustering.cluster`` and ``projection.project`` come here:

1. **Projection to ``PCA_DIMS`` (64) dimensions** by a truncated SVD fitted on a seeded sample of at most
   ``PCA_FIT_SAMPLE`` points, rows renormalised to unit length. Uncentred on purpose: centred PCA maps points
   the subspace does not represent (isotropic outliers) close to the origin, i.e. close to each other, and
   HDBSCAN then made one dense "cluster" of the benchmark's uniform noise. Uncentred and renormalised, those
   points get random directions and stay far from everything, while well-represented points keep their
   cosine geometry (CLIP-style embeddings keep most of their energy in a few dozen directions, which is also
   why t-SNE practice reduces to ~50 dimensions first). Radii keep their cosine meaning (euclidean on unit
   vectors, ``||a - b||² = 2·d_cos``), measured in the subspace.
2. **DBSCAN++** (Jang & Jiang, ICML 2019): the density test runs on a seeded sample of ``SAMPLE_SIZE`` points,
   each against *all* points (one n×m neighbour pass that also yields the k-distance curve for the automatic
   eps), the sample's core points are linked when within eps (exact DBSCAN on m points), and every point joins
   the cluster of its nearest sampled core point when that is within reach, else it is noise. O(n·m·d)
   instead of O(n²·d); eps/min_samples decide density as in DBSCAN, and "within reach" widens eps to the
   sample's own knee radius where the sample is too sparse to chain a cluster at eps (see ``dbscan_pp``).
3. **HDBSCAN on the sample + nearest-neighbour assignment**: the hierarchy is built on the sample with the
   given ``min_cluster_size`` (so a cluster needs that many *sampled* members: conservative, never finer than
   the sample can resolve); every other point takes the label of its nearest sampled point when that point is
   clustered and lies within its cluster's largest core distance (the density level at which the cluster
   exists), else noise.
4. **t-SNE on the sample, the rest interpolated** (Kobak & Berens 2019, "The art of using t-SNE"): the sample
   is embedded by openTSNE, each remaining point is placed at the median position of its ``PLACE_NEIGHBOURS``
   nearest sampled points (:func:`place_by_neighbours`; ``projection.tsne_sampled`` and ``umap_projection``
   use it). The map shows the structure the sample resolves; clusters smaller than about n / m points may
   merge into neighbours.

This module depends on no other analysis module: the algorithms that use it import it, never the reverse.

All of it is deterministic for a given seed.
"""

from __future__ import annotations

import numpy as np

from ordo.errors import InvalidInput

LARGE_N = 20_000  # above this many points the approximations here replace the exact algorithms
SAMPLE_SIZE = 10_000  # points that get the exact treatment (density test, hierarchy, t-SNE)
PCA_DIMS = 64
PCA_FIT_SAMPLE = 20_000
PLACE_NEIGHBOURS = 10
NOISE = -1


def reduce(unit: np.ndarray, seed: int, dims: int = PCA_DIMS) -> np.ndarray:
    """Unit rows projected on the top ``dims`` right-singular vectors of a seeded sample, renormalised (float32).

    Unchanged when already that small. A row with (numerically) no energy in the subspace keeps a zero vector,
    which is far (distance 1) from every unit vector.
    """
    n, d = unit.shape
    if d <= dims:
        return unit
    from sklearn.decomposition import TruncatedSVD

    rng = np.random.default_rng(seed)
    fit_rows = np.sort(rng.choice(n, size=min(n, PCA_FIT_SAMPLE), replace=False))
    svd = TruncatedSVD(n_components=dims, algorithm="randomized", random_state=seed).fit(unit[fit_rows])
    components = np.asarray(svd.components_, dtype=np.float32)  # (dims, d); never None once fitted
    projected = np.asarray(unit @ components.T, dtype=np.float32)
    norms = np.linalg.norm(projected, axis=1, keepdims=True)
    return projected / np.where(norms > 1e-12, norms, 1.0)


def sample_rows(n: int, size: int, seed: int) -> np.ndarray:
    """Sorted, seeded sample of row indices (all rows when ``n <= size``)."""
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def nearest_rows(points: np.ndarray, targets: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest ``targets`` rows for every row of ``points``: (euclidean distances, indices)."""
    from sklearn.neighbors import NearestNeighbors

    distances, indices = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(targets).kneighbors(points)
    return distances.astype(np.float64), indices


def knee_eps(k_dist_cos: np.ndarray) -> float:
    """Knee of a k-distance curve (cosine distances), as ``clustering.choose_eps`` defines it."""
    k_dist = np.sort(k_dist_cos)
    if k_dist[-1] <= k_dist[0]:
        return float(max(k_dist[-1], 1e-6))
    x = np.linspace(0.0, 1.0, k_dist.size)
    y = (k_dist - k_dist[0]) / (k_dist[-1] - k_dist[0])
    return float(max(k_dist[int(np.argmax(x - y))], 1e-6))


def dbscan_pp(unit: np.ndarray, eps: float | None, min_samples: int, seed: int) -> tuple[np.ndarray, float]:
    """DBSCAN++ on unit vectors (see module docstring); returns raw labels (-1 noise) and the eps used (cosine)."""
    reduced = reduce(unit, seed)
    n = reduced.shape[0]
    rows = sample_rows(n, SAMPLE_SIZE, seed)
    # Each sampled point against all points: its min_samples-th nearest (itself included, as DBSCAN counts).
    distances, _ = nearest_rows(reduced[rows], reduced, k=min_samples)
    k_dist = distances[:, -1] ** 2 / 2.0  # euclidean → cosine distance
    eps_used = float(eps) if eps else knee_eps(k_dist)
    core = rows[k_dist <= eps_used]
    labels = np.full(n, NOISE, dtype=np.int64)
    if core.size == 0:
        return labels, eps_used
    from sklearn.cluster import DBSCAN

    # The sample is m/n as dense as the data, so sampled core points of one cluster sit further apart than eps
    # (at 100k with eps alone a 50-blob set came out in 289 pieces). Links and assignments therefore use the
    # larger of eps and the radius DBSCAN would choose on the sample alone (the knee of its own k-distances).
    own, _ = nearest_rows(reduced[rows], reduced[rows], k=min(min_samples, rows.size))
    link = max(eps_used, knee_eps(own[:, -1] ** 2 / 2.0)) if rows.size >= 3 else eps_used
    radius = float(np.sqrt(2.0 * link))
    core_labels = DBSCAN(eps=radius, min_samples=1, algorithm="brute").fit_predict(reduced[core])
    distance, nearest = nearest_rows(reduced, reduced[core], k=1)
    within = distance[:, 0] <= radius
    labels[within] = core_labels[nearest[within, 0]]
    return labels, eps_used


def hdbscan_sampled(unit: np.ndarray, min_cluster_size: int, min_samples: int, seed: int) -> np.ndarray:
    """HDBSCAN on a sample, the rest by nearest sampled point within its core distance; raw labels."""
    from sklearn.cluster import HDBSCAN

    reduced = reduce(unit, seed)
    n = reduced.shape[0]
    rows = sample_rows(n, SAMPLE_SIZE, seed)
    m = rows.size
    if min_samples > m:
        raise InvalidInput(f"min_samples ({min_samples}) exceeds the sample of {m} vectors")
    model = HDBSCAN(
        min_cluster_size=min_cluster_size,
        min_samples=min_samples,
        metric="euclidean",
        algorithm="brute",
        copy=True,  # pyright: ignore[reportArgumentType]  # sklearn annotates copy as str; it is a bool
    )
    sample_labels = np.asarray(model.fit_predict(reduced[rows]), dtype=np.int64)
    # Each cluster's reach: the largest core distance among its sampled members. A single point's own core
    # distance was too strict (40% of the benchmark's clustered points fell outside it in 64-d, where nearest
    # distances concentrate).
    core_dist, _ = nearest_rows(reduced[rows], reduced[rows], k=min_samples)
    reach = np.zeros(int(sample_labels.max()) + 2)  # index label + 1, so noise (-1) maps to 0 and reaches nothing
    np.maximum.at(reach, sample_labels + 1, core_dist[:, -1])
    reach[0] = -1.0
    distance, nearest = nearest_rows(reduced, reduced[rows], k=1)
    nearest_label = sample_labels[nearest[:, 0]]
    labels = np.where(distance[:, 0] <= reach[nearest_label + 1], nearest_label, NOISE)
    labels[rows] = sample_labels
    return labels.astype(np.int64)


def place_by_neighbours(reduced: np.ndarray, rows: np.ndarray, sample_layout: np.ndarray) -> np.ndarray:
    """An ``(n, 2)`` float32 layout: ``sample_layout`` for the sampled ``rows``, every other point at the median
    position of its ``PLACE_NEIGHBOURS`` nearest sampled points (in ``reduced``)."""
    n = reduced.shape[0]
    layout = np.zeros((n, 2), dtype=np.float32)
    layout[rows] = sample_layout
    rest = np.setdiff1d(np.arange(n), rows, assume_unique=True)
    if rest.size:
        _, near = nearest_rows(reduced[rest], reduced[rows], k=min(PLACE_NEIGHBOURS, rows.size))
        layout[rest] = np.median(layout[rows][near], axis=1)
    return layout
