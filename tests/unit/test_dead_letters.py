"""Dead letters on Redis (this helper's db 15 of the shared server) and SQLite: newest first, exact count,
and a redelivered batch's failure is recorded once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from ordo.worker.dead_letters import DeadLetter, DeadLetterStore, RedisDeadLetters, SqliteDeadLetters
from tests.fixtures.session_guard import test_redis_url

REDIS_URL = test_redis_url(15)


@pytest.fixture(params=["redis", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DeadLetterStore]:
    if request.param == "sqlite":
        yield SqliteDeadLetters(tmp_path / "dead.sqlite3")
        return
    prefix = f"ordo-test-{uuid.uuid4().hex}"
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    yield RedisDeadLetters(client, prefix)
    keys = list(client.scan_iter(match=f"{prefix}:*"))
    if keys:
        client.delete(*keys)


def test_letters_are_listed_newest_first_and_counted(store: DeadLetterStore) -> None:
    store.add([DeadLetter("job", "b1", "s3://x/a.jpg", "TRUNCATED", "cut short", "w1")])
    store.add([DeadLetter("job", "b2", "s3://x/b.jpg", "NOT_AN_IMAGE", "text", "w2")])
    letters = store.list()
    assert [d.source_uri for d in letters] == ["s3://x/b.jpg", "s3://x/a.jpg"]
    assert letters[0].at > 0 and letters[0].worker == "w2"
    assert store.count() == 2
    assert len(store.list(limit=1)) == 1


def test_a_redelivered_batch_is_dead_lettered_once(store: DeadLetterStore) -> None:
    letter = DeadLetter("job", "b1", "s3://x/a.jpg", "TRUNCATED", "cut short", "w1")
    store.add([letter])
    store.add([letter, DeadLetter("job", "b1", "s3://x/c.jpg", "CORRUPT", "bad", "w2")])
    assert store.count() == 2
    assert sorted(d.source_uri for d in store.list()) == ["s3://x/a.jpg", "s3://x/c.jpg"]
    unbatched = DeadLetter("", "", "", "BAD_MESSAGE", "not protobuf")  # no identity: always recorded
    store.add([unbatched])
    store.add([unbatched])
    assert store.count() == 4
