"""ModelSwitcher on real adapters (local object store, Qdrant Edge, SQLite jobs, Celery's filesystem queue):
what a switch queues, and that it keeps the crops and OCR text an asset once asked for."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ordo.adapters.celery_queue import decode_task
from ordo.app import AppContext
from ordo.config import Settings
from ordo.core.catalog import original_key
from ordo.core.model_versions import VersionState
from ordo.domain import Asset, AssetState, EmbedTask, JobState, ProcessingOptions, SampleKind, VectorPoint
from ordo.errors import Conflict
from ordo.ids import sample_id_for
from ordo.worker.celery_app import EMBED_QUEUE

ASSETS = {name: name * 64 for name in "abc"}  # asset ids: 64 hex characters


def _drain(ctx: AppContext) -> list[EmbedTask]:
    tasks = []
    with ctx.celery.connection_for_read() as conn:
        queue = conn.SimpleQueue(EMBED_QUEUE)
        while True:
            try:
                message = queue.get(block=True, timeout=1.0)
            except queue.Empty:
                return tasks
            message.ack()
            body = message.decode()
            tasks.append(decode_task(body[0][0] if isinstance(body, list | tuple) else body))


@pytest.fixture
def ctx(tmp_path: Path) -> AppContext:
    context = AppContext(Settings(data_dir=tmp_path, model="random-clip:tiny", task_batch_size=2))
    yield context
    context.close()


def test_a_switch_queues_every_asset_and_keeps_what_was_processed(ctx: AppContext) -> None:
    old = ctx.model_versions.ensure_active("old-model", "old-id", "images-old", "test")
    now = datetime.now(UTC)
    points = []
    for asset_id in ASSETS.values():
        ctx.catalog.put(
            Asset(
                asset_id,
                "upload://x",
                "x.jpg",
                "image/jpeg",
                1,
                1,
                1,
                now,
                original_key(asset_id),
                state=AssetState.READY,
            )
        )
        points.append(
            VectorPoint(
                sample_id_for(asset_id, SampleKind.IMAGE), [1.0, 0, 0, 0], {"asset_id": asset_id, "kind": "image"}
            )
        )
    points.append(
        VectorPoint(
            sample_id_for(ASSETS["a"], SampleKind.OBJECT), [0, 1.0, 0, 0], {"asset_id": ASSETS["a"], "kind": "object"}
        )
    )
    points.append(
        VectorPoint(
            sample_id_for(ASSETS["b"], SampleKind.TEXT), [0, 0, 1.0, 0], {"asset_id": ASSETS["b"], "kind": "text"}
        )
    )
    source = ctx.index_for(old.collection)
    source.ensure_collection(4)
    source.upsert(points)

    version, job = ctx.model_switch.start("new-model", "new-id", "images-new")
    assert version.state is VersionState.BUILDING and job.kind == "reembed" and job.total == 3
    tasks = _drain(ctx)
    options = {ref.asset_id: task.processing for task in tasks for ref in task.samples}
    assert options == {
        ASSETS["a"]: ProcessingOptions(detect_objects=True),
        ASSETS["b"]: ProcessingOptions(read_text=True),
        ASSETS["c"]: ProcessingOptions(),
    }
    assert {(t.model_id, t.collection) for t in tasks} == {("new-model", "images-new")}
    assert len({t.batch_id for t in tasks}) == len(tasks)

    # Nothing done yet: the worker's hook leaves the job alone; a second switch must wait.
    ctx.model_switch.after_batch(job.job_id)
    assert ctx.jobs.get(job.job_id).state is JobState.RUNNING
    with pytest.raises(Conflict, match="in progress"):
        ctx.model_switch.start("third-model", "third-id", "images-third")
    assert ctx.model_versions.active().model == "old-model"  # search keeps the old one meanwhile


def test_switching_an_empty_collection_flips_at_once(ctx: AppContext) -> None:
    ctx.model_versions.ensure_active("old-model", "old-id", "images-old", "test")
    _, job = ctx.model_switch.start("new-model", "new-id", "images-new")
    assert job.state is JobState.SUCCEEDED and job.total == 0
    assert ctx.model_versions.active().model == "new-model"
    assert ctx.active_version().model == "new-model"  # this process follows at once
    assert {v.model: v.state for v in ctx.model_versions.list()} == {
        "new-model": VersionState.ACTIVE,
        "old-model": VersionState.READY,
    }
