"""`ordo up` with image passes side by side (``ORDO_MODEL_STREAMS=2``): every photo embedded once, each vector
its own photo's. Two single-thread ONNX Runtime passes run at once on the inference lane and its helper; a
mix-up between concurrent batches would put a photo's vector on another asset, which search by example
catches (the query's own asset must come first, at cosine 1)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ordo.ids import asset_id_for
from ordo.v1 import common_pb2, ingest_pb2, search_pb2
from tests.e2e.conftest import Stack, start_stack, stop_stack

N_IMAGES = 24


@pytest.fixture(scope="module")
def streams_stack(tmp_path_factory: pytest.TempPathFactory, tiny_clip_dir: Path) -> Iterator[Stack]:
    stack = start_stack(
        tmp_path_factory.mktemp("ordo-streams"),
        tiny_clip_dir,
        {"ORDO_MODEL_STREAMS": "2", "ORDO_DEVICE": "cpu", "ORDO_TASK_BATCH_SIZE": "12"},
    )
    yield stack
    stop_stack(stack)


def test_streams_embed_every_photo_as_its_own(streams_stack: Stack, coco_images: list[Path]) -> None:
    files = coco_images[:N_IMAGES]
    response = streams_stack.client.upload(files)
    job = None
    for update in streams_stack.client.ingest.WatchJob(
        ingest_pb2.WatchJobRequest(job_id=response.job.job_id), timeout=180
    ):
        job = update.job
    assert job is not None and job.state == common_pb2.JOB_STATE_SUCCEEDED, job
    assert job.succeeded == N_IMAGES

    log = streams_stack.log.read_text()
    assert "x2 streams, onnxruntime" in log  # the image tower runs as two single-thread streams

    for path in files:
        found = streams_stack.client.search.SearchImage(
            search_pb2.SearchImageRequest(image=path.read_bytes(), page_size=2)
        )
        assert found.hits[0].asset.asset_id == asset_id_for(path.read_bytes()), path.name
        assert found.hits[0].score == pytest.approx(1.0, abs=1e-3)
    stats = streams_stack.client.ingest.GetStats(ingest_pb2.GetStatsRequest())
    assert (stats.asset_count, stats.vector_count) == (N_IMAGES, N_IMAGES)  # each photo embedded once
