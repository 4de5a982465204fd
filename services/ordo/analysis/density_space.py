"""The reduced space DBSCAN and HDBSCAN run in: PCA to 50 dimensions, then UMAP to ``DIMS`` = 5 (cosine, min_dist 0).

Why: on 256/512-d embeddings of a real model the classes are overlapping lobes of one cloud and every point's
distances to the others concentrate (the curse of dimensionality), so the sorted k-distance curve has no knee
that separates classes: DBSCAN with the knee's eps found one cluster on cifar10-2k and on lfw-top40, HDBSCAN
mostly noise (NMI 0.004 / 0.065, README "Clusters that organise a library"). UMAP's graph-based embedding pulls
each point's neighbourhood together and pushes the lobes apart; with ``min_dist = 0`` it packs points densely,
which is the recipe UMAP's own documentation gives for clustering ("Using UMAP for Clustering": min_dist 0,
a handful of output dimensions, then HDBSCAN). PCA to 50 first is the usual denoising step (Scanpy, Seurat)
and makes UMAP's nearest-neighbour search cheaper.

Sound automatic eps: DBSCAN's eps is the knee of the sorted k-distance curve in *this* space (k =
``min_samples``, the Kneedle chord rule of ``clustering.choose_eps``), now a euclidean distance in UMAP
coordinates — reported as the run's ``eps_used`` with that meaning. An eps the caller gives is a cosine
distance on the embeddings (the proto's meaning) and keeps the original space.

Tiny collections (fewer than ``MIN_POINTS``) are not reduced: UMAP's neighbour graph needs more points than
neighbours, and a handful of points has nothing to denoise. Above ``large_scale.LARGE_N`` points DBSCAN++ and
the sampled HDBSCAN of ``large_scale`` keep serving (their PCA space), so the cost stays bounded.
"""

from __future__ import annotations

import numpy as np

from ordo.analysis.graph_clustering import K_NEIGHBOURS, far_out_points, knn_graph

# 5 output dimensions: on cifar10-2k (ordo-lite, min_samples 5) DBSCAN reached NMI 0.367 with its largest
# cluster 22 % of the images at 5-d, NMI 0.330 with 54 % at 10-d; HDBSCAN 0.32 vs 0.34; lfw-top40 alike.
DIMS = 5
PCA_DIMS = 50
N_NEIGHBOURS = 15
MIN_POINTS = 50


def reduce(unit: np.ndarray, seed: int) -> np.ndarray:
    """``unit`` (validated unit rows) in the reduced space, float32 ``(n, DIMS)``; unchanged below ``MIN_POINTS``."""
    n, d = unit.shape
    if n < MIN_POINTS or float(np.ptp(unit, axis=0).max()) < 1e-6:  # too few, or all (nearly) identical
        return unit
    import umap
    from sklearn.decomposition import PCA

    points = PCA(n_components=min(PCA_DIMS, d, n - 1), random_state=seed).fit_transform(unit) if d > PCA_DIMS else unit
    model = umap.UMAP(
        n_neighbors=N_NEIGHBOURS,
        n_components=DIMS,
        min_dist=0.0,
        metric="cosine",
        random_state=seed,
        n_jobs=1,  # random_state makes UMAP single-threaded anyway; saying so silences its warning
    )
    out = np.asarray(model.fit_transform(points), dtype=np.float32)
    return out if np.isfinite(out).all() else unit  # a degenerate layout: cluster the embeddings themselves


def knee_eps(points: np.ndarray, min_samples: int) -> float:
    """Euclidean DBSCAN radius at the knee of the sorted k-distance curve of ``points`` (k = ``min_samples``,
    each point counted as its own first neighbour, as DBSCAN counts it); see ``clustering.choose_eps``."""
    from sklearn.neighbors import NearestNeighbors

    k = min(min_samples, points.shape[0])
    distances, _ = NearestNeighbors(n_neighbors=k).fit(points).kneighbors(points)
    k_dist = np.sort(distances[:, -1].astype(np.float64))
    if k_dist[-1] <= k_dist[0]:
        return float(max(k_dist[-1], 1e-6))
    x = np.linspace(0.0, 1.0, k_dist.size)
    y = (k_dist - k_dist[0]) / (k_dist[-1] - k_dist[0])
    return float(max(k_dist[int(np.argmax(x - y))], 1e-6))


def far_out_as_noise(raw: np.ndarray, unit: np.ndarray, min_size: int) -> np.ndarray:
    """``raw`` labels with the embeddings' far-out points as noise, and clusters left under ``min_size`` too.

    Why: UMAP with ``min_dist = 0`` packs *every* point next to some others, so scattered outliers that DBSCAN
    on the embeddings would leave as noise form a cluster of their own in the reduced space. Which points are
    clearly apart is therefore judged on the embeddings, by the same rule as the default clustering's noise
    (``graph_clustering``: the 15th-neighbour distance beyond Tukey's far-out fence, Q3 + 3·IQR).
    """
    out = np.asarray(raw, dtype=np.int64).copy()
    if unit.shape[0] < MIN_POINTS:
        return out
    similarity, _ = knn_graph(unit, K_NEIGHBOURS)
    out[far_out_points(similarity)] = -1
    clustered = out >= 0
    if clustered.any():
        sizes = np.bincount(out[clustered])
        out[clustered & (sizes[np.maximum(out, 0)] < min_size)] = -1
    return out
