"""Cluster members, noise and map clicks in Debian's Chromium (issue 16, req 2 and 5): every member of a cluster
is reachable page after page with the total shown, never a silent cap; the run's noise has its own page; a
cluster tile and a map point open the shared viewer (←/→ through the list, #/asset/ID, Back closes it).

The analysis reads are answered by Playwright routing from a synthetic map of 6,000 points in three clusters
(tests/fixtures/synthetic_map.py), so a cluster holds 2,000 members, over the 1,000 the old grid stopped at;
its members pager answers as the gateway does (at most 1,000 per page, offset tokens, ``total_size``).
Everything the page does with the answers is the real built UI."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.browser.pages import watched_page
from tests.fixtures.synthetic_map import SyntheticMap

DESKTOP = {"width": 1440, "height": 900}
POINTS, CLUSTERS = 6000, 3


@pytest.fixture(scope="module")
def synthetic() -> SyntheticMap:
    return SyntheticMap(POINTS, CLUSTERS)


@contextmanager
def open_page(browser, base_url: str, synthetic: SyntheticMap, hash_: str) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """A watched page whose API calls the synthetic library answers, opened at ``hash_``."""
    with watched_page(browser, viewport=DESKTOP, base_url=base_url) as page:
        page.route("**/api/**", synthetic.router(base_url))
        page.goto(hash_)
        yield page


def test_cluster_members_page_to_the_end_with_the_total(  # type: ignore[no-untyped-def]
    browser, ui_only: str, synthetic: SyntheticMap, artifacts: Path
) -> None:
    size = synthetic.cluster_size(0)
    assert size == 2000  # over the old silent cap of 1,000
    with open_page(browser, ui_only, synthetic, "/#/clusters/c0?page_size=700") as page:
        grid = page.locator(".grid.members")
        page.wait_for_function("document.querySelector('.grid.members')?.dataset.count === '700'")
        status = page.locator(".members-status")
        assert status.inner_text() == "2,000 images · showing 700"
        more = page.locator("#more-members")
        assert more.inner_text() == "Load more (1,300 left)"
        more.click()
        page.wait_for_function("document.querySelector('.grid.members').dataset.count === '1400'")
        more.click()
        page.wait_for_function("document.querySelector('.grid.members').dataset.count === '2000'")
        assert status.inner_text() == "2,000 images"
        assert more.is_hidden()
        tiles = page.eval_on_selector_all(".grid.members button.tile", "els => els.map(e => e.dataset.assetId)")
        ids, clusters = synthetic.projection["asset_ids"], synthetic.projection["cluster_ids"]
        expected = [a for a, c in zip(ids, clusters, strict=True) if c == "c0"]
        assert tiles == expected  # every member once, in the pager's order
        assert grid.get_attribute("data-total") == "2000"
        page.screenshot(path=artifacts / "cluster-members-1440.png")

        # A member opens the shared viewer: its URL, → to the next member, Back closes it over the same page.
        page.evaluate("document.querySelector('.grid.members').dataset.marker = 'kept'")
        page.locator(".grid.members button.tile").nth(5).click()
        viewer = page.locator("dialog.viewer[open]")
        viewer.wait_for()
        assert page.locator("dialog.detail").count() == 0  # the old detail dialog is gone
        assert page.evaluate("location.hash") == f"#/asset/{expected[5]}"
        page.keyboard.press("ArrowRight")
        page.wait_for_function(f"location.hash === '#/asset/{expected[6]}'")
        page.go_back()
        page.locator("dialog.viewer").wait_for(state="detached")
        assert page.evaluate("location.hash") == "#/clusters/c0?page_size=700"
        assert page.evaluate("document.querySelector('.grid.members').dataset.marker") == "kept"


def test_noise_has_its_own_page_and_the_viewer_pages_on(  # type: ignore[no-untyped-def]
    browser, ui_only: str, synthetic: SyntheticMap
) -> None:
    noise = len(range(0, POINTS, 10))
    with open_page(browser, ui_only, synthetic, "/#/clusters") as page:
        link = page.locator("#noise-link")
        assert link.inner_text() == f"{noise} in no cluster (noise)"
        link.click()
        page.wait_for_function("document.querySelector('.grid.members')?.dataset.count === '200'")
        assert page.locator(".members-status").inner_text() == f"{noise} images · showing 200"
        # The viewer at the last loaded member: → loads the next page of members and goes on.
        page.locator(".grid.members button.tile").nth(199).click()
        page.locator("dialog.viewer[open]").wait_for()
        page.keyboard.press("ArrowRight")
        nxt = synthetic.projection["asset_ids"][200 * 10]
        page.wait_for_function(f"location.hash === '#/asset/{nxt}'")
        assert page.locator(".grid.members").get_attribute("data-count") == "400"
        assert any("/clusters/noise/members?" in u and "page_token=200" in u for u in synthetic.member_requests)


def test_a_map_click_opens_the_shared_viewer(browser, ui_only: str, synthetic: SyntheticMap) -> None:  # type: ignore[no-untyped-def]
    with open_page(browser, ui_only, synthetic, "/#/map") as page:
        canvas = page.locator("#map-canvas[data-point-count]")
        canvas.wait_for(timeout=30_000)
        page.evaluate("document.querySelector('#map-canvas').dataset.marker = 'kept'")
        box = canvas.bounding_box()
        tip = page.locator(".map-tip")
        spot = None
        for gy in range(1, 16):  # hover until a point is under the mouse (the tip shows), then click there
            for gx in range(1, 24):
                x, y = box["x"] + box["width"] * gx / 24, box["y"] + box["height"] * gy / 16
                page.mouse.move(x, y)
                if tip.is_visible():
                    spot = (x, y)
                    break
            if spot:
                break
        assert spot, "no point found under the mouse"
        page.mouse.click(*spot)
        viewer = page.locator("dialog.viewer[open]")
        viewer.wait_for()
        assert page.locator("dialog.detail").count() == 0
        first = viewer.get_attribute("data-asset-id") or ""
        assert page.evaluate("location.hash") == f"#/asset/{first}"
        ids, clusters = synthetic.projection["asset_ids"], synthetic.projection["cluster_ids"]
        cluster = clusters[ids.index(first)]
        page.keyboard.press("ArrowRight")
        page.wait_for_function(f"location.hash !== '#/asset/{first}'")
        second = page.evaluate("location.hash").removeprefix("#/asset/")
        assert clusters[ids.index(second)] == cluster  # → stays in the clicked point's cluster
        page.go_back()
        page.locator("dialog.viewer").wait_for(state="detached")
        assert page.evaluate("location.hash") == "#/map"
        assert page.evaluate("document.querySelector('#map-canvas').dataset.marker") == "kept"
