"""Nothing acknowledged is lost, and dedup is atomic — the ingest core and the start-up reconciler on
real adapters (local directory store, SQLite jobs, the embedded SQLite queue). A "crash" here is a new
IngestCore on the same data: exactly what a restarted process has (the in-memory batches are gone)."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import pytest

from ordo.adapters.celery_queue import CeleryTaskQueue, decode_task
from ordo.adapters.local_store import LocalDirectoryStore
from ordo.adapters.sqlite_jobs import SqliteJobStore
from ordo.config import Settings
from ordo.core.catalog import AssetCatalog
from ordo.core.ingestion import IngestCore, Outcome
from ordo.core.recovery import INTERRUPTED, Reconciler
from ordo.domain import AssetState, EmbedTask, JobState
from ordo.imaging import ImageLimits
from ordo.worker.celery_app import EMBED_QUEUE, create_celery_app, queue_path
from ordo.worker.sqlite_queue import queued_payloads
from tests.fixtures.fsync_log import record_fsyncs


class _Stack:
    """One process's view of a data directory."""

    def __init__(self, root: Path, batch: int = 4) -> None:
        self.store = LocalDirectoryStore(root / "objects", fsync=False)
        self.catalog = AssetCatalog(self.store)
        self.jobs = SqliteJobStore(root / "jobs.db")
        self.settings = Settings(data_dir=root)
        self.queue = CeleryTaskQueue(create_celery_app(self.settings))
        self.core = IngestCore(
            catalog=self.catalog,
            jobs=self.jobs,
            queue=self.queue,
            limits=ImageLimits(),
            collection="",
            model_id="",
            task_batch_size=batch,
        )
        self.switch_checks: list[str] = []

    def queued(self) -> list[EmbedTask]:
        return [decode_task(p) for p in queued_payloads(queue_path(self.settings))]

    def reconciler(self) -> Reconciler:
        return Reconciler(
            catalog=self.catalog,
            jobs=self.jobs,
            queue=self.queue,
            queued_tasks=self.queued,
            check_switch=self.switch_checks.append,
            mark_queued=self.core.mark_queued,
            task_batch_size=4,
        )

    def drain(self) -> list[EmbedTask]:
        """The worker's side: take and acknowledge every task."""
        tasks = []
        with self.queue.app.connection_for_read() as conn:
            q = conn.SimpleQueue(EMBED_QUEUE)
            while True:
                try:
                    message = q.get(block=True, timeout=0.3)
                except q.Empty:
                    return tasks
                message.ack()
                tasks.append(decode_task(message.decode()[0][0]))


def test_concurrent_uploads_of_the_same_bytes_give_one_new_and_one_embedding(
    tmp_path: Path, coco_images: list[Path]
) -> None:
    stack = _Stack(tmp_path)
    files = [p.read_bytes() for p in coco_images[:12]]
    outcomes: Counter[tuple[str, Outcome]] = Counter()
    lock = threading.Lock()

    def client() -> None:
        job = stack.core.start_job()
        for i, data in enumerate(files):
            result = stack.core.ingest_bytes(job.job_id, data, file_name=f"{i}.jpg")
            with lock:
                outcomes[(result.asset_id, result.outcome)] += 1
        stack.core.finish_enumeration(job.job_id)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    new = [a for (a, o), n in outcomes.items() if o is Outcome.NEW for _ in range(n)]
    assert len(new) == len(set(new)) == len(files)  # one NEW per image, 8 × 12 − 12 duplicates
    assert sum(n for (_, o), n in outcomes.items() if o is Outcome.DUPLICATE) == 7 * len(files)
    queued = [r.asset_id for t in stack.drain() for r in t.samples]
    assert sorted(queued) == sorted(new)  # one embedding each


def test_a_crash_mid_job_loses_nothing_and_ends_the_job(tmp_path: Path, coco_images: list[Path]) -> None:
    before = _Stack(tmp_path, batch=4)
    job = before.core.start_job()
    results = [before.core.ingest_bytes(job.job_id, p.read_bytes(), file_name=p.name) for p in coco_images[:5]]
    before.jobs.add_inputs(job.job_id, 1)  # a sixth file was being received at the kill
    # Killed here: the first task (1 image) and the second (2) were queued; 2 images sat in memory.
    assert sum(len(t.samples) for t in before.queued()) == 3

    after = _Stack(tmp_path, batch=4)
    report = after.reconciler().run(full_scan=True)
    assert (report.queued_tasks, report.requeued_assets, report.new_tasks) == (2, 2, 1)
    assert report.jobs_closed == [job.job_id]
    queued = Counter(r.asset_id for t in after.drain() for r in t.samples)
    assert set(queued) == {r.asset_id for r in results} and set(queued.values()) == {1}
    state = after.jobs.get(job.job_id)
    assert state.enumeration_done and state.failed == 1 and state.failures[0].reason == INTERRUPTED
    # Re-uploading an image after recovery: its task is on its way, so it is a duplicate and queues nothing.
    again = after.core.start_job()
    assert (
        after.core.ingest_bytes(again.job_id, coco_images[4].read_bytes(), file_name="x").outcome is Outcome.DUPLICATE
    )
    after.core.finish_enumeration(again.job_id)
    assert after.drain() == []


def test_reuploading_a_pending_asset_whose_task_is_gone_queues_it(tmp_path: Path, coco_images: list[Path]) -> None:
    before = _Stack(tmp_path, batch=4)
    job = before.core.start_job()
    data = coco_images[0].read_bytes()
    first = before.core.ingest_bytes(job.job_id, data, file_name="a.jpg")
    first_task = before.drain()  # the first task of a job is small: the image was queued...
    assert [r.asset_id for t in first_task for r in t.samples] == [first.asset_id]
    # ...and its task lost (a wiped broker); no reconciler ran (an ingest-only service restarted).
    assert before.catalog.get(first.asset_id).state is AssetState.PENDING
    after = _Stack(tmp_path, batch=1)
    retry = after.core.start_job()
    result = after.core.ingest_bytes(retry.job_id, data, file_name="a.jpg")
    after.core.finish_enumeration(retry.job_id)
    assert result.outcome is Outcome.NEW
    assert [r.asset_id for t in after.drain() for r in t.samples] == [first.asset_id]


def test_other_interrupted_jobs_end_with_a_reason_and_switches_are_rechecked(tmp_path: Path) -> None:
    stack = _Stack(tmp_path)
    analysis = stack.jobs.create("cluster")
    stack.jobs.add_inputs(analysis.job_id, 3)
    switch = stack.jobs.create("reembed")
    stack.jobs.add_inputs(switch.job_id, 4)
    stack.jobs.record(switch.job_id, pending=4, succeeded=0)
    report = stack.reconciler().run(full_scan=False)
    ended = stack.jobs.get(analysis.job_id)
    assert ended.state is JobState.FAILED and INTERRUPTED in ended.error
    assert report.switches_checked == [switch.job_id] == stack.switch_checks
    settled = stack.jobs.get(switch.job_id)
    assert settled.pending == 0 and settled.done_count == settled.total  # the switch's check can run


def test_ops_resume_works_on_the_embedded_queue(tmp_path: Path, coco_images: list[Path]) -> None:
    """`ordo ops resume` / ResumeJob in the embedded mode: it reads the SQLite queue (any local process
    may), queues the job's lost work, and refuses while that work is still queued."""
    import pytest

    from ordo.app import AppContext
    from ordo.errors import Conflict
    from ordo.worker.resume import resume_job

    settings = Settings(data_dir=tmp_path, task_batch_size=32)
    before = AppContext(settings)
    job = before.ingest.start_job()
    for path in coco_images[:3]:  # fewer than the first task's size: all three sit in memory
        before.ingest.ingest_bytes(job.job_id, path.read_bytes(), file_name=path.name)
    before.close()  # the process dies; its partial batch with it
    after = AppContext(settings)
    result = resume_job(after, job.job_id)
    assert (result.requeued, result.tasks) == (3, 1)
    with pytest.raises(Conflict) as err:
        resume_job(after, job.job_id)
    assert err.value.reason == "JOB_STILL_QUEUED"
    after.close()


def test_a_task_whose_asset_was_deleted_meanwhile_fails_that_image_alone(
    tmp_path: Path, coco_images: list[Path], tiny_clip_dir: Path
) -> None:
    from ordo.app import AppContext

    ctx = AppContext(Settings(data_dir=tmp_path, model=str(tiny_clip_dir), task_batch_size=32))
    job = ctx.ingest.start_job()
    kept, gone = (ctx.ingest.ingest_bytes(job.job_id, p.read_bytes(), file_name=p.name) for p in coco_images[:2])
    ctx.delete_asset(gone.asset_id)  # deleted while its task waits in the queue
    ctx.ingest.finish_enumeration(job.job_id)
    drainer = _Stack.__new__(_Stack)  # only its drain(), on this context's queue
    drainer.queue = ctx.queue
    (task,) = drainer.drain()
    result = ctx.pipeline_for("").run(task)
    assert result.succeeded == 1 and [f.reason for f in result.failures] == ["OBJECT_NOT_FOUND"]
    assert result.failures[0].source_uri == f"asset://{gone.asset_id}"  # no record left to name it
    assert ctx.catalog.find(gone.asset_id) is None  # not resurrected by the failure
    assert ctx.active_index().count() == 1 and ctx.catalog.get(kept.asset_id).state is AssetState.READY
    assert ctx.jobs.get(job.job_id).state is JobState.PARTIALLY_SUCCEEDED
    ctx.close()


def test_an_asset_given_up_on_after_a_long_outage_is_retried_by_reuploading_it(
    tmp_path: Path, coco_images: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transient fault that outlasts every retry (the index or object store down for minutes): the job
    completes with the image failed (UNAVAILABLE), and uploading the same bytes again queues it as NEW —
    not a DUPLICATE of an asset that would otherwise stay PENDING for good."""
    from ordo.adapters.celery_queue import encode_task
    from ordo.errors import Unavailable
    from ordo.worker import tasks

    stack = _Stack(tmp_path, batch=4)
    job = stack.core.start_job()
    data = coco_images[0].read_bytes()
    first = stack.core.ingest_bytes(job.job_id, data, file_name="a.jpg")
    stack.core.finish_enumeration(job.job_id)
    (task,) = stack.drain()

    class DownPipeline:
        def run(self, task: EmbedTask) -> None:
            raise Unavailable("the vector index is unreachable")

    parts = tasks.WorkerParts(stack.jobs, lambda model: DownPipeline(), lambda job_id: None, stack.catalog)  # type: ignore[arg-type, return-value]
    monkeypatch.setattr(tasks, "_parts", lambda: parts)
    monkeypatch.setattr(tasks, "_bury", lambda letters: None)
    assert tasks.embed_batch.apply(args=[encode_task(task)]).get() == 0  # eager: every retry, then give up
    assert stack.jobs.get(job.job_id).state is JobState.FAILED
    failed = stack.catalog.get(first.asset_id)
    assert failed.state is AssetState.FAILED and failed.error.startswith("UNAVAILABLE")
    assert stack.store.exists(failed.original_key)  # kept: nothing is wrong with the file

    retry = stack.core.start_job()  # the same process: its in-memory "queued" set still names the asset
    result = stack.core.ingest_bytes(retry.job_id, data, file_name="a.jpg")
    stack.core.finish_enumeration(retry.job_id)
    assert result.outcome is Outcome.NEW
    assert [r.asset_id for t in stack.drain() for r in t.samples] == [first.asset_id]
    assert stack.catalog.get(first.asset_id).state is AssetState.PENDING


def test_a_job_whose_last_counts_a_power_loss_took_still_ends(tmp_path: Path, coco_images: list[Path]) -> None:
    """After a power loss the job store may miss its last commits (``synchronous=NORMAL``) while the
    vectors and the queue's acknowledgement were fsynced: the job waits on pending counts no task will
    ever settle. The restart counts them from the assets' states, so the job ends."""
    from dataclasses import replace

    stack = _Stack(tmp_path, batch=4)
    job = stack.core.start_job()
    results = [stack.core.ingest_bytes(job.job_id, p.read_bytes(), file_name=p.name) for p in coco_images[:4]]
    stack.core.finish_enumeration(job.job_id)
    stack.drain()  # the worker took and acknowledged every task and wrote the assets READY...
    for r in results:
        stack.catalog.put(replace(stack.catalog.get(r.asset_id), state=AssetState.READY))
    # ...but the job store's record of it was lost with the power.
    assert stack.jobs.get(job.job_id).pending == 4

    after = _Stack(tmp_path, batch=4)
    report = after.reconciler().run(full_scan=True)
    assert report.requeued_assets == 0 and after.drain() == []
    final = after.jobs.get(job.job_id)
    assert (final.state, final.succeeded, final.failed, final.pending) == (JobState.SUCCEEDED, 4, 0, 0)


def test_the_clean_shutdown_marker_is_removed_durably_at_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A removal lost to a power loss would make the next start skip the full scan: the folder is fsynced."""
    from ordo.worker import recover

    synced = record_fsyncs(monkeypatch, recover)
    marker = tmp_path / recover.CLEAN_MARKER
    assert recover.take_clean_marker(marker) is False and synced == []  # a crash: nothing to remove
    marker.write_text("ordo stopped cleanly\n")
    assert recover.take_clean_marker(marker) is True
    assert not marker.exists() and synced == [str(tmp_path.resolve())]
