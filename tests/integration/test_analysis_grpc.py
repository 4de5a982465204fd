"""AnalysisService over a real gRPC channel: an in-process OrdoServer on the embedded adapters (Qdrant Edge on a
tmp dir, local object store, SQLite jobs) with the tiny CLIP.

The first tests upsert synthetic clustered vectors of the model's size straight into the index (fast, exact
expectations); the last one ingests real photos through the ingest service and an in-process Celery worker, so
the embedding pipeline's hook assigns newly ingested images to the clusters of the latest run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from celery.contrib.testing.worker import start_worker

from ordo.app import AppContext, set_current_context
from ordo.client import OrdoClient
from ordo.config import Settings
from ordo.domain import VectorPoint
from ordo.grpc_api.server import SERVICES, OrdoServer
from ordo.grpc_api.status import error_reason
from ordo.v1 import analysis_pb2 as apb
from ordo.v1 import common_pb2, ingest_pb2, search_pb2
from ordo.worker.celery_app import EMBED_QUEUE

K = 3
PER_CLUSTER = 20


@dataclass
class Served:
    ctx: AppContext
    server: OrdoServer
    client: OrdoClient

    def stop(self) -> None:
        self.server.stop()
        self.ctx.close()
        set_current_context(None)


def serve(data_dir: Path, model: Path) -> Served:
    ctx = AppContext(Settings(data_dir=data_dir, model=str(model), task_batch_size=4))
    set_current_context(ctx)
    server = OrdoServer(ctx, SERVICES, "127.0.0.1", 0).start()
    return Served(ctx, server, OrdoClient(Settings(address=f"127.0.0.1:{server.port}")))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, tiny_clip_dir: Path) -> Iterator[Served]:
    s = serve(tmp_path_factory.mktemp("analysis"), tiny_clip_dir)
    yield s
    s.stop()


def point_id(i: int) -> str:
    return f"00000000-0000-4000-8000-{i:012x}"


def asset_id(i: int) -> str:
    return hashlib.sha256(f"asset{i}".encode()).hexdigest()


def synthetic_points(ctx: AppContext) -> list[VectorPoint]:
    """K tight clusters in the model's space, payloads as ingestion writes them (model id, kind, asset)."""
    dim, model_id = ctx.load_embedder().dim, ctx.load_embedder().model_id
    rng = np.random.default_rng(5)
    centres = rng.normal(size=(K, dim))
    points = []
    for i in range(K * PER_CLUSTER):
        v = centres[i // PER_CLUSTER] / np.linalg.norm(centres[i // PER_CLUSTER]) + rng.normal(scale=0.02, size=dim)
        payload = {"asset_id": asset_id(i), "kind": "image", "model_id": model_id, "file_name": f"{i}.jpg"}
        points.append(VectorPoint(point_id(i), (v / np.linalg.norm(v)).tolist(), payload))
    return points


def wait_job(client: OrdoClient, job_id: str) -> common_pb2.Job:
    job = None
    # generous: the first run names clusters with the text tower, whose first call is slow on a loaded machine
    for update in client.ingest.WatchJob(ingest_pb2.WatchJobRequest(job_id=job_id), timeout=600):
        job = update.job
    assert job is not None
    return job


def refused(call: Callable[[], object], code: grpc.StatusCode, reason: str) -> str:
    with pytest.raises(grpc.RpcError) as info:
        result = call()
        if hasattr(result, "__iter__") and not hasattr(result, "ListFields"):
            list(result)  # a stream fails when read
    assert info.value.code() == code, info.value.details()
    assert error_reason(info.value) == reason
    return info.value.details()


def test_clustering_over_grpc_end_to_end(served: Served) -> None:
    analysis = served.client.analysis
    # an empty collection is a precondition failure, and leaves nothing behind
    refused(
        lambda: analysis.CreateClusteringRun(apb.CreateClusteringRunRequest()),
        grpc.StatusCode.FAILED_PRECONDITION,
        "EMPTY_COLLECTION",
    )
    assert not analysis.ListRuns(apb.ListRunsRequest()).runs

    points = synthetic_points(served.ctx)
    served.ctx.active_index().ensure_collection(served.ctx.load_embedder().dim)
    served.ctx.active_index().upsert(points)
    labels = {asset_id(i): f"class{i // PER_CLUSTER}" for i in range(K * PER_CLUSTER)}
    created = analysis.CreateClusteringRun(
        apb.CreateClusteringRunRequest(
            params=apb.ClusteringParams(algorithm=apb.CLUSTERING_ALGORITHM_DBSCAN, eps=0.05, min_samples=4),
            labels=labels,
        )
    )
    assert created.run.state in (apb.RUN_STATE_RUNNING, apb.RUN_STATE_SUCCEEDED)
    assert created.job.job_id == created.run.job_id and created.job.kind == "clustering"
    job = wait_job(served.client, created.job.job_id)
    assert job.state == common_pb2.JOB_STATE_SUCCEEDED and job.succeeded == job.total == 6
    run = analysis.GetRun(apb.GetRunRequest(run_id=created.run.run_id)).run
    assert run.state == apb.RUN_STATE_SUCCEEDED and run.kind == apb.RUN_KIND_CLUSTERING
    assert (run.sample_count, run.cluster_count, run.noise_count) == (K * PER_CLUSTER, K, 0)
    assert run.model_id == served.ctx.load_embedder().model_id and run.eps_used == pytest.approx(0.05)
    assert run.clustering.algorithm == apb.CLUSTERING_ALGORITHM_DBSCAN and run.clustering.min_samples == 4
    assert run.metrics.HasField("purity") and run.metrics.purity == pytest.approx(1.0)
    assert run.metrics.nmi == pytest.approx(1.0) and run.metrics.labelled_count == K * PER_CLUSTER
    assert list(run.filter.kinds) == [common_pb2.SAMPLE_KIND_IMAGE]  # whole images by default
    assert set(run.stage_seconds) == {"load", "cluster", "match", "name", "metrics", "write"}

    first = analysis.GetClusters(apb.GetClustersRequest(run_id=run.run_id, page_size=2))
    rest = analysis.GetClusters(
        apb.GetClustersRequest(run_id=run.run_id, page_size=2, page_token=first.next_page_token)
    )
    clusters = [*first.clusters, *rest.clusters]
    assert rest.next_page_token == "" and [c.size for c in clusters] == [PER_CLUSTER] * K
    assert all(c.name and c.top_terms for c in clusters)  # named by the (tiny) text tower
    assert len({c.name for c in clusters}) == K

    renamed = analysis.RenameCluster(
        apb.RenameClusterRequest(run_id=run.run_id, cluster_id=clusters[1].cluster_id, name="harbour")
    ).cluster
    assert renamed.name == "harbour" and renamed.renamed

    # search inside one cluster: every hit is a member of it
    target = clusters[0]
    members = set(target.representative_asset_ids)
    hits = served.client.search.SearchText(
        search_pb2.SearchTextRequest(
            query="a photo", page_size=100, filter=common_pb2.Filter(cluster_ids=[target.cluster_id])
        )
    ).hits
    assert len(hits) == PER_CLUSTER and members <= {h.asset.asset_id for h in hits}

    # a 2-D map coloured by the clustering, streamed in pages
    projection = analysis.CreateProjectionRun(
        apb.CreateProjectionRunRequest(
            params=apb.ProjectionParams(method=apb.PROJECTION_METHOD_PCA), clustering_run_id=run.run_id
        )
    )
    assert wait_job(served.client, projection.job.job_id).state == common_pb2.JOB_STATE_SUCCEEDED
    pages = list(analysis.GetProjection(apb.GetProjectionRequest(run_id=projection.run.run_id, page_size=25)))
    assert [len(p.points) for p in pages] == [25, 25, 10]
    by_cluster: dict[str, set[str]] = {}
    for p in (pt for page in pages for pt in page.points):
        by_cluster.setdefault(p.cluster_id, set()).add(p.asset_id)
    assert {c: len(a) for c, a in by_cluster.items()} == {c.cluster_id: PER_CLUSTER for c in clusters}

    runs = analysis.ListRuns(apb.ListRunsRequest())
    assert [r.run_id for r in runs.runs] == [projection.run.run_id, run.run_id]
    only = analysis.ListRuns(apb.ListRunsRequest(kind=apb.RUN_KIND_CLUSTERING, page_size=1))
    assert [r.run_id for r in only.runs] == [run.run_id] and only.next_page_token == ""  # no second one

    # near-duplicates: plant one copy of sample 0 under another asset
    twin = VectorPoint(point_id(999), points[0].vector, {**points[0].payload, "asset_id": asset_id(999)})
    served.ctx.active_index().upsert([twin])
    groups = analysis.FindDuplicates(apb.FindDuplicatesRequest(min_similarity=0.999)).groups
    assert [sorted(g.asset_ids) for g in groups] == [sorted([asset_id(0), asset_id(999)])]


def test_bad_requests_get_clear_codes_and_persist_nothing(served: Served) -> None:
    analysis = served.client.analysis
    before = [r.run_id for r in analysis.ListRuns(apb.ListRunsRequest(page_size=100)).runs]
    invalid, precondition, not_found = (
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.NOT_FOUND,
    )
    cases = [
        (apb.CreateClusteringRunRequest(params=apb.ClusteringParams(eps=-0.2)), invalid, "BAD_EPS"),
        (
            apb.CreateClusteringRunRequest(
                params=apb.ClusteringParams(algorithm=apb.CLUSTERING_ALGORITHM_DBSCAN, min_samples=10_000)
            ),
            precondition,
            "TOO_FEW_SAMPLES",
        ),
        (
            apb.CreateClusteringRunRequest(filter=common_pb2.Filter(source_uri_prefix="s3://nowhere/")),
            precondition,
            "NO_MATCHING_SAMPLES",
        ),
        (
            apb.CreateClusteringRunRequest(params=apb.ClusteringParams(algorithm=apb.CLUSTERING_ALGORITHM_KMEANS)),
            invalid,
            "MISSING_N_CLUSTERS",
        ),
        (apb.CreateClusteringRunRequest(params=apb.ClusteringParams(algorithm=42)), invalid, "BAD_ENUM"),
        (apb.CreateClusteringRunRequest(params=apb.ClusteringParams(resolution=1e9)), invalid, "BAD_RESOLUTION"),
        (apb.CreateClusteringRunRequest(params=apb.ClusteringParams(resolution=-1)), invalid, "BAD_RESOLUTION"),
    ]
    for request, code, reason in cases:
        refused(lambda r=request: analysis.CreateClusteringRun(r), code, reason)
    message = refused(
        lambda: analysis.CreateProjectionRun(
            apb.CreateProjectionRunRequest(params=apb.ProjectionParams(perplexity=500))
        ),
        invalid,
        "BAD_PERPLEXITY",
    )
    assert "smaller than the number of samples" in message
    unknown = "r20200101t000000000000-abcdef"
    refused(lambda: analysis.GetRun(apb.GetRunRequest(run_id=unknown)), not_found, "RUN_NOT_FOUND")
    refused(lambda: analysis.GetRun(apb.GetRunRequest(run_id="../../assets")), invalid, "BAD_RUN_ID")
    refused(lambda: analysis.GetClusters(apb.GetClustersRequest(run_id=unknown)), not_found, "RUN_NOT_FOUND")
    refused(lambda: analysis.ListRuns(apb.ListRunsRequest(page_token="nope")), invalid, "BAD_PAGE_TOKEN")
    refused(lambda: analysis.ListRuns(apb.ListRunsRequest(page_size=-1)), invalid, "BAD_PAGE_SIZE")
    refused(lambda: analysis.GetProjection(apb.GetProjectionRequest(run_id=unknown)), not_found, "RUN_NOT_FOUND")
    refused(
        lambda: analysis.FindDuplicates(apb.FindDuplicatesRequest(min_similarity=1.5)), invalid, "BAD_MIN_SIMILARITY"
    )
    assert [r.run_id for r in analysis.ListRuns(apb.ListRunsRequest(page_size=100)).runs] == before


def test_nan_vectors_fail_the_run_not_the_server(served: Served) -> None:
    analysis = served.client.analysis
    dim = served.ctx.load_embedder().dim
    broken = VectorPoint(
        point_id(4242),
        [float("nan")] * dim,
        {"asset_id": asset_id(4242), "kind": "object", "model_id": served.ctx.load_embedder().model_id},
    )
    served.ctx.active_index().upsert([broken])
    try:
        created = analysis.CreateClusteringRun(
            apb.CreateClusteringRunRequest(
                filter=common_pb2.Filter(kinds=[common_pb2.SAMPLE_KIND_OBJECT]),
                params=apb.ClusteringParams(min_samples=1),
            )
        )
        job = wait_job(served.client, created.job.job_id)
        assert job.state == common_pb2.JOB_STATE_FAILED and "INVALID_VECTORS" in job.error
        run = analysis.GetRun(apb.GetRunRequest(run_id=created.run.run_id)).run
        assert run.state == apb.RUN_STATE_FAILED and run.error_reason == "INVALID_VECTORS"
        assert point_id(4242) in run.error
        refused(
            lambda: analysis.GetClusters(apb.GetClustersRequest(run_id=run.run_id)),
            grpc.StatusCode.FAILED_PRECONDITION,
            "RUN_NOT_READY",
        )
    finally:
        served.ctx.active_index().delete_by_asset(asset_id(4242))


def test_runs_survive_a_restart(tmp_path: Path, tiny_clip_dir: Path) -> None:
    first = serve(tmp_path, tiny_clip_dir)
    try:
        first.ctx.active_index().ensure_collection(first.ctx.load_embedder().dim)
        first.ctx.active_index().upsert(synthetic_points(first.ctx))
        created = first.client.analysis.CreateClusteringRun(
            apb.CreateClusteringRunRequest(params=apb.ClusteringParams(algorithm=apb.CLUSTERING_ALGORITHM_HDBSCAN))
        )
        wait_job(first.client, created.job.job_id)
        clusters = first.client.analysis.GetClusters(apb.GetClustersRequest(run_id=created.run.run_id)).clusters
    finally:
        first.stop()
    second = serve(tmp_path, tiny_clip_dir)
    try:
        again = second.client.analysis.GetRun(apb.GetRunRequest(run_id=created.run.run_id)).run
        assert again.state == apb.RUN_STATE_SUCCEEDED and again.cluster_count == K
        assert list(second.client.analysis.GetClusters(apb.GetClustersRequest(run_id=again.run_id)).clusters) == list(
            clusters
        )
    finally:
        second.stop()


@pytest.mark.timeout(900)  # the first run encodes the naming vocabulary (5,160 terms x 2 prompts)
def test_real_photos_cluster_and_new_ones_join_incrementally(
    tmp_path: Path, tiny_clip_dir: Path, coco_images: list[Path]
) -> None:
    s = serve(tmp_path, tiny_clip_dir)
    try:
        with start_worker(
            s.ctx.celery, pool="solo", queues=[EMBED_QUEUE], perform_ping_check=False, shutdown_timeout=30
        ):
            job = wait_job(s.client, s.client.upload(coco_images[:12]).job.job_id)
            assert job.succeeded == 12
            created = s.client.analysis.CreateClusteringRun(
                apb.CreateClusteringRunRequest(
                    params=apb.ClusteringParams(algorithm=apb.CLUSTERING_ALGORITHM_KMEANS, n_clusters=3)
                )
            )
            assert wait_job(s.client, created.job.job_id).state == common_pb2.JOB_STATE_SUCCEEDED
            clusters = s.client.analysis.GetClusters(apb.GetClustersRequest(run_id=created.run.run_id)).clusters
            assert len(clusters) == 3 and sum(c.size for c in clusters) == 12
            ids = {c.cluster_id for c in clusters}

            later = s.client.upload(coco_images[12:15])
            assert wait_job(s.client, later.job.job_id).succeeded == 3
            for result in later.results:
                (point,) = [p for p in s.ctx.active_index().scroll() if p.payload["asset_id"] == result.asset_id]
                assert point.payload["cluster_run_id"] == created.run.run_id
                assert point.payload["cluster_id"] in ids | {""}  # nearest cluster, or noise when far from all
    finally:
        s.stop()


def test_cli_commands(served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`ordo analyze …`, `ordo runs`, `ordo clusters` against the served stack (click's runner, real gRPC)."""
    import json

    from click.testing import CliRunner

    from ordo.cli.main import main

    monkeypatch.setenv("ORDO_ADDRESS", f"127.0.0.1:{served.server.port}")
    runner = CliRunner()

    def cli(*args: str) -> str:
        result = runner.invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.stdout  # progress bars go to stderr

    def cli_json(*args: str) -> Any:
        return json.loads(cli(*args, "--json"))

    if served.ctx.active_index().count() == 0:  # this test may run alone
        served.ctx.active_index().ensure_collection(served.ctx.load_embedder().dim)
        served.ctx.active_index().upsert(synthetic_points(served.ctx))
    made = cli_json("analyze", "cluster", "--algorithm", "dbscan", "--eps", "0.05", "--min-samples", "4")
    run_id = made["run"]["runId"]
    assert made["run"]["state"] == "RUN_STATE_SUCCEEDED" and len(made["clusters"]) == K
    cluster_id = made["clusters"][0]["clusterId"]
    assert "boats" in cli("clusters", run_id, "--rename", cluster_id, "boats")
    table = cli("clusters", run_id)
    assert "boats (renamed)" in table and cluster_id in table
    assert run_id in cli("runs") and "clusters" in cli("runs", run_id)
    assert cli_json("runs", "--kind", "clustering")[0]["runId"] == run_id
    points_file = tmp_path / "map.csv"
    cli("analyze", "project", "--method", "pca", "--run", run_id, "--out", str(points_file))
    rows = points_file.read_text().splitlines()
    assert rows[0] == "sample_id,asset_id,x,y,cluster_id" and len(rows) - 1 == served.ctx.active_index().count()
    hits = cli_json("search", "a photo", "--cluster", cluster_id, "-k", "100")["hits"]
    assert len(hits) == int(made["clusters"][0]["size"])  # int64 is a string in JSON
    failed = runner.invoke(main, ["analyze", "cluster", "--eps", "-1"])
    assert failed.exit_code != 0 and "INVALID_ARGUMENT" in failed.output


def test_two_level_runs_members_and_compare_over_grpc(served: Served) -> None:
    """Leiden (the default) over gRPC: groups and leaves, members in pages, CompareRuns; hostile inputs refused."""
    analysis = served.client.analysis
    if served.ctx.active_index().count() == 0:  # this test may run alone
        served.ctx.active_index().ensure_collection(served.ctx.load_embedder().dim)
        served.ctx.active_index().upsert(synthetic_points(served.ctx))
    labels = {asset_id(i): f"class{i // PER_CLUSTER}" for i in range(K * PER_CLUSTER)}
    created = analysis.CreateClusteringRun(apb.CreateClusteringRunRequest(labels=labels))
    assert wait_job(served.client, created.job.job_id).state == common_pb2.JOB_STATE_SUCCEEDED
    run = analysis.GetRun(apb.GetRunRequest(run_id=created.run.run_id)).run
    assert run.clustering.algorithm == apb.CLUSTERING_ALGORITHM_LEIDEN and run.group_count == K
    assert run.metrics.group_nmi == pytest.approx(1.0) and 0 < run.metrics.largest_cluster_fraction <= 0.34
    groups = analysis.GetClusters(
        apb.GetClustersRequest(run_id=run.run_id, level=apb.CLUSTER_LEVEL_GROUP, page_size=10)
    ).clusters
    assert len(groups) == K and all(g.level == apb.CLUSTER_LEVEL_GROUP and g.child_count >= 1 for g in groups)
    leaves = analysis.GetClusters(apb.GetClustersRequest(run_id=run.run_id, parent_id=groups[0].cluster_id)).clusters
    assert sum(c.size for c in leaves) == groups[0].size and {c.parent_id for c in leaves} == {groups[0].cluster_id}
    page = analysis.ListClusterMembers(
        apb.ListClusterMembersRequest(run_id=run.run_id, cluster_id=groups[0].cluster_id, page_size=7)
    )
    assert len(page.members) == 7 and page.total_size == groups[0].size and page.next_page_token
    assert page.members[0].similarity >= page.members[-1].similarity
    # AIP-158: the page size may change between pages; over the maximum it is coerced, not refused.
    rest = analysis.ListClusterMembers(
        apb.ListClusterMembersRequest(
            run_id=run.run_id, cluster_id=groups[0].cluster_id, page_size=5000, page_token=page.next_page_token
        )
    )
    assert len(rest.members) == groups[0].size - 7 and not rest.next_page_token
    seen = [m.sample_id for m in page.members] + [m.sample_id for m in rest.members]
    assert len(set(seen)) == groups[0].size
    other = analysis.CreateClusteringRun(
        apb.CreateClusteringRunRequest(
            params=apb.ClusteringParams(algorithm=apb.CLUSTERING_ALGORITHM_KMEANS, n_clusters=1)
        )
    )
    wait_job(served.client, other.job.job_id)
    compared = analysis.CompareRuns(apb.CompareRunsRequest(run_id_a=run.run_id, run_id_b=other.run.run_id))
    n = run.sample_count  # earlier tests of this module may have added samples
    assert compared.common_samples == n and compared.ari == pytest.approx(0.0, abs=1e-9)
    assert sum(c.count for c in compared.cells) == n and compared.stayed + compared.moved <= n
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    long_id = "a" * 65
    refused(
        lambda: analysis.ListClusterMembers(apb.ListClusterMembersRequest(run_id=run.run_id, cluster_id=long_id)),
        invalid,
        "BAD_CLUSTER_ID",
    )
    refused(
        lambda: analysis.ListClusterMembers(
            apb.ListClusterMembersRequest(run_id=run.run_id, cluster_id=groups[0].cluster_id, page_size=-1)
        ),
        invalid,
        "BAD_PAGE_SIZE",
    )
    refused(
        lambda: analysis.ListClusterMembers(
            apb.ListClusterMembersRequest(
                run_id=run.run_id, cluster_id=groups[1].cluster_id, page_token=page.next_page_token
            )
        ),
        invalid,
        "BAD_PAGE_TOKEN",
    )
    refused(
        lambda: analysis.ListClusterMembers(
            apb.ListClusterMembersRequest(run_id=run.run_id, cluster_id="0123456789ab")
        ),
        grpc.StatusCode.NOT_FOUND,
        "CLUSTER_NOT_FOUND",
    )
    refused(
        lambda: analysis.CompareRuns(apb.CompareRunsRequest(run_id_a=run.run_id, run_id_b="../../x")),
        invalid,
        "BAD_RUN_ID",
    )
    refused(
        lambda: analysis.CompareRuns(
            apb.CompareRunsRequest(run_id_a=run.run_id, run_id_b=other.run.run_id, max_cells=10_001)
        ),
        invalid,
        "BAD_PAGE_SIZE",
    )
    refused(
        lambda: analysis.CompareRuns(
            apb.CompareRunsRequest(run_id_a=run.run_id, run_id_b=other.run.run_id, level=apb.CLUSTER_LEVEL_GROUP)
        ),
        invalid,
        "NO_GROUPS",
    )
    refused(
        lambda: analysis.GetClusters(apb.GetClustersRequest(run_id=run.run_id, parent_id="b" * 65)),
        invalid,
        "BAD_CLUSTER_ID",
    )
