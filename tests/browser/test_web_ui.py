"""The web UI in a real browser, end to end: upload five COCO photos, follow the job, search by text and by
image, open an image's details with the keyboard, run an analysis and open its clusters, and check the map
draws one point per sample. Screenshots at 1280×800 and phone size are saved as artefacts.

The steps share one stack and build on each other, so they live in one test per viewport flow."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.pages import watched_page
from tests.fixtures.gateway_stack import GatewayStack

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
JOB_TIMEOUT_MS = 300_000  # a loaded 2-core machine: Leiden's first run compiles numba code, naming encodes ~10k prompts


@pytest.fixture(scope="module")
def page(browser, gw: GatewayStack) -> Iterator[object]:  # type: ignore[no-untyped-def]
    with watched_page(browser, viewport=DESKTOP, base_url=gw.base_url) as page:
        yield page


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_upload_search_clusters_map(page, gw: GatewayStack, coco_images: list[Path], artifacts: Path) -> None:  # type: ignore[no-untyped-def]
    photos = coco_images[:5]

    # --- upload five photos through the file picker (the drop zone's twin), follow the job ---------
    page.goto("/#/upload")
    page.set_input_files("#file-input", [str(p) for p in photos])
    summary = page.locator(".summary[data-state]")
    summary.wait_for(timeout=JOB_TIMEOUT_MS)
    assert summary.get_attribute("data-state") == "JOB_STATE_SUCCEEDED"
    assert summary.inner_text().startswith("5 new, 0 duplicate, 0 failed")
    assert page.locator(".files li .outcome.new").count() == 5
    assert page.locator(".job[data-state=JOB_STATE_SUCCEEDED]").count() == 1
    page.screenshot(path=artifacts / "upload-1280.png", full_page=True)

    # Uploading one again is reported as a duplicate, per file.
    page.set_input_files("#file-input", [str(photos[0])])
    page.locator(".files li .outcome.duplicate").wait_for()

    # --- text search: instant results with thumbnails and scores -----------------------------------
    page.goto("/#/search")
    page.fill("#search-text", "a dog on a beach")
    grid = page.locator(".results .grid[data-count='5']")
    grid.wait_for()
    assert page.locator(".results .tile .score").count() == 5
    page.wait_for_function(
        "Array.from(document.querySelectorAll('.results .tile img')).every(i => i.complete && i.naturalWidth > 0)"
    )
    page.screenshot(path=artifacts / "search-1280.png")

    # Keyboard: ArrowDown from the box into the grid, ArrowRight to the next result, Enter opens details.
    page.focus("#search-text")
    page.keyboard.press("ArrowDown")
    first = page.evaluate("document.activeElement.dataset.assetId")
    page.keyboard.press("ArrowRight")
    second = page.evaluate("document.activeElement.dataset.assetId")
    assert first and second and first != second
    page.keyboard.press("Enter")
    dialog = page.locator("dialog.viewer[open]")  # the viewer over the results (issue 16)
    dialog.locator(".viewer-name").wait_for()
    assert dialog.get_attribute("data-asset-id") == second
    assert page.evaluate("location.hash") == f"#/asset/{second}"
    page.screenshot(path=artifacts / "detail-1280.png")
    page.keyboard.press("Escape")
    page.locator("dialog.viewer").wait_for(state="detached")  # Escape closes it

    # --- search by image: the photo itself comes first --------------------------------------------
    page.set_input_files("#search-image", str(photos[2]))
    page.locator(".status", has_text=f"results for images like {photos[2].name}").wait_for()
    assert page.locator(".results .tile").first.get_attribute("data-asset-id") == sha(photos[2])

    # "More like this" on a result: its neighbours, without itself.
    page.locator(".results .like").first.click()
    page.locator(".status", has_text="results for images like this one").wait_for()
    assert page.locator(".results .grid").get_attribute("data-count") == "4"
    assert page.locator(f".results .tile[data-asset-id='{sha(photos[2])}']").count() == 0

    # --- clusters after an analysis run ------------------------------------------------------------
    page.goto("/#/clusters")
    page.click("#run-analysis")
    cards = page.locator(".cards[data-count]")
    page.wait_for_function(
        "(document.querySelector('.cards') && Number(document.querySelector('.cards').dataset.count) > 0)"
        " || document.querySelector('#toast.error')",
        timeout=JOB_TIMEOUT_MS,
    )
    assert page.locator("#toast.error").count() == 0, page.locator("#toast").inner_text()
    sizes = [int(t.split()[0]) for t in page.locator(".card .size").all_inner_texts()]
    assert 0 < sum(sizes) <= 5
    page.screenshot(path=artifacts / "clusters-1280.png", full_page=True)
    page.locator(".card a").first.click()
    members = page.locator(".results .grid")
    members.wait_for()
    assert int(members.get_attribute("data-count") or 0) == sizes[0]
    page.fill("#cluster-name", "beach things")
    page.click(".rename button")
    page.locator("h1", has_text="beach things").wait_for()
    page.screenshot(path=artifacts / "cluster-1280.png", full_page=True)
    page.click("text=search inside")
    page.locator(".status", has_text="results for images in beach things").wait_for()
    assert page.locator(".results .grid").get_attribute("data-count") == str(sizes[0])
    assert page.locator("#filter-cluster").input_value() != ""
    assert cards.count() == 0  # we are on the cluster page now

    # --- the map: one point per sample --------------------------------------------------------------
    page.goto("/#/map")
    canvas = page.locator("#map-canvas[data-point-count]")
    canvas.wait_for(timeout=JOB_TIMEOUT_MS)
    samples = len(photos)
    assert canvas.get_attribute("data-point-count") == str(samples)
    assert canvas.get_attribute("data-drawn-count") == str(samples)
    page.screenshot(path=artifacts / "map-1280.png")
    # Colour by kind and date from the real map-attributes route: every sample is a whole image here.
    page.select_option("#map-colour", "kind")
    page.locator(".legend li[data-key='image']").wait_for()
    assert page.locator(".legend li").count() == 1
    page.select_option("#map-colour", "date")
    page.locator("#map-canvas[data-colour-by='date']").wait_for()
    assert page.locator(".legend li").count() >= 1

    # --- jobs: the ingest jobs and the analysis jobs, finished ---------------------------------------
    page.goto("/#/jobs")
    page.locator(".job").first.wait_for()
    assert page.locator(".health li.ok").count() == 3
    ops = page.locator("section.ops")  # Ordo's ops view (/ops on the metrics port), read by the page
    ops.wait_for()
    assert "dead letters 0" in ops.inner_text() and ops.get_by_role("link", name="Ops view").count() == 1
    page.screenshot(path=artifacts / "jobs-1280.png", full_page=True)


def test_phone_layout(browser, gw: GatewayStack, coco_images: list[Path], artifacts: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """At phone size nothing overflows sideways and the controls stay reachable by label; a file that is
    not an image is reported with its reason."""
    context = browser.new_context(viewport=PHONE, base_url=gw.base_url, is_mobile=True, has_touch=True)
    page = context.new_page()
    notes = tmp_path / "notes.jpg"
    notes.write_text("a shopping list, not a photo")
    try:
        page.goto("/#/upload")
        page.set_input_files("#file-input", [str(p) for p in coco_images[5:7]] + [str(notes)])
        summary = page.locator(".summary[data-state]")
        summary.wait_for(timeout=JOB_TIMEOUT_MS)
        assert summary.get_attribute("data-state") == "JOB_STATE_PARTIALLY_SUCCEEDED"
        assert summary.inner_text().startswith("2 new, 0 duplicate, 1 failed")
        assert "NOT_AN_IMAGE" in page.locator(".files li[data-path='notes.jpg'] .outcome").inner_text()
        page.screenshot(path=artifacts / "upload-phone.png", full_page=True)
        page.goto("/#/search")
        page.get_by_label("Search by text").fill("people")
        page.locator(".results .grid[data-count]").wait_for()
        page.screenshot(path=artifacts / "search-phone.png", full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0
        assert not page.get_by_label("Filter by kind").is_visible()  # filters collapse on a phone (issue 16)
        page.locator(".filters-box summary").click()
        for label in ("Search by text", "Filter by kind", "Filter by cluster"):
            assert page.get_by_label(label).is_visible()
        page.locator(".results .tile").first.click()
        page.locator("dialog.viewer[open] .viewer-name").wait_for()
        page.screenshot(path=artifacts / "detail-phone.png")
    finally:
        context.close()


UNNAMED_CONTROLS = """
els => els.filter(el => el.offsetParent !== null && el.tabIndex >= 0).filter(el => {
  const name = el.getAttribute('aria-label') || (el.labels && el.labels[0] && el.labels[0].textContent)
    || el.textContent || el.getAttribute('title') || el.getAttribute('alt') || el.getAttribute('placeholder');
  return !(name && name.trim());
}).map(el => el.outerHTML.slice(0, 120))
"""


def test_accessible_names_and_focus_order(browser, gw: GatewayStack) -> None:  # type: ignore[no-untyped-def]
    """Every focusable control has an accessible name on every view, and Tab walks the page in reading
    order: skip link, brand, the sections, then the search box."""
    context = browser.new_context(viewport=DESKTOP, base_url=gw.base_url)
    page = context.new_page()
    try:
        page.goto("/#/search?q=people")
        page.locator(".results .grid[data-count]").wait_for()
        page.focus(".skip")  # the first stop of the page (the search box has focus after loading)
        order = [page.evaluate("document.activeElement.textContent.trim()")]
        for _ in range(10):
            page.keyboard.press("Tab")
            order.append(page.evaluate("document.activeElement.textContent.trim() || document.activeElement.id"))
        sections = ["Upload", "Search", "Library", "Duplicates", "Clusters", "Map", "Jobs", "API"]
        assert order == ["Skip to content", "Ordo", *sections, "search-text"]
        for view, ready in [
            ("search?q=people", ".results .grid[data-count]"),
            ("upload", ".dropzone"),
            ("library", ".lib-tile"),
            ("duplicates", ".dup-summary[data-groups]"),
            ("clusters", ".cards"),
            ("jobs", ".job"),
            ("map", "#map-canvas[data-point-count]"),
        ]:
            page.goto(f"/#/{view}")
            page.locator(ready).first.wait_for()
            unnamed = page.locator("a, button, input, select, textarea, [tabindex]").evaluate_all(UNNAMED_CONTROLS)
            assert unnamed == [], f"{view}: controls without an accessible name: {unnamed}"
    finally:
        context.close()
