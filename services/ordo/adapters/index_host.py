"""A stand-in for a Qdrant server on a machine that has none: one process hosts qdrant-client local mode
and lends it to the others (services, several workers) over a loopback socket.

Why it exists: no Qdrant server binary can be installed here (only the client and the in-process Edge
engine), and both in-process engines let exactly one process open a folder. ``make up-distributed``
and the fault tests still need *several* processes (services + two workers) writing to one index, so
``ordo index-host`` opens the folder once and serves the same ``VectorIndex`` calls to everyone.

What it is not: a production server. It speaks Python's ``multiprocessing.managers`` protocol
(pickle, authenticated by a shared key), so it binds to loopback only and trusts its clients; search
is qdrant-client local mode's exact numpy scan. In compose, ``ORDO_QDRANT_URL`` names the real Qdrant
and this module is never used. Selected with ``ORDO_QDRANT_URL=ordo-index://127.0.0.1:PORT``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import threading
from collections.abc import Iterator
from multiprocessing.managers import BaseManager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ordo import errors
from ordo.errors import InvalidInput, Unavailable

log = logging.getLogger(__name__)

SCHEME = "ordo-index"
DEFAULT_PORT = 6399
#: Shared secret of the manager protocol. Loopback-only, so a fixed default is acceptable; set
#: ``ORDO_INDEX_HOST_KEY`` on both sides to use another.
_KEY_ENV = "ORDO_INDEX_HOST_KEY"
_DEFAULT_KEY = b"ordo-index-host"


def _authkey() -> bytes:
    return os.environ.get(_KEY_ENV, "").encode() or _DEFAULT_KEY


def parse_url(url: str) -> tuple[str, int]:
    """``ordo-index://127.0.0.1:6399`` → (host, port); only loopback hosts are accepted."""
    parts = urlsplit(url)
    if parts.scheme != SCHEME or not parts.hostname:
        raise InvalidInput(f"not an index-host URL: {url!r} (expected {SCHEME}://127.0.0.1:PORT)")
    host = parts.hostname
    if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
        raise InvalidInput(f"the index host is loopback-only (pickle protocol); got {host}")
    return host, parts.port or DEFAULT_PORT


class _Host:
    """The hosted side: one qdrant-client local-mode client, one index object per collection, and a
    lock, because local mode is not safe for concurrent calls (each client connection is a thread)."""

    def __init__(self, path: str) -> None:
        from qdrant_client import QdrantClient

        self._client = QdrantClient(location=":memory:") if path == ":memory:" else QdrantClient(path=path)
        self._indexes: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _index(self, collection: str) -> Any:
        from ordo.adapters.qdrant_index import QdrantServerIndex

        if collection not in self._indexes:
            self._indexes[collection] = QdrantServerIndex(self._client, collection, location="the index host")
        return self._indexes[collection]

    def call(self, collection: str, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
        """Runs ``index.method(*args, **kwargs)``. Returns ("ok", value) or ("error", class, message,
        reason): Ordo errors pickle without their reason, so they travel as plain fields."""
        if method.startswith("_") or method == "close":
            return ("error", "InvalidInput", f"{method} cannot be called on the index host", "INVALID_ARGUMENT")
        with self._lock:
            try:
                index = self._index(collection)
                if method == "dim":
                    return ("ok", index.dim)
                value = getattr(index, method)(*args, **kwargs)
                if isinstance(value, Iterator):  # generators (scroll) cannot cross processes
                    value = list(value)
                return ("ok", value)
            except errors.OrdoError as exc:
                return ("error", type(exc).__name__, exc.message, exc.reason)

    def close(self) -> None:
        self._client.close()


class _Manager(BaseManager):
    pass


def serve(path: str, host: str = "127.0.0.1", port: int = DEFAULT_PORT, ready: threading.Event | None = None) -> None:
    """Serve the index at ``path`` until the process is stopped (``ordo index-host``)."""
    parse_url(f"{SCHEME}://{host}:{port}")  # loopback check
    if path != ":memory:":
        Path(path).mkdir(parents=True, exist_ok=True)
    hosted = _Host(path)
    _Manager.register("index_host", callable=lambda: hosted, exposed=("call",))
    manager = _Manager(address=(host, port), authkey=_authkey())
    server = manager.get_server()
    log.info("index host on %s:%d serving %s", host, port, path)
    if ready is not None:
        ready.set()
    try:
        server.serve_forever()
    finally:
        hosted.close()


class _Client(BaseManager):
    pass


_Client.register("index_host")


class HostedVectorIndex:
    """``VectorIndex`` whose calls run in the index host. Any method of the hosted adapter works (the
    port grows; this forwards by name). The host being down is ``Unavailable``, as for a real server."""

    backend = "qdrant"

    def __init__(self, url: str, collection: str) -> None:
        self.url = url
        self.collection = collection
        self._address = parse_url(url)
        self._local = threading.local()

    def _proxy(self) -> Any:
        proxy = getattr(self._local, "proxy", None)
        if proxy is None:
            manager = _Client(address=self._address, authkey=_authkey())
            try:
                manager.connect()
            except OSError as exc:
                raise Unavailable(
                    f"the index host at {self.url} is unreachable: {exc}", reason="VECTOR_INDEX_UNAVAILABLE"
                ) from exc
            proxy = manager.index_host()
            self._local.proxy = proxy
        return proxy

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            reply = self._proxy().call(self.collection, method, args, kwargs)
        except (OSError, EOFError) as exc:
            self._local.proxy = None  # reconnect next time: the host may come back
            raise Unavailable(
                f"the index host at {self.url} is unreachable: {exc}", reason="VECTOR_INDEX_UNAVAILABLE"
            ) from exc
        if reply[0] == "ok":
            return reply[1]
        _, name, message, reason = reply
        cls = getattr(errors, name, errors.OrdoError)
        raise cls(message, reason=reason)

    @property
    def dim(self) -> int | None:
        return self._call("dim")

    def __getattr__(self, name: str) -> Any:
        from ordo.adapters.qdrant_index import QdrantServerIndex

        if name.startswith("_") or not callable(getattr(QdrantServerIndex, name, None)):
            raise AttributeError(name)  # so getattr(index, "optimize", None) sees what the host lacks
        return lambda *args, **kwargs: self._call(name, *args, **kwargs)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._local.proxy = None
