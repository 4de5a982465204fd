"""Fault tests of the distributed mode, on real servers on 127.0.0.1 and workers as real processes.

Topology per test (``ordo_devstack.cluster``): a private Redis with an append-only file (broker + jobs +
dead letters; restartable without touching the shared :6379), a private SeaweedFS (S3; stoppable), the
index host (qdrant-client local mode lent to every process: no Qdrant server can be installed here),
``ordo worker`` processes with the tiny CLIP, and the real producer code (``IngestCore``) in the test.

1. two workers, one SIGKILLed mid-batch → its batch is redelivered; every image indexed exactly once;
2. Redis restarted during a job → the job completes, counts exact;
3. the S3 server stopped, then restarted → retries succeed, nothing lost;
4. a poison file → a dead letter with its reason; the rest completes; metrics and /ops show it.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from base64 import b64encode
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

import tests.fixtures.seaweedfs as weed
from ordo.app import AppContext
from ordo.config import Settings
from ordo.domain import Job, JobState, SampleKind
from ordo.ids import asset_id_for, sample_id_for
from ordo.processes import free_port
from ordo.worker.celery_app import EMBED_QUEUE, create_celery_app
from ordo.worker.dead_letters import create_dead_letters
from ordo_devstack.cluster import (
    RedisServer,
    http_get,
    start_index_host,
    start_worker,
    stop_all,
    wait_for_port,
    wait_for_workers,
)

pytestmark = pytest.mark.timeout(120)
# The index host's bearer token for this module's servers (random per session; it has no default).
INDEX_HOST_TOKEN = secrets.token_urlsafe(32)


@dataclass
class Servers:
    """Redis, SeaweedFS and the index host, shared by this module's tests (each test has its own bucket,
    collection and data dir, and starts from an empty Redis: this module's own server, never :6379)."""

    tmp: Path
    redis: RedisServer
    s3: weed.S3Server
    index_port: int
    index_host: subprocess.Popen[bytes]


@dataclass
class Cluster:
    tmp: Path
    servers: Servers
    env: dict[str, str]
    settings: Settings
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def redis(self) -> RedisServer:
        return self.servers.redis

    @property
    def s3(self) -> weed.S3Server:
        return self.servers.s3

    def start_workers(self, count: int, **extra_env: str) -> list[subprocess.Popen[bytes]]:
        started = [
            start_worker({**self.env, **extra_env}, self.tmp / "logs" / f"worker-{len(self.workers) + i}.log")
            for i in range(count)
        ]
        self.workers += started
        wait_for_workers(self.settings.redis_url, len(self.workers), started, timeout=90)
        return started

    def context(self) -> AppContext:
        return AppContext(self.settings)

    def logs(self) -> str:
        parts = []
        for folder in (self.tmp / "logs", self.servers.tmp / "logs"):
            for log in sorted(folder.glob("*.log")):
                parts.append(f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-30:]))
        return "\n".join(parts)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    tmp = tmp_path_factory.mktemp("fault-servers")
    redis_server = RedisServer(tmp / "redis").start()
    s3 = weed.start_seaweedfs(tmp / "seaweedfs", weed.TEST_ACCESS_KEY, weed.TEST_SECRET_KEY)
    index_port = free_port()
    index_host = start_index_host(tmp / "qdrant", index_port, tmp / "logs" / "index-host.log", INDEX_HOST_TOKEN)
    shared = Servers(tmp, redis_server, s3, index_port, index_host)
    try:
        yield shared
    finally:
        stop_all([shared.index_host], timeout=10)
        weed.stop_seaweedfs(shared.s3)
        shared.redis.stop()


@pytest.fixture
def cluster(servers: Servers, tmp_path: Path, tiny_clip_dir: Path) -> Iterator[Cluster]:
    redis.Redis.from_url(servers.redis.url).flushall()  # this module's own Redis: a clean slate per test
    tag = uuid.uuid4().hex[:8]
    env = {
        "ORDO_DATA_DIR": str(tmp_path / "data"),
        "ORDO_OBJECT_STORE": "s3",
        "ORDO_S3_ENDPOINT": servers.s3.endpoint,
        "ORDO_S3_ACCESS_KEY": servers.s3.access_key,
        "ORDO_S3_SECRET_KEY": servers.s3.secret_key,
        "ORDO_S3_BUCKET": f"faults-{tag}",
        "ORDO_VECTOR_BACKEND": "qdrant",
        "ORDO_QDRANT_URL": f"ordo-index://127.0.0.1:{servers.index_port}",
        "ORDO_INDEX_HOST_TOKEN": INDEX_HOST_TOKEN,
        "ORDO_QDRANT_PATH": "",
        "ORDO_COLLECTION": f"faults-{tag}",
        "ORDO_BROKER_URL": f"{servers.redis.url}/0",
        "ORDO_JOB_STORE": "redis",
        "ORDO_REDIS_URL": f"{servers.redis.url}/1",
        "ORDO_MODEL": str(tiny_clip_dir),
        "ORDO_TASK_BATCH_SIZE": "4",
        "ORDO_VISIBILITY_TIMEOUT": "6",
        "ORDO_TORCH_THREADS": "1",
        "ORDO_DECODE_THREADS": "1",
    }
    settings = Settings(**{k.removeprefix("ORDO_").lower(): v for k, v in env.items()})
    c = Cluster(tmp_path, servers, env, settings)
    try:
        yield c
    finally:
        stop_all(c.workers, timeout=15)


def _ingest(ctx: AppContext, files: list[Path], extra: dict[str, bytes] | None = None) -> str:
    job = ctx.ingest.start_job()
    for path in files:
        ctx.ingest.ingest_bytes(job.job_id, path.read_bytes(), file_name=path.name, source_uri=f"file://{path}")
    for name, data in (extra or {}).items():
        ctx.ingest.ingest_bytes(job.job_id, data, file_name=name, source_uri=f"file:///{name}")
    ctx.ingest.finish_enumeration(job.job_id)
    return job.job_id


def _wait_final(c: Cluster, ctx: AppContext, job_id: str, timeout: float = 60) -> Job:
    deadline = time.monotonic() + timeout
    while True:
        try:
            job = ctx.jobs.get(job_id)
            if job.state.is_final:
                return job
        except Exception:  # Redis restarting: keep polling
            job = None
        if time.monotonic() > deadline:
            pytest.fail(f"job not final after {timeout:.0f} s: {job}\n{c.logs()}")
        time.sleep(0.1)


def _assert_indexed_once(ctx: AppContext, files: list[Path]) -> None:
    ids = [sample_id_for(asset_id_for(p.read_bytes()), SampleKind.IMAGE) for p in files]
    assert ctx.active_index().count() == len(files)
    assert {p.id for p in ctx.active_index().retrieve(ids)} == set(ids)


def _unacked(c: Cluster) -> int:
    return int(redis.Redis.from_url(c.env["ORDO_BROKER_URL"]).hlen("unacked"))


def _hold_restore_lock_as_a_dead_sweep_would(c: Cluster) -> None:
    """Take the restore sweep's Redis lock the way kombu's sweep does, with the expiry Ordo's Celery app gives
    it, and never release it: the state a worker killed inside its sweep leaves behind. A fake of that fault
    (a sweep lasts about a millisecond, so a kill lands inside one only by chance):
    with kombu's default expiry (5 min) no batch would come back within this test's timeouts."""
    with create_celery_app(c.settings).connection_for_write() as connection:
        qos = connection.default_channel.qos
        lock = redis.Redis.from_url(c.env["ORDO_BROKER_URL"]).lock(
            qos.unacked_mutex_key, timeout=qos.unacked_mutex_expire
        )
        assert lock.acquire(blocking=False)


def _broker_state(c: Cluster) -> str:
    """What the broker holds, for a failure's message: each unacknowledged task's age, the queue's length and
    the restore sweep's mutex (a worker killed inside a sweep leaves it held until it expires)."""
    client = redis.Redis.from_url(c.env["ORDO_BROKER_URL"])
    now = time.time()
    ages = {
        tag.decode()[:8]: round(now - score, 1) for tag, score in client.zrange("unacked_index", 0, -1, withscores=True)
    }
    return (
        f"unacked ages (s): {ages}; queued: {client.llen(EMBED_QUEUE)}; "
        f"restore mutex ttl: {client.ttl('unacked_mutex')}"
    )


def test_a_worker_killed_mid_batch_loses_nothing(cluster: Cluster, coco_images: list[Path]) -> None:
    files = coco_images[:24]
    victim, _survivor = cluster.start_workers(2)
    ctx = cluster.context()
    job_id = _ingest(ctx, files)
    # Both workers hold a batch (prefetch 1, acks late): killing one now kills it mid-batch.
    deadline = time.monotonic() + 30
    while _unacked(cluster) < 2:
        assert time.monotonic() < deadline, f"workers never both busy\n{cluster.logs()}"
        time.sleep(0.005)
    _hold_restore_lock_as_a_dead_sweep_would(cluster)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(10)
    assert _unacked(cluster) >= 1  # the victim's batch: taken, never acknowledged
    job = _wait_final(cluster, ctx, job_id)
    assert (job.state, job.succeeded, job.failed, job.pending) == (JobState.SUCCEEDED, 24, 0, 0)
    _assert_indexed_once(ctx, files)
    # The job is recorded done inside a task, which is acknowledged just after it returns (acks_late): when the
    # victim died between the two, its batch counts already and its message is still to come back (after the
    # visibility timeout, 6 s, and a sweep, 1 s) and run again as a no-op. Bounded at 30 s: that path twice over
    # on a loaded runner (CI once saw it unfinished at 15 s; the message now says what the broker held).
    deadline = time.monotonic() + 30
    while _unacked(cluster) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _unacked(cluster) == 0, f"{_broker_state(cluster)}\n{cluster.logs()}"


def test_redis_restarted_during_a_job(cluster: Cluster, coco_images: list[Path]) -> None:
    files = coco_images[40:64]
    cluster.start_workers(1)
    ctx = cluster.context()
    job_id = _ingest(ctx, files)
    deadline = time.monotonic() + 30
    while ctx.jobs.get(job_id).succeeded == 0:  # the job is under way
        assert time.monotonic() < deadline, cluster.logs()
        time.sleep(0.01)
    cluster.redis.restart(down_for=1.0)
    job = _wait_final(cluster, ctx, job_id)
    assert (job.state, job.succeeded, job.failed) == (JobState.SUCCEEDED, 24, 0), cluster.logs()
    _assert_indexed_once(ctx, files)


def test_s3_stopped_then_restarted(cluster: Cluster, coco_images: list[Path]) -> None:
    files = coco_images[76:100]
    [worker] = cluster.start_workers(1)  # it needs S3 at start-up (model records), so it starts first
    worker.send_signal(signal.SIGSTOP)  # ... and waits, paused, until the queue is full and S3 is gone
    ctx = cluster.context()
    job_id = _ingest(ctx, files)
    weed.stop_seaweedfs(cluster.s3)
    worker.send_signal(signal.SIGCONT)  # every batch now meets the outage and backs off
    time.sleep(2)
    assert ctx.jobs.get(job_id).succeeded == 0
    cluster.servers.s3 = weed.start_seaweedfs(  # same ports, same data
        cluster.servers.tmp / "seaweedfs", weed.TEST_ACCESS_KEY, weed.TEST_SECRET_KEY, ports=cluster.s3.ports
    )
    job = _wait_final(cluster, ctx, job_id, timeout=90)
    assert (job.state, job.succeeded, job.failed) == (JobState.SUCCEEDED, 24, 0), (job.failures, cluster.logs())
    _assert_indexed_once(ctx, files)


def test_poison_file_becomes_a_dead_letter(
    cluster: Cluster, coco_images: list[Path], odd_images: dict[str, bytes]
) -> None:
    metrics_port = free_port()
    cluster.start_workers(1, ORDO_METRICS_PORT=str(metrics_port))
    ctx = cluster.context()
    files = coco_images[100:110]
    job_id = _ingest(ctx, files, {"poison.jpg": odd_images["truncated_jpeg"]})
    job = _wait_final(cluster, ctx, job_id)
    assert (job.state, job.succeeded, job.failed) == (JobState.PARTIALLY_SUCCEEDED, 10, 1)
    assert [(f.source_uri, f.reason) for f in job.failures] == [("file:///poison.jpg", "TRUNCATED")]
    _assert_indexed_once(ctx, files)
    letters = create_dead_letters(cluster.settings)
    assert letters.count() == 1
    [letter] = letters.list()
    assert (letter.job_id, letter.source_uri, letter.reason) == (job_id, "file:///poison.jpg", "TRUNCATED")
    assert letter.message and letter.worker
    # The worker's own metrics and the shared ops view tell the same story.
    metrics = http_get(f"http://127.0.0.1:{metrics_port}/metrics")
    assert 'ordo_worker_images_total{outcome="embedded"} 10.0' in metrics
    assert 'ordo_worker_dead_letters_total{reason="TRUNCATED"} 1.0' in metrics
    assert "ordo_dead_letters 1.0" in metrics
    ops = json.loads(http_get(f"http://127.0.0.1:{metrics_port}/ops"))
    assert ops["queue"] == {"waiting": 0, "in_flight": 0}
    assert ops["dead_letters"]["count"] == 1
    assert ops["dead_letters"]["recent"][0]["reason"] == "TRUNCATED"
    assert [w["images"] for w in ops["workers"]] == [10]


def test_flower_lists_ordos_queue_before_any_worker(tmp_path: Path) -> None:
    """Flower shows only queues workers consume, unless it loads an app that declares them: Ordo's does."""
    redis_server = RedisServer(tmp_path / "redis").start()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWER_")}
    env["ORDO_BROKER_URL"] = f"{redis_server.url}/0"
    log = tmp_path / "flower.log"
    flower = subprocess.Popen(
        [sys.executable, "-m", "ordo.cli.main", "ops", "flower", "--port", str(port)],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, 60, flower)
        assert http_get(f"http://127.0.0.1:{port}/healthcheck").strip() == "OK"
        redis.Redis.from_url(f"{redis_server.url}/0").rpush("ordo.embed", b"{}")  # one waiting message
        # Never a default password: Flower runs with a credential generated for this run, printed once.
        url = f"http://127.0.0.1:{port}/api/queues/length"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=10)
        assert refused.value.code == 401
        credential = (
            log.read_text().split("Flower sign-in (generated; set FLOWER_BASIC_AUTH to choose): ")[1].split()[0]
        )
        request = urllib.request.Request(
            url, headers={"Authorization": "Basic " + b64encode(credential.encode()).decode()}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            queues = json.loads(answer.read())
        assert {"name": "ordo.embed", "messages": 1} in queues["active_queues"]
    finally:
        stop_all([flower], timeout=10)
        redis_server.stop()


def test_a_job_whose_queue_was_lost_is_resumed(cluster: Cluster, coco_images: list[Path]) -> None:
    import grpc

    from ordo.client import OrdoClient
    from ordo.errors import Conflict
    from ordo.grpc_api.server import OrdoServer
    from ordo.v1 import ingest_pb2
    from ordo.worker.resume import resume_job

    files = coco_images[110:122]
    ctx = cluster.context()
    job_id = _ingest(ctx, files)  # no worker yet: every task waits in the queue
    with pytest.raises(Conflict, match="still queued"):
        resume_job(ctx, job_id)  # would embed and count everything twice
    redis.Redis.from_url(cluster.env["ORDO_BROKER_URL"]).delete("ordo.embed")  # the broker lost its data
    server = OrdoServer(ctx, ("ingest",), "127.0.0.1", 0).start()  # resumed through the contract
    try:
        client = OrdoClient(ctx.settings.model_copy(update={"address": f"127.0.0.1:{server.port}"}))
        result = client.ingest.ResumeJob(ingest_pb2.ResumeJobRequest(job_id=job_id))
        with pytest.raises(grpc.RpcError) as err:
            client.ingest.ResumeJob(ingest_pb2.ResumeJobRequest(job_id="no-such-job"))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        server.stop()
    assert (result.requeued, result.tasks) == (12, 3)
    cluster.start_workers(1)
    job = _wait_final(cluster, ctx, job_id)
    assert (job.state, job.succeeded, job.failed, job.pending) == (JobState.SUCCEEDED, 12, 0, 0)
    _assert_indexed_once(ctx, files)
    with pytest.raises(Conflict, match="already succeeded"):
        resume_job(ctx, job_id)


def test_one_worker_runs_tasks_at_once_and_they_share_forward_passes(cluster: Cluster, coco_images: list[Path]) -> None:
    metrics_port = free_port()
    cluster.start_workers(
        1, ORDO_WORKER_CONCURRENCY="2", ORDO_WORKER_BATCH_WAIT_MS="300", ORDO_METRICS_PORT=str(metrics_port)
    )
    ctx = cluster.context()
    files = coco_images[122:146]
    job = _wait_final(cluster, ctx, _ingest(ctx, files))
    assert (job.state, job.succeeded, job.failed) == (JobState.SUCCEEDED, 24, 0)
    _assert_indexed_once(ctx, files)
    metrics = http_get(f"http://127.0.0.1:{metrics_port}/metrics")
    merged = next(line for line in metrics.splitlines() if line.startswith("ordo_worker_merged_forward_passes_total"))
    assert float(merged.split()[-1]) >= 1, cluster.logs()


def test_a_service_killed_mid_upload_loses_nothing_acknowledged(cluster: Cluster, coco_images: list[Path]) -> None:
    """`ordo serve all` SIGKILLed while a client streams an upload: images it had stored but not yet queued
    (its partial batch died with it) are queued again when the client uploads them again, instead of
    being called duplicates; every image ends up indexed once."""
    from ordo.client import OrdoClient
    from ordo_devstack.cluster import start_services

    files = coco_images[30:50]
    cluster.start_workers(1)
    port = free_port()
    log = cluster.tmp / "logs" / "services.log"
    services = start_services(cluster.env, port, log)
    client = OrdoClient(cluster.settings.model_copy(update={"address": f"127.0.0.1:{port}"}))
    sent = 0

    def kill_after_some(path: Path, size: int) -> None:
        nonlocal sent
        sent += 1
        if sent == 11:  # the first small task was queued; the rest of the stored images sat in memory
            os.kill(services.pid, signal.SIGKILL)

    with pytest.raises(Exception):  # noqa: B017 — the stream dies with the service: nothing acknowledged
        client.upload(files, on_file=kill_after_some, timeout=60)
    services.wait(10)
    services = start_services(cluster.env, port, log)
    try:
        response = client.upload(files, timeout=60)
        ctx = cluster.context()
        _wait_final(cluster, ctx, response.job.job_id)
        _assert_indexed_once(ctx, files)
    finally:
        stop_all([services], timeout=15)
