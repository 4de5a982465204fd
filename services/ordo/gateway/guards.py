"""The REST boundary: body-size limits while the body streams in, fair use, and 4xx for every bad input.

Why an ASGI middleware for the body limit: FastAPI parses JSON and spools multipart parts before a route
runs, so a limit checked in a route comes too late (a 200 MB JSON body raised the gateway's RSS by 1.1 GB;
a 200 MB image part went to disk first). Here ``Content-Length`` is checked before anything is read, and
the bytes are counted as they arrive, so a body without a length (chunked) is cut off at the limit too.
Uploads (``/api/uploads``) are exempt: they stream to the UploadImages RPC, which caps every file.

Every refusal uses Ordo's error body (``detail``, ``reason``, ``code``). Anything unexpected is a 500 with
a generic message (the traceback goes to the log, never to the client).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import pydantic
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ordo.config import Settings
from ordo.fair_use import RateLimiter, StreamSlots, Throttled, client_identity

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

UNLIMITED_BODY_PATHS = ("/api/uploads",)
SEARCH_IMAGE_PATH = "/api/search/image"
MULTIPART_OVERHEAD = 64 * 1024
UNGUARDED_PATHS = ("/healthz",)


def body_limit_for(path: str, settings: Settings, search_image_bytes: int) -> int | None:
    """The most bytes a request body to ``path`` may have (None: streamed, capped per file elsewhere)."""
    if path.startswith(UNLIMITED_BODY_PATHS):
        return None
    if path == SEARCH_IMAGE_PATH:
        return search_image_bytes + MULTIPART_OVERHEAD
    return settings.http_max_body_bytes


def _error(status: int, detail: str, reason: str, code: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail, "reason": reason, "code": code}, status_code=status, headers=headers)


def throttled_response(exc: Throttled) -> JSONResponse:
    seconds = str(round(exc.retry_after))
    return _error(429, exc.message, exc.reason, "RESOURCE_EXHAUSTED", {"Retry-After": seconds})


class _BodyTooLarge(Exception):
    pass


class GuardMiddleware:
    """Rate limit per client, then the body limit (checked on Content-Length, then while reading)."""

    def __init__(self, app: Any, settings: Settings, search_image_bytes: int) -> None:
        self.app = app
        self.settings = settings
        self.search_image_bytes = search_image_bytes
        exempt = frozenset(i.strip() for i in settings.rate_limit_exempt.split(",") if i.strip())
        self.rate_limiter = RateLimiter(settings.effective_rate_limit, exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNGUARDED_PATHS:
            await self.app(scope, receive, send)
            return
        client = scope.get("client") or ("unknown", 0)
        try:
            self.rate_limiter.check(client_identity(str(client[0])))
        except Throttled as exc:
            await throttled_response(exc)(scope, receive, send)
            return
        limit = body_limit_for(scope["path"], self.settings, self.search_image_bytes)
        if limit is None:
            await self.app(scope, receive, send)
            return
        too_large = _error(
            413,
            f"the request body is over the limit of {limit} bytes",
            "BODY_TOO_LARGE",
            "RESOURCE_EXHAUSTED",
        )
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await _error(400, "Content-Length is not a number", "BAD_REQUEST", "INVALID_ARGUMENT")(
                    scope, receive, send
                )
                return
            if declared > limit:
                await too_large(scope, receive, send)
                return
        state = {"received": 0, "exceeded": False, "started": False}

        async def limited_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > limit:
                    state["exceeded"] = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            if state["exceeded"]:
                return  # whatever the app makes of the cut-off body, the answer is 413 (sent below)
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _BodyTooLarge:
            pass
        except Exception:
            if not state["exceeded"]:
                raise
        if state["exceeded"] and not state["started"]:
            await too_large(scope, receive, send)


async def pydantic_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """A model built inside a route from query parameters (``GET /api/search?k=0``) failed validation."""
    assert isinstance(exc, pydantic.ValidationError)
    problems = "; ".join(
        f"{'.'.join(str(p) for p in error.get('loc', ()))}: {error.get('msg', '')}" for error in exc.errors()
    )
    return _error(400, f"bad request: {problems}", "BAD_REQUEST", "INVALID_ARGUMENT")


async def json_error_handler(request: Request, exc: Exception) -> JSONResponse:
    return _error(400, "bad request: the body is not valid JSON", "BAD_REQUEST", "INVALID_ARGUMENT")


_HTTP_CODES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND"}


async def http_exception_handler(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own refusals (no such route, method not allowed...) in Ordo's error body."""
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    detail = exc.detail if isinstance(exc.detail, str) else "bad request"
    reason = {404: "NO_SUCH_ROUTE", 405: "METHOD_NOT_ALLOWED"}.get(status, f"HTTP_{status}")
    code = _HTTP_CODES.get(status, "INVALID_ARGUMENT" if status < 500 else "INTERNAL")
    return _error(status, detail, reason, code, dict(exc.headers or {}))


async def value_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """The gateway only translates input into protobuf requests, so a ValueError here is input protobuf
    cannot hold (``page_size=99999999999999999999`` for an int32, text that is not valid Unicode)."""
    log.info("refused %s %s: %s", request.method, request.url.path, exc)
    text = str(exc)
    detail = (
        "a value in the request is out of range" if "out of range" in text else "a value in the request is not valid"
    )
    return _error(400, f"bad request: {detail}", "BAD_REQUEST", "INVALID_ARGUMENT")


async def throttled_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Throttled)
    return throttled_response(exc)


async def unexpected_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """The last resort: logged with its traceback, answered without internals."""
    log.exception("unexpected error in %s %s", request.method, request.url.path, exc_info=exc)
    return _error(500, "internal error", "INTERNAL", "INTERNAL")


def install(app: FastAPI, settings: Settings, search_image_bytes: int) -> StreamSlots:
    """Hook the guards into ``app``; returns the SSE stream slots the events route takes and gives back."""
    app.add_middleware(GuardMiddleware, settings=settings, search_image_bytes=search_image_bytes)
    app.add_exception_handler(pydantic.ValidationError, pydantic_error_handler)
    app.add_exception_handler(json.JSONDecodeError, json_error_handler)
    app.add_exception_handler(Throttled, throttled_handler)
    app.add_exception_handler(ValueError, value_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_exception_handler)
    app.add_exception_handler(Exception, unexpected_error_handler)
    return StreamSlots(total=settings.max_streams, per_client=settings.max_streams_per_client)


def sse_identity(request: Request) -> str:
    return client_identity(request.client.host if request.client else "unknown")


def release_once(slots: StreamSlots, identity: str) -> Callable[[], None]:
    """A release of one stream slot that is safe to call from several places (only the first counts)."""
    once = threading.Lock()

    def release() -> None:
        if once.acquire(blocking=False):  # never released again: later calls do nothing
            slots.release(identity)

    return release
