"""The library routes (issue 16) over real HTTP against the real embedded stack: a streamed zip of originals,
bounded bulk delete, the duplicate-groups dry run and its keep-best rules, and what each does with hostile input
(too many ids, ids that are paths, oversized zips, bad rules)."""

from __future__ import annotations

import hashlib
import io
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from ordo.config import Settings
from ordo.gateway import library_routes
from ordo.gateway.server import GatewayThread
from ordo.launch import free_port
from tests.e2e.conftest import stop_stack
from tests.fixtures.gateway_stack import GatewayStack, start_gateway_stack

FINAL = {"JOB_STATE_SUCCEEDED", "JOB_STATE_PARTIALLY_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"}


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, tiny_clip_dir: Path) -> Iterator[GatewayStack]:
    g = start_gateway_stack(tmp_path_factory.mktemp("library-data"), tiny_clip_dir)
    yield g
    stop_stack(g.stack)


@pytest.fixture(scope="module")
def http(gw: GatewayStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gw.base_url, timeout=60) as client:
        yield client


def half_size_copy(photo: Path) -> bytes:
    """A re-encoded, half-size copy: other bytes (a new asset), the same picture (a near-duplicate)."""
    image = Image.open(photo).convert("RGB")
    image = image.resize((image.width // 2, image.height // 2))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=92)
    return out.getvalue()


def upload(http: httpx.Client, files: list[tuple[str, bytes]]) -> list[str]:
    response = http.post("/api/uploads", files=[("files", (name, data, "image/jpeg")) for name, data in files])
    assert response.status_code == 200, response.text
    body = response.json()
    deadline = time.monotonic() + 120
    while http.get(f"/api/jobs/{body['job']['job_id']}").json()["state"] not in FINAL:
        assert time.monotonic() < deadline, "the upload job did not finish"
        time.sleep(0.2)
    return [r["asset_id"] for r in body["results"]]


@pytest.fixture(scope="module")
def library(http: httpx.Client, coco_images: list[Path]) -> dict:
    photos = coco_images[:4]
    # Two files share a name (from two folders), so the zip must rename one.
    files = [(p.name, p.read_bytes()) for p in photos] + [("copies/" + photos[0].name, half_size_copy(photos[0]))]
    ids = upload(http, files)
    return {"photos": photos, "ids": ids, "original": ids[0], "copy": ids[4]}


def test_zip_streams_the_originals_with_safe_unique_names(http: httpx.Client, library: dict) -> None:
    ids = [library["ids"][0], library["ids"][1], library["copy"]]
    response = http.post("/api/assets/zip", json={"asset_ids": ids})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert "attachment" in response.headers["content-disposition"]
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    names = archive.namelist()
    photo0 = library["photos"][0].name
    assert names[0] == photo0 and names[1] == library["photos"][1].name
    assert names[2] != photo0 and names[2].endswith(".jpg") and "/" not in names[2]  # renamed, folder dropped
    assert archive.read(names[0]) == library["photos"][0].read_bytes()
    assert hashlib.sha256(archive.read(names[2])).hexdigest() == library["copy"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"asset_ids": []}, "BAD_REQUEST"),
        ({"asset_ids": ["0" * 64] * 501}, "BAD_REQUEST"),  # over MAX_BATCH_IDS
        ({"asset_ids": ["../../etc/passwd"]}, "BAD_ASSET_ID"),
        ({"asset_ids": ["A" * 64]}, "BAD_ASSET_ID"),  # upper case is not an asset id
        ({"asset_ids": "0" * 64}, "BAD_REQUEST"),  # not a list
        ({"asset_ids": [{"$ne": 1}]}, "BAD_REQUEST"),
    ],
)
@pytest.mark.parametrize("route", ["/api/assets/zip", "/api/assets/batch-delete"])
def test_hostile_id_lists_get_a_clear_400(
    http: httpx.Client, library: dict, route: str, body: dict, reason: str
) -> None:
    response = http.post(route, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["reason"] == reason
    assert http.get(f"/api/assets/{library['ids'][1]}").status_code == 200  # nothing lost


def test_zip_of_an_unknown_asset_is_404(http: httpx.Client, library: dict) -> None:
    response = http.post("/api/assets/zip", json={"asset_ids": [library["ids"][1], "f" * 64]})
    assert response.status_code == 404
    assert response.json()["reason"] == "ASSET_NOT_FOUND"


def test_a_zip_over_the_byte_limit_is_refused_before_streaming(
    gw: GatewayStack, library: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A gateway in this process (so its limit can be lowered) in front of the same services."""
    monkeypatch.setattr(library_routes, "MAX_ZIP_BYTES", 1000)
    port = free_port()
    gateway = GatewayThread(Settings(address=gw.stack.address), "127.0.0.1", port)
    assert gateway.start(), "the gateway did not start"
    try:
        response = httpx.post(f"http://127.0.0.1:{port}/api/assets/zip", json={"asset_ids": library["ids"][:2]})
        assert response.status_code == 400
        assert response.json()["reason"] == "ZIP_TOO_LARGE"
        assert "at most 1000" in response.json()["detail"]
    finally:
        gateway.stop()


def test_capabilities_say_which_kinds_exist(http: httpx.Client) -> None:
    caps = http.get("/api/library/capabilities").json()
    assert caps["detect_objects"] is False and caps["read_text"] is False  # the test stack runs no processor
    assert caps["max_batch_ids"] == library_routes.MAX_BATCH_IDS


@pytest.mark.parametrize(
    "params",
    [
        {"rule": "newest"},
        {"min_similarity": "2"},
        {"min_similarity": "0"},
        {"page_size": "100000"},
        {"page_token": "x" * 65},
    ],
)
def test_duplicate_groups_refuse_bad_parameters(http: httpx.Client, params: dict) -> None:
    response = http.get("/api/duplicate-groups", params=params)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "INVALID_ARGUMENT"


def test_duplicates_dry_run_then_apply(http: httpx.Client, library: dict) -> None:
    original, copy = library["original"], library["copy"]
    plans = {}
    for rule in ("resolution", "size", "earliest"):
        response = http.get("/api/duplicate-groups", params={"rule": rule, "min_similarity": 0.9})
        assert response.status_code == 200, response.text
        plans[rule] = response.json()
    group = next(g for g in plans["resolution"]["groups"] if original in {a["asset_id"] for a in g["assets"]})
    assert {a["asset_id"] for a in group["assets"]} >= {original, copy}
    # The tiny test model may put other photos in the group too: the keeper is the rule's best of them all.
    assert group["keep"] == max(group["assets"], key=lambda a: a["width"] * a["height"])["asset_id"] != copy
    by_size = next(g for g in plans["size"]["groups"] if original in {a["asset_id"] for a in g["assets"]})
    assert by_size["keep"] == max(by_size["assets"], key=lambda a: int(a["size_bytes"]))["asset_id"]
    assert plans["resolution"]["summary"]["delete"] >= 1
    assert plans["resolution"]["summary"]["bytes_freed"] > 0
    # The dry run deleted nothing.
    assert http.get(f"/api/assets/{copy}").status_code == 200

    doomed = [a["asset_id"] for a in group["assets"] if a["asset_id"] != group["keep"]]
    applied = http.post("/api/assets/batch-delete", json={"asset_ids": doomed})
    assert applied.status_code == 200, applied.text
    assert applied.json() == {"deleted": doomed, "failed": []}
    assert http.get(f"/api/assets/{copy}").status_code == 404
    assert http.get(f"/api/assets/{group['keep']}").status_code == 200
    after = http.get("/api/duplicate-groups", params={"min_similarity": 0.9}).json()
    assert all(group["keep"] not in {a["asset_id"] for a in g["assets"]} for g in after["groups"])

    # Applying again (a retry after a kill) reports the ones already gone, per id, and fails nothing else.
    again = http.post("/api/assets/batch-delete", json={"asset_ids": doomed}).json()
    assert again["deleted"] == [] and {f["reason"] for f in again["failed"]} == {"ASSET_NOT_FOUND"}


def _ordered(http: httpx.Client, order_by: str, page_size: int) -> list[dict]:
    assets: list[dict] = []
    token = ""
    for _ in range(100):
        response = http.get("/api/assets", params={"order_by": order_by, "page_size": page_size, "page_token": token})
        assert response.status_code == 200, response.text
        body = response.json()
        assets.extend(body["assets"])
        token = body["next_page_token"]
        if not token:
            return assets
    raise AssertionError("paging did not end")


def test_list_assets_by_date_pages_in_order(http: httpx.Client, library: dict, coco_images: list[Path]) -> None:
    """Runs after the duplicates test deleted some: the deleted ones must be gone from every order too."""
    for photo in coco_images[4:7]:  # one upload each: three distinct ingest times
        upload(http, [(photo.name, photo.read_bytes())])
    by_id = _ordered(http, "", 1000)
    assert len(by_id) >= 4
    newest = _ordered(http, "ingest_time desc", 2)
    oldest = _ordered(http, "ingest_time", 3)
    assert sorted(a["asset_id"] for a in newest) == sorted(a["asset_id"] for a in by_id)
    times = [a["ingest_time"] for a in newest]
    assert times == sorted(times, reverse=True)
    assert len(set(times)) == len(times)  # separate uploads: no ties, so oldest is newest reversed
    assert [a["asset_id"] for a in oldest] == [a["asset_id"] for a in newest][::-1]
    # COCO photos carry no EXIF date: every one is undated, listed (after the dated, of which there are none).
    taken = _ordered(http, "capture_time desc", 2)
    assert {a["asset_id"] for a in taken} == {a["asset_id"] for a in by_id}


@pytest.mark.parametrize(
    ("order_by", "reason"),
    [("file_name", "BAD_ORDER_BY"), ("ingest_time up", "BAD_ORDER_BY"), ("i" * 65, "BAD_REQUEST")],
)
def test_list_assets_refuses_unknown_orders(http: httpx.Client, order_by: str, reason: str) -> None:
    response = http.get("/api/assets", params={"order_by": order_by})
    assert response.status_code == 400, response.text
    assert response.json()["reason"] == reason


def test_a_page_token_is_bound_to_its_order(http: httpx.Client, library: dict) -> None:
    token = http.get("/api/assets", params={"order_by": "ingest_time desc", "page_size": 1}).json()["next_page_token"]
    assert token
    response = http.get("/api/assets", params={"order_by": "capture_time desc", "page_token": token})
    assert response.status_code == 400 and response.json()["reason"] == "BAD_PAGE_TOKEN"
