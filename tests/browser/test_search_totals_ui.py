"""The search page shows the server's total ("1–40 of 312 results", "of 10,000+" when capped), in the real browser.

The gateway serves the real built UI; ``/api/search`` is answered by Playwright's request routing, because a
capped total needs more than 10,000 images (far more than a test may ingest). The real stack's totals are checked
in test_library_ui (every page of a real search) and tests/integration/test_search_totals.py (gRPC and REST).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.browser.pages import watched_page

DESKTOP = {"width": 1440, "height": 900}
PAGE = 40


def hit(rank: int) -> dict:
    asset = {
        "asset_id": f"{rank:064x}",
        "source_uri": "",
        "file_name": f"photo-{rank}.jpg",
        "mime_type": "image/jpeg",
        "size_bytes": "1",
        "width": 1,
        "height": 1,
        "state": "ASSET_STATE_READY",
        "error": "",
        "metadata": {},
        "model_id": "m",
    }
    sample = {"sample_id": str(rank), "kind": "SAMPLE_KIND_IMAGE", "label": "", "text": ""}
    return {"asset": asset, "sample": sample, "score": 0.9 - rank / 1000, "rank": rank}


@pytest.fixture
def page(browser, ui_only: str) -> Iterator[object]:  # type: ignore[no-untyped-def]
    with watched_page(browser, viewport=DESKTOP, base_url=ui_only) as page:
        yield page


@pytest.mark.parametrize(("size", "capped", "shown"), [(312, False, "312"), (10_000, True, "10,000+")])
def test_the_status_counts_against_the_total(page, size: int, capped: bool, shown: str) -> None:  # type: ignore[no-untyped-def]
    asked: list[dict] = []

    def search(route) -> None:  # type: ignore[no-untyped-def]
        body = json.loads(route.request.post_data or "{}")
        asked.append(body)
        start = int(body.get("page_token") or 0)
        answer = {
            "hits": [hit(r) for r in range(start + 1, start + PAGE + 1)],
            "next_page_token": str(start + PAGE),
            "model_id": "m",
            "total_size": size,
            "total_size_capped": capped,
        }
        route.fulfill(status=200, content_type="application/json", body=json.dumps(answer))

    page.route("**/api/search", search)
    page.goto("/#/search?q=beach")
    status = page.locator(".status")
    status.filter(has_text=f"1–40 of {shown} results for “beach”").wait_for()
    assert asked[0]["include_total_size"] is True  # the UI asks for the count
    page.click("#search-more")
    status.filter(has_text=f"1–80 of {shown} results").wait_for()
    assert asked[1]["page_token"] == "40"
