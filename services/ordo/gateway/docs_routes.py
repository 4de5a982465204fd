"""The API documentation pages (Swagger UI at ``/docs``, ReDoc at ``/redoc``) served with their assets by the
gateway itself.

Why: FastAPI's default pages load Swagger UI and ReDoc from a CDN, so behind a firewall (or offline) ``/docs``
is a blank page. The assets come from the ``fastapi-offline`` wheel (a maintained bundle of swagger-ui-dist
and redoc), mounted under ``/docs-assets``; the pages point there. Access: like ``/openapi.json`` these are
public (``security/policy.py``) — they describe the API, not its data, and every call made from them still
needs a key when auth is on.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs-assets"
# One immutable cache per installed wheel version is overkill here: a day keeps upgrades visible.
ASSETS_CACHE = "public, max-age=86400"


def assets_dir() -> Path:
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


class DocsAssets(StaticFiles):
    def file_response(self, *args: object, **kwargs: object) -> Response:
        response = super().file_response(*args, **kwargs)  # type: ignore[arg-type]
        response.headers["Cache-Control"] = ASSETS_CACHE
        return response


def add_docs_routes(app: FastAPI) -> None:
    """Call on an app created with ``docs_url=None, redoc_url=None``, before the web UI's catch-all mount."""
    openapi_url = app.openapi_url or "/openapi.json"
    oauth2_redirect = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"
    app.mount(ASSETS_URL, DocsAssets(directory=assets_dir()), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=oauth2_redirect,
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    @app.get(oauth2_redirect, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
