"""The distributed configuration through the same code path as the embedded one: a real S3 server
(SeaweedFS), Redis as Celery broker and job store, qdrant-client for the vector index (local mode:
no Qdrant server binary exists here), a real gRPC channel, and a real Celery worker consuming Redis.

Also: a dependency that is down answers UNAVAILABLE with a readable message, and nothing is lost."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import redis
from celery.contrib.testing.worker import start_worker

from ordo.app import AppContext, set_current_context
from ordo.client import OrdoClient
from ordo.config import Settings
from ordo.grpc_api.server import SERVICES, OrdoServer
from ordo.grpc_api.status import error_reason
from ordo.security.keys import KeyStore
from ordo.security.principal import Role
from ordo.v1 import common_pb2, ingest_pb2, search_pb2
from ordo.worker.celery_app import EMBED_QUEUE
from tests.fixtures.seaweedfs import S3Server
from tests.fixtures.session_guard import test_redis_url

REDIS_DB_URL = test_redis_url(12)


def _settings(tmp_path: Path, s3_server: S3Server, bucket: str, model: Path, **extra: object) -> Settings:
    return Settings(
        data_dir=tmp_path,
        object_store="s3",
        s3_endpoint=s3_server.endpoint,
        s3_access_key=s3_server.access_key,
        s3_secret_key=s3_server.secret_key,
        s3_bucket=bucket,
        vector_backend="qdrant",
        qdrant_path=str(tmp_path / "qdrant"),
        broker_url=REDIS_DB_URL,
        job_store="redis",
        redis_url=REDIS_DB_URL,
        model=str(model),
        task_batch_size=4,
        **extra,
    )


@pytest.fixture
def distributed(tmp_path: Path, s3_server: S3Server, s3_bucket: str, tiny_clip_dir: Path) -> Iterator[OrdoClient]:
    redis.Redis.from_url(REDIS_DB_URL).flushdb()  # a database of its own: never the shared default
    # With keys, as the distributed topology always runs: the key lives in the S3 store the services share.
    settings = _settings(tmp_path, s3_server, s3_bucket, tiny_clip_dir, auth="required", ingest_buckets="photos-*")
    ctx = AppContext(settings)
    set_current_context(ctx)
    key = KeyStore(ctx.store).create(role=Role.ADMIN, name="distributed test").token
    server = OrdoServer(ctx, SERVICES, "127.0.0.1", 0).start()
    client = OrdoClient(Settings(address=f"127.0.0.1:{server.port}", api_key=key))
    with start_worker(ctx.celery, pool="solo", queues=[EMBED_QUEUE], perform_ping_check=False, shutdown_timeout=30):
        yield client
    server.stop()
    ctx.close()
    set_current_context(None)


def _wait(client: OrdoClient, job_id: str) -> common_pb2.Job:
    job = None
    for update in client.ingest.WatchJob(ingest_pb2.WatchJobRequest(job_id=job_id), timeout=120):
        job = update.job
    assert job is not None
    return job


def test_ingest_and_search_on_server_adapters(distributed: OrdoClient, coco_images: list[Path]) -> None:
    files = coco_images[50:60]
    response = distributed.upload(files)
    job = _wait(distributed, response.job.job_id)
    assert (job.succeeded, job.failed, job.state) == (10, 0, common_pb2.JOB_STATE_SUCCEEDED)
    stats = distributed.ingest.GetStats(ingest_pb2.GetStatsRequest())
    assert (stats.mode, stats.object_backend, stats.vector_backend, stats.queue_backend) == (
        "distributed",
        "s3",
        "qdrant",
        "redis",
    )
    assert (stats.asset_count, stats.vector_count) == (10, 10)
    hit = distributed.search.SearchImage(search_pb2.SearchImageRequest(image=files[3].read_bytes(), page_size=1)).hits[
        0
    ]
    assert hit.asset.asset_id == response.results[3].asset_id
    assert hit.score == pytest.approx(1.0, abs=1e-3)
    # Re-running the same upload embeds nothing new (content-addressed ids, deterministic points).
    again = _wait(distributed, distributed.upload(files).job.job_id)
    assert (again.duplicates, again.succeeded) == (10, 0)
    assert distributed.ingest.GetStats(ingest_pb2.GetStatsRequest()).vector_count == 10


def test_ingest_from_a_bucket(distributed: OrdoClient, s3_server: S3Server, coco_images: list[Path]) -> None:
    from minio import Minio

    bucket = f"photos-{uuid.uuid4().hex[:8]}"
    minio = Minio(s3_server.endpoint, s3_server.access_key, s3_server.secret_key, secure=False)
    minio.make_bucket(bucket)
    for p in coco_images[60:63]:
        minio.fput_object(bucket, f"2024/{p.name}", str(p))
    minio.put_object(bucket, "2024/notes.jpg", __import__("io").BytesIO(b"not an image"), 12)
    minio.fput_object(bucket, f"other/{coco_images[63].name}", str(coco_images[63]))
    job = distributed.ingest.IngestUris(ingest_pb2.IngestUrisRequest(uris=[f"s3://{bucket}/2024/"])).job
    job = _wait(distributed, job.job_id)
    assert (job.total, job.succeeded, job.failed) == (4, 3, 1)
    assert job.failures[0].source_uri == f"s3://{bucket}/2024/notes.jpg"
    assert job.failures[0].reason == "NOT_AN_IMAGE"
    hits = distributed.search.SearchText(
        search_pb2.SearchTextRequest(
            query="photo", page_size=10, filter=common_pb2.Filter(source_uri_prefix=f"s3://{bucket}/2024/")
        )
    ).hits
    assert len(hits) == 3


def test_object_store_down_is_unavailable(tmp_path: Path, tiny_clip_dir: Path, coco_images: list[Path]) -> None:
    dead = S3Server(endpoint="127.0.0.1:9", access_key="k", secret_key="s")
    redis.Redis.from_url(REDIS_DB_URL).flushdb()
    settings = _settings(tmp_path, dead, "nowhere", tiny_clip_dir)
    ctx = AppContext(settings)
    server = OrdoServer(ctx, ("ingest",), "127.0.0.1", 0).start()
    try:
        client = OrdoClient(Settings(address=f"127.0.0.1:{server.port}"))
        start = time.monotonic()
        with pytest.raises(grpc.RpcError) as err:
            client.upload(coco_images[:2], timeout=60)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "127.0.0.1:9" in err.value.details()
        assert error_reason(err.value)
        assert time.monotonic() - start < 30
        # Nothing is left hanging: the job ended, with the files that met the outage (both were stored as one
        # group) and its reason for each.
        job = client.ingest.ListJobs(ingest_pb2.ListJobsRequest(page_size=1)).jobs[0]
        assert job.state == common_pb2.JOB_STATE_FAILED
        assert (job.total, job.failed) == (2, 2)
        assert {f.reason for f in job.failures} == {error_reason(err.value)}
    finally:
        server.stop()
        ctx.close()
