"""Reading a finished clustering run by level: clusters or groups, a cluster's members, two runs compared.

Read-only over :class:`RunStore` (no index, no jobs), so any instance serves it. Page tokens are opaque and
bound to the question (AIP-158): ``<offset>.<digest of the request's other fields>``, so a token from one
cluster's listing is refused on another's instead of silently skipping rows.
"""

from __future__ import annotations

import numpy as np

from ordo import paging
from ordo.analysis import runs as rs
from ordo.analysis.compare import Comparison, Side, compare
from ordo.analysis.hierarchy import members_of, point_groups
from ordo.analysis.runs import GROUP, LEAF, ClusterInfo, Members, RunRecord, RunStore
from ordo.errors import Conflict, InvalidInput, Reason

MAX_CLUSTER_ID_CHARS = 64  # ids are 12 hex digits; 64 leaves room and bounds what a client can send
# ListClusterMembers' name for the samples in no cluster: not hex, so no leaf or group id can be it.
NOISE_ID = "noise"
MAX_CELLS = 10_000
DEFAULT_CELLS = 2_000


def check_cluster_id(value: str, what: str = "cluster_id") -> str:
    if len(value) > MAX_CLUSTER_ID_CHARS:
        raise InvalidInput(f"{what} is at most {MAX_CLUSTER_ID_CHARS} characters", reason=Reason.BAD_CLUSTER_ID)
    return value


class RunBrowser:
    def __init__(self, runs: RunStore) -> None:
        self.runs = runs

    def ready(self, run_id: str) -> RunRecord:
        record = self.runs.get(rs.check_run_id(run_id))
        if record.kind != rs.CLUSTERING:
            raise InvalidInput(f"run {run_id} is a {record.kind} run, not a clustering run", reason=Reason.BAD_RUN_KIND)
        if record.state != rs.SUCCEEDED:
            raise Conflict(f"run {run_id} is {record.state}", reason=Reason.RUN_NOT_READY)
        return record

    def clusters(
        self, run_id: str, page_size: int, page_token: str = "", level: str = LEAF, parent_id: str = ""
    ) -> tuple[list[ClusterInfo], str]:
        """Leaves (all, or one group's) or groups, a page at a time."""
        check_cluster_id(parent_id, "parent_id")
        self.ready(run_id)
        if level == GROUP:
            if parent_id:
                raise InvalidInput("groups have no parent; parent_id is for leaves", reason=Reason.BAD_PARENT)
            rows = self.runs.groups(run_id)
        else:
            rows = self.runs.clusters(run_id)
            if parent_id:
                if not any(g.cluster_id == parent_id for g in self.runs.groups(run_id)):
                    raise InvalidInput(f"run {run_id} has no group {parent_id!r}", reason=Reason.GROUP_NOT_FOUND)
                rows = [c for c in rows if c.parent_id == parent_id]
        bound = (run_id, level, parent_id)
        offset = paging.decode_offset(page_token, *bound)
        page = rows[offset : offset + page_size]
        more = offset + page_size < len(rows)
        return page, paging.encode_token(offset + page_size, *bound) if more else ""

    def members(
        self, run_id: str, cluster_id: str, page_size: int, page_token: str = ""
    ) -> tuple[list[tuple[str, str, float, str]], str, int]:
        """(sample id, asset id, similarity to the centroid, leaf id) of a leaf or group, most central first;
        ``cluster_id`` ``"noise"`` lists the samples in no cluster (leaf id ``""``, by sample id), so no image of a
        run is out of reach of a listing."""
        if not cluster_id:
            raise InvalidInput("cluster_id is required", reason=Reason.MISSING_CLUSTER_ID)
        check_cluster_id(cluster_id)
        self.ready(run_id)
        leaves = self.runs.clusters(run_id)
        groups = self.runs.groups(run_id)
        members = self.runs.members(run_id)
        if cluster_id == NOISE_ID:
            rows = np.flatnonzero(_labels(members) < 0)
        else:
            rows = members_of(members, leaves, cluster_id, groups)
        bound = (run_id, cluster_id)
        offset = paging.decode_offset(page_token, *bound)
        # Most central first (similarity to the leaf's centroid, stored by the run); ties and runs written
        # before similarities were kept go by sample id, so pages are stable.
        similarity = members.similarity if members.similarity is not None else np.zeros(len(members), np.float32)
        order = np.lexsort((members.sample_ids[rows], -similarity[rows]))
        rows = rows[order]
        leaf_ids = [c.cluster_id for c in leaves]
        labels = _labels(members)
        out = [
            (
                bytes(members.sample_ids[row]).decode(),
                bytes(members.asset_ids[row]).decode(),
                float(similarity[row]),
                leaf_ids[int(labels[row])] if labels[row] >= 0 else "",
            )
            for row in rows[offset : offset + page_size].tolist()
        ]
        more = offset + page_size < rows.size
        return out, (paging.encode_token(offset + page_size, *bound) if more else ""), int(rows.size)

    def compare(self, run_a: str, run_b: str, level: str = LEAF, max_cells: int = DEFAULT_CELLS) -> Comparison:
        if not (1 <= max_cells <= MAX_CELLS):
            raise InvalidInput(f"max_cells must be between 1 and {MAX_CELLS}", reason=Reason.BAD_MAX_CELLS)
        self.ready(run_a)
        self.ready(run_b)
        return compare(self._side(run_a, level), self._side(run_b, level), max_cells)

    def _side(self, run_id: str, level: str) -> Side:
        members = self.runs.members(run_id)
        leaves = self.runs.clusters(run_id)
        labels = _labels(members).astype(np.int64)
        if level != GROUP:
            return Side(members, labels, leaves)
        groups = self.runs.groups(run_id)
        if not groups:
            raise InvalidInput(f"run {run_id} has no groups (a single-level run)", reason=Reason.NO_GROUPS)
        index = {g.cluster_id: i for i, g in enumerate(groups)}
        leaf_groups = np.array([index[c.parent_id] for c in leaves], dtype=np.int64)
        return Side(members, point_groups(labels, leaf_groups), groups)


def _labels(members: Members) -> np.ndarray:
    """A clustering run's labels (every clustering run stores them; a projection run has none)."""
    if members.labels is None:
        raise Conflict("this run stores no cluster labels", reason=Reason.CORRUPT)
    return members.labels
