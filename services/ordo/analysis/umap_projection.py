"""UMAP maps (McInnes, Healy & Melville 2018; ``umap-learn``), beside t-SNE and PCA.

Why offer it: UMAP keeps more of the global arrangement than t-SNE (neighbouring groups stay neighbours on the
map) and its layout is built from the same fuzzy k-NN graph the default clustering uses. Settings are the
library's defaults (15 neighbours, min_dist 0.1) on cosine geometry, PCA initialisation (no spectral
initialisation, which can fail on tiny or disconnected graphs) and a fixed ``random_state`` (deterministic,
single-threaded — on this project's shared 2 cores threads mostly wait anyway).

Large collections: above ``large_scale.LARGE_N`` points the 64-d projection of a ``SAMPLE_SIZE`` sample is
embedded and every other point is placed at the median of its nearest sampled points, as for t-SNE
(``projection.tsne_sampled``): 100k points cost what 20k do.
"""

from __future__ import annotations

import numpy as np

from ordo.analysis import large_scale

N_NEIGHBOURS = 15
MIN_DIST = 0.1
SAMPLE_SIZE = 20_000
MIN_UMAP_POINTS = 5  # below this there is no neighbourhood to keep: PCA's layout is used (projection.project)


def _umap(points: np.ndarray, seed: int, metric: str) -> np.ndarray:
    import umap

    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=max(2, min(N_NEIGHBOURS, points.shape[0] - 1)),
        min_dist=MIN_DIST,
        metric=metric,
        init="pca",
        random_state=seed,
        low_memory=True,
    )
    return np.asarray(reducer.fit_transform(points), dtype=np.float32)


def umap_layout(unit: np.ndarray, seed: int) -> np.ndarray:
    """``(n, 2)`` float32 layout of validated unit rows (see module docstring for large collections)."""
    n = unit.shape[0]
    if n <= large_scale.LARGE_N:
        return _umap(unit, seed, "cosine")
    reduced = large_scale.reduce(unit, seed)
    rows = large_scale.sample_rows(n, SAMPLE_SIZE, seed)
    sample = _umap(reduced[rows], seed, "euclidean")  # unit rows: euclidean orders as cosine does
    return large_scale.place_by_neighbours(reduced, rows, sample)
