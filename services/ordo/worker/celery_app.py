"""Celery configuration, chosen on purpose (Celery's task guide):

- ``task_acks_late`` + ``task_reject_on_worker_lost``: a task is acknowledged only after it ran, so a
  worker killed mid-batch hands the batch back to the queue. That is safe because the task is
  idempotent (deterministic point ids; asset records are overwritten with the same content).
- ``worker_prefetch_multiplier = 1``: a task is already a batch of images; prefetching more would let
  one worker hoard batches another idle worker could take.
- ``visibility_timeout`` (Redis, ``ORDO_VISIBILITY_TIMEOUT``, default 1 h): how long a task taken by a
  worker that died stays invisible before Redis hands it to another worker; longer than any batch takes
  (a batch still running when it expires is delivered twice — harmless, see below — but wasteful),
  shorter than a user's patience. Surviving workers sweep for expired tasks every ``visibility/4``
  seconds (at most 10 s), so a lost batch is back in the queue soon after the timeout. A sweep holds a
  Redis lock (``unacked_mutex``) that a worker killed inside the sweep never releases; it expires after
  ``visibility/4`` as well (at most kombu's default, 5 min, which would stall every restore that long).
  Overlapping sweeps are safe: each restore is a Redis transaction, so no task is requeued twice.
- A redelivered batch is harmless: point ids are deterministic (upserts overwrite) and the job counts
  each batch id once (``JobStore.record(once_key=...)``).
- Prefetch: ``worker_prefetch_multiplier = 1`` with ``worker_concurrency`` (:func:`worker_tasks`: one per
  GPU or broker server, two in ``ordo up`` on a CPU): each worker holds exactly the batches it runs;
  ``ORDO_TASK_BATCH_SIZE`` (images per task) and ``ORDO_MODEL_BATCH_SIZE`` (images per forward pass) size
  the work, not prefetching.
- Transient faults (object store, index or job store unavailable) retry the batch with exponential
  backoff and jitter (``ordo.worker.tasks``); inputs that can never succeed become dead letters
  (``ordo.worker.dead_letters``) instead of being retried.
- The embedded mode uses a transactional SQLite queue under the data directory
  (``ordo.worker.sqlite_queue``: a kombu transport that deletes a message only on acknowledgement, so
  ``acks_late`` holds across a kill), so one machine needs no broker server, and the same worker code
  runs against Redis when distributed.
"""

from __future__ import annotations

from pathlib import Path

from celery import Celery
from kombu.entity import Exchange, Queue

from ordo.config import Settings

EMBED_QUEUE = "ordo.embed"
EMBED_TASK = "ordo.embed_batch"


def queue_path(settings: Settings) -> Path:
    """The embedded queue's SQLite file."""
    return settings.queue_dir / "queue.sqlite3"


def broker_url(settings: Settings) -> str:
    """The Celery broker URL: the embedded SQLite queue's, or the configured server's."""
    if settings.embedded_queue:
        from ordo.worker.sqlite_queue import queue_url

        return queue_url(queue_path(settings))
    return settings.broker_url


def worker_tasks(settings: Settings) -> int:
    """Tasks a worker runs at once: ``ORDO_WORKER_CONCURRENCY`` when set, else 2 for the embedded queue on a
    CPU (``ordo up``) and 1 otherwise.

    Why 2 on a CPU (issue 18): with one task at a time the model idles at every task boundary, while the
    task's vectors and READY records are written, its job recorded and acknowledged, and the next task's
    first chunk is fetched and decoded; on 2 cores that was ~15 % of the time. With two, one task writes
    while the other embeds. The model still runs one pass at a time (its inference lane), so nothing is
    oversubscribed; the thread budget is unchanged. A GPU keeps 1: its batches are large and the host
    threads have cores to spare. A worker on a broker server (Redis) keeps 1, as before: the two tasks were
    only measured and crash-tested with the embedded queue (``tests/chaos``), and a cluster scales by adding
    workers anyway."""
    if settings.worker_concurrency:
        return settings.worker_concurrency
    if not settings.embedded_queue:
        return 1
    device = settings.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    return 2 if device == "cpu" else 1


def create_celery_app(settings: Settings) -> Celery:
    app = Celery("ordo", broker=broker_url(settings), include=["ordo.worker.tasks"])
    visibility = settings.visibility_timeout
    transport_options: dict[str, object] = {
        "visibility_timeout": visibility,
        "unacked_restore_interval": max(1, min(10, visibility // 4)),
        "unacked_restore_throttle": 1,
        "unacked_mutex_expire": max(1, min(300, visibility // 4)),
    }
    if settings.embedded_queue:
        transport_options = {"polling_interval": 0.05}
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=EMBED_QUEUE,
        # Declared, not only routed to: Flower lists the app's queues when no worker reports its own.
        task_queues=[Queue(EMBED_QUEUE, Exchange(EMBED_QUEUE, "direct"), routing_key=EMBED_QUEUE)],
        task_routes={EMBED_TASK: {"queue": EMBED_QUEUE}},
        broker_transport_options=transport_options,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=5,
        worker_hijack_root_logger=False,
        worker_concurrency=max(1, settings.worker_concurrency),  # the worker is started with worker_tasks()
        worker_send_task_events=True,
        task_send_sent_event=True,
    )
    return app
