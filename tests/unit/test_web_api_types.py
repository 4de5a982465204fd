"""The web UI's API types are generated from the gateway's OpenAPI document and must not go stale.

``web/src/openapi.json`` is what ``python -m ordo.gateway.openapi_dump`` prints for the current routes, and
``web/src/api-types.ts`` is what ``openapi-typescript`` makes of it (checked when ``web/node_modules`` is
installed, as after ``make web``). ``make web-api`` regenerates both; ``make web-api-check`` is the CI form.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ordo.gateway.openapi_dump import render

WEB = Path(__file__).resolve().parents[2] / "web"
STALE = "stale: run `make web-api` (or see tests/unit/test_web_api_types.py) and commit"


def test_the_committed_openapi_document_matches_the_routes() -> None:
    assert (WEB / "src" / "openapi.json").read_text() == render(), f"web/src/openapi.json is {STALE}"


def test_the_generated_types_match_the_document() -> None:
    generator = WEB / "node_modules" / ".bin" / "openapi-typescript"
    if not generator.exists() or shutil.which("node") is None:
        pytest.skip("web/node_modules is not installed (make web installs it)")
    made = subprocess.run(
        [str(generator), "src/openapi.json"], cwd=WEB, capture_output=True, text=True, check=True, timeout=120
    ).stdout
    assert (WEB / "src" / "api-types.ts").read_text() == made, f"web/src/api-types.ts is {STALE}"
