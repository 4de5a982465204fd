"""The top level of a two-level clustering run: groups of leaves, with ids that carry over runs like leaves'.

A group is described exactly like a leaf (``ClusterInfo`` with ``level="group"``): size, centroid-nearest
representatives, name and top terms from the text tower (named among the groups, so the contrast is between
groups), and a renamed flag. Group ids continue the previous run's groups by member overlap (Jaccard +
Hungarian, ``clustering.match_clusters``), so a user's group name survives re-runs as a leaf's does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ordo.analysis.clustering import match_clusters
from ordo.analysis.runner import stored
from ordo.analysis.runs import GROUP, ClusterInfo, Members, RunStore
from ordo.analysis.vectors import NOISE
from ordo.errors import NotFound, Reason

REPRESENTATIVES = 5


def point_groups(labels: np.ndarray, leaf_groups: np.ndarray) -> np.ndarray:
    """Each point's group (-1 for noise)."""
    return np.where(labels != NOISE, leaf_groups[np.maximum(labels, 0)] if leaf_groups.size else NOISE, NOISE)


def group_centroids(unit: np.ndarray, groups: np.ndarray, count: int) -> np.ndarray:
    """Normalised mean direction of each group's members (rows 0..count-1)."""
    sums = np.zeros((count, unit.shape[1]), dtype=np.float64)
    clustered = groups != NOISE
    np.add.at(sums, groups[clustered], unit[clustered])
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return (sums / np.where(norms > 1e-12, norms, 1.0)).astype(np.float32)


def _previous_groups(runs: RunStore, run_id: str) -> tuple[dict[str, set[str]], dict[str, ClusterInfo]]:
    """Members (sample ids) and infos of the previous run's groups, by group id; empty when it had none."""
    try:
        groups = runs.groups(run_id)
        if not groups:
            return {}, {}
        leaves = runs.clusters(run_id)
        members = runs.members(run_id)
    except NotFound:
        return {}, {}
    parent = [leaf.parent_id for leaf in leaves]
    before: dict[str, set[str]] = {}
    for sample, label in zip(members.sample_ids.tolist(), stored(members.labels, "labels").tolist(), strict=True):
        if label != NOISE and parent[label]:
            before.setdefault(parent[label], set()).add(sample.decode())
    return before, {g.cluster_id: g for g in groups}


def build_groups(
    *,
    unit: np.ndarray,
    labels: np.ndarray,
    leaf_groups: np.ndarray,
    leaves: list[ClusterInfo],
    sample_ids: Sequence[str],
    asset_ids: Sequence[str],
    runs: RunStore,
    previous_run_id: str,
) -> tuple[list[ClusterInfo], np.ndarray]:
    """Group infos (in group order 0..G-1) and their centroids; sets each leaf's ``parent_id`` in place."""
    count = int(leaf_groups.max()) + 1 if leaf_groups.size else 0
    if count == 0:
        return [], np.zeros((0, unit.shape[1]), dtype=np.float32)
    groups = point_groups(labels, leaf_groups)
    centres = group_centroids(unit, groups, count)
    current: dict[int, set[str]] = {}
    for i, g in enumerate(groups.tolist()):
        if g != NOISE:
            current.setdefault(g, set()).add(sample_ids[i])
    before, old = _previous_groups(runs, previous_run_id) if previous_run_id else ({}, {})
    # Group ids must not collide with this run's leaf ids (ListClusterMembers takes either).
    ids = match_clusters(before, current)
    taken = {leaf.cluster_id for leaf in leaves}
    for g, gid in list(ids.items()):
        if gid in taken:
            ids[g] = "g" + gid[1:]
    infos: list[ClusterInfo] = []
    for g in range(count):
        members = np.flatnonzero(groups == g)
        similarity = unit[members] @ centres[g]
        reps = members[np.argsort(-similarity, kind="stable")[:REPRESENTATIVES]]
        info = ClusterInfo(
            cluster_id=ids[g],
            size=int(members.size),
            level=GROUP,
            child_count=int((leaf_groups == g).sum()),
            representative_sample_ids=[sample_ids[int(i)] for i in reps],
            representative_asset_ids=[asset_ids[int(i)] for i in reps],
            radius=float(np.clip(1.0 - similarity.min(), 0.0, 2.0)) if members.size else 0.0,
        )
        earlier = old.get(info.cluster_id)
        if earlier is not None and earlier.renamed:
            info.name, info.renamed = earlier.name, True
        infos.append(info)
    for leaf, g in zip(leaves, leaf_groups.tolist(), strict=True):
        leaf.parent_id = ids[g]
    return infos, centres


def name_groups(groups: list[ClusterInfo], centres: np.ndarray, namer: Callable[[np.ndarray], list]) -> None:
    """Names and top terms for groups from ``namer`` (``naming.name_clusters`` bound to the text tower)."""
    if not groups:
        return
    for info, named in zip(groups, namer(centres), strict=True):
        info.top_terms = list(named.terms)
        info.top_term_scores = [float(s) for s in named.scores]
        if not info.renamed:
            info.name = named.name


def members_of(members: Members, leaves: list[ClusterInfo], cluster_id: str, groups: list[ClusterInfo]) -> np.ndarray:
    """Row indexes of the samples in a leaf or group ``cluster_id`` (empty array when it has none)."""
    labels = members.labels
    if labels is None:
        return np.zeros(0, dtype=np.int64)
    leaf_rows = [i for i, leaf in enumerate(leaves) if leaf.cluster_id == cluster_id]
    if not leaf_rows and any(g.cluster_id == cluster_id for g in groups):
        leaf_rows = [i for i, leaf in enumerate(leaves) if leaf.parent_id == cluster_id]
    if not leaf_rows:
        raise NotFound(f"no cluster or group {cluster_id!r} in this run", reason=Reason.CLUSTER_NOT_FOUND)
    return np.flatnonzero(np.isin(labels, np.asarray(leaf_rows)))
