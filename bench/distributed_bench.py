"""Benchmark: the distributed mode on this machine (``python -m bench.run --only distributed``).

Real processes, as ``make up-distributed`` runs them (``ordo_devstack.cluster``): a private Redis (broker,
jobs), SeaweedFS (S3), the index host (qdrant-client local mode shared by every process: no Qdrant server
can be installed here), ``ordo worker`` processes; the producer is Ordo's ``IngestCore`` in this process.

* **Throughput, 1 vs 2 workers**: the same images (COCO-mini) embedded by one worker, then by two, each
  worker with one torch thread, timed from the first upload to the job's completion (worker start-up
  excluded). A fresh bucket and collection per run, so nothing is a duplicate. Ratio = 2-worker / 1-worker
  images/s; on a 2-core machine shared with other work it is bounded by the free cores, not by Ordo.
* **Queue overhead per batch**: one-image tasks through one worker with the tiny random CLIP (32×32, the
  "empty model"): wall time per batch minus the time the worker spent in its stages (fetch, decode, embed,
  upsert, store) = broker round trip + task dispatch + job accounting.
* **Bucket-watcher latency**: put an object under a watched prefix; time until its vector is in the index
  (searchable). The watcher polls every 0.5 s, so about 0.25 s of the latency is the poll interval.
"""

from __future__ import annotations

import secrets
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import MODEL, BenchError, load_coco, log
from ordo.app import AppContext, create_object_store
from ordo.config import Settings
from ordo.domain import SampleKind
from ordo.ids import asset_id_for, sample_id_for
from ordo.processes import free_port
from ordo_devstack.cluster import (
    RedisServer,
    distributed_env,
    start_index_host,
    start_worker,
    stop_all,
    wait_for_workers,
)
from ordo_devstack.seaweedfs import start_seaweedfs, stop_seaweedfs

TINY_MODEL = "random-clip:tiny"


@contextmanager
def _infrastructure(workdir: Path) -> Iterator[dict[str, str]]:
    redis_server = RedisServer(workdir / "redis").start()
    s3 = start_seaweedfs(workdir / "seaweedfs")
    index_port = free_port()
    token = secrets.token_urlsafe(32)
    host = start_index_host(workdir / "qdrant", index_port, workdir / "logs" / "index-host.log", token)
    env = distributed_env(
        workdir / "data",
        s3,
        index_port,
        redis_server.url,
        ORDO_TORCH_THREADS="1",
        ORDO_DECODE_THREADS="1",
        ORDO_INDEX_HOST_TOKEN=token,
    )
    try:
        yield env
    finally:
        stop_all([host])
        stop_seaweedfs(s3)
        redis_server.stop()


def _settings(env: dict[str, str]) -> Settings:
    return Settings(**{k.removeprefix("ORDO_").lower(): v for k, v in env.items()})


@contextmanager
def _workers(env: dict[str, str], count: int, logs: Path) -> Iterator[None]:
    procs = [start_worker(env, logs / f"worker-{uuid.uuid4().hex[:6]}.log") for _ in range(count)]
    try:
        wait_for_workers(env["ORDO_REDIS_URL"], count, procs, timeout=300)
        yield
    finally:
        stop_all(procs)
        import redis

        client = redis.Redis.from_url(env["ORDO_REDIS_URL"])
        for key in client.scan_iter(match="ordo:workers:*"):  # the next run counts only its own workers
            client.delete(key)


def _wait_final(ctx: AppContext, job_id: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        job = ctx.jobs.get(job_id)
        if job.state.is_final:
            return job
        if time.monotonic() > deadline:
            raise BenchError(f"job {job_id} not done after {timeout:.0f} s: {job.done_count}/{job.total}")
        time.sleep(0.02)


def _run_job(ctx: AppContext, files: list[Path], batch_size: int | None = None) -> tuple[float, Any]:
    if batch_size is not None:
        ctx.ingest.task_batch_size = batch_size
    start = time.perf_counter()
    job = ctx.ingest.start_job()
    for p in files:
        ctx.ingest.ingest_bytes(job.job_id, p.read_bytes(), file_name=p.name, source_uri=f"file://{p}")
    ctx.ingest.finish_enumeration(job.job_id)
    final = _wait_final(ctx, job.job_id, timeout=1800)
    return time.perf_counter() - start, final


def throughput(env: dict[str, str], files: list[Path], workers: int, logs: Path) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    run_env = {**env, "ORDO_MODEL": MODEL, "ORDO_S3_BUCKET": f"bench-{tag}", "ORDO_COLLECTION": f"bench-{tag}"}
    with _workers(run_env, workers, logs):
        ctx = AppContext(_settings(run_env))
        wall, job = _run_job(ctx, files)
        ctx.close()
    if job.succeeded != len(files):
        raise BenchError(f"{workers} worker(s): {job.succeeded}/{len(files)} embedded ({job.failures[:2]})")
    return {
        "workers": workers,
        "images": len(files),
        "wall_s": round(wall, 2),
        "images_per_s": round(len(files) / wall, 2),
        "stage_seconds": {k: round(v, 2) for k, v in job.stage_seconds.items()},
    }


def queue_overhead(env: dict[str, str], files: list[Path], logs: Path) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    run_env = {
        **env,
        "ORDO_MODEL": TINY_MODEL,
        "ORDO_S3_BUCKET": f"bench-{tag}",
        "ORDO_COLLECTION": f"bench-{tag}",
        "ORDO_TASK_BATCH_SIZE": "1",
    }
    with _workers(run_env, 1, logs):
        ctx = AppContext(_settings(run_env))
        _run_job(ctx, files[:2], batch_size=1)  # warm-up: first-task costs (connections, collection)
        ctx.ingest.task_batch_size = 1
        wall, job = _run_job(ctx, files[2:], batch_size=1)
        ctx.close()
    batches = len(files) - 2
    stages = sum(job.stage_seconds.values())
    return {
        "batches": batches,
        "wall_per_batch_ms": round(wall / batches * 1000, 1),
        "stages_per_batch_ms": round(stages / batches * 1000, 1),
        "overhead_per_batch_ms": round((wall - stages) / batches * 1000, 1),
        "note": "wall includes the producer's upload of each image (hash, probe, S3 put) overlapping the queue",
    }


def watcher_latency(env: dict[str, str], files: list[Path], logs: Path) -> dict[str, Any]:
    from minio import Minio

    from ordo.watcher.bucket_watcher import BucketWatcher, cursor_for

    tag = uuid.uuid4().hex[:8]
    run_env = {**env, "ORDO_MODEL": TINY_MODEL, "ORDO_S3_BUCKET": f"bench-{tag}", "ORDO_COLLECTION": f"bench-{tag}"}
    settings = _settings(run_env)
    bucket, uri = f"drop-{tag}", f"s3://drop-{tag}/in/"
    minio = Minio(settings.s3_endpoint, settings.s3_access_key, settings.s3_secret_key, secure=False)
    minio.make_bucket(bucket)
    latencies = []
    with _workers(run_env, 1, logs):
        ctx = AppContext(settings)
        watcher = BucketWatcher(
            ctx.ingest, lambda b: create_object_store(settings, bucket=b), cursor_for(settings, uri), uri
        )
        thread = threading.Thread(target=watcher.run, args=(0.5,), daemon=True)
        thread.start()
        try:
            for p in files:
                sample = sample_id_for(asset_id_for(p.read_bytes()), SampleKind.IMAGE)
                start = time.perf_counter()
                minio.fput_object(bucket, f"in/{p.name}", str(p))
                deadline = start + 60
                while not (ctx.active_index().dim and ctx.active_index().retrieve([sample])):
                    if time.perf_counter() > deadline:
                        raise BenchError(f"{p.name} not searchable 60 s after it was put")
                    time.sleep(0.01)
                latencies.append(time.perf_counter() - start)
        finally:
            watcher.stop()
            thread.join(5)
            ctx.close()
    return {
        "objects": len(latencies),
        "poll_interval_s": 0.5,
        "median_s": round(statistics.median(latencies), 3),
        "max_s": round(max(latencies), 3),
        "all_s": [round(x, 3) for x in latencies],
    }


def run(n_images: int = 48, keep: bool = False) -> dict[str, Any]:
    coco = load_coco()
    files = coco.files[:n_images]
    if len(files) < 8:
        raise BenchError("the distributed benchmark needs at least 8 images")
    workdir = Path(tempfile.mkdtemp(prefix="ordo-bench-distributed-"))
    logs = workdir / "logs"
    results: dict[str, Any] = {"config": {"images": len(files), "model": MODEL, "torch_threads_per_worker": 1}}
    with _infrastructure(workdir) as env:
        log(f"distributed: {len(files)} images, 1 worker")
        one = throughput(env, files, 1, logs)
        log(f"distributed: {len(files)} images, 2 workers")
        two = throughput(env, files, 2, logs)
        results["one_worker"], results["two_workers"] = one, two
        results["ratio_2_vs_1"] = round(two["images_per_s"] / one["images_per_s"], 3)
        log("distributed: queue overhead per batch (tiny model, 1-image tasks)")
        results["queue_overhead"] = queue_overhead(env, coco.files[: min(len(coco.files), 42)], logs)
        log("distributed: bucket watcher latency")
        results["watcher_latency"] = watcher_latency(env, coco.files[200:205], logs)
    if keep:
        results["workdir"] = str(workdir)
    else:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    return results
