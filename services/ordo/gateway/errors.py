"""gRPC status → HTTP status, with the server's human message and ErrorInfo reason in a JSON body.

Keeping the mapping in one table means every route answers failures the same way, and the web UI can show
``detail`` as is."""

from __future__ import annotations

import logging

import grpc
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from ordo.errors import OrdoError
from ordo.grpc_api.status import code_for, error_reason

log = logging.getLogger(__name__)

# Statuses the transport makes up by itself (no Ordo service behind them), said in Ordo's words.
TRANSPORT_MESSAGES: dict[grpc.StatusCode | None, tuple[str, str]] = {
    grpc.StatusCode.UNAVAILABLE: (
        "the Ordo services cannot be reached (is `ordo up` running?); try again in a moment",
        "SERVICE_UNAVAILABLE",
    ),
    grpc.StatusCode.DEADLINE_EXCEEDED: ("the Ordo services took too long to answer; try again", "SERVICE_TIMEOUT"),
    grpc.StatusCode.UNKNOWN: ("the Ordo services failed unexpectedly (their log has the details)", "INTERNAL"),
    grpc.StatusCode.INTERNAL: ("the Ordo services failed unexpectedly (their log has the details)", "INTERNAL"),
}

HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    # A precondition on the resource's state (a model not loaded, a run not finished...).
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 413,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


def http_status(code: grpc.StatusCode | None) -> int:
    return HTTP_STATUS.get(code, 500) if code is not None else 500


def error_body(exc: grpc.RpcError) -> tuple[int, dict[str, str]]:
    """(HTTP status, JSON body) for a failed call: ``detail`` is the human message, ``reason`` the
    machine-readable one, ``code`` the gRPC code name."""
    code = exc.code() if hasattr(exc, "code") else None  # type: ignore[attr-defined]
    details = exc.details() if hasattr(exc, "details") else str(exc)  # type: ignore[attr-defined]
    try:
        reason = error_reason(exc)
    except Exception:  # a status without details (e.g. a transport failure) has no ErrorInfo
        reason = ""
    if not reason and code in TRANSPORT_MESSAGES:
        # No ErrorInfo: the status came from gRPC's transport, not from an Ordo service, and its text
        # ("failed to connect to all addresses; last error: ...") means nothing to a user. Log it, say ours.
        log.warning("gRPC %s without an Ordo reason: %s", code.name if code else "?", details)
        details, reason = TRANSPORT_MESSAGES[code]
    return http_status(code), {
        "detail": details or "",
        "reason": reason or (code.name if code else "INTERNAL"),
        "code": code.name if code else "UNKNOWN",
    }


THROTTLE_REASONS = frozenset({"RATE_LIMITED", "TOO_MANY_STREAMS"})


async def rpc_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, grpc.RpcError)
    status, body = error_body(exc)
    if body["reason"] in THROTTLE_REASONS:  # fair use, not a too-large input: 429 with a retry hint
        return JSONResponse(body, status_code=429, headers={"Retry-After": "5"})
    return JSONResponse(body, status_code=status)


async def ordo_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Errors the gateway itself raises (bad request shape) use the same codes as the services would."""
    assert isinstance(exc, OrdoError)
    code = code_for(exc)
    return JSONResponse({"detail": exc.message, "reason": exc.reason, "code": code.name}, status_code=http_status(code))


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Request-shape errors use the same body and code as the services' INVALID_ARGUMENT (400), with the
    offending fields named in ``detail``, instead of FastAPI's default 422 list."""
    assert isinstance(exc, RequestValidationError)
    problems = "; ".join(
        f"{'.'.join(str(part) for part in error.get('loc', ()) if part != 'body')}: {error.get('msg', '')}"
        for error in exc.errors()
    )
    return JSONResponse(
        {"detail": f"bad request: {problems}", "reason": "BAD_REQUEST", "code": "INVALID_ARGUMENT"}, status_code=400
    )
