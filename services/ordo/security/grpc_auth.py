"""gRPC: the server interceptor that enforces the policy table, and the client side that sends the key.

Authentication runs inside the wrapped handler (on the RPC's worker thread), not in
``intercept_service``, which grpcio calls on its single polling thread: a key-store read there would stall
every other call. The principal is set as the context variable for the handler's whole life, streams
included, so servicers and the rate limiter read it with ``current_principal()``.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from ordo.errors import OrdoError
from ordo.security.audit import failed_attempt
from ordo.security.authenticator import Authenticator, bearer
from ordo.security.policy import grpc_access
from ordo.security.principal import ANONYMOUS, Principal, _current


def _metadata(context: grpc.ServicerContext) -> dict[str, str]:
    return {k.lower(): v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}


class AuthInterceptor(grpc.ServerInterceptor):
    def __init__(self, authenticator: Authenticator) -> None:
        self.auth = authenticator

    def _authorize(self, method: str, context: grpc.ServicerContext) -> Principal:
        from ordo.grpc_api.status import abort, code_for

        access = grpc_access(method)
        try:
            if access == "public":
                return self.auth.principal("") if not self.auth.required else ANONYMOUS
            principal = self.auth.principal(bearer(_metadata(context).get("authorization")))
            self.auth.check(principal, access, method)
            return principal
        except OrdoError as exc:
            failed_attempt("grpc", method, exc.reason, peer=context.peer())
            abort(context, code_for(exc), exc.message, exc.reason)

    def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None], details: Any
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(details)
        if handler is None:
            return None
        method: str = details.method
        authorize = self._authorize
        inner = _behaviour(handler, method)

        if handler.response_streaming:

            def streaming(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                token = _current.set(authorize(method, context))
                try:
                    yield from inner(request, context)
                finally:
                    _reset(token)

            behavior: Callable[..., Any] = streaming
        else:

            def unary(request: Any, context: grpc.ServicerContext) -> Any:
                token = _current.set(authorize(method, context))
                try:
                    return inner(request, context)
                finally:
                    _reset(token)

            behavior = unary
        kind = (
            ("stream" if handler.request_streaming else "unary")
            + "_"
            + ("stream" if handler.response_streaming else "unary")
        )
        factory = getattr(grpc, f"{kind}_rpc_method_handler")
        return factory(
            behavior,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _behaviour(handler: grpc.RpcMethodHandler, method: str) -> Callable[[Any, grpc.ServicerContext], Any]:
    """The one behaviour a method handler carries (grpc's types make each of the four optional)."""
    if handler.response_streaming:
        inner = handler.unary_stream or handler.stream_stream
    else:
        inner = handler.unary_unary or handler.stream_unary
    if inner is None:  # never from grpc's own handler factories; refuse rather than skip the check
        raise TypeError(f"the handler of {method} has no behaviour to authorize")
    return inner


def _reset(token: contextvars.Token[Principal | None]) -> None:
    # A stream closed from another context cannot reset; the thread's next request sets its own anyway.
    with contextlib.suppress(ValueError):
        _current.reset(token)


# --- client side -----------------------------------------------------------------------------------
# The gateway forwards each HTTP caller's key: it sets this for the request, the channel adds it.
forwarded_key: contextvars.ContextVar[str | None] = contextvars.ContextVar("ordo_forwarded_key", default=None)


class _ClientCallDetails(grpc.ClientCallDetails):  # type: ignore[misc]
    def __init__(self, details: Any, metadata: tuple[tuple[str, str | bytes], ...]) -> None:
        self.method = details.method
        self.timeout = details.timeout
        self.metadata = metadata
        self.credentials = details.credentials
        self.wait_for_ready = getattr(details, "wait_for_ready", None)
        self.compression = getattr(details, "compression", None)


class KeyInterceptor(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Sends the forwarded key of the current request (gateway), else the configured ``ORDO_API_KEY``.
    An interceptor rather than call credentials because those are refused on plaintext channels, and a
    loopback stack without TLS still needs keys when auth is on."""

    def __init__(self, default_key: str) -> None:
        self.default_key = default_key

    def _details(self, details: Any) -> Any:
        key = forwarded_key.get() or self.default_key
        if not key:
            return details
        kept = tuple((k, v) for k, v in (details.metadata or ()) if k != "authorization")
        return _ClientCallDetails(details, (*kept, ("authorization", f"Bearer {key}")))

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation: Any, details: Any, request_iterator: Any) -> Any:
        return continuation(self._details(details), request_iterator)

    def intercept_stream_stream(self, continuation: Any, details: Any, request_iterator: Any) -> Any:
        return continuation(self._details(details), request_iterator)
