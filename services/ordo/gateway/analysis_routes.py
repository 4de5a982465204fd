"""REST routes for two-level clusters and run comparison (issue 15), added to the gateway by ``create_app``.

Kept in a module of their own so the gateway's main file stays small; each route is a thin call to one
AnalysisService RPC, which validates and bounds every field (the gateway adds only the HTTP-level bounds that
FastAPI checks before a call is made). Roles: all are reads.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI, Query

from ordo.client import OrdoClient
from ordo.v1 import analysis_pb2

Level = Literal["leaf", "group", ""]
_LEVEL = {"": 0, "leaf": analysis_pb2.CLUSTER_LEVEL_LEAF, "group": analysis_pb2.CLUSTER_LEVEL_GROUP}
MAX_ID_CHARS = 64


def add_analysis_routes(app: FastAPI, client: OrdoClient, to_json: Any) -> None:
    @app.get(
        "/api/runs/{run_id}/clusters/{cluster_id}/members",
        tags=["analysis"],
        summary="A cluster's or group's samples, most central first, in pages.",
    )
    def list_members(
        run_id: str,
        cluster_id: str,
        page_size: int = Query(0, ge=0, le=1000),
        page_token: str = Query("", max_length=64),
    ) -> dict[str, Any]:
        request = analysis_pb2.ListClusterMembersRequest(
            run_id=run_id, cluster_id=cluster_id, page_size=page_size, page_token=page_token
        )
        return to_json(client.analysis.ListClusterMembers(request))

    @app.get(
        "/api/compare-runs",
        tags=["analysis"],
        summary="Two clustering runs compared by membership: ARI/NMI, overlap matrix, where images moved.",
    )
    def compare_runs(
        a: str = Query(..., max_length=MAX_ID_CHARS),
        b: str = Query(..., max_length=MAX_ID_CHARS),
        level: Level = "",
        max_cells: int = Query(0, ge=0, le=10_000),
    ) -> dict[str, Any]:
        request = analysis_pb2.CompareRunsRequest(run_id_a=a, run_id_b=b, level=_LEVEL[level], max_cells=max_cells)
        return to_json(client.analysis.CompareRuns(request))
