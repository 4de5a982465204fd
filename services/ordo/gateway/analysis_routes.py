"""Routes tagged ``analysis``: clustering and projection runs, their clusters, members and points, run
comparison (issue 15) and near-duplicate groups.

Each route is a thin call to one AnalysisService RPC, which validates and bounds every field (the gateway adds
only the HTTP-level bounds that FastAPI checks before a call is made).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from ordo.gateway.bodies import ClusteringBody, MoveBody, ProjectionBody, RenameBody, pb_enum
from ordo.gateway.deps import Client
from ordo.gateway.paging_params import DEFAULT_PAGE_SIZE, PageSize, PageToken
from ordo.gateway.shapes import Projection, documented
from ordo.gateway.streams import to_json
from ordo.v1 import analysis_pb2

router = APIRouter(tags=["analysis"])
Level = Literal["leaf", "group", ""]
_LEVEL = {"": 0, "leaf": analysis_pb2.CLUSTER_LEVEL_LEAF, "group": analysis_pb2.CLUSTER_LEVEL_GROUP}
MAX_ID_CHARS = 64


@router.get(
    "/api/runs/{run_id}/clusters/{cluster_id}/members",
    summary="A cluster's or group's samples, most central first, in pages.",
)
def list_members(
    run_id: str,
    cluster_id: str,
    client: Client,
    page_size: int = Query(0, ge=0, le=1000),
    page_token: PageToken = "",
) -> dict[str, Any]:
    request = analysis_pb2.ListClusterMembersRequest(
        run_id=run_id, cluster_id=cluster_id, page_size=page_size, page_token=page_token
    )
    return to_json(client.analysis.ListClusterMembers(request))


@router.get(
    "/api/compare-runs",
    summary="Two clustering runs compared by membership: ARI/NMI, overlap matrix, where images moved.",
)
def compare_runs(
    client: Client,
    a: str = Query(..., max_length=MAX_ID_CHARS),
    b: str = Query(..., max_length=MAX_ID_CHARS),
    level: Level = "",
    max_cells: int = Query(0, ge=0, le=10_000),
) -> dict[str, Any]:
    request = analysis_pb2.CompareRunsRequest(run_id_a=a, run_id_b=b, level=_LEVEL[level], max_cells=max_cells)
    return to_json(client.analysis.CompareRuns(request))


@router.get("/api/runs", summary="Analysis runs, newest first.")
def list_runs(
    client: Client,
    kind: Literal["clustering", "projection", ""] = "",
    page_size: PageSize = DEFAULT_PAGE_SIZE,
    page_token: PageToken = "",
) -> dict[str, Any]:
    request = analysis_pb2.ListRunsRequest(kind=pb_enum("RUN_KIND", kind), page_size=page_size, page_token=page_token)
    return to_json(client.analysis.ListRuns(request))


@router.get("/api/runs/{run_id}")
def get_run(run_id: str, client: Client) -> dict[str, Any]:
    return to_json(client.analysis.GetRun(analysis_pb2.GetRunRequest(run_id=run_id)).run)


@router.post("/api/runs/clustering", summary="Start a clustering run; returns it and its job.")
def create_clustering(body: ClusteringBody, client: Client) -> dict[str, Any]:
    params = analysis_pb2.ClusteringParams(
        algorithm=pb_enum("CLUSTERING_ALGORITHM", body.algorithm),
        eps=body.eps,
        min_samples=body.min_samples,
        min_cluster_size=body.min_cluster_size,
        n_clusters=body.n_clusters,
        resolution=body.resolution,
    )
    request = analysis_pb2.CreateClusteringRunRequest(
        filter=body.filter.to_pb(), params=params, label_field=body.label_field
    )
    return to_json(client.analysis.CreateClusteringRun(request))


@router.post("/api/runs/projection", summary="Start a 2-D projection run (the map).")
def create_projection(body: ProjectionBody, client: Client) -> dict[str, Any]:
    params = analysis_pb2.ProjectionParams(
        method=pb_enum("PROJECTION_METHOD", body.method), perplexity=body.perplexity, seed=body.seed
    )
    request = analysis_pb2.CreateProjectionRunRequest(
        filter=body.filter.to_pb(), params=params, clustering_run_id=body.clustering_run_id
    )
    return to_json(client.analysis.CreateProjectionRun(request))


@router.get("/api/runs/{run_id}/clusters")
def get_clusters(
    run_id: str,
    client: Client,
    page_size: int = 0,
    page_token: str = "",
    level: Level = "",
    parent_id: str = Query("", max_length=64),
) -> dict[str, Any]:
    request = analysis_pb2.GetClustersRequest(
        run_id=run_id,
        page_size=page_size,
        page_token=page_token,
        level=pb_enum("CLUSTER_LEVEL", level),
        parent_id=parent_id,
    )
    return to_json(client.analysis.GetClusters(request))


@router.patch("/api/runs/{run_id}/clusters/{cluster_id}", summary="Rename a cluster.")
def rename_cluster(run_id: str, cluster_id: str, body: RenameBody, client: Client) -> dict[str, Any]:
    request = analysis_pb2.RenameClusterRequest(run_id=run_id, cluster_id=cluster_id, name=body.name)
    return to_json(client.analysis.RenameCluster(request).cluster)


@router.post(
    "/api/runs/{run_id}/moves",
    summary="Move images into a cluster of the latest run (a leaf, a new named leaf, or noise); undoable.",
)
def move_to_cluster(run_id: str, body: MoveBody, client: Client) -> dict[str, Any]:
    """Answers the destination, each image's previous cluster (move them back there to undo) and the ids that are
    not in the run. All or nothing (``ordo.analysis.moves``)."""
    request = analysis_pb2.MoveToClusterRequest(
        run_id=run_id, asset_ids=body.asset_ids, cluster_id=body.cluster_id, new_cluster_name=body.new_cluster_name
    )
    return to_json(client.analysis.MoveToCluster(request))


@router.get(
    "/api/runs/{run_id}/projection",
    summary="A projection's points, column-wise (compact for 100k points).",
    **documented(Projection),
)
def get_projection(run_id: str, client: Client) -> JSONResponse:
    """``{"count", "x": [...], "y": [...], "asset_ids": [...], "sample_ids": [...], "cluster_ids": [...]}``:
    columns instead of one object per point keep 100k points to a few MB and fast to parse."""
    columns: dict[str, list[Any]] = {"x": [], "y": [], "asset_ids": [], "sample_ids": [], "cluster_ids": []}
    for page in client.analysis.GetProjection(analysis_pb2.GetProjectionRequest(run_id=run_id)):
        for p in page.points:
            columns["x"].append(round(p.x, 5))
            columns["y"].append(round(p.y, 5))
            columns["asset_ids"].append(p.asset_id)
            columns["sample_ids"].append(p.sample_id)
            columns["cluster_ids"].append(p.cluster_id)
    return JSONResponse({"run_id": run_id, "count": len(columns["x"]), **columns})


@router.get("/api/duplicates", summary="Groups of near-duplicate images.")
def duplicates(
    client: Client, min_similarity: float = 0.95, page_size: PageSize = DEFAULT_PAGE_SIZE, page_token: PageToken = ""
) -> dict[str, Any]:
    request = analysis_pb2.FindDuplicatesRequest(
        min_similarity=min_similarity, page_size=page_size, page_token=page_token
    )
    return to_json(client.analysis.FindDuplicates(request))
