"""What one embedded-index search costs in CPU, per engine setting, and the recall it keeps.

    python -m bench.edge_search_cost                 # 100k x 256 (ordo-lite's vectors), ~3 min on 2 cores
    python -m bench.edge_search_cost --size 20000 --dim 512

Why CPU: the Qdrant Edge binding holds the GIL for a whole search, so in ``ordo up`` a search's CPU time is
time every other thread (gRPC handlers, the text batcher, uploads) waits; at 50 concurrent ``SearchText``
clients it was the largest holder of the GIL (README, "Hostile input, limits and fair use"). Three settings,
each on the same points (Ordo's payloads, clustered synthetic vectors as in ``bench.search_latency``), one
shard built once and re-opened with each configuration:

* ``engine threads``: the engine's own search pool (what shards had before ``edge_engine.SEARCH_THREADS``);
* ``one thread``: ``max_search_threads=1``;
* ``int8 + one thread``: Ordo's configuration (``edge_engine.QUANTIZATION``, rescoring ``OVERSAMPLING`` x
  limit on the float vectors).

Queries are stored vectors moved by noise (cosine ~0.86 to their source), top 11 with payloads at
``hnsw_ef`` 128, as ``SearchText`` asks for a page of 10. Recall@10 is against an exact NumPy search.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import load_avg, log

SEED = 1414
LIMIT = 11
HNSW_EF = 128


def _vectors(n: int, dim: int) -> np.ndarray:
    rng = np.random.default_rng(SEED)
    centres = rng.standard_normal((1000, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = centres[rng.integers(0, 1000, n)] + rng.standard_normal((n, dim)).astype(np.float32) * (0.6 / np.sqrt(dim))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _config(dim: int, *, threads: int | None, quantized: bool) -> Any:
    import qdrant_edge as qe

    from ordo.adapters.edge_engine import QUANTIZATION
    from ordo.adapters.edge_index import HNSW_EF_CONSTRUCT, HNSW_M

    return qe.EdgeConfig(
        vectors=qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine),
        hnsw_config=qe.HnswIndexConfig(m=HNSW_M, ef_construct=HNSW_EF_CONSTRUCT, full_scan_threshold=10_000),
        optimizers=qe.EdgeOptimizersConfig(indexing_threshold=10_000),
        quantization_config=QUANTIZATION if quantized else None,
        max_search_threads=threads,
    )


def _build(path: Path, x: np.ndarray) -> dict[str, int]:
    """The shard (HNSW, no quantization) at ``path``; returns each point id's row in ``x``."""
    import qdrant_edge as qe

    from bench.search_latency import _points
    from ordo.adapters.qdrant_filters import prepare_payload

    shard = qe.EdgeShard.create(str(path), _config(x.shape[1], threads=None, quantized=False))
    ids: dict[str, int] = {}
    for start in range(0, len(x), 1000):
        points = _points(x[start : start + 1000], start, SEED)
        ids.update((p.id, row) for row, p in enumerate(points, start))
        shard.update(
            qe.UpdateOperation.upsert_points([qe.Point(p.id, p.vector, prepare_payload(p.payload)) for p in points])
        )
    shard.optimize()
    shard.flush()
    shard.close()
    return ids


def _measure(shard: Any, queries: np.ndarray, exact: np.ndarray, ids: dict[str, int]) -> dict[str, float]:
    import qdrant_edge as qe

    from ordo.adapters.edge_engine import MODELS

    def search(q: list[float]) -> list[Any]:
        request = qe.QueryRequest(
            limit=LIMIT,
            offset=0,
            query=qe.Query.Nearest(q),
            filter=None,
            with_payload=True,
            with_vector=False,
            params=MODELS.search_params(HNSW_EF, acorn=False),
        )
        return shard.query(request)

    as_lists = [q.tolist() for q in queries]
    for q in as_lists:  # a whole pass first: a re-opened shard's first searches fault its mmap'd storage in
        search(q)
    cpu, wall = time.process_time(), time.perf_counter()
    results = [search(q) for q in as_lists]
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    recall = np.mean(
        [
            len({ids[str(h.id)] for h in hits[:10]} & set(row.tolist())) / 10
            for hits, row in zip(results, exact, strict=True)
        ]
    )
    return {
        "cpu_ms": round(cpu / len(queries) * 1000, 3),
        "wall_ms": round(wall / len(queries) * 1000, 3),
        "recall_at_10": round(float(recall), 4),
    }


def run(size: int = 100_000, dim: int = 256, queries: int = 300) -> dict[str, Any]:
    import qdrant_edge as qe

    x = _vectors(size, dim)
    rng = np.random.default_rng(SEED + 1)
    source = x[rng.choice(size, queries, replace=False)]
    q = source + rng.standard_normal(source.shape).astype(np.float32) * (0.6 / np.sqrt(dim))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    exact = np.argsort(-(q @ x.T), axis=1)[:, :10]
    out: dict[str, Any] = {"config": {"size": size, "dim": dim, "queries": queries, "limit": LIMIT, "hnsw_ef": HNSW_EF}}
    out["load_average"] = load_avg()
    with tempfile.TemporaryDirectory(prefix="ordo-bench-edge-cost-") as tmp:
        built = Path(tmp) / "built"
        started = time.perf_counter()
        log(f"building a {size:,} x {dim} shard (HNSW, no quantization)")
        ids = _build(built, x)
        out["build_s"] = round(time.perf_counter() - started, 1)
        rows: dict[str, Any] = {}
        for name, threads, quantized in (
            ("engine threads", None, False),
            ("one thread", 1, False),
            ("int8 + one thread", 1, True),
        ):
            copy = Path(tmp) / "copy"
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(built, copy)
            shard = qe.EdgeShard.load(str(copy), _config(dim, threads=threads, quantized=quantized))
            started = time.perf_counter()
            if quantized:  # the int8 copy is made when segments are (re)built, as in Ordo's rebuild
                shard.optimize()
            optimize_s = round(time.perf_counter() - started, 1)
            rows[name] = _measure(shard, q, exact, ids) | {"optimize_s": optimize_s}
            shard.close()
            log(f"  {name}: {rows[name]}")
    out["rows"] = rows
    out["load_average_after"] = load_avg()
    return out


def table(result: dict[str, Any]) -> str:
    c = result["config"]
    lines = [
        f"Edge search cost, {c['size']:,} x {c['dim']}, top {c['limit']} with payloads, hnsw_ef {c['hnsw_ef']}",
        "| setting | CPU ms / search | wall ms | recall@10 |",
        "|---|---|---|---|",
    ]
    for name, r in result["rows"].items():
        lines.append(f"| {name} | {r['cpu_ms']} | {r['wall_ms']} | {r['recall_at_10']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    result = run(args.size, args.dim, args.queries)
    print(table(result))
    print(json.dumps(result, indent=2))
