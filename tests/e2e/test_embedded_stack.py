"""End to end over real gRPC channels: `ordo up` (Celery worker on the filesystem transport, Qdrant
Edge, local object store, SQLite jobs) with a tiny CLIP loaded through the real from_pretrained path.
With a random tiny model these tests assert plumbing: counts, ids, ordering, filters, idempotency."""

from __future__ import annotations

import json
import os
from pathlib import Path

import grpc
import pytest
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from ordo.grpc_api.status import error_reason
from ordo.ids import asset_id_for
from ordo.v1 import analysis_pb2, common_pb2, ingest_pb2, search_pb2
from tests.e2e.conftest import Stack

N_IMAGES = 20


def wait_job(stack: Stack, job_id: str) -> common_pb2.Job:
    last = None
    for update in stack.client.ingest.WatchJob(ingest_pb2.WatchJobRequest(job_id=job_id), timeout=180):
        last = update.job
    assert last is not None
    return last


@pytest.fixture(scope="module")
def ingested(stack: Stack, coco_images: list[Path]) -> dict:
    """Uploads 20 real photos plus bad inputs in one stream, then waits for the job on WatchJob."""
    from tests.fixtures.images import make_image_bytes

    files = coco_images[:N_IMAGES]
    bad_dir = stack.data_dir / "bad-inputs"
    bad_dir.mkdir()
    bad = {
        "empty.jpg": b"",
        "truncated.jpg": make_image_bytes("truncated_jpeg"),
        "notes.jpg": b"this is not an image, whatever its name says\n" * 10,
        "bomb.png": make_image_bytes("bomb_png"),
    }
    for name, data in bad.items():
        (bad_dir / name).write_bytes(data)
    stream = [*files, files[0], *(bad_dir / name for name in bad)]  # files[0] twice: a duplicate in-batch
    response = stack.client.upload(stream, request_id="e2e-upload-1")
    job = wait_job(stack, response.job.job_id)
    return {"files": files, "response": response, "job": job, "ids": [asset_id_for(p.read_bytes()) for p in files]}


def test_upload_outcomes_per_file(ingested: dict) -> None:
    results = ingested["response"].results
    outcomes = [ingest_pb2.FileOutcome.Name(r.outcome) for r in results]
    assert outcomes[:N_IMAGES] == ["FILE_OUTCOME_NEW"] * N_IMAGES
    assert outcomes[N_IMAGES] == "FILE_OUTCOME_DUPLICATE"
    assert results[N_IMAGES].asset_id == ingested["ids"][0]
    reasons = {r.file_name: r.failure.reason for r in results[N_IMAGES + 1 :]}
    # The truncated JPEG has a valid header: it is caught by the worker's full decode, below.
    assert reasons == {
        "empty.jpg": "EMPTY_FILE",
        "truncated.jpg": "",
        "notes.jpg": "NOT_AN_IMAGE",
        "bomb.png": "DECOMPRESSION_BOMB",
    }
    assert [r.asset_id for r in results[:N_IMAGES]] == ingested["ids"]


def test_job_accounts_for_every_file(ingested: dict) -> None:
    job = ingested["job"]
    assert common_pb2.JobState.Name(job.state) == "JOB_STATE_PARTIALLY_SUCCEEDED"
    assert (job.total, job.succeeded, job.duplicates, job.failed, job.pending) == (N_IMAGES + 5, N_IMAGES, 1, 4, 0)
    by_reason = {f.reason: f for f in job.failures}
    assert set(by_reason) == {"EMPTY_FILE", "TRUNCATED", "NOT_AN_IMAGE", "DECOMPRESSION_BOMB"}
    assert by_reason["TRUNCATED"].source_uri.endswith("truncated.jpg") and by_reason["TRUNCATED"].message
    assert {t.stage for t in job.stage_timings} >= {"fetch", "decode", "embed", "upsert"}
    assert job.end_time.seconds > 0 and job.rate_per_second > 0


def test_text_search_ranks_and_pages(stack: Stack, ingested: dict) -> None:
    first = stack.client.search.SearchText(search_pb2.SearchTextRequest(query="a dog on a beach", page_size=5))
    assert len(first.hits) == 5
    scores = [h.score for h in first.hits]
    assert scores == sorted(scores, reverse=True)
    assert [h.rank for h in first.hits] == [1, 2, 3, 4, 5]
    assert {h.asset.asset_id for h in first.hits} <= set(ingested["ids"])
    assert all(h.sample.kind == common_pb2.SAMPLE_KIND_IMAGE for h in first.hits)
    assert first.hits[0].asset.width > 0 and first.hits[0].asset.mime_type == "image/jpeg"
    assert first.next_page_token
    second = stack.client.search.SearchText(
        search_pb2.SearchTextRequest(query="a dog on a beach", page_size=5, page_token=first.next_page_token)
    )
    assert [h.rank for h in second.hits] == [6, 7, 8, 9, 10]
    assert not {h.asset.asset_id for h in first.hits} & {h.asset.asset_id for h in second.hits}
    assert second.hits[0].score <= first.hits[-1].score
    everything = stack.client.search.SearchText(search_pb2.SearchTextRequest(query="a dog on a beach", page_size=100))
    assert len(everything.hits) == N_IMAGES and not everything.next_page_token


def test_search_filters(stack: Stack, ingested: dict) -> None:
    wanted = ingested["ids"][3:6]
    response = stack.client.search.SearchText(
        search_pb2.SearchTextRequest(query="anything", page_size=50, filter=common_pb2.Filter(asset_ids=wanted))
    )
    assert sorted(h.asset.asset_id for h in response.hits) == sorted(wanted)
    none = stack.client.search.SearchText(
        search_pb2.SearchTextRequest(query="anything", filter=common_pb2.Filter(mime_types=["image/png"]))
    )
    assert list(none.hits) == []
    wide = stack.client.search.SearchText(
        search_pb2.SearchTextRequest(query="anything", page_size=50, filter=common_pb2.Filter(min_width=600))
    )
    assert wide.hits and all(h.asset.width >= 600 for h in wide.hits)


def test_search_by_image_bytes_and_by_asset(stack: Stack, ingested: dict) -> None:
    query_file = ingested["files"][7]
    by_bytes = stack.client.search.SearchImage(
        search_pb2.SearchImageRequest(image=query_file.read_bytes(), page_size=3)
    )
    assert by_bytes.hits[0].asset.asset_id == ingested["ids"][7]
    assert by_bytes.hits[0].score == pytest.approx(1.0, abs=1e-3)
    by_id = stack.client.search.SearchImage(search_pb2.SearchImageRequest(asset_id=ingested["ids"][7], page_size=3))
    assert by_id.hits[0].asset.asset_id == ingested["ids"][7]
    others = stack.client.search.SearchImage(
        search_pb2.SearchImageRequest(asset_id=ingested["ids"][7], page_size=50, exclude_self=True)
    )
    assert ingested["ids"][7] not in {h.asset.asset_id for h in others.hits}
    assert len(others.hits) == N_IMAGES - 1


def test_same_bytes_again_cost_no_embedding(stack: Stack, ingested: dict) -> None:
    before = stack.client.ingest.GetStats(ingest_pb2.GetStatsRequest())
    response = stack.client.upload(ingested["files"][:5])
    assert {r.outcome for r in response.results} == {ingest_pb2.FILE_OUTCOME_DUPLICATE}
    job = wait_job(stack, response.job.job_id)
    assert (job.duplicates, job.succeeded, job.failed) == (5, 0, 0)
    after = stack.client.ingest.GetStats(ingest_pb2.GetStatsRequest())
    assert (
        (after.vector_count, after.asset_count) == (before.vector_count, before.asset_count) == (N_IMAGES, N_IMAGES + 1)
    )


def test_assets_get_list_delete(stack: Stack, ingested: dict, coco_images: list[Path]) -> None:
    got = stack.client.ingest.GetAsset(ingest_pb2.GetAssetRequest(asset_id=ingested["ids"][0]))
    assert got.asset.state == common_pb2.ASSET_STATE_READY and got.asset.model_id
    assert [s.kind for s in got.samples] == [common_pb2.SAMPLE_KIND_IMAGE]
    seen, token = [], ""
    while True:
        page = stack.client.ingest.ListAssets(ingest_pb2.ListAssetsRequest(page_size=7, page_token=token))
        seen += [a.asset_id for a in page.assets]
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen)) == N_IMAGES + 1  # + the truncated file, kept as FAILED with its reason
    assert seen == sorted(seen)

    # Delete one extra asset (ingested here), then check it is gone everywhere.
    extra = coco_images[N_IMAGES + 1]
    job = wait_job(stack, stack.client.upload([extra]).job.job_id)
    extra_id = job.asset_ids[0]
    stack.client.ingest.DeleteAsset(ingest_pb2.DeleteAssetRequest(asset_id=extra_id))
    with pytest.raises(grpc.RpcError) as err:
        stack.client.ingest.GetAsset(ingest_pb2.GetAssetRequest(asset_id=extra_id))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    hits = stack.client.search.SearchImage(search_pb2.SearchImageRequest(image=extra.read_bytes(), page_size=50)).hits
    assert extra_id not in {h.asset.asset_id for h in hits}


@pytest.mark.parametrize(
    ("call", "code", "reason"),
    [
        (lambda c: c.ingest.GetAsset(ingest_pb2.GetAssetRequest(asset_id="nope")), "INVALID_ARGUMENT", "BAD_ASSET_ID"),
        (lambda c: c.ingest.GetAsset(ingest_pb2.GetAssetRequest(asset_id="0" * 64)), "NOT_FOUND", "ASSET_NOT_FOUND"),
        (lambda c: c.ingest.GetJob(ingest_pb2.GetJobRequest(job_id="missing")), "NOT_FOUND", ""),
        (lambda c: c.search.SearchText(search_pb2.SearchTextRequest(query="  ")), "INVALID_ARGUMENT", "EMPTY_QUERY"),
        (
            lambda c: c.search.SearchText(search_pb2.SearchTextRequest(query="x", page_size=-1)),
            "INVALID_ARGUMENT",
            "BAD_PAGE_SIZE",
        ),
        (
            lambda c: c.search.SearchText(search_pb2.SearchTextRequest(query="x", page_token="garbage")),
            "INVALID_ARGUMENT",
            "BAD_PAGE_TOKEN",
        ),
        (lambda c: c.search.SearchImage(search_pb2.SearchImageRequest()), "INVALID_ARGUMENT", "MISSING_QUERY"),
        (
            lambda c: c.search.SearchImage(search_pb2.SearchImageRequest(image=b"not an image")),
            "INVALID_ARGUMENT",
            "NOT_AN_IMAGE",
        ),
        (
            lambda c: c.search.SearchImage(search_pb2.SearchImageRequest(image=b"\0" * (5 * 1024 * 1024))),
            "RESOURCE_EXHAUSTED",
            "",
        ),
        (lambda c: c.ingest.IngestUris(ingest_pb2.IngestUrisRequest()), "INVALID_ARGUMENT", "NO_URIS"),
        (
            lambda c: c.ingest.IngestUris(ingest_pb2.IngestUrisRequest(uris=["http://example.com/x.jpg"])),
            "INVALID_ARGUMENT",
            "BAD_URI",
        ),
        (
            lambda c: c.analysis.ListRuns(analysis_pb2.ListRunsRequest(page_token="garbage")),
            "INVALID_ARGUMENT",
            "BAD_PAGE_TOKEN",
        ),
        (
            lambda c: c.analysis.GetRun(analysis_pb2.GetRunRequest(run_id="r20200101t000000000000-abcdef")),
            "NOT_FOUND",
            "RUN_NOT_FOUND",
        ),
    ],
)
def test_errors_have_proper_codes(stack: Stack, ingested: dict, call, code: str, reason: str) -> None:
    with pytest.raises(grpc.RpcError) as err:
        call(stack.client)
    assert err.value.code().name == code
    assert err.value.details()  # a human message
    if reason:
        assert error_reason(err.value) == reason


def test_page_token_of_another_query_is_refused(stack: Stack, ingested: dict) -> None:
    first = stack.client.search.SearchText(search_pb2.SearchTextRequest(query="dogs", page_size=2))
    with pytest.raises(grpc.RpcError) as err:
        stack.client.search.SearchText(
            search_pb2.SearchTextRequest(query="cats", page_size=2, page_token=first.next_page_token)
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_ingest_uris_server_side_folder(stack: Stack, ingested: dict, coco_images: list[Path]) -> None:
    folder = stack.data_dir / "server-side"
    folder.mkdir()
    for p in coco_images[30:33]:
        (folder / p.name).write_bytes(p.read_bytes())
    (folder / "readme.txt").write_text("reported: not an image by its content")
    (folder / "broken.jpg").write_bytes(b"plain text with an image name")
    job = stack.client.ingest.IngestUris(
        ingest_pb2.IngestUrisRequest(uris=[str(folder), str(folder / "missing.jpg")])
    ).job
    job = wait_job(stack, job.job_id)
    assert (job.total, job.succeeded, job.failed) == (6, 3, 3)  # walks report what they skip
    assert {f.reason for f in job.failures} == {"NOT_FOUND", "NOT_AN_IMAGE"}


def test_health_and_reflection(stack: Stack) -> None:
    assert stack.client.health("search") == "SERVING"
    channel = grpc.insecure_channel(stack.address)
    services = set(ProtoReflectionDescriptorDatabase(channel).get_services())
    assert {
        "ordo.v1.IngestService",
        "ordo.v1.SearchService",
        "ordo.v1.AnalysisService",
        "grpc.health.v1.Health",
    } <= services


def test_every_thread_but_the_inference_lane_runs_as_batch(stack: Stack, ingested: dict) -> None:
    """`ordo up` is wired to ``prepare_serving_process`` (``ordo.embedding.lane_priority``, whose unit tests cover
    each kind of thread): after ingesting and searching, its main thread, and so every thread it started (gRPC,
    worker, gateway), is SCHED_BATCH, and the model's lane (with the torch and tokenizer threads it started, all
    idle here) switched back to SCHED_OTHER."""
    policies = []
    for tid in os.listdir(f"/proc/{stack.process.pid}/task"):
        try:
            policies.append(os.sched_getscheduler(int(tid)))
        except OSError:  # ended meanwhile
            continue
    assert os.sched_getscheduler(stack.process.pid) == os.SCHED_BATCH
    assert policies.count(os.SCHED_OTHER) >= 1, policies
    assert policies.count(os.SCHED_BATCH) > policies.count(os.SCHED_OTHER), policies


def test_cli_search_json_and_status(stack: Stack, ingested: dict) -> None:
    result = stack.cli("search", "a red bus", "-k", "3", "--json")
    assert result.returncode == 0, result.stderr
    hits = json.loads(result.stdout)["hits"]
    assert len(hits) == 3 and hits[0]["rank"] == 1
    status = stack.cli("status", "--json")
    assert status.returncode == 0, status.stderr
    stats = json.loads(status.stdout)["stats"]
    assert stats["mode"] == "embedded" and stats["vectorBackend"] == "qdrant-edge"


def test_cli_ingest_reports_summary(stack: Stack, coco_images: list[Path]) -> None:
    folder = stack.data_dir / "cli-folder"
    folder.mkdir()
    for p in coco_images[40:43]:
        (folder / p.name).write_bytes(p.read_bytes())
    (folder / "zero.jpg").write_bytes(b"")
    result = stack.cli("ingest", str(folder))
    assert result.returncode == 1  # one file failed: the exit code says so
    assert "3 new, 0 duplicate, 1 failed" in result.stdout
    assert "EMPTY_FILE" in result.stdout


def test_cli_says_when_the_stack_is_down(stack: Stack) -> None:
    env = {**stack.env, "ORDO_ADDRESS": "127.0.0.1:1"}
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "ordo.cli.main", "search", "x"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "cannot reach Ordo" in result.stderr


def test_another_program_can_search_over_reflection(stack: Stack, ingested: dict) -> None:
    """grpcurl (a Go program) knows nothing of Ordo's Python code: it reads the contract by reflection."""
    import shutil
    import subprocess
    import sys

    grpcurl = shutil.which("grpcurl") or str(Path(sys.executable).parent / "grpcurl")
    wanted = ingested["ids"][:5]
    request = json.dumps({"query": "a dog on a beach", "page_size": 3, "filter": {"asset_ids": wanted}})
    result = subprocess.run(
        [grpcurl, "-plaintext", "-d", request, stack.address, "ordo.v1.SearchService/SearchText"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    hits = json.loads(result.stdout)["hits"]
    assert [h["rank"] for h in hits] == [1, 2, 3]
    assert {h["asset"].get("assetId") or h["asset"]["asset_id"] for h in hits} <= set(wanted)


def test_watching_an_unknown_job_is_not_found(stack: Stack) -> None:
    with pytest.raises(grpc.RpcError) as err:
        list(stack.client.ingest.WatchJob(ingest_pb2.WatchJobRequest(job_id="no-such-job"), timeout=10))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_status_names_the_loaded_model(stack: Stack) -> None:
    stats = stack.client.ingest.GetStats(ingest_pb2.GetStatsRequest())
    assert stats.model_id == "tiny-clip" and stats.device == "cpu" and stats.embedding_dim == 16
