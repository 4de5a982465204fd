"""TLS for gRPC (server, optional mutual TLS, client channels) and HTTPS for the gateway.

Files, not inline PEM, so certificates can be rotated by the platform (cert-manager, a mounted secret)
without touching Ordo's configuration. A half-configured TLS setup fails at start, never falls back to
plaintext.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc

from ordo.config import Settings
from ordo.errors import InvalidInput, Reason


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {what} {path}: {exc.strerror or exc}", reason=Reason.BAD_TLS_CONFIG) from exc


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """TLS credentials when ORDO_TLS_CERT is set (mTLS when ORDO_TLS_CLIENT_CA is too), else None."""
    if not (settings.tls_cert or settings.tls_key or settings.tls_client_ca):
        return None
    if not (settings.tls_cert and settings.tls_key):
        raise InvalidInput("TLS needs both ORDO_TLS_CERT and ORDO_TLS_KEY", reason=Reason.BAD_TLS_CONFIG)
    pair = [(_read(settings.tls_key, "TLS key"), _read(settings.tls_cert, "TLS certificate"))]
    if settings.tls_client_ca:
        ca = _read(settings.tls_client_ca, "client CA")
        return grpc.ssl_server_credentials(pair, root_certificates=ca, require_client_auth=True)
    return grpc.ssl_server_credentials(pair)


def channel_credentials(settings: Settings) -> grpc.ChannelCredentials | None:
    """Client TLS when ORDO_TLS_CA is set (with a client certificate for mTLS when given)."""
    if not settings.tls_ca:
        return None
    cert = key = None
    if settings.tls_client_cert or settings.tls_client_key:
        if not (settings.tls_client_cert and settings.tls_client_key):
            raise InvalidInput("mTLS needs ORDO_TLS_CLIENT_CERT and ORDO_TLS_CLIENT_KEY", reason=Reason.BAD_TLS_CONFIG)
        cert = _read(settings.tls_client_cert, "client certificate")
        key = _read(settings.tls_client_key, "client key")
    return grpc.ssl_channel_credentials(_read(settings.tls_ca, "CA"), private_key=key, certificate_chain=cert)


def make_channel(address: str, settings: Settings, options: list[tuple[str, Any]]) -> grpc.Channel:
    """A channel to ``address`` that uses TLS when configured and sends the API key on every call."""
    from ordo.security.grpc_auth import KeyInterceptor

    credentials = channel_credentials(settings)
    if credentials is not None:
        channel = grpc.secure_channel(address, credentials, options=options)
    else:
        channel = grpc.insecure_channel(address, options=options)
    return grpc.intercept_channel(channel, KeyInterceptor(settings.api_key))


def uvicorn_ssl(settings: Settings) -> dict[str, Any]:
    """uvicorn's HTTPS options for the gateway (same certificate as gRPC)."""
    if not (settings.tls_cert and settings.tls_key):
        return {}
    import ssl

    options: dict[str, Any] = {"ssl_certfile": settings.tls_cert, "ssl_keyfile": settings.tls_key}
    if settings.tls_client_ca:
        options.update(ssl_ca_certs=settings.tls_client_ca, ssl_cert_reqs=ssl.CERT_REQUIRED)
    return options
