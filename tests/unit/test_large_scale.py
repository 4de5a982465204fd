"""The large-collection path of the analysis core (sample + assignment, SVD projection), run on small data by
lowering its thresholds, so it is exercised in seconds: it must recover the same blobs and noise as the exact
algorithms, stay deterministic, and leave inputs below the threshold on the exact path."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from ordo.analysis import large_scale
from ordo.analysis.clustering import cluster
from ordo.analysis.metrics import evaluate
from ordo.analysis.projection import project

DIM = 128
K = 6


def blobs(n_per: int = 300, n_noise: int = 90, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Blobs sharing a common direction (as CLIP embeddings do) plus uniform noise on the sphere."""
    rng = np.random.default_rng(seed)
    shared = rng.normal(size=DIM)
    centres = rng.normal(size=(K, DIM)) / np.sqrt(DIM) + shared / np.linalg.norm(shared)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    points = np.repeat(centres, n_per, axis=0) + (0.3 / np.sqrt(DIM)) * rng.normal(size=(K * n_per, DIM))
    vectors = np.vstack([points, rng.normal(size=(n_noise, DIM))]).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors, np.concatenate([np.repeat(np.arange(K), n_per), np.full(n_noise, -1)])


@pytest.fixture
def small_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    """1890 points count as "large": a 600-point sample, a 32-d projection."""
    monkeypatch.setattr(large_scale, "LARGE_N", 1000)
    monkeypatch.setattr(large_scale, "SAMPLE_SIZE", 600)
    monkeypatch.setattr(large_scale, "PCA_DIMS", 32)
    monkeypatch.setattr(large_scale, "PCA_FIT_SAMPLE", 800)


@pytest.mark.parametrize("algorithm", ["dbscan", "hdbscan"])
def test_sampled_clustering_recovers_blobs_and_noise(small_thresholds: None, algorithm: str) -> None:
    vectors, truth = blobs()
    result = cluster(vectors, algorithm, min_samples=5, min_cluster_size=10)  # type: ignore[arg-type]
    metrics = evaluate(result.labels, truth)
    assert result.n_clusters == K
    assert metrics["purity"] == 1.0 and metrics["ari"] > 0.97
    assert abs(metrics["noise_fraction"] - 90 / vectors.shape[0]) < 0.02
    again = cluster(vectors, algorithm, min_samples=5, min_cluster_size=10)  # type: ignore[arg-type]
    assert np.array_equal(result.labels, again.labels)
    if algorithm == "dbscan":
        assert result.eps_used is not None and 0 < result.eps_used < 0.5


def test_sampled_dbscan_agrees_with_exact_dbscan(small_thresholds: None, monkeypatch: pytest.MonkeyPatch) -> None:
    vectors, _ = blobs()
    sampled = cluster(vectors, "dbscan", min_samples=5)
    monkeypatch.setattr(large_scale, "LARGE_N", 10**9)
    exact = cluster(vectors, "dbscan", min_samples=5)
    assert adjusted_rand_score(exact.labels, sampled.labels) > 0.95


def test_sampled_tsne_places_every_point_and_keeps_blobs_apart(small_thresholds: None) -> None:
    vectors, truth = blobs(n_per=200, n_noise=0)
    layout = project(vectors, "tsne", seed=0)
    assert layout.shape == (vectors.shape[0], 2) and np.isfinite(layout).all()
    centres = np.stack([layout[truth == k].mean(axis=0) for k in range(K)])
    spread = max(float(np.linalg.norm(layout[truth == k] - centres[k], axis=1).mean()) for k in range(K))
    gaps = [np.linalg.norm(centres[a] - centres[b]) for a in range(K) for b in range(a + 1, K)]
    assert min(gaps) > 2 * spread  # every blob is its own island on the map
    assert np.array_equal(layout, project(vectors, "tsne", seed=0))


def test_reduce_keeps_unit_rows_and_sends_unrepresented_points_far() -> None:
    vectors, truth = blobs()
    reduced = large_scale.reduce(vectors, seed=0, dims=16)
    assert reduced.shape == (vectors.shape[0], 16)
    assert np.allclose(np.linalg.norm(reduced, axis=1), 1.0, atol=1e-4)
    noise = reduced[truth == -1]
    similarity = noise @ noise.T
    # Isotropic noise gets random directions in the subspace, not a dense clump near the origin.
    assert np.median(similarity[~np.eye(len(noise), dtype=bool)]) < 0.5
