"""Moving images between the clusters of the latest clustering run by hand (issue 16, "move to a named cluster").

A user's correction of a run: the images' samples get the destination leaf in the run's stored labels (so
``ListClusterMembers``, cluster sizes and ``CompareRuns`` follow) and in the index payload (so a search inside a
cluster follows). Each move answers where every image was, so the client can undo by moving them back; a
move is idempotent, so repeating it is safe.

What survives a kill, at any moment:

- The run's files change all at once: a new *generation* of ``members.npz``, ``centroids.npy``,
  ``clusters.json`` (and ``groups.json``) is written whole, then ``run.json`` is rewritten to point at it — one
  atomic put (the local store writes a temp file, fsyncs it and renames it over the key; S3 replaces an object
  in one PUT). A kill before that put leaves the old membership, after it the new one; never a mix
  (``RunStore.commit_generation``).
- The index payloads (``cluster_id``) are written after the commit. A kill between the two leaves a search
  filtered by cluster on the old membership for the moved images until the same move is sent again (the UI's
  undo or a retry does that), or the next run relabels everything. The run's files are the truth; payloads
  are a copy for filtering.

Choices, said here so nobody has to guess them:

- Every sample of an image in the run moves (its whole-image sample and, when the run clustered them, its
  object and text samples); the previous cluster reported is that of the image's first sample in the run.
- Only the latest succeeded clustering run of its model can be edited: the index payloads follow that run, and
  an older run's ids would overwrite them (``RUN_NOT_LATEST``).
- A new leaf has no centroid yet (a zero row, radius 0): new images join it only after a later run that
  continues this one matched it. Its representatives are the first moved images; moved samples get similarity
  0 (the run's vectors are not at hand here), so they list after the leaf's original members.
- In a two-level run, a new leaf joins the group most of the moved images came from (the largest group when
  they all came from noise); group sizes are recounted from their leaves.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ordo.analysis import runs as rs
from ordo.analysis.browse import NOISE_ID, check_cluster_id
from ordo.analysis.runner import Runner
from ordo.analysis.runs import ClusterInfo, Members
from ordo.analysis.vectors import NOISE
from ordo.errors import Conflict, InvalidInput, NotFound, Reason

MAX_MOVE_ASSETS = 1000
MAX_CLUSTER_NAME_CHARS = 200
REPRESENTATIVES = 5
_ASSET_ID = re.compile(r"^[0-9a-f]{64}$")


@dataclass
class MoveResult:
    cluster: ClusterInfo | None  # the destination after the move; None for noise
    moves: list[tuple[str, str]] = field(default_factory=list)  # (asset id, previous leaf id or "noise")
    skipped: list[str] = field(default_factory=list)  # asset ids not in the run


def check_move(asset_ids: list[str], cluster_id: str, new_name: str) -> tuple[list[str], str, str]:
    """Bounds every field before anything is read: 1..1000 asset ids of 64 hex digits, exactly one target."""
    if not asset_ids:
        raise InvalidInput("asset_ids is empty: name the images to move", reason=Reason.MISSING_ASSET_ID)
    if len(asset_ids) > MAX_MOVE_ASSETS:
        raise InvalidInput(
            f"at most {MAX_MOVE_ASSETS} images per move (got {len(asset_ids)})", reason=Reason.TOO_MANY_ASSETS
        )
    for asset_id in asset_ids:
        if not _ASSET_ID.match(asset_id):
            shown = asset_id[:16] + ("…" if len(asset_id) > 16 else "")
            raise InvalidInput(f"{shown!r} is not an asset id (64 lower-case hex digits)", reason=Reason.BAD_ASSET_ID)
    name = new_name.strip()
    if bool(cluster_id) == bool(name):
        raise InvalidInput(
            "set exactly one of cluster_id (an existing leaf, or 'noise') and new_cluster_name",
            reason=Reason.BAD_MOVE_TARGET,
        )
    check_cluster_id(cluster_id)
    if len(name) > MAX_CLUSTER_NAME_CHARS:
        raise InvalidInput(f"names are at most {MAX_CLUSTER_NAME_CHARS} characters", reason=Reason.NAME_TOO_LONG)
    return list(dict.fromkeys(asset_ids)), cluster_id, name


class ClusterMover:
    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.runs = runner.runs

    def move(self, run_id: str, asset_ids: list[str], cluster_id: str = "", new_name: str = "") -> MoveResult:
        asset_ids, cluster_id, new_name = check_move(asset_ids, cluster_id, new_name)
        with self.runner.write_lock:  # renames and other moves of this process wait; see the module docstring
            record = self.runner.ready(run_id, rs.CLUSTERING)
            latest = self.runs.latest(rs.CLUSTERING, record.model_id)
            if latest is None or latest.run_id != run_id:
                raise Conflict(
                    f"run {run_id} is not the latest clustering run ({latest.run_id if latest else 'none'} is): "
                    "only the latest can be edited",
                    reason=Reason.RUN_NOT_LATEST,
                )
            members = self.runs.members(run_id)
            leaves = self.runs.clusters(run_id)
            groups = self.runs.groups(run_id)
            centroids = self.runs.centroids(run_id)
            labels = members.labels
            if labels is None:
                raise Conflict("this run stores no cluster labels", reason=Reason.CORRUPT)
            rows_of = _rows_by_asset(members, set(asset_ids))
            moving = [a for a in asset_ids if a in rows_of]
            if not moving:
                raise NotFound(
                    f"none of the {len(asset_ids)} images is in run {run_id} (ingested after it, or deleted)",
                    reason=Reason.ASSETS_NOT_IN_RUN,
                )
            result = MoveResult(cluster=None, skipped=[a for a in asset_ids if a not in rows_of])
            result.moves = [(a, _leaf_id(leaves, int(labels[rows_of[a][0]]))) for a in moving]
            target = self._target(leaves, cluster_id, new_name)
            if target == len(leaves):  # a new leaf
                leaves.append(_new_leaf(leaves, groups, new_name, labels, rows_of, moving))
                centroids = np.vstack([centroids, np.zeros((1, centroids.shape[1]), dtype=np.float32)])
            rows = np.asarray([r for a in moving for r in rows_of[a]], dtype=np.int64)
            new_labels = labels.copy()
            new_labels[rows] = target
            similarity = members.similarity.copy() if members.similarity is not None else None
            if similarity is not None:
                similarity[rows[labels[rows] != target]] = 0.0
            edited = Members(members.sample_ids, members.asset_ids, labels=new_labels, similarity=similarity)
            _recount(leaves, groups, new_labels, members, set(moving))
            record.cluster_count = len(leaves)
            record.noise_count = int((new_labels == NOISE).sum())
            self.runs.commit_generation(record, edited, centroids, leaves, groups)  # the commit point
            result.cluster = leaves[target] if target != NOISE else None
            destination = "" if target == NOISE else leaves[target].cluster_id
            sample_ids = [bytes(members.sample_ids[r]).decode() for r in rows.tolist()]
            self.runner.index.set_payload(sample_ids, {"cluster_id": destination, "cluster_run_id": run_id})
            return result

    def _target(self, leaves: list[ClusterInfo], cluster_id: str, new_name: str) -> int:
        """The destination's label: a leaf's index, NOISE, or len(leaves) for a new leaf."""
        if cluster_id == NOISE_ID:
            return NOISE
        if cluster_id:
            for i, leaf in enumerate(leaves):
                if leaf.cluster_id == cluster_id:
                    return i
            raise NotFound(f"the run has no cluster {cluster_id!r} to move into", reason=Reason.CLUSTER_NOT_FOUND)
        if any(leaf.name.strip().casefold() == new_name.casefold() for leaf in leaves):
            raise Conflict(
                f"a cluster is already named {new_name!r}: move into it by its id", reason=Reason.CLUSTER_NAME_TAKEN
            )
        return len(leaves)


def _rows_by_asset(members: Members, wanted: set[str]) -> dict[str, list[int]]:
    rows: dict[str, list[int]] = {}
    for row, raw in enumerate(members.asset_ids.tolist()):
        asset = raw.decode()
        if asset in wanted:
            rows.setdefault(asset, []).append(row)
    return rows


def _leaf_id(leaves: list[ClusterInfo], label: int) -> str:
    return NOISE_ID if label == NOISE else leaves[label].cluster_id


def _new_leaf(
    leaves: list[ClusterInfo],
    groups: list[ClusterInfo],
    name: str,
    labels: np.ndarray,
    rows_of: dict[str, list[int]],
    moving: list[str],
) -> ClusterInfo:
    taken = {c.cluster_id for c in leaves} | {g.cluster_id for g in groups}
    cluster_id = uuid.uuid4().hex[:12]
    while cluster_id in taken:
        cluster_id = uuid.uuid4().hex[:12]
    parent = ""
    if groups:
        came_from = Counter(
            leaves[int(labels[rows_of[a][0]])].parent_id for a in moving if labels[rows_of[a][0]] != NOISE
        )
        parent = came_from.most_common(1)[0][0] if came_from else max(groups, key=lambda g: g.size).cluster_id
    return ClusterInfo(cluster_id=cluster_id, size=0, name=name, renamed=True, parent_id=parent)


def _recount(
    leaves: list[ClusterInfo], groups: list[ClusterInfo], labels: np.ndarray, members: Members, moved: set[str]
) -> None:
    """Sizes from the labels; representatives without the images that left; a new leaf's from what arrived."""
    sizes = np.bincount(labels[labels != NOISE], minlength=len(leaves))
    for i, leaf in enumerate(leaves):
        leaf.size = int(sizes[i])
        keep = [
            (s, a)
            for s, a in zip(leaf.representative_sample_ids, leaf.representative_asset_ids, strict=False)
            if a not in moved
        ]
        if not keep:  # emptied of its representatives, or new: the first members it holds now
            rows = np.flatnonzero(labels == i)[:REPRESENTATIVES].tolist()
            keep = [(bytes(members.sample_ids[r]).decode(), bytes(members.asset_ids[r]).decode()) for r in rows]
        leaf.representative_sample_ids = [s for s, _ in keep]
        leaf.representative_asset_ids = [a for _, a in keep]
    for group in groups:
        children = [leaf for leaf in leaves if leaf.parent_id == group.cluster_id]
        group.size = sum(leaf.size for leaf in children)
        group.child_count = len(children)
