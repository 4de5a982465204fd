"""Issue 18: the worker keeps the model fed. A task's next chunk waits on the model's lane while the current one
runs (no idle hand-off between passes), the model's time is not double-counted for it, vectors still reach the
index before READY records, and a CPU worker runs two tasks at once so task boundaries overlap the model."""

from __future__ import annotations

import io
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ordo.adapters.edge_index import EdgeVectorIndex
from ordo.adapters.local_store import LocalDirectoryStore
from ordo.adapters.sqlite_jobs import SqliteJobStore
from ordo.config import Settings
from ordo.core.catalog import AssetCatalog
from ordo.core.embedding_pipeline import EmbeddingPipeline, _covered
from ordo.domain import Asset, AssetState, EmbedTask, SampleKind, SampleRef
from ordo.embedding.inference_lane import IMAGE_PRIORITY, InferenceLane
from ordo.ids import asset_id_for
from ordo.imaging import ImageLimits, probe
from ordo.worker.celery_app import worker_tasks

DIM = 8
PASS_S = 0.15


class SlowLaneModel:
    """A stand-in model whose passes take PASS_S on one lane thread (as the real embedders' inference lane);
    it records when each pass was asked for and when it ran, to show whether the next pass was waiting."""

    model_id = "slow-lane"
    dim = DIM
    batch_size = 2
    input_size = 32
    device = "cpu"

    def __init__(self) -> None:
        self.lane = InferenceLane("test-lane")
        self.asked: list[float] = []
        self.ran: list[tuple[float, float]] = []
        self._lock = threading.Lock()

    def prepare_image(self, image: Image.Image) -> np.ndarray:
        return np.asarray(image.resize((4, 4)), dtype=np.float32).ravel()[:DIM]

    def _pass(self, batch: list[np.ndarray]) -> np.ndarray:
        start = time.perf_counter()
        time.sleep(PASS_S)
        self.ran.append((start, time.perf_counter()))
        out = np.stack(batch) + 1.0
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def embed_prepared(self, prepared: list[np.ndarray]) -> np.ndarray:
        with self._lock:
            self.asked.append(time.perf_counter())
        return self.lane.submit(IMAGE_PRIORITY, self._pass, list(prepared)).result()

    def embed_images(self, images: list[Image.Image]) -> np.ndarray:
        return self.embed_prepared([self.prepare_image(i) for i in images])


def _photo(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    out = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(out, "JPEG")
    return out.getvalue()


def _stored(catalog: AssetCatalog, data: bytes) -> SampleRef:
    info = probe(data, ImageLimits())
    asset_id = asset_id_for(data, "default")
    key = catalog.put_original(asset_id, data, info.mime_type)
    catalog.put(
        Asset(
            asset_id=asset_id,
            source_uri=f"upload://{asset_id[:8]}.jpg",
            file_name=f"{asset_id[:8]}.jpg",
            mime_type=info.mime_type,
            size_bytes=len(data),
            width=info.width,
            height=info.height,
            ingested_at=datetime.now(UTC),
            original_key=key,
        )
    )
    return SampleRef(asset_id, key, SampleKind.IMAGE)


def test_the_next_chunk_waits_on_the_lane_while_the_current_one_runs(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path / "objects")
    catalog = AssetCatalog(store)
    jobs = SqliteJobStore(tmp_path / "jobs.sqlite3")
    index = EdgeVectorIndex(tmp_path / "vectors")
    model = SlowLaneModel()
    pipeline = EmbeddingPipeline(
        store=store,
        index=index,
        jobs=jobs,
        embedder=model,  # type: ignore[arg-type]
        limits=ImageLimits(),
        decode_threads=2,
    )
    refs = tuple(_stored(catalog, _photo(i)) for i in range(8))
    job = jobs.create("ingest")
    # Enumeration left open: a completed job would start the index's HNSW build in a child process.
    jobs.add_inputs(job.job_id, len(refs))
    jobs.record(job.job_id, pending=len(refs))
    try:
        result = pipeline.run(EmbedTask(f"{job.job_id}-000001", job.job_id, refs, "", ""))
    finally:
        pipeline.close()

    assert result.succeeded == 8 and not result.failures
    assert len(model.ran) == 4  # four chunks of the model's batch size (2)
    # Every pass after the first was asked for before the previous one ended: the lane never waited for the
    # task's thread to collect the next chunk. (One at a time, pass k+1 is asked for only after pass k ends.)
    for (_, previous_end), asked in zip(model.ran[:-1], model.asked[1:], strict=True):
        assert asked < previous_end
    # The passes ran back to back, so the recorded model time is the four passes, not their overlapping waits.
    embed_s = result.clock.seconds["embed"]
    assert 4 * PASS_S <= embed_s < 4 * PASS_S + 0.5, embed_s
    # Vectors are in the index and every record says READY (written after the vectors).
    assert index.count() == 8
    assert {catalog.get(ref.asset_id).state for ref in refs} == {AssetState.READY}
    assert jobs.get(job.job_id).succeeded == 8


def test_covered_counts_overlapping_spans_once() -> None:
    assert _covered([]) == 0.0
    assert _covered([(0.0, 1.0), (0.5, 2.0), (3.0, 4.0)]) == pytest.approx(3.0)
    assert _covered([(1.0, 2.0), (0.0, 3.0)]) == pytest.approx(3.0)


def test_an_embedded_cpu_worker_runs_two_tasks_and_a_setting_a_gpu_or_a_broker_decides_otherwise() -> None:
    assert Settings(device="cpu").embedded_queue
    assert worker_tasks(Settings(device="cpu")) == 2
    assert worker_tasks(Settings(device="cuda")) == 1
    assert worker_tasks(Settings(device="cpu", broker_url="redis://127.0.0.1:1/0")) == 1
    assert worker_tasks(Settings(device="cpu", worker_concurrency=1)) == 1
    assert worker_tasks(Settings(device="cuda", worker_concurrency=3)) == 3
