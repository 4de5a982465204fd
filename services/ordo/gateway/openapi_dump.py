"""Prints the gateway's OpenAPI document: ``python -m ordo.gateway.openapi_dump > web/src/openapi.json``.

Why: the web UI's TypeScript types (``web/src/api-types.ts``) are generated from this document by
``openapi-typescript`` instead of being copied by hand, and ``tests/unit/test_web_api_types.py`` fails when the
committed copy no longer matches the routes. The output is deterministic (sorted keys, default settings, no
services contacted: the client's channels connect lazily).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from ordo.config import Settings
from ordo.gateway.app import create_app


def openapi_document() -> dict[str, Any]:
    return create_app(Settings()).openapi()  # pyright: ignore[reportCallIssue]  # fields come from the env


def render() -> str:
    return json.dumps(openapi_document(), indent=1, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
