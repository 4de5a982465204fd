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
3. **Build**, in a child process (``python -m ordo.adapters.edge_build``): a new shard with the same
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
the next open. ``.live`` absent means the shard is ``path`` itself (the layout before rebuilds); the
layout is ``ordo.adapters.edge_generations``'s.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ordo.adapters.edge_generations import clean_leftovers, next_generation, point_live
from ordo.chaos import checkpoint
from ordo.domain import VectorPoint
from ordo.errors import Unavailable

log = logging.getLogger(__name__)

# Points per dump page: one engine call (under the index lock, holding the GIL) stays a few ms.
DUMP_BATCH = 256
DUMP_SYNC_BYTES = 16 * 1024 * 1024
#: The child's module (``python -m``): it imports the index, which imports this module, so the child
#: lives apart (no import cycle).
BUILD_MODULE = "ordo.adapters.edge_build"


class RebuildableIndex(Protocol):
    """What a rebuild needs of ``EdgeVectorIndex``: its settings, a scroll of every point, and the
    journal and swap hooks."""

    @property
    def path(self) -> Path: ...

    @property
    def dim(self) -> int | None: ...

    @property
    def indexing_threshold_kb(self) -> int: ...

    @property
    def full_scan_threshold_kb(self) -> int: ...

    def scroll(self, *, with_vectors: bool = True, batch_size: int = 1024) -> Iterator[VectorPoint]: ...

    def start_journal(self) -> None: ...

    def stop_journal(self) -> None: ...

    def swap_to(self, target: Path, commit: Callable[[], None]) -> dict[str, float]: ...


def dump(index: RebuildableIndex, out: Path) -> int:
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


def rebuild(index: RebuildableIndex, timeout_s: float = 6 * 3600) -> dict[str, Any]:
    """Steps 1-4 of the module notes; returns timings. Raises ``Unavailable`` if the build fails (the
    live shard is untouched, and the journal is dropped)."""
    path = index.path
    clean_leftovers(path)
    build_dir = path.with_name(path.name + ".build")
    target = next_generation(path)
    timings: dict[str, Any] = {}
    index.start_journal()
    try:
        t0 = time.perf_counter()
        timings["points"] = dump(index, build_dir)
        t1 = time.perf_counter()
        command = [
            sys.executable,
            "-m",
            BUILD_MODULE,
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
        timings.update(index.swap_to(target, lambda: point_live(path, target)))
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
