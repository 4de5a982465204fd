"""The embedded stack keeps everything across a restart: assets, vectors, jobs and the queue folder."""

from __future__ import annotations

from pathlib import Path

from ordo.v1 import common_pb2, ingest_pb2, search_pb2
from tests.e2e.conftest import start_stack, stop_stack


def test_data_survives_a_restart(tmp_path: Path, tiny_clip_dir: Path, coco_images: list[Path]) -> None:
    data_dir = tmp_path / "data"
    stack = start_stack(data_dir, tiny_clip_dir)
    try:
        response = stack.client.upload(coco_images[70:76])
        job = None
        for update in stack.client.ingest.WatchJob(ingest_pb2.WatchJobRequest(job_id=response.job.job_id), timeout=120):
            job = update.job
        assert job is not None and job.state == common_pb2.JOB_STATE_SUCCEEDED
    finally:
        stop_stack(stack)

    again = start_stack(data_dir, tiny_clip_dir)  # same data dir, new process (and the index lock released)
    try:
        stats = again.client.ingest.GetStats(ingest_pb2.GetStatsRequest())
        assert (stats.asset_count, stats.vector_count) == (6, 6)
        assert again.client.ingest.GetJob(ingest_pb2.GetJobRequest(job_id=job.job_id)).job.succeeded == 6
        hit = again.client.search.SearchImage(
            search_pb2.SearchImageRequest(image=coco_images[72].read_bytes(), page_size=1)
        ).hits[0]
        assert hit.asset.asset_id == response.results[2].asset_id
        dup = again.client.upload(coco_images[70:71])
        assert dup.results[0].outcome == ingest_pb2.FILE_OUTCOME_DUPLICATE
    finally:
        stop_stack(again)
