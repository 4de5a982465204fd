"""What every analysis run shares: its record and job, the step clock, loading vectors, failing cleanly.

Why a module of its own: clustering and projection runs (``clustering_job``, ``projection_job``) go through the
same life cycle — refuse what is cheap to know before anything exists, create the run and its job, compute it
inline or on the background pool, and on any failure delete its data and record why — and incremental
assignment writes payloads the way a clustering run does. Keeping that here leaves each job module with its
own steps only.

Order of writes in a run: data files, then cluster ids into the vector payloads, then ``run.json`` as succeeded,
then the job's last step. A client that sees the job succeed therefore finds the run complete.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np

from ordo.analysis import runs as rs
from ordo.analysis.runs import RunRecord, RunStore
from ordo.analysis.vectors import NOISE
from ordo.chaos import checkpoint
from ordo.domain import Filter, Job, SampleKind
from ordo.errors import Conflict, InvalidInput, OrdoError, Reason
from ordo.ports.job_store import JobStore
from ordo.ports.vector_index import VectorIndex

log = logging.getLogger(__name__)

_LOAD_BATCH = 4096  # vectors per numpy chunk while scrolling (bounded list-of-lists memory)


@dataclass(eq=False)
class Loaded:
    """The vectors a run works on, with the little of each payload it needs."""

    sample_ids: list[str]
    asset_ids: list[str]
    vectors: np.ndarray
    field_values: list[str | None]  # the label field's value per sample (metrics), when one was asked for
    model_id: str


def default_kinds(flt: Filter) -> Filter:
    """Runs cover whole images unless the filter names kinds (object crops, text regions)."""
    return flt if flt.kinds else replace(flt, kinds=(SampleKind.IMAGE,))


def stored(array: np.ndarray | None, what: str) -> np.ndarray:
    """An array a run of its kind always stores (a clustering run's labels, a projection run's coords)."""
    if array is None:
        raise ValueError(f"the run's data has no {what}")
    return array


class StepClock:
    """Times a run's steps and advances its job one step at a time (the job's total is the step count)."""

    def __init__(self, jobs: JobStore, job_id: str) -> None:
        self.jobs = jobs
        self.job_id = job_id
        self.seconds: dict[str, float] = {}
        self.started = time.perf_counter()
        self.current = ("", self.started)

    def so_far(self) -> dict[str, float]:
        """Seconds per finished step, plus the step in progress up to now (the final write records itself)."""
        name, start = self.current
        return {**self.seconds, name: round(time.perf_counter() - start, 4)} if name else dict(self.seconds)

    def step(self, name: str, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        self.current = (name, start)
        result = fn()
        elapsed = time.perf_counter() - start
        self.seconds[name] = round(elapsed, 4)
        self.jobs.add_stage_time(self.job_id, name, elapsed, 1)
        self.jobs.record(self.job_id, succeeded=1)
        return result


class Work(Protocol):
    """One run's computation: its steps on ``clock``, ending with :meth:`Runner.succeed`."""

    def __call__(self, record: RunRecord, request: Any, clock: StepClock, /) -> RunRecord: ...


class Runner:
    """Creates runs with their jobs, executes them, loads their vectors and labels payloads.

    ``write_lock`` serialises writers of shared run files (renames, run completion); ``on_success`` runs under
    it after a run is recorded as succeeded (the incremental assigner forgets its cached run there).
    """

    def __init__(
        self,
        *,
        index: VectorIndex,
        runs: RunStore,
        jobs: JobStore,
        model_id: str,
        on_success: Callable[[], None] = lambda: None,
    ) -> None:
        self.index = index
        self.runs = runs
        self.jobs = jobs
        self.model_id = model_id
        self.on_success = on_success
        self.write_lock = threading.Lock()

    def ready(self, run_id: str, kind: str) -> RunRecord:
        """The run, refused unless it is of ``kind`` and succeeded."""
        record = self.runs.get(run_id)
        if record.kind != kind:
            raise InvalidInput(f"run {run_id} is a {record.kind} run, not a {kind} run", reason=Reason.BAD_RUN_KIND)
        if record.state != rs.SUCCEEDED:
            detail = f": {record.error}" if record.error else " (watch its job)"
            raise Conflict(f"run {run_id} is {record.state}{detail}", reason=Reason.RUN_NOT_READY)
        return record

    def count_or_refuse(self, flt: Filter) -> int:
        n = self.index.count(flt)
        if n == 0:
            if self.index.count() == 0:
                raise Conflict("the collection is empty: ingest images first", reason=Reason.EMPTY_COLLECTION)
            raise Conflict("the filter matches no samples", reason=Reason.NO_MATCHING_SAMPLES)
        return n

    def create(self, kind: str, flt: Filter, params: dict[str, Any], steps: int) -> tuple[RunRecord, Job]:
        job = self.jobs.create(kind)
        self.jobs.add_inputs(job.job_id, steps, enumeration_done=True)
        record = RunRecord(
            run_id=rs.new_run_id(),
            kind=kind,
            model_id=self.model_id,
            created_at=datetime.now(UTC),
            job_id=job.job_id,
            filter=flt,
            params=params,
        )
        self.runs.save_record(record)
        return record, job

    def submit(self, background: Executor | None, work: Work, record: RunRecord, request: Any) -> None:
        if background is None:
            self.execute(work, record, request)
        else:
            background.submit(self.execute, work, record, request)

    def succeed(self, record: RunRecord, clock: StepClock) -> None:
        """The run's record as succeeded: the last write of a run, just before its job's last step."""
        record.state = rs.SUCCEEDED
        record.seconds = round(time.perf_counter() - clock.started, 4)
        record.stage_seconds = clock.so_far()
        with self.write_lock:
            self.runs.save_record(record)
            self.on_success()

    def execute(self, work: Work, record: RunRecord, request: Any) -> None:
        """Run one job; on any failure delete the run's data and record why (run and job both FAILED)."""
        clock = StepClock(self.jobs, record.job_id)
        started = clock.started
        try:
            checkpoint("analysis")
            work(record, request, clock)
        except Exception as exc:  # every failure ends the run with its reason
            reason = exc.reason if isinstance(exc, OrdoError) else "INTERNAL"
            message = exc.message if isinstance(exc, OrdoError) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, OrdoError):
                log.exception("analysis run %s failed", record.run_id)
            try:
                self.runs.delete_data(record.run_id)
                record.state, record.error, record.error_reason = rs.FAILED, message, reason
                record.seconds = round(time.perf_counter() - started, 4)
                record.stage_seconds = dict(clock.seconds)
                self.runs.save_record(record)
            finally:
                self.jobs.fail(record.job_id, f"{reason}: {message}")

    def load(self, flt: Filter, label_field: str = "") -> Loaded:
        """All vectors matching ``flt`` (via ``scroll``), refusing NaN or zero vectors with their sample ids.

        Payloads are not kept (≈1 KB each, 100 MB per 100k samples): only asset ids, the model id and the
        ``label_field`` values the metrics need."""
        sample_ids: list[str] = []
        asset_ids: list[str] = []
        field_values: list[str | None] = []
        model_id = ""
        chunks: list[np.ndarray] = []
        batch: list[list[float]] = []
        for point in self.index.scroll(flt, with_vectors=True):
            sample_ids.append(point.id)
            asset_ids.append(str(point.payload.get("asset_id", "")))
            if label_field:
                value = point.payload.get(label_field)
                field_values.append(None if value is None else str(value))
            model_id = model_id or str(point.payload.get("model_id", ""))
            batch.append(point.vector)
            if len(batch) == _LOAD_BATCH:
                chunks.append(np.asarray(batch, dtype=np.float32))
                batch = []
        if batch:
            chunks.append(np.asarray(batch, dtype=np.float32))
        if not sample_ids:
            raise Conflict("the filter matches no samples (any more)", reason=Reason.NO_MATCHING_SAMPLES)
        vectors = np.concatenate(chunks) if len(chunks) > 1 else chunks[0]
        _refuse_unusable(vectors, sample_ids)
        return Loaded(sample_ids, asset_ids, vectors, field_values, model_id)

    def label_payloads(self, run_id: str, sample_ids: list[str], labels: np.ndarray, cluster_ids: list[str]) -> None:
        """Write ``cluster_id`` (noise: "") and ``cluster_run_id`` into each sample's payload, one call per cluster."""
        order = np.argsort(labels, kind="stable")
        sorted_labels = labels[order]
        bounds = np.flatnonzero(np.diff(sorted_labels)) + 1
        for group in np.split(order, bounds):
            if group.size == 0:
                continue
            label = int(labels[group[0]])
            cluster_id = "" if label == NOISE else cluster_ids[label]
            self.index.set_payload([sample_ids[i] for i in group], {"cluster_id": cluster_id, "cluster_run_id": run_id})


def _refuse_unusable(vectors: np.ndarray, sample_ids: list[str]) -> None:
    """NaN, infinite or zero vectors have no direction to cluster or map: name a few and refuse the run."""
    finite = np.asarray(np.isfinite(vectors).all(axis=1))
    bad = np.flatnonzero(~finite | (np.linalg.norm(np.where(finite[:, None], vectors, 0), axis=1) == 0))
    if bad.size:
        examples = ", ".join(sample_ids[i] for i in bad[:3])
        raise InvalidInput(
            f"{bad.size} vector(s) are NaN, infinite or zero (e.g. sample {examples}); re-embed those images",
            reason=Reason.INVALID_VECTORS,
        )
