"""Routes tagged ``jobs``: recent jobs, one job, and a job's progress as server-sent events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from ordo.gateway import guards
from ordo.gateway.deps import Client, SseSlots
from ordo.gateway.errors import error_body
from ordo.gateway.paging_params import DEFAULT_PAGE_SIZE, PageSize, PageToken
from ordo.gateway.shapes import Job, JobPage, documented
from ordo.gateway.streams import DONE, next_item, to_json
from ordo.v1 import ingest_pb2

router = APIRouter(tags=["jobs"])
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@router.get("/api/jobs", summary="Recent jobs, newest first.", **documented(JobPage))
def list_jobs(client: Client, page_size: PageSize = DEFAULT_PAGE_SIZE, page_token: PageToken = "") -> dict[str, Any]:
    return to_json(client.ingest.ListJobs(ingest_pb2.ListJobsRequest(page_size=page_size, page_token=page_token)))


@router.get("/api/jobs/{job_id}", **documented(Job))
def get_job(job_id: str, client: Client) -> dict[str, Any]:
    return to_json(client.ingest.GetJob(ingest_pb2.GetJobRequest(job_id=job_id)).job)


@router.get(
    "/api/jobs/{job_id}/events",
    summary="Server-sent events: one `job` event each time the job changes, until it ends.",
    response_class=StreamingResponse,
)
async def job_events(job_id: str, request: Request, client: Client, sse_slots: SseSlots) -> StreamingResponse:
    """From WatchJob. Each event's data is the job as JSON; the stream closes after the final state.
    A failure mid-stream becomes an `error` event with `detail` and `reason`. Open streams are capped
    per client and in total (429 with Retry-After beyond that)."""
    identity = guards.sse_identity(request)
    release = guards.release_once(sse_slots, identity)
    sse_slots.acquire(identity)
    call = client.ingest.WatchJob(ingest_pb2.WatchJobRequest(job_id=job_id))
    try:
        first = await next_item(call)  # before answering 200, so an unknown job is a plain 404
    except BaseException:
        call.cancel()
        release()
        raise
    # The background task also releases the slot if the client left before the stream started.
    return StreamingResponse(
        _events(call, first, release),
        media_type="text/event-stream",
        headers=SSE_HEADERS,
        background=BackgroundTask(release),
    )


async def _events(call: Any, first: Any, release: Callable[[], None]) -> AsyncIterator[str]:
    item = first
    try:
        while item is not DONE:
            yield f"event: job\ndata: {json.dumps(to_json(item.job))}\n\n"
            item = await next_item(call)
        yield "event: end\ndata: {}\n\n"
    except grpc.RpcError as exc:
        _, body = error_body(exc)
        yield f"event: error\ndata: {json.dumps(body)}\n\n"
    finally:
        call.cancel()  # the client went away (or the job ended): stop the gRPC stream too
        release()
