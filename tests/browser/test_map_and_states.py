"""The Map view as a tool, the backend-down states and the offline API docs, in Debian's Chromium.

One gateway serves the real built UI for the whole module; its gRPC address is a port nobody listens on, so
"the backend is down" is real (the gateway's own answers), not simulated. For the map, the analysis reads,
the status probe, one search and the thumbnails are answered by Playwright routing from a synthetic
3,000-point map (tests/fixtures/synthetic_map.py): every drawing, selection and atlas step is the real page.
Screenshots at desktop (1440×900) and phone (390×844) go to $ORDO_TEST_ARTIFACTS."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.browser.pages import watched_page
from tests.fixtures.synthetic_map import SyntheticMap

DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
POINTS, CLUSTERS = 3000, 6
RAW_TRANSPORT = ("failed to connect", "ipv4:", "StatusCode", "Connection refused", "Failed to fetch", "RpcError")


@pytest.fixture(scope="module")
def synthetic() -> SyntheticMap:
    return SyntheticMap(POINTS, CLUSTERS)


@contextmanager
def open_map(browser, base_url: str, synthetic: SyntheticMap, viewport: dict[str, int], **options) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """A watched page on the map, drawn from the synthetic library's answers."""
    with watched_page(browser, viewport=viewport, base_url=base_url, **options) as page:
        page.route("**/api/**", synthetic.router(base_url))
        page.goto("/#/map")
        page.locator("#map-canvas[data-point-count]").wait_for(timeout=30_000)
        yield page


def data(page, name: str) -> str:  # type: ignore[no-untyped-def]
    return page.locator("#map-canvas").get_attribute(f"data-{name}") or ""


def wait_data(page, name: str, condition: str) -> None:  # type: ignore[no-untyped-def]
    """Waits until the canvas's data-NAME satisfies ``condition`` (JS, with ``v`` the value as a number)."""
    key = "".join(p.capitalize() if i else p for i, p in enumerate(name.split("-")))
    page.wait_for_function(f"(v => {condition})(Number(document.querySelector('#map-canvas').dataset.{key}))")


def drag(page, points: list[tuple[float, float]]) -> None:  # type: ignore[no-untyped-def]
    box = page.locator("#map-canvas").bounding_box()
    page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(box["x"] + x, box["y"] + y, steps=4)
    page.mouse.up()


def test_map_box_lasso_legend_fit_search_thumbnails(  # type: ignore[no-untyped-def]
    browser, ui_only: str, synthetic: SyntheticMap, artifacts: Path
) -> None:
    with open_map(browser, ui_only, synthetic, DESKTOP) as page:
        canvas = page.locator("#map-canvas")
        assert data(page, "drawn-count") == str(POINTS)
        box = canvas.bounding_box()
        w, h = box["width"], box["height"]

        # Box select around everything: every point, and a grid of the selected images (in pages).
        page.get_by_role("button", name="Box select").click()
        drag(page, [(2, 2), (w - 2, h - 2)])
        wait_data(page, "selected-count", f"v === {POINTS}")
        grid = page.locator(".map-selected")
        assert grid.get_attribute("data-count") == "120"
        assert page.locator(".map-selection .selection").get_attribute("data-total") == str(POINTS)
        page.locator(".map-selection .more").click()
        assert grid.get_attribute("data-count") == "240"

        # Lasso a triangle over the upper-left half: some points, not all; the grid follows.
        page.get_by_role("button", name="Lasso select").click()
        drag(page, [(2, 2), (w - 2, 2), (2, h - 2), (2, 4)])
        wait_data(page, "selected-count", f"v > 0 && v < {POINTS}")
        lasso = int(data(page, "selected-count"))
        assert page.locator(".map-selection .selection").get_attribute("data-total") == str(lasso)
        page.locator(".map-selected img").first.wait_for()
        page.screenshot(path=artifacts / "map-lasso-1440.png", full_page=True)

        # The selection carries the library's actions (all picked at first), and a click on a selected image
        # opens the shared viewer over it; Escape closes it.
        assert page.locator(".map-selection .sel-count").inner_text() == f"{lasso} selected"
        assert page.locator(".map-selection #sel-zip").is_visible()
        page.locator(".map-selected button.tile").first.click()
        page.locator("dialog.viewer").wait_for()
        page.keyboard.press("Escape")
        page.locator("dialog.viewer").wait_for(state="detached")
        page.get_by_role("button", name="Clear selection").click()
        wait_data(page, "selected-count", "v === 0")
        assert page.locator(".map-selected").count() == 0

        # Legend: hide cluster 0 (its points are not drawn), show it again, highlight another.
        page.get_by_role("button", name="Pan").click()
        c0 = synthetic.cluster_size(0)
        toggle = page.locator(".legend li[data-key='c0'] .toggle")
        toggle.click()
        wait_data(page, "drawn-count", f"v === {POINTS - c0}")
        assert toggle.get_attribute("aria-pressed") == "false"
        toggle.click()
        wait_data(page, "drawn-count", f"v === {POINTS}")
        page.get_by_role("button", name="Highlight cluster 1").click()
        assert page.locator(".legend li[data-key='c1']").get_attribute("class") == "highlighted"

        # Fit to one cluster (the others hidden): zoomed in, few enough points for thumbnails from the atlas.
        for c in range(CLUSTERS - 1):
            page.locator(f".legend li[data-key='c{c}'] .toggle").click()
        page.click("#map-fit")
        wait_data(page, "scale", "v > 1.5")
        assert data(page, "drawn-count") == str(synthetic.cluster_size(CLUSTERS - 1))
        wait_data(page, "atlas-loaded", "v > 50")
        wait_data(page, "thumbs-drawn", "v > 50")
        page.screenshot(path=artifacts / "map-thumbnails-1440.png")
        page.uncheck("#map-thumbs")  # dots only again
        wait_data(page, "thumbs-drawn", "v === 0")
        page.click("#map-reset")
        wait_data(page, "scale", "v === 1")
        wait_data(page, "drawn-count", f"v === {POINTS}")

        # A search's hits are ringed on the map.
        page.fill("#map-search", "a dog on a beach")
        page.get_by_role("button", name="Highlight", exact=True).click()
        wait_data(page, "hit-count", f"v === {len(synthetic.hit_ids)}")
        page.screenshot(path=artifacts / "map-search-1440.png")

        # Colour by kind and by date: the legend follows (the map-attributes columns).
        page.select_option("#map-colour", "kind")
        page.locator(".legend li[data-key='object']").wait_for()
        assert page.locator(".legend li").count() == 2
        page.select_option("#map-colour", "date")
        page.locator(".legend li[data-key='none']").wait_for()
        assert page.locator(".legend li").count() == 9  # eight date steps and "no date"
        assert canvas.get_attribute("data-colour-by") == "date"
        page.screenshot(path=artifacts / "map-by-date-1440.png")


def test_moving_images_recolours_their_points(browser, ui_only: str) -> None:  # type: ignore[no-untyped-def]
    """Select cluster 0 on the map, "Move to cluster…" into cluster 1: the points take cluster 1's colour at once
    (legend: cluster 0 gone, cluster 1 holds both, its colour unchanged), and Undo puts them back, with no reload."""
    synthetic = SyntheticMap(600, 3)  # its own: the move edits it
    s0, s1 = synthetic.cluster_size(0), synthetic.cluster_size(1)
    with open_map(browser, ui_only, synthetic, DESKTOP) as page:
        c1 = page.locator(".legend li[data-key='c1']")
        colour = c1.locator(".swatch").get_attribute("style")
        for c in (1, 2):  # only cluster 0 visible: the box selects exactly its points
            page.locator(f".legend li[data-key='c{c}'] .toggle").click()
        box = page.locator("#map-canvas").bounding_box()
        page.get_by_role("button", name="Box select").click()
        drag(page, [(2, 2), (box["width"] - 2, box["height"] - 2)])
        wait_data(page, "selected-count", f"v === {s0}")
        for c in (1, 2):
            page.locator(f".legend li[data-key='c{c}'] .toggle").click()

        page.locator(".map-selection #sel-move").click()
        page.locator("dialog.move-dialog[open]").wait_for()
        page.fill("#move-target", "cluster 1")
        page.click("#move-confirm")
        page.locator(".undo-toast", has_text=f"Moved {s0} images to cluster 1").wait_for()
        page.locator(".legend li[data-key='c0']").wait_for(state="detached")
        assert c1.locator(".toggle").inner_text().endswith(f"({s0 + s1})")
        assert c1.locator(".swatch").get_attribute("style") == colour  # the moved points took cluster 1's colour
        assert data(page, "drawn-count") == str(synthetic.points)
        assert synthetic.move_requests == ["c1"]

        page.click("#move-undo")
        page.locator(".legend li[data-key='c0']").wait_for()
        assert page.locator(".legend li[data-key='c0'] .toggle").inner_text().endswith(f"({s0})")
        assert c1.locator(".toggle").inner_text().endswith(f"({s1})")
        assert c1.locator(".swatch").get_attribute("style") == colour
        assert synthetic.move_requests == ["c1", "c0"]


def test_map_on_a_phone(browser, ui_only: str, synthetic: SyntheticMap, artifacts: Path) -> None:  # type: ignore[no-untyped-def]
    """At 390×844 the map fits the width, the tools stay reachable, and a box selection still works."""
    with open_map(browser, ui_only, synthetic, PHONE, is_mobile=True, has_touch=True) as page:
        assert page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth") <= 0
        for name in ("Box select", "Lasso select", "Fit", "Reset"):
            assert page.get_by_role("button", name=name).is_visible()
        page.get_by_role("button", name="Box select").click()
        box = page.locator("#map-canvas").bounding_box()
        assert box["width"] <= PHONE["width"]
        drag(page, [(2, 2), (box["width"] - 2, box["height"] - 2)])
        wait_data(page, "selected-count", f"v === {POINTS}")
        page.screenshot(path=artifacts / "map-phone.png", full_page=True)


VIEWS = ["search", "upload", "clusters", "map", "jobs"]


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_backend_down_banner_on_every_page(browser, ui_only: str, artifacts: Path, viewport: dict[str, int]) -> None:  # type: ignore[no-untyped-def]
    """The services are down: one banner on every page, each view says it cannot load (not "none yet"),
    no raw gRPC text anywhere; once the services answer, the banner goes away by itself."""
    size = f"{viewport['width']}"
    with watched_page(browser, viewport=viewport, base_url=ui_only) as page:
        for view in VIEWS:
            page.goto(f"/#/{view}")
            banner = page.locator("#backend-banner:not([hidden])")
            banner.wait_for()
            assert page.locator("#backend-banner").count() == 1
            assert "not reachable" in banner.inner_text()
            if view in ("clusters", "map", "jobs"):
                page.locator("main .error").first.wait_for()
            text = page.locator("body").inner_text()
            assert "No clustering yet" not in text and "No map yet" not in text
            assert not (view == "jobs" and "Loading…" in text)
            leaked = [raw for raw in RAW_TRANSPORT if raw in text]
            assert not leaked, f"{view}: raw transport text on the page: {leaked}"
            page.screenshot(path=artifacts / f"backend-down-{view}-{size}.png")
        assert "SERVICE_UNAVAILABLE" in page.locator("main .error").inner_text()  # Ordo's reason, shown

        # The services come back (answered by routing): the banner leaves and the view is drawn again.
        status = '{"services": {"ingest": "SERVING", "search": "SERVING", "analysis": "SERVING"}, "stats": null}'
        page.route(
            "**/api/status", lambda route: route.fulfill(status=200, content_type="application/json", body=status)
        )
        page.route(
            "**/api/jobs?*",
            lambda route: route.fulfill(status=200, content_type="application/json", body='{"jobs": []}'),
        )
        page.get_by_role("button", name="Retry now").click()
        page.locator("#backend-banner").wait_for(state="hidden")
        page.get_by_text("No jobs yet.").wait_for()


def test_docs_render_offline(browser, ui_only: str, artifacts: Path) -> None:  # type: ignore[no-untyped-def]
    """/docs and /redoc render with every request to another host refused (as behind a firewall)."""
    context = browser.new_context(viewport=DESKTOP, base_url=ui_only)
    outside: list[str] = []

    def only_local(route) -> None:  # type: ignore[no-untyped-def]
        if urlparse(route.request.url).hostname in ("127.0.0.1", "localhost"):
            return route.continue_()
        outside.append(f"{route.request.resource_type} {route.request.url}")
        return route.abort()

    context.route("**/*", only_local)
    page = context.new_page()
    try:
        page.goto("/docs")
        page.locator(".swagger-ui .info .title", has_text="Ordo").wait_for(timeout=20_000)
        page.locator(".opblock-summary-path", has_text="/api/search").first.wait_for()
        page.screenshot(path=artifacts / "docs-offline-1440.png")
        page.goto("/redoc")
        page.locator("h1", has_text="Ordo").wait_for(timeout=20_000)
        page.get_by_text("Per map point", exact=False).first.wait_for(state="attached")  # an operation's summary
    finally:
        context.close()
    # ReDoc's footer shows a "powered by" logo from its CDN: cosmetic, refused here, and nothing else is.
    needed = [u for u in outside if not u.startswith("image https://cdn.redoc.ly/")]
    assert not needed, f"the docs asked other hosts for: {needed}"
