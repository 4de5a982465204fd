"""The default clustering: Leiden communities on the k-nearest-neighbour graph, in two levels.

Why a graph and not density: on the embeddings of a real model (ordo-lite, and CLIP alike) classes are not
islands of high density separated by empty space; they are overlapping lobes of one continuous cloud. DBSCAN
then finds one cluster (any eps that links a class links them all) and HDBSCAN finds a few dense cores and
calls most points noise (``ordo eval clustering`` measured NMI 0.06 for HDBSCAN on cifar10-2k). Community
detection asks a different question — which points are more connected to each other than to the rest — which
needs no density gap, no k, and labels every point. This is what single-cell analysis (Scanpy, Seurat) settled
on for the same kind of data: a k-NN graph, then Leiden (Traag, Waltman & van Eck 2019; igraph's C
implementation, see :func:`leiden`), which guarantees connected communities where Louvain does not.

How the levels are chosen (no user knob needed):

* **Groups** (the top level): the partition of the k-NN graph that maximises *modularity* (resolution γ = 1,
  the parameter-free objective; ``resolution`` scales it). Measured with ordo-lite on cifar10-2k: 8–9 groups
  for 10 classes, NMI 0.37 against k-means-with-the-true-k's 0.36 (README, "Analysis").
* **Leaves** (the clusters written into the index, matched across runs, renamed by users): modularity again,
  inside each group (Leiden on the group's induced subgraph) — the recursive scheme of hierarchical Leiden
  (graspologic). Sub-communities under ``min_cluster_size`` join the group's leaf nearest to them.
* **At most 30 groups** at the default resolution (``group_cap``): modularity never joins parts of the graph
  with no edge between them, so a library of many separate themes would show one group per theme, however
  many; more than ``MAX_GROUPS`` are merged greedily by modularity after the leaves were found inside them.
* **Stability** is reported, not tuned: the adjusted Rand index between the modularity groups (before any
  merge) of two seeds (a partition that reflects structure does not depend on the seed; Lange et al. 2004).
  1.0 = the same partition.

Edge weights are UMAP's fuzzy simplicial set (computed in NumPy by ``knn_graph.fuzzy_union``, as UMAP does):
each point's neighbour distances are rescaled by its own local scale, so dense and sparse regions weigh alike.
On cifar10-2k it kept the largest group under twice the largest class where plain similarity weights did not
(378–408 vs 317–368 images for a 200-image class, two seeds).

Noise: every point belongs to a community, so noise is only what is clearly apart: a point whose distance to
its k-th neighbour is beyond Tukey's far-out fence (Q3 + 3·IQR of all k-distances) — a scattered outlier next
to a dense blob — or a community smaller than ``min_cluster_size``. On cifar10-2k that is a few percent.

Limitation: modularity cuts even a structureless blob into a few parts (a random k-NN graph has modularity
well above 0); those parts are then neighbours on the map and in the group list, not wrong answers.

Scale: the graph is built exactly on the embeddings themselves up to ``large_scale.LARGE_N`` points; above that
by cell probing on the 64-d projection (``large_scale.reduce``; see ``knn_graph``), and above ``GRAPH_MAX`` on a
seeded sample of ``GRAPH_MAX`` points, every other point joining the cluster most of its ``ASSIGN_NEIGHBOURS``
nearest sampled points (found through the sample's cell index) belong to (out-of-sample extension, as for
t-SNE in ``large_scale``). See the README's analysis section for measurements.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ordo.analysis import large_scale
from ordo.analysis.group_cap import MAX_GROUPS, merge_map
from ordo.analysis.knn_graph import CellNeighbours, fuzzy_union
from ordo.errors import InvalidInput, Reason

log = logging.getLogger(__name__)

NOISE = -1
K_NEIGHBOURS = 15  # the usual k for a k-NN graph of embeddings (UMAP's and Scanpy's default)
GRAPH_MAX = 200_000  # above this many points the graph is built on a sample (see module docstring)
ASSIGN_NEIGHBOURS = 5
STABILITY_SAMPLE = 20_000  # above this many nodes stability is measured on an induced subgraph
OUTLIER_FENCE = 3.0  # Tukey's far-out fence: Q3 + 3·IQR
MIN_RESOLUTION, MAX_RESOLUTION = 0.01, 50.0

Progress = Callable[[str], None]
_RNG_LOCK = threading.Lock()  # igraph's random number generator is process-wide (see leiden)


@dataclass(frozen=True, eq=False)
class Hierarchy:
    """Leaf labels per point (canonical order not applied here; -1 = noise) and the group of every leaf."""

    labels: np.ndarray  # int64 per point, raw leaf ids 0..L-1, -1 noise
    leaf_groups: np.ndarray  # int64 per leaf 0..L-1: its group 0..G-1
    resolution: float  # the groups' resolution
    group_stability: float  # ARI between the groups of two seeds


def knn_graph(unit: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """See :func:`_knn_graph_and_index`; the graph alone."""
    similarity, indices, _ = _knn_graph_and_index(unit, k)
    return similarity, indices


def _knn_graph_and_index(unit: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, object | None]:
    """k nearest neighbours (excluding the point itself): (cosine similarities, indices), each ``(n, k)``.

    Exact up to ``large_scale.LARGE_N`` points: brute force in float32 through scikit-learn's chunked GEMM path
    (euclidean on unit vectors is monotone in cosine, see ``clustering``). Above that, approximate, by cell probing
    (``knn_graph.CellNeighbours``): the exact search is quadratic and its per-row partial sort over all n
    distances dominated the 100k run (46 s of the graph step under load); NN-descent (``pynndescent``), used
    before, computed the 100k graph in 5 s but compiled for 104 s first in every process (numba); and a
    community partition does not need the exact 15th neighbour. The third value is the cell index (``None``
    for the exact path), reused to place out-of-sample points.
    """
    n = unit.shape[0]
    k = min(k, n - 1)
    nnd = None
    if n > large_scale.LARGE_N:
        nnd = CellNeighbours(unit, seed=0)
        indices, distances = nnd.graph(k)
    else:
        from sklearn.neighbors import NearestNeighbors

        distances, indices = NearestNeighbors(n_neighbors=k + 1, algorithm="brute").fit(unit).kneighbors(unit)
    # Drop each point's own entry (distance 0); with duplicates it may not be in column 0, so remove by identity.
    own = indices == np.arange(n)[:, None]
    keep = ~own
    # rows where the point itself was not returned (more than k+1 exact duplicates): drop the last column instead
    missing = ~own.any(axis=1)
    keep[missing, -1] = False
    # a row that returned itself twice (approximate search) keeps k entries: drop its extra copies from the end
    extra = keep.sum(axis=1) - k
    for row in np.flatnonzero(extra > 0):
        drop = np.flatnonzero(keep[row])[-extra[row] :]
        keep[row, drop] = False
    indices = indices[keep].reshape(n, k)
    distances = distances[keep].reshape(n, k)
    similarity = 1.0 - (distances.astype(np.float64) ** 2) / 2.0
    return similarity, indices, nnd


def fuzzy_graph(indices: np.ndarray, similarity: np.ndarray) -> object:
    """Undirected weighted igraph of the k-NN links, weighted by UMAP's fuzzy union (see module docstring)."""
    import igraph as ig

    n = indices.shape[0]
    # UMAP wants each point as its own first neighbour (distance 0), then the k others.
    knn_indices = np.hstack([np.arange(n)[:, None], indices]).astype(np.int64)
    distances = np.sqrt(np.clip(2.0 - 2.0 * similarity, 0.0, None))  # euclidean on unit vectors
    knn_dists = np.hstack([np.zeros((n, 1)), distances]).astype(np.float32).astype(np.float64)
    rows, cols, weights = fuzzy_union(knn_indices, knn_dists)
    result = ig.Graph(n=n, edges=np.column_stack([rows, cols]).tolist(), directed=False)
    result.es["weight"] = np.maximum(weights, 1e-9).tolist()
    return result


def leiden(graph: object, resolution: float, seed: int) -> np.ndarray:
    """Leiden communities maximising modularity with a resolution, as int64 labels.

    igraph's own C implementation (``Graph.community_leiden``, objective "modularity"), not ``leidenalg``'s:
    the same algorithm (Traag et al. 2019) and objective (``leidenalg``'s RB configuration model is modularity
    with a resolution), measured several times faster on the 100k bench graph (README, "Scale"). igraph draws
    its random numbers from a process-wide generator, so a seeded ``random.Random`` is installed for the call
    under a lock (concurrent runs would otherwise interleave their draws and lose determinism).
    """
    import random

    import igraph as ig

    with _RNG_LOCK:
        ig.set_random_number_generator(random.Random(seed))
        try:
            clusters = graph.community_leiden(  # type: ignore[attr-defined]
                objective_function="modularity",
                weights="weight",
                resolution=resolution,
                n_iterations=2,  # as leidenalg's default: until convergence took 6x longer (100k: 12 passes)
            )
        finally:
            ig.set_random_number_generator(random)
    return np.asarray(clusters.membership, dtype=np.int64)


def _stability(graph: object, resolution: float, seed: int, top: np.ndarray) -> float:
    """ARI between the groups of two seeds; above ``STABILITY_SAMPLE`` nodes on a seeded induced subgraph.

    On the whole graph the second Leiden run cost as much as the groups themselves (12 s of the 100k run);
    the seed sensitivity of the optimiser on a 20k-node induced subgraph (both seeds on the same subgraph)
    answers the same question for a fraction of it.
    """
    from sklearn.metrics import adjusted_rand_score

    n = graph.vcount()  # type: ignore[attr-defined]
    if n <= STABILITY_SAMPLE:
        return float(adjusted_rand_score(top, leiden(graph, resolution, seed + 1)))
    nodes = large_scale.sample_rows(n, STABILITY_SAMPLE, seed)
    sub = graph.induced_subgraph(nodes.tolist())  # type: ignore[attr-defined]
    return float(adjusted_rand_score(leiden(sub, resolution, seed), leiden(sub, resolution, seed + 1)))


def far_out_points(similarity: np.ndarray) -> np.ndarray:
    """Points whose k-th neighbour is beyond Tukey's far-out fence of all k-distances (see module docstring)."""
    k_dist = 1.0 - similarity[:, -1]
    q1, q3 = np.percentile(k_dist, [25, 75])
    fence = q3 + OUTLIER_FENCE * (q3 - q1)
    return k_dist > max(fence, 1e-6)


def _subclusters(graph: object, members: np.ndarray, space: np.ndarray, min_size: int, seed: int) -> np.ndarray:
    """Leaves inside one group: Leiden at modularity on its induced subgraph; tiny ones join the nearest leaf."""
    if members.size < 2 * min_size:
        return np.zeros(members.size, dtype=np.int64)
    sub = graph.induced_subgraph(members.tolist())  # type: ignore[attr-defined]
    raw = leiden(sub, 1.0, seed)
    sizes = np.bincount(raw)
    big = np.flatnonzero(sizes >= min_size)
    if big.size <= 1:
        return np.zeros(members.size, dtype=np.int64)
    points = space[members]
    centres = np.stack([points[raw == b].mean(axis=0) for b in big])
    small = ~np.isin(raw, big)
    out = np.searchsorted(big, np.where(small, big[0], raw))
    if small.any():
        out[small] = np.argmax(points[small] @ centres.T, axis=1)
    return out.astype(np.int64)


def hierarchical_leiden(
    unit: np.ndarray,
    *,
    resolution: float = 1.0,
    min_cluster_size: int = 5,
    k: int = K_NEIGHBOURS,
    seed: int = 0,
    max_groups: int | None = MAX_GROUPS,
    progress: Progress | None = None,
) -> Hierarchy:
    """Groups and their leaves (noise = far-out points and groups under ``min_cluster_size``).

    ``unit`` must be validated, L2-normalised float32 rows (``vectors.as_unit_vectors``). More than
    ``max_groups`` modularity groups are merged down to that many (``group_cap``; ``None``: never), after the
    leaves were found inside them.
    """
    if not (MIN_RESOLUTION <= resolution <= MAX_RESOLUTION):
        raise InvalidInput(
            f"resolution must be in [{MIN_RESOLUTION}, {MAX_RESOLUTION}], got {resolution}",
            reason=Reason.BAD_RESOLUTION,
        )
    n = unit.shape[0]
    if n <= 2:  # nothing to split: one group, one leaf
        return Hierarchy(np.zeros(n, dtype=np.int64), np.zeros(1, dtype=np.int64), resolution, 1.0)
    say = progress or (lambda _m: None)
    space = large_scale.reduce(unit, seed) if n > large_scale.LARGE_N else unit
    rows = large_scale.sample_rows(n, GRAPH_MAX, seed)
    m = rows.size
    say(f"k-NN graph of {m:,} points")
    similarity, indices, nn_index = _knn_graph_and_index(space[rows], k)
    graph = fuzzy_graph(indices, similarity)
    say("Leiden groups")
    top = leiden(graph, resolution, seed)
    stability = _stability(graph, resolution, seed, top)
    min_size = min(min_cluster_size, max(2, m // 20))
    sizes = np.bincount(top)
    top = np.where(sizes[top] >= min_size, top, NOISE)
    if m >= 20:
        top[far_out_points(similarity)] = NOISE
    say("Leiden leaves inside each group")
    leaves = np.full(m, NOISE, dtype=np.int64)
    leaf_groups: list[int] = []
    for g_index, g in enumerate(np.unique(top[top != NOISE]).tolist()):
        members = np.flatnonzero(top == g)
        sub = _subclusters(graph, members, space[rows], min_size, seed)
        leaves[members] = sub + len(leaf_groups)
        leaf_groups.extend([g_index] * (int(sub.max()) + 1))
    if max_groups is not None and leaf_groups:
        dense = np.full(m, NOISE, dtype=np.int64)  # groups numbered as leaf_groups numbers them
        dense[top != NOISE] = np.searchsorted(np.unique(top[top != NOISE]), top[top != NOISE])
        leaf_groups = merge_map(graph, dense, space[rows], max_groups)[leaf_groups].tolist()
    labels = leaves
    if m < n:
        say(f"assigning {n - m:,} points to their nearest sampled neighbours")
        labels = _assign_out_of_sample(space, rows, leaves, nn_index)
    return Hierarchy(labels.astype(np.int64), np.asarray(leaf_groups, dtype=np.int64), resolution, stability)


def _assign_out_of_sample(space: np.ndarray, rows: np.ndarray, sample_labels: np.ndarray, index: object) -> np.ndarray:
    """Every point not in the sample takes the majority label of its nearest sampled points (noise included).

    The neighbours come from the sample's cell index (``index.query``): an exact search of 800k queries
    against a 200k sample sorts 200k distances per query, which is what kept the first 1M run from finishing.
    """
    n = space.shape[0]
    labels = np.full(n, NOISE, dtype=np.int64)
    labels[rows] = sample_labels
    rest = np.setdiff1d(np.arange(n), rows, assume_unique=True)
    if index is None:  # only reached when the sample was small enough for the exact graph
        from sklearn.neighbors import NearestNeighbors

        exact = NearestNeighbors(n_neighbors=ASSIGN_NEIGHBOURS, algorithm="brute").fit(space[rows])

        def nearest_of(points: np.ndarray) -> np.ndarray:
            return exact.kneighbors(points, return_distance=False)
    else:

        def nearest_of(points: np.ndarray) -> np.ndarray:
            return index.query(points, k=ASSIGN_NEIGHBOURS)[0]  # type: ignore[attr-defined]

    width = int(sample_labels.max()) + 2
    for start in range(0, rest.size, 50_000):  # bounded memory: one chunk's neighbours at a time
        chunk = rest[start : start + 50_000]
        votes = sample_labels[nearest_of(space[chunk])] + 1  # noise → 0
        counts = np.zeros((chunk.size, width), dtype=np.int32)
        np.add.at(counts, (np.repeat(np.arange(chunk.size), votes.shape[1]), votes.ravel()), 1)
        labels[chunk] = counts.argmax(axis=1) - 1
    return labels
