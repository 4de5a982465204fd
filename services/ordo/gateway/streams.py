"""Reading blocking gRPC streams from async routes, and the proto3 JSON the routes answer with.

Blocking waits on gRPC streams get their own threads: an SSE client may wait seconds for its next event, and
the loop's default executor (cpu + 4 threads) would let a few of them starve thumbnail requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

STREAM_THREADS = ThreadPoolExecutor(max_workers=256, thread_name_prefix="ordo-gateway-stream")
DONE = object()
"""What :func:`next_item` answers once a stream has ended."""


def to_json(message: Message) -> dict[str, Any]:
    """The proto3 JSON mapping with the ``.proto`` field names (int64 as strings), every field present."""
    return MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


async def next_item(iterator: Iterator[Any]) -> Any:
    """The next item of a blocking gRPC stream (or :data:`DONE`), without blocking the event loop."""
    return await asyncio.get_running_loop().run_in_executor(STREAM_THREADS, next, iterator, DONE)
