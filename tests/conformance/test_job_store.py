"""One conformance suite for every ``JobStore`` adapter: the embedded (SQLite) and server (Redis) modes
must be indistinguishable to the core, including under concurrent writers.

The Redis cases use the session's Redis (``tests/fixtures/session_guard.py``) under a random key prefix per
test and delete only their own keys afterwards (never FLUSHDB: other suites use the same server).
"""

from __future__ import annotations

import multiprocessing
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC
from pathlib import Path

import pytest
import redis

from ordo import paging
from ordo.adapters.redis_jobs import RedisJobStore
from ordo.adapters.sqlite_jobs import SqliteJobStore
from ordo.domain import FileFailure, Job, JobState
from ordo.errors import InvalidInput, NotFound, Reason, Unavailable
from ordo.ports import job_store as port
from ordo.ports.job_store import JobStore
from tests.fixtures.session_guard import test_redis_url

REDIS_URL = test_redis_url(0)
ADAPTERS = ["sqlite", "redis"]

StoreFactory = Callable[[], JobStore]


def _redis_client() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as e:
        pytest.fail(f"the Redis job-store conformance tests need the session Redis at {REDIS_URL}: {e}")
    return client


@pytest.fixture(params=ADAPTERS)
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Opens stores on one shared backend (same file / same prefix), as separate processes would."""
    stores: list[SqliteJobStore | RedisJobStore] = []
    if request.param == "sqlite":

        def factory() -> JobStore:
            stores.append(SqliteJobStore(tmp_path / "jobs.db"))
            return stores[-1]

        yield factory
        for store in stores:
            store.close()
        return

    client = _redis_client()  # bytes responses, unlike from_url's decoded ones: both must work
    prefix = f"ordo-test-{uuid.uuid4().hex}"

    def redis_factory() -> JobStore:
        stores.append(RedisJobStore(client, prefix=prefix))
        return stores[-1]

    yield redis_factory
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def store(make_store: StoreFactory) -> JobStore:
    return make_store()


def _started(store: JobStore, total: int, enumeration_done: bool = True) -> Job:
    job = store.create("ingest")
    return store.add_inputs(job.job_id, total, enumeration_done=enumeration_done)


# -- basics ---------------------------------------------------------------------------------------


def test_is_a_job_store(store: JobStore) -> None:
    assert isinstance(store, JobStore)
    assert store.backend in ("sqlite", "redis")


def test_create_and_get(store: JobStore) -> None:
    job = store.create("ingest")
    assert job.kind == "ingest"
    assert job.state is JobState.QUEUED
    assert len(job.job_id) == 32 and int(job.job_id, 16) >= 0  # uuid4 hex
    assert job.created_at.tzinfo is not None and job.created_at.utcoffset() == UTC.utcoffset(None)
    assert job.updated_at >= job.created_at
    assert (job.total, job.succeeded, job.duplicates, job.failed, job.pending) == (0, 0, 0, 0, 0)
    assert job.ended_at is None and job.error == "" and not job.enumeration_done
    assert job.failures == [] and job.asset_ids == [] and job.stage_seconds == {} and job.stage_items == {}
    assert store.get(job.job_id) == job


def test_unknown_job_raises_not_found(store: JobStore) -> None:
    missing = uuid.uuid4().hex
    for call in (
        lambda: store.get(missing),
        lambda: store.version(missing),
        lambda: store.add_inputs(missing, 1),
        lambda: store.record(missing, succeeded=1),
        lambda: store.add_stage_time(missing, "decode", 1.0, 1),
        lambda: store.fail(missing, "boom"),
    ):
        with pytest.raises(NotFound):
            call()


def test_create_with_given_id_is_idempotent(store: JobStore) -> None:
    first = store.create("ingest", job_id="retry-me")
    store.add_inputs("retry-me", 5)
    again = store.create("ingest", job_id="retry-me")
    assert again.job_id == "retry-me"
    assert again.created_at == first.created_at
    assert again.total == 5  # the existing job, not a fresh one
    assert len(store.list()[0]) == 1


def test_invalid_arguments(store: JobStore) -> None:
    job = store.create("ingest")
    with pytest.raises(InvalidInput):
        store.create("ingest", job_id="")
    with pytest.raises(InvalidInput):
        store.add_inputs(job.job_id, -1)
    with pytest.raises(InvalidInput):
        store.record(job.job_id, succeeded=-1)
    with pytest.raises(InvalidInput):
        store.list(page_token="not a token!")


# -- progress and completion ----------------------------------------------------------------------


def test_add_inputs_moves_queued_to_running(store: JobStore) -> None:
    job = store.create("ingest")
    job = store.add_inputs(job.job_id, 3)
    assert job.state is JobState.RUNNING
    assert job.total == 3 and not job.enumeration_done
    job = store.add_inputs(job.job_id, 2, enumeration_done=True)
    assert job.total == 5 and job.enumeration_done
    assert job.state is JobState.RUNNING


def test_record_adds_deltas_and_pending_goes_up_and_down(store: JobStore) -> None:
    job = _started(store, 10, enumeration_done=False)
    job = store.record(job.job_id, pending=4)
    assert job.pending == 4
    job = store.record(job.job_id, succeeded=2, duplicates=1, pending=-3)
    assert (job.succeeded, job.duplicates, job.failed, job.pending) == (2, 1, 0, 1)
    job = store.record(job.job_id, failed=1, pending=-1)
    assert (job.succeeded, job.duplicates, job.failed, job.pending) == (2, 1, 1, 0)
    assert job.done_count == 4
    assert job.state is JobState.RUNNING
    assert store.get(job.job_id) == job


def test_record_with_a_once_key_counts_a_redelivered_batch_once(store: JobStore) -> None:
    job = _started(store, 3)
    failure = FileFailure("s3://b/x.jpg", "CORRUPT", "bad bytes")
    store.record(job.job_id, succeeded=1, failed=1, pending=-2, failures=[failure], once_key="batch-1")
    again = store.record(job.job_id, succeeded=1, failed=1, pending=-2, failures=[failure], once_key="batch-1")
    assert (again.succeeded, again.failed, again.pending, len(again.failures)) == (1, 1, -2, 1)
    other = store.record(job.job_id, succeeded=1, pending=-1, once_key="batch-2")
    assert (other.succeeded, other.state) == (2, JobState.PARTIALLY_SUCCEEDED)


def test_completes_as_succeeded(store: JobStore) -> None:
    job = _started(store, 3)
    job = store.record(job.job_id, succeeded=2)
    assert job.state is JobState.RUNNING and job.ended_at is None
    job = store.record(job.job_id, duplicates=1)  # duplicates are not failures
    assert job.state is JobState.SUCCEEDED
    assert job.ended_at is not None and job.ended_at >= job.created_at
    assert job.eta_seconds == 0.0


def test_completes_as_partially_succeeded(store: JobStore) -> None:
    job = _started(store, 3)
    job = store.record(
        job.job_id, succeeded=2, failed=1, failures=[FileFailure("file:///a.jpg", "NOT_AN_IMAGE", "bad")]
    )
    assert job.state is JobState.PARTIALLY_SUCCEEDED
    assert job.failures == [FileFailure("file:///a.jpg", "NOT_AN_IMAGE", "bad")]


def test_completes_as_failed_when_all_inputs_failed(store: JobStore) -> None:
    job = _started(store, 2)
    job = store.record(job.job_id, failed=2)
    assert job.state is JobState.FAILED
    assert job.ended_at is not None


def test_does_not_complete_before_enumeration_is_done(store: JobStore) -> None:
    job = _started(store, 2, enumeration_done=False)
    job = store.record(job.job_id, succeeded=2)
    assert job.state is JobState.RUNNING and job.ended_at is None
    assert job.eta_seconds == -1.0  # total may still grow
    job = store.add_inputs(job.job_id, 1)
    job = store.record(job.job_id, succeeded=1)
    assert job.state is JobState.RUNNING


def test_completes_when_enumeration_closes_after_everything_was_recorded(store: JobStore) -> None:
    job = _started(store, 2, enumeration_done=False)
    store.record(job.job_id, succeeded=1, failed=1)
    job = store.add_inputs(job.job_id, 0, enumeration_done=True)
    assert job.state is JobState.PARTIALLY_SUCCEEDED
    assert job.ended_at is not None


def test_job_without_inputs_succeeds_when_enumeration_closes(store: JobStore) -> None:
    job = store.create("ingest")
    job = store.add_inputs(job.job_id, 0, enumeration_done=True)
    assert job.state is JobState.SUCCEEDED
    assert job.total == 0 and job.ended_at is not None


def test_ended_at_is_set_once(store: JobStore) -> None:
    job = _started(store, 1)
    done = store.record(job.job_id, succeeded=1)
    assert done.ended_at is not None
    time.sleep(0.002)
    store.record(job.job_id, pending=1)  # late bookkeeping on a finished job
    store.fail(job.job_id, "too late")
    later = store.add_inputs(job.job_id, 0, enumeration_done=True)
    assert later.ended_at == done.ended_at
    assert later.state is JobState.SUCCEEDED


def test_fail_ends_the_job_and_final_states_are_not_overwritten(store: JobStore) -> None:
    job = _started(store, 5, enumeration_done=False)
    failed = store.fail(job.job_id, "enumeration broke: bucket gone")
    assert failed.state is JobState.FAILED
    assert failed.error == "enumeration broke: bucket gone"
    assert failed.ended_at is not None
    version = store.version(job.job_id)

    again = store.fail(job.job_id, "second error")
    assert again.error == "enumeration broke: bucket gone" and again.ended_at == failed.ended_at
    assert store.version(job.job_id) == version  # nothing changed

    # Late records still count (counters stay exact) but never revive or re-complete the job.
    store.record(job.job_id, succeeded=5)
    late = store.add_inputs(job.job_id, 0, enumeration_done=True)
    assert late.state is JobState.FAILED and late.succeeded == 5
    assert late.ended_at == failed.ended_at

    done = _started(store, 1)
    done = store.record(done.job_id, succeeded=1)
    assert store.fail(done.job_id, "too late").state is JobState.SUCCEEDED
    assert store.get(done.job_id).error == ""


def test_version_increases_on_every_change(store: JobStore) -> None:
    job = store.create("ingest")
    seen = [store.version(job.job_id)]
    changes: list[Callable[[], object]] = [
        lambda: store.add_inputs(job.job_id, 2),
        lambda: store.record(job.job_id, pending=2),
        lambda: store.record(job.job_id, succeeded=1, pending=-1, asset_ids=["a" * 64]),
        lambda: store.add_stage_time(job.job_id, "embed", 0.1, 1),
        lambda: store.add_inputs(job.job_id, 0, enumeration_done=True),
        lambda: store.record(job.job_id, failed=1, pending=-1),  # completes
    ]
    for change in changes:
        change()
        seen.append(store.version(job.job_id))
    assert seen == sorted(set(seen)), seen  # strictly increasing
    assert store.get(job.job_id).state is JobState.PARTIALLY_SUCCEEDED


def test_failures_and_asset_ids_keep_insertion_order_and_are_capped(
    store: JobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(port, "MAX_FAILURES_KEPT", 3)
    monkeypatch.setattr(port, "MAX_ASSET_IDS_KEPT", 4)
    job = _started(store, 20)
    fails = [FileFailure(f"file:///{i}.jpg", "DECODE_ERROR", f"broken {i}") for i in range(5)]
    store.record(job.job_id, failed=2, failures=fails[:2], asset_ids=["id0", "id1", "id2"])
    store.record(job.job_id, failed=3, failures=fails[2:], asset_ids=["id3", "id4"])
    job = store.record(job.job_id, succeeded=5, asset_ids=["id5"])
    assert job.failures == fails[:3]
    assert job.asset_ids == ["id0", "id1", "id2", "id3"]
    assert (job.failed, job.succeeded) == (5, 5)  # counters stay exact beyond the caps
    assert store.get(job.job_id).failures == fails[:3]


def test_writing_calls_return_capped_lists_and_reads_cap_on_request(
    store: JobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writing call returns at most MAX_LISTED_RETURNED ids and failures (an ingest job records every upload,
    and reading back a 100k-image job's ids each time made its bookkeeping quadratic); get() still has them all,
    and a reader names how many it will show."""
    monkeypatch.setattr(port, "MAX_LISTED_RETURNED", 3)
    job = _started(store, 20)
    ids = [f"id{i}" for i in range(6)]
    fails = [FileFailure(f"file:///{i}.jpg", "DECODE_ERROR", f"broken {i}") for i in range(5)]
    returned = store.record(job.job_id, succeeded=1, failed=5, failures=fails, asset_ids=ids)
    assert (returned.asset_ids, returned.failures) == (ids[:3], fails[:3])
    assert (returned.succeeded, returned.failed) == (1, 5)  # counters stay exact
    for call in (
        lambda: store.add_inputs(job.job_id, 1),
        lambda: store.record(job.job_id, succeeded=1),
        lambda: store.create("ingest", job_id=job.job_id),
        lambda: store.fail(job.job_id, "enumeration broke"),
    ):
        assert len(call().asset_ids) == 3
    full = store.get(job.job_id)
    assert (full.asset_ids, full.failures) == (ids, fails)
    shown = store.get(job.job_id, max_listed=2)
    assert (shown.asset_ids, shown.failures, shown.failed) == (ids[:2], fails[:2], 5)
    counters_only = store.get(job.job_id, max_listed=0)
    assert (counters_only.asset_ids, counters_only.failures, counters_only.state) == ([], [], JobState.FAILED)
    listed, _ = store.list(page_size=50, max_listed=4)
    assert next(j for j in listed if j.job_id == job.job_id).asset_ids == ids[:4]
    listed_all, _ = store.list(page_size=50)
    assert next(j for j in listed_all if j.job_id == job.job_id).asset_ids == ids


def test_stage_times_are_summed_per_stage(store: JobStore) -> None:
    job = _started(store, 4, enumeration_done=False)
    store.add_stage_time(job.job_id, "decode", 0.25, 2)
    store.add_stage_time(job.job_id, "embed", 1.5, 4)
    store.add_stage_time(job.job_id, "decode", 0.5, 2)
    job = store.get(job.job_id)
    assert job.stage_seconds == pytest.approx({"decode": 0.75, "embed": 1.5})
    assert job.stage_items == {"decode": 4, "embed": 4}
    assert job.state is JobState.RUNNING  # timings never complete a job


# -- listing --------------------------------------------------------------------------------------


def test_list_is_newest_first_across_pages(store: JobStore) -> None:
    assert store.list() == ([], "")
    created = [store.create("ingest").job_id for _ in range(7)]
    newest_first = created[::-1]

    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        jobs, token = store.list(page_size=3, page_token=token)
        pages += 1
        seen += [j.job_id for j in jobs]
        if not token:
            break
        # Jobs created meanwhile are newer: they appear on page one, never shift later pages.
        store.create("ingest")
    assert seen == newest_first
    assert pages == 3

    everything, token = store.list(page_size=100)
    assert token == ""
    assert [j.job_id for j in everything][-7:] == newest_first
    times = [j.created_at for j in everything]
    assert times == sorted(times, reverse=True)
    assert everything[-1] == store.get(created[0])


def test_list_exact_page_has_no_next_token(store: JobStore) -> None:
    for _ in range(4):
        store.create("ingest")
    jobs, token = store.list(page_size=2)
    jobs2, token2 = store.list(page_size=2, page_token=token)
    assert len(jobs) == len(jobs2) == 2 and token and token2 == ""


# -- concurrency ----------------------------------------------------------------------------------

THREADS, PER_THREAD = 4, 250


def _record_successes(store: JobStore, job_id: str, threads: int, per_thread: int, out: Path | None) -> int:
    """Record ``threads * per_thread`` single successes; returns how many returned a final job.

    Each ``record`` returns the job as that very update left it, so exactly one call — the one that
    accounted for the last input — may see a final state.
    """
    finals: list[Job] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(per_thread):
                job = store.record(job_id, succeeded=1)
                assert job.state.is_final == (job.succeeded == job.total), job
                if job.state.is_final:
                    finals.append(job)
        except BaseException as e:  # surfaced below: an assert in a thread would vanish
            errors.append(e)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise errors[0]
    if out is not None:
        out.write_text(str(len(finals)))
    return len(finals)


def _assert_completed_once(store: JobStore, job_id: str, finals_seen: int) -> None:
    job = store.get(job_id)
    assert job.succeeded == THREADS * PER_THREAD == job.total
    assert finals_seen == 1
    assert job.state is JobState.SUCCEEDED and job.ended_at is not None


def test_concurrent_threads_count_exactly_and_complete_once(store: JobStore) -> None:
    job = _started(store, THREADS * PER_THREAD)
    version_before = store.version(job.job_id)
    finals = _record_successes(store, job.job_id, THREADS, PER_THREAD, None)
    _assert_completed_once(store, job.job_id, finals)
    # one version bump per record: no update was lost or applied twice
    assert store.version(job.job_id) == version_before + THREADS * PER_THREAD


def test_sqlite_concurrent_processes_count_exactly_and_complete_once(tmp_path: Path) -> None:
    """Two worker processes (one forked from a process with open connections, one spawned) with two
    threads each, all on one SQLite file."""
    store = SqliteJobStore(tmp_path / "jobs.db")
    job = _started(store, THREADS * PER_THREAD)
    version_before = store.version(job.job_id)
    outs = [tmp_path / "fork.out", tmp_path / "spawn.out"]
    procs = [
        multiprocessing.get_context(method).Process(
            target=_record_successes, args=(store, job.job_id, THREADS // 2, PER_THREAD, out)
        )
        for method, out in zip(("fork", "spawn"), outs, strict=True)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0, 0]
    finals = sum(int(out.read_text()) for out in outs)
    _assert_completed_once(store, job.job_id, finals)
    assert store.version(job.job_id) == version_before + THREADS * PER_THREAD
    store.close()


# -- adapter specifics ----------------------------------------------------------------------------


def test_sqlite_store_is_shared_by_instances_on_one_file(tmp_path: Path) -> None:
    first = SqliteJobStore(tmp_path / "nested" / "jobs.db")
    job = _started(first, 1)
    second = SqliteJobStore(tmp_path / "nested" / "jobs.db")
    assert second.record(job.job_id, succeeded=1).state is JobState.SUCCEEDED
    assert first.get(job.job_id).state is JobState.SUCCEEDED
    first.close()
    second.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


def test_redis_unreachable_raises_unavailable_quickly() -> None:
    url = f"redis://127.0.0.1:{_closed_port()}/0"
    start = time.monotonic()
    store = RedisJobStore.from_url(url)
    with pytest.raises(Unavailable) as info:
        store.create("ingest")
    with pytest.raises(Unavailable):
        store.version("any")
    assert time.monotonic() - start < 5
    assert url in info.value.message


def test_redis_from_url_round_trip_and_password_is_not_leaked() -> None:
    _redis_client().close()
    prefix = f"ordo-test-{uuid.uuid4().hex}"
    store = RedisJobStore.from_url(REDIS_URL, prefix=prefix)
    try:
        job = _started(store, 1)
        assert store.record(job.job_id, succeeded=1, asset_ids=["x"]).state is JobState.SUCCEEDED
        assert store.get(job.job_id).asset_ids == ["x"]
    finally:
        client = _redis_client()
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()
        store.close()

    secret = RedisJobStore.from_url(f"redis://user:hunter2@127.0.0.1:{_closed_port()}/0")
    with pytest.raises(Unavailable) as info:
        secret.get("any")
    assert "hunter2" not in info.value.message


def test_redis_reloads_scripts_missing_from_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """A restarted Redis has an empty script cache: mutations must load their script and apply once."""
    from ordo.adapters import redis_jobs

    client = _redis_client()
    prefix = f"ordo-test-{uuid.uuid4().hex}"
    store = RedisJobStore(client, prefix=prefix)
    try:
        job = _started(store, 2)
        unseen = f"\n-- {uuid.uuid4().hex}"  # a script body no server has cached yet
        monkeypatch.setattr(redis_jobs, "_RECORD", redis_jobs._Lua(redis_jobs._RECORD.source + unseen))
        monkeypatch.setattr(redis_jobs, "_STAGE", redis_jobs._Lua(redis_jobs._STAGE.source + unseen))
        assert store.record(job.job_id, succeeded=1).succeeded == 1  # applied exactly once
        store.add_stage_time(job.job_id, "embed", 1.0, 1)
        assert store.get(job.job_id).stage_items == {"embed": 1}
    finally:
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()


def test_pages_follow_aip_158(store: JobStore) -> None:
    """Over-max page sizes are coerced (not refused) and the page size may change between pages."""
    for _ in range(5):
        store.create("ingest")
    everything, token = store.list(page_size=5000)
    assert len(everything) == 5 and token == ""
    seen, token, sizes = [], "", iter([2, 1, 3])
    while True:
        page, token = store.list(page_size=next(sizes), page_token=token)
        seen += [j.job_id for j in page]
        if not token:
            break
    assert seen == [j.job_id for j in everything]


def test_foreign_and_hostile_page_tokens_are_refused(store: JobStore) -> None:
    store.create("ingest")
    store.create("ingest")
    _, token = store.list(page_size=1)
    assert token
    foreign = paging.encode_token("r20200101t000000000000-abcdef", "runs", "")  # a ListRuns token
    for bad in (foreign, "A" * 100_000, "not a token", paging.encode_token([1, 2, 3, 4], "jobs")):
        with pytest.raises(InvalidInput) as caught:
            store.list(page_size=1, page_token=bad)
        assert caught.value.reason == Reason.BAD_PAGE_TOKEN
    with pytest.raises(InvalidInput) as caught:
        store.list(page_size=-1)
    assert caught.value.reason == Reason.BAD_PAGE_SIZE
