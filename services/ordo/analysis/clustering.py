"""Clustering of L2-normalised embeddings on cosine distance.

Why euclidean under the hood: for unit vectors ``||a - b||² = 2 - 2·cos(a, b) = 2·d_cos``, so
``d_euclid = sqrt(2·d_cos)`` is a monotone function of the cosine distance and every neighbourhood query gives
the same answer in either metric once the radius is converted. scikit-learn has fast paths only for euclidean:
a k-d/ball tree in low dimensions and, for embedding-sized vectors (d > 15, where trees stop pruning), its
chunked, multi-threaded GEMM-based "pairwise distances reduction" (``RadiusNeighbors``/``ArgKmin``), which also
runs in float32. ``metric="cosine"`` is served by none of these: it falls back to the generic brute-force
``pairwise_distances_chunked`` path (float64 cosine blocks filtered in numpy). So the public API speaks cosine
distance (what the proto's ``ClusteringParams.eps`` means) and this module converts at the sklearn boundary.

Labels are canonical: clusters are numbered 0, 1, ... by decreasing size (ties: the cluster whose first member
comes first), and ``-1`` is noise. Two runs on the same input therefore give identical label arrays.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.optimize import linear_sum_assignment

from ordo.analysis import density_space, large_scale
from ordo.analysis.graph_clustering import Hierarchy, hierarchical_leiden
from ordo.analysis.group_cap import MAX_GROUPS
from ordo.analysis.vectors import NOISE, as_labels, as_unit_vectors
from ordo.errors import InvalidInput, Reason

Algorithm = Literal["leiden", "dbscan", "hdbscan", "kmeans"]
ALGORITHMS: tuple[str, ...] = ("leiden", "dbscan", "hdbscan", "kmeans")

# choose_eps queries the k-distance of at most this many points (against all points): the curve's shape, and so
# its knee, is a property of the distribution, and a 10k sample estimates it well while bounding the cost.
EPS_SAMPLE_SIZE = 10_000

# HDBSCAN with algorithm="brute" builds full n×n matrices (10k 512-d points: 1.8 GB peak RSS) but is ~15×
# faster than sklearn's k-d/ball trees on 512-d embeddings, where trees barely prune (2 cores: 5k points 1 s vs
# 15 s; 10k points 4.4 s vs 66 s, same labels). Above this size the trees' O(n) memory wins: slow, but it fits.
HDBSCAN_BRUTE_MAX = 10_000


@dataclass(frozen=True, eq=False)
class ClusteringResult:
    """What one clustering run produced.

    ``eq=False``: the dataclass holds a numpy array, for which ``==`` is element-wise, so generated equality
    would be ambiguous; compare ``labels`` with ``np.array_equal`` instead.
    """

    labels: np.ndarray  # int64, one per input vector, canonical (see module docstring); -1 = noise
    eps_used: float | None  # DBSCAN radius in cosine distance (given or chosen); None for other algorithms
    n_clusters: int
    noise_fraction: float
    seconds: float
    # Two-level runs (leiden): the group 0..G-1 of each leaf label 0..k-1 (canonical: by decreasing size), and
    # how the resolutions were chosen (see ordo.analysis.graph_clustering). None for single-level algorithms.
    leaf_groups: np.ndarray | None = None
    resolution: float | None = None
    group_stability: float | None = None


def _cos_to_euclid(d_cos: float) -> float:
    return float(np.sqrt(2.0 * d_cos))


def _canonical(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters 0.. by decreasing size, ties broken by first occurrence; keep -1 for noise."""
    out = np.full(labels.shape, NOISE, dtype=np.int64)
    clustered = labels != NOISE
    if not clustered.any():
        return out
    values, first, counts = np.unique(labels[clustered], return_index=True, return_counts=True)
    order = np.lexsort((first, -counts))  # primary key: size descending; then first occurrence
    mapping = {int(values[i]): rank for rank, i in enumerate(order)}
    out[clustered] = np.fromiter((mapping[int(v)] for v in labels[clustered]), dtype=np.int64)
    return out


# ------------------------------------------------------------------------------------------ eps
def choose_eps(vectors: np.ndarray, min_samples: int, *, sample_size: int = EPS_SAMPLE_SIZE, seed: int = 0) -> float:
    """DBSCAN radius (cosine distance) at the knee of the k-distance curve, k = ``min_samples``.

    Why this curve: DBSCAN calls a point *core* when at least ``min_samples`` points (itself included, as in
    scikit-learn) lie within eps. So each point's distance to its ``min_samples``-th nearest point counting
    itself — its k-distance — is exactly the smallest eps that makes it core. Sorted ascending, the curve is flat
    across points inside dense regions and turns sharply upward at the sparse ones (noise); an eps at the turn
    makes the dense points core and leaves the sparse ones out (Ester et al. 1996, the original heuristic).

    Why the chord: the knee is taken Kneedle-style as the point of the curve farthest below the straight line
    joining its first and last points, with both axes scaled to [0, 1] so the answer does not depend on units
    or on n. It needs no smoothing or sensitivity parameter, and with exact neighbours and ``argmax`` taking the
    first maximum it is deterministic.

    At most ``sample_size`` points (a seeded sample) are *queried*, each against *all* points, so the sampled
    k-distances are exact and distributed like the full curve; this bounds the cost on large collections.
    """
    unit = as_unit_vectors(vectors)
    n = unit.shape[0]
    if min_samples < 1:
        raise InvalidInput(f"min_samples must be >= 1, got {min_samples}")
    if n < 3:
        raise InvalidInput(f"choose_eps needs at least 3 vectors to find a knee, got {n}")
    if min_samples > n:
        raise InvalidInput(f"min_samples ({min_samples}) exceeds the number of vectors ({n})")
    if sample_size < 3:
        raise InvalidInput(f"sample_size must be >= 3, got {sample_size}")
    from sklearn.neighbors import NearestNeighbors

    queries = unit
    if n > sample_size:
        rng = np.random.default_rng(seed)
        queries = unit[np.sort(rng.choice(n, size=sample_size, replace=False))]
    index = NearestNeighbors(n_neighbors=min_samples, metric="euclidean").fit(unit)
    # Querying the fitted points themselves returns each point as its own first neighbour (distance 0), which is
    # what DBSCAN's "itself included" count wants; the last column is the k-distance.
    distances, _ = index.kneighbors(queries, n_neighbors=min_samples)
    k_dist = np.sort((distances[:, -1].astype(np.float64) ** 2) / 2.0)  # euclidean → cosine distance
    if k_dist[-1] <= k_dist[0]:  # flat curve (e.g. duplicates only): any eps covering it will do
        return float(max(k_dist[-1], 1e-6))
    x = np.linspace(0.0, 1.0, k_dist.size)
    y = (k_dist - k_dist[0]) / (k_dist[-1] - k_dist[0])
    knee = int(np.argmax(x - y))  # chord is y = x; a convex curve lies below it
    return float(max(k_dist[knee], 1e-6))  # eps must be > 0 for sklearn


# ------------------------------------------------------------------------------------------ clustering
def cluster(
    vectors: np.ndarray,
    algorithm: Algorithm,
    *,
    eps: float | None = None,
    min_samples: int = 5,
    min_cluster_size: int = 5,
    n_clusters: int | None = None,
    seed: int = 0,
    resolution: float | None = None,
) -> ClusteringResult:
    """Cluster L2-normalised embeddings on cosine distance.

    - ``leiden`` (the default): leaf communities of the k-NN graph plus top-level groups, resolution 1 unless
      given (see ``ordo.analysis.graph_clustering``); at the default resolution at most ``MAX_GROUPS`` groups
      (``ordo.analysis.group_cap``). Labels every point except far-out outliers and communities
      smaller than ``min_cluster_size``.

    - ``dbscan``: ``eps`` is a cosine distance in (0, 2]; ``None`` (or 0, the proto's "unset") picks it with
      :func:`choose_eps`. Runs sklearn's DBSCAN with euclidean metric and ``eps = sqrt(2·eps_cos)`` on the unit
      vectors (see module docstring for why).
      Without ``eps`` (from 50 points up to ``large_scale.LARGE_N``) it runs in the reduced space of
      ``ordo.analysis.density_space`` (PCA 50 → UMAP 5-d), eps at the knee of the k-distance curve there
      (``eps_used`` is then a euclidean distance in that space): on the raw embeddings no eps separates classes.
    - ``hdbscan``: sklearn's HDBSCAN with ``min_cluster_size`` and ``min_samples`` in the same reduced space
      (the embeddings themselves below 50 points, euclidean on unit vectors = cosine order). Brute force up to
      ``HDBSCAN_BRUTE_MAX`` points, trees above (see that constant).
    - Above ``large_scale.LARGE_N`` points DBSCAN and HDBSCAN run on a 64-d PCA projection with a sample getting
      the exact treatment and every point assigned from it (DBSCAN++; see ``ordo.analysis.large_scale``), so
      100k vectors cluster in seconds instead of many minutes.
    - ``kmeans``: the baseline; needs ``n_clusters``. On unit vectors euclidean k-means approximates spherical
      k-means. It labels every point (no noise).

    ``seed`` fixes k-means initialisation and the eps sample; DBSCAN/HDBSCAN are deterministic anyway.
    ``seconds`` covers eps selection plus fitting, not validation.
    """
    if algorithm not in ALGORITHMS:
        raise InvalidInput(f"unknown clustering algorithm {algorithm!r}; expected one of {', '.join(ALGORITHMS)}")
    unit = as_unit_vectors(vectors)
    n = unit.shape[0]
    if min_samples < 1:
        raise InvalidInput(f"min_samples must be >= 1, got {min_samples}")
    started = time.perf_counter()
    if algorithm == "leiden":
        if min_cluster_size < 1:
            raise InvalidInput(f"min_cluster_size must be >= 1, got {min_cluster_size}")
        tree = hierarchical_leiden(
            unit,
            resolution=resolution or 1.0,
            min_cluster_size=min_cluster_size,
            seed=seed,
            max_groups=None if resolution else MAX_GROUPS,  # a caller's own resolution is not capped
        )
        return _two_level(tree, started, n)
    if algorithm == "dbscan":
        raw, eps_used = _dbscan(unit, eps, min_samples, seed)
        return _result(raw, eps_used, started, n)
    if algorithm == "hdbscan":
        return _result(_hdbscan(unit, min_cluster_size, min_samples, seed), None, started, n)
    return _result(_kmeans(unit, n_clusters, seed), None, started, n)


def _dbscan(unit: np.ndarray, eps: float | None, min_samples: int, seed: int) -> tuple[np.ndarray, float]:
    """Raw DBSCAN labels and the eps used (see :func:`cluster` for the three spaces it may run in)."""
    n = unit.shape[0]
    if eps is not None and eps != 0 and not (0.0 < eps <= 2.0):
        raise InvalidInput(f"eps is a cosine distance and must be in (0, 2], got {eps}")
    if min_samples > n:
        raise InvalidInput(f"min_samples ({min_samples}) exceeds the number of vectors ({n})")
    if n > large_scale.LARGE_N:  # DBSCAN++ in a PCA space (see ordo.analysis.large_scale)
        return large_scale.dbscan_pp(unit, eps or None, min_samples, seed)
    from sklearn.cluster import DBSCAN

    space = density_space.reduce(unit, seed) if not eps else unit
    if space is unit:  # a given eps (cosine, on the embeddings), or too few points to reduce
        eps_used = float(eps) if eps else choose_eps(unit, min_samples, seed=seed)
        return DBSCAN(eps=_cos_to_euclid(eps_used), min_samples=min_samples).fit_predict(unit), eps_used
    # the knee in the reduced space (see ordo.analysis.density_space)
    eps_used = density_space.knee_eps(space, min_samples)
    raw = DBSCAN(eps=eps_used, min_samples=min_samples).fit_predict(space)
    return density_space.far_out_as_noise(raw, unit, min_samples), eps_used


def _hdbscan(unit: np.ndarray, min_cluster_size: int, min_samples: int, seed: int) -> np.ndarray:
    """Raw HDBSCAN labels: exact in the reduced space up to ``large_scale.LARGE_N`` points, sampled above."""
    n = unit.shape[0]
    if min_cluster_size < 2:
        raise InvalidInput(f"min_cluster_size must be >= 2, got {min_cluster_size}")
    if n < 2:
        raise InvalidInput(f"hdbscan needs at least 2 vectors, got {n}")
    if min_cluster_size > n:  # as DBSCAN refuses min_samples > n: no cluster could ever form
        raise InvalidInput(
            f"min_cluster_size ({min_cluster_size}) exceeds the number of vectors ({n})",
            reason=Reason.BAD_MIN_CLUSTER_SIZE,
        )
    if min_samples > n:
        raise InvalidInput(f"min_samples ({min_samples}) exceeds the number of vectors ({n})")
    if n > large_scale.LARGE_N:  # the hierarchy of a sample, in a PCA space (see ordo.analysis.large_scale)
        return large_scale.hdbscan_sampled(unit, min_cluster_size, min_samples, seed)
    from sklearn.cluster import HDBSCAN

    # copy=False: `unit` is already our private copy, so in-place work on it is harmless.
    model = HDBSCAN(
        min_cluster_size=min_cluster_size,
        min_samples=min_samples,
        metric="euclidean",
        algorithm="brute" if n <= HDBSCAN_BRUTE_MAX else "auto",
        copy=False,  # pyright: ignore[reportArgumentType]  # sklearn annotates copy as str; it is a bool
    )
    space = density_space.reduce(unit, seed)
    raw = model.fit_predict(space)
    if space is not unit:
        raw = density_space.far_out_as_noise(raw, unit, min_cluster_size)
    return raw


def _kmeans(unit: np.ndarray, n_clusters: int | None, seed: int) -> np.ndarray:
    n = unit.shape[0]
    if n_clusters is None or n_clusters == 0:
        raise InvalidInput("kmeans needs n_clusters (a positive number of clusters)")
    if not (1 <= n_clusters <= n):
        raise InvalidInput(f"n_clusters must be between 1 and the number of vectors ({n}), got {n_clusters}")
    from sklearn.cluster import KMeans

    # n_init: sklearn annotates it as str ("auto"); an int is documented and accepted
    return KMeans(n_clusters=n_clusters, n_init=4, random_state=seed).fit_predict(unit)  # pyright: ignore[reportArgumentType]


def _result(raw: np.ndarray, eps_used: float | None, started: float, n: int) -> ClusteringResult:
    labels = _canonical(np.asarray(raw, dtype=np.int64))
    seconds = time.perf_counter() - started
    noise = int((labels == NOISE).sum())
    return ClusteringResult(
        labels=labels,
        eps_used=eps_used,
        n_clusters=int(labels.max()) + 1 if noise < n else 0,
        noise_fraction=noise / n,
        seconds=seconds,
    )


def _two_level(tree: Hierarchy, started: float, n: int) -> ClusteringResult:
    """Canonical leaves (by size) and canonical groups (by their members' count), consistently renumbered."""
    raw = np.asarray(tree.labels, dtype=np.int64)
    labels = _canonical(raw)
    leaf_groups_raw = np.asarray(tree.leaf_groups, dtype=np.int64)
    k = int(labels.max()) + 1 if (labels != NOISE).any() else 0
    groups = np.zeros(k, dtype=np.int64)
    clustered = raw != NOISE
    if k:
        # canonical leaf l came from raw leaf r: map through one member
        first = np.full(k, -1, dtype=np.int64)
        first[labels[clustered]] = raw[clustered]
        groups = leaf_groups_raw[first]
        sizes = np.bincount(labels[clustered], minlength=k)
        group_sizes = np.bincount(groups, weights=sizes)
        order = np.lexsort((np.arange(group_sizes.size), -group_sizes))
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        groups = rank[groups]
        used = np.unique(groups)  # groups left without leaves (all noise) drop out; renumber densely
        groups = np.searchsorted(used, groups)
    noise = int((labels == NOISE).sum())
    return ClusteringResult(
        labels=labels,
        eps_used=None,
        n_clusters=k,
        noise_fraction=noise / n,
        seconds=time.perf_counter() - started,
        leaf_groups=groups.astype(np.int64),
        resolution=float(tree.resolution),
        group_stability=float(tree.group_stability),
    )


# ------------------------------------------------------------------------------------------ after clustering
def centroids(vectors: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-cluster normalised mean direction: ``(cluster_labels, centroid_matrix)``, noise excluded.

    The mean of unit vectors is shorter than 1; renormalising gives the direction that maximises the summed
    cosine similarity to the members, which is what "central" means on the sphere.
    """
    unit = as_unit_vectors(vectors)
    labels = as_labels(labels, unit.shape[0])
    cluster_ids = np.unique(labels[labels != NOISE])
    matrix = np.zeros((cluster_ids.size, unit.shape[1]), dtype=np.float32)
    for row, label in enumerate(cluster_ids):
        mean = unit[labels == label].mean(axis=0)
        norm = float(np.linalg.norm(mean))
        # Antipodal members can cancel out exactly; fall back to the first member's direction then.
        matrix[row] = mean / norm if norm > 1e-12 else unit[labels == label][0]
    return cluster_ids, matrix


def medoids(vectors: np.ndarray, labels: np.ndarray, per_cluster: int = 3) -> dict[int, list[int]]:
    """Indices (into ``vectors``) of each cluster's ``per_cluster`` members most similar to its centroid.

    These are the representatives shown for a cluster (``Cluster.representative_asset_ids``). Ordered most
    central first; ties go to the lower index so the choice is deterministic. Noise (-1) gets no entry.
    """
    if per_cluster < 1:
        raise InvalidInput(f"per_cluster must be >= 1, got {per_cluster}")
    unit = as_unit_vectors(vectors)
    labels = as_labels(labels, unit.shape[0])
    cluster_ids, matrix = centroids(unit, labels)
    result: dict[int, list[int]] = {}
    for label, centre in zip(cluster_ids, matrix, strict=True):
        members = np.flatnonzero(labels == label)
        similarity = unit[members] @ centre
        order = np.argsort(-similarity, kind="stable")[:per_cluster]
        result[int(label)] = [int(i) for i in members[order]]
    return result


def _random_hex_ids(seed: int | None) -> Callable[[], str]:
    if seed is None:
        return lambda: uuid.uuid4().hex[:12]
    rng = random.Random(seed)
    return lambda: f"{rng.getrandbits(48):012x}"


def match_clusters(
    previous: Mapping[str, set[str]],
    current: Mapping[int, set[str]],
    min_overlap: float = 0.3,
    *,
    seed: int | None = None,
) -> dict[int, str]:
    """Give this run's clusters the ids of last run's clusters they continue, so names and links survive.

    ``previous`` maps cluster id → member ids (e.g. sample ids) of the earlier run, ``current`` maps this run's
    labels → member ids. Overlap is the Jaccard index |A∩B| / |A∪B|; the Hungarian algorithm
    (``scipy.optimize.linear_sum_assignment``) picks the one-to-one pairing with the largest total overlap, so a
    cluster that split or merged keeps its id on the best-matching side only. Pairs below ``min_overlap`` are
    not matched: such a cluster is new and gets a fresh 12-hex-digit id (``uuid4`` by default, or drawn from
    ``random.Random(seed)`` when ``seed`` is given, for reproducible runs and tests). Fresh ids never collide
    with previous ones. The noise label -1 is not a cluster and gets no id.

    Deterministic for a given ``seed``: both sides are sorted by key before matching, so dict order is irrelevant.
    """
    if not (0.0 < min_overlap <= 1.0):
        raise InvalidInput(f"min_overlap must be in (0, 1], got {min_overlap}")
    prev_ids = sorted(previous)
    labels = sorted(label for label in current if label != NOISE)
    mapping: dict[int, str] = {}
    if prev_ids and labels:
        jaccard = np.zeros((len(labels), len(prev_ids)), dtype=np.float64)
        for i, label in enumerate(labels):
            members = current[label]
            for j, prev_id in enumerate(prev_ids):
                union = len(members | previous[prev_id])
                jaccard[i, j] = len(members & previous[prev_id]) / union if union else 0.0
        rows, cols = linear_sum_assignment(jaccard, maximize=True)
        for i, j in zip(rows, cols, strict=True):
            if jaccard[i, j] >= min_overlap:
                mapping[labels[i]] = prev_ids[j]
    new_id = _random_hex_ids(seed)
    taken = set(previous)
    for label in labels:
        if label not in mapping:
            candidate = new_id()
            while candidate in taken:
                candidate = new_id()
            taken.add(candidate)
            mapping[label] = candidate
    return mapping


def assign_to_nearest(
    vectors_new: np.ndarray,
    centroids: np.ndarray,
    max_distance: float,
    *,
    labels: Sequence[int] | np.ndarray | None = None,
) -> np.ndarray:
    """Incremental assignment: each new vector joins the nearest centroid if within ``max_distance``, else -1.

    Lets newly ingested images get a cluster without re-running the clustering; a periodic full run then
    re-shapes clusters (and :func:`match_clusters` keeps their ids). ``max_distance`` is a cosine distance in
    [0, 2]; a natural choice is the DBSCAN ``eps_used`` or a high quantile of members' distance to their centroid.
    Returns row indices into ``centroids`` — or the matching entries of ``labels`` when given (e.g. the first
    element of :func:`centroids`' result). Ties go to the lower row.
    """
    new = as_unit_vectors(vectors_new, "vectors_new")
    centres = as_unit_vectors(centroids, "centroids")
    if centres.shape[1] != new.shape[1]:
        raise InvalidInput(f"dimension mismatch: vectors_new has {new.shape[1]}, centroids have {centres.shape[1]}")
    if not (0.0 <= max_distance <= 2.0):
        raise InvalidInput(f"max_distance is a cosine distance and must be in [0, 2], got {max_distance}")
    targets = np.arange(centres.shape[0], dtype=np.int64)
    if labels is not None:
        targets = np.asarray(labels, dtype=np.int64)
        if targets.shape != (centres.shape[0],):
            raise InvalidInput(f"labels must have one entry per centroid ({centres.shape[0]}), got {targets.shape}")
    similarity = new @ centres.T
    nearest = np.argmax(similarity, axis=1)
    distance = 1.0 - similarity[np.arange(new.shape[0]), nearest]
    return np.where(distance <= max_distance, targets[nearest], NOISE).astype(np.int64)
