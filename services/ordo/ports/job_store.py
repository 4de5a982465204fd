"""Job store port: progress of long-running work, shared by the services and the workers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from ordo.domain import FileFailure, Job

# Failures and asset ids kept per job; counters stay exact beyond these caps.
MAX_FAILURES_KEPT = 10_000
MAX_ASSET_IDS_KEPT = 100_000
# Failures and asset ids (each) carried by the Job a *writing* call returns (create, add_inputs, record, fail).
# Why a cap: an ingest job records every upload, and reading back all of a 100k-image job's ids on each of those
# calls made a job's bookkeeping quadratic in its size (38 ms a call at 100k ids in SQLite, more than an
# image's whole embedding). Callers that need every kept id read them with ``get``.
MAX_LISTED_RETURNED = 1_000


@runtime_checkable
class JobStore(Protocol):
    """Jobs with atomic counters. The Job a writing call returns has exact counters and state, and at most
    ``MAX_LISTED_RETURNED`` of its failures and asset ids. Every adapter must be safe across processes
    (several workers and service instances update the same job), and must complete a job exactly when its
    last input is accounted for: state becomes SUCCEEDED, or PARTIALLY_SUCCEEDED when some failed (FAILED
    when all did), as soon as ``enumeration_done`` and ``succeeded + duplicates + failed >= total``.
    """

    backend: str

    def create(self, kind: str, job_id: str | None = None) -> Job:
        """New job in state QUEUED. With ``job_id`` given and already present, returns the existing job
        (idempotent retries)."""
        ...

    def get(self, job_id: str, max_listed: int | None = None) -> Job:
        """Raises ``ordo.errors.NotFound``. With ``max_listed``, at most that many failures and asset ids
        (the first kept) are read: what a caller will show, not what a job holds."""
        ...

    def list(self, page_size: int = 0, page_token: str = "", max_listed: int | None = None) -> tuple[list[Job], str]:
        """Newest first (``max_listed`` as for ``get``); returns (jobs, next_page_token) with '' when there is
        no next page. Pages as ``ordo.paging`` says (0 is the default size, over-max is coerced); the token
        holds a cursor, so jobs created meanwhile do not shift the pages."""
        ...

    def add_inputs(self, job_id: str, count: int, enumeration_done: bool = False) -> Job:
        """Grow ``total`` by ``count`` (inputs discovered) and optionally close enumeration. Moves a
        QUEUED job to RUNNING. May complete the job."""
        ...

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
        """Atomically add the deltas (``pending`` may be negative), append failures and asset ids
        (capped), bump the version, and complete the job if this accounted for its last input.
        With ``once_key`` (a batch id), a second record with the same key changes nothing: a task
        redelivered after its worker died once it had recorded is not counted twice."""
        ...

    def add_stage_time(self, job_id: str, stage: str, seconds: float, items: int) -> None: ...

    def fail(self, job_id: str, error: str) -> Job:
        """End the whole job as FAILED (e.g. its enumeration broke); final states are not overwritten."""
        ...

    def version(self, job_id: str) -> int:
        """Monotonic change counter, cheap to poll (WatchJob waits on it)."""
        ...
