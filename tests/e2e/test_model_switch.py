"""Model versions through the real stack: switching the active model re-embeds in the background into
the new model's own collection, search keeps answering, the switch flips when complete, survives a
restart, and switching back only embeds what was added meanwhile."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from ordo.grpc_api.status import error_reason
from ordo.v1 import common_pb2, ingest_pb2, search_pb2
from tests.e2e.conftest import Stack, start_stack, stop_stack

NEW_MODEL = "random-clip:tiny"


def _wait(stack: Stack, job_id: str) -> common_pb2.Job:
    job = None
    for update in stack.client.ingest.WatchJob(ingest_pb2.WatchJobRequest(job_id=job_id), timeout=180):
        job = update.job
    assert job is not None
    return job


def _versions(stack: Stack) -> dict[str, ingest_pb2.ModelVersion]:
    response = stack.client.ingest.ListModelVersions(ingest_pb2.ListModelVersionsRequest())
    return {v.model: v for v in response.versions}


def _activate_error(stack: Stack, model: str) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as err:
        stack.client.ingest.ActivateModel(ingest_pb2.ActivateModelRequest(model=model))
    return err.value.code(), error_reason(err.value)


def test_switch_model_without_downtime(tmp_path: Path, tiny_clip_dir: Path, coco_images: list[Path]) -> None:
    data_dir = tmp_path / "data"
    old_model = str(tiny_clip_dir)
    stack = start_stack(data_dir, tiny_clip_dir)
    try:
        stats = stack.client.ingest.GetStats(ingest_pb2.GetStatsRequest())
        assert stats.model == old_model and stats.model_reason == "configured (ORDO_MODEL)"
        old_id, old_collection = stats.model_id, stats.collection
        assert _wait(stack, stack.client.upload(coco_images[0:6]).job.job_id).succeeded == 6

        response = stack.client.ingest.ActivateModel(ingest_pb2.ActivateModelRequest(model=NEW_MODEL))
        assert response.version.state == ingest_pb2.MODEL_VERSION_STATE_BUILDING
        assert response.version.collection != old_collection
        # No downtime: search answers while the new collection is built.
        hits = stack.client.search.SearchText(search_pb2.SearchTextRequest(query="a photo", page_size=3)).hits
        assert len(hits) == 3
        # Activating the model being built is an idempotent retry; another model must wait.
        again = stack.client.ingest.ActivateModel(ingest_pb2.ActivateModelRequest(model=NEW_MODEL))
        assert again.job.job_id == response.job.job_id

        job = _wait(stack, response.job.job_id)
        assert job.kind == "reembed" and job.state == common_pb2.JOB_STATE_SUCCEEDED and job.succeeded == 6
        stats = stack.client.ingest.GetStats(ingest_pb2.GetStatsRequest())
        assert (stats.model, stats.vector_count, stats.asset_count) == (NEW_MODEL, 6, 6)
        result = stack.client.search.SearchImage(search_pb2.SearchImageRequest(image=coco_images[3].read_bytes()))
        assert result.model_id == stats.model_id != old_id
        assert result.hits[0].asset.file_name == coco_images[3].name
        versions = _versions(stack)
        assert versions[NEW_MODEL].state == ingest_pb2.MODEL_VERSION_STATE_ACTIVE
        assert versions[old_model].state == ingest_pb2.MODEL_VERSION_STATE_READY
        assert versions[old_model].vector_count == 6  # kept: switching back is cheap

        assert _activate_error(stack, NEW_MODEL) == (grpc.StatusCode.FAILED_PRECONDITION, "MODEL_ALREADY_ACTIVE")
        # A server path outside Ordo's models folder is refused before anything is loaded (ordo.security).
        assert _activate_error(stack, str(tmp_path / "no-such-model")) == (
            grpc.StatusCode.PERMISSION_DENIED,
            "MODEL_PATH_NOT_ALLOWED",
        )
        missing = str(stack.data_dir / "models" / "no-such-model")
        assert _activate_error(stack, missing)[0] == grpc.StatusCode.FAILED_PRECONDITION
        assert _activate_error(stack, " ") == (grpc.StatusCode.INVALID_ARGUMENT, "MODEL_REQUIRED")

        # New images go to the active (new) model's collection.
        assert _wait(stack, stack.client.upload(coco_images[6:8]).job.job_id).succeeded == 2
        assert stack.client.ingest.GetStats(ingest_pb2.GetStatsRequest()).vector_count == 8
    finally:
        stop_stack(stack)

    # The switch is recorded with the data: a restart with the old ORDO_MODEL keeps serving the new model.
    stack = start_stack(data_dir, tiny_clip_dir)
    try:
        assert stack.client.ingest.GetStats(ingest_pb2.GetStatsRequest()).model == NEW_MODEL
        # Switching back embeds only the two images added since the old collection was built.
        response = stack.client.ingest.ActivateModel(ingest_pb2.ActivateModelRequest(model=old_model))
        job = _wait(stack, response.job.job_id)
        assert (job.total, job.succeeded, job.state) == (2, 2, common_pb2.JOB_STATE_SUCCEEDED)
        stats = stack.client.ingest.GetStats(ingest_pb2.GetStatsRequest())
        assert (stats.model, stats.model_id, stats.vector_count) == (old_model, old_id, 8)
    finally:
        stop_stack(stack)
