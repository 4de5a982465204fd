"""Resuming a job whose queued work was lost (a broker wiped, an ingest service killed mid-upload).

Jobs live in Redis and survive any service restart; what can be lost is the *work*: tasks in a broker
that lost its data, or the last partial batch an ingest process held when it died. ``resume_job`` finds
the job's assets still ``PENDING`` and queues them again, then closes the job's enumeration so it can
complete. It refuses while any task of the job is still waiting or in flight in the queue: resuming
then would embed (and count) the same assets twice. Re-embedding itself is harmless (deterministic
point ids).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import redis

from ordo.app import AppContext
from ordo.config import Settings
from ordo.domain import AssetState, EmbedTask, SampleKind, SampleRef
from ordo.errors import Conflict, InvalidInput, Reason
from ordo.worker.celery_app import EMBED_QUEUE


@dataclass(frozen=True)
class ResumeResult:
    job_id: str
    requeued: int
    tasks: int


def queued_batch_ids(broker_url: str) -> set[str]:
    """Task ids (= batch ids) waiting in the embedding queue or taken and not yet acknowledged (Redis)."""
    if broker_url.startswith(("sqlite", "filesystem")):
        raise InvalidInput("use queued_task_ids(settings) for the embedded queue")
    if not broker_url.startswith("redis"):
        raise InvalidInput(f"resuming does not know the broker {broker_url.split(':', 1)[0]}")
    client = redis.Redis.from_url(broker_url, socket_timeout=5)
    try:
        raw = list(client.lrange(EMBED_QUEUE, 0, -1)) + [v for v in client.hvals("unacked")]
    finally:
        client.close()
    ids = set()
    for item in raw:
        try:
            message = json.loads(item)
            if isinstance(message, list):  # unacked entries are [message, exchange, routing key]
                message = message[0]
            ids.add(str(message["headers"]["id"]))
        except (ValueError, KeyError, TypeError, IndexError):
            continue
    return ids


def queued_task_ids(settings: Settings) -> set[str]:
    """Task ids waiting or in flight, on either broker (the embedded SQLite queue is a file any local
    process may read)."""
    if settings.embedded_queue:
        from ordo.worker.celery_app import queue_path
        from ordo.worker.sqlite_queue import task_ids

        return task_ids(queue_path(settings))
    return queued_batch_ids(settings.broker_url)


def resume_job(ctx: AppContext, job_id: str, batch_size: int | None = None) -> ResumeResult:
    job = ctx.jobs.get(job_id)
    if job.state.is_final:
        raise Conflict(f"job {job_id} is already {job.state.value}; nothing to resume", reason=Reason.JOB_FINISHED)
    in_queue = sorted(b for b in queued_task_ids(ctx.settings) if b.startswith(f"{job_id}-"))
    if in_queue:
        raise Conflict(
            f"{len(in_queue)} task(s) of job {job_id} are still queued or running (e.g. {in_queue[0]}); "
            "resume only lost work",
            reason=Reason.JOB_STILL_QUEUED,
        )
    refs = []
    for asset_id in dict.fromkeys(job.asset_ids):
        asset = ctx.catalog.find(asset_id)
        if asset is not None and asset.state is AssetState.PENDING:
            refs.append(SampleRef(asset_id, asset.original_key, SampleKind.IMAGE))
    size = batch_size or ctx.settings.task_batch_size
    tasks = 0
    for first in range(0, len(refs), size):
        tasks += 1
        chunk = tuple(refs[first : first + size])
        # Ids of their own (resume-<first index>): a lost original batch never reappears to collide.
        batch_id = f"{job_id}-resume-{first:06d}"
        # No model named: the worker embeds with the model active when it takes the task (see model_switch).
        ctx.queue.submit(EmbedTask(batch_id, job_id, chunk, "", ""))
    ctx.ingest.mark_queued([r.asset_id for r in refs])
    ctx.jobs.add_inputs(job_id, 0, enumeration_done=True)
    return ResumeResult(job_id, len(refs), tasks)
