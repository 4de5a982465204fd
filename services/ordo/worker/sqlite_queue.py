"""The embedded mode's task queue: a kombu transport whose messages live in one SQLite file.

Why not kombu's ``filesystem://`` transport (the previous choice): it writes a message as a plain file
that a consumer may read half-written (a long upload name broke ``json.loads`` and Celery stopped the
whole ``ordo up`` with "Unrecoverable error"), and it deletes the file when it is *taken*, so a task in
flight dies with the process. Why not kombu's own ``sqla+sqlite://`` transport as it is: it marks a row
invisible when taken and never deletes it, so ``acks_late`` means nothing there (a task taken by a
process that is then killed is never delivered again, and the table grows forever), it needs
SQLAlchemy, and it has no place for a corrupt row. This module keeps everything else of kombu's
virtual transport — the machinery Celery's worker, QoS and ``acks_late`` already rely on — and stores
messages with SQLite's own transactions:

* ``_put`` is one committed INSERT (WAL journal, ``synchronous=FULL``: once ``submit`` returns, the
  task survives a kill and a power loss);
* ``_get`` marks the oldest ready row *taken* in one ``BEGIN IMMEDIATE`` transaction; a row is deleted
  only when Celery acknowledges it, which with ``acks_late`` is after the task's vectors are written;
* a taken row whose process died is made ready again by :func:`restore_taken` (``ordo up`` calls it at
  start, before its worker consumes: in the embedded mode that worker is the only consumer);
* a row that is not a valid kombu message moves to the ``dead_message`` table with its reason, and
  the ``on_corrupt`` hook (the worker's dead letters) is told — it never reaches Celery, so it can
  never stop the worker.

Measured on this machine (``bench/queue_transports.py``): see the README's "Durability" section.
"""

from __future__ import annotations

import base64
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from queue import Empty
from typing import Any

from kombu.transport import TRANSPORT_ALIASES, virtual

log = logging.getLogger(__name__)

SCHEME = "ordo-sqlite"
#: A message (the Celery envelope around one EmbedBatch) larger than this is refused at ``_put``:
#: tasks carry ids and keys only, so anything near it is a bug, not a big batch.
MAX_MESSAGE_BYTES = 256 * 1024
#: Stored text of a corrupt row kept in ``dead_message`` (enough to see what it was).
DEAD_PAYLOAD_KEPT = 4096

_SCHEMA = """
CREATE TABLE IF NOT EXISTS message (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    payload TEXT NOT NULL,
    taken INTEGER NOT NULL DEFAULT 0,
    enqueued_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS message_ready ON message (queue, taken, id);
CREATE TABLE IF NOT EXISTS dead_message (
    id INTEGER PRIMARY KEY,
    queue TEXT NOT NULL,
    payload TEXT NOT NULL,
    reason TEXT NOT NULL,
    at REAL NOT NULL
);
"""

#: Called with (row id, reason) for every corrupt row moved to ``dead_message``; set by the worker.
on_corrupt: Callable[[int, str], None] | None = None


def queue_url(path: Path) -> str:
    """The Celery broker URL of the queue file at ``path``."""
    return f"{SCHEME}://{Path(path).resolve()}"


def _path_of(hostname: str) -> Path:
    return Path(hostname.removeprefix(f"{SCHEME}://"))


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL, fsync on every commit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.executescript(_SCHEMA)
    return conn


def restore_taken(path: Path) -> int:
    """Make every taken-but-unacknowledged message ready again; returns how many. Only safe while no
    consumer runs (``ordo up`` calls it at start, before its worker), since a live consumer's tasks
    would be delivered twice (harmless — ids are deterministic — but wasted work)."""
    conn = connect(path)
    try:
        return conn.execute("UPDATE message SET taken = 0 WHERE taken = 1").rowcount
    finally:
        conn.close()


def counts(path: Path) -> dict[str, int]:
    """Ready, taken and dead messages (for status and tests)."""
    conn = connect(path)
    try:
        ready, taken = conn.execute(
            "SELECT COALESCE(SUM(taken = 0), 0), COALESCE(SUM(taken = 1), 0) FROM message"
        ).fetchone()
        dead = conn.execute("SELECT COUNT(*) FROM dead_message").fetchone()[0]
        return {"ready": int(ready), "taken": int(taken), "dead": int(dead)}
    finally:
        conn.close()


def task_ids(path: Path) -> set[str]:
    """Celery task ids (= batch ids) of every message ready or taken (``ordo ops resume`` checks them)."""
    conn = connect(path)
    try:
        ids = set()
        for (payload,) in conn.execute("SELECT payload FROM message"):
            try:
                ids.add(str(json.loads(payload)["headers"]["id"]))
            except (ValueError, KeyError, TypeError):
                continue
        return ids
    finally:
        conn.close()


def queued_payloads(path: Path) -> list[str]:
    """The first argument (an EmbedBatch payload) of every Celery task ready or taken, in queue order;
    messages that are not such tasks are left out."""
    conn = connect(path)
    try:
        rows = conn.execute("SELECT payload FROM message ORDER BY id").fetchall()
    finally:
        conn.close()
    found = []
    for (payload,) in rows:
        try:
            message = json.loads(payload)
            body = message["body"]
            if message.get("properties", {}).get("body_encoding") == "base64":
                body = base64.b64decode(body)
            args = json.loads(body)[0]
            found.append(str(args[0]))
        except (ValueError, KeyError, TypeError, IndexError):
            continue
    return found


def _check_message(message: Any) -> str:
    """'' when ``message`` looks like a kombu message Celery can take, else why not."""
    if not isinstance(message, dict):
        return f"not a message object ({type(message).__name__})"
    for key in ("body", "headers", "properties"):
        if key not in message:
            return f"message without {key!r}"
    if not isinstance(message["properties"], dict) or "delivery_tag" not in message["properties"]:
        return "message without a delivery tag"
    return ""


class QoS(virtual.QoS):
    """Deletes a message's row when Celery acknowledges (or rejects) it — not when it is taken."""

    channel: Channel

    def ack(self, delivery_tag: str) -> None:
        self.channel.settle(delivery_tag, requeue=False)
        super().ack(delivery_tag)

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        self.channel.settle(delivery_tag, requeue=requeue)
        self._quick_ack(delivery_tag)


class Channel(virtual.Channel):
    QoS = QoS
    do_restore = True

    def __init__(self, connection: Any, **kwargs: Any) -> None:
        super().__init__(connection, **kwargs)
        self._path = _path_of(self.connection.client.hostname or "")
        self._conn = connect(self._path)
        self._lock = threading.Lock()
        self._rows: dict[str, int] = {}  # delivery tag → row id of messages taken and not settled

    # --- storage ---------------------------------------------------------------------------------
    def _new_queue(self, queue: str, **kwargs: Any) -> None:
        """Queues are a column; nothing to create."""

    def _put(self, queue: str, message: dict[str, Any], **kwargs: Any) -> None:
        payload = json.dumps(message)
        if len(payload) > MAX_MESSAGE_BYTES:
            raise ValueError(f"queue message of {len(payload)} bytes is over the limit of {MAX_MESSAGE_BYTES}")
        with self._lock:
            self._conn.execute(
                "INSERT INTO message (queue, payload, enqueued_at) VALUES (?, ?, ?)", (queue, payload, time.time())
            )

    def _get(self, queue: str, timeout: float | None = None) -> dict[str, Any]:
        while True:
            row_id, message, reason = self._take_one(queue)
            if not reason:
                self._rows[message["properties"]["delivery_tag"]] = row_id
                return message
            log.error("queue record %d moved to dead letters: %s", row_id, reason)
            if on_corrupt is not None:
                try:
                    on_corrupt(row_id, reason)
                except Exception:  # the row is already set aside; a lost notice must not stop consuming
                    log.exception("could not record dead letter for queue record %d", row_id)

    def _take_one(self, queue: str) -> tuple[int, Any, str]:
        """In one transaction: the oldest ready row is marked taken, or — if it is not a message Celery
        can take — moved to ``dead_message``. Returns (row id, message, why it is corrupt or '')."""
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(
                    "SELECT id, payload FROM message WHERE queue = ? AND taken = 0 ORDER BY id LIMIT 1", (queue,)
                ).fetchone()
                if row is None:
                    conn.execute("COMMIT")
                    raise Empty()
                row_id, payload = row
                try:
                    message = json.loads(payload)
                    reason = _check_message(message)
                except ValueError as exc:
                    message, reason = None, f"unreadable queue record: {exc}"
                if reason:
                    conn.execute(
                        "INSERT OR REPLACE INTO dead_message (id, queue, payload, reason, at) VALUES (?, ?, ?, ?, ?)",
                        (row_id, queue, str(payload)[:DEAD_PAYLOAD_KEPT], reason, time.time()),
                    )
                    conn.execute("DELETE FROM message WHERE id = ?", (row_id,))
                else:
                    conn.execute("UPDATE message SET taken = 1 WHERE id = ?", (row_id,))
                conn.execute("COMMIT")
            except Empty:
                raise
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return row_id, message, reason

    def settle(self, delivery_tag: str, *, requeue: bool) -> None:
        """Acknowledged → the row goes; handed back → it is ready again."""
        row_id = self._rows.pop(delivery_tag, None)
        if row_id is None:
            return
        with self._lock:
            if requeue:
                self._conn.execute("UPDATE message SET taken = 0 WHERE id = ?", (row_id,))
            else:
                self._conn.execute("DELETE FROM message WHERE id = ?", (row_id,))

    def _restore(self, message: Any) -> None:
        """A graceful shutdown hands unacknowledged messages back: make their rows ready again (kombu's
        default would insert a copy beside the taken original)."""
        tag = message.delivery_tag
        if tag in self._rows:
            self.settle(tag, requeue=True)
        else:
            super()._restore(message)

    def _size(self, queue: str) -> int:
        with self._lock:
            return int(
                self._conn.execute("SELECT COUNT(*) FROM message WHERE queue = ? AND taken = 0", (queue,)).fetchone()[0]
            )

    def _purge(self, queue: str) -> int:
        with self._lock:
            return self._conn.execute("DELETE FROM message WHERE queue = ? AND taken = 0", (queue,)).rowcount

    def close(self) -> None:
        super().close()
        with self._lock:
            self._conn.close()


class Transport(virtual.Transport):
    Channel = Channel
    can_parse_url = True
    default_port = 0
    driver_type = "sqlite"
    driver_name = "sqlite3"
    # A busy database (another writer past the 30 s timeout) is a connection error: Celery retries.
    connection_errors = (*virtual.Transport.connection_errors, sqlite3.OperationalError)
    polling_interval = 0.05

    def driver_version(self) -> str:
        return sqlite3.sqlite_version


TRANSPORT_ALIASES.setdefault(SCHEME, f"{__name__}:Transport")
