"""How long loading an embedded-index shard holds the GIL, with its vectors and payload indexes in RAM or mapped.

    python -m bench.edge_index_load                  # 100k x 256 (ordo-lite's vectors), ~3 min on 2 cores
    python -m bench.edge_index_load --size 20000 --dim 512

Why: a rebuild (``ordo.adapters.edge_rebuild``) ends by loading the new shard in the serving process, and the
Qdrant Edge binding holds the GIL through ``EdgeShard.load``, so every thread of ``ordo up`` (searches,
uploads, health checks, the gateway) waits that long once per rebuild. Most of that time was the engine
rebuilding its immutable payload indexes in RAM (a hash map per keyword field, a B-tree per number or date);
``edge_engine.MAPPED_INDEXES`` leaves the per-point ones in their files instead, and ``edge_engine.VECTOR_MEMORY``
the float vectors (the engine brought them all into RAM at load).

Two shards hold the same points (Ordo's payloads, clustered synthetic vectors as in ``bench.search_latency``),
built once and cached: ``in RAM`` (every index rebuilt in RAM and the vectors read in at load, as before) and
``mapped`` (Ordo's placement). Rounds alternate the two; the table gives each one's load, wall (how long the
GIL is held: a thread spinning beside it waits exactly that long) and CPU, and what a search costs on it in
CPU: with no filter, with the ``kind`` filter and a date range (fields kept in RAM) and with a minimum height
(a mapped one).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import load_avg, log

SEED = 1414
LIMIT = 11
PLACEMENTS = ("in RAM", "mapped")


@contextmanager
def _placement(name: str) -> Any:
    """Builds with ``name``'s placement: ``in RAM`` empties ``MAPPED_INDEXES`` and brings the float vectors
    into RAM (the engine's default, ``Memory.Cached``) while the shard is made."""
    import qdrant_edge as qe

    from ordo.adapters import edge_index

    kept = edge_index.MAPPED_INDEXES, edge_index.VECTOR_MEMORY
    if name == "in RAM":
        edge_index.MAPPED_INDEXES, edge_index.VECTOR_MEMORY = frozenset(), qe.Memory.Cached
    try:
        yield
    finally:
        edge_index.MAPPED_INDEXES, edge_index.VECTOR_MEMORY = kept


def _build(path: Path, size: int, dim: int, placement: str) -> None:
    from bench.search_latency import fill_with_payloads
    from ordo.adapters.edge_index import EdgeVectorIndex

    log(f"building the {placement!r} shard of {size:,} x {dim} at {path} (cached for later runs)")
    with _placement(placement):
        index = EdgeVectorIndex(path)
        try:
            index.ensure_collection(dim)
            fill_with_payloads(index, size, dim, SEED)
            index.optimize_here()  # in this process: its GIL stalls nothing that matters here
        finally:
            index.close()


def _shard(size: int, dim: int, placement: str) -> Path:
    from bench.search_latency import cache_root
    from ordo.adapters.edge_engine import MAPPED_INDEXES

    slug = "in-ram" if placement == "in RAM" else "mapped-vectors-" + "-".join(sorted(MAPPED_INDEXES))
    root = cache_root() / f"edge-index-load-{size}x{dim}-s{SEED}-{slug}"
    if not (root / "done").exists():
        shutil.rmtree(root, ignore_errors=True)
        _build(root / "shard", size, dim, placement)
        (root / "done").write_text(json.dumps({"size": size, "dim": dim}))
    return root / "shard"


def _load(path: Path) -> tuple[float, float]:
    import qdrant_edge as qe

    wall, cpu = time.perf_counter(), time.process_time()
    shard = qe.EdgeShard.load(str(path))
    loaded = time.perf_counter() - wall, time.process_time() - cpu
    shard.close()
    return loaded


def _search_cpu(path: Path, queries: np.ndarray) -> dict[str, float]:
    """Median CPU of one top-11 search (ms) per filter, through the adapter ``ordo up`` uses."""
    from ordo.adapters.edge_index import EdgeVectorIndex
    from ordo.domain import Filter, SampleKind

    start = datetime(2024, 1, 1, tzinfo=UTC)  # bench.search_latency's first ingested_at
    filters = {
        "none": None,
        "kind": Filter(kinds=(SampleKind.IMAGE,)),
        "date range": Filter(ingested_after=start, ingested_before=start + timedelta(hours=6)),
        "min height": Filter(min_height=479),
    }
    index = EdgeVectorIndex(path)
    try:
        out = {}
        for name, flt in filters.items():
            for q in queries[:20]:
                index.search(q.tolist(), LIMIT, filter=flt)
            times = []
            for q in queries:
                cpu = time.thread_time()
                if not index.search(q.tolist(), LIMIT, filter=flt):
                    raise RuntimeError(f"no hits with filter {name!r}")
                times.append(time.thread_time() - cpu)
            out[name] = round(float(np.median(times)) * 1000, 3)
        return out
    finally:
        index.close()


def run(size: int = 100_000, dim: int = 256, rounds: int = 5, queries: int = 300) -> dict[str, Any]:
    shards = {p: _shard(size, dim, p) for p in PLACEMENTS}
    loads: dict[str, list[tuple[float, float]]] = {p: [] for p in PLACEMENTS}
    for _ in range(rounds):
        for placement, path in shards.items():
            loads[placement].append(_load(path))
    rng = np.random.default_rng(SEED + 1)
    q = rng.normal(size=(queries, dim)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    rows = {}
    for placement, path in shards.items():
        walls, cpus = zip(*loads[placement], strict=True)
        rows[placement] = {
            "load_wall_s": [round(w, 3) for w in walls],
            "load_cpu_s": [round(c, 3) for c in cpus],
            "search_cpu_ms": _search_cpu(path, q),
        }
    return {
        "config": {"size": size, "dim": dim, "rounds": rounds, "queries": queries},
        "rows": rows,
        "load_avg_1m": load_avg(),
    }


def table(result: dict[str, Any]) -> str:
    config = result["config"]
    lines = [
        f"shard load at {config['size']:,} x {config['dim']} ({config['rounds']} alternating rounds; load average "
        f"{result['load_avg_1m']})",
        "| payload indexes | load wall s (median, max) | load CPU s (median) | search CPU ms: none/kind/dates/height |",
        "|---|---|---|---|",
    ]
    for placement, row in result["rows"].items():
        s = row["search_cpu_ms"]
        lines.append(
            f"| {placement} | {np.median(row['load_wall_s']):.3f}, {max(row['load_wall_s']):.3f} | "
            f"{np.median(row['load_cpu_s']):.3f} | {s['none']} / {s['kind']} / {s['date range']} / {s['min height']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    result = run(args.size, args.dim, args.rounds, args.queries)
    print(json.dumps(result, indent=2))
    print(table(result))
