"""Libraries, server-side paths, model activation and upload provenance against the real stack."""

from __future__ import annotations

import os
from pathlib import Path

import grpc
import pytest

from ordo.grpc_api.status import error_reason
from ordo.ids import asset_id_for
from ordo.v1 import analysis_pb2, common_pb2, ingest_pb2, search_pb2
from tests.security.conftest import SecureStack


def _upload(stack: SecureStack, kind: str, path: Path, library: str = "", source_uri: str = "") -> str:
    header = ingest_pb2.UploadFileHeader(file_name=path.name, source_uri=source_uri or path.resolve().as_uri())
    data = path.read_bytes()
    messages = [
        ingest_pb2.UploadImagesRequest(header=header, library=library),
        ingest_pb2.UploadImagesRequest(chunk=data),
    ]
    response = stack.client(kind).ingest.UploadImages(iter(messages), timeout=60)
    assert response.results[0].asset_id, response
    return response.results[0].asset_id


def _wait(stack: SecureStack, kind: str, job_id: str) -> common_pb2.Job:
    job = None
    for update in stack.client(kind).ingest.WatchJob(ingest_pb2.WatchJobRequest(job_id=job_id), timeout=120):
        job = update.job
    assert job is not None
    return job


def _code(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value.code(), error_reason(err.value)


def test_another_librarys_assets_are_invisible(secure: SecureStack, coco_images: list[Path]) -> None:
    image = coco_images[0]
    in_a = _upload(secure, "team_a", image, library="team-a")
    more_a = {_upload(secure, "team_a", p, library="team-a") for p in coco_images[5:7]}
    in_default = _upload(secure, "admin", image)
    # The same bytes in two libraries are two assets (dedup never crosses libraries).
    assert in_default == asset_id_for(image.read_bytes()) and in_a != in_default
    a, b = secure.client("team_a"), secure.client("team_b")
    asset = a.ingest.GetAsset(ingest_pb2.GetAssetRequest(asset_id=in_a)).asset
    assert asset.library == "team-a"
    for call in (
        lambda: b.ingest.GetAsset(ingest_pb2.GetAssetRequest(asset_id=in_a)),
        lambda: list(b.ingest.GetAssetContent(ingest_pb2.GetAssetContentRequest(asset_id=in_a))),
        lambda: b.ingest.DeleteAsset(ingest_pb2.DeleteAssetRequest(asset_id=in_a)),  # an admin, of team-b only
        lambda: b.search.SearchImage(search_pb2.SearchImageRequest(asset_id=in_a)),
        lambda: a.ingest.GetAsset(ingest_pb2.GetAssetRequest(asset_id=in_default)),
    ):
        assert _code(call) == (grpc.StatusCode.NOT_FOUND, "ASSET_NOT_FOUND")
    listed_b = {x.asset_id for x in b.ingest.ListAssets(ingest_pb2.ListAssetsRequest(page_size=1000)).assets}
    listed_a = {x.asset_id for x in a.ingest.ListAssets(ingest_pb2.ListAssetsRequest(page_size=1000)).assets}
    assert in_a not in listed_b and listed_a == {in_a, *more_a}
    # Writing into a library the key cannot reach is refused before anything is stored.
    assert _code(lambda: _upload(secure, "team_a", coco_images[1], library="team-b")) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "LIBRARY_DENIED",
    )
    # Search sees only the key's libraries once the vectors are in.
    for job in secure.client("admin").ingest.ListJobs(ingest_pb2.ListJobsRequest()).jobs:
        _wait(secure, "admin", job.job_id)
    hits_b = b.search.SearchText(search_pb2.SearchTextRequest(query="photo", page_size=50)).hits
    hits_a = a.search.SearchText(search_pb2.SearchTextRequest(query="photo", page_size=50)).hits
    assert in_a not in {h.asset.asset_id for h in hits_b}
    assert {h.asset.asset_id for h in hits_a} == {in_a, *more_a}
    vectors = b.search.GetImageVectors(search_pb2.GetImageVectorsRequest(asset_ids=[in_a]))
    assert list(vectors.missing_asset_ids) == [in_a] and not vectors.vectors
    # A clustering run of team-a is team-a's: team-b cannot read it.
    params = analysis_pb2.ClusteringParams(algorithm=analysis_pb2.CLUSTERING_ALGORITHM_KMEANS, n_clusters=2)
    run = a.analysis.CreateClusteringRun(analysis_pb2.CreateClusteringRunRequest(params=params)).run
    assert list(run.filter.libraries) == ["team-a"]
    assert _code(lambda: b.analysis.GetRun(analysis_pb2.GetRunRequest(run_id=run.run_id)))[0] == (
        grpc.StatusCode.NOT_FOUND
    )
    assert run.run_id not in {r.run_id for r in b.analysis.ListRuns(analysis_pb2.ListRunsRequest()).runs}
    dupes = b.analysis.FindDuplicates(analysis_pb2.FindDuplicatesRequest(min_similarity=0.5)).groups
    assert all(in_a not in g.asset_ids for g in dupes)


def test_upload_provenance_is_recorded_by_the_server(secure: SecureStack, coco_images: list[Path]) -> None:
    asset_id = _upload(secure, "write", coco_images[2], source_uri="javascript:alert(1)")
    asset = secure.client("read").ingest.GetAsset(ingest_pb2.GetAssetRequest(asset_id=asset_id)).asset
    assert asset.source_uri == f"upload://{coco_images[2].name}"
    assert asset.metadata["client_source_uri"] == "javascript:alert(1)"  # kept apart, labelled


def test_ingest_uris_only_inside_the_roots(secure: SecureStack, coco_images: list[Path], tmp_path: Path) -> None:
    admin = secure.client("admin")
    outside = tmp_path / "secret.jpg"
    outside.write_bytes(coco_images[3].read_bytes())
    outside.chmod(0o600)
    link = secure.roots / "link.jpg"
    link.symlink_to(outside)
    folder = secure.roots / "tree"
    folder.mkdir()
    (folder / "ok.jpg").write_bytes(coco_images[4].read_bytes())
    (folder / "escape.jpg").symlink_to(outside)
    os.mkfifo(folder / "pipe.jpg")

    def ingest(kind: str, *uris: str) -> ingest_pb2.IngestUrisResponse:
        return secure.client(kind).ingest.IngestUris(ingest_pb2.IngestUrisRequest(uris=list(uris)))

    for uri in (str(outside), f"file://{outside}", "/etc/passwd", str(secure.roots / ".." / outside.name)):
        assert _code(lambda u=uri: ingest("admin", u)) == (grpc.StatusCode.PERMISSION_DENIED, "PATH_OUTSIDE_ROOTS")
    # An existing and a missing file outside the roots get the same answer (no existence oracle).
    assert _code(lambda: ingest("admin", "/no/such/file.jpg")) == _code(lambda: ingest("admin", str(outside)))
    assert _code(lambda: ingest("admin", str(link))) == (grpc.StatusCode.PERMISSION_DENIED, "PATH_OUTSIDE_ROOTS")
    assert _code(lambda: ingest("write", str(folder))) == (grpc.StatusCode.PERMISSION_DENIED, "PATHS_NEED_ADMIN")
    assert _code(lambda: ingest("write", "s3://ordo/assets/")) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "BUCKET_NOT_ALLOWED",
    )
    job = _wait(secure, "admin", ingest("admin", str(folder)).job.job_id)
    reasons = {Path(f.source_uri).name: f.reason for f in job.failures}
    assert job.succeeded == 1 and reasons == {"escape.jpg": "PATH_OUTSIDE_ROOTS", "pipe.jpg": "NOT_A_FILE"}
    listed = admin.ingest.ListAssets(ingest_pb2.ListAssetsRequest(page_size=1000)).assets
    assert asset_id_for(outside.read_bytes()) not in {a.asset_id for a in listed}
    assert (secure.stack.data_dir / "audit.log").read_text().count('"action": "ingest_uris"') >= 1


def test_activate_model_takes_no_server_paths(secure: SecureStack, tmp_path: Path) -> None:
    admin = secure.client("admin")
    for model in (str(tmp_path), "/etc", "../../tmp", "~/models"):
        assert _code(lambda m=model: admin.ingest.ActivateModel(ingest_pb2.ActivateModelRequest(model=m))) == (
            grpc.StatusCode.PERMISSION_DENIED,
            "MODEL_PATH_NOT_ALLOWED",
        )
    assert "activate_model" in (secure.stack.data_dir / "audit.log").read_text()
