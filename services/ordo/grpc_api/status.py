"""One place that maps domain errors to canonical gRPC status codes (google.rpc style), with a
human message and a machine-readable ``ErrorInfo.reason`` in the status details."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from ordo import errors, limits

log = logging.getLogger(__name__)
ERROR_DOMAIN = "ordo.dev"

_CODES: list[tuple[type[errors.OrdoError], grpc.StatusCode]] = [
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.TooLarge, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.InvalidInput, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
    (errors.ModelUnavailable, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.Conflict, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
]


def code_for(exc: errors.OrdoError) -> grpc.StatusCode:
    for cls, code in _CODES:
        if isinstance(exc, cls):
            return code
    return grpc.StatusCode.INTERNAL


def abort(context: grpc.ServicerContext, code: grpc.StatusCode, message: str, reason: errors.Reason | str) -> NoReturn:
    """Ends the call with ``code``, a public message and ``reason`` as the ErrorInfo (domain ordo.dev).

    ``reason`` is a ``Reason`` (a ``str``); an ``OrdoError``'s reason is passed as it came.
    """
    message = limits.public_message(message)
    info = error_details_pb2.ErrorInfo(reason=str(reason), domain=ERROR_DOMAIN)
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=message, details=[detail])
    context.abort_with_status(rpc_status.to_status(status))
    raise AssertionError("unreachable")  # abort_with_status always raises


def invalid(
    context: grpc.ServicerContext, message: str, reason: errors.Reason = errors.Reason.INVALID_ARGUMENT
) -> NoReturn:
    abort(context, grpc.StatusCode.INVALID_ARGUMENT, message, reason)


F = TypeVar("F", bound=Callable[..., Any])


def _already_aborted(context: grpc.ServicerContext) -> bool:
    code = context.code()  # pyright: ignore[reportAttributeAccessIssue]: in grpcio since 1.38; the stubs lag
    return code is not None and code is not grpc.StatusCode.OK


def handle_errors(method: F) -> F:
    """Decorates a servicer method: domain errors become proper statuses; anything unexpected is
    logged with its traceback and answered INTERNAL without leaking internals."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except errors.OrdoError as exc:
            abort(context, code_for(exc), exc.message, exc.reason)
        except Exception as exc:
            if _already_aborted(context):  # grpc's abort() raises a bare Exception: let it through
                raise
            log.exception("unexpected error in %s", method.__name__)
            abort(context, grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}", errors.Reason.INTERNAL)

    return wrapper  # type: ignore[return-value]


def handle_stream_errors(method: F) -> F:
    """Same as ``handle_errors`` for server-streaming methods (generators)."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            yield from method(self, request, context)
        except errors.OrdoError as exc:
            abort(context, code_for(exc), exc.message, exc.reason)
        except Exception as exc:
            if _already_aborted(context):
                raise
            log.exception("unexpected error in %s", method.__name__)
            abort(context, grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}", errors.Reason.INTERNAL)

    return wrapper  # type: ignore[return-value]


def error_reason(err: grpc.RpcError) -> str:
    """Client side: the ErrorInfo reason of a failed call, or ''."""
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    if status is None:
        return ""
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.reason
    return ""
