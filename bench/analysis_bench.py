"""Benchmark (optional, not wired into ``bench/run.py``): the analysis core against naive scikit-learn use.

* **Data**: synthetic 512-d unit vectors — 50 seeded gaussian blobs whose centres share a common direction (as
  CLIP embeddings do), plus 5% uniform noise on the sphere — with ground truth, so quality is reported
  beside time and a speed-up cannot hide a worse answer.
* **Ordo**: ``cluster(..., "dbscan")`` with automatic eps (eps choice included in the time),
  ``cluster(..., "hdbscan")`` and ``project(..., "tsne")`` (openTSNE when installed).
* **Naive baseline**: ``sklearn.cluster.DBSCAN(metric="cosine")`` with the *same* eps (brute-force cosine,
  no fast path) and ``sklearn.manifold.TSNE(init="pca", metric="cosine")``. The DBSCAN labels of both must
  agree (ARI reported), since euclidean on unit vectors with the converted radius is the same neighbourhood.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ordo.analysis.clustering import cluster
from ordo.analysis.metrics import evaluate
from ordo.analysis.projection import has_opentsne, project

DIM = 512
N_BLOBS = 50
NOISE_SHARE = 0.05


def synthetic_vectors(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` unit vectors in 512-d and their true labels (-1 for the uniform noise)."""
    rng = np.random.default_rng(seed)
    shared = rng.normal(size=DIM)
    shared /= np.linalg.norm(shared)
    centres = rng.normal(size=(N_BLOBS, DIM))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    centres = centres + shared
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    n_noise = int(n * NOISE_SHARE)
    labels = rng.integers(0, N_BLOBS, size=n - n_noise)
    # sigma per dimension so that a member sits ~0.1 (cosine) from its centre, whatever DIM is.
    points = centres[labels] + (0.45 / np.sqrt(DIM)) * rng.normal(size=(n - n_noise, DIM))
    vectors = np.vstack([points, rng.normal(size=(n_noise, DIM))]).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors, np.concatenate([labels, np.full(n_noise, -1)])


def _timed(fn: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def run_analysis_bench(sizes: Sequence[int] = (10_000,), *, baseline: bool = True, seed: int = 0) -> dict[str, Any]:
    """Time clustering and projection at each size; returns a JSON-able dict keyed by size."""
    from sklearn.cluster import DBSCAN
    from sklearn.manifold import TSNE
    from sklearn.metrics import adjusted_rand_score

    results: dict[str, Any] = {"dim": DIM, "blobs": N_BLOBS, "cpus": os.cpu_count(), "opentsne": has_opentsne()}
    for n in sizes:
        vectors, truth = synthetic_vectors(n, seed)
        row: dict[str, Any] = {}
        dbscan, seconds = _timed(lambda v=vectors: cluster(v, "dbscan", min_samples=5))
        row["ordo_dbscan"] = {"seconds": seconds, "eps": dbscan.eps_used, **evaluate(dbscan.labels, truth)}
        hdbscan, seconds = _timed(lambda v=vectors: cluster(v, "hdbscan", min_samples=5, min_cluster_size=10))
        row["ordo_hdbscan"] = {"seconds": seconds, **evaluate(hdbscan.labels, truth)}
        layout, seconds = _timed(lambda v=vectors: project(v, "tsne", seed=seed))
        row["ordo_tsne"] = {"seconds": seconds, "shape": list(layout.shape)}
        if baseline:
            naive = DBSCAN(eps=dbscan.eps_used, min_samples=5, metric="cosine")
            labels, seconds = _timed(lambda v=vectors, m=naive: m.fit_predict(v))
            row["naive_dbscan_cosine"] = {
                "seconds": seconds,
                "ari_vs_ordo": float(adjusted_rand_score(dbscan.labels, labels)),
                **evaluate(labels, truth),
            }
            tsne = TSNE(n_components=2, init="pca", metric="cosine", random_state=seed, n_jobs=2)
            _, seconds = _timed(lambda v=vectors, m=tsne: m.fit_transform(v))
            row["naive_sklearn_tsne"] = {"seconds": seconds}
        results[str(n)] = row
    return results


if __name__ == "__main__":
    import json
    import sys

    chosen = tuple(int(arg) for arg in sys.argv[1:]) or (10_000,)
    print(json.dumps(run_analysis_bench(chosen), indent=2))
