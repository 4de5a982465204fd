"""MoveToCluster over a real gRPC channel and through the REST gateway (issue 16, "move to a named cluster"):
an in-process OrdoServer on the embedded adapters (Qdrant Edge, local object store, SQLite jobs) with the tiny
CLIP, synthetic clustered vectors upserted into the index, k-means runs over them.

What is checked: a move changes the run's membership everywhere it is read (ListClusterMembers, GetClusters
sizes, the run's counts, a search filtered by cluster) and answers each image's previous cluster, so moving
them back undoes it exactly; a new named cluster and noise are destinations; every field is bounded and each
refusal has its canonical code and reason (oversized lists and ids, unknown cluster, unknown, older,
projection and malformed runs)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from ordo.config import Settings
from ordo.gateway.server import GatewayThread
from ordo.launch import free_port
from ordo.v1 import analysis_pb2 as apb
from ordo.v1 import common_pb2, search_pb2
from tests.integration.test_analysis_grpc import (
    PER_CLUSTER,
    K,
    Served,
    asset_id,
    refused,
    serve,
    synthetic_points,
    wait_job,
)

INVALID = grpc.StatusCode.INVALID_ARGUMENT
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, tiny_clip_dir: Path) -> Iterator[Served]:
    s = serve(tmp_path_factory.mktemp("moves"), tiny_clip_dir)
    s.ctx.active_index().ensure_collection(s.ctx.load_embedder().dim)
    s.ctx.active_index().upsert(synthetic_points(s.ctx))
    yield s
    s.stop()


def kmeans_run(served: Served) -> apb.Run:
    params = apb.ClusteringParams(algorithm=apb.CLUSTERING_ALGORITHM_KMEANS, n_clusters=K)
    created = served.client.analysis.CreateClusteringRun(apb.CreateClusteringRunRequest(params=params))
    assert wait_job(served.client, created.job.job_id).state == common_pb2.JOB_STATE_SUCCEEDED
    return served.client.analysis.GetRun(apb.GetRunRequest(run_id=created.run.run_id)).run


def members(served: Served, run_id: str, cluster_id: str) -> list[str]:
    page = served.client.analysis.ListClusterMembers(
        apb.ListClusterMembersRequest(run_id=run_id, cluster_id=cluster_id, page_size=1000)
    )
    assert not page.next_page_token and page.total_size == len(page.members)
    return [m.asset_id for m in page.members]


def sizes(served: Served, run_id: str) -> dict[str, int]:
    clusters = served.client.analysis.GetClusters(apb.GetClustersRequest(run_id=run_id, page_size=1000)).clusters
    return {c.cluster_id: c.size for c in clusters}


def in_cluster_by_search(served: Served, cluster_id: str) -> set[str]:
    """What a search filtered by the cluster finds (the index payloads, not the run's files)."""
    response = served.client.search.SearchText(
        search_pb2.SearchTextRequest(query="a photo", page_size=200, filter=common_pb2.Filter(cluster_ids=[cluster_id]))
    )
    return {hit.asset.asset_id for hit in response.hits}


@pytest.fixture(scope="module")
def run(served: Served) -> apb.Run:
    return kmeans_run(served)


def test_move_changes_membership_everywhere_and_undo_restores_it(served: Served, run: apb.Run) -> None:
    analysis = served.client.analysis
    before = sizes(served, run.run_id)
    assert sorted(before.values()) == [PER_CLUSTER] * K
    source, target = list(before)[:2]
    moving = members(served, run.run_id, source)[:3]
    target_members = set(members(served, run.run_id, target))

    moved = analysis.MoveToCluster(apb.MoveToClusterRequest(run_id=run.run_id, asset_ids=moving, cluster_id=target))
    assert [(m.asset_id, m.previous_cluster_id) for m in moved.moves] == [(a, source) for a in moving]
    assert moved.cluster.cluster_id == target and moved.cluster.size == PER_CLUSTER + 3
    assert not moved.skipped_asset_ids
    assert set(members(served, run.run_id, target)) == target_members | set(moving)
    assert not set(moving) & set(members(served, run.run_id, source))
    after = sizes(served, run.run_id)
    assert after[source] == PER_CLUSTER - 3 and after[target] == PER_CLUSTER + 3
    assert set(moving) <= in_cluster_by_search(served, target)  # the payloads follow
    assert not set(moving) & in_cluster_by_search(served, source)

    # Undo: each image back to the cluster the answer named.
    undo = analysis.MoveToCluster(
        apb.MoveToClusterRequest(run_id=run.run_id, asset_ids=[m.asset_id for m in moved.moves], cluster_id=source)
    )
    assert {m.previous_cluster_id for m in undo.moves} == {target}
    assert sizes(served, run.run_id) == before
    assert set(members(served, run.run_id, target)) == target_members
    assert set(moving) <= set(members(served, run.run_id, source))
    assert set(moving) <= in_cluster_by_search(served, source)


def test_move_into_a_new_named_cluster_and_to_noise(served: Served, run: apb.Run) -> None:
    analysis = served.client.analysis
    first = next(iter(sizes(served, run.run_id)))
    picked = members(served, run.run_id, first)[:2]
    unknown = asset_id(10_000)  # never ingested: skipped, and said so
    made = analysis.MoveToCluster(
        apb.MoveToClusterRequest(run_id=run.run_id, asset_ids=[*picked, unknown], new_cluster_name="  my picks ")
    )
    new_id = made.cluster.cluster_id
    assert made.cluster.name == "my picks" and made.cluster.size == 2 and new_id not in (first, "noise")
    assert list(made.skipped_asset_ids) == [unknown]
    assert set(members(served, run.run_id, new_id)) == set(picked)
    assert set(made.cluster.representative_asset_ids) == set(picked)
    record = analysis.GetRun(apb.GetRunRequest(run_id=run.run_id)).run
    assert record.cluster_count == K + 1
    refused(
        lambda: analysis.MoveToCluster(
            apb.MoveToClusterRequest(run_id=run.run_id, asset_ids=picked, new_cluster_name="MY PICKS")
        ),
        PRECONDITION,
        "CLUSTER_NAME_TAKEN",
    )

    # To noise, listed there, and back (the undo of a move to noise names the cluster it came from).
    noise_before = record.noise_count
    out = analysis.MoveToCluster(apb.MoveToClusterRequest(run_id=run.run_id, asset_ids=picked, cluster_id="noise"))
    assert not out.HasField("cluster") and {m.previous_cluster_id for m in out.moves} == {new_id}
    assert set(picked) <= set(members(served, run.run_id, "noise"))
    assert analysis.GetRun(apb.GetRunRequest(run_id=run.run_id)).run.noise_count == noise_before + 2
    back = analysis.MoveToCluster(apb.MoveToClusterRequest(run_id=run.run_id, asset_ids=picked, cluster_id=new_id))
    assert {m.previous_cluster_id for m in back.moves} == {"noise"}
    assert analysis.GetRun(apb.GetRunRequest(run_id=run.run_id)).run.noise_count == noise_before


def projection_colours(served: Served, run_id: str) -> dict[str, str]:
    """Asset → cluster as GetProjection streams it (what the Map view colours by)."""
    points = [
        p for page in served.client.analysis.GetProjection(apb.GetProjectionRequest(run_id=run_id)) for p in page.points
    ]
    return {p.asset_id: p.cluster_id for p in points}


def test_the_map_colours_follow_a_move_and_its_undo(served: Served, run: apb.Run) -> None:
    """A projection drawn before a move stores the old clusters; GetProjection must answer the current ones."""
    analysis = served.client.analysis
    params = apb.ProjectionParams(method=apb.PROJECTION_METHOD_PCA)
    made = analysis.CreateProjectionRun(apb.CreateProjectionRunRequest(params=params, clustering_run_id=run.run_id))
    assert wait_job(served.client, made.job.job_id).state == common_pb2.JOB_STATE_SUCCEEDED
    before = projection_colours(served, made.run.run_id)
    source, target = list(sizes(served, run.run_id))[:2]
    moving = members(served, run.run_id, source)[:4]
    assert {before[a] for a in moving} == {source}

    analysis.MoveToCluster(apb.MoveToClusterRequest(run_id=run.run_id, asset_ids=moving, cluster_id=target))
    after = projection_colours(served, made.run.run_id)
    assert {after[a] for a in moving} == {target}
    assert {a: c for a, c in after.items() if a not in moving} == {a: c for a, c in before.items() if a not in moving}

    analysis.MoveToCluster(apb.MoveToClusterRequest(run_id=run.run_id, asset_ids=moving, cluster_id=source))
    assert projection_colours(served, made.run.run_id) == before


def test_hostile_moves_are_refused_with_code_and_reason(served: Served, run: apb.Run) -> None:
    analysis = served.client.analysis
    cluster = next(iter(sizes(served, run.run_id)))
    one = [asset_id(0)]

    def move(**fields: object) -> object:
        request = {"run_id": run.run_id, "asset_ids": one, "cluster_id": cluster} | fields
        return analysis.MoveToCluster(apb.MoveToClusterRequest(**request))  # type: ignore[arg-type]

    refused(lambda: move(asset_ids=[asset_id(i) for i in range(1001)]), INVALID, "TOO_MANY_ITEMS")
    refused(lambda: move(asset_ids=["a" * 300]), INVALID, "FIELD_TOO_LONG")
    refused(lambda: move(asset_ids=["../../etc/passwd"]), INVALID, "BAD_ASSET_ID")
    refused(lambda: move(asset_ids=[]), INVALID, "MISSING_ASSET_ID")
    refused(lambda: move(cluster_id=""), INVALID, "BAD_MOVE_TARGET")
    refused(lambda: move(new_cluster_name="both"), INVALID, "BAD_MOVE_TARGET")
    refused(lambda: move(cluster_id="", new_cluster_name="x" * 201), INVALID, "NAME_TOO_LONG")
    refused(lambda: move(cluster_id="c" * 65), INVALID, "BAD_CLUSTER_ID")
    refused(lambda: move(cluster_id="0123456789ab"), grpc.StatusCode.NOT_FOUND, "CLUSTER_NOT_FOUND")
    refused(lambda: move(asset_ids=[asset_id(10_001)]), grpc.StatusCode.NOT_FOUND, "ASSETS_NOT_IN_RUN")
    refused(lambda: move(run_id="../../x"), INVALID, "BAD_RUN_ID")
    refused(lambda: move(run_id="r20200101t000000000000-abcdef"), grpc.StatusCode.NOT_FOUND, "RUN_NOT_FOUND")
    projection = analysis.CreateProjectionRun(
        apb.CreateProjectionRunRequest(
            clustering_run_id=run.run_id, params=apb.ProjectionParams(method=apb.PROJECTION_METHOD_PCA)
        )
    )
    wait_job(served.client, projection.job.job_id)
    refused(lambda: move(run_id=projection.run.run_id), INVALID, "BAD_RUN_KIND")
    # An older run: its ids would overwrite the payloads the latest run wrote.
    newer = kmeans_run(served)
    unchanged = sizes(served, run.run_id)
    refused(lambda: move(), PRECONDITION, "RUN_NOT_LATEST")
    assert sizes(served, run.run_id) == unchanged
    assert analysis.GetRun(apb.GetRunRequest(run_id=newer.run_id)).run.state == apb.RUN_STATE_SUCCEEDED


def test_rest_move_and_undo(served: Served) -> None:
    run = kmeans_run(served)
    port = free_port()
    gateway = GatewayThread(Settings(address=f"127.0.0.1:{served.server.port}"), "127.0.0.1", port)
    assert gateway.start(), "the gateway did not start"
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            before = sizes(served, run.run_id)
            source, target = list(before)[:2]
            moving = members(served, run.run_id, source)[:2]
            url = f"/api/runs/{run.run_id}/moves"
            response = http.post(url, json={"asset_ids": moving, "cluster_id": target})
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["cluster"]["cluster_id"] == target
            assert [(m["asset_id"], m["previous_cluster_id"]) for m in body["moves"]] == [(a, source) for a in moving]
            assert sizes(served, run.run_id)[target] == before[target] + 2
            undo = http.post(url, json={"asset_ids": moving, "cluster_id": source})
            assert undo.status_code == 200 and sizes(served, run.run_id) == before
            # Refusals keep Ordo's error body: reason and a human message.
            too_many = http.post(url, json={"asset_ids": ["0" * 64] * 1001, "cluster_id": target})
            assert too_many.status_code in (400, 422)
            unknown = http.post(url, json={"asset_ids": moving, "cluster_id": "0123456789ab"})
            assert unknown.status_code == 404 and unknown.json()["reason"] == "CLUSTER_NOT_FOUND"
            both = http.post(url, json={"asset_ids": moving, "cluster_id": target, "new_cluster_name": "x"})
            assert both.status_code == 400 and both.json()["reason"] == "BAD_MOVE_TARGET"
    finally:
        gateway.stop()
