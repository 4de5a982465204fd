"""The gRPC boundary: one interceptor that every RPC passes before its servicer runs.

It does three things, in this order, for every method except health checks and reflection (which must
always answer, so load balancers and ``ordo status`` can tell an overloaded server from a dead one):

1. fair use: the caller's request budget (:class:`ordo.fair_use.RateLimiter`), per
   :func:`ordo.fair_use.client_identity`;
2. long-lived streams (``WatchJob``, ``UploadImages``): a per-client and a total cap
   (:class:`ordo.fair_use.StreamSlots`). The server's thread pool has room for every capped stream *plus*
   ``ORDO_GRPC_WORKERS`` threads, so streams can never take the threads unary calls need (16 open
   ``WatchJob`` streams used to stop search and health checks until they closed). A watch also ends after
   ``ORDO_STREAM_MAX_SECONDS`` (the client re-watches), so abandoned watches free their slot;
3. request limits: every field of a unary request message against :mod:`ordo.limits`.

Refusals are RESOURCE_EXHAUSTED with ``RATE_LIMITED`` / ``TOO_MANY_STREAMS`` and a ``RetryInfo`` detail
(the retry hint), or INVALID_ARGUMENT with the limit's reason.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from ordo import limits
from ordo.errors import InvalidInput
from ordo.fair_use import RateLimiter, StreamSlots, Throttled, client_identity
from ordo.grpc_api.status import ERROR_DOMAIN, abort

log = logging.getLogger(__name__)

CAPPED_STREAMS = frozenset({"/ordo.v1.IngestService/WatchJob", "/ordo.v1.IngestService/UploadImages"})
_UNGUARDED_PREFIXES = ("/grpc.health.", "/grpc.reflection.")


def abort_throttled(context: grpc.ServicerContext, exc: Throttled) -> None:
    """RESOURCE_EXHAUSTED with the reason and a RetryInfo (google.rpc) saying when to try again."""
    seconds = round(exc.retry_after)
    info = error_details_pb2.ErrorInfo(
        reason=exc.reason, domain=ERROR_DOMAIN, metadata={"retry_after_seconds": str(seconds)}
    )
    retry = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=seconds))
    details = []
    for message in (info, retry):
        packed = any_pb2.Any()
        packed.Pack(message)
        details.append(packed)
    status = status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, message=exc.message, details=details)
    context.abort_with_status(rpc_status.to_status(status))


class GuardInterceptor(grpc.ServerInterceptor):
    def __init__(self, rate_limiter: RateLimiter, streams: StreamSlots, stream_max_seconds: float) -> None:
        self.rate_limiter = rate_limiter
        self.streams = streams
        self.stream_max_seconds = stream_max_seconds

    def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Any], details: grpc.HandlerCallDetails
    ) -> Any:
        handler = continuation(details)
        method = details.method  # type: ignore[attr-defined]
        if handler is None or method.startswith(_UNGUARDED_PREFIXES):
            return handler
        capped = method in CAPPED_STREAMS
        if handler.request_streaming and handler.response_streaming:
            return handler  # none in Ordo's contracts
        if handler.request_streaming:
            return grpc.stream_unary_rpc_method_handler(
                self._wrap_stream_unary(handler.stream_unary, capped),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.response_streaming:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_unary_stream(handler.unary_stream, capped),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return grpc.unary_unary_rpc_method_handler(
            self._wrap_unary(handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    # --- the checks ------------------------------------------------------------------------------
    def _admit(self, request: Any, context: grpc.ServicerContext) -> str:
        identity = client_identity(context.peer())
        try:
            self.rate_limiter.check(identity)
        except Throttled as exc:
            abort_throttled(context, exc)
        if request is not None:
            try:
                limits.check_message(request)
            except InvalidInput as exc:
                abort(context, grpc.StatusCode.INVALID_ARGUMENT, exc.message, exc.reason)
        return identity

    def _take_slot(self, identity: str, context: grpc.ServicerContext) -> None:
        try:
            self.streams.acquire(identity)
        except Throttled as exc:
            abort_throttled(context, exc)

    def _wrap_unary(self, behavior: Callable[..., Any]) -> Callable[..., Any]:
        def unary(request: Any, context: grpc.ServicerContext) -> Any:
            self._admit(request, context)
            return behavior(request, context)

        return unary

    def _wrap_unary_stream(self, behavior: Callable[..., Any], capped: bool) -> Callable[..., Any]:
        def unary_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            identity = self._admit(request, context)
            if not capped:
                yield from behavior(request, context)
                return
            self._take_slot(identity, context)
            started = time.monotonic()
            try:
                for item in behavior(request, context):
                    yield item
                    if time.monotonic() - started > self.stream_max_seconds:
                        return  # a watch is a view, not a lease: the client re-watches if still there
            finally:
                self.streams.release(identity)

        return unary_stream

    def _wrap_stream_unary(self, behavior: Callable[..., Any], capped: bool) -> Callable[..., Any]:
        def stream_unary(request_iterator: Iterator[Any], context: grpc.ServicerContext) -> Any:
            identity = self._admit(None, context)
            if not capped:
                return behavior(request_iterator, context)
            self._take_slot(identity, context)
            try:
                return behavior(request_iterator, context)
            finally:
                self.streams.release(identity)

        return stream_unary


# Dead peers are found within ~40 s (a ping every 30 s, 10 s to answer) so their streams are released;
# connections idle for 10 minutes are closed; clients may ping every 10 s, even without calls.
KEEPALIVE_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.max_connection_idle_ms", 600_000),
)


def guard_interceptor(settings: Any) -> GuardInterceptor:
    """The interceptor for a server configured by ``settings`` (an :class:`ordo.config.Settings`)."""
    exempt = frozenset(i.strip() for i in settings.rate_limit_exempt.split(",") if i.strip())
    return GuardInterceptor(
        RateLimiter(settings.effective_rate_limit, exempt),
        StreamSlots(total=settings.max_streams, per_client=settings.max_streams_per_client),
        settings.stream_max_seconds,
    )
