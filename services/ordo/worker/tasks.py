"""The embedding task. It takes a reference to work (an ``ordo.v1.EmbedBatch``), never image bytes.

Outcomes, on purpose:

* success → the job counts the batch once (``once_key`` = batch id, so a redelivery after a crash
  between recording and acknowledging is not counted twice) and the worker's heartbeat/metrics grow;
* a file that can never succeed (not an image, truncated, a bomb...) fails alone: the job records it
  with its reason and a dead letter keeps it for operators — it is never retried;
* a transient fault (object store, vector index or job store ``Unavailable``) retries the whole batch
  with exponential backoff and jitter — safe, since point ids are deterministic and the job counts
  each batch once — and after ``MAX_RETRIES`` its samples become failures and dead letters, and their
  assets ``FAILED`` with reason ``UNAVAILABLE`` (original kept): re-uploading one retries it (``NEW``);
* an undecodable message is rejected without requeue (it would poison every worker) and dead-lettered.

Retries are Celery's own (``autoretry_for`` with ``retry_backoff``, ``retry_backoff_max``,
``retry_jitter``, ``max_retries``: 1, 2, 4 … seconds capped at a minute, "full jitter" so workers that
failed together do not retry together). What Celery cannot do is kept here: on the last attempt the task
does not re-raise (Celery would then fail the task and the job would wait forever for its samples) but
accounts for every sample as failed and dead-letters it, so the job still completes.

The task takes what it needs from its process through :class:`WorkerParts` (the job store, the
pipeline of a model, the model switch's check), not the whole context.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from typing import TYPE_CHECKING, cast

from celery import Task, shared_task
from celery.exceptions import Reject
from celery.signals import worker_init, worker_ready

from ordo.adapters.celery_queue import decode_task
from ordo.app import AppContext, current_context
from ordo.domain import AssetState, EmbedTask, FileFailure
from ordo.errors import Unavailable
from ordo.metrics import BATCHES, DEAD_LETTERS, IMAGES, MERGED_PASSES, STAGE_SECONDS, Heartbeat
from ordo.worker.celery_app import EMBED_TASK
from ordo.worker.coalescing import CoalescingEmbedder
from ordo.worker.dead_letters import DeadLetter, DeadLetterStore, create_dead_letters

if TYPE_CHECKING:
    from ordo.core.catalog import AssetCatalog
    from ordo.core.embedding_pipeline import EmbeddingPipeline
    from ordo.embedding.base import Embedder
    from ordo.ports.job_store import JobStore

log = logging.getLogger(__name__)

MAX_RETRIES = 8
HEARTBEAT_EVERY_S = 20
BACKOFF_CAP_S = 60


@dataclass(frozen=True)
class WorkerParts:
    """What the embedding task uses of its process: the pieces, not the context they come from."""

    jobs: JobStore
    pipeline_for: Callable[[str], EmbeddingPipeline]  # '' = the active model (built and loaded on first use)
    after_batch: Callable[[str], None]  # lets a model switch catch up and flip once its last batch is done
    catalog: AssetCatalog | None = None  # marks given-up assets FAILED, so a re-upload retries them

    @classmethod
    def of(cls, ctx: AppContext) -> WorkerParts:
        return cls(ctx.jobs, ctx.pipeline_for, lambda job_id: ctx.model_switch.after_batch(job_id), ctx.catalog)


def _parts() -> WorkerParts:
    """Taken per task, not cached: tests swap the process's context between workers."""
    return WorkerParts.of(current_context())


@cache
def _dead_letters() -> DeadLetterStore:
    return create_dead_letters(current_context().settings)


@cache
def _heartbeat(name: str) -> Heartbeat:
    return Heartbeat(current_context().settings, name)


@worker_init.connect
def _batch_across_tasks(**_: object) -> None:
    """With several tasks at once set (``ORDO_WORKER_CONCURRENCY`` > 1), their model calls share forward passes.

    Not for the CPU's automatic two tasks (``worker_tasks``): there the model's inference lane already runs
    one pass at a time, the tuned batch is small, and a pass waiting for the other task's images would
    leave the lane idle instead of keeping the next chunk queued."""
    ctx = current_context()
    settings = ctx.settings
    if settings.worker_concurrency <= 1:
        return
    pipeline = ctx.pipeline_for("")  # loads the active model now, before the first task
    if not isinstance(pipeline.embedder, CoalescingEmbedder):
        # The wrapper serves every other attribute from the embedder it wraps (``__getattr__``).
        pipeline.embedder = cast(
            "Embedder",
            CoalescingEmbedder(
                pipeline.embedder,
                settings.model_batch_size,
                settings.worker_batch_wait_ms / 1000,
                on_merged=lambda images, calls: MERGED_PASSES.inc(),
            ),
        )
        log.info(
            "cross-task batching: %d tasks at once, passes of up to %d images or %d ms",
            settings.worker_concurrency,
            settings.model_batch_size,
            settings.worker_batch_wait_ms,
        )


@worker_init.connect
def _dead_letter_corrupt_records(**_: object) -> None:
    """The embedded queue sets unreadable records aside itself; they become dead letters here."""
    from ordo.worker import sqlite_queue

    def bury(row_id: int, reason: str) -> None:
        _bury([DeadLetter("", f"queue-record-{row_id}", "", "CORRUPT_QUEUE_RECORD", reason, "queue")])

    sqlite_queue.on_corrupt = bury


@worker_ready.connect
def _announce(sender: object = None, **_: object) -> None:
    """A first heartbeat as soon as the worker consumes, so ops (and tests) see it before any batch, then one
    every ``HEARTBEAT_EVERY_S`` so an idle worker stays listed (the key expires a minute after the last)."""
    hostname = getattr(sender, "hostname", None) or "worker"
    heartbeat = _heartbeat(hostname)
    heartbeat.beat()

    def keep_beating() -> None:
        while True:
            time.sleep(HEARTBEAT_EVERY_S)
            heartbeat.beat()

    threading.Thread(target=keep_beating, name="ordo-heartbeat", daemon=True).start()


@shared_task(
    bind=True,
    name=EMBED_TASK,
    acks_late=True,
    autoretry_for=(Unavailable,),
    max_retries=MAX_RETRIES,
    retry_backoff=1,
    retry_backoff_max=BACKOFF_CAP_S,
    retry_jitter=True,
)
def embed_batch(self: Task, payload: str) -> int:
    worker = self.request.hostname or "worker"
    try:
        task = decode_task(payload)
    except ValueError as exc:  # a poison message: retrying can never help
        log.error("rejecting undecodable embedding task: %s", exc)
        _bury([DeadLetter("", str(self.request.id or ""), "", "BAD_MESSAGE", str(exc), worker)])
        raise Reject(str(exc), requeue=False) from exc
    parts = _parts()
    start = time.perf_counter()
    try:
        # The task names its model ('' = the active one): a model switch re-embeds through this same path.
        result = parts.pipeline_for(task.model_id).run(task)
    except Unavailable as exc:
        BATCHES.labels("retried").inc()
        if self.request.retries < MAX_RETRIES:
            log.warning("batch %s: %s; retry %d with backoff", task.batch_id, exc.message, self.request.retries + 1)
            raise  # autoretry_for: Celery schedules the retry (exponential backoff, jitter)
        message = f"gave up after {MAX_RETRIES} retries: {exc.message}"
        _give_up(parts.jobs, task, "UNAVAILABLE", message, worker)
        _mark_retryable(parts.catalog, task, message)
        return 0
    except Exception as exc:
        log.exception("batch %s failed", task.batch_id)
        _give_up(parts.jobs, task, "EMBEDDING_FAILED", f"{type(exc).__name__}: {exc}", worker)
        return 0
    finally:
        _after_batch(parts, task)
    BATCHES.labels("ok").inc()
    IMAGES.labels("embedded").inc(result.succeeded)
    IMAGES.labels("failed").inc(len(result.failures))
    for stage, seconds in result.clock.seconds.items():
        STAGE_SECONDS.labels(stage).observe(seconds)
    _bury([DeadLetter(task.job_id, task.batch_id, f.source_uri, f.reason, f.message, worker) for f in result.failures])
    _heartbeat(worker).beat(result.succeeded, len(result.failures), time.perf_counter() - start)
    return result.succeeded


#: Tasks running at once (a CPU worker runs two) check a model switch one at a time, so the last two
#: batches of a re-embedding job cannot both see it drained and both finish (flip) the switch.
_SWITCH_CHECK = threading.Lock()


def _after_batch(parts: WorkerParts, task: EmbedTask) -> None:
    """Lets a model switch finish (catch up, then flip) once its last batch is done."""
    try:
        with _SWITCH_CHECK:
            parts.after_batch(task.job_id)
    except Exception:  # the batch itself is done; the next batch or a retry of the switch checks again
        log.exception("model switch check after batch %s failed", task.batch_id)


def _bury(letters: list[DeadLetter]) -> None:
    if not letters:
        return
    for letter in letters:
        DEAD_LETTERS.labels(letter.reason).inc()
    try:
        _dead_letters().add(letters)
    except Exception as exc:  # the job already has the failures; a lost dead letter must not redo the batch
        log.error("could not record %d dead letters: %s", len(letters), exc)


def _give_up(jobs: JobStore, task: EmbedTask, reason: str, message: str, worker: str) -> None:
    """Account for every sample of a task that can never succeed, so its job still completes."""
    failures = [FileFailure(ref.source_uri or f"asset://{ref.asset_id}", reason, message) for ref in task.samples]
    jobs.record(
        task.job_id,
        failed=len(failures),
        pending=-len(failures),
        failures=failures,
        once_key=task.batch_id,
    )
    IMAGES.labels("failed").inc(len(failures))
    BATCHES.labels("gave_up").inc()
    _bury([DeadLetter(task.job_id, task.batch_id, f.source_uri, f.reason, f.message, worker) for f in failures])


def _mark_retryable(catalog: AssetCatalog | None, task: EmbedTask, message: str) -> None:
    """Record given-up assets as ``FAILED`` (reason ``UNAVAILABLE``), keeping their original: left
    ``PENDING`` they would look on their way to the ingest service, which would answer a re-upload
    ``DUPLICATE`` and never queue them again. A ``FAILED`` asset is stored and queued anew on re-upload.
    Best effort: when the catalog itself is down they stay ``PENDING``, and the start-up reconciler (after
    a crash) or a re-upload to a restarted ingest service queues them."""
    if catalog is None:
        return
    for ref in task.samples:
        try:
            asset = catalog.find(ref.asset_id)
            if asset is not None and asset.state is AssetState.PENDING:
                catalog.put(replace(asset, state=AssetState.FAILED, error=f"UNAVAILABLE: {message}"))
        except Exception:  # the store is still down: see above
            log.warning("could not mark asset %s failed after giving up", ref.asset_id, exc_info=True)
            return
