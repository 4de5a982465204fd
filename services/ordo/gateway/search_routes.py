"""Routes tagged ``search``: by text, by an asset ("more like this"), and by an uploaded example image."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile

from ordo.errors import InvalidInput, Reason
from ordo.gateway.bodies import FilterBody, SampleKindName, SearchBody
from ordo.gateway.deps import Client
from ordo.gateway.paging_params import PageToken
from ordo.gateway.shapes import SearchResponse, documented
from ordo.gateway.streams import STREAM_THREADS, to_json
from ordo.paging import MAX_TOKEN_CHARS
from ordo.v1 import search_pb2

router = APIRouter(tags=["search"])
MAX_SEARCH_IMAGE_BYTES = 32 * 1024 * 1024


@router.get("/api/search", summary="Search by text (query string form, for quick use).", **documented(SearchResponse))
def search_get(
    q: str,
    client: Client,
    k: int = 20,
    kind: Annotated[list[SampleKindName] | None, Query()] = None,
    page_token: PageToken = "",
) -> dict[str, Any]:
    flt = FilterBody(kinds=kind or [])
    return search(SearchBody(query=q, page_size=k, page_token=page_token, filter=flt), client)


@router.post("/api/search", summary="Search by text or by an asset (more like this).", **documented(SearchResponse))
def search(body: SearchBody, client: Client) -> dict[str, Any]:
    if (body.query is None) == (body.asset_id is None):
        raise InvalidInput("give exactly one of 'query' or 'asset_id'", reason=Reason.BAD_SEARCH)
    flt = body.filter.to_pb()
    if body.query is not None:
        text_request = search_pb2.SearchTextRequest(
            query=body.query,
            page_size=body.page_size,
            page_token=body.page_token,
            min_score=body.min_score,
            include_total_size=body.include_total_size,
            filter=flt,
        )
        return to_json(client.search.SearchText(text_request))
    image_request = search_pb2.SearchImageRequest(
        asset_id=body.asset_id or "",
        page_size=body.page_size,
        page_token=body.page_token,
        min_score=body.min_score,
        exclude_self=body.exclude_self,
        include_total_size=body.include_total_size,
        filter=flt,
    )
    return to_json(client.search.SearchImage(image_request))


@router.post(
    "/api/search/image", summary="Search by an example image (multipart: `image`).", **documented(SearchResponse)
)
async def search_image(
    image: Annotated[UploadFile, File(description="The example image.")],
    client: Client,
    page_size: Annotated[int, Form(ge=1, le=1000)] = 20,
    top_k: Annotated[int | None, Form(ge=1, le=1000, description="Deprecated name of page_size.")] = None,
    filter: Annotated[str, Form(description="A FilterBody as JSON.")] = "{}",
    page_token: Annotated[
        str, Form(max_length=MAX_TOKEN_CHARS, description="The previous page's `next_page_token` (same image).")
    ] = "",
    min_score: Annotated[float, Form(ge=-1.0, le=1.0, description="Drop hits below this cosine similarity.")] = 0.0,
    include_total_size: Annotated[bool, Form(description="Also answer `total_size`.")] = False,
) -> dict[str, Any]:
    """The query image goes in one message (SearchImage takes bytes), so it is read whole, up to a limit.

    Later pages send the same image again with the token (the token is bound to the image's digest)."""
    data = await image.read(MAX_SEARCH_IMAGE_BYTES + 1)
    if len(data) > MAX_SEARCH_IMAGE_BYTES:
        raise InvalidInput(f"a query image may be at most {MAX_SEARCH_IMAGE_BYTES} bytes", reason=Reason.FILE_TOO_LARGE)
    try:
        flt = FilterBody.model_validate_json(filter or "{}").to_pb()
    except ValueError as exc:
        raise InvalidInput(f"bad filter: {exc}", reason=Reason.BAD_FILTER) from exc
    request = search_pb2.SearchImageRequest(
        image=data,
        page_size=top_k or page_size,
        page_token=page_token,
        min_score=min_score,
        include_total_size=include_total_size,
        filter=flt,
    )
    context = contextvars.copy_context()  # carries the caller's key to the gRPC call
    return await asyncio.get_running_loop().run_in_executor(
        STREAM_THREADS, lambda: context.run(lambda: to_json(client.search.SearchImage(request)))
    )
