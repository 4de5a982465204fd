"""The FastAPI application: REST routes that translate to Ordo's gRPC services, SSE for job progress, and
the built web UI at ``/``.

Every route is a thin translation: parse → one or a few stub calls → protobuf to JSON (the proto3 JSON
mapping with field names as in the ``.proto`` files, so the REST shapes are the contracts' shapes; note
that int64 fields are strings there). Blocking stub calls run in FastAPI's thread pool (``def`` routes);
streams (uploads, content, job events) run the gRPC stream on a thread and hand items over as they come.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import grpc
from fastapi import FastAPI, File, Form, Header, Query, Request, Response, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from google.protobuf.json_format import MessageToDict, ParseDict
from google.protobuf.message import Message
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from ordo.client import OrdoClient
from ordo.config import Settings
from ordo.errors import InvalidInput, OrdoError, Reason
from ordo.gateway import guards
from ordo.gateway.analysis_routes import add_analysis_routes
from ordo.gateway.docs_routes import add_docs_routes
from ordo.gateway.errors import error_body, ordo_error_handler, rpc_error_handler, validation_error_handler
from ordo.gateway.library_routes import library_router
from ordo.gateway.map_routes import add_map_routes
from ordo.gateway.uploads import IDLE_REASON, UploadIdle, stream_upload
from ordo.security.gateway_hooks import install as install_security
from ordo.v1 import analysis_pb2, common_pb2, ingest_pb2, search_pb2

STATIC_DIR = Path(__file__).parent / "static"
# Content is addressed by its SHA-256 (the asset id), so a URL's bytes never change: cache for a year.
IMMUTABLE = "public, max-age=31536000, immutable"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
MAX_SEARCH_IMAGE_BYTES = 32 * 1024 * 1024
_DONE = object()


def to_json(message: Message) -> dict[str, Any]:
    return MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


class ErrorBody(BaseModel):
    """Every failure: the service's message, its machine-readable reason, and the gRPC code behind it."""

    detail: str = Field(examples=["asset 3f… not found"])
    reason: str = Field(examples=["ASSET_NOT_FOUND"])
    code: str = Field(examples=["NOT_FOUND"])


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in [
        (400, "Bad input (INVALID_ARGUMENT)"),
        (404, "No such resource (NOT_FOUND)"),
        (409, "Not possible in the resource's state (FAILED_PRECONDITION)"),
        (503, "A service or dependency is down (UNAVAILABLE)"),
    ]
}


class WebAssets(StaticFiles):
    """The built UI. Vite names bundles by content hash, so those are immutable; the page itself must be
    revalidated, or a browser would keep pointing at bundles of an older build."""

    def file_response(self, full_path: Any, stat_result: Any, scope: Any, status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        hashed = "/assets/" in str(full_path).replace("\\", "/")
        response.headers["Cache-Control"] = IMMUTABLE if hashed else "no-cache"
        return response


# --- request bodies ------------------------------------------------------------------------------------
class FilterBody(BaseModel):
    """Restricts a search. Empty fields do not restrict (as ``ordo.v1.Filter``)."""

    kinds: list[Literal["image", "object", "text"]] = Field(default_factory=list)
    asset_ids: list[str] = Field(default_factory=list, description="Only these assets.")
    cluster_ids: list[str] = Field(default_factory=list, description="Only these clusters (latest clustering run).")
    mime_types: list[str] = Field(default_factory=list)
    source_uri_prefix: str = ""
    captured_after: datetime | None = None
    captured_before: datetime | None = None
    ingested_after: datetime | None = None
    ingested_before: datetime | None = None
    min_width: int = 0
    min_height: int = 0

    def to_pb(self) -> common_pb2.Filter:
        data = self.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
        data["kinds"] = [f"SAMPLE_KIND_{k.upper()}" for k in self.kinds]
        return ParseDict(data, common_pb2.Filter())


class SearchBody(BaseModel):
    """Search by ``query`` text, or by ``asset_id`` ("more like this"); exactly one of them."""

    query: str | None = None
    asset_id: str | None = None
    top_k: int = Field(20, ge=1, le=1000)
    page_token: str = ""
    min_score: float = 0.0
    exclude_self: bool = True
    filter: FilterBody = Field(default_factory=FilterBody)


class ClusteringBody(BaseModel):
    algorithm: Literal["leiden", "dbscan", "hdbscan", "kmeans", ""] = ""
    resolution: float = Field(0.0, ge=0.0, le=50.0)
    eps: float = 0.0
    min_samples: int = 0
    min_cluster_size: int = 0
    n_clusters: int = 0
    filter: FilterBody = Field(default_factory=FilterBody)
    label_field: str = ""


class ProjectionBody(BaseModel):
    method: Literal["tsne", "umap", "pca", ""] = ""
    perplexity: float = 0.0
    seed: int = 0
    clustering_run_id: str = ""
    filter: FilterBody = Field(default_factory=FilterBody)


class RenameBody(BaseModel):
    name: str


def _enum(prefix: str, value: str) -> str:
    return f"{prefix}_{value.upper()}" if value else f"{prefix}_UNSPECIFIED"


# --- helpers for streams ------------------------------------------------------------------------------
# Blocking waits on gRPC streams get their own threads: an SSE client may wait seconds for its next event,
# and the loop's default executor (cpu + 4 threads) would let a few of them starve thumbnail requests.
STREAM_THREADS = ThreadPoolExecutor(max_workers=256, thread_name_prefix="ordo-gateway-stream")


async def _next(iterator: Iterator[Any]) -> Any:
    """The next item of a blocking gRPC stream, without blocking the event loop."""
    return await asyncio.get_running_loop().run_in_executor(STREAM_THREADS, next, iterator, _DONE)


def create_app(settings: Settings | None = None, client: OrdoClient | None = None) -> FastAPI:
    """The gateway for the services ``settings`` point at (``ORDO_ADDRESS`` & co.)."""
    client = client or OrdoClient(settings or Settings())
    settings = client.settings
    app = FastAPI(
        title="Ordo",
        version="1",
        summary="REST and server-sent events over Ordo's gRPC services (ingest, search, analysis).",
        description="Every route translates to the `ordo.v1` gRPC contracts; errors carry the service's "
        "message (`detail`) and machine-readable `reason`. int64 fields are strings (proto3 JSON mapping).",
        responses=ERROR_RESPONSES,
        docs_url=None,  # docs_routes serves /docs and /redoc with their assets (no CDN)
        redoc_url=None,
    )
    app.add_exception_handler(grpc.RpcError, rpc_error_handler)
    app.add_exception_handler(OrdoError, ordo_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    sse_slots = guards.install(app, settings, MAX_SEARCH_IMAGE_BYTES)  # body limits, fair use, 4xx bodies
    app.state.client = client
    install_security(app, settings)  # policy on every route below, Host/Origin guard, sign-in and keys

    # --- service health ---------------------------------------------------------------------------
    @app.get("/healthz", tags=["ops"], summary="The gateway is up (does not check the services).")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/status", tags=["ops"], summary="Services' health, counts, model and adapters in use.")
    def status() -> dict[str, Any]:
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

    # --- ingest -----------------------------------------------------------------------------------
    @app.post(
        "/api/uploads",
        tags=["ingest"],
        summary="Upload images (multipart/form-data, one part per file); returns per-file results and the job.",
        openapi_extra={
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
        },
    )
    async def upload(
        request: Request, request_id: Annotated[str, Query(max_length=200)] = "", library: str = ""
    ) -> dict[str, Any]:
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

    @app.post("/api/ingest-uris", tags=["ingest"], summary="Ingest paths or s3:// URIs the server can reach.")
    def ingest_uris(uris: list[str], recursive: bool = True, request_id: str = "", library: str = "") -> dict[str, Any]:
        request = ingest_pb2.IngestUrisRequest(
            uris=uris, non_recursive=not recursive, request_id=request_id, library=library[:64]
        )
        return to_json(client.ingest.IngestUris(request))

    @app.get("/api/jobs", tags=["jobs"], summary="Recent jobs, newest first.")
    def list_jobs(page_size: int = 20, page_token: str = "") -> dict[str, Any]:
        return to_json(client.ingest.ListJobs(ingest_pb2.ListJobsRequest(page_size=page_size, page_token=page_token)))

    @app.get("/api/jobs/{job_id}", tags=["jobs"])
    def get_job(job_id: str) -> dict[str, Any]:
        return to_json(client.ingest.GetJob(ingest_pb2.GetJobRequest(job_id=job_id)).job)

    @app.get(
        "/api/jobs/{job_id}/events",
        tags=["jobs"],
        summary="Server-sent events: one `job` event each time the job changes, until it ends.",
        response_class=StreamingResponse,
    )
    async def job_events(job_id: str, request: Request) -> StreamingResponse:
        """From WatchJob. Each event's data is the job as JSON; the stream closes after the final state.
        A failure mid-stream becomes an `error` event with `detail` and `reason`. Open streams are capped
        per client and in total (429 with Retry-After beyond that)."""
        identity = guards.sse_identity(request)
        release = guards.release_once(sse_slots, identity)
        sse_slots.acquire(identity)
        call = client.ingest.WatchJob(ingest_pb2.WatchJobRequest(job_id=job_id))
        try:
            first = await _next(call)  # before answering 200, so an unknown job is a plain 404
        except BaseException:
            call.cancel()
            release()
            raise

        async def events() -> AsyncIterator[str]:
            item = first
            try:
                while item is not _DONE:
                    yield f"event: job\ndata: {json.dumps(to_json(item.job))}\n\n"
                    item = await _next(call)
                yield "event: end\ndata: {}\n\n"
            except grpc.RpcError as exc:
                _, body = error_body(exc)
                yield f"event: error\ndata: {json.dumps(body)}\n\n"
            finally:
                call.cancel()  # the client went away (or the job ended): stop the gRPC stream too
                release()

        # The background task also releases the slot if the client left before the stream started.
        return StreamingResponse(
            events(), media_type="text/event-stream", headers=SSE_HEADERS, background=BackgroundTask(release)
        )

    # --- assets -----------------------------------------------------------------------------------
    @app.get("/api/assets", tags=["assets"])
    def list_assets(page_size: int = 50, page_token: str = "") -> dict[str, Any]:
        request = ingest_pb2.ListAssetsRequest(page_size=page_size, page_token=page_token)
        return to_json(client.ingest.ListAssets(request))

    @app.get("/api/assets/{asset_id}", tags=["assets"], summary="An asset's metadata and its samples.")
    def get_asset(asset_id: str) -> dict[str, Any]:
        return to_json(client.ingest.GetAsset(ingest_pb2.GetAssetRequest(asset_id=asset_id)))

    @app.delete("/api/assets/{asset_id}", tags=["assets"], status_code=204)
    def delete_asset(asset_id: str) -> Response:
        client.ingest.DeleteAsset(ingest_pb2.DeleteAssetRequest(asset_id=asset_id))
        return Response(status_code=204)

    async def content(asset_id: str, variant: int, if_none_match: str | None) -> Response:
        etag = f'"{asset_id}"'
        if if_none_match and etag in {tag.strip() for tag in if_none_match.split(",")}:
            return Response(status_code=304, headers={"ETag": etag, "Cache-Control": IMMUTABLE})
        call = client.ingest.GetAssetContent(ingest_pb2.GetAssetContentRequest(asset_id=asset_id, variant=variant))
        try:
            first = await _next(call)
        except BaseException:
            call.cancel()
            raise
        if first is _DONE:
            raise InvalidInput(f"asset {asset_id} returned no content", reason=Reason.EMPTY_CONTENT)

        async def body() -> AsyncIterator[bytes]:
            item = first
            try:
                while item is not _DONE:
                    yield item.chunk
                    item = await _next(call)
            finally:
                call.cancel()

        headers = {"ETag": etag, "Cache-Control": IMMUTABLE, "Content-Length": str(first.size_bytes)}
        return StreamingResponse(body(), media_type=first.mime_type, headers=headers)

    @app.get(
        "/api/assets/{asset_id}/thumbnail",
        tags=["assets"],
        summary="The JPEG thumbnail, streamed; ETag is the asset id, cached as immutable.",
        response_class=StreamingResponse,
    )
    async def thumbnail(asset_id: str, if_none_match: Annotated[str | None, Header()] = None) -> Response:
        return await content(asset_id, ingest_pb2.ASSET_CONTENT_VARIANT_THUMBNAIL, if_none_match)

    @app.get(
        "/api/assets/{asset_id}/original",
        tags=["assets"],
        summary="The original bytes, streamed; ETag is the asset id, cached as immutable.",
        response_class=StreamingResponse,
    )
    async def original(asset_id: str, if_none_match: Annotated[str | None, Header()] = None) -> Response:
        return await content(asset_id, ingest_pb2.ASSET_CONTENT_VARIANT_ORIGINAL, if_none_match)

    # --- search -----------------------------------------------------------------------------------
    @app.get("/api/search", tags=["search"], summary="Search by text (query string form, for quick use).")
    def search_get(
        q: str,
        k: int = 20,
        kind: Annotated[list[Literal["image", "object", "text"]] | None, Query()] = None,
        page_token: str = "",
    ) -> dict[str, Any]:
        flt = FilterBody(kinds=kind or [])
        return search(SearchBody(query=q, top_k=k, page_token=page_token, filter=flt))

    @app.post("/api/search", tags=["search"], summary="Search by text or by an asset (more like this).")
    def search(body: SearchBody) -> dict[str, Any]:
        if (body.query is None) == (body.asset_id is None):
            raise InvalidInput("give exactly one of 'query' or 'asset_id'", reason=Reason.BAD_SEARCH)
        flt = body.filter.to_pb()
        if body.query is not None:
            text_request = search_pb2.SearchTextRequest(
                query=body.query, top_k=body.top_k, page_token=body.page_token, min_score=body.min_score, filter=flt
            )
            return to_json(client.search.SearchText(text_request))
        image_request = search_pb2.SearchImageRequest(
            asset_id=body.asset_id or "",
            top_k=body.top_k,
            page_token=body.page_token,
            min_score=body.min_score,
            exclude_self=body.exclude_self,
            filter=flt,
        )
        return to_json(client.search.SearchImage(image_request))

    @app.post("/api/search/image", tags=["search"], summary="Search by an example image (multipart: `image`).")
    async def search_image(
        image: Annotated[UploadFile, File(description="The example image.")],
        top_k: Annotated[int, Form(ge=1, le=1000)] = 20,
        filter: Annotated[str, Form(description="A FilterBody as JSON.")] = "{}",
    ) -> dict[str, Any]:
        """The query image goes in one message (SearchImage takes bytes), so it is read whole, up to a limit."""
        data = await image.read(MAX_SEARCH_IMAGE_BYTES + 1)
        if len(data) > MAX_SEARCH_IMAGE_BYTES:
            raise InvalidInput(
                f"a query image may be at most {MAX_SEARCH_IMAGE_BYTES} bytes", reason=Reason.FILE_TOO_LARGE
            )
        try:
            flt = FilterBody.model_validate_json(filter or "{}").to_pb()
        except ValueError as exc:
            raise InvalidInput(f"bad filter: {exc}", reason=Reason.BAD_FILTER) from exc
        request = search_pb2.SearchImageRequest(image=data, top_k=top_k, filter=flt)
        context = contextvars.copy_context()  # carries the caller's key to the gRPC call
        return await asyncio.get_running_loop().run_in_executor(
            STREAM_THREADS, lambda: context.run(lambda: to_json(client.search.SearchImage(request)))
        )

    # --- analysis ---------------------------------------------------------------------------------
    add_analysis_routes(app, client, to_json)  # two-level clusters, members, run comparison (issue 15)
    add_map_routes(app, client)  # the map's colour-by-kind/date columns (issue 16)

    @app.get("/api/runs", tags=["analysis"], summary="Analysis runs, newest first.")
    def list_runs(
        kind: Literal["clustering", "projection", ""] = "", page_size: int = 20, page_token: str = ""
    ) -> dict[str, Any]:
        request = analysis_pb2.ListRunsRequest(kind=_enum("RUN_KIND", kind), page_size=page_size, page_token=page_token)
        return to_json(client.analysis.ListRuns(request))

    @app.get("/api/runs/{run_id}", tags=["analysis"])
    def get_run(run_id: str) -> dict[str, Any]:
        return to_json(client.analysis.GetRun(analysis_pb2.GetRunRequest(run_id=run_id)).run)

    @app.post("/api/runs/clustering", tags=["analysis"], summary="Start a clustering run; returns it and its job.")
    def create_clustering(body: ClusteringBody) -> dict[str, Any]:
        params = analysis_pb2.ClusteringParams(
            algorithm=_enum("CLUSTERING_ALGORITHM", body.algorithm),
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

    @app.post("/api/runs/projection", tags=["analysis"], summary="Start a 2-D projection run (the map).")
    def create_projection(body: ProjectionBody) -> dict[str, Any]:
        params = analysis_pb2.ProjectionParams(
            method=_enum("PROJECTION_METHOD", body.method), perplexity=body.perplexity, seed=body.seed
        )
        request = analysis_pb2.CreateProjectionRunRequest(
            filter=body.filter.to_pb(), params=params, clustering_run_id=body.clustering_run_id
        )
        return to_json(client.analysis.CreateProjectionRun(request))

    @app.get("/api/runs/{run_id}/clusters", tags=["analysis"])
    def get_clusters(
        run_id: str,
        page_size: int = 0,
        page_token: str = "",
        level: Literal["leaf", "group", ""] = "",
        parent_id: str = Query("", max_length=64),
    ) -> dict[str, Any]:
        request = analysis_pb2.GetClustersRequest(
            run_id=run_id,
            page_size=page_size,
            page_token=page_token,
            level=_enum("CLUSTER_LEVEL", level),
            parent_id=parent_id,
        )
        return to_json(client.analysis.GetClusters(request))

    @app.patch("/api/runs/{run_id}/clusters/{cluster_id}", tags=["analysis"], summary="Rename a cluster.")
    def rename_cluster(run_id: str, cluster_id: str, body: RenameBody) -> dict[str, Any]:
        request = analysis_pb2.RenameClusterRequest(run_id=run_id, cluster_id=cluster_id, name=body.name)
        return to_json(client.analysis.RenameCluster(request).cluster)

    @app.get(
        "/api/runs/{run_id}/projection",
        tags=["analysis"],
        summary="A projection's points, column-wise (compact for 100k points).",
    )
    def get_projection(run_id: str) -> JSONResponse:
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

    @app.get("/api/duplicates", tags=["analysis"], summary="Groups of near-duplicate images.")
    def duplicates(min_similarity: float = 0.95, page_size: int = 50, page_token: str = "") -> dict[str, Any]:
        request = analysis_pb2.FindDuplicatesRequest(
            min_similarity=min_similarity, page_size=page_size, page_token=page_token
        )
        return to_json(client.analysis.FindDuplicates(request))

    app.include_router(library_router(client, settings, to_json))  # bulk delete, zip, duplicates (issue 16)

    generate_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        """FastAPI documents a 422 for every route; request-shape errors are 400 here (see errors.py)."""
        if app.openapi_schema is None:
            for operations in generate_openapi()["paths"].values():
                for operation in operations.values():
                    operation.get("responses", {}).pop("422", None)
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]
    add_docs_routes(app)  # Swagger UI / ReDoc with bundled assets, so /docs works offline

    # --- the web UI -------------------------------------------------------------------------------
    if (STATIC_DIR / "index.html").exists():
        app.mount("/", WebAssets(directory=STATIC_DIR, html=True), name="web")
    else:

        @app.get("/", include_in_schema=False)
        def web_missing() -> HTMLResponse:
            return HTMLResponse(
                "<h1>Ordo</h1><p>The web UI is not built: run <code>make web</code>. "
                "The REST API is at <a href='/docs'>/docs</a>.</p>",
                status_code=503,
            )

    return app
