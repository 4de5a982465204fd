"""2-D maps of the embedding space: t-SNE for the cluster map, PCA as the fast linear view.

t-SNE uses openTSNE when it is installed (FFT-accelerated gradients and approximate neighbours make it
scale to 10⁵–10⁶ points; at 10⁴ 512-d points on 2 cores it took 14 s against scikit-learn's 26 s), otherwise
scikit-learn's ``TSNE``. Both start from a PCA layout instead of a random one: the global arrangement of
clusters then follows the data's main axes and repeated runs agree (Kobak & Berens 2019).
"""

from __future__ import annotations

import importlib.util
from typing import Literal

import numpy as np

from ordo.analysis import large_scale
from ordo.analysis.umap_projection import umap_layout
from ordo.analysis.vectors import as_unit_vectors
from ordo.errors import InvalidInput

Method = Literal["tsne", "umap", "pca"]
METHODS: tuple[str, ...] = ("tsne", "umap", "pca")

# Below this many points t-SNE has no neighbourhood structure to preserve (and the libraries refuse or
# degenerate); PCA's layout is returned instead, so a tiny filter still gets a map.
MIN_TSNE_POINTS = 5
# One thread: openTSNE's and scikit-learn's workers synchronise every iteration, and on a busy machine (this
# project's 2 cores are shared) a second thread mostly waits. Measured at load ~15: 10k points (50-d) 86 s with
# n_jobs=1 vs 196 s with 2; 600 points 3.5 s vs 44 s.
TSNE_N_JOBS = 1
# Iterations after early exaggeration for a sampled (large) map: openTSNE's default is 500, and the late ones
# are the slow ones (the embedding spreads, so the FFT grid grows). Measured on the 100k bench's 10k sample
# under `cpu exclusive`: 250 + 500 iterations 64 s, 250 + 250 28 s, with the same 10-NN accuracy of the blob
# labels in 2-D as in 50-D (0.90). Small maps (at most LARGE_N points) keep the default.
SAMPLED_TSNE_ITER = 250


def has_opentsne() -> bool:
    """Whether the openTSNE backend is importable (reported in run metadata and benchmarks)."""
    return importlib.util.find_spec("openTSNE") is not None


def effective_perplexity(perplexity: float, n: int) -> float:
    """Perplexity clipped to what ``n`` points support.

    Perplexity is the effective number of neighbours each point attends to, and both implementations look at
    about ``3·perplexity`` nearest neighbours, which must exist: so it is capped at ``(n - 1) / 3``, and kept
    at least 1 (a smaller value would make every point attend to itself only).
    """
    return float(max(1.0, min(perplexity, (n - 1) / 3.0)))


def project(vectors: np.ndarray, method: Method, *, perplexity: float = 30.0, seed: int = 0) -> np.ndarray:
    """Project L2-normalised embeddings to 2-D; returns an ``(n, 2)`` float32 array in input order.

    - ``tsne``: cosine affinities (euclidean on unit vectors orders neighbours identically), PCA
      initialisation, ``perplexity`` clipped by :func:`effective_perplexity`. Deterministic for a given
      ``seed`` on the same machine and library versions. Above ``large_scale.LARGE_N`` points a sample is
      embedded and the rest placed by their nearest sampled neighbours (see ``ordo.analysis.large_scale``).
    - ``umap``: UMAP with the library's defaults on cosine geometry (``ordo.analysis.umap_projection``).
    - ``pca``: the first two principal components (sklearn ``PCA``; the sign of each axis is fixed by sklearn's
      ``svd_flip``, so the map does not mirror between runs).
    """
    if method not in METHODS:
        raise InvalidInput(f"unknown projection method {method!r}; expected one of {', '.join(METHODS)}")
    if not (perplexity > 0 and np.isfinite(perplexity)):
        raise InvalidInput(f"perplexity must be a positive number, got {perplexity}")
    unit = as_unit_vectors(vectors)
    if method == "pca" or unit.shape[0] < MIN_TSNE_POINTS:
        return _pca(unit, seed)
    if method == "umap":  # see ordo.analysis.umap_projection
        return umap_layout(unit, seed)
    if unit.shape[0] > large_scale.LARGE_N:  # t-SNE of a sample, the rest interpolated (see large_scale)
        return tsne_sampled(unit, perplexity, seed)
    return _tsne(unit, effective_perplexity(perplexity, unit.shape[0]), seed)


def tsne_sampled(unit: np.ndarray, perplexity: float, seed: int) -> np.ndarray:
    """t-SNE of a sample (openTSNE, PCA init), the other points at the median of their nearest sampled points
    (step 4 of ``ordo.analysis.large_scale``)."""
    reduced = large_scale.reduce(unit, seed, dims=min(large_scale.PCA_DIMS, 50))  # 50: the usual pre-t-SNE reduction
    rows = large_scale.sample_rows(reduced.shape[0], large_scale.SAMPLE_SIZE, seed)
    sample = _tsne(
        reduced[rows], effective_perplexity(perplexity, rows.size), seed, metric="euclidean", n_iter=SAMPLED_TSNE_ITER
    )
    return large_scale.place_by_neighbours(reduced, rows, sample)


def _pca(unit: np.ndarray, seed: int) -> np.ndarray:
    n, d = unit.shape
    out = np.zeros((n, 2), dtype=np.float32)
    components = min(2, n, d)
    if n < 2:  # a single point: the origin is as good a place as any
        return out
    from sklearn.decomposition import PCA

    out[:, :components] = PCA(n_components=components, random_state=seed).fit_transform(unit)
    return out


def _tsne(unit: np.ndarray, perplexity: float, seed: int, metric: str = "cosine", n_iter: int = 500) -> np.ndarray:
    if has_opentsne():
        from openTSNE import TSNE as OpenTSNE

        embedding = OpenTSNE(
            n_components=2,
            perplexity=perplexity,  # pyright: ignore[reportArgumentType]  # annotated int, documented float
            initialization="pca",
            metric=metric,
            n_jobs=TSNE_N_JOBS,
            random_state=seed,
            n_iter=n_iter,
            verbose=False,
        ).fit(unit)
        return np.asarray(embedding, dtype=np.float32)
    from sklearn.manifold import TSNE

    layout = TSNE(
        n_components=2,
        perplexity=perplexity,
        init="pca",
        metric=metric,
        random_state=seed,
        n_jobs=TSNE_N_JOBS,
    ).fit_transform(unit)
    return np.asarray(layout, dtype=np.float32)
