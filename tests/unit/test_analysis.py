"""The analysis core called directly: clustering, eps choice, medoids, stable ids, projection and metrics.

Data: seeded gaussian blobs of unit vectors in 64-d plus uniform noise on the sphere. The blob centres share a
common direction (as real CLIP embeddings do), so clusters sit ~0.4–0.5 apart in cosine distance while the
noise points are ~1 away from everything: far enough to be unambiguous noise for density methods.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from ordo.analysis.clustering import (
    ClusteringResult,
    assign_to_nearest,
    centroids,
    choose_eps,
    cluster,
    match_clusters,
    medoids,
)
from ordo.analysis.metrics import evaluate, purity, silhouette
from ordo.analysis.projection import effective_perplexity, project
from ordo.errors import InvalidInput

K = 5
DIM = 64


def make_blobs(
    n_per: int = 200, sigma: float = 0.05, n_noise: int = 50, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(unit vectors, true labels with -1 for injected noise, unit centres)."""
    rng = np.random.default_rng(seed)
    shared = rng.normal(size=DIM)
    shared /= np.linalg.norm(shared)
    centres = rng.normal(size=(K, DIM))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    centres += shared
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    points = np.repeat(centres, n_per, axis=0) + sigma * rng.normal(size=(K * n_per, DIM))
    vectors = np.vstack([points, rng.normal(size=(n_noise, DIM))])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    labels = np.concatenate([np.repeat(np.arange(K), n_per), np.full(n_noise, -1)])
    return vectors.astype(np.float32), labels, centres.astype(np.float32)


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return make_blobs()


# ------------------------------------------------------------------------------------------ clustering
@pytest.mark.parametrize("algorithm", ["dbscan", "hdbscan"])
def test_density_clustering_recovers_blobs_and_marks_noise(
    blobs: tuple[np.ndarray, np.ndarray, np.ndarray], algorithm: str
) -> None:
    vectors, truth, _ = blobs
    result = cluster(vectors, algorithm, min_samples=5, min_cluster_size=5)  # type: ignore[arg-type]
    assert isinstance(result, ClusteringResult)
    assert result.labels.shape == truth.shape and result.labels.dtype == np.int64
    real = truth >= 0
    # DBSCAN runs in a UMAP-reduced space whose layout differs across CPUs (float order in numba's
    # kernels): on an AVX2-only EPYC one blob's edge came out as a small sixth cluster. The ARI and the
    # noise checks below carry the behaviour; the count may be one over, never under.
    assert K <= result.n_clusters <= (K + 1 if algorithm == "dbscan" else K)
    assert adjusted_rand_score(truth[real], result.labels[real]) > 0.9
    assert (result.labels[~real] == -1).mean() >= 0.95, "injected uniform noise must be noise"
    assert (result.labels[real] == -1).mean() < 0.05, "blob members must not be noise"
    assert result.noise_fraction == pytest.approx((result.labels == -1).mean())
    assert result.seconds >= 0
    if algorithm == "dbscan":
        assert result.eps_used is not None and 0 < result.eps_used < 0.5
    else:
        assert result.eps_used is None


def test_labels_are_canonical_and_deterministic(blobs: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    vectors, _, _ = blobs
    first, second = cluster(vectors, "dbscan"), cluster(vectors, "dbscan")
    assert np.array_equal(first.labels, second.labels) and first.eps_used == second.eps_used
    sizes = np.bincount(first.labels[first.labels >= 0])
    assert list(sizes) == sorted(sizes, reverse=True), "label 0 is the largest cluster"


def test_dbscan_with_explicit_eps_is_cosine(blobs: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    vectors, truth, _ = blobs
    # Unset eps: the knee in the reduced space (density_space), so eps_used is a distance there, not cosine.
    auto = cluster(vectors, "dbscan")
    assert cluster(vectors, "dbscan", eps=0).eps_used == auto.eps_used, "0 means unset, as in the proto"
    # A given eps is a cosine distance on the embeddings themselves: the cosine knee reproduces the blobs.
    cosine_knee = choose_eps(vectors, 5)
    explicit = cluster(vectors, "dbscan", eps=cosine_knee)
    assert explicit.eps_used == cosine_knee and adjusted_rand_score(truth, explicit.labels) > 0.9
    # A radius larger than any cosine distance between blobs (~0.5) merges them; noise (~1 away) stays out.
    merged = cluster(vectors, "dbscan", eps=0.9)
    assert merged.n_clusters == 1
    tiny = cluster(vectors, "dbscan", eps=1e-4)
    assert tiny.n_clusters == 0 and tiny.noise_fraction == 1.0
    assert adjusted_rand_score(truth, auto.labels) > 0.9


def test_kmeans_baseline(blobs: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    vectors, truth, _ = blobs
    real = truth >= 0
    result = cluster(vectors[real], "kmeans", n_clusters=K, seed=3)
    assert result.n_clusters == K and result.noise_fraction == 0.0 and result.eps_used is None
    assert adjusted_rand_score(truth[real], result.labels) > 0.99
    assert np.array_equal(result.labels, cluster(vectors[real], "kmeans", n_clusters=K, seed=3).labels)


def test_choose_eps_is_deterministic_and_sensible(blobs: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    vectors, truth, centres = blobs
    eps = choose_eps(vectors, 5)
    assert eps == choose_eps(vectors, 5)
    assert eps == choose_eps(vectors[::-1].copy(), 5), "input order must not matter"
    # Above the members' typical distance to each other, below the distance between blob centres (~0.37+).
    real = vectors[truth >= 0]
    within = 1.0 - (real[:200] @ real[:200].T)
    centre_gap = (1.0 - centres @ centres.T)[np.triu_indices(K, 1)].min()
    assert np.median(within) * 0.3 < eps < centre_gap
    # Wider blobs need a wider radius.
    assert choose_eps(make_blobs(sigma=0.1)[0], 5) > eps
    # Sampled queries estimate the same knee.
    assert choose_eps(vectors, 5, sample_size=600, seed=1) == pytest.approx(eps, rel=0.25)


# ------------------------------------------------------------------------------------------ after clustering
def test_medoids_are_central_members(blobs: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    vectors, truth, centres = blobs
    found = medoids(vectors, truth, per_cluster=3)
    assert sorted(found) == list(range(K)), "noise gets no medoids"
    for label, indices in found.items():
        assert len(indices) == 3 and len(set(indices)) == 3
        assert all(truth[i] == label for i in indices)
        members = np.flatnonzero(truth == label)
        similarity = vectors[members] @ centres[label]
        # The chosen ones are among the 10% of members closest to the true centre.
        assert all(vectors[i] @ centres[label] >= np.quantile(similarity, 0.9) for i in indices)
    assert medoids(vectors, truth, per_cluster=1000)[0] == medoids(vectors, truth, per_cluster=1000)[0]
    assert len(medoids(vectors, truth, per_cluster=1000)[0]) == 200


def test_match_clusters_keeps_ids_across_reorder_and_small_changes() -> None:
    previous = {
        "aaaaaaaaaaaa": {f"a{i}" for i in range(20)},
        "bbbbbbbbbbbb": {f"b{i}" for i in range(20)},
        "cccccccccccc": {f"c{i}" for i in range(20)},
    }
    current = {
        0: {f"c{i}" for i in range(3, 20)} | {"new1"},  # c lost 3 members, gained one, and was renumbered
        1: {f"a{i}" for i in range(20)},
        2: {f"b{i}" for i in range(18)} | {"a0"},
        3: {f"z{i}" for i in range(10)},  # a brand-new cluster
        -1: {"x", "y"},  # noise
    }
    mapping = match_clusters(previous, current, seed=7)
    assert mapping[0] == "cccccccccccc" and mapping[1] == "aaaaaaaaaaaa" and mapping[2] == "bbbbbbbbbbbb"
    assert set(mapping) == {0, 1, 2, 3}, "noise gets no id"
    assert len(mapping[3]) == 12 and mapping[3] not in previous
    assert int(mapping[3], 16) >= 0
    # Deterministic for a seed, whatever the dict order.
    reordered_prev = dict(reversed(list(previous.items())))
    reordered_cur = dict(reversed(list(current.items())))
    assert match_clusters(reordered_prev, reordered_cur, seed=7) == mapping
    # Without a seed fresh ids are random (uuid4) but existing ids are still kept.
    unseeded = match_clusters(previous, current)
    assert {unseeded[i] for i in range(3)} == set(previous)


def test_match_clusters_split_keeps_id_on_larger_part_only() -> None:
    previous = {"p": set(range(100))}
    mapping = match_clusters(previous, {0: set(range(70)), 1: set(range(70, 100))}, seed=1)
    assert mapping[0] == "p" and mapping[1] != "p"
    # Too little overlap: a new cluster, not a continuation.
    weak = match_clusters(previous, {0: set(range(20)) | set(range(1000, 1100))}, min_overlap=0.3, seed=1)
    assert weak[0] != "p"
    assert match_clusters({}, {0: {1}, 1: {2}}, seed=2) == match_clusters({}, {1: {2}, 0: {1}}, seed=2)
    assert match_clusters(previous, {}) == {}


def test_assign_to_nearest(blobs: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    vectors, truth, _ = blobs
    real = truth >= 0
    cluster_ids, centre_matrix = centroids(vectors, truth)
    assert list(cluster_ids) == list(range(K)) and centre_matrix.shape == (K, DIM)
    assert np.allclose(np.linalg.norm(centre_matrix, axis=1), 1.0, atol=1e-5)
    fresh, fresh_truth, _ = make_blobs(n_per=20, n_noise=20, seed=0)  # same centres, new draws
    assigned = assign_to_nearest(fresh, centre_matrix, max_distance=0.3)
    assert np.array_equal(assigned[fresh_truth >= 0], fresh_truth[fresh_truth >= 0])
    assert (assigned[fresh_truth < 0] == -1).all(), "points far from every centroid stay unassigned"
    relabelled = assign_to_nearest(fresh, centre_matrix, 0.3, labels=cluster_ids + 10)
    assert np.array_equal(relabelled, np.where(assigned >= 0, assigned + 10, -1))
    assert (assign_to_nearest(vectors[real], centre_matrix, max_distance=0.0) == -1).all()
    with pytest.raises(InvalidInput, match="dimension"):
        assign_to_nearest(fresh[:, :10], centre_matrix, 0.3)


# ------------------------------------------------------------------------------------------ projection
def test_projection_shape_determinism_and_separation() -> None:
    from sklearn.neighbors import KNeighborsClassifier

    vectors, truth, _ = make_blobs(n_per=80, sigma=0.08, n_noise=0, seed=2)
    layout = project(vectors, "tsne", seed=1)
    assert layout.shape == (len(vectors), 2) and layout.dtype == np.float32
    assert np.isfinite(layout).all()
    assert np.array_equal(layout, project(vectors, "tsne", seed=1))
    # Blobs stay separated: a 5-NN vote in 2-D (leave-one-out via k+1 neighbours) recovers the label.
    knn = KNeighborsClassifier(n_neighbors=6).fit(layout, truth)
    neighbours = knn.kneighbors(layout, return_distance=False)[:, 1:]
    votes = np.array([np.bincount(truth[row], minlength=K).argmax() for row in neighbours])
    assert (votes == truth).mean() > 0.9

    flat = project(vectors, "pca")
    assert flat.shape == (len(vectors), 2) and flat.dtype == np.float32
    assert np.array_equal(flat, project(vectors, "pca"))


def test_projection_small_inputs() -> None:
    vectors, _, _ = make_blobs(n_per=2, n_noise=0)
    assert effective_perplexity(30.0, 10) == pytest.approx(3.0)
    assert effective_perplexity(30.0, 2) == 1.0 and effective_perplexity(5.0, 1000) == 5.0
    for n in (1, 2, 4, 10):
        layout = project(vectors[:n], "tsne")
        assert layout.shape == (n, 2) and np.isfinite(layout).all()
    assert project(vectors[:1], "pca").tolist() == [[0.0, 0.0]]


# ------------------------------------------------------------------------------------------ metrics
def test_metrics_toy_cases() -> None:
    truth = np.array(["cat"] * 6 + ["dog"] * 3 + ["fox"] * 1)
    perfect = evaluate(np.array([2] * 6 + [0] * 3 + [1]), truth)
    assert perfect == {"purity": 1.0, "nmi": pytest.approx(1.0), "ari": pytest.approx(1.0), "noise_fraction": 0.0}

    one = evaluate(np.zeros(10, dtype=int), truth)
    assert one["purity"] == pytest.approx(0.6) and one["ari"] == pytest.approx(0.0) and one["nmi"] == 0.0

    singletons = evaluate(np.arange(10), truth)
    assert singletons["purity"] == 1.0 and singletons["ari"] < 0.1

    # Noise is excluded from purity and reported on its own; it still lowers ARI.
    with_noise = evaluate(np.array([0] * 5 + [-1] + [1] * 3 + [-1]), truth)
    assert with_noise["purity"] == 1.0 and with_noise["noise_fraction"] == pytest.approx(0.2)
    assert with_noise["ari"] < 1.0
    # Mixed clusters: {cat×4, dog×2} and {cat×2, dog×1, fox×1} → (4 + 2) / 10.
    assert purity(np.array([0] * 4 + [1] * 2 + [0] * 2 + [1] * 2), truth) == pytest.approx(0.6)
    assert evaluate(np.full(10, -1), truth)["purity"] is None


def test_silhouette(blobs: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    vectors, truth, _ = blobs
    good = silhouette(vectors, truth, sample_size=500)
    assert good is not None and good > 0.5
    assert good == silhouette(vectors, truth, sample_size=500)
    shuffled = np.random.default_rng(0).permutation(truth)
    bad = silhouette(vectors, shuffled, sample_size=500)
    assert bad is not None and bad < 0.1
    assert silhouette(vectors, np.zeros(len(vectors), dtype=int)) is None
    assert silhouette(vectors, np.where(truth == 0, 0, -1)) is None, "noise is not a second cluster"


# ------------------------------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    ("vectors", "message"),
    [
        (np.zeros((0, 8)), "empty"),
        (np.ones(8), "2-D"),
        (np.array([[1.0, np.nan], [0.0, 1.0]]), "NaN"),
        (np.array([[1.0, 0.0], [0.0, 0.0]]), "zero vector"),
        ([["a", "b"]], "numeric"),
    ],
)
def test_invalid_vectors_are_rejected(vectors: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        cluster(vectors, "hdbscan")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match=message):
        project(vectors, "pca")  # type: ignore[arg-type]


def test_invalid_parameters_are_rejected(blobs: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    vectors, truth, _ = blobs
    cases = [
        (lambda: cluster(vectors, "kmeans"), "n_clusters"),
        (lambda: cluster(vectors, "kmeans", n_clusters=10_000), "n_clusters"),
        (lambda: cluster(vectors, "optics"), "unknown clustering algorithm"),  # type: ignore[arg-type]
        (lambda: cluster(vectors, "dbscan", eps=3.0), "eps"),
        (lambda: cluster(vectors, "dbscan", min_samples=0), "min_samples"),
        (lambda: cluster(vectors[:3], "dbscan", min_samples=5), "min_samples"),
        (lambda: cluster(vectors, "hdbscan", min_cluster_size=1), "min_cluster_size"),
        (lambda: choose_eps(vectors[:2], 1), "at least 3"),
        (lambda: medoids(vectors, truth[:10]), "labels"),
        (lambda: medoids(vectors, truth.astype(float)), "integers"),
        (lambda: match_clusters({}, {}, min_overlap=0), "min_overlap"),
        (lambda: assign_to_nearest(vectors, vectors[:2], max_distance=-1), "max_distance"),
        (lambda: project(vectors, "isomap"), "unknown projection method"),  # type: ignore[arg-type]
        (lambda: project(vectors, "tsne", perplexity=0), "perplexity"),
        (lambda: evaluate(truth, truth[:5]), "labels_pred"),
        (lambda: silhouette(vectors, truth, sample_size=1), "sample_size"),
    ]
    for call, message in cases:
        with pytest.raises(InvalidInput, match=message):
            call()


def test_projection_falls_back_to_sklearn_tsne(monkeypatch: pytest.MonkeyPatch) -> None:
    from ordo.analysis import projection

    monkeypatch.setattr(projection, "has_opentsne", lambda: False)
    vectors, truth, _ = make_blobs(n_per=40, sigma=0.08, n_noise=0, seed=4)
    layout = project(vectors, "tsne", seed=0)
    assert layout.shape == (len(vectors), 2) and layout.dtype == np.float32
    assert np.array_equal(layout, project(vectors, "tsne", seed=0))
    centres_2d = np.stack([layout[truth == k].mean(axis=0) for k in range(K)])
    spread = max(float(np.linalg.norm(layout[truth == k] - centres_2d[k], axis=1).mean()) for k in range(K))
    gaps = np.linalg.norm(centres_2d[:, None] - centres_2d[None], axis=2)[np.triu_indices(K, 1)]
    assert gaps.min() > 2 * spread, "blobs stay apart in 2-D"


# ------------------------------------------------------------------------------------------ issue 15: bad input
@pytest.mark.parametrize("algorithm", ["dbscan", "hdbscan"])
def test_density_methods_keep_a_dense_blob_and_leave_scattered_outliers_as_noise(algorithm: str) -> None:
    """300 points in one tight blob + 15 scattered ones: the reduced space (UMAP) would pack the outliers into a
    cluster of their own; the embeddings' far-out fence keeps them noise."""
    rng = np.random.default_rng(5)
    blob = rng.normal(size=DIM) + rng.normal(scale=0.02, size=(300, DIM))
    vectors = np.vstack([blob, rng.normal(size=(15, DIM))]).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    result = cluster(vectors, algorithm, min_samples=5, min_cluster_size=5)  # type: ignore[arg-type]
    assert (result.labels[300:] == -1).sum() >= 12
    assert (result.labels[:300] == -1).mean() < 0.05 and result.n_clusters >= 1


@pytest.mark.parametrize("algorithm", ["dbscan", "hdbscan"])
@pytest.mark.parametrize("count", [2, 10, 60])
def test_density_methods_on_tiny_and_identical_collections(algorithm: str, count: int) -> None:
    """A few images, or many identical ones (nothing to reduce): a result, never an error. DBSCAN makes 10+
    identical images one cluster; HDBSCAN (scikit-learn's) calls a set of zero distances noise — a known
    limitation, pinned here so a change is noticed (the default, Leiden, makes them one cluster)."""
    same = np.tile(np.ones(DIM, dtype=np.float32) / np.sqrt(DIM), (count, 1))
    if algorithm == "dbscan" and count < 3:  # no k-distance curve to take a knee from: a clear refusal
        with pytest.raises(InvalidInput, match="at least 3 vectors"):
            cluster(same, algorithm, min_samples=2)  # type: ignore[arg-type]
        return
    result = cluster(same, algorithm, min_samples=2, min_cluster_size=2)  # type: ignore[arg-type]
    assert result.labels.shape == (count,)
    if algorithm == "dbscan" and count >= 10:
        assert result.n_clusters == 1 and result.noise_fraction == 0.0
    if algorithm == "hdbscan":
        assert result.n_clusters == 0 and result.noise_fraction == 1.0
    few = make_blobs(n_per=2, n_noise=0)[0][:count]
    assert cluster(few, algorithm, min_samples=2, min_cluster_size=2).labels.shape == (few.shape[0],)  # type: ignore[arg-type]
