"""`ordo eval retrieval|zeroshot` end to end: each command starts its own scratch `ordo up` with ordo-lite,
uploads real photos through the ingest service and measures through the search service. Plus the two
vector RPCs the evaluations rely on, against the tiny-CLIP stack."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import grpc
import numpy as np
import pytest

from ordo.grpc_api.status import error_reason
from ordo.ids import asset_id_for
from ordo.v1 import ingest_pb2, search_pb2
from tests.e2e.conftest import Stack
from tests.fixtures.datasets import DATASETS, dataset_records


def run_cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ordo.cli.main", *args], capture_output=True, text=True, timeout=timeout
    )


def write_index(folder: Path, name: str, dataset: str, records: list[dict]) -> Path:
    """An index file in a temp folder pointing at the shared images by absolute path (never copied)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({**r, "file": str(DATASETS / dataset / r["file"])}) for r in records]
    (folder / name).write_text("\n".join(lines) + "\n")
    return folder


def test_eval_retrieval_through_the_real_stack(tmp_path: Path) -> None:
    records = dataset_records("coco-captions-mini", "captions.jsonl")[:10]
    dataset = write_index(tmp_path / "coco10", "captions.jsonl", "coco-captions-mini", records)
    report_path = tmp_path / "report.json"
    result = run_cli(
        "eval", "retrieval", "--dataset", str(dataset), "--model", "ordo-lite-v1", "--json-out", str(report_path)
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "text → image" in result.stdout
    report = json.loads(report_path.read_text())
    assert report["model_id"] == "ordo-lite-v1"
    assert report["images"] == 10 and report["captions"] == sum(len(r["captions"]) for r in records)
    assert report["ingest"]["ingest_failures"] == 0
    for direction in ("text_to_image", "image_to_text"):
        recall = report[direction]
        assert set(recall) >= {"R@1", "R@5", "R@10", "median_rank"}
        assert 0 <= recall["R@1"] <= recall["R@5"] <= recall["R@10"] <= 100.0
    assert report["text_to_image"]["R@10"] == 100.0  # 10 images: the right one is always in the top 10
    # ordo-lite is far from random on COCO (chance R@1 is 10 %), and its own captions beat others' by a margin.
    assert report["text_to_image"]["R@1"] > 30
    assert report["cosine"]["image_own_captions"] > report["cosine"]["image_other_captions"] + 0.1
    # The service's ranking and the stored vectors tell the same story.
    assert report["consistency"]["search_agrees_with_vectors"] == 100.0


def test_eval_zeroshot_through_the_real_stack(tmp_path: Path) -> None:
    records = dataset_records("cifar10-2k", "labels.jsonl")
    by_class: dict[str, list[dict]] = {}
    for record in records:
        by_class.setdefault(record["label"], []).append(record)
    chosen = [r for label in ("airplane", "frog", "truck") for r in by_class[label][:4]]
    dataset = write_index(tmp_path / "cifar12", "labels.jsonl", "cifar10-2k", chosen)
    report_path = tmp_path / "zeroshot.json"
    result = run_cli(
        "eval", "zeroshot", "--dataset", str(dataset), "--model", "ordo-lite-v1",
        "--templates", "a photo of a {}.", "--templates", "a blurry photo of a {}.", "--json-out", str(report_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(report_path.read_text())
    assert (report["images"], report["classes"]) == (12, 3)
    assert report["templates"] == ["a photo of a {}.", "a blurry photo of a {}."]
    assert set(report["per_class_top1"]) == {"airplane", "frog", "truck"}
    assert 0 <= report["accuracy"]["top1"] <= 100 and report["chance_top1"] == pytest.approx(33.33)
    # Accuracy is the mean of per-class accuracies here (equal class sizes).
    assert report["accuracy"]["top1"] == pytest.approx(np.mean(list(report["per_class_top1"].values())), abs=0.01)


def test_eval_refuses_a_bad_template(tmp_path: Path) -> None:
    records = dataset_records("cifar10-2k", "labels.jsonl")[:2]
    dataset = write_index(tmp_path / "c", "labels.jsonl", "cifar10-2k", records)
    result = run_cli("eval", "zeroshot", "--dataset", str(dataset), "--templates", "no placeholder")
    assert result.returncode != 0 and "exactly one '{}'" in result.stderr


def test_vector_rpcs(stack: Stack, coco_images: list[Path]) -> None:
    """EmbedTexts and GetImageVectors: unit vectors of the serving model, stored vectors, clear errors."""
    files = coco_images[:3]
    job = stack.client.upload(files, request_id="eval-vectors").job
    for _ in stack.client.ingest.WatchJob(ingest_pb2.WatchJobRequest(job_id=job.job_id), timeout=120):
        pass
    texts = stack.client.search.EmbedTexts(search_pb2.EmbedTextsRequest(texts=["a dog", "a red bus"]))
    matrix = np.array([list(v.values) for v in texts.vectors])
    assert matrix.shape == (2, texts.dim) and texts.model_id == "tiny-clip"
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)

    ids = [asset_id_for(p.read_bytes()) for p in files]
    unknown = "0" * 64
    response = stack.client.search.GetImageVectors(search_pb2.GetImageVectorsRequest(asset_ids=[*ids, unknown]))
    assert [v.asset_id for v in response.vectors] == ids
    assert list(response.missing_asset_ids) == [unknown]
    # The stored vector is what search ranks with: searching by it puts its own asset first at cosine 1.
    first = search_pb2.SearchImageRequest(asset_id=ids[0], page_size=1)
    hit = stack.client.search.SearchImage(first).hits[0]
    assert hit.asset.asset_id == ids[0] and hit.score == pytest.approx(1.0, abs=1e-4)
    assert len(response.vectors[0].vector.values) == texts.dim

    for call, request, reason in (
        (stack.client.search.EmbedTexts, search_pb2.EmbedTextsRequest(texts=["ok", "  "]), "EMPTY_TEXT"),
        (stack.client.search.EmbedTexts, search_pb2.EmbedTextsRequest(), "NO_TEXTS"),
        (stack.client.search.GetImageVectors, search_pb2.GetImageVectorsRequest(asset_ids=["nope"]), "BAD_ASSET_ID"),
    ):
        with pytest.raises(grpc.RpcError) as err:
            call(request)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_reason(err.value) == reason
