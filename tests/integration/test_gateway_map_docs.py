"""The gateway's issue-16 routes at their boundary: the map-attributes route refuses hostile ids with Ordo's
400 body before any call, a services-down answer carries Ordo's words (no gRPC transport text), and the
offline docs assets are served (and nothing outside their folder is)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from ordo.config import Settings
from ordo.domain import SampleKind
from ordo.gateway.map_routes import sample_kind
from ordo.gateway.server import GatewayThread
from ordo.ids import sample_id_for
from ordo.launch import free_port


@pytest.fixture(scope="module")
def gateway_alone() -> Iterator[httpx.Client]:
    """A gateway whose services are not there (its gRPC address is a port nobody listens on)."""
    port = free_port()
    gateway = GatewayThread(Settings(address=f"127.0.0.1:{free_port()}"), "127.0.0.1", port)
    assert gateway.start()
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        yield client
    gateway.stop()


@pytest.mark.parametrize("run_id", ["r" * 65, "x" * 10_000])
def test_map_attributes_refuses_oversized_ids(gateway_alone: httpx.Client, run_id: str) -> None:
    response = gateway_alone.get(f"/api/runs/{run_id}/map-attributes")
    assert response.status_code == 400
    assert response.json()["reason"] == "BAD_REQUEST" and "run_id" in response.json()["detail"]


@pytest.mark.parametrize("run_id", ["%00", "..%2F..%2Fetc", "'; DROP TABLE runs; --", "%E2%80%AE%00"])
def test_map_attributes_hostile_ids_are_never_a_5xx_with_transport_text(
    gateway_alone: httpx.Client, run_id: str
) -> None:
    response = gateway_alone.get(f"/api/runs/{run_id}/map-attributes")
    # Nothing behind the gateway: 503 with Ordo's sentence, or 4xx/404 for a path the router cannot match.
    assert response.status_code in (400, 404, 503), response.text
    body = response.json()
    assert body.get("reason") and body.get("detail")
    assert "failed to connect" not in body["detail"] and "ipv4" not in body["detail"]


def test_services_down_says_so_in_ordos_words(gateway_alone: httpx.Client) -> None:
    response = gateway_alone.get("/api/runs/p1/map-attributes")
    assert response.status_code == 503
    body = response.json()
    assert body["reason"] == "SERVICE_UNAVAILABLE" and body["code"] == "UNAVAILABLE"
    assert "cannot be reached" in body["detail"] and "failed to connect" not in body["detail"]


def test_docs_assets_are_served_locally_and_confined(gateway_alone: httpx.Client) -> None:
    page = gateway_alone.get("/docs").text
    assert "/docs-assets/swagger-ui-bundle.js" in page and "cdn" not in page.lower()
    assert "/docs-assets/redoc.standalone.js" in gateway_alone.get("/redoc").text
    script = gateway_alone.get("/docs-assets/swagger-ui-bundle.js")
    assert script.status_code == 200 and len(script.content) > 100_000
    assert gateway_alone.get("/docs-assets/..%2F..%2F__init__.py").status_code == 404
    assert gateway_alone.get("/docs-assets/../core.py").status_code == 404


def test_sample_kind_reads_the_deterministic_sample_id() -> None:
    asset = "ab" * 32
    assert sample_kind(asset, sample_id_for(asset, SampleKind.IMAGE)) == "image"
    assert sample_kind(asset, sample_id_for(asset, SampleKind.OBJECT, 3)) == "object"
    assert sample_kind(asset, sample_id_for(asset, SampleKind.TEXT, 0)) == "text"
    assert sample_kind(asset, sample_id_for(asset, SampleKind.TEXT, 50)) == "region"  # past the indexes tried
    assert sample_kind(asset, "not-a-sample") == "region"
