"""The HTTP gateway against the real embedded stack (`ordo up` with the tiny CLIP), over real HTTP:
uploads streamed to gRPC, job progress as server-sent events, search, content with caching headers, and
gRPC status → HTTP status mapping."""

from __future__ import annotations

import hashlib
import io
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image

from ordo.config import Settings
from ordo.gateway.server import GatewayThread
from ordo.launch import free_port
from tests.e2e.conftest import stop_stack
from tests.fixtures.gateway_stack import GatewayStack, start_gateway_stack


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, tiny_clip_dir: Path) -> Iterator[GatewayStack]:
    g = start_gateway_stack(tmp_path_factory.mktemp("gateway-data"), tiny_clip_dir)
    yield g
    stop_stack(g.stack)


@pytest.fixture(scope="module")
def http(gw: GatewayStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gw.base_url, timeout=60) as client:
        yield client


def sse_events(http: httpx.Client, url: str) -> list[tuple[str, dict]]:
    events: list[tuple[str, dict]] = []
    with http.stream("GET", url) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        kind = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((kind, json.loads(line.removeprefix("data: "))))
    return events


@pytest.fixture(scope="module")
def uploaded(http: httpx.Client, coco_images: list[Path]) -> dict:
    """Three photos, one of them twice (from a 'folder'), and a text file dressed as a JPEG."""
    photos = coco_images[:3]
    files = [("files", (p.name, p.read_bytes(), "image/jpeg")) for p in photos]
    files.append(("files", ("trip/again.jpg", photos[0].read_bytes(), "image/jpeg")))
    files.append(("files", ("notes.jpg", b"this is not an image", "image/jpeg")))
    response = http.post("/api/uploads", files=files)
    assert response.status_code == 200, response.text
    body = response.json()
    events = sse_events(http, f"/api/jobs/{body['job']['job_id']}/events")
    return {"body": body, "events": events, "photos": photos}


def test_upload_reports_each_file(uploaded: dict) -> None:
    results = uploaded["body"]["results"]
    assert [r["outcome"] for r in results] == [
        "FILE_OUTCOME_NEW",
        "FILE_OUTCOME_NEW",
        "FILE_OUTCOME_NEW",
        "FILE_OUTCOME_DUPLICATE",
        "FILE_OUTCOME_FAILED",
    ]
    expected_ids = [hashlib.sha256(p.read_bytes()).hexdigest() for p in uploaded["photos"]]
    assert [r["asset_id"] for r in results[:3]] == expected_ids
    assert results[3]["asset_id"] == expected_ids[0]
    assert results[3]["source_uri"] == "upload://trip/again.jpg"  # the folder path survives
    assert results[3]["file_name"] == "again.jpg"
    assert results[4]["failure"]["reason"] == "NOT_AN_IMAGE"


def test_job_progress_streams_until_the_job_ends(uploaded: dict) -> None:
    events = uploaded["events"]
    kinds = [k for k, _ in events]
    assert kinds[-1] == "end" and set(kinds[:-1]) == {"job"}
    final = events[-2][1]
    assert final["state"] == "JOB_STATE_PARTIALLY_SUCCEEDED"
    assert (final["succeeded"], final["duplicates"], final["failed"], final["pending"]) == ("3", "1", "1", "0")


def test_search_by_text_image_and_asset(http: httpx.Client, uploaded: dict) -> None:
    ids = {hashlib.sha256(p.read_bytes()).hexdigest() for p in uploaded["photos"]}
    hits = http.get("/api/search", params={"q": "a photo", "k": 10}).json()["hits"]
    assert {h["asset"]["asset_id"] for h in hits} == ids
    assert [h["rank"] for h in hits] == [1, 2, 3]

    query = uploaded["photos"][1]
    by_image = http.post("/api/search/image", files={"image": (query.name, query.read_bytes())}, data={"top_k": "2"})
    assert by_image.status_code == 200, by_image.text
    top = by_image.json()["hits"][0]
    assert top["asset"]["asset_id"] == hashlib.sha256(query.read_bytes()).hexdigest()
    assert top["score"] == pytest.approx(1.0, abs=1e-3)

    like = http.post("/api/search", json={"asset_id": top["asset"]["asset_id"], "top_k": 10}).json()["hits"]
    assert len(like) == 2 and top["asset"]["asset_id"] not in {h["asset"]["asset_id"] for h in like}

    kinds = http.post("/api/search", json={"query": "x", "filter": {"kinds": ["text"]}}).json()["hits"]
    assert kinds == []  # only whole-image samples exist


def test_thumbnail_and_original_are_cached_by_content(http: httpx.Client, uploaded: dict) -> None:
    photo = uploaded["photos"][0]
    asset_id = hashlib.sha256(photo.read_bytes()).hexdigest()
    thumb = http.get(f"/api/assets/{asset_id}/thumbnail")
    assert thumb.status_code == 200
    assert thumb.headers["content-type"] == "image/jpeg"
    assert thumb.headers["etag"] == f'"{asset_id}"'
    assert "immutable" in thumb.headers["cache-control"] and "max-age=31536000" in thumb.headers["cache-control"]
    assert int(thumb.headers["content-length"]) == len(thumb.content)
    assert max(Image.open(io.BytesIO(thumb.content)).size) <= 256

    again = http.get(f"/api/assets/{asset_id}/thumbnail", headers={"If-None-Match": f'"{asset_id}"'})
    assert again.status_code == 304 and again.content == b""

    original = http.get(f"/api/assets/{asset_id}/original")
    assert original.status_code == 200 and original.content == photo.read_bytes()
    assert original.headers["content-type"] == "image/jpeg"

    detail = http.get(f"/api/assets/{asset_id}").json()
    assert detail["asset"]["state"] == "ASSET_STATE_READY"
    assert detail["samples"][0]["kind"] == "SAMPLE_KIND_IMAGE"


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "status", "reason"),
    [
        ("GET", "/api/assets/" + "0" * 64, {}, 404, "ASSET_NOT_FOUND"),
        ("GET", "/api/assets/not-an-id/thumbnail", {}, 400, "BAD_ASSET_ID"),
        ("GET", "/api/jobs/no-such-job/events", {}, 404, None),
        ("GET", "/api/jobs/no-such-job", {}, 404, None),
        ("POST", "/api/search", {"json": {}}, 400, "BAD_SEARCH"),
        ("POST", "/api/search", {"json": {"query": ""}}, 400, None),
        ("POST", "/api/search", {"json": {"query": "x", "top_k": 0}}, 400, "BAD_REQUEST"),
        ("GET", "/api/search", {}, 400, "BAD_REQUEST"),
        ("POST", "/api/uploads", {"content": b"raw", "headers": {"content-type": "image/jpeg"}}, 400, "NOT_MULTIPART"),
        ("POST", "/api/uploads", {"data": {"note": "no files"}, "files": {}}, 400, None),
    ],
)
def test_errors_map_to_http_codes_with_the_message(
    http: httpx.Client, method: str, url: str, kwargs: dict, status: int, reason: str | None
) -> None:
    response = http.request(method, url, **kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["detail"]  # the service's human message
    if reason:
        assert body["reason"] == reason


def test_services_down_is_503_with_a_readable_message() -> None:
    """A gateway whose gRPC services are not there answers 503 with a message saying so."""
    port = free_port()
    gateway = GatewayThread(Settings(address=f"127.0.0.1:{free_port()}"), "127.0.0.1", port)
    assert gateway.start()
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/api/search", params={"q": "dog"}, timeout=30)
    finally:
        gateway.stop()
    assert response.status_code == 503
    assert response.json()["code"] == "UNAVAILABLE"
    assert "cannot be reached" in response.json()["detail"]


def test_openapi_docs_describe_the_routes(http: httpx.Client) -> None:
    assert http.get("/docs").status_code == 200
    spec = http.get("/openapi.json").json()
    paths = spec["paths"]
    assert paths["/api/search"]["post"]["responses"]["400"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorBody"
    }
    assert not [p for p, ops in paths.items() for op in ops.values() if "422" in op["responses"]]
    for path in ("/api/uploads", "/api/jobs/{job_id}/events", "/api/search", "/api/assets/{asset_id}/thumbnail"):
        assert path in paths
    page = http.get("/")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-cache"
    bundle = next(part.split('"')[0] for part in page.text.split('src="')[1:] if part.startswith("/assets/"))
    assert "immutable" in http.get(bundle).headers["cache-control"]
    status = http.get("/api/status").json()
    assert status["services"] == {"ingest": "SERVING", "search": "SERVING", "analysis": "SERVING"}
    ops = httpx.get(status["ops_url"], timeout=5).json()  # the ops view the Jobs page links and reads
    assert ops["dead_letters"]["count"] == 0 and "queue" in ops


def test_ordo_gateway_runs_alone_in_front_of_the_services(gw: GatewayStack) -> None:
    """`ordo gateway` (what compose runs) serves the same API from its own process."""
    port = free_port()
    env = {**gw.stack.env, "ORDO_HTTP_PORT": str(port)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ordo.cli.main", "gateway"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/api/status", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, "ordo gateway did not start"
                time.sleep(0.2)
        assert status.status_code == 200
        assert status.json()["services"]["search"] == "SERVING"
        assert httpx.get(f"http://127.0.0.1:{port}/").status_code in (200, 503)  # the UI, or how to build it
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_an_upload_cut_off_midway_ingests_no_half_file(
    http: httpx.Client, gw: GatewayStack, coco_images: list[Path]
) -> None:
    """The client disappears in the middle of the second file: the gRPC stream is cancelled, so that file
    is never stored as if it were whole (the first, complete one may be)."""
    whole, cut = coco_images[10], coco_images[11]
    request = httpx.Request(
        "POST", "http://x/api/uploads", files=[("files", (p.name, p.read_bytes(), "image/jpeg")) for p in (whole, cut)]
    )
    body = request.read()
    half = body.index(cut.read_bytes()[:64]) + len(cut.read_bytes()) // 2
    before = int(http.get("/api/status").json()["stats"]["asset_count"])
    url = urlsplit(gw.base_url)
    with socket.create_connection((url.hostname, url.port)) as sock:
        head = (
            f"POST /api/uploads HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: {request.headers['content-type']}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        sock.sendall(head.encode() + body[:half])
        time.sleep(1.0)  # let the gateway forward what it has
    time.sleep(1.0)
    assert http.get(f"/api/assets/{hashlib.sha256(cut.read_bytes()).hexdigest()}").status_code == 404
    after = int(http.get("/api/status").json()["stats"]["asset_count"])
    assert after - before <= 1
    listed = http.get("/api/assets", params={"page_size": 1000}).json()["assets"]
    assert not [a for a in listed if a["file_name"] == cut.name]
