"""The default clustering's graph without JIT: cell-probe neighbours, UMAP's fuzzy weights in NumPy, igraph's Leiden.

The fuzzy weights are compared with UMAP's own ``fuzzy_simplicial_set`` on the same neighbours (the reference
they replace); the approximate path (above ``LARGE_N``) and the out-of-sample path (above ``GRAPH_MAX``) run on
blobs with the thresholds lowered, so every expectation is unambiguous and the test stays small.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from ordo.analysis import graph_clustering, large_scale
from ordo.analysis.knn_graph import CellNeighbours, fuzzy_union
from ordo.analysis.metrics import evaluate


def _blobs(n: int, k: int, dim: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, dim))
    truth = rng.integers(0, k, size=n)
    x = centres[truth] + 0.25 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), truth


def test_fuzzy_union_matches_umaps_fuzzy_simplicial_set() -> None:
    from sklearn.neighbors import NearestNeighbors
    from umap.umap_ import fuzzy_simplicial_set

    x, _ = _blobs(400, 4)
    distances, indices = NearestNeighbors(n_neighbors=16).fit(x).kneighbors(x)
    distances = distances.astype(np.float32)
    rows, cols, weights = fuzzy_union(indices.astype(np.int64), distances.astype(np.float64))
    ours = np.zeros((400, 400))
    ours[rows, cols] = weights
    reference = fuzzy_simplicial_set(
        np.zeros((400, 1), dtype=np.float32), 16, 0, "euclidean", knn_indices=indices, knn_dists=distances
    )[0]
    theirs = np.triu(np.asarray(reference.todense()), k=1)  # pyright: ignore[reportAttributeAccessIssue]
    assert (ours > 0).sum() == (theirs > 0).sum()
    np.testing.assert_allclose(ours, theirs, atol=1e-4)


def test_cell_graph_finds_the_true_neighbours_on_clustered_data() -> None:
    from sklearn.neighbors import NearestNeighbors

    x, _ = _blobs(3000, 10)
    indices, distances = CellNeighbours(x, seed=0).graph(15)
    assert indices.shape == (3000, 16) and (indices[:, 0] == np.arange(3000)).all()
    assert (np.diff(distances, axis=1) >= -1e-6).all()  # nearest first
    _, exact = NearestNeighbors(n_neighbors=16).fit(x).kneighbors(x)
    recall = np.mean([len(set(a[1:]) & set(b[1:])) / 15 for a, b in zip(indices, exact, strict=True)])
    assert recall >= 0.9
    near, _ = CellNeighbours(x, seed=0).query(x[:5], k=3)
    assert (near[:, 0] == np.arange(5)).all()  # a point's nearest indexed item is itself


def test_leiden_is_seeded_and_leaves_igraphs_generator_as_it_was() -> None:
    x, _ = _blobs(600, 5)
    similarity, indices = graph_clustering.knn_graph(x, 15)
    graph = graph_clustering.fuzzy_graph(indices, similarity)
    first = graph_clustering.leiden(graph, 1.0, seed=3)
    random.seed(123)
    expected = random.random()
    random.seed(123)
    again = graph_clustering.leiden(graph, 1.0, seed=3)
    assert random.random() == expected  # the process-wide generator was not consumed by the call
    assert (first == again).all()


def test_approximate_and_out_of_sample_paths_recover_the_blobs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Above LARGE_N the graph is the cell search's on the PCA projection; above GRAPH_MAX the rest are placed
    through the sample's cell index. Thresholds lowered so both run on 2,000 points."""
    x, truth = _blobs(2000, 6, dim=96)
    monkeypatch.setattr(large_scale, "LARGE_N", 500)
    monkeypatch.setattr(graph_clustering, "GRAPH_MAX", 1200)
    tree = graph_clustering.hierarchical_leiden(x, seed=0)
    groups = np.where(tree.labels >= 0, tree.leaf_groups[np.maximum(tree.labels, 0)], -1)
    assert (tree.labels >= 0).mean() > 0.95
    assert (evaluate(groups, truth)["nmi"] or 0.0) > 0.9
