"""At most 30 top-level groups at the default resolution (``ordo.analysis.group_cap``), leaves untouched.

Separate blobs are the case that needs it: modularity never joins parts of the k-NN graph with no edge between
them, so 50 blobs give 50 groups at resolution 1.
"""

from __future__ import annotations

import time

import igraph as ig
import numpy as np

from ordo.analysis.clustering import cluster
from ordo.analysis.group_cap import MAX_GROUPS, merge_map


def _separate_blobs(count: int, per: int, dim: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(count, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    truth = np.repeat(np.arange(count), per)
    x = centres[truth] + 0.02 * rng.normal(size=(count * per, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), truth


def _point_groups(result: object) -> np.ndarray:
    labels, leaf_groups = result.labels, result.leaf_groups  # type: ignore[attr-defined]
    return np.where(labels >= 0, leaf_groups[np.maximum(labels, 0)], -1)


def test_fifty_separate_blobs_become_thirty_groups_of_whole_blobs_with_the_same_leaves() -> None:
    x, truth = _separate_blobs(50, 40)
    capped = cluster(x, "leiden")
    uncapped = cluster(x, "leiden", resolution=1.0)  # a caller's own resolution is not capped
    groups, fine = _point_groups(capped), _point_groups(uncapped)
    assert np.unique(fine[fine >= 0]).size == 50
    assert np.unique(groups[groups >= 0]).size == MAX_GROUPS
    np.testing.assert_array_equal(capped.labels, uncapped.labels)  # the leaves are the same partition
    for blob in range(50):  # a merge joins whole blobs, never splits one
        assert np.unique(groups[(truth == blob) & (groups >= 0)]).size == 1
    blobs_per_group = np.bincount(groups[groups >= 0]) / 40
    assert blobs_per_group.max() <= 3  # smallest pairs merge first, so no group swallows the rest


def test_linked_groups_merge_before_groups_joined_only_by_their_centroids() -> None:
    # 32 groups of 5 points, each a clique; groups 2i and 2i+1 share one edge. Their centroids are random, so
    # centroid similarity alone would pair them differently.
    rng = np.random.default_rng(1)
    size, count = 5, 32
    edges, weights = [], []
    for g in range(count):
        members = range(g * size, (g + 1) * size)
        edges += [(a, b) for a in members for b in members if a < b]
    weights = [1.0] * len(edges)
    for pair in range(count // 2):
        edges.append((2 * pair * size, (2 * pair + 1) * size))
        weights.append(1.0)
    graph = ig.Graph(n=size * count, edges=edges)
    graph.es["weight"] = weights
    top = np.repeat(np.arange(count), size)
    space = np.repeat(rng.normal(size=(count, 16)), size, axis=0)
    merged = merge_map(graph, top, space, max_groups=count // 2)
    assert np.unique(merged).size == count // 2
    for pair in range(count // 2):
        assert merged[2 * pair] == merged[2 * pair + 1]


def test_few_groups_and_noise_are_left_alone() -> None:
    graph = ig.Graph(n=6, edges=[(0, 1), (2, 3), (4, 5)])
    graph.es["weight"] = [1.0, 1.0, 1.0]
    np.testing.assert_array_equal(merge_map(graph, np.array([0, 0, 1, 1, -1, -1]), np.eye(6)), [0, 1])
    assert merge_map(graph, np.full(6, -1), np.eye(6)).size == 0


def test_below_the_cap_the_groups_are_the_modularity_groups() -> None:
    # below the cap nothing changes: a few blobs give exactly the modularity groups, capped or not
    x, _ = _separate_blobs(6, 50, seed=3)
    np.testing.assert_array_equal(
        _point_groups(cluster(x, "leiden")), _point_groups(cluster(x, "leiden", resolution=1.0))
    )


def test_thousands_of_unlinked_groups_merge_in_bounded_time_and_memory() -> None:
    # 4,000 separate pairs of points: every group is its own part of the graph, the worst case for linking
    count = 4000
    graph = ig.Graph(n=2 * count, edges=[(2 * g, 2 * g + 1) for g in range(count)])
    graph.es["weight"] = [1.0] * count
    top = np.repeat(np.arange(count), 2)
    space = np.random.default_rng(2).normal(size=(2 * count, 64))
    started = time.perf_counter()
    merged = merge_map(graph, top, space)
    assert time.perf_counter() - started < 20
    sizes = np.bincount(merged)
    assert sizes.size == MAX_GROUPS and sizes.max() <= 2 * count / MAX_GROUPS  # balanced: smallest pairs first
