"""An idle timeout for client streams: a client that opens an upload and then sends nothing is cut.

Why: gRPC's sync server reads a client stream with a blocking ``next()``; a client that opened
``UploadImages`` and went silent (or stopped mid-file) held its handler thread and its stream slot until
the connection died, and keepalive pings do not help while the client's side is alive but idle. Here a
reader thread pulls the messages into a small queue and the handler waits on the queue with a timeout,
so the handler can end the stream cleanly: the files completed before it keep their job and outcomes, and
the slot is released. When the handler returns, gRPC ends the call and the reader's ``next()`` returns.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")

_QUEUE_DEPTH = 4  # messages read ahead of the handler: a little pipelining, memory stays bounded
_PUT_POLL_S = 0.5


class StreamIdle(Exception):
    """No message arrived for ``idle_s`` seconds."""

    def __init__(self, idle_s: float) -> None:
        super().__init__(f"no data for {idle_s:g} s")
        self.idle_s = idle_s


def with_idle_timeout(messages: Iterator[T], idle_s: float, name: str = "ordo-stream-reader") -> Iterator[T]:
    """The items of ``messages``; raises :class:`StreamIdle` when none arrives within ``idle_s``.

    Errors of the underlying iterator (the client cancelled) are re-raised in the caller's thread."""
    pipe: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=_QUEUE_DEPTH)
    stop = threading.Event()

    def put(kind: str, item: object) -> bool:
        while not stop.is_set():
            try:
                pipe.put((kind, item), timeout=_PUT_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for message in messages:
                if not put("item", message):
                    return
            put("end", None)
        except BaseException as exc:  # handed to the handler, which decides what it means
            put("error", exc)

    threading.Thread(target=read, name=name, daemon=True).start()
    try:
        while True:
            try:
                kind, item = pipe.get(timeout=idle_s)
            except queue.Empty:
                raise StreamIdle(idle_s) from None
            if kind == "end":
                return
            if kind == "error":
                assert isinstance(item, BaseException)
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
