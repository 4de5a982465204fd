"""The hooks servers call: interceptors and ports for gRPC, the bind check for every listener."""

from __future__ import annotations

import grpc

from ordo.config import Settings
from ordo.security.authenticator import Authenticator
from ordo.security.binding import check_binds
from ordo.security.grpc_auth import AuthInterceptor
from ordo.security.tls import server_credentials


def grpc_interceptors(settings: Settings) -> list[grpc.ServerInterceptor]:
    return [AuthInterceptor(Authenticator(settings))]


def bind_grpc(server: grpc.Server, settings: Settings, host: str, port: int) -> int:
    """Adds the listening port (TLS when configured); refuses an exposed bind without auth."""
    check_binds(settings, host)
    credentials = server_credentials(settings)
    address = f"{host}:{port}"
    if credentials is None:
        return server.add_insecure_port(address)
    return server.add_secure_port(address, credentials)
