"""At most ``MAX_GROUPS`` top-level groups: the closest groups merged when modularity finds more.

Why: the top level is what a person browses first (group chips in the UI, ``ordo clusters RUN --groups``), and a
library of 100k images should show about 10–30 of them (issue 15). Modularity at resolution 1 finds that many
on real photo libraries (ordo-lite: 8 on cifar10-2k, 19 on flickr8k's 7,000 photos, 20 on those four sets
together, 10,793 images), but it never joins two parts of the k-NN graph that have no edge between them, so a
library made of many separate themes (the 100k bench's 50 synthetic blobs: 50 groups) gets one group per theme,
however many there are.

How: the groups become the nodes of a graph whose edge weights are the k-NN graph's total weight between them
(each group's own weight as a self-loop, so every node keeps its strength and modularity is the same number on
both graphs). Clauset–Newman–Moore's greedy agglomeration (igraph's ``community_fastgreedy``) then merges, at
each step, the pair whose merge costs the least modularity, and the dendrogram is cut at ``MAX_GROUPS``: the
partition with at most that many groups that greedy merging keeps closest to the modularity optimum.
Parts of the graph with no edge between them (separate themes) are first linked, each to the part holding the
group whose centroid is most similar to one of its own, by an edge of negligible weight: merging along such a
link costs only the expected-edges term, so linked groups merge first, and among unlinked ones the smallest
pairs merge first (it costs ``s_a · s_b``), which keeps the merged groups balanced.

The leaves are not touched: they were found inside the modularity groups and stay in one merged group each.
Only the default resolution is capped; a caller who sets ``resolution`` asked for that scale and gets it.
"""

from __future__ import annotations

import numpy as np

from ordo.analysis.vectors import NOISE

MAX_GROUPS = 30
_CHUNK = 1024
_LINK_WEIGHT = 1e-9  # relative to the graph's total weight: links unconnected parts without adding real edges


def merge_map(graph: object, top: np.ndarray, space: np.ndarray, max_groups: int = MAX_GROUPS) -> np.ndarray:
    """For each group id ``0..top.max()`` its merged group (``0..max_groups-1``); the identity when few enough.

    ``graph`` is the weighted igraph whose vertices are ``top``'s points, ``space`` their coordinates (rows as
    ``top``). Ids of groups that hold no point map to themselves and are never read.
    """
    count = int(top.max()) + 1 if top.size and (top != NOISE).any() else 0
    used = np.unique(top[top != NOISE])
    if used.size <= max_groups:
        return np.arange(count, dtype=np.int64)
    kept = np.flatnonzero(top != NOISE)
    node_of = np.searchsorted(used, top[kept])  # each kept point's group as a node 0..G-1
    groups = graph.induced_subgraph(kept.tolist())  # type: ignore[attr-defined]
    groups.contract_vertices(node_of.tolist(), combine_attrs=None)
    groups.simplify(multiple=True, loops=False, combine_edges={"weight": "sum"})
    _link_parts(groups, _centres(space[kept], node_of, used.size))
    dendrogram = groups.community_fastgreedy(weights="weight")
    merged = np.asarray(dendrogram.as_clustering(max_groups).membership, dtype=np.int64)
    out = np.arange(count, dtype=np.int64)
    out[used] = merged
    return out


def _centres(points: np.ndarray, node_of: np.ndarray, count: int) -> np.ndarray:
    sums = np.zeros((count, points.shape[1]), dtype=np.float64)
    np.add.at(sums, node_of, points)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return sums / np.where(norms > 1e-12, norms, 1.0)


def _link_parts(groups: object, centres: np.ndarray) -> None:
    """Join the graph's connected parts (Borůvka rounds): each part to the part of its most similar group.

    Similarities are computed a block of rows at a time, so memory stays ``O(CHUNK x groups)`` however many
    groups there are (a k-NN graph's parts have at least k + 1 points, so up to n / 16 of them).
    """
    total = float(np.sum(groups.es["weight"])) if groups.ecount() else 1.0  # type: ignore[attr-defined]
    count = centres.shape[0]
    while True:
        part = np.asarray(groups.connected_components().membership)  # type: ignore[attr-defined]
        if part.max() == 0:
            return
        best = np.full(count, -np.inf)  # per group: its most similar group in another part
        partner = np.zeros(count, dtype=np.int64)
        for start in range(0, count, _CHUNK):
            block = centres[start : start + _CHUNK] @ centres.T
            block[part[start : start + _CHUNK, None] == part[None, :]] = -np.inf
            partner[start : start + _CHUNK] = np.argmax(block, axis=1)
            best[start : start + _CHUNK] = block[np.arange(block.shape[0]), partner[start : start + _CHUNK]]
        order = np.lexsort((-best, part))  # by part, most similar first
        first = order[np.r_[True, part[order][1:] != part[order][:-1]]]  # each part's group with the best link
        links = {(min(a, b), max(a, b)) for a, b in zip(first.tolist(), partner[first].tolist(), strict=True)}
        groups.add_edges(sorted(links), attributes={"weight": [total * _LINK_WEIGHT] * len(links)})  # type: ignore[attr-defined]
