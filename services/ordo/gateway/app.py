"""The FastAPI application: REST routes that translate to Ordo's gRPC services, SSE for job progress, and
the built web UI at ``/``.

Every route is a thin translation: parse → one or a few stub calls → protobuf to JSON (the proto3 JSON
mapping with field names as in the ``.proto`` files, so the REST shapes are the contracts' shapes; note
that int64 fields are strings there). Blocking stub calls run in FastAPI's thread pool (``def`` routes);
streams (uploads, content, job events) run the gRPC stream on a thread and hand items over as they come.

The routes live in one module per OpenAPI tag (``*_routes.py``) and get the client, settings and stream slots
through FastAPI dependencies (``deps.py``); this module only wires them together.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
from fastapi import FastAPI, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from ordo.client import OrdoClient
from ordo.config import Settings
from ordo.errors import OrdoError
from ordo.gateway import (
    analysis_routes,
    assets_routes,
    guards,
    ingest_routes,
    jobs_routes,
    library_routes,
    map_routes,
    ops_routes,
    search_routes,
)
from ordo.gateway.assets_routes import IMMUTABLE
from ordo.gateway.docs_routes import add_docs_routes
from ordo.gateway.errors import ordo_error_handler, rpc_error_handler, validation_error_handler
from ordo.gateway.search_routes import MAX_SEARCH_IMAGE_BYTES
from ordo.gateway.streams import to_json
from ordo.security.gateway_hooks import install as install_security

__all__ = ["STATIC_DIR", "create_app", "to_json"]

STATIC_DIR = Path(__file__).parent / "static"
# In the order the routes were always added (the OpenAPI document lists them so).
ROUTERS = (
    ops_routes.router,
    ingest_routes.router,
    jobs_routes.router,
    assets_routes.router,
    search_routes.router,
    analysis_routes.router,  # two-level clusters, members, run comparison (issue 15)
    map_routes.router,  # the map's colour-by-kind/date columns (issue 16)
    library_routes.router,  # bulk delete, zip, duplicates (issue 16)
)


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


def create_app(settings: Settings | None = None, client: OrdoClient | None = None) -> FastAPI:
    """The gateway for the services ``settings`` point at (``ORDO_ADDRESS`` & co.)."""
    # pydantic-settings fills every field from the environment; pyright sees only the required-looking init.
    client = client or OrdoClient(settings or Settings())  # pyright: ignore[reportCallIssue]
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
    # body limits, fair use, 4xx bodies; the SSE slots are read by jobs_routes through deps.SseSlots
    app.state.sse_slots = guards.install(app, settings, MAX_SEARCH_IMAGE_BYTES)
    app.state.client = client
    install_security(app, settings)  # before the routers: policy on every route, Host/Origin guard, sign-in
    for router in ROUTERS:
        app.include_router(router)
    _drop_422_from_openapi(app)
    add_docs_routes(app)  # Swagger UI / ReDoc with bundled assets, so /docs works offline
    _mount_web_ui(app)
    return app


def _drop_422_from_openapi(app: FastAPI) -> None:
    """FastAPI documents a 422 for every route; request-shape errors are 400 here (see errors.py)."""
    generate_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            for operations in generate_openapi()["paths"].values():
                for operation in operations.values():
                    operation.get("responses", {}).pop("422", None)
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


def _mount_web_ui(app: FastAPI) -> None:
    """The built UI at ``/`` (last: it is a catch-all), or a page that says how to build it."""
    if (STATIC_DIR / "index.html").exists():
        app.mount("/", WebAssets(directory=STATIC_DIR, html=True), name="web")
        return

    @app.get("/", include_in_schema=False)
    def web_missing() -> HTMLResponse:
        return HTMLResponse(
            "<h1>Ordo</h1><p>The web UI is not built: run <code>make web</code>. "
            "The REST API is at <a href='/docs'>/docs</a>.</p>",
            status_code=503,
        )
