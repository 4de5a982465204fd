"""Routes tagged ``ingest``: streamed uploads and ingesting URIs the server can reach."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from ordo.gateway.deps import AppSettings, Client
from ordo.gateway.shapes import UploadResponse, documented
from ordo.gateway.streams import to_json
from ordo.gateway.uploads import IDLE_REASON, UploadIdle, stream_upload
from ordo.v1 import ingest_pb2

router = APIRouter(tags=["ingest"])

_MULTIPART_FILES: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"}}},
                }
            }
        },
    }
}


@router.post(
    "/api/uploads",
    summary="Upload images (multipart/form-data, one part per file); returns per-file results and the job.",
    openapi_extra=_MULTIPART_FILES,
    **documented(UploadResponse),
)
async def upload(
    request: Request,
    client: Client,
    settings: AppSettings,
    request_id: Annotated[str, Query(max_length=200)] = "",
    library: str = "",
) -> dict[str, Any] | JSONResponse:
    """Streamed to the UploadImages RPC as it arrives (never buffered whole). ``request_id`` makes a
    retried upload reuse its job. Watch the job at ``/api/jobs/{job_id}/events``."""
    try:
        response = await stream_upload(
            request.stream(),
            request.headers.get("content-type", ""),
            request_id,
            client.ingest,
            library[:64],
            idle_timeout_s=settings.upload_idle_timeout_s,
        )
    except UploadIdle as idle:  # 408 with the job and the outcomes of the files completed before
        kept = to_json(idle.response) if idle.response is not None else {}
        body = {**kept, "detail": idle.message, "reason": IDLE_REASON, "code": "DEADLINE_EXCEEDED"}
        return JSONResponse(body, status_code=408, headers={"Connection": "close"})
    if response.stream_error.reason == IDLE_REASON:  # the server cut it just as the body ended
        body = {**to_json(response), "detail": response.stream_error.message, "reason": IDLE_REASON}
        return JSONResponse({**body, "code": "DEADLINE_EXCEEDED"}, status_code=408)
    return to_json(response)


@router.post("/api/ingest-uris", summary="Ingest paths or s3:// URIs the server can reach.")
def ingest_uris(
    uris: list[str], client: Client, recursive: bool = True, request_id: str = "", library: str = ""
) -> dict[str, Any]:
    request = ingest_pb2.IngestUrisRequest(
        uris=uris, non_recursive=not recursive, request_id=request_id, library=library[:64]
    )
    return to_json(client.ingest.IngestUris(request))
