"""Wiring of the start-up recovery for ``ordo up`` (see ``ordo.core.recovery`` for what it does).

The embedded queue's taken-but-unacknowledged tasks are made ready first (``ordo up``'s worker is the
queue's only consumer, and it has not started yet), then the reconciler runs. A marker file written at
a clean shutdown and removed at start tells whether the last run ended cleanly: if it did, only the
assets of open jobs are checked instead of every asset record.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ordo.adapters.celery_queue import decode_task
from ordo.app import AppContext
from ordo.core.recovery import Reconciler, RecoveryReport
from ordo.domain import EmbedTask
from ordo.ports.vector_index import optimizable

log = logging.getLogger(__name__)

CLEAN_MARKER = "clean-shutdown"


def _marker(ctx: AppContext) -> Path:
    return ctx.settings.data_dir / CLEAN_MARKER


def take_clean_marker(marker: Path) -> bool:
    """Whether the last run stopped cleanly; removes the marker durably (the folder is fsynced): were the
    removal lost to a power loss, the next start would trust a stale marker and skip the full scan that
    finds stranded assets no open job names (a job record itself can be lost with the power)."""
    if not marker.exists():
        return False
    marker.unlink(missing_ok=True)
    fd = os.open(marker.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


def queued_tasks(ctx: AppContext) -> list[EmbedTask]:
    """Tasks in the embedded queue (ready or taken); empty for a server broker."""
    if not ctx.settings.embedded_queue:
        return []
    from ordo.worker.celery_app import queue_path
    from ordo.worker.sqlite_queue import queued_payloads

    tasks = []
    for payload in queued_payloads(queue_path(ctx.settings)):
        try:
            tasks.append(decode_task(payload))
        except ValueError:  # the worker dead-letters it when it takes it
            continue
    return tasks


def recover_at_start(ctx: AppContext) -> RecoveryReport:
    """Run before the worker consumes. Raises what the stores raise (``ordo up`` then fails to start
    rather than serve with lost work)."""
    if ctx.settings.embedded_queue:
        from ordo.worker.celery_app import queue_path
        from ordo.worker.sqlite_queue import restore_taken

        restored = restore_taken(queue_path(ctx.settings))
        if restored:
            log.info("%d task(s) taken by the previous run and not finished are queued again", restored)
    clean = take_clean_marker(_marker(ctx))
    reconciler = Reconciler(
        catalog=ctx.catalog,
        jobs=ctx.jobs,
        queue=ctx.queue,
        queued_tasks=lambda: queued_tasks(ctx),
        check_switch=ctx.model_switch.after_batch,
        mark_queued=ctx.ingest.mark_queued,
        task_batch_size=ctx.settings.task_batch_size,
    )
    report = reconciler.run(full_scan=not clean)
    ctx.catalog.start_order_index()  # a library from before the date orders: indexed in the background
    index = optimizable(ctx.active_index())
    if index is not None and index.upgrade():  # an index from before int8 search: rebuilt in the background
        log.info("the vector index predates int8 search; rebuilding it in the background (serving goes on)")
    return report


def mark_clean_shutdown(ctx: AppContext) -> None:
    """Called last in a graceful stop: the next start may skip the full scan."""
    try:
        _marker(ctx).write_text("ordo stopped cleanly\n")
    except OSError as exc:
        log.warning("could not write %s: %s (the next start scans every asset)", _marker(ctx), exc)
