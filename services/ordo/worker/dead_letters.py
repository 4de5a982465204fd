"""Dead letters: inputs that can never succeed, kept with their reason so an operator can see them.

A poison file (not an image, truncated, a decompression bomb), an undecodable queue message or a batch
that exhausted its retries is *not* retried forever: the job accounts for it as failed and a dead letter
records what, where, why and when. They live beside the jobs — in Redis for the distributed mode (any
process can list them), in an SQLite file under the data directory for the embedded one — and are
listed by ``ordo ops dead-letters`` and the ``/ops`` view.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import redis
import redis.exceptions

from ordo.config import Settings
from ordo.errors import Unavailable

#: Newest letters kept (the counter stays exact beyond it).
MAX_KEPT = 10_000


@dataclass(frozen=True)
class DeadLetter:
    job_id: str
    batch_id: str
    source_uri: str
    reason: str
    message: str
    worker: str = ""
    at: float = 0.0  # unix seconds

    @property
    def identity(self) -> str:
        """The same input failing the same way in the same batch is one letter, however often the batch
        is redelivered (a worker lost after writing it)."""
        return f"{self.batch_id}|{self.source_uri}|{self.reason}" if self.batch_id else ""


class DeadLetterStore(Protocol):
    def add(self, letters: Sequence[DeadLetter]) -> None: ...

    def list(self, limit: int = 100) -> list[DeadLetter]:
        """Newest first."""
        ...

    def count(self) -> int: ...


class RedisDeadLetters:
    """A capped list (newest first) and an exact counter under ``<prefix>:dead_letters``."""

    def __init__(self, client: redis.Redis, prefix: str = "ordo") -> None:
        self._client = client
        self._list = f"{prefix}:dead_letters"
        self._count = f"{prefix}:dead_letters:count"
        self._seen = f"{prefix}:dead_letters:seen"

    @classmethod
    def from_url(cls, url: str, prefix: str = "ordo") -> RedisDeadLetters:
        client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2, decode_responses=True)
        return cls(client, prefix)

    def add(self, letters: Sequence[DeadLetter]) -> None:
        if not letters:
            return
        now = time.time()
        try:
            ids = [letter.identity for letter in letters if letter.identity]
            if ids:
                pipe = self._client.pipeline(transaction=False)
                for identity in ids:
                    pipe.sadd(self._seen, identity)
                added = dict(zip(ids, pipe.execute(), strict=True))
                letters = [x for x in letters if not x.identity or added.get(x.identity)]
            if not letters:
                return
            rows = [json.dumps(asdict(letter if letter.at else _stamped(letter, now))) for letter in letters]
            pipe = self._client.pipeline(transaction=True)
            pipe.lpush(self._list, *rows)
            pipe.ltrim(self._list, 0, MAX_KEPT - 1)
            pipe.incrby(self._count, len(rows))
            pipe.execute()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise Unavailable(f"dead letters: Redis is unreachable: {exc}") from exc

    def list(self, limit: int = 100) -> list[DeadLetter]:
        try:
            rows = self._client.lrange(self._list, 0, max(limit, 1) - 1)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise Unavailable(f"dead letters: Redis is unreachable: {exc}") from exc
        return [DeadLetter(**json.loads(row)) for row in rows]

    def count(self) -> int:
        try:
            return int(self._client.get(self._count) or 0)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise Unavailable(f"dead letters: Redis is unreachable: {exc}") from exc


class SqliteDeadLetters:
    """The embedded mode's dead letters, in their own small SQLite file (WAL: safe across processes)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS dead_letters (seq INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT, "
                "batch_id TEXT, source_uri TEXT, reason TEXT, message TEXT, worker TEXT, at REAL, identity TEXT)"
            )
            conn.execute(
                "CREATE UNIQUE INDEX IF NOT EXISTS dead_letters_identity ON dead_letters (identity) "
                "WHERE identity != ''"
            )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self._path, timeout=30)

    def add(self, letters: Sequence[DeadLetter]) -> None:
        now = time.time()
        with self._lock, self._connect() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO dead_letters (job_id, batch_id, source_uri, reason, message, worker, at, "
                "identity) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (d.job_id, d.batch_id, d.source_uri, d.reason, d.message, d.worker, d.at or now, d.identity)
                    for d in letters
                ],
            )

    def list(self, limit: int = 100) -> list[DeadLetter]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT job_id, batch_id, source_uri, reason, message, worker, at FROM dead_letters "
                "ORDER BY seq DESC LIMIT ?",
                (max(limit, 1),),
            ).fetchall()
        return [DeadLetter(*row) for row in rows]

    def count(self) -> int:
        with self._connect() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0])


def _stamped(letter: DeadLetter, at: float) -> DeadLetter:
    return DeadLetter(**{**asdict(letter), "at": at})


def create_dead_letters(settings: Settings) -> DeadLetterStore:
    """Beside the jobs: Redis when jobs are in Redis, else SQLite under the data directory."""
    if settings.job_store == "redis":
        return RedisDeadLetters.from_url(settings.redis_url)
    return SqliteDeadLetters(settings.data_dir / "dead_letters.sqlite3")
