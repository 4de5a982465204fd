"""A membership edit of a run is all or nothing (``RunStore.commit_generation``, used by MoveToCluster).

The edit writes three or four objects and then the record; a kill can land between any two writes. A test cannot time a
real SIGKILL between two puts, so a store wrapper stops the writer at each put in turn (the only fake here, for
a fault that cannot be provoked on cue); the files are the real local store's. After every possible stop, a
fresh reader must see the old membership whole or the new one whole: labels, sizes and names agree."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from ordo.adapters.local_store import LocalDirectoryStore
from ordo.analysis import runs as rs
from ordo.analysis.runs import ClusterInfo, Members, RunRecord, RunStore


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, not even ``except Exception`` handlers."""


class StopsAtPut(LocalDirectoryStore):
    def __init__(self, root: Path, stop_at: int) -> None:
        super().__init__(root)
        self.stop_at = stop_at
        self.puts = 0

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        if self.puts == self.stop_at:
            raise Killed
        self.puts += 1
        super().put(key, data, content_type)


def ids(prefix: str, n: int) -> np.ndarray:
    return rs.as_bytes_array([f"{prefix}{i:03d}" for i in range(n)])


def seed(root: Path) -> RunRecord:
    """A succeeded run of 6 samples in two leaves (3 + 3)."""
    store = RunStore(LocalDirectoryStore(root))
    record = RunRecord("r20240501t101500123456-1a2b3c", rs.CLUSTERING, "m", datetime.now(UTC), state=rs.SUCCEEDED)
    members = Members(ids("s", 6), ids("a", 6), labels=np.array([0, 0, 0, 1, 1, 1], dtype=np.int32))
    clusters = [ClusterInfo("aaaaaaaaaaaa", 3, name="first"), ClusterInfo("bbbbbbbbbbbb", 3, name="second")]
    store.save_record(record)
    store.save_data(record.run_id, members, centroids=np.eye(2, 4, dtype=np.float32), clusters=clusters)
    return record


def edit(store: RunStore, record: RunRecord, generation_edits: int) -> None:
    """Moves sample 0 to the second leaf and adds a third leaf holding sample 1 (one generation per call)."""
    members = store.members(record.run_id)
    labels = members.labels.copy()  # type: ignore[union-attr]
    clusters = [*store.clusters(record.run_id), ClusterInfo(f"cccccccccc{generation_edits:02d}", 0, name="new")]
    labels[0], labels[1] = 1, len(clusters) - 1
    for info, size in zip(clusters, np.bincount(labels, minlength=len(clusters)).tolist(), strict=True):
        info.size = size
    centroids = np.vstack([store.centroids(record.run_id), np.zeros((1, 4), np.float32)])
    store.commit_generation(
        store.get(record.run_id), Members(members.sample_ids, members.asset_ids, labels=labels), centroids, clusters, []
    )


def view(root: Path, run_id: str) -> tuple[list[int], list[int], int]:
    store = RunStore(LocalDirectoryStore(root))
    labels = store.members(run_id).labels.tolist()  # type: ignore[union-attr]
    clusters = store.clusters(run_id)
    assert sum(c.size for c in clusters) == sum(1 for x in labels if x >= 0)  # sizes agree with labels
    assert store.centroids(run_id).shape[0] == len(clusters)  # assignment's rows agree with the leaves
    return labels, [c.size for c in clusters], len(clusters)


OLD = ([0, 0, 0, 1, 1, 1], [3, 3], 2)
NEW = ([1, 2, 0, 1, 1, 1], [1, 4, 1], 3)


@pytest.mark.parametrize("stop_at", range(6))
def test_a_kill_at_any_write_leaves_the_old_or_the_new_membership(tmp_path: Path, stop_at: int) -> None:
    record = seed(tmp_path)
    store = RunStore(StopsAtPut(tmp_path, stop_at))
    try:
        edit(store, record, 1)
        stopped = False
    except Killed:
        stopped = True
    seen = view(tmp_path, record.run_id)
    # Three data files (a single-level run has no groups.json), then run.json, the commit point: a stop at put
    # 0-3 leaves the old run whole, and once run.json is written the new one is whole.
    assert seen == (OLD if stopped else NEW), (stop_at, seen)
    assert stopped == (stop_at < 4)


def test_generations_keep_the_previous_copy_and_delete_older_ones(tmp_path: Path) -> None:
    record = seed(tmp_path)
    store = RunStore(LocalDirectoryStore(tmp_path))
    for n in range(1, 4):
        edit(store, record, n)
    assert store.get(record.run_id).data_generation == 3
    folder = tmp_path / rs.PREFIX / record.run_id
    kept = sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name.startswith("g"))
    # g2 stays for a reader that read the record just before g3 was committed; g1 has no reader left
    assert [k for k in kept if list((folder / k).iterdir())] == ["g2", "g3"]
    assert view(tmp_path, record.run_id)[2] == 3 + 2  # two leaves, and one new leaf per edit
