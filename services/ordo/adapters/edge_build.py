"""The child process of an out-of-process rebuild (``python -m ordo.adapters.edge_build``): a new shard
from the dump the parent wrote, optimised with the GIL of its own. See ``ordo.adapters.edge_rebuild``
for the whole procedure; this module imports the index, which the parent side must not (a cycle).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import numpy as np

from ordo.adapters.edge_index import UPSERT_CHUNK, EdgeVectorIndex
from ordo.domain import VectorPoint


def build_threads() -> int:
    """Indexing threads for the child: every core but one (at least one), so serving keeps a core."""
    return max(1, (os.cpu_count() or 2) - 1)


def build(dump_dir: Path, target: Path, dim: int, indexing_threshold_kb: int, full_scan_threshold_kb: int) -> None:
    """The child's work: a new shard at ``target`` from the dump, optimised, flushed and closed."""
    vectors = np.fromfile(dump_dir / "vectors.f32", dtype=np.float32).reshape(-1, dim)
    index = EdgeVectorIndex(
        target,
        indexing_threshold_kb=indexing_threshold_kb,
        full_scan_threshold_kb=full_scan_threshold_kb,
        indexing_threads=build_threads(),
    )
    try:
        index.ensure_collection(dim)
        batch: list[VectorPoint] = []
        with (dump_dir / "points.jsonl").open() as meta:
            for row, line in enumerate(meta):
                record = json.loads(line)
                batch.append(VectorPoint(record["id"], vectors[row].tolist(), record["payload"]))
                if len(batch) >= UPSERT_CHUNK * 4:
                    index.upsert(batch)
                    batch = []
        index.upsert(batch)
        index.optimize_here()
    finally:
        index.close()


def _die_with_parent(parent: int) -> None:
    """In the child: be SIGKILLed if ``ordo up`` dies (Linux ``PR_SET_PDEATHSIG``), so no orphan keeps
    writing a generation the next start is deleting. (Set by the child itself: a ``preexec_fn`` is
    unsafe in a process with threads, and a watcher thread could not run while optimise holds the GIL.)"""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except OSError:
        pass
    if os.getppid() != parent:  # the parent died before we asked
        os._exit(1)


def lowest_priority() -> str:
    """Make this process (all its threads to come) the CPU's last choice; returns what was applied.
    ``SCHED_IDLE`` runs it only on a core nothing else wants, and the kernel preempts it as soon as a
    serving thread wakes; an unprivileged process may always lower itself to it. ``nice 19`` where the
    policy does not exist (not Linux) or is refused."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        return "SCHED_IDLE"
    except (AttributeError, OSError):
        os.nice(19 - os.nice(0))
        return "nice 19"


def main(argv: list[str]) -> int:
    dump_dir, target, dim, indexing, full_scan, parent = argv
    _die_with_parent(int(parent))
    lowest_priority()  # serving first: the build only takes CPU the serving process leaves
    build(Path(dump_dir), Path(target), int(dim), int(indexing), int(full_scan))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
