"""The library grid stays smooth over 100k images, in the real browser.

The gateway serves the real built UI; the three responses the Library view reads (the asset count, ListAssets
pages, thumbnails) are answered by Playwright's request routing with a synthetic 100k-asset library, because
ingesting 100k real images would take far longer than a test may. Everything the browser does (paging by token,
the virtualised layout, scrolling, drawing tiles) is the real code. Prints frame times; asserts the DOM stays
bounded (virtualised), pages keep arriving, a fling does not fetch the thumbnails of the tiles it flies past
(they load once it settles, and the test waits for those in view), and frames stay within a ratio of a baseline
measured in the same browser and run.

Why a baseline instead of a fixed frame budget: on a loaded 2-core CI machine every page's frames slow down (a
p95 of 120 ms was seen with a median of 17 ms), so an absolute bound fails for reasons unrelated to the code. The
baseline is the plainest page doing the same visible work: a static, non-virtualised grid of as many tiles as the
library may keep in its DOM (same thumbnail, one URL each) in a box of the same size, flung by the same number of
pixels per frame (wrapping round at its end). Broken virtualisation still fails: the DOM bound catches a growing
grid, and the ratio catches frames many times the baseline's."""

from __future__ import annotations

import io
import json
import statistics
from urllib.parse import parse_qs, urlsplit

from PIL import Image

ASSETS = 100_000
MAX_TILES_IN_DOM = 600
FRAMES, STEP_PX = 240, 600  # a fast fling: 600 px per frame, ~4 s
# The library's p95 frame may be this many times the baseline's: it also lays out rows, swaps tiles and fetches
# pages, while the baseline only scrolls; a broken virtualisation costs ~10x and more.
MAX_P95_RATIO = 6.0
VSYNC_MS = 1000 / 60  # a baseline faster than a frame at 60 Hz counts as one (the ratio's floor)
BASELINE_TILES = MAX_TILES_IN_DOM

BASELINE_PAGE = """<!doctype html><html><head><style>
body { margin: 0; font-family: sans-serif; }
.box { overflow-y: auto; height: calc(100vh - 190px); margin: 0 24px; }
.grid { display: grid; gap: 8px; grid-template-columns: repeat(auto-fill, minmax(160px, 1fr)); list-style: none;
        margin: 0; padding: 0; }
.tile { aspect-ratio: 1; border: 1px solid #ddd; border-radius: 6px; overflow: hidden; background: #eee; }
.tile img { width: 100%; height: 100%; object-fit: cover; display: block; }
</style></head><body><div class="box lib-scroll"><ul class="grid"></ul></div><main data-loaded="0"></main>
<script>
const grid = document.querySelector('.grid');
const items = [];
for (let i = 0; i < TILES; i++) {
  items.push(`<li class="lib-tile tile"><img alt="" src="/baseline-thumb/${i}.jpg"></li>`);
}
grid.innerHTML = items.join('');
</script></body></html>"""

SCROLL = """async ([frames, step]) => {
  const box = document.querySelector('.lib-scroll');
  const times = []; let most = 0;
  let last = performance.now();
  for (let i = 0; i < frames; i++) {
    box.scrollTop += step;
    await new Promise(r => requestAnimationFrame(r));
    const now = performance.now(); times.push(now - last); last = now;
    most = Math.max(most, document.querySelectorAll('.lib-tile').length);
  }
  return {times, most, loaded: Number(document.querySelector('main').dataset.loaded)};
}"""


# Once a fling stops, every tile in view shows its thumbnail (none left waiting, all decoded).
SETTLED_THUMBNAILS = """() => {
  const box = document.querySelector('.lib-scroll').getBoundingClientRect();
  const shown = [...document.querySelectorAll('.lib-tile img')].filter(i => {
    const r = i.getBoundingClientRect();
    return r.bottom > box.top && r.top < box.bottom;
  });
  return shown.length > 0 && shown.every(i => i.getAttribute('src') && i.complete && i.naturalWidth > 0);
}"""


# The baseline's fling: the same steps, wrapping round at the end of its (short) grid.
WRAPPING_SCROLL = SCROLL.replace(
    "box.scrollTop += step;",
    "box.scrollTop = (box.scrollTop + step) % Math.max(1, box.scrollHeight - box.clientHeight);",
)


def thumbnail() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (120, 160, 200)).save(out, "JPEG")
    return out.getvalue()


def page_of(token: str, size: int) -> dict:
    start = int(token or 0)
    end = min(ASSETS, start + size)
    assets = [
        {"asset_id": f"{i:064x}", "file_name": f"img{i}.jpg", "size_bytes": "1000", "width": 64, "height": 64}
        for i in range(start, end)
    ]
    return {"assets": assets, "next_page_token": str(end) if end < ASSETS else ""}


def frame_stats(times: list[float]) -> tuple[float, float, float]:
    """(median, p95, max) of frame times, the first few (warm-up) left out."""
    frames = sorted(times[5:])
    return statistics.median(frames), frames[int(len(frames) * 0.95)], frames[-1]


def baseline_p95(context, jpeg: bytes) -> float:  # type: ignore[no-untyped-def]
    """The static grid's p95 frame time, scrolled exactly as the library is."""
    page = context.new_page()
    html = BASELINE_PAGE.replace("TILES", str(BASELINE_TILES))
    page.route("**/baseline.html", lambda route: route.fulfill(status=200, content_type="text/html", body=html))
    page.route("**/baseline-thumb/*", lambda route: route.fulfill(status=200, content_type="image/jpeg", body=jpeg))
    try:
        page.goto("/baseline.html")
        page.wait_for_function("[...document.images].length > 0 && [...document.images].every(i => i.complete)")
        median, p95, _ = frame_stats(page.evaluate(WRAPPING_SCROLL, [FRAMES, STEP_PX])["times"])
        print(f"\nbaseline, static grid of {BASELINE_TILES} tiles: median {median:.1f} ms, p95 {p95:.1f} ms")
        return p95
    finally:
        page.close()


def test_library_scrolls_100k_smoothly(browser, ui_only: str) -> None:  # type: ignore[no-untyped-def]
    jpeg = thumbnail()
    context = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=ui_only)
    before = baseline_p95(context, jpeg)
    page = context.new_page()

    def assets(route) -> None:  # type: ignore[no-untyped-def]
        query = parse_qs(urlsplit(route.request.url).query)
        body = page_of(query.get("page_token", [""])[0], int(query.get("page_size", ["200"])[0]))
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    page.route("**/api/assets?*", assets)
    thumbnails: list[str] = []

    def thumb(route) -> None:  # type: ignore[no-untyped-def]
        thumbnails.append(route.request.url)
        route.fulfill(status=200, content_type="image/jpeg", body=jpeg)

    page.route("**/api/assets/*/thumbnail", thumb)
    status = {"stats": {"asset_count": str(ASSETS)}, "services": {}}
    page.route(
        "**/api/status",
        lambda route: route.fulfill(status=200, content_type="application/json", body=json.dumps(status)),
    )
    try:
        page.goto("/#/library")
        page.locator(".status", has_text=f"{ASSETS} images").wait_for()
        page.wait_for_function("Number(document.querySelector('main').dataset.loaded) >= 200")
        before_fling = len(thumbnails)
        result = page.evaluate(SCROLL, [FRAMES, STEP_PX])
        fetched_in_fling = len(thumbnails) - before_fling
        median, p95, slowest = frame_stats(result["times"])
        print(
            f"\nlibrary, {ASSETS} assets: {FRAMES} frames scrolling {STEP_PX} px/frame, median {median:.1f} ms, "
            f"p95 {p95:.1f} ms, max {slowest:.1f} ms; at most {result['most']} tiles in the DOM; "
            f"{result['loaded']} assets loaded by then"
        )
        assert result["most"] <= MAX_TILES_IN_DOM  # virtualised: the DOM does not grow with the library
        assert result["loaded"] >= 4000  # pages kept arriving while scrolling
        # A fling passes thousands of tiles; their thumbnails wait until it settles, then the ones in view load.
        print(f"thumbnails fetched during the fling: {fetched_in_fling}")
        assert fetched_in_fling < 500
        page.wait_for_function(SETTLED_THUMBNAILS)
        # Load may change while the test runs: the baseline is measured before and after, the slower one counts.
        baseline = max(before, baseline_p95(context, jpeg), VSYNC_MS)
        if p95 > MAX_P95_RATIO * baseline:
            # Load only ever adds frame time, so one more fling (further down, new pages) is a second sample
            # and the better one counts. A broken virtualisation is slow in both (the first CI run of a fresh
            # clone once measured one fling over the bound on a cold, busy machine).
            again = page.evaluate(SCROLL, [FRAMES, STEP_PX])
            assert again["most"] <= MAX_TILES_IN_DOM
            p95 = min(p95, frame_stats(again["times"])[1])
            print(f"library, second fling: p95 {frame_stats(again['times'])[1]:.1f} ms")
        assert p95 <= MAX_P95_RATIO * baseline, (
            f"p95 frame {p95:.1f} ms is over {MAX_P95_RATIO}x the static grid's p95 ({baseline:.1f} ms)"
        )
    finally:
        context.close()


def test_viewer_draws_object_boxes_and_text_lines(browser, ui_only: str) -> None:  # type: ignore[no-untyped-def]
    """Regions come from the image processor, which the test stacks do not run (its models are not bundled): the
    one GetAsset answer is routed with an object and an OCR line; the viewer's drawing of them is the real code."""
    asset_id = "ab" * 32
    body = {
        "asset": {"asset_id": asset_id, "file_name": "receipt.jpg", "width": 400, "height": 300, "size_bytes": "1"},
        "samples": [
            {"kind": "SAMPLE_KIND_IMAGE"},
            {
                "kind": "SAMPLE_KIND_OBJECT",
                "label": "cup",
                "score": 0.9,
                "bbox": {"x": 10, "y": 20, "width": 100, "height": 50},
            },
            {
                "kind": "SAMPLE_KIND_TEXT",
                "text": "TOTAL 4.20",
                "polygon": [{"x": 5, "y": 5}, {"x": 90, "y": 5}, {"x": 90, "y": 20}],
            },
        ],
    }
    context = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=ui_only)
    page = context.new_page()
    page.route(
        f"**/api/assets/{asset_id}",
        lambda r: r.fulfill(status=200, content_type="application/json", body=json.dumps(body)),
    )
    page.route("**/api/assets/*/original", lambda r: r.fulfill(status=200, content_type="image/jpeg", body=thumbnail()))
    page.route(
        "**/api/assets?*", lambda r: r.fulfill(status=200, content_type="application/json", body='{"assets": []}')
    )
    try:
        page.goto(f"/#/asset/{asset_id}")
        layer = page.locator("dialog.viewer[open] svg.regions")
        layer.wait_for(state="attached")
        assert layer.get_attribute("viewBox") == "0 0 400 300"
        assert page.locator("svg.regions rect.box").get_attribute("width") == "100"
        assert page.locator("svg.regions polygon.ocr title").text_content() == "TOTAL 4.20"
        assert "2 regions" in page.locator(".viewer-info").inner_text()
    finally:
        context.close()
