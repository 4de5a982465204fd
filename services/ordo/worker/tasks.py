"""The embedding task. It takes a reference to work (an ``ordo.v1.EmbedBatch``), never image bytes."""

from __future__ import annotations

import logging

from celery import Task, shared_task
from celery.exceptions import Reject

from ordo.adapters.celery_queue import decode_task
from ordo.app import current_context
from ordo.domain import EmbedTask, FileFailure
from ordo.errors import Unavailable
from ordo.worker.celery_app import EMBED_TASK

log = logging.getLogger(__name__)

MAX_RETRIES = 8


@shared_task(bind=True, name=EMBED_TASK, max_retries=MAX_RETRIES, acks_late=True)
def embed_batch(self: Task, payload: str) -> int:
    try:
        task = decode_task(payload)
    except ValueError as exc:  # a poison message: retrying can never help
        log.error("rejecting undecodable embedding task: %s", exc)
        raise Reject(str(exc), requeue=False) from exc
    ctx = current_context()
    try:
        return ctx.pipeline.run(task).succeeded
    except Unavailable as exc:
        if self.request.retries < MAX_RETRIES:
            countdown = min(2**self.request.retries, 60)
            log.warning(
                "batch %s: %s; retry %d in %ss",
                task.batch_id,
                exc.message,
                self.request.retries + 1,
                countdown,
            )
            raise self.retry(exc=exc, countdown=countdown) from exc
        _give_up(task, "UNAVAILABLE", f"gave up after {MAX_RETRIES} retries: {exc.message}")
        return 0
    except Exception as exc:
        log.exception("batch %s failed", task.batch_id)
        _give_up(task, "EMBEDDING_FAILED", f"{type(exc).__name__}: {exc}")
        return 0


def _give_up(task: EmbedTask, reason: str, message: str) -> None:
    """Account for every sample of a task that can never succeed, so its job still completes."""
    ctx = current_context()
    failures = [FileFailure(ref.source_uri, reason, message) for ref in task.samples]
    ctx.jobs.record(task.job_id, failed=len(failures), pending=-len(failures), failures=failures)
