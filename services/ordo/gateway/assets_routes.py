"""Routes tagged ``assets``: list, describe and delete assets, and stream their thumbnails and originals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import StreamingResponse

from ordo.client import OrdoClient
from ordo.core.catalog_order import MAX_ORDER_BY_CHARS
from ordo.errors import InvalidInput, Reason
from ordo.gateway.deps import Client
from ordo.gateway.paging_params import DEFAULT_PAGE_SIZE, PageSize, PageToken
from ordo.gateway.shapes import AssetPage, documented
from ordo.gateway.streams import DONE, next_item, to_json
from ordo.v1 import ingest_pb2

router = APIRouter(tags=["assets"])
# Content is addressed by its SHA-256 (the asset id), so a URL's bytes never change: cache for a year.
IMMUTABLE = "public, max-age=31536000, immutable"


OrderBy = Annotated[
    str,
    Query(
        max_length=MAX_ORDER_BY_CHARS,
        description="Empty: id order. `ingest_time` or `capture_time`, optionally followed by `asc` (default) or"
        " `desc`, e.g. `capture_time desc`. Undated images come after the dated ones in both directions.",
    ),
]


@router.get("/api/assets", **documented(AssetPage))
def list_assets(
    client: Client, page_size: PageSize = DEFAULT_PAGE_SIZE, page_token: PageToken = "", order_by: OrderBy = ""
) -> dict[str, Any]:
    request = ingest_pb2.ListAssetsRequest(page_size=page_size, page_token=page_token, order_by=order_by)
    return to_json(client.ingest.ListAssets(request))


@router.get("/api/assets/{asset_id}", summary="An asset's metadata and its samples.")
def get_asset(asset_id: str, client: Client) -> dict[str, Any]:
    return to_json(client.ingest.GetAsset(ingest_pb2.GetAssetRequest(asset_id=asset_id)))


@router.delete("/api/assets/{asset_id}", status_code=204)
def delete_asset(asset_id: str, client: Client) -> Response:
    client.ingest.DeleteAsset(ingest_pb2.DeleteAssetRequest(asset_id=asset_id))
    return Response(status_code=204)


@router.get(
    "/api/assets/{asset_id}/thumbnail",
    summary="The JPEG thumbnail, streamed; ETag is the asset id, cached as immutable.",
    response_class=StreamingResponse,
)
async def thumbnail(asset_id: str, client: Client, if_none_match: Annotated[str | None, Header()] = None) -> Response:
    return await _content(client, asset_id, ingest_pb2.ASSET_CONTENT_VARIANT_THUMBNAIL, if_none_match)


@router.get(
    "/api/assets/{asset_id}/original",
    summary="The original bytes, streamed; ETag is the asset id, cached as immutable.",
    response_class=StreamingResponse,
)
async def original(asset_id: str, client: Client, if_none_match: Annotated[str | None, Header()] = None) -> Response:
    return await _content(client, asset_id, ingest_pb2.ASSET_CONTENT_VARIANT_ORIGINAL, if_none_match)


async def _content(
    client: OrdoClient, asset_id: str, variant: ingest_pb2.AssetContentVariant, if_none_match: str | None
) -> Response:
    """GetAssetContent streamed as it comes; 304 when the browser already holds it (the ETag is the id)."""
    etag = f'"{asset_id}"'
    if if_none_match and etag in {tag.strip() for tag in if_none_match.split(",")}:
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": IMMUTABLE})
    call = client.ingest.GetAssetContent(ingest_pb2.GetAssetContentRequest(asset_id=asset_id, variant=variant))
    try:
        first = await next_item(call)
    except BaseException:
        call.cancel()
        raise
    if first is DONE:
        raise InvalidInput(f"asset {asset_id} returned no content", reason=Reason.EMPTY_CONTENT)
    headers = {"ETag": etag, "Cache-Control": IMMUTABLE, "Content-Length": str(first.size_bytes)}
    return StreamingResponse(_chunks(call, first), media_type=first.mime_type, headers=headers)


async def _chunks(call: Any, first: Any) -> AsyncIterator[bytes]:
    item = first
    try:
        while item is not DONE:
            yield item.chunk
            item = await next_item(call)
    finally:
        call.cancel()
