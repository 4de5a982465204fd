"""Routes tagged ``ops``: the gateway's own liveness and the services' health and counts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ordo.gateway.deps import AppSettings, Client
from ordo.gateway.shapes import ServiceStatus, documented
from ordo.gateway.streams import to_json
from ordo.v1 import ingest_pb2

router = APIRouter(tags=["ops"])


@router.get("/healthz", summary="The gateway is up (does not check the services).")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/api/status", summary="Services' health, counts, model and adapters in use.", **documented(ServiceStatus))
def status(client: Client, settings: AppSettings) -> dict[str, Any]:
    health = {name: client.health(name) for name in ("ingest", "search", "analysis")}
    stats = None
    if health["ingest"] == "SERVING":
        stats = to_json(client.ingest.GetStats(ingest_pb2.GetStatsRequest()))
    return {
        "services": health,
        "stats": stats,
        "queue_dashboard_url": settings.queue_dashboard_url,
        "ops_url": settings.ops_url,
    }
