"""Benchmark: crash recovery and index maintenance of the embedded mode (issue 12).

* **Search while the index rebuilds.** ``n`` synthetic 512-d vectors (seeded clusters, as in
  ``bench.search_latency``) in an ``EdgeVectorIndex``. Three client threads (``_Probes``: searches, an
  upload's index write, gRPC health checks) run for a fixed time with no rebuild — the baseline, the
  plain segment's exact scan — then while ``optimize()`` builds HNSW in a child process and swaps it in.
  Reported: p50/p99/max of each, the swap's shard load (GIL) and lock hold, how many calls ran, and
  the build time — which is also how long *every* thread stalled before, when ``optimize()`` ran in the
  serving process. Target: p99 during the rebuild <= 200 ms.
* **Recovery after a kill with ``pending`` images stored and not embedded.** A data dir with that
  many PENDING assets (small real PNGs through the ingest core), and their queued tasks dropped (the
  worst case: a kill that lost every task). Reported: the reconciler's time to queue them all again
  with a full scan of the catalog (after a crash) and with the clean-shutdown marker (open jobs only).
"""

from __future__ import annotations

import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import load_avg, log, percentiles_ms, temp_dir

DIM = 512
TARGET_P99_MS = 200.0
STALL_TICK = 0.005  # the ``stall`` probe's sleep (s); what it reports is how much later it woke


def _vectors(n: int, seed: int = 12) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(1000, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    points = centres[rng.integers(0, 1000, size=n)] + 0.6 * rng.normal(size=(n, DIM)).astype(np.float32) / np.sqrt(DIM)
    return points / np.linalg.norm(points, axis=1, keepdims=True)


class _Probes:
    """What clients of ``ordo up`` do while the index is maintained, each on its own thread at a client's
    pace, timing every call: a search (top 10, random unit query), an upload's index write (16 new
    vectors, upsert + flush: the rest of an upload never touches the index) and a gRPC health check
    through a real in-process ``grpc.health.v1`` server and channel (what health and the gateway's
    routing wait on: nothing but the process's own threads and GIL). A fourth, ``stall``, sleeps
    ``STALL_TICK`` again and again and records how late it wakes: a call only shows a process-wide
    freeze (a GIL held through an engine call) if it was in flight when the freeze began, while a
    sleeper is always waiting, so its worst lateness is the longest freeze every thread felt."""

    def __init__(self, index: Any, first_id: int) -> None:
        import grpc
        from grpc_health.v1 import health, health_pb2, health_pb2_grpc

        self.index = index
        self.next_id = first_id
        self.worst: dict[str, tuple[float, float]] = {}  # name → (latency s, when: s after the run's start)
        self.server = grpc.server(ThreadPoolExecutor(max_workers=4))
        servicer = health.HealthServicer()
        servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        health_pb2_grpc.add_HealthServicer_to_server(servicer, self.server)
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = health_pb2_grpc.HealthStub(self.channel)
        self._health = lambda: stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=30)
        self._health()

    def _search(self, rng: np.random.Generator) -> None:
        query = rng.normal(size=DIM)
        self.index.search((query / np.linalg.norm(query)).tolist(), 10)

    def _upload(self, rng: np.random.Generator) -> None:
        import uuid

        from ordo.domain import VectorPoint

        vectors = _vectors(16, seed=int(rng.integers(1 << 30)))
        first, self.next_id = self.next_id, self.next_id + 16
        self.index.upsert(
            [
                VectorPoint(str(uuid.UUID(int=first + i)), v.tolist(), {"asset_id": f"{first + i:064x}"})
                for i, v in enumerate(vectors)
            ]
        )

    def run(self, seconds: float, stop: threading.Event | None = None) -> dict[str, list[float]]:
        """Every probe for ``seconds`` or until ``stop``; returns each one's latencies."""
        stop = stop or threading.Event()
        deadline = time.perf_counter() + seconds
        jobs = {
            "search": (lambda rng: self._search(rng), 0.005),
            "upload": (lambda rng: self._upload(rng), 0.5),
            "health": (lambda rng: self._health(), 0.02),
            "stall": (lambda rng: time.sleep(STALL_TICK), 0.0),
        }
        out: dict[str, list[float]] = {name: [] for name in jobs}
        started = time.perf_counter()
        self.worst = {}

        def loop(name: str) -> None:
            call, pause = jobs[name]
            rng = np.random.default_rng(len(name))
            while time.perf_counter() < deadline and not stop.is_set():
                begin = time.perf_counter()
                call(rng)
                took = time.perf_counter() - begin - (STALL_TICK if name == "stall" else 0.0)
                out[name].append(took)
                if took > self.worst.get(name, (0.0, 0.0))[0]:
                    self.worst[name] = (round(took, 3), round(begin - started, 1))
                time.sleep(pause)  # a client's pace, and room for the other threads

        threads = [threading.Thread(target=loop, args=(name,)) for name in jobs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return out

    def close(self) -> None:
        self.channel.close()
        self.server.stop(None)


def rebuild_latency(n: int, root: Path, baseline_s: float = 20.0) -> dict[str, Any]:
    from bench.search_latency import _points
    from ordo.adapters.edge_index import EdgeVectorIndex

    vectors = _vectors(n)
    index = EdgeVectorIndex(root / "vectors")
    index.ensure_collection(DIM)
    t0 = time.perf_counter()
    for first in range(0, n, 2048):
        # Each point carries the payload Ordo writes for an image (every indexed field): the swap's shard
        # load, which holds the GIL, opens all of their payload indexes (with only ``asset_id`` it looked cheap).
        index.upsert(_points(vectors[first : first + 2048], first, seed=12))
    upsert_s = time.perf_counter() - t0
    probes = _Probes(index, first_id=n + 1)
    log(f"rebuild: {n:,} vectors upserted in {upsert_s:.1f} s; searching {baseline_s:.0f} s without a rebuild")
    idle = probes.run(baseline_s)
    done = threading.Event()
    timings: dict[str, Any] = {}

    def build() -> None:
        start = time.perf_counter()
        index.optimize()
        timings["build_total_s"] = round(time.perf_counter() - start, 2)
        done.set()

    log("rebuild: optimize() out of process; searching, uploading and checking health meanwhile")
    load_before = load_avg()
    thread = threading.Thread(target=build)
    thread.start()
    during = probes.run(24 * 3600, stop=done)
    worst_during = dict(probes.worst)  # to tell which phase (dump, build, swap) a stall fell in
    thread.join()
    after = probes.run(min(baseline_s, 10))
    probes.close()
    timings.update(index.last_rebuild)
    result = {
        "vectors": n,
        "upsert_s": round(upsert_s, 2),
        "load_avg_1m": [load_before, load_avg()],
        "no_rebuild": percentiles_ms(idle["search"]),
        "during_rebuild": percentiles_ms(during["search"]),
        "after_rebuild_hnsw": percentiles_ms(after["search"]),
        "other_calls": {
            name: {"no_rebuild": percentiles_ms(idle[name]), "during_rebuild": percentiles_ms(during[name])}
            for name in ("upload", "health", "stall")
        },
        "worst_during_rebuild": worst_during,
        "indexed_vectors": index.indexed_vectors_count,
        **timings,
    }
    index.close()
    p99 = result["during_rebuild"].get("p99_ms", float("inf"))
    result["target"] = {
        "name": f"search p99 during a rebuild @{n:,}",
        "target": f"<= {TARGET_P99_MS:.0f} ms",
        "value": round(p99, 1),
        "passed": p99 <= TARGET_P99_MS,
    }
    return result


def _tiny_png(i: int) -> bytes:
    from PIL import Image

    image = Image.new("RGB", (8, 8), ((i * 37) % 256, (i * 91) % 256, (i // 256) % 256))
    image.putpixel((0, 0), (i % 256, (i // 7) % 256, (i // 65536) % 256))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def recovery_time(pending: int, root: Path) -> dict[str, Any]:
    from ordo.app import AppContext
    from ordo.config import Settings
    from ordo.worker.celery_app import queue_path
    from ordo.worker.recover import CLEAN_MARKER, recover_at_start
    from ordo.worker.sqlite_queue import connect

    settings = Settings(data_dir=root, model="ordo-lite")
    ctx = AppContext(settings)
    job = ctx.ingest.start_job()
    t0 = time.perf_counter()
    for i in range(pending):
        ctx.ingest.ingest_bytes(job.job_id, _tiny_png(i), file_name=f"{i}.png")
    ingest_s = time.perf_counter() - t0
    conn = connect(queue_path(settings))
    conn.execute("DELETE FROM message")  # every task lost: the worst case
    conn.close()
    ctx.close()
    log(f"recovery: {pending:,} pending assets stored in {ingest_s:.1f} s; reconciling")
    out: dict[str, Any] = {"pending": pending, "load_avg_1m": load_avg()}
    for label, clean in (("after_crash_full_scan", False), ("after_clean_stop", True)):
        conn = connect(queue_path(settings))
        conn.execute("DELETE FROM message")
        conn.close()
        marker = root / CLEAN_MARKER
        if clean:
            marker.write_text("bench\n")
        fresh = AppContext(settings)
        start = time.perf_counter()
        report = recover_at_start(fresh)
        out[label] = {
            "seconds": round(time.perf_counter() - start, 2),
            "requeued": report.requeued_assets,
            "tasks": report.new_tasks,
        }
        fresh.close()
    return out


def run(*, rebuild_sizes: list[int], pending: int, keep: bool = False) -> dict[str, Any]:
    results: dict[str, Any] = {"rebuild": {}, "recovery": {}}
    if pending > 0:  # --pending 0 skips it
        with temp_dir("ordo-bench-recovery-", keep) as root:
            results["recovery"] = recovery_time(pending, root / "recovery")
    for n in (n for n in rebuild_sizes if n > 0):  # --rebuild-sizes 0 skips the rebuild
        with temp_dir("ordo-bench-rebuild-", keep) as root:
            results["rebuild"][str(n)] = rebuild_latency(n, root)
    return results


def table_rows(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    for n, r in results.get("rebuild", {}).items():
        sec = f"rebuild @{int(n):,} (load {r['load_avg_1m']})"
        for key, label in (("no_rebuild", "search, no rebuild"), ("during_rebuild", "search during rebuild")):
            p = r[key]
            rows.append(
                (
                    sec,
                    f"{label} p50/p99/max",
                    f"{p['p50_ms']:.1f} / {p['p99_ms']:.1f} / {p['max_ms']:.1f} ms (n={p['n']})",
                )
            )
        for name, calls in r.get("other_calls", {}).items():
            for key in ("no_rebuild", "during_rebuild"):
                p = calls[key]
                if p:
                    rows.append(
                        (
                            sec,
                            f"{name}, {key.replace('_', ' ')} p50/p99/max",
                            f"{p['p50_ms']:.1f} / {p['p99_ms']:.1f} / {p['max_ms']:.1f} ms (n={p['n']})",
                        )
                    )
        if r.get("worst_during_rebuild"):
            worst = ", ".join(f"{k} {v[0] * 1000:.0f} ms at {v[1]} s" for k, v in r["worst_during_rebuild"].items())
            rows.append((sec, "slowest call during rebuild (s after start)", worst))
        a = r["after_rebuild_hnsw"]
        rows.append((sec, "search after (HNSW) p50/p99", f"{a['p50_ms']:.1f} / {a['p99_ms']:.1f} ms"))
        rows.append(
            (
                sec,
                "build / swap hold",
                f"{r.get('build_total_s')} s total (dump {r.get('dump_s')} s, child {r.get('build_s')} s); "
                f"swap: load {r.get('load_s')} s (GIL), replay {r.get('replayed_ops')} writes "
                f"{r.get('replay_s')} s, lock held {r.get('swap_hold_s')} s",
            )
        )
    rec = results.get("recovery")
    if rec:
        sec = f"recovery, {rec['pending']:,} pending (load {rec['load_avg_1m']})"
        for key in ("after_crash_full_scan", "after_clean_stop"):
            r = rec[key]
            rows.append(
                (sec, key.replace("_", " "), f"{r['seconds']} s, {r['requeued']:,} queued in {r['tasks']} tasks")
            )
    return rows
