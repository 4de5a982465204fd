"""REST route the map needs beyond the projection itself: per point, its sample's kind and its asset's dates,
so the Map view can colour by kind or by date (issue 16).

Columns aligned with ``GET /api/runs/{run_id}/projection`` (same order: both read GetProjection), so the page
joins them by position with no per-point ids. Kinds come from the sample id, which is a deterministic
UUID of (asset, kind, index) (``ordo.ids.sample_id_for``): no extra RPC. Dates come from ListAssets pages
(capture date from EXIF where the image had one, else only the ingest date). Asked for only when someone
picks "colour by kind/date", so the default map costs nothing more. Role: read (like the projection).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from ordo.domain import SampleKind
from ordo.gateway.deps import Client
from ordo.gateway.shapes import MapAttributes, documented
from ordo.ids import sample_id_for
from ordo.v1 import analysis_pb2, ingest_pb2

MAX_ID_CHARS = 64
ASSET_PAGE = 1000  # ListAssets' largest page
# Region samples (objects, text lines) are numbered per asset; ids beyond this many are called "region".
REGION_INDEXES = 8
router = APIRouter(tags=["analysis"])


def sample_kind(asset_id: str, sample_id: str) -> str:
    """The kind a sample id was made for: "image", "object", "text", or "region" when past the indexes tried."""
    if sample_id == sample_id_for(asset_id, SampleKind.IMAGE):
        return "image"
    for kind in (SampleKind.OBJECT, SampleKind.TEXT):
        for index in range(REGION_INDEXES):
            if sample_id == sample_id_for(asset_id, kind, index):
                return kind.value
    return "region"


def _millis(asset: Any, field: str) -> int | None:
    if not asset.HasField(field):
        return None
    return getattr(asset, field).ToMilliseconds() or None


@router.get(
    "/api/runs/{run_id}/map-attributes",
    summary="Per map point: its sample's kind and its image's capture/ingest dates (epoch ms or null).",
    **documented(MapAttributes),
)
def map_attributes(client: Client, run_id: str = Path(..., max_length=MAX_ID_CHARS)) -> JSONResponse:
    points: list[tuple[str, str]] = []
    for page in client.analysis.GetProjection(analysis_pb2.GetProjectionRequest(run_id=run_id)):
        points.extend((p.asset_id, p.sample_id) for p in page.points)
    wanted = {asset_id for asset_id, _ in points}
    dates: dict[str, tuple[int | None, int | None]] = {}
    token = ""
    while wanted - dates.keys():
        response = client.ingest.ListAssets(ingest_pb2.ListAssetsRequest(page_size=ASSET_PAGE, page_token=token))
        for asset in response.assets:
            if asset.asset_id in wanted:
                dates[asset.asset_id] = (_millis(asset, "capture_time"), _millis(asset, "ingest_time"))
        token = response.next_page_token
        if not token:
            break
    return JSONResponse(
        {
            "run_id": run_id,
            "count": len(points),
            "kinds": [sample_kind(a, s) for a, s in points],
            "captured": [dates.get(a, (None, None))[0] for a, _ in points],
            "ingested": [dates.get(a, (None, None))[1] for a, _ in points],
        }
    )
