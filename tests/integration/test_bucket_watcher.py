"""The bucket watcher against a real S3 server (SeaweedFS) and Redis: every new object under the prefix
is ingested exactly once, across polls and across a restart; non-images fail once, with a reason."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis
from minio import Minio

from ordo.app import AppContext, create_object_store
from ordo.config import Settings
from ordo.domain import JobState
from ordo.watcher.bucket_watcher import BucketWatcher, cursor_for
from tests.fixtures.seaweedfs import S3Server
from tests.fixtures.session_guard import test_redis_url

REDIS_URL = test_redis_url(14)


@pytest.fixture
def ctx(tmp_path: Path, s3_server: S3Server, s3_bucket: str, tiny_clip_dir: Path) -> Iterator[AppContext]:
    redis.Redis.from_url(REDIS_URL).flushdb()  # this helper's own database on the shared server
    settings = Settings(
        data_dir=tmp_path,
        object_store="s3",
        s3_endpoint=s3_server.endpoint,
        s3_access_key=s3_server.access_key,
        s3_secret_key=s3_server.secret_key,
        s3_bucket=s3_bucket,
        vector_backend="qdrant",
        qdrant_path=str(tmp_path / "qdrant"),
        broker_url=REDIS_URL,
        job_store="redis",
        redis_url=REDIS_URL,
        model=str(tiny_clip_dir),
        task_batch_size=4,
    )
    context = AppContext(settings)
    yield context
    context.close()
    redis.Redis.from_url(REDIS_URL).flushdb()


def _watcher(ctx: AppContext, uri: str) -> BucketWatcher:
    settings = ctx.settings
    return BucketWatcher(
        ctx.ingest, lambda bucket: create_object_store(settings, bucket=bucket), cursor_for(settings, uri), uri
    )


def test_new_objects_are_ingested_once_across_polls_and_restarts(
    ctx: AppContext, s3_server: S3Server, coco_images: list[Path]
) -> None:
    minio = Minio(s3_server.endpoint, s3_server.access_key, s3_server.secret_key, secure=False)
    bucket = f"cams-{uuid.uuid4().hex[:8]}"
    minio.make_bucket(bucket)
    for p in coco_images[:3]:
        minio.fput_object(bucket, f"cam1/{p.name}", str(p))
    minio.put_object(bucket, "cam1/notes.jpg", io.BytesIO(b"not an image"), 12)
    minio.fput_object(bucket, f"cam2/{coco_images[3].name}", str(coco_images[3]))  # outside the prefix
    uri = f"s3://{bucket}/cam1/"

    first = _watcher(ctx, uri).poll()
    assert (first.new, first.duplicates, first.failed, first.deferred) == (3, 0, 1, 0)
    assert [(f.source_uri, f.reason) for f in first.failures] == [(f"s3://{bucket}/cam1/notes.jpg", "NOT_AN_IMAGE")]
    job = ctx.jobs.get(first.job_id)
    assert (job.total, job.enumeration_done, job.failed, job.pending) == (4, True, 1, 3)
    assert job.state is JobState.RUNNING  # the workers have its three images to embed

    watcher = _watcher(ctx, uri)
    assert watcher.poll().job_id == ""  # nothing new: the non-image is not retried either

    # A restart: a new watcher (a new process) reads the persisted cursor.
    restarted = _watcher(ctx, uri)
    assert restarted.poll().job_id == ""
    minio.fput_object(bucket, f"cam1/{coco_images[4].name}", str(coco_images[4]))
    minio.fput_object(bucket, f"cam1/late/{coco_images[0].name}", str(coco_images[0]))  # same bytes, new key
    later = restarted.poll()
    assert (later.new, later.duplicates, later.failed) == (1, 1, 0)
    assert ctx.jobs.get(later.job_id).total == 2
    assert restarted.poll().job_id == ""


def test_an_unreachable_object_is_left_for_the_next_poll(
    ctx: AppContext, s3_server: S3Server, coco_images: list[Path]
) -> None:
    minio = Minio(s3_server.endpoint, s3_server.access_key, s3_server.secret_key, secure=False)
    bucket = f"cams-{uuid.uuid4().hex[:8]}"
    minio.make_bucket(bucket)
    minio.fput_object(bucket, f"in/{coco_images[5].name}", str(coco_images[5]))
    uri = f"s3://{bucket}/in/"
    watcher = _watcher(ctx, uri)
    real_get = watcher.store.get_bounded  # type: ignore[attr-defined]
    calls = {"n": 0}

    def flaky_get(key: str, max_bytes: int) -> bytes:  # the server drops one GET (the first), then answers
        from ordo.errors import Unavailable

        calls["n"] += 1
        if calls["n"] == 1:
            raise Unavailable("S3 endpoint is unreachable (simulated drop)")
        return real_get(key, max_bytes)

    watcher.store.get_bounded = flaky_get  # type: ignore[attr-defined]
    first = watcher.poll()
    assert (first.new, first.deferred) == (0, 1)
    second = watcher.poll()
    assert (second.new, second.deferred) == (1, 0)
    assert watcher.poll().job_id == ""


def test_watch_needs_an_s3_uri(ctx: AppContext) -> None:
    from ordo.errors import InvalidInput

    with pytest.raises(InvalidInput, match="s3://bucket/prefix"):
        _watcher(ctx, "/tmp/photos")


def test_watch_and_ops_commands(ctx: AppContext, s3_server: S3Server, coco_images: list[Path]) -> None:
    """The CLI end to end: `ordo watch --once` ingests and dead-letters the non-image; `ordo ops` shows it."""
    import json
    import os
    import subprocess
    import sys

    minio = Minio(s3_server.endpoint, s3_server.access_key, s3_server.secret_key, secure=False)
    bucket = f"cams-{uuid.uuid4().hex[:8]}"
    minio.make_bucket(bucket)
    minio.fput_object(bucket, f"in/{coco_images[6].name}", str(coco_images[6]))
    minio.put_object(bucket, "in/readme.png", io.BytesIO(b"plain text"), 10)
    s = ctx.settings
    env = {
        **os.environ,
        "ORDO_DATA_DIR": str(s.data_dir),
        "ORDO_OBJECT_STORE": "s3",
        "ORDO_S3_ENDPOINT": s.s3_endpoint,
        "ORDO_S3_ACCESS_KEY": s.s3_access_key,
        "ORDO_S3_SECRET_KEY": s.s3_secret_key,
        "ORDO_S3_BUCKET": s.s3_bucket,
        "ORDO_VECTOR_BACKEND": "qdrant",
        "ORDO_QDRANT_PATH": str(s.data_dir / "qdrant-cli"),
        "ORDO_BROKER_URL": REDIS_URL,
        "ORDO_JOB_STORE": "redis",
        "ORDO_REDIS_URL": REDIS_URL,
        "ORDO_MODEL": s.model,
    }
    ordo = [sys.executable, "-m", "ordo.cli.main"]
    watched = subprocess.run(
        [*ordo, "watch", f"s3://{bucket}/in/", "--once"], env=env, capture_output=True, text=True, timeout=120
    )
    assert watched.returncode == 0, watched.stderr
    assert "1 new, 0 duplicate, 1 failed" in watched.stderr
    assert "NOT_AN_IMAGE" in watched.stderr
    view = subprocess.run([*ordo, "ops", "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert view.returncode == 0, view.stderr
    snapshot = json.loads(view.stdout)
    assert snapshot["mode"] == "distributed"
    assert snapshot["queue"]["waiting"] == 1  # the new image's task, for a worker to take
    assert snapshot["dead_letters"]["count"] == 1
    letter = snapshot["dead_letters"]["recent"][0]
    assert (letter["source_uri"], letter["reason"], letter["worker"]) == (
        f"s3://{bucket}/in/readme.png",
        "NOT_AN_IMAGE",
        "watcher",
    )
    [job] = snapshot["jobs"]  # still running: its image waits for a worker
    assert (job["total"], job["failed"], job["pending"]) == (2, 1, 1)


def test_odd_and_bad_objects_are_reported_and_never_stop_the_scan(
    ctx: AppContext, s3_server: S3Server, coco_images: list[Path]
) -> None:
    """Zero-byte, non-image, oversized-on-read objects and odd keys (unicode, newline, 200 characters) are each
    reported with a reason and counted; the images around them are ingested in the same poll."""
    minio = Minio(s3_server.endpoint, s3_server.access_key, s3_server.secret_key, secure=False)
    bucket = f"odd-{uuid.uuid4().hex[:8]}"
    minio.make_bucket(bucket)
    photo = coco_images[6].read_bytes()
    objects = {
        "in/empty.jpg": b"",
        "in/notes.jpg": b"plain text, not an image",
        "in/\u00e9t\u00e9 \u65e5\u672c.jpg": photo,
        "in/line\nbreak.jpg": coco_images[8].read_bytes(),
        "in/" + "k" * 200 + ".jpg": coco_images[9].read_bytes(),
    }
    limit = max(len(data) for data in objects.values())
    objects["in/grew.jpg"] = b"\xff\xd8" + b"x" * limit  # over the limit, whatever its listed size says
    for key, data in objects.items():
        minio.put_object(bucket, key, io.BytesIO(data), len(data))
    uri = f"s3://{bucket}/in/"
    watcher = _watcher(ctx, uri)
    real_list = watcher.store.list

    def listing_understates(prefix: str = "", start_after: str = ""):  # a size claimed before the object grew
        for info in real_list(prefix, start_after):
            yield type(info)(key=info.key, size=10) if info.key.endswith("grew.jpg") else info

    watcher.store.list = listing_understates  # type: ignore[method-assign]
    ctx.ingest.limits = replace(ctx.ingest.limits, max_bytes=limit)
    result = watcher.poll()
    reasons = {f.source_uri.removeprefix(f"s3://{bucket}/"): f.reason for f in result.failures}
    assert reasons == {"in/empty.jpg": "EMPTY_FILE", "in/notes.jpg": "NOT_AN_IMAGE", "in/grew.jpg": "FILE_TOO_LARGE"}
    assert (result.new, result.failed, result.deferred) == (3, 3, 0)
    job = ctx.jobs.get(result.job_id)
    assert (job.total, job.failed) == (6, 3)
    assert watcher.poll().job_id == ""  # all six are handled: none is retried
