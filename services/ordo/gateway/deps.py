"""FastAPI dependencies every router uses: the gRPC client, the settings and the SSE stream slots.

Why dependencies instead of closures: routes are top-level functions in one module per OpenAPI tag, so they
can be read, tested and type-checked on their own; ``create_app`` stores these three on ``app.state`` once and
each route asks for what it needs. The functions are ``async`` so FastAPI resolves them on the event loop
(a plain ``def`` dependency would cost a thread-pool hop per request for an attribute read).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ordo.client import OrdoClient
from ordo.config import Settings
from ordo.fair_use import StreamSlots


async def _client(request: Request) -> OrdoClient:
    return request.app.state.client


async def _settings(request: Request) -> Settings:
    return request.app.state.client.settings


async def _sse_slots(request: Request) -> StreamSlots:
    return request.app.state.sse_slots


Client = Annotated[OrdoClient, Depends(_client)]
"""The gRPC client the gateway calls the services with (the caller's own key rides on it per request)."""
AppSettings = Annotated[Settings, Depends(_settings)]
SseSlots = Annotated[StreamSlots, Depends(_sse_slots)]
