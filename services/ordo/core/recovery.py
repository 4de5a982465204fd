"""Start-up recovery: whatever moment the last process died, every acknowledged upload gets embedded and
every job reaches a final state.

What a kill can leave behind, and what :class:`Reconciler` does with it (``ordo up`` runs it before its
worker consumes; the queue has already made taken-but-unacknowledged tasks ready again):

* an asset stored as ``PENDING`` whose task is gone (the ingest core's last partial batch, or a task
  that was never written) → queued again, under its open ingest job when it has one, else under a
  ``recover`` job of its own, so the work is visible and counted;
* an ingest job left ``RUNNING`` (its upload stream died with the process) → its enumeration is closed;
  inputs it had counted but never accounted for (a file being received at the kill) are recorded as
  failed with reason ``INTERRUPTED``; the job completes when its queued tasks are done;
* a model switch (``reembed`` job) with nothing queued → its check-and-flip runs again (it queues what
  is missing or finishes the switch);
* any other job still running (an analysis run) → ended ``FAILED`` with reason ``INTERRUPTED``: its
  work lived in the dead process's memory; the user starts it again.

Scanning every asset record is the slow part (one read per asset). After a clean shutdown the marker
file says nothing can be missing outside open jobs, so only their assets are checked.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from ordo.core.catalog import AssetCatalog, original_key
from ordo.domain import AssetState, EmbedTask, FileFailure, Job, SampleKind, SampleRef
from ordo.errors import OrdoError
from ordo.ports.job_store import JobStore
from ordo.ports.task_queue import TaskQueue

log = logging.getLogger(__name__)

RECOVER_KIND = "recover"
REEMBED_KIND = "reembed"
INGEST_KIND = "ingest"
INTERRUPTED = "INTERRUPTED"


@dataclass
class RecoveryReport:
    queued_tasks: int = 0  # tasks found in the queue (they run as they are)
    requeued_assets: int = 0
    new_tasks: int = 0
    jobs_closed: list[str] = field(default_factory=list)
    jobs_ended: list[str] = field(default_factory=list)
    switches_checked: list[str] = field(default_factory=list)
    full_scan: bool = False
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"recovery in {self.seconds:.2f} s: {self.queued_tasks} queued task(s) kept, "
            f"{self.requeued_assets} asset(s) queued again in {self.new_tasks} task(s), "
            f"{len(self.jobs_closed)} job(s) closed, {len(self.jobs_ended)} ended as interrupted, "
            f"{len(self.switches_checked)} model switch(es) checked" + (" (full scan)" if self.full_scan else "")
        )


class Reconciler:
    def __init__(
        self,
        *,
        catalog: AssetCatalog,
        jobs: JobStore,
        queue: TaskQueue,
        queued_tasks: Callable[[], list[EmbedTask]],
        check_switch: Callable[[str], None],
        mark_queued: Callable[[list[str]], None] = lambda ids: None,
        task_batch_size: int = 32,
    ) -> None:
        self.catalog = catalog
        self.jobs = jobs
        self.queue = queue
        self.queued_tasks = queued_tasks
        self.check_switch = check_switch
        self.mark_queued = mark_queued
        self.task_batch_size = task_batch_size

    def run(self, *, full_scan: bool = True) -> RecoveryReport:
        start = time.perf_counter()
        report = RecoveryReport(full_scan=full_scan)
        queued = self.queued_tasks()
        report.queued_tasks = len(queued)
        in_queue = {ref.asset_id for task in queued for ref in task.samples}
        jobs_with_tasks = {task.job_id for task in queued}
        self.mark_queued(sorted(in_queue))
        open_jobs = list(self._open_jobs())
        ingest_jobs = [j for j in open_jobs if j.kind == INGEST_KIND or j.kind == RECOVER_KIND]
        owner: dict[str, str] = {}
        for job in ingest_jobs:
            for asset_id in job.asset_ids:
                owner.setdefault(asset_id, job.job_id)
        candidates: Iterable[str] = self._all_pending() if full_scan else self._pending_of(owner)
        lost = [a for a in candidates if a not in in_queue]
        by_job: dict[str, list[str]] = {}
        for asset_id in lost:
            by_job.setdefault(owner.get(asset_id, ""), []).append(asset_id)
        orphans = by_job.pop("", [])
        stamp = f"{int(time.time() * 1000):x}"
        for job_id, asset_ids in by_job.items():
            report.new_tasks += self._submit(job_id, asset_ids, stamp)
        if orphans:
            job = self.jobs.create(RECOVER_KIND)
            self.jobs.add_inputs(job.job_id, len(orphans), enumeration_done=True)
            self.jobs.record(job.job_id, pending=len(orphans), asset_ids=orphans)
            report.new_tasks += self._submit(job.job_id, orphans, stamp)
        report.requeued_assets = len(lost)
        self.mark_queued(lost)
        for job in ingest_jobs:
            if job.job_id not in jobs_with_tasks:
                self._settle(job, requeued=len(by_job.get(job.job_id, [])))
            self._close(job)
            report.jobs_closed.append(job.job_id)
        for job in open_jobs:
            if job.kind == REEMBED_KIND:
                if job.job_id not in jobs_with_tasks:
                    self._check_switch(job)
                    report.switches_checked.append(job.job_id)
            elif job.kind not in (INGEST_KIND, RECOVER_KIND):
                self.jobs.fail(job.job_id, f"{INTERRUPTED}: the process stopped during this run; start it again")
                report.jobs_ended.append(job.job_id)
        report.seconds = time.perf_counter() - start
        log.info(report.summary())
        return report

    # --- internals -------------------------------------------------------------------------------
    def _open_jobs(self) -> Iterator[Job]:
        token = ""
        while True:
            jobs, token = self.jobs.list(page_size=200, page_token=token)
            yield from (j for j in jobs if not j.state.is_final)
            if not token:
                return

    def _all_pending(self) -> Iterator[str]:
        token = ""
        while True:
            assets, token = self.catalog.list(page_size=500, page_token=token)
            yield from (a.asset_id for a in assets if a.state is AssetState.PENDING)
            if not token:
                return

    def _pending_of(self, owner: dict[str, str]) -> Iterator[str]:
        for asset_id in owner:
            asset = self.catalog.find(asset_id)
            if asset is not None and asset.state is AssetState.PENDING:
                yield asset_id

    def _submit(self, job_id: str, asset_ids: list[str], stamp: str) -> int:
        """Queue ``asset_ids`` under ``job_id`` (already counted as pending there) in tasks of their own
        ids, so a batch the dead process had lost can never collide with them."""
        tasks = 0
        for first in range(0, len(asset_ids), self.task_batch_size):
            refs = tuple(
                SampleRef(a, original_key(a), SampleKind.IMAGE) for a in asset_ids[first : first + self.task_batch_size]
            )
            # No model named: embedded with the model active when a worker takes it.
            self.queue.submit(EmbedTask(f"{job_id}-recover-{stamp}-{first:06d}", job_id, refs, "", ""))
            tasks += 1
        return tasks

    def _settle(self, job: Job, requeued: int) -> None:
        """A job with no task left in the queue waits only on what was just queued again. Pending beyond
        that is work already done whose count was lost — after a power loss the job store's last commits
        can be (``synchronous=NORMAL``), while the vectors and the queue's acknowledgement were fsynced.
        Count it from the assets' states (READY → succeeded, else failed), so the job still ends."""
        stale = job.pending - requeued
        if stale <= 0:
            return
        states = [a.state for a in map(self.catalog.find, dict.fromkeys(job.asset_ids)) if a is not None]
        succeeded = min(stale, max(0, states.count(AssetState.READY) - job.succeeded))
        failed = stale - succeeded
        message = f"{failed} image(s) of this job have no vector and no task after a restart"
        log.warning("job %s: %d pending count(s) settled after a restart (%d done)", job.job_id, stale, succeeded)
        self.jobs.record(
            job.job_id,
            pending=-stale,
            succeeded=succeeded,
            failed=failed,
            failures=[FileFailure("", INTERRUPTED, message)] if failed else [],
        )

    def _close(self, job: Job) -> None:
        """Close the enumeration of a job whose uploader died; account for inputs it never finished."""
        unaccounted = job.total - job.done_count - job.pending
        if unaccounted > 0:
            message = (
                f"{unaccounted} file(s) were being received when the process stopped; "
                "they were not acknowledged — upload them again"
            )
            self.jobs.record(job.job_id, failed=unaccounted, failures=[FileFailure("", INTERRUPTED, message)])
        self.jobs.add_inputs(job.job_id, 0, enumeration_done=True)

    def _check_switch(self, job: Job) -> None:
        """Tasks of the switch lost with the process leave it waiting on counts that never come: settle
        them (as duplicates — the check below queues whatever is still missing as new inputs), then run
        the switch's own check-and-flip."""
        outstanding = job.total - job.done_count
        if job.pending or outstanding > 0:
            self.jobs.record(job.job_id, duplicates=max(outstanding, 0), pending=-job.pending)
        try:
            self.check_switch(job.job_id)
        except OrdoError as exc:
            self.jobs.fail(job.job_id, f"{INTERRUPTED}: could not resume the model switch: {exc.message}")
