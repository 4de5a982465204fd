"""The embedded SQLite queue (``ordo.worker.sqlite_queue``) through Celery/kombu, as the worker uses it:
a task is deleted only when acknowledged, a task taken by a process that is SIGKILLed comes back, a
corrupt record becomes a dead letter with its reason instead of stopping the consumer, and an
oversized message is refused at the producer."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from celery import Celery

from ordo.adapters.celery_queue import CeleryTaskQueue, decode_task
from ordo.config import Settings
from ordo.domain import EmbedTask, SampleKind, SampleRef
from ordo.errors import Unavailable
from ordo.worker import sqlite_queue
from ordo.worker.celery_app import EMBED_QUEUE, create_celery_app, queue_path


def _task() -> EmbedTask:
    ref = SampleRef("a" * 64, f"assets/{'a' * 64}/original", SampleKind.IMAGE)
    return EmbedTask(f"job-{uuid.uuid4().hex}-000001", "job", (ref,), "", "")


def _app(tmp_path: Path) -> Celery:
    return create_celery_app(Settings(data_dir=tmp_path))


def _take(app: Celery, timeout: float = 5.0) -> EmbedTask:
    """Take one task and acknowledge it (as the worker does once the task's vectors are written)."""
    with app.connection_for_read() as conn:
        message = conn.SimpleQueue(EMBED_QUEUE).get(block=True, timeout=timeout)
        message.ack()
        return decode_task(message.decode()[0][0])


def test_a_message_is_deleted_on_ack_not_when_taken(tmp_path: Path) -> None:
    app = _app(tmp_path)
    CeleryTaskQueue(app).submit(_task())
    path = queue_path(Settings(data_dir=tmp_path))
    with app.connection_for_read() as conn:
        message = conn.SimpleQueue(EMBED_QUEUE).get(block=True, timeout=5)
        assert sqlite_queue.counts(path) == {"ready": 0, "taken": 1, "dead": 0}
        message.ack()
        assert sqlite_queue.counts(path) == {"ready": 0, "taken": 0, "dead": 0}


def test_a_task_taken_by_a_killed_process_is_delivered_again(tmp_path: Path) -> None:
    app = _app(tmp_path)
    task = _task()
    CeleryTaskQueue(app).submit(task)
    # A separate process takes the task and is SIGKILLed before acknowledging (as `ordo up` mid-batch).
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from ordo.config import Settings
        from ordo.worker.celery_app import EMBED_QUEUE, create_celery_app
        app = create_celery_app(Settings(data_dir=Path({str(tmp_path)!r})))
        with app.connection_for_read() as conn:
            conn.SimpleQueue(EMBED_QUEUE).get(block=True, timeout=10)
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], timeout=60, check=False)
    assert proc.returncode == -signal.SIGKILL
    path = queue_path(Settings(data_dir=tmp_path))
    assert sqlite_queue.counts(path)["taken"] == 1  # not lost, not yet visible
    assert sqlite_queue.task_ids(path) == {task.batch_id}
    assert sqlite_queue.restore_taken(path) == 1
    assert _take(app) == task
    assert sqlite_queue.counts(path) == {"ready": 0, "taken": 0, "dead": 0}


@pytest.mark.parametrize(
    ("payload", "reason"),
    [('{"body": "half a mess', "unreadable queue record"), ("[1, 2]", "not a message object"), ("{}", "without")],
)
def test_a_corrupt_record_becomes_a_dead_letter_and_the_next_task_still_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, payload: str, reason: str
) -> None:
    app = _app(tmp_path)
    path = queue_path(Settings(data_dir=tmp_path))
    CeleryTaskQueue(app).check()  # creates the queue file
    conn = sqlite3.connect(path)
    conn.execute(
        "INSERT INTO message (queue, payload, enqueued_at) VALUES (?, ?, 0)", (EMBED_QUEUE, payload)
    )  # a fault no client can provoke any more: written here on purpose
    conn.commit()
    conn.close()
    task = _task()
    CeleryTaskQueue(app).submit(task)
    buried: list[tuple[int, str]] = []
    monkeypatch.setattr(sqlite_queue, "on_corrupt", lambda row, why: buried.append((row, why)))
    assert _take(app).batch_id == task.batch_id
    assert len(buried) == 1 and reason in buried[0][1]
    assert sqlite_queue.counts(path) == {"ready": 0, "taken": 0, "dead": 1}


def test_an_oversized_message_is_refused_at_the_producer(tmp_path: Path) -> None:
    app = _app(tmp_path)
    ref = SampleRef("a" * 64, "k" * (sqlite_queue.MAX_MESSAGE_BYTES + 1), SampleKind.IMAGE)
    with pytest.raises((Unavailable, ValueError)):
        CeleryTaskQueue(app).submit(EmbedTask("job-x-000001", "job", (ref,), "", ""))
    assert sqlite_queue.counts(queue_path(Settings(data_dir=tmp_path)))["ready"] == 0


def test_filesystem_url_means_the_sqlite_queue(tmp_path: Path) -> None:
    """Old configurations (``ORDO_BROKER_URL=filesystem://``) keep the embedded mode, on the new queue."""
    settings = Settings(data_dir=tmp_path, broker_url="filesystem://")
    assert settings.mode == "embedded"
    assert create_celery_app(settings).conf.broker_url.startswith(sqlite_queue.SCHEME)
    assert os.path.basename(queue_path(settings)) == "queue.sqlite3"


def test_the_workers_hook_records_a_corrupt_record_as_a_dead_letter_with_its_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hook the worker installs at start (not a stand-in): the row is listed among dead letters with
    reason ``CORRUPT_QUEUE_RECORD`` and what was wrong, and the consumer goes on to the next task."""
    from ordo.worker import tasks
    from ordo.worker.dead_letters import SqliteDeadLetters

    store = SqliteDeadLetters(tmp_path / "dead_letters.sqlite3")
    monkeypatch.setattr(tasks, "_dead_letters", lambda: store)  # the store the context would open
    monkeypatch.setattr(sqlite_queue, "on_corrupt", None)
    tasks._dead_letter_corrupt_records()
    app = _app(tmp_path)
    path = queue_path(Settings(data_dir=tmp_path))
    CeleryTaskQueue(app).check()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO message (queue, payload, enqueued_at) VALUES (?, ?, 0)", (EMBED_QUEUE, "\x00\xff{"))
    conn.commit()
    conn.close()
    task = _task()
    CeleryTaskQueue(app).submit(task)
    assert _take(app).batch_id == task.batch_id
    (letter,) = store.list()
    assert letter.reason == "CORRUPT_QUEUE_RECORD" and "unreadable queue record" in letter.message
    assert letter.batch_id.startswith("queue-record-")
