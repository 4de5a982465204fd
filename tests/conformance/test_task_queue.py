"""Task-queue conformance: the same CeleryTaskQueue over the serverless SQLite queue (embedded) and over
Redis (distributed). A submitted EmbedTask must arrive on the embedding queue as an ``ordo.v1.EmbedBatch``
that decodes back to the same task, less the client text a task never carries (file names, URIs)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from celery import Celery

from ordo.adapters.celery_queue import CeleryTaskQueue, decode_task, encode_task
from ordo.config import Settings
from ordo.domain import BoundingBox, EmbedTask, SampleKind, SampleRef
from ordo.errors import Unavailable
from ordo.worker.celery_app import EMBED_QUEUE, EMBED_TASK, create_celery_app
from tests.fixtures.session_guard import test_redis_url

# A Redis database of its own, so tests never touch a developer's or another stack's queue.
TEST_REDIS = test_redis_url(11)


def _task(n: int = 3) -> EmbedTask:
    refs = (
        *tuple(
            SampleRef(
                f"{i:064x}", f"assets/{i:064x}/original", SampleKind.IMAGE, None, f"file:///p/{i}.jpg", f"{i}.jpg"
            )
            for i in range(n)
        ),
        SampleRef("f" * 64, "assets/x/original", SampleKind.OBJECT, BoundingBox(1, 2, 30, 40), "s3://b/k.jpg", "k.jpg"),
    )
    return EmbedTask(f"job-{uuid.uuid4().hex}-000001", "job", refs, "images-test", "tiny-clip")


def _as_sent(task: EmbedTask) -> EmbedTask:
    """What a task looks like after the queue: ids, keys and regions only."""
    return replace(task, samples=tuple(replace(r, source_uri="", file_name="") for r in task.samples))


@pytest.fixture(params=["sqlite", "redis"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Celery]:
    if request.param == "sqlite":
        settings = Settings(data_dir=tmp_path, broker_url="sqlite://")
    else:
        settings = Settings(data_dir=tmp_path, broker_url=TEST_REDIS)
    celery = create_celery_app(settings)
    with celery.connection_for_write() as conn:
        conn.SimpleQueue(EMBED_QUEUE).clear()
    yield celery
    with celery.connection_for_write() as conn:
        conn.SimpleQueue(EMBED_QUEUE).clear()


def _receive(app: Celery, timeout: float = 10.0) -> tuple[dict, list]:
    with app.connection_for_read() as conn:
        queue = conn.SimpleQueue(EMBED_QUEUE)
        message = queue.get(block=True, timeout=timeout)
        message.ack()
        args = message.decode()[0] if isinstance(message.decode(), list | tuple) else message.payload
        return message.headers, args


def test_payload_round_trip() -> None:
    task = _task()
    assert decode_task(encode_task(task)) == _as_sent(task)


def test_payload_size_does_not_depend_on_client_text() -> None:
    """A 100 KB file name once broke the embedded queue: task payloads carry no client text at all."""
    short = _task(1)
    long = replace(
        short, samples=tuple(replace(r, file_name="x" * 100_000, source_uri="u" * 100_000) for r in short.samples)
    )
    assert len(encode_task(long)) == len(encode_task(short)) < 1000


@pytest.mark.parametrize("bad", ["", "not base64!", "aGVsbG8="])
def test_undecodable_payload_is_a_value_error(bad: str) -> None:
    with pytest.raises(ValueError):
        decode_task(bad)


def test_submitted_task_arrives_intact(app: Celery) -> None:
    queue = CeleryTaskQueue(app)
    task = _task()
    queue.submit(task)
    headers, args = _receive(app)
    assert headers["task"] == EMBED_TASK
    assert headers["id"] == task.batch_id  # deterministic task id: the batch id
    assert decode_task(args[0]) == _as_sent(task)


def test_every_task_is_delivered_once(app: Celery) -> None:
    """Order is not promised across brokers, delivery is."""
    queue = CeleryTaskQueue(app)
    tasks = [_task(1) for _ in range(5)]
    for t in tasks:
        queue.submit(t)
    received = [decode_task(_receive(app)[1][0]).batch_id for _ in tasks]
    assert sorted(received) == sorted(t.batch_id for t in tasks)
    with app.connection_for_read() as conn, pytest.raises(conn.SimpleQueue(EMBED_QUEUE).Empty):
        conn.SimpleQueue(EMBED_QUEUE).get(block=True, timeout=0.5)


def test_check_passes_when_the_broker_answers(app: Celery) -> None:
    CeleryTaskQueue(app).check()


def test_broker_down_is_unavailable(tmp_path: Path) -> None:
    app = create_celery_app(Settings(data_dir=tmp_path, broker_url="redis://127.0.0.1:1/0"))
    queue = CeleryTaskQueue(app)
    start = time.monotonic()
    with pytest.raises(Unavailable) as err:
        queue.submit(_task())
    assert time.monotonic() - start < 20
    assert "unreachable" in err.value.message
    with pytest.raises(Unavailable):
        queue.check()
