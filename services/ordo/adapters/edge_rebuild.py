"""HNSW for the embedded index without freezing the process: build a new shard in a child process, swap.

Qdrant Edge builds HNSW only in ``optimize()``, which holds the GIL for its whole run (≈170 s per
100k × 512 on 2 cores): in ``ordo up`` every search, upload, health check and gateway request stalled
meanwhile. Two ways out were open — the engine in a process of its own behind gRPC (searches would then
stall in *that* process during its optimise, unless two such processes took turns), or building the
graph out of process and swapping the result in. The second keeps serving in-process (no extra hop on
every search) and needs no second server; what it costs is one shard load at the swap, which holds
the GIL but no lock (measured in ``bench/robustness_bench.py``). How:

1. **Journal on.** From now on the serving index records every write (upsert, delete, payload) it
   applies, besides applying it as always — new vectors stay searchable at once.
2. **Dump.** Every point (vector + payload) is scrolled out, a page at a time (each page is a short
   engine call), into ``<path>.build/`` (``vectors.f32``, ``points.jsonl``).
3. **Build**, in a child process (``python -m ordo.adapters.edge_rebuild``): a new shard with the same
   configuration and payload indexes, the dumped points, ``optimize()`` — its GIL is its own.
4. **Swap** (``EdgeVectorIndex.swap_to``): load the new shard and replay the journal into it while the
   old one keeps serving; then, under the index lock for a few milliseconds, replay the last few writes,
   flush, point ``<path>.live`` at it (write-then-rename, fsynced) and swap the reference; close and
   delete the old one after.

The child runs at ``SCHED_IDLE`` (Linux: it gets a CPU only when nothing else wants one; ``nice 19``
where that is refused) with ``cores - 1`` indexing threads, so on this 2-core machine serving keeps a
core to itself and takes the other back the moment it needs it.

Crash safety: until ``.live`` is renamed the old shard is the live one and holds every write (the
journal only duplicates them); after, the new one does. Whatever is left of the other is deleted at
the next open. ``.live`` absent means the shard is ``path`` itself (the layout before rebuilds).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ordo.chaos import checkpoint
from ordo.domain import VectorPoint
from ordo.errors import Unavailable

if TYPE_CHECKING:
    from ordo.adapters.edge_index import EdgeVectorIndex

log = logging.getLogger(__name__)

# Points per dump page: one engine call (under the index lock, holding the GIL) stays a few ms.
DUMP_BATCH = 256
DUMP_SYNC_BYTES = 16 * 1024 * 1024


# --- the generation layout ------------------------------------------------------------------------
def live_pointer(path: Path) -> Path:
    return path.with_name(path.name + ".live")


def live_dir(path: Path) -> Path:
    """Where the shard of logical index ``path`` lives now."""
    pointer = live_pointer(path)
    try:
        name = pointer.read_text().strip()
    except FileNotFoundError:
        return path
    return path.with_name(name) if name else path


def _generations(path: Path) -> Iterator[Path]:
    yield from path.parent.glob(f"{path.name}.g*")


def clean_leftovers(path: Path) -> None:
    """Delete what a crash mid-rebuild or mid-swap left: builds, and shards that are no longer live."""
    live = live_dir(path)
    build = path.with_name(path.name + ".build")
    if build.exists():
        shutil.rmtree(build, ignore_errors=True)
    for gen in _generations(path):
        if gen != live and gen.is_dir():
            shutil.rmtree(gen, ignore_errors=True)
    if live != path and path.is_dir():
        shutil.rmtree(path, ignore_errors=True)


def _next_generation(path: Path) -> Path:
    numbers = [int(g.name.rsplit(".g", 1)[1]) for g in _generations(path) if g.name.rsplit(".g", 1)[1].isdigit()]
    return path.with_name(f"{path.name}.g{max(numbers, default=0) + 1}")


def _point_live(path: Path, generation: Path) -> None:
    pointer = live_pointer(path)
    tmp = pointer.with_name(pointer.name + ".tmp")
    with tmp.open("w") as out:
        out.write(generation.name + "\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, pointer)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)  # the rename itself survives a power loss
    finally:
        os.close(fd)


# --- dump and build -------------------------------------------------------------------------------
def dump(index: EdgeVectorIndex, out: Path) -> int:
    """Write every point of ``index`` to ``out``; returns how many. Vectors go page by page to a raw
    float32 file: converting them all at the end (one ``np.asarray`` of 100k lists) held the GIL for
    over a second, a stall of every thread of the process. Both files are synced every
    ``DUMP_SYNC_BYTES``: on ext4 (``data=ordered``) the serving index's next ``flush()`` — an fsync,
    made with the GIL held — would otherwise wait for the whole dump's dirty pages to reach the disk."""
    out.mkdir(parents=True, exist_ok=True)
    count = synced = 0
    with (out / "points.jsonl").open("w") as meta, (out / "vectors.f32").open("wb") as raw:
        page: list[list[float]] = []
        for point in index.scroll(with_vectors=True, batch_size=DUMP_BATCH):
            meta.write(json.dumps({"id": point.id, "payload": point.payload}, default=str) + "\n")
            page.append(point.vector)
            count += 1
            if len(page) >= DUMP_BATCH:
                raw.write(np.asarray(page, dtype=np.float32).tobytes())
                page = []
                if raw.tell() - synced >= DUMP_SYNC_BYTES:
                    for f in (meta, raw):
                        f.flush()
                        os.fdatasync(f.fileno())  # releases the GIL; no index lock is held here
                    synced = raw.tell()
        if page:
            raw.write(np.asarray(page, dtype=np.float32).tobytes())
    return count


def build_threads() -> int:
    """Indexing threads for the child: every core but one (at least one), so serving keeps a core."""
    return max(1, (os.cpu_count() or 2) - 1)


def build(dump_dir: Path, target: Path, dim: int, indexing_threshold_kb: int, full_scan_threshold_kb: int) -> None:
    """The child's work: a new shard at ``target`` from the dump, optimised, flushed and closed."""
    from ordo.adapters.edge_index import UPSERT_CHUNK, EdgeVectorIndex

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


def rebuild(index: EdgeVectorIndex, timeout_s: float = 6 * 3600) -> dict[str, Any]:
    """Steps 1-4 of the module notes; returns timings. Raises ``Unavailable`` if the build fails (the
    live shard is untouched, and the journal is dropped)."""
    path = index.path
    clean_leftovers(path)
    build_dir = path.with_name(path.name + ".build")
    target = _next_generation(path)
    timings: dict[str, Any] = {}
    index.start_journal()
    try:
        t0 = time.perf_counter()
        timings["points"] = dump(index, build_dir)
        t1 = time.perf_counter()
        command = [
            sys.executable,
            "-m",
            __name__,
            str(build_dir),
            str(target),
            str(index.dim),
            str(index.indexing_threshold_kb),
            str(index.full_scan_threshold_kb),
            str(os.getpid()),
        ]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
        if proc.returncode != 0:
            raise Unavailable(f"index rebuild failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
        t2 = time.perf_counter()
        checkpoint("optimise")  # the crash tests' kill point: built, not yet swapped
        timings.update(index.swap_to(target, lambda: _point_live(path, target)))
        timings["swap_s"] = round(time.perf_counter() - t2, 3)
        timings.update(dump_s=round(t1 - t0, 3), build_s=round(t2 - t1, 3))
    except BaseException:
        index.stop_journal()
        shutil.rmtree(target, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(build_dir, ignore_errors=True)
    clean_leftovers(path)
    log.info("vector index rebuilt out of process: %s", timings)
    return timings


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
