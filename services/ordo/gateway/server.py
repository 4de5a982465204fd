"""Runs the gateway with uvicorn: in the foreground (`ordo gateway`) or on a thread beside the gRPC
servers (`ordo up`)."""

from __future__ import annotations

import threading

import uvicorn

from ordo.config import Settings
from ordo.gateway.app import create_app
from ordo.security.binding import check_binds
from ordo.security.tls import uvicorn_ssl


def make_server(settings: Settings, host: str, port: int) -> uvicorn.Server:
    check_binds(settings, host)  # no exposed listener without auth
    config = uvicorn.Config(
        create_app(settings), host=host, port=port, log_level="warning", access_log=False, **uvicorn_ssl(settings)
    )
    return uvicorn.Server(config)


def serve_forever(settings: Settings, host: str, port: int) -> None:
    make_server(settings, host, port).run()


class GatewayThread:
    """The gateway on a daemon thread; ``stop`` asks uvicorn to finish and waits briefly."""

    def __init__(self, settings: Settings, host: str, port: int) -> None:
        self.server = make_server(settings, host, port)
        # uvicorn only installs signal handlers on the main thread, so the host process keeps its own.
        self.thread = threading.Thread(target=self.server.run, name="ordo-gateway", daemon=True)

    def start(self, timeout: float = 15.0) -> bool:
        """True once serving; False when it could not start (e.g. the port is taken): the gRPC stack is
        still useful without its HTTP face, so the caller warns rather than failing."""
        self.thread.start()
        pause = threading.Event()
        for _ in range(int(timeout / 0.05)):
            if self.server.started or not self.thread.is_alive():
                break
            pause.wait(0.05)
        return bool(self.server.started)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)
