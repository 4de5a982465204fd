"""Core logic called directly (no gRPC): settings, page tokens, the asset catalog and ingestion batching.
Real adapters underneath: a local directory store, SQLite jobs and Celery's filesystem transport."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ordo import paging
from ordo.adapters.celery_queue import CeleryTaskQueue, decode_task
from ordo.adapters.local_store import LocalDirectoryStore
from ordo.adapters.sqlite_jobs import SqliteJobStore
from ordo.config import Settings
from ordo.core.catalog import AssetCatalog
from ordo.core.ingestion import IngestCore, Outcome
from ordo.domain import JobState
from ordo.errors import InvalidInput
from ordo.imaging import ImageLimits
from ordo.worker.celery_app import EMBED_QUEUE, create_celery_app


def test_settings_refuse_contradictions(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="ORDO_S3_ACCESS_KEY"):
        Settings(object_store="s3")
    with pytest.raises(ValueError, match="ORDO_QDRANT_URL"):
        Settings(vector_backend="qdrant")
    with pytest.raises(ValueError, match="not both"):
        Settings(vector_backend="qdrant", qdrant_url="http://q:6333", qdrant_path=":memory:")
    monkeypatch.setenv("ORDO_MODEL_BATCH_SIZE", "0")
    with pytest.raises(ValueError):
        Settings()


def test_settings_from_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "ordo.toml"
    config.write_text('[ordo]\nport = 6000\nmodel = "some/model"\n')
    monkeypatch.setenv("ORDO_CONFIG", str(config))
    monkeypatch.setenv("ORDO_PORT", "7000")
    settings = Settings()
    assert settings.port == 7000  # the environment wins over the file
    assert settings.model == "some/model"
    assert settings.collection_name == "images-some-model"
    assert settings.mode == "embedded"
    assert Settings(broker_url="redis://x:6379/0").mode == "distributed"


def test_settings_file_without_table_and_bad_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    flat = tmp_path / "flat.toml"
    flat.write_text("port = 6001\n")  # keys at the top level work too
    monkeypatch.setenv("ORDO_CONFIG", str(flat))
    assert Settings().port == 6001
    assert Settings(port=6002).port == 6002  # arguments win over the file
    monkeypatch.delenv("ORDO_CONFIG")
    assert Settings().port == Settings.model_fields["port"].default  # no file named: defaults
    broken = tmp_path / "broken.toml"
    broken.write_text("port = = 1\n")
    for path in (broken, tmp_path / "missing.toml"):  # a named file that cannot be read is an error
        monkeypatch.setenv("ORDO_CONFIG", str(path))
        with pytest.raises(InvalidInput, match=re.escape(f"cannot read config file {path}")) as err:
            Settings()
        assert err.value.reason == "BAD_CONFIG"


def test_page_tokens_are_bound_to_their_query() -> None:
    token = paging.encode_token(20, "text:abc")
    assert paging.decode_offset(token, "text:abc") == 20
    assert paging.decode_offset("", "text:abc") == 0
    with pytest.raises(InvalidInput, match="other parameters"):
        paging.decode_offset(token, "text:xyz")
    with pytest.raises(InvalidInput, match="not one this service gave out"):
        paging.decode_offset("%%%", "text:abc")


def _ingest_core(tmp_path: Path, batch: int = 4) -> tuple[IngestCore, CeleryTaskQueue]:
    store = LocalDirectoryStore(tmp_path / "objects", fsync=False)
    app = create_celery_app(Settings(data_dir=tmp_path))
    queue = CeleryTaskQueue(app)
    core = IngestCore(
        catalog=AssetCatalog(store),
        jobs=SqliteJobStore(tmp_path / "jobs.db"),
        queue=queue,
        limits=ImageLimits(),
        collection="images-test",
        model_id="test-model",
        task_batch_size=batch,
    )
    return core, queue


def _drain(queue: CeleryTaskQueue) -> list:
    tasks = []
    with queue.app.connection_for_read() as conn:
        q = conn.SimpleQueue(EMBED_QUEUE)
        while True:
            try:
                message = q.get(block=True, timeout=0.5)
            except q.Empty:
                return tasks
            message.ack()
            tasks.append(decode_task(message.decode()[0][0]))


def test_ingestion_batches_dedupes_and_accounts(tmp_path: Path, coco_images: list[Path]) -> None:
    core, queue = _ingest_core(tmp_path, batch=4)
    job = core.start_job()
    files = coco_images[:10]
    results = [core.ingest_bytes(job.job_id, p.read_bytes(), file_name=p.name) for p in files]
    results.append(core.ingest_bytes(job.job_id, files[0].read_bytes(), file_name="copy.jpg"))
    results.append(core.ingest_bytes(job.job_id, b"", file_name="empty.jpg"))
    job = core.finish_enumeration(job.job_id)

    assert [r.outcome for r in results] == [Outcome.NEW] * 10 + [Outcome.DUPLICATE, Outcome.FAILED]
    assert results[-1].failure is not None and results[-1].failure.reason == "EMPTY_FILE"
    assert (job.total, job.pending, job.duplicates, job.failed, job.state) == (12, 10, 1, 1, JobState.RUNNING)
    tasks = _drain(queue)
    # The first tasks are a quarter, then half the batch size (the worker starts early and is not left
    # waiting for a whole task's upload after the first), then full batches; the rest ends the job.
    assert sorted(len(t.samples) for t in tasks) == [1, 2, 3, 4]
    assert sorted(r.asset_id for t in tasks for r in t.samples) == sorted(r.asset_id for r in results[:10])
    assert len({t.batch_id for t in tasks}) == 4

    # A second job with the same bytes: all duplicates, nothing queued.
    again = core.start_job()
    for p in files[:3]:
        assert core.ingest_bytes(again.job_id, p.read_bytes(), file_name=p.name).outcome is Outcome.DUPLICATE
    done = core.finish_enumeration(again.job_id)
    assert done.state is JobState.SUCCEEDED and _drain(queue) == []


def test_request_id_makes_a_retried_upload_reuse_its_job(tmp_path: Path) -> None:
    core, _ = _ingest_core(tmp_path)
    assert core.start_job("client-retry-7").job_id == core.start_job("client-retry-7").job_id
    assert core.start_job("a").job_id != core.start_job("b").job_id


def test_catalog_pages_through_assets_in_id_order(tmp_path: Path, coco_images: list[Path]) -> None:
    core, _ = _ingest_core(tmp_path)
    job = core.start_job()
    ids = sorted(core.ingest_bytes(job.job_id, p.read_bytes(), file_name=p.name).asset_id for p in coco_images[:9])
    seen, token = [], ""
    while True:
        page, token = core.catalog.list(page_size=4, page_token=token)
        seen += [a.asset_id for a in page]
        if not token:
            break
    assert seen == ids
    assert core.catalog.count() == 9
    with pytest.raises(InvalidInput):
        core.catalog.list(page_size=4, page_token="not-an-id")
    asset = core.catalog.get(ids[0])
    assert asset.width > 0 and asset.mime_type == "image/jpeg" and asset.model_id == "test-model"
