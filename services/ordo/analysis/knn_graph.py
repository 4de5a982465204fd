"""The k-NN graph of the default clustering without JIT compilation: cell-probe neighbours, UMAP's fuzzy weights.

Why this module: the 100k bench spent most of its time compiling, not computing. NN-descent (``pynndescent``)
and UMAP's ``fuzzy_simplicial_set`` are numba code compiled on first use in every process: measured under
``/work/wt/cpu exclusive``, NN-descent took 104 s on its first (25k-point) call and 5 s on the 100k call after,
and the fuzzy weights 16 s, most of it compilation. So:

* **approximate neighbours** come from an inverted-file search (the IVF scheme of FAISS, Jégou et al. 2011) in
  NumPy: k-means cells of about ``CELL_SIZE`` points (fitted on a seeded sample), and every point's neighbours
  searched exactly among the members of the ``PROBES`` cells nearest to its own cell's centre — one small GEMM
  and partial sort per cell. Measured on the 100k bench (64-d, `cpu exclusive`): 17.6 s, recall@15 0.95
  (Annoy from openTSNE: 23 s at recall 0.49, 30 s at 0.80; NN-descent: 0.89, but compiled for 100 s first);
* **UMAP's fuzzy simplicial set** (McInnes et al. 2018, §3) is computed here in NumPy, vectorised over all points:
  per point the distance ``rho`` to its nearest neighbour and the scale ``sigma`` at which its k memberships
  ``exp(-(d - rho) / sigma)`` sum to ``log2(k)`` (binary search, 64 steps, as UMAP's ``smooth_knn_dist``),
  then the fuzzy union ``A + Aᵀ - A∘Aᵀ``. Same numbers as UMAP's (``tests/unit/test_knn_graph_clustering.py``
  compares them).
"""

from __future__ import annotations

import numpy as np

CELL_SIZE = 300  # points per k-means cell, on average
PROBES = 8  # cells searched per query (its own and the 7 nearest to it); 16 gave recall 0.957 for twice the time
CELL_FIT_SAMPLE = 20_000
QUERY_BLOCK = 2_000
SMOOTH_K_TOLERANCE = 1e-5  # UMAP's constants
MIN_K_DIST_SCALE = 1e-3


class CellNeighbours:
    """Approximate nearest neighbours (euclidean) among ``points`` by cell probing (see module docstring)."""

    def __init__(self, points: np.ndarray, seed: int) -> None:
        from sklearn.cluster import KMeans

        self.points = np.ascontiguousarray(points, dtype=np.float32)
        n = self.points.shape[0]
        cells = max(1, min(n // CELL_SIZE, CELL_FIT_SAMPLE // 10))
        rng = np.random.default_rng(seed)
        fit = self.points[np.sort(rng.choice(n, size=min(n, CELL_FIT_SAMPLE), replace=False))]
        kmeans = KMeans(cells, n_init=1, max_iter=20, random_state=seed).fit(fit)  # pyright: ignore[reportArgumentType]  # sklearn annotates n_init as str
        self.centres = np.asarray(kmeans.cluster_centers_, dtype=np.float32)
        self.centre_sq = (self.centres**2).sum(axis=1)
        own = self._cell_of(self.points)
        order = np.argsort(own, kind="stable")
        bounds = np.searchsorted(own[order], np.arange(cells + 1))
        self.members = [order[bounds[c] : bounds[c + 1]] for c in range(cells)]
        between = self.centre_sq[:, None] + self.centre_sq[None, :] - 2.0 * self.centres @ self.centres.T
        self.probes = np.argsort(between, axis=1, kind="stable")[:, : min(PROBES, cells)]

    def _cell_of(self, points: np.ndarray) -> np.ndarray:
        out = np.empty(points.shape[0], dtype=np.int64)
        for start in range(0, points.shape[0], 50_000):
            block = points[start : start + 50_000]
            out[start : start + block.shape[0]] = np.argmin(self.centre_sq[None, :] - 2.0 * block @ self.centres.T, 1)
        return out

    def graph(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(indices, euclidean distances) of every point's k+1 nearest points, itself first."""
        return self.query(self.points, k + 1)

    def query(self, points: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(indices, euclidean distances) of the k nearest indexed points to each row of ``points``, nearest first."""
        points = np.ascontiguousarray(points, dtype=np.float32)
        cell = self._cell_of(points)
        order = np.argsort(cell, kind="stable")
        bounds = np.searchsorted(cell[order], np.arange(len(self.members) + 1))
        indices = np.zeros((points.shape[0], k), dtype=np.int64)
        distances = np.zeros((points.shape[0], k), dtype=np.float64)
        point_sq = (self.points**2).sum(axis=1)
        for c in range(len(self.members)):
            rows = order[bounds[c] : bounds[c + 1]]
            if rows.size == 0:
                continue
            candidates = np.concatenate([self.members[p] for p in self.probes[c]])
            targets, target_sq = self.points[candidates], point_sq[candidates]
            kk = min(k, candidates.size)
            for start in range(0, rows.size, QUERY_BLOCK):
                block = rows[start : start + QUERY_BLOCK]
                squared = target_sq[None, :] - 2.0 * points[block] @ targets.T  # + |q|², constant per row
                part = np.argpartition(squared, kk - 1, axis=1)[:, :kk]
                near = np.take_along_axis(squared, part, axis=1)
                rank = np.argsort(near, axis=1, kind="stable")
                part, near = np.take_along_axis(part, rank, axis=1), np.take_along_axis(near, rank, axis=1)
                query_sq = (points[block] ** 2).sum(axis=1, keepdims=True)
                indices[block, :kk] = candidates[part]
                distances[block, :kk] = np.sqrt(np.clip(near + query_sq, 0.0, None))
                if kk < k:  # fewer candidates than asked (tiny inputs): repeat the farthest
                    indices[block, kk:], distances[block, kk:] = (
                        indices[block, kk - 1 : kk],
                        distances[block, kk - 1 : kk],
                    )
        return indices, distances


def smooth_knn_dist(distances: np.ndarray, n_iter: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """UMAP's per-point (sigma, rho) for ``distances`` (n, k) that include the point itself at 0 in column 0."""
    k = distances.shape[1]
    target = np.log2(k)
    others = distances[:, 1:]
    positive = np.where(distances > 0, distances, np.inf)
    rho = positive.min(axis=1)
    rho = np.where(np.isfinite(rho), rho, 0.0)
    lo = np.zeros(distances.shape[0])
    hi = np.full(distances.shape[0], np.inf)
    mid = np.ones(distances.shape[0])
    active = np.ones(distances.shape[0], dtype=bool)
    shifted = others - rho[:, None]
    for _ in range(n_iter):
        psum = np.where(shifted > 0, np.exp(-np.clip(shifted, 0, None) / mid[:, None]), 1.0).sum(axis=1)
        active &= np.abs(psum - target) >= SMOOTH_K_TOLERANCE
        if not active.any():
            break
        above = active & (psum > target)
        below = active & ~(psum > target)
        hi = np.where(above, mid, hi)
        lo = np.where(below, mid, lo)
        mid = np.where(above, (lo + hi) / 2.0, mid)
        mid = np.where(below, np.where(np.isinf(hi), mid * 2.0, (lo + hi) / 2.0), mid)
    floor = MIN_K_DIST_SCALE * np.where(rho > 0, distances.mean(axis=1), distances.mean())
    return np.maximum(mid, floor), rho


def fuzzy_union(knn_indices: np.ndarray, knn_dists: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """UMAP's fuzzy simplicial set of a k-NN graph (self in column 0) as upper-triangle (rows, cols, weights)."""
    from scipy.sparse import coo_matrix

    n = knn_indices.shape[0]
    sigma, rho = smooth_knn_dist(knn_dists)
    strength = np.exp(-np.clip(knn_dists - rho[:, None], 0, None) / sigma[:, None])
    strength[knn_dists - rho[:, None] <= 0] = 1.0
    rows = np.repeat(np.arange(n), knn_indices.shape[1])
    cols = knn_indices.ravel()
    values = strength.ravel()
    keep = rows != cols
    a = coo_matrix((values[keep], (rows[keep], cols[keep])), shape=(n, n)).tocsr()
    a.sum_duplicates()
    union = (a + a.T - a.multiply(a.T)).tocoo()
    upper = union.row < union.col
    return union.row[upper], union.col[upper], np.asarray(union.data[upper], dtype=np.float64)
