"""Two clustering runs compared by membership: what ``CompareRuns`` answers.

Why membership and not ids: ids carry over only where the matching (``clustering.match_clusters``) paired two
clusters; between runs of different algorithms, filters or models they say nothing. Members say everything:

* **ARI and NMI** between the two label vectors over the samples both runs saw (noise counted as one more
  group, as ``ordo.analysis.metrics`` does);
* the **contingency matrix** — for every (cluster of A, cluster of B), how many samples they share — returned
  sparse, largest cells first, at most ``max_cells``;
* **where images moved**: each cluster of A is paired with the B cluster that got most of its members; the
  members that went elsewhere are moves, grouped by destination, largest first, with example assets.

Cost: O(n) with sorted ids (``np.intersect1d``) and one ``np.unique`` over pair codes; 100k samples in well
under a second.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ordo.analysis.runs import ClusterInfo, Members
from ordo.analysis.vectors import NOISE

MAX_MOVES = 200
EXAMPLES_PER_MOVE = 3


@dataclass
class Side:
    """One run's clustering at one level: per-sample labels (-1 noise) and the clusters they index."""

    members: Members
    labels: np.ndarray
    clusters: list[ClusterInfo]


@dataclass
class Comparison:
    common_samples: int
    ari: float
    nmi: float
    clusters_a: list[tuple[str, str, int]]  # (id, name, size); the last entry is noise ("")
    clusters_b: list[tuple[str, str, int]]
    cells: list[tuple[int, int, int]]
    cells_truncated: bool
    moves: list[tuple[int, int, int, list[str]]] = field(default_factory=list)
    stayed: int = 0
    moved: int = 0


def _described(clusters: list[ClusterInfo], labels: np.ndarray) -> list[tuple[str, str, int]]:
    sizes = np.bincount(labels[labels != NOISE], minlength=len(clusters))
    rows = [(c.cluster_id, c.name, int(sizes[i])) for i, c in enumerate(clusters)]
    rows.append(("", "noise", int((labels == NOISE).sum())))
    return rows


def compare(a: Side, b: Side, max_cells: int) -> Comparison:
    """See the module docstring. Noise is the last index on each side (``len(clusters)``)."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    ids_a = a.members.sample_ids
    ids_b = b.members.sample_ids
    _, rows_a, rows_b = np.intersect1d(ids_a, ids_b, assume_unique=True, return_indices=True)
    la = a.labels[rows_a].astype(np.int64)
    lb = b.labels[rows_b].astype(np.int64)
    na, nb = len(a.clusters), len(b.clusters)
    ia = np.where(la == NOISE, na, la)  # noise as the last index
    ib = np.where(lb == NOISE, nb, lb)
    common = int(rows_a.size)
    ari = float(adjusted_rand_score(ia, ib)) if common else 0.0
    nmi = float(normalized_mutual_info_score(ia, ib)) if common else 0.0
    codes, counts = np.unique(ia * (nb + 1) + ib, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    cells = [(int(codes[i] // (nb + 1)), int(codes[i] % (nb + 1)), int(counts[i])) for i in order]
    comparison = Comparison(
        common_samples=common,
        ari=round(ari, 6),
        nmi=round(nmi, 6),
        clusters_a=_described(a.clusters, a.labels[rows_a]),
        clusters_b=_described(b.clusters, b.labels[rows_b]),
        cells=cells[:max_cells],
        cells_truncated=len(cells) > max_cells,
    )
    # best B cluster for each A cluster (noise is never a destination one "stays" in)
    best: dict[int, int] = {}
    for x, y, _count in cells:  # largest first, so the first seen is the best
        if x < na and y < nb and x not in best:
            best[x] = y
    stayed = sum(count for x, y, count in cells if best.get(x) == y)
    comparison.stayed = int(stayed)
    comparison.moved = int(sum(count for x, _, count in cells if x < na) - stayed)
    assets = b.members.asset_ids[rows_b]
    moves = []
    for x, y, count in cells:
        if x >= na or best.get(x) == y:
            continue
        where = np.flatnonzero((ia == x) & (ib == y))[:EXAMPLES_PER_MOVE]
        moves.append((x, y, count, [s.decode() for s in assets[where].tolist()]))
        if len(moves) >= MAX_MOVES:
            break
    comparison.moves = moves
    return comparison
