"""Redis job store for the server mode: services and Celery workers on several hosts share job progress.

Why it is built this way:

* **One Lua script per mutation**: the counter deltas, the capped list appends, the version bump and
  the completion check run atomically inside Redis, so concurrent recorders on any number of hosts
  produce exact counters and exactly one transition to a final state — without WATCH/retry loops.
* **Redis server clock** (``TIME`` inside the scripts) for every timestamp, so jobs touched by workers
  on different hosts get consistent times regardless of their clock skew. Creation times are made
  strictly increasing, so ``list()`` order is creation order.
* **Keys** (``P`` = prefix): ``P:job:{id}`` hash (scalars), ``P:job:{id}:failures`` and
  ``P:job:{id}:asset_ids`` lists capped at the port's limits (insertion order), ``P:job:{id}:stage_seconds``
  and ``P:job:{id}:stage_items`` hashes, and ``P:jobs``: the index, a sorted set whose members are
  ``<created µs, 20 digits>:<id>`` at score 0, so lexicographic order is creation order and a page
  cursor is simply the last member (``ZREVRANGEBYLEX``). The ``{id}`` hash tag keeps a job's keys
  together; the index is a separate key, so this targets a single Redis (or a primary), not a cluster.
* **Fail fast**: ``from_url`` sets short socket timeouts and *no* automatic retries — a retried
  ``record`` whose reply was lost would count its deltas twice — and connection errors surface as
  ``ordo.errors.Unavailable`` naming the server, which is retryable one level up.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
import redis.exceptions
from redis.backoff import NoBackoff
from redis.retry import Retry

from ordo import paging
from ordo.domain import FileFailure, Job, JobState
from ordo.errors import InvalidInput, NotFound, Reason, Unavailable
from ordo.ports import job_store as _port  # caps are read at call time (tests monkeypatch them)

_MAX_JOB_ID_LEN = 256
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MEMBER = re.compile(r"\d{20}:.+", re.DOTALL)
_PUSH_CHUNK = 1000  # Lua's unpack() has a stack limit; append in chunks


class _Lua:
    """A script run by EVALSHA; its SHA-1 is what Redis computes, so it needs no SCRIPT LOAD to know it."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()


# Shared by every script. Numbers are formatted with %d: tostring() would print 1.7e+15.
_LUA_PRELUDE = """
local function fmt(n) return string.format('%d', n) end
local function now_us(floor_us)
  local t = redis.call('TIME')
  local us = tonumber(t[1]) * 1000000 + tonumber(t[2])
  if floor_us and us < floor_us then us = floor_us end
  return us
end
local function job_now(key)
  return now_us(tonumber(redis.call('HGET', key, 'created_us')))
end
local function touch(key, now)
  redis.call('HSET', key, 'updated_us', fmt(now))
  redis.call('HINCRBY', key, 'version', 1)
end
-- After counters changed: QUEUED -> RUNNING, and complete the job once every input is accounted for.
-- Final states are never left, so exactly one caller makes the transition (and sets ended_us).
local function settle(key, now)
  local h = redis.call('HMGET', key, 'state', 'enumeration_done', 'total',
    'succeeded', 'duplicates', 'failed')
  local state = h[1]
  if state ~= 'queued' and state ~= 'running' then return end
  local ok = tonumber(h[4]) + tonumber(h[5])
  local bad = tonumber(h[6])
  if h[2] == '1' and ok + bad >= tonumber(h[3]) then
    local final = 'partially_succeeded'
    if bad == 0 then final = 'succeeded' elseif ok == 0 then final = 'failed' end
    redis.call('HSET', key, 'state', final, 'ended_us', fmt(now))
  elseif state == 'queued' then
    redis.call('HSET', key, 'state', 'running')
  end
end
"""

# KEYS: job, index. ARGV: job_id, kind. Returns 1 when created, 0 when it already existed.
_CREATE = _Lua(
    _LUA_PRELUDE
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local floor = 0
local last = redis.call('ZRANGE', KEYS[2], -1, -1)
if #last > 0 then floor = tonumber(string.sub(last[1], 1, 20)) + 1 end
local now = now_us(floor)
redis.call('HSET', KEYS[1], 'job_id', ARGV[1], 'kind', ARGV[2], 'state', 'queued',
  'created_us', fmt(now), 'updated_us', fmt(now), 'ended_us', '', 'total', 0, 'enumeration_done', 0,
  'succeeded', 0, 'duplicates', 0, 'failed', 0, 'pending', 0, 'error', '', 'version', 1)
redis.call('ZADD', KEYS[2], 0, string.format('%020d', now) .. ':' .. ARGV[1])
return 1
"""
)

# KEYS: job. ARGV: count, enumeration_done ('1'/'0'). Returns 0 when the job is missing.
_ADD_INPUTS = _Lua(
    _LUA_PRELUDE
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'total', ARGV[1])
if ARGV[2] == '1' then redis.call('HSET', KEYS[1], 'enumeration_done', 1) end
local now = job_now(KEYS[1])
touch(KEYS[1], now)
settle(KEYS[1], now)
return 1
"""
)

# KEYS: job, failures, asset_ids[, recorded keys]. ARGV: succeeded, duplicates, failed, pending, failures
# cap, asset ids cap, number of failures n, [once key when a 4th KEY is given,] n failure JSONs, then the
# asset ids. Returns 0 when missing; with a once key already recorded, changes nothing (a redelivered
# batch is counted once).
_RECORD = _Lua(
    _LUA_PRELUDE
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local base = 7
if #KEYS == 4 then
  base = 8
  if redis.call('SADD', KEYS[4], ARGV[8]) == 0 then return 1 end
end
local fields = {'succeeded', 'duplicates', 'failed', 'pending'}
for i = 1, 4 do
  if tonumber(ARGV[i]) ~= 0 then redis.call('HINCRBY', KEYS[1], fields[i], ARGV[i]) end
end
local function push_capped(key, cap, first, last)
  local room = cap - redis.call('LLEN', key)
  if room <= 0 or last < first then return end
  if last - first + 1 > room then last = first + room - 1 end
  local i = first
  while i <= last do
    local j = math.min(i + CHUNK - 1, last)
    redis.call('RPUSH', key, unpack(ARGV, i, j))
    i = j + 1
  end
end
local n = tonumber(ARGV[7])
push_capped(KEYS[2], tonumber(ARGV[5]), base + 1, base + n)
push_capped(KEYS[3], tonumber(ARGV[6]), base + 1 + n, #ARGV)
local now = job_now(KEYS[1])
touch(KEYS[1], now)
settle(KEYS[1], now)
return 1
""".replace("CHUNK", str(_PUSH_CHUNK))
)

# KEYS: job, stage_seconds, stage_items. ARGV: stage, seconds, items. Returns 0 when missing.
_STAGE = _Lua(
    _LUA_PRELUDE
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HINCRBYFLOAT', KEYS[2], ARGV[1], ARGV[2])
redis.call('HINCRBY', KEYS[3], ARGV[1], ARGV[3])
touch(KEYS[1], job_now(KEYS[1]))
return 1
"""
)

# KEYS: job. ARGV: error. Returns 0 when missing; a job already final is left as it is.
_FAIL = _Lua(
    _LUA_PRELUDE
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'queued' and state ~= 'running' then return 1 end
local now = job_now(KEYS[1])
redis.call('HSET', KEYS[1], 'state', 'failed', 'error', ARGV[1], 'ended_us', fmt(now))
touch(KEYS[1], now)
return 1
"""
)


def _s(value: Any) -> str:
    """Clients may or may not decode responses; accept both."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _dt(us: str) -> datetime:
    """Exact conversion (no float rounding) from epoch microseconds to an aware UTC datetime."""
    return _EPOCH + timedelta(microseconds=int(us))


def _redact(url: str) -> str:
    """The URL for messages, without its password."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.rsplit("@", 1)[1]
        user = f"{parts.username}:***@" if parts.username else ":***@"
        return urlunsplit(parts._replace(netloc=user + netloc))
    except ValueError:
        return "<invalid url>"


def _describe(client: redis.Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    if kwargs.get("path"):
        return f"unix://{kwargs['path']}"
    return f"redis://{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"


def _check_job_id(job_id: str) -> str:
    if not isinstance(job_id, str) or not job_id or len(job_id) > _MAX_JOB_ID_LEN:
        raise InvalidInput(f"job id must be a non-empty string of at most {_MAX_JOB_ID_LEN} characters")
    return job_id


def _check_non_negative(**values: int) -> None:
    for name, value in values.items():
        if value < 0:
            raise InvalidInput(f"{name} must not be negative, got {value}")


def _cursor_token(member: str) -> str:
    """The index member (creation time and id) of the last job returned, in ``ordo.paging``'s token: a
    cursor keeps pages stable while newer jobs are created."""
    return paging.encode_token(member, "jobs")


def _read_cursor(token: str) -> str | None:
    member = paging.decode_token(token, "jobs")
    if member is None:
        return None
    if not isinstance(member, str) or not _MEMBER.fullmatch(member):
        raise InvalidInput("page_token is not one this service gave out", reason=Reason.BAD_PAGE_TOKEN)
    return member


class RedisJobStore:
    """``JobStore`` on Redis; safe for any number of processes and hosts sharing the server."""

    backend = "redis"

    def __init__(self, client: redis.Redis, prefix: str = "ordo") -> None:
        """Use ``client`` as configured by the caller (timeouts, retries); prefer ``from_url``, whose
        defaults fail fast and never retry a non-idempotent ``record``."""
        self._client = client
        self._prefix = prefix
        self._where = _describe(client)

    @classmethod
    def from_url(
        cls,
        url: str,
        prefix: str = "ordo",
        *,
        socket_timeout: float = 5.0,
        connect_timeout: float = 2.0,
    ) -> RedisJobStore:
        """A store with its own client for ``url`` (``redis://``, ``rediss://`` or ``unix://``).

        Connecting is lazy: an unreachable server is reported by the first operation, as ``Unavailable``.
        """
        try:
            client = redis.Redis.from_url(
                url,
                socket_timeout=socket_timeout,
                socket_connect_timeout=connect_timeout,
                retry=Retry(NoBackoff(), 0),
                health_check_interval=30,  # re-validate idle pooled connections (server restarts)
                decode_responses=True,
            )
        except ValueError as e:
            raise InvalidInput(f"invalid Redis URL {_redact(url)!r}: {e}") from e
        store = cls(client, prefix)
        store._where = _redact(url)
        return store

    def close(self) -> None:
        """Release the client's pooled connections."""
        self._client.close()

    # -- keys and plumbing ------------------------------------------------------------------------

    def _key(self, job_id: str, suffix: str = "") -> str:
        return f"{self._prefix}:job:{{{job_id}}}{suffix}"

    @property
    def _index(self) -> str:
        return f"{self._prefix}:jobs"

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as e:
            raise Unavailable(f"job store: Redis at {self._where} is unreachable: {e}") from e

    def _queue_reads(self, pipe: Any, job_id: str, max_listed: int | None = None) -> None:
        """Queue the reads of one job; its lists hold at most ``max_listed`` entries (all when None)."""
        # LRANGE's stop is inclusive: 0..-1 is everything, 1..0 nothing.
        start, stop = (0, -1) if max_listed is None else (0, max_listed - 1) if max_listed > 0 else (1, 0)
        pipe.hgetall(self._key(job_id))
        pipe.lrange(self._key(job_id, ":failures"), start, stop)
        pipe.lrange(self._key(job_id, ":asset_ids"), start, stop)
        pipe.hgetall(self._key(job_id, ":stage_seconds"))
        pipe.hgetall(self._key(job_id, ":stage_items"))

    @staticmethod
    def _parse(replies: Sequence[Any]) -> Job | None:
        raw, failures, asset_ids, seconds, items = replies
        if not raw:
            return None
        h = {_s(k): _s(v) for k, v in raw.items()}
        return Job(
            job_id=h["job_id"],
            kind=h["kind"],
            state=JobState(h["state"]),
            created_at=_dt(h["created_us"]),
            updated_at=_dt(h["updated_us"]),
            total=int(h["total"]),
            enumeration_done=h["enumeration_done"] == "1",
            succeeded=int(h["succeeded"]),
            duplicates=int(h["duplicates"]),
            failed=int(h["failed"]),
            pending=int(h["pending"]),
            failures=[FileFailure(*json.loads(_s(f))) for f in failures],
            ended_at=_dt(h["ended_us"]) if h["ended_us"] else None,
            error=h["error"],
            stage_seconds={_s(k): float(v) for k, v in sorted(seconds.items())},
            stage_items={_s(k): int(v) for k, v in sorted(items.items())},
            asset_ids=[_s(a) for a in asset_ids],
        )

    def _run(self, script: _Lua, job_id: str, keys: list[str], args: list[Any]) -> tuple[int, Job | None]:
        """Run a mutation script and read the job back in one MULTI/EXEC: one round trip, and the
        returned job is exactly the state this mutation produced (no other writer interleaves)."""
        with self._guard():
            for attempt in range(2):
                pipe = self._client.pipeline(transaction=True)
                pipe.evalsha(script.sha, len(keys), *keys, *args)
                self._queue_reads(pipe, job_id, _port.MAX_LISTED_RETURNED)
                try:
                    replies = pipe.execute()
                except redis.exceptions.NoScriptError:
                    # Server restarted or its script cache was flushed. The EVALSHA changed nothing, so
                    # loading the script and running the transaction again cannot count anything twice.
                    if attempt:
                        raise
                    self._client.script_load(script.source)
                    continue
                return int(replies[0]), self._parse(replies[1:])
        raise AssertionError("unreachable")

    def _mutate(self, script: _Lua, job_id: str, keys: list[str], args: list[Any]) -> Job:
        found, job = self._run(script, job_id, keys, args)
        if not found or job is None:
            raise NotFound(f"job {job_id} not found")
        return job

    # -- JobStore ---------------------------------------------------------------------------------

    def create(self, kind: str, job_id: str | None = None) -> Job:
        job_id = _check_job_id(job_id) if job_id is not None else uuid.uuid4().hex
        _, job = self._run(_CREATE, job_id, [self._key(job_id), self._index], [job_id, kind])
        assert job is not None  # created by this script, or already there
        return job

    def get(self, job_id: str, max_listed: int | None = None) -> Job:
        with self._guard():
            pipe = self._client.pipeline(transaction=True)  # one consistent snapshot of all five keys
            self._queue_reads(pipe, job_id, max_listed)
            replies = pipe.execute()
        job = self._parse(replies)
        if job is None:
            raise NotFound(f"job {job_id} not found")
        return job

    def list(self, page_size: int = 0, page_token: str = "", max_listed: int | None = None) -> tuple[list[Job], str]:
        size = paging.page_size(page_size)
        cursor = _read_cursor(page_token)
        upper = "(" + cursor if cursor is not None else "+"
        with self._guard():
            members = [_s(m) for m in self._client.zrevrangebylex(self._index, upper, "-", 0, size + 1)]
            page = members[:size]
            pipe = self._client.pipeline(transaction=True)
            for member in page:
                self._queue_reads(pipe, member[21:], max_listed)
            replies = pipe.execute() if page else []
        jobs = [self._parse(replies[i : i + 5]) for i in range(0, len(replies), 5)]
        token = _cursor_token(page[-1]) if len(members) > size else ""
        return [job for job in jobs if job is not None], token

    def add_inputs(self, job_id: str, count: int, enumeration_done: bool = False) -> Job:
        _check_non_negative(count=count)
        return self._mutate(_ADD_INPUTS, job_id, [self._key(job_id)], [count, int(enumeration_done)])

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
        # Only what could still fit travels to Redis; the script enforces the caps exactly.
        failures = failures[: _port.MAX_FAILURES_KEPT]
        asset_ids = asset_ids[: _port.MAX_ASSET_IDS_KEPT]
        args: list[Any] = [
            succeeded,
            duplicates,
            failed,
            pending,
            _port.MAX_FAILURES_KEPT,
            _port.MAX_ASSET_IDS_KEPT,
            len(failures),
            *([once_key] if once_key else []),
            *(json.dumps([f.source_uri, f.reason, f.message]) for f in failures),
            *asset_ids,
        ]
        keys = [self._key(job_id), self._key(job_id, ":failures"), self._key(job_id, ":asset_ids")]
        if once_key:
            keys.append(self._key(job_id, ":recorded"))
        return self._mutate(_RECORD, job_id, keys, args)

    def add_stage_time(self, job_id: str, stage: str, seconds: float, items: int) -> None:
        keys = [self._key(job_id), self._key(job_id, ":stage_seconds"), self._key(job_id, ":stage_items")]
        if not math.isfinite(seconds):
            raise InvalidInput(f"stage seconds must be finite, got {seconds}")
        with self._guard():
            args = [stage, repr(float(seconds)), int(items)]
            try:
                found = self._client.evalsha(_STAGE.sha, len(keys), *keys, *args)
            except redis.exceptions.NoScriptError:  # not run, so running it after loading is safe
                self._client.script_load(_STAGE.source)
                found = self._client.evalsha(_STAGE.sha, len(keys), *keys, *args)
        if not int(found):
            raise NotFound(f"job {job_id} not found")

    def fail(self, job_id: str, error: str) -> Job:
        return self._mutate(_FAIL, job_id, [self._key(job_id)], [error])

    def version(self, job_id: str) -> int:
        with self._guard():
            value = self._client.hget(self._key(job_id), "version")
        if value is None:
            raise NotFound(f"job {job_id} not found")
        return int(value)
