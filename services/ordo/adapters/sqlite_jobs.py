"""SQLite job store for the embedded mode: one file shared by the service and its worker processes.

Why it is built this way:

* **WAL + busy_timeout**: readers (WatchJob polling ``version``) never block the writers, and writers
  from other processes wait for the lock instead of failing with "database is locked".
* **BEGIN IMMEDIATE around every read-modify-write**: the write lock is taken *before* the row is
  read, so two recorders can never both see "one input left" — exactly one of them moves the job to
  its final state. Transactions are short (a handful of statements) so the lock is held briefly.
* **One connection per thread (and per process)**: ``sqlite3`` connections must not be shared across
  threads without care, nor ever used across ``fork``; a connection is opened lazily per thread and
  reopened when the process id changes. Writers of one process additionally take an in-process lock so
  they queue on a cheap mutex rather than spinning in SQLite's busy handler.
* **Side tables** keep failures and asset ids in insertion order (``seq``), capped at the port's limits,
  and stage timings summed per stage; the counters in ``jobs`` stay exact beyond the caps.
* **Integer microseconds** (UTC epoch) are stored for timestamps: exact, sortable, and turned into
  timezone-aware datetimes only at the boundary. Creation times are made strictly increasing so
  ``list()`` order is creation order even when two jobs are created in the same microsecond.
"""

from __future__ import annotations

import math
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ordo import paging
from ordo.domain import FileFailure, Job, JobState
from ordo.errors import Conflict, InvalidInput, NotFound, Reason, Unavailable
from ordo.ports import job_store as _port  # caps are read at call time (tests monkeypatch them)

_SCHEMA_VERSION = 1
_MAX_JOB_ID_LEN = 256
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id           TEXT PRIMARY KEY,
    kind             TEXT    NOT NULL,
    state            TEXT    NOT NULL,
    created_us       INTEGER NOT NULL,
    updated_us       INTEGER NOT NULL,
    ended_us         INTEGER,
    total            INTEGER NOT NULL DEFAULT 0,
    enumeration_done INTEGER NOT NULL DEFAULT 0,
    succeeded        INTEGER NOT NULL DEFAULT 0,
    duplicates       INTEGER NOT NULL DEFAULT 0,
    failed           INTEGER NOT NULL DEFAULT 0,
    pending          INTEGER NOT NULL DEFAULT 0,
    error            TEXT    NOT NULL DEFAULT '',
    version          INTEGER NOT NULL DEFAULT 1,
    failures_kept    INTEGER NOT NULL DEFAULT 0,
    asset_ids_kept   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs (created_us DESC, job_id DESC);
CREATE TABLE IF NOT EXISTS job_recorded (
    job_id   TEXT NOT NULL,
    once_key TEXT NOT NULL,
    PRIMARY KEY (job_id, once_key)
);
CREATE TABLE IF NOT EXISTS job_failures (
    job_id     TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    source_uri TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    message    TEXT    NOT NULL,
    PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS job_asset_ids (
    job_id   TEXT    NOT NULL,
    seq      INTEGER NOT NULL,
    asset_id TEXT    NOT NULL,
    PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS job_stages (
    job_id  TEXT    NOT NULL,
    stage   TEXT    NOT NULL,
    seconds REAL    NOT NULL DEFAULT 0,
    items   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, stage)
) WITHOUT ROWID;
"""

_JOB_COLUMNS = (
    "job_id, kind, state, created_us, updated_us, ended_us, total, enumeration_done, "
    "succeeded, duplicates, failed, pending, error, version"
)


def _now_us() -> int:
    return time.time_ns() // 1000


def _dt(us: int) -> datetime:
    """Exact conversion (no float rounding) from epoch microseconds to an aware UTC datetime."""
    return _EPOCH + timedelta(microseconds=us)


def completed_state(succeeded: int, duplicates: int, failed: int) -> JobState:
    """The final state of a job whose inputs are all accounted for (the port's completion rule).

    Duplicates count as success: the image is in the library, it just was there already.
    """
    if failed == 0:
        return JobState.SUCCEEDED
    if succeeded + duplicates == 0:
        return JobState.FAILED
    return JobState.PARTIALLY_SUCCEEDED


def _cursor_token(created_us: int, job_id: str) -> str:
    """The (creation time, id) of the last job returned, in ``ordo.paging``'s token. A cursor rather than
    an offset keeps pages stable while new (newer, hence earlier-listed) jobs are created."""
    return paging.encode_token([created_us, job_id], "jobs")


def _read_cursor(token: str) -> tuple[int, str] | None:
    position = paging.decode_token(token, "jobs")
    if position is None:
        return None
    match position:
        case [int(created), str(job_id)] if not isinstance(created, bool):
            return created, job_id
    raise InvalidInput("page_token is not one this service gave out", reason=Reason.BAD_PAGE_TOKEN)


def check_job_id(job_id: str) -> str:
    if not isinstance(job_id, str) or not job_id or len(job_id) > _MAX_JOB_ID_LEN:
        raise InvalidInput(f"job id must be a non-empty string of at most {_MAX_JOB_ID_LEN} characters")
    return job_id


def _check_non_negative(**values: int) -> None:
    for name, value in values.items():
        if value < 0:
            raise InvalidInput(f"{name} must not be negative, got {value}")


class SqliteJobStore:
    """``JobStore`` on a local SQLite file; safe across threads and processes sharing that file."""

    backend = "sqlite"

    def __init__(self, path: Path, *, busy_timeout_s: float = 30.0) -> None:
        self._path = Path(path)
        self._busy_timeout_s = busy_timeout_s
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._reset_process_state()
        with self._guard():
            conn = self._conn()
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > _SCHEMA_VERSION:
                raise Conflict(
                    f"job database {self._path} has schema v{version}; this Ordo understands up to v{_SCHEMA_VERSION}"
                )
            conn.executescript(_SCHEMA)
            if version < _SCHEMA_VERSION:
                conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")

    # -- connections ------------------------------------------------------------------------------

    def _reset_process_state(self) -> None:
        """(Re)create per-process state; after a fork the parent's connections and locks are unusable."""
        self._pid = os.getpid()
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._conns_lock = threading.Lock()
        self._conns: list[sqlite3.Connection] = []

    def _conn(self) -> sqlite3.Connection:
        if self._pid != os.getpid():
            # Forked child: drop (never close) the inherited connections — closing them here could
            # checkpoint or unlock on the parent's behalf. Keep them referenced so GC never closes them.
            _ABANDONED.extend(self._conns)
            self._reset_process_state()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves (BEGIN IMMEDIATE for writes).
            conn = sqlite3.connect(
                self._path, timeout=self._busy_timeout_s, isolation_level=None, check_same_thread=False
            )
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_s * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")  # durable at checkpoints; safe with WAL
            self._local.conn = conn
            with self._conns_lock:
                self._conns.append(conn)
        return conn

    def close(self) -> None:
        """Close this process's connections (the store reopens lazily if used again)."""
        if self._pid != os.getpid():
            return
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()
        self._local = threading.local()

    def __getstate__(self) -> dict[str, Any]:
        # Picklable (e.g. multiprocessing spawn): only the location travels, connections are reopened.
        return {"path": self._path, "busy_timeout_s": self._busy_timeout_s}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._path = state["path"]
        self._busy_timeout_s = state["busy_timeout_s"]
        self._reset_process_state()

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """SQLite operational errors (locked past the busy timeout, disk I/O, read-only file) mean the
        store cannot serve right now: surface them as the port's retryable ``Unavailable``."""
        try:
            yield
        except sqlite3.OperationalError as e:
            raise Unavailable(f"job database {self._path} is unavailable: {e}") from e

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A short write transaction holding the database write lock from its first statement."""
        with self._guard():
            conn = self._conn()
            with self._write_lock:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction, so a job and its side tables come from one consistent snapshot."""
        with self._guard():
            conn = self._conn()
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")

    # -- loading ----------------------------------------------------------------------------------

    @staticmethod
    def _load(conn: sqlite3.Connection, row: Sequence[Any], max_listed: int | None = None) -> Job:
        """The job of ``row``, with at most ``max_listed`` failures and asset ids (all kept when None)."""
        (job_id, kind, state, created, updated, ended, total, enum_done) = row[:8]
        (succeeded, duplicates, failed, pending, error) = row[8:13]
        limit = -1 if max_listed is None else max(int(max_listed), 0)  # SQLite: LIMIT -1 is no limit
        failures = [
            FileFailure(source_uri=u, reason=r, message=m)
            for u, r, m in conn.execute(
                "SELECT source_uri, reason, message FROM job_failures WHERE job_id = ? ORDER BY seq LIMIT ?",
                (job_id, limit),
            )
        ]
        asset_ids = [
            a
            for (a,) in conn.execute(
                "SELECT asset_id FROM job_asset_ids WHERE job_id = ? ORDER BY seq LIMIT ?", (job_id, limit)
            )
        ]
        stage_seconds: dict[str, float] = {}
        stage_items: dict[str, int] = {}
        for stage, seconds, items in conn.execute(
            "SELECT stage, seconds, items FROM job_stages WHERE job_id = ? ORDER BY stage", (job_id,)
        ):
            stage_seconds[stage] = float(seconds)
            stage_items[stage] = int(items)
        return Job(
            job_id=job_id,
            kind=kind,
            state=JobState(state),
            created_at=_dt(created),
            updated_at=_dt(updated),
            total=total,
            enumeration_done=bool(enum_done),
            succeeded=succeeded,
            duplicates=duplicates,
            failed=failed,
            pending=pending,
            failures=failures,
            ended_at=_dt(ended) if ended is not None else None,
            error=error,
            stage_seconds=stage_seconds,
            stage_items=stage_items,
            asset_ids=asset_ids,
        )

    @classmethod
    def _get_in(cls, conn: sqlite3.Connection, job_id: str, max_listed: int | None = None) -> Job:
        row = conn.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        if row is None:
            raise NotFound(f"job {job_id} not found")
        return cls._load(conn, row, max_listed)

    @classmethod
    def _returned(cls, conn: sqlite3.Connection, job_id: str) -> Job:
        """The job a writing call returns: lists capped (``MAX_LISTED_RETURNED``), so a call costs the same
        at the first upload of a job and at its 100,000th."""
        return cls._get_in(conn, job_id, _port.MAX_LISTED_RETURNED)

    @staticmethod
    def _lock_row(conn: sqlite3.Connection, job_id: str) -> tuple[Any, ...]:
        row = conn.execute(
            "SELECT state, created_us, total, enumeration_done, succeeded, duplicates, failed, "
            "failures_kept, asset_ids_kept FROM jobs WHERE job_id = ?",
            (job_id,),
        ).fetchone()
        if row is None:
            raise NotFound(f"job {job_id} not found")
        return row

    @staticmethod
    def _next_state(
        state: JobState, total: int, enum_done: bool, succeeded: int, duplicates: int, failed: int
    ) -> JobState:
        """Work in progress moves a QUEUED job to RUNNING; the last accounted input completes it.
        Final states are never left."""
        if state.is_final:
            return state
        if enum_done and succeeded + duplicates + failed >= total:
            return completed_state(succeeded, duplicates, failed)
        return JobState.RUNNING

    # -- JobStore ---------------------------------------------------------------------------------

    def create(self, kind: str, job_id: str | None = None) -> Job:
        job_id = check_job_id(job_id) if job_id is not None else uuid.uuid4().hex
        with self._write() as conn:
            row = conn.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
            if row is not None:
                return self._load(conn, row, _port.MAX_LISTED_RETURNED)
            # Strictly increasing creation times (under the write lock) make list() order = creation order.
            (latest,) = conn.execute("SELECT MAX(created_us) FROM jobs").fetchone()
            created = max(_now_us(), (latest or 0) + 1)
            conn.execute(
                "INSERT INTO jobs (job_id, kind, state, created_us, updated_us) VALUES (?, ?, ?, ?, ?)",
                (job_id, kind, JobState.QUEUED.value, created, created),
            )
            return self._returned(conn, job_id)

    def get(self, job_id: str, max_listed: int | None = None) -> Job:
        with self._read() as conn:
            return self._get_in(conn, job_id, max_listed)

    def list(self, page_size: int = 0, page_token: str = "", max_listed: int | None = None) -> tuple[list[Job], str]:
        size = paging.page_size(page_size)
        cursor = _read_cursor(page_token)
        with self._read() as conn:
            if cursor is not None:
                created, last_id = cursor
                rows = conn.execute(
                    f"SELECT {_JOB_COLUMNS} FROM jobs WHERE created_us < ? OR (created_us = ? AND job_id < ?)"
                    " ORDER BY created_us DESC, job_id DESC LIMIT ?",
                    (created, created, last_id, size + 1),
                ).fetchall()
            else:
                rows = conn.execute(
                    f"SELECT {_JOB_COLUMNS} FROM jobs ORDER BY created_us DESC, job_id DESC LIMIT ?",
                    (size + 1,),
                ).fetchall()
            jobs = [self._load(conn, row, max_listed) for row in rows[:size]]
        token = _cursor_token(rows[size - 1][3], rows[size - 1][0]) if len(rows) > size else ""
        return jobs, token

    def add_inputs(self, job_id: str, count: int, enumeration_done: bool = False) -> Job:
        _check_non_negative(count=count)
        with self._write() as conn:
            state, created, total, enum_done, succeeded, duplicates, failed, _, _ = self._lock_row(conn, job_id)
            total += count
            enum_done = bool(enum_done) or enumeration_done
            self._update(conn, job_id, JobState(state), created, total, enum_done, succeeded, duplicates, failed)
            conn.execute(
                "UPDATE jobs SET total = ?, enumeration_done = ? WHERE job_id = ?",
                (total, int(enum_done), job_id),
            )
            return self._returned(conn, job_id)

    def record(
        self,
        job_id: str,
        *,
        succeeded: int = 0,
        duplicates: int = 0,
        failed: int = 0,
        pending: int = 0,
        failures: Sequence[FileFailure] = (),
        asset_ids: Sequence[str] = (),
        once_key: str = "",
    ) -> Job:
        _check_non_negative(succeeded=succeeded, duplicates=duplicates, failed=failed)
        with self._write() as conn:
            state, created, total, enum_done, ok, dup, bad, failures_kept, assets_kept = self._lock_row(conn, job_id)
            if once_key:  # a redelivered batch is counted once
                inserted = conn.execute(
                    "INSERT OR IGNORE INTO job_recorded (job_id, once_key) VALUES (?, ?)", (job_id, once_key)
                ).rowcount
                if not inserted:
                    return self._returned(conn, job_id)
            ok, dup, bad = ok + succeeded, dup + duplicates, bad + failed
            self._update(conn, job_id, JobState(state), created, total, bool(enum_done), ok, dup, bad)
            keep_failures = list(failures[: max(_port.MAX_FAILURES_KEPT - failures_kept, 0)])
            keep_assets = list(asset_ids[: max(_port.MAX_ASSET_IDS_KEPT - assets_kept, 0)])
            conn.executemany(
                "INSERT INTO job_failures (job_id, seq, source_uri, reason, message) VALUES (?, ?, ?, ?, ?)",
                [(job_id, failures_kept + i, f.source_uri, f.reason, f.message) for i, f in enumerate(keep_failures)],
            )
            conn.executemany(
                "INSERT INTO job_asset_ids (job_id, seq, asset_id) VALUES (?, ?, ?)",
                [(job_id, assets_kept + i, a) for i, a in enumerate(keep_assets)],
            )
            conn.execute(
                "UPDATE jobs SET succeeded = ?, duplicates = ?, failed = ?, pending = pending + ?, "
                "failures_kept = ?, asset_ids_kept = ? WHERE job_id = ?",
                (
                    ok,
                    dup,
                    bad,
                    pending,
                    failures_kept + len(keep_failures),
                    assets_kept + len(keep_assets),
                    job_id,
                ),
            )
            return self._returned(conn, job_id)

    @classmethod
    def _update(
        cls,
        conn: sqlite3.Connection,
        job_id: str,
        state: JobState,
        created: int,
        total: int,
        enum_done: bool,
        succeeded: int,
        duplicates: int,
        failed: int,
    ) -> None:
        """Bump version and updated_at, and move the state (setting ended_at once, on completion)."""
        now = max(_now_us(), created)
        new_state = cls._next_state(state, total, enum_done, succeeded, duplicates, failed)
        ended = now if new_state.is_final and not state.is_final else None
        conn.execute(
            "UPDATE jobs SET state = ?, updated_us = ?, ended_us = COALESCE(ended_us, ?), "
            "version = version + 1 WHERE job_id = ?",
            (new_state.value, now, ended, job_id),
        )

    def add_stage_time(self, job_id: str, stage: str, seconds: float, items: int) -> None:
        if not math.isfinite(seconds):
            raise InvalidInput(f"stage seconds must be finite, got {seconds}")
        with self._write() as conn:
            _, created, *_ = self._lock_row(conn, job_id)
            conn.execute(
                "INSERT INTO job_stages (job_id, stage, seconds, items) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (job_id, stage) DO UPDATE SET seconds = seconds + excluded.seconds, "
                "items = items + excluded.items",
                (job_id, stage, float(seconds), int(items)),
            )
            conn.execute(
                "UPDATE jobs SET updated_us = ?, version = version + 1 WHERE job_id = ?",
                (max(_now_us(), created), job_id),
            )

    def fail(self, job_id: str, error: str) -> Job:
        with self._write() as conn:
            state, created, *_ = self._lock_row(conn, job_id)
            if not JobState(state).is_final:
                now = max(_now_us(), created)
                conn.execute(
                    "UPDATE jobs SET state = ?, error = ?, updated_us = ?, ended_us = COALESCE(ended_us, ?), "
                    "version = version + 1 WHERE job_id = ?",
                    (JobState.FAILED.value, error, now, now, job_id),
                )
            return self._returned(conn, job_id)

    def version(self, job_id: str) -> int:
        with self._guard():
            row = self._conn().execute("SELECT version FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        if row is None:
            raise NotFound(f"job {job_id} not found")
        return int(row[0])


# Connections inherited through fork: referenced forever so that garbage collection in the child never
# closes them (see SqliteJobStore._conn).
_ABANDONED: list[sqlite3.Connection] = []
