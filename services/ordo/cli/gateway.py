"""`ordo gateway`: the HTTP gateway (REST, /docs, web UI) alone, in front of services running elsewhere."""

from __future__ import annotations

import click

from ordo.cli.common import check_listeners, console, settings_or_fail


@click.command()
@click.option("--host", default=None, help="Interface to bind (default ORDO_HOST).")
@click.option("--port", type=int, default=None, help="HTTP port (default ORDO_HTTP_PORT, 8080).")
def gateway(host: str | None, port: int | None) -> None:
    """Run the HTTP gateway: REST + server-sent events over the gRPC services at ORDO_ADDRESS, the web UI at /
    and the API docs at /docs."""
    from ordo.gateway.server import serve_forever

    settings = settings_or_fail()
    host = host or settings.host
    port = port if port is not None else settings.http_port
    check_listeners(settings, host)
    scheme = "https" if settings.tls_cert else "http"
    console.print(f"Ordo gateway on {scheme}://{host}:{port} (docs at /docs) → gRPC {settings.address}")
    serve_forever(settings, host, port)


COMMANDS = [gateway]
