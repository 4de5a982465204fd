"""Watch an S3 prefix and ingest every new object exactly once, on any S3 server.

Why listing and not notifications: SeaweedFS (and several other S3 servers) implement neither MinIO's
``listen_bucket_notification`` nor S3 event configuration, while listing works everywhere. Each poll
lists the prefix and compares it with the watcher's *cursor*: the persisted map of objects already
handled (key → size), kept in Redis beside the jobs (SQLite under the data directory in the embedded
mode). An object is marked handled only after it was stored and queued (or failed for good), so:

* a restart (or a crash) resumes where the cursor is: nothing handled is taken again, and an object
  taken but not yet marked is taken again — which the content address turns into a *duplicate*,
  never a second embedding;
* an object replaced by different bytes (another size) is a new input;
* a non-image or oversized object is recorded as a failure with its reason in that poll's job, marked
  handled, and never retried; a transient fault (S3 unreachable) leaves it unmarked for the next poll.

Each poll that finds new objects is one ``watch`` job (progress, failures, ETA like any ingest job).
Listing is O(objects under the prefix) per poll: fine for millions of keys at a poll every few
seconds; point the watcher at a dated prefix for more.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import redis
import redis.exceptions
from redis.typing import EncodableT, FieldT

from ordo.core.ingestion import IngestCore, Outcome
from ordo.core.object_reads import read_object_bounded
from ordo.domain import FileFailure
from ordo.errors import InvalidInput, OrdoError, Reason, Unavailable
from ordo.ports.object_store import ObjectStore

log = logging.getLogger(__name__)


class Cursor(Protocol):
    """What the watcher has handled under one prefix: key → size."""

    def seen(self) -> dict[str, int]: ...

    def mark(self, items: Iterable[tuple[str, int]]) -> None: ...


class RedisCursor:
    def __init__(self, client: redis.Redis, name: str) -> None:
        self._client = client
        self._key = f"ordo:watch:{name}"

    def seen(self) -> dict[str, int]:
        try:
            return {str(k): int(v) for k, v in self._client.hgetall(self._key).items()}
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise Unavailable(f"watch cursor: Redis is unreachable: {exc}") from exc

    def mark(self, items: Iterable[tuple[str, int]]) -> None:
        mapping: dict[FieldT, EncodableT] = dict(items)
        if mapping:
            try:
                self._client.hset(self._key, mapping=mapping)
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
                raise Unavailable(f"watch cursor: Redis is unreachable: {exc}") from exc


class SqliteCursor:
    def __init__(self, path: Path, name: str) -> None:
        self._path = path
        self._name = name
        path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(path) as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS watch_seen (watch TEXT, key TEXT, size INTEGER, PRIMARY KEY (watch, key))"
            )

    def seen(self) -> dict[str, int]:
        with sqlite3.connect(self._path) as conn:
            rows = conn.execute("SELECT key, size FROM watch_seen WHERE watch = ?", (self._name,)).fetchall()
        return {k: int(s) for k, s in rows}

    def mark(self, items: Iterable[tuple[str, int]]) -> None:
        with sqlite3.connect(self._path) as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO watch_seen (watch, key, size) VALUES (?, ?, ?)",
                [(self._name, k, s) for k, s in items],
            )


def parse_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or not uri.removeprefix("s3://").split("/", 1)[0]:
        raise InvalidInput(f"watch needs s3://bucket/prefix, got {uri!r}", reason=Reason.BAD_URI)
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    return bucket, prefix


@dataclass
class PollResult:
    job_id: str = ""
    new: int = 0
    duplicates: int = 0
    failed: int = 0
    failures: list[FileFailure] = field(default_factory=list)
    deferred: int = 0  # transient faults: taken again next poll


class BucketWatcher:
    def __init__(
        self,
        ingest: IngestCore,
        bucket_store: Callable[[str], ObjectStore],
        cursor: Cursor,
        uri: str,
        on_failure: Callable[[str, list[FileFailure]], None] | None = None,
    ) -> None:
        self.ingest = ingest
        self.bucket, self.prefix = parse_s3_uri(uri)
        self.store = bucket_store(self.bucket)
        self.cursor = cursor
        self.on_failure = on_failure
        self._stop = threading.Event()

    def poll(self) -> PollResult:
        """One listing; new objects become one job. Returns what it did (an empty result: nothing new)."""
        seen = self.cursor.seen()
        fresh = [
            info
            for info in self.store.list(self.prefix)
            if not info.key.endswith("/") and seen.get(info.key) != info.size
        ]
        result = PollResult()
        if not fresh:
            return result
        job = self.ingest.start_job()
        result.job_id = job.job_id
        handled: list[tuple[str, int]] = []
        try:
            for info in fresh:
                uri = f"s3://{self.bucket}/{info.key}"
                name = info.key.rsplit("/", 1)[-1]
                if info.size > self.ingest.limits.max_bytes:
                    self.ingest.fail_input(
                        job.job_id,
                        uri,
                        "FILE_TOO_LARGE",
                        f"{info.size} bytes is over the limit of {self.ingest.limits.max_bytes}",
                    )
                    result.failed += 1
                    result.failures.append(FileFailure(uri, "FILE_TOO_LARGE", "over the size limit"))
                    handled.append((info.key, info.size))
                    continue
                try:
                    # bounded while reading: the listed size is a claim made before the GET
                    data = read_object_bounded(self.store, info.key, self.ingest.limits.max_bytes)
                    outcome = self.ingest.ingest_bytes(job.job_id, data, file_name=name, source_uri=uri)
                except Unavailable:
                    raise
                except OrdoError as exc:  # over the limit on reading, vanished between list and get...
                    self._failed(job.job_id, uri, exc.reason, exc.message, result)
                    handled.append((info.key, info.size))
                    continue
                except Exception as exc:  # one bad object never stops the scan: reported, marked, moved past
                    log.exception("watch %s: %s failed", self.bucket, uri)
                    self._failed(
                        job.job_id, uri, "UNREADABLE", f"could not ingest the object ({type(exc).__name__})", result
                    )
                    handled.append((info.key, info.size))
                    continue
                if outcome.outcome is Outcome.NEW:
                    result.new += 1
                elif outcome.outcome is Outcome.DUPLICATE:
                    result.duplicates += 1
                else:
                    result.failed += 1
                    if outcome.failure is not None:
                        result.failures.append(outcome.failure)
                handled.append((info.key, info.size))
                if len(handled) >= 100:  # progress survives a crash in a long poll
                    self.cursor.mark(handled)
                    handled = []
        except Unavailable as exc:
            result.deferred = len(fresh) - result.new - result.duplicates - result.failed
            log.warning("watch %s: %s; %d object(s) left for the next poll", self.bucket, exc.message, result.deferred)
        finally:
            self.cursor.mark(handled)
            try:
                self.ingest.finish_enumeration(job.job_id)
            except OrdoError as exc:
                log.error("watch job %s: %s", job.job_id, exc.message)
        if result.failures and self.on_failure is not None:
            self.on_failure(job.job_id, result.failures)
        return result

    def _failed(self, job_id: str, uri: str, reason: str, message: str, result: PollResult) -> None:
        self.ingest.fail_input(job_id, uri, reason, message)
        result.failed += 1
        result.failures.append(FileFailure(uri, reason, message))

    def run(self, interval: float = 2.0, on_poll: Callable[[PollResult], None] | None = None) -> None:
        """Poll until :meth:`stop`. A poll that fails (S3 or Redis down) is logged and tried again."""
        while not self._stop.is_set():
            start = time.monotonic()
            try:
                result = self.poll()
                if on_poll is not None and result.job_id:
                    on_poll(result)
            except OrdoError as exc:
                log.warning("watch s3://%s/%s: %s", self.bucket, self.prefix, exc.message)
            self._stop.wait(max(interval - (time.monotonic() - start), 0.0))

    def stop(self) -> None:
        self._stop.set()


def cursor_for(settings: object, uri: str) -> Cursor:
    """Beside the jobs: Redis in the distributed mode, SQLite under the data directory otherwise."""
    from ordo.config import Settings

    assert isinstance(settings, Settings)
    name = uri.removeprefix("s3://")
    if settings.job_store == "redis":
        client = redis.Redis.from_url(
            settings.redis_url, socket_timeout=5, socket_connect_timeout=2, decode_responses=True
        )
        return RedisCursor(client, name)
    return SqliteCursor(settings.data_dir / "watch.sqlite3", name)
