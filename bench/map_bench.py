"""Benchmark: the web UI's map while panning, at 100k points, with thumbnails vs dots only (issue 16).

Method. The gateway serves the real built UI (``make web``) to Debian's Chromium (headless, Playwright);
the map's data is a synthetic 100k-point projection in ten Gaussian blobs, answered by request routing
together with small JPEG thumbnails (``tests/fixtures/synthetic_map.py``; a real 100k projection takes far
longer to compute than the row may). In the page, a drag is replayed one pointer move per animation frame
(``requestAnimationFrame``), and the frame timestamps and the view's own draw time of every frame are kept.

Rows, all in one run and one browser:

* **whole map, dots**: scale 1, all 100k points in view — the "≥ 30 fps while panning" target;
* **zoomed, dots only** (the plain baseline): zoomed on one blob until a few hundred points are in view,
  thumbnails off;
* **zoomed, thumbnails**: the same view and path with thumbnails drawn from the texture atlas, after it
  has loaded what is in view.

Reported: frames per second over the drag, p50/p95 frame interval, p50/p95 draw time, and the ratio of
thumbnail fps to dots-only fps (1.0 = thumbnails cost nothing visible). Headless Chromium paces frames at
60 Hz, so 60 fps is the ceiling.
"""

from __future__ import annotations

import itertools
import statistics
import time
from typing import Any

from bench.common import BenchError, load_avg, log

POINTS = 100_000
CLUSTERS = 10
VIEWPORT = {"width": 1440, "height": 900}
TARGET_FPS = 30.0
THUMB_VISIBLE_MAX = 600  # as THUMB_MAX in web/src/views/map_render.ts

DRAG = """async ([frames, step]) => {
  const c = document.querySelector('#map-canvas');
  const r = c.getBoundingClientRect();
  let x = r.left + r.width / 2, y = r.top + r.height / 2;
  const fire = (type) => c.dispatchEvent(new PointerEvent(type, {pointerId: 21, pointerType: 'mouse',
    clientX: x, clientY: y, buttons: type === 'pointerup' ? 0 : 1, bubbles: true}));
  fire('pointerdown');
  const stamps = [], draws = [], thumbs = [];
  await new Promise((done) => {
    let i = 0;
    const tick = (t) => {
      stamps.push(t);
      draws.push(Number(c.dataset.drawMs));
      thumbs.push(Number(c.dataset.thumbsDrawn));
      if (i++ >= frames) return done();
      x += Math.floor(i / 30) % 2 ? -step : step;  // back and forth, so the view stays on the blob
      fire('pointermove');
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
  fire('pointerup');
  return {stamps, draws, thumbs};
}"""


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def _measure(page: Any, frames: int, step: float) -> dict[str, Any]:
    raw = page.evaluate(DRAG, [frames, step])
    stamps = raw["stamps"]
    intervals = [b - a for a, b in itertools.pairwise(stamps[1:])]  # the first frame has no move yet
    draws = [d for d in raw["draws"][2:] if d == d]
    seconds = (stamps[-1] - stamps[1]) / 1000
    return {
        "frames": len(intervals),
        "fps": round(len(intervals) / seconds, 1) if seconds > 0 else None,
        "frame_ms_p50": _pct(intervals, 0.5),
        "frame_ms_p95": _pct(intervals, 0.95),
        "draw_ms_p50": _pct(draws, 0.5),
        "draw_ms_p95": _pct(draws, 0.95),
        "thumbnails_drawn_p50": statistics.median(raw["thumbs"][2:]),
    }


def _blob_centre(page: Any, projection: dict[str, Any]) -> tuple[float, float]:
    """Page coordinates of blob 0's centre at scale 1 (the view's normalisation, redone here)."""
    xs, ys = projection["x"], projection["y"]
    min_x, max_x, min_y, max_y = min(xs), max(xs), min(ys), max(ys)
    span = max(max_x - min_x, max_y - min_y) or 1
    own = [i for i in range(0, len(xs), CLUSTERS)]
    cx = statistics.fmean(xs[i] for i in own)
    cy = statistics.fmean(ys[i] for i in own)
    nx = (cx - min_x) / span + (1 - (max_x - min_x) / span) / 2
    ny = (cy - min_y) / span + (1 - (max_y - min_y) / span) / 2
    box = page.locator("#map-canvas").bounding_box()
    pad = 16
    size = min(box["width"], box["height"]) - 2 * pad
    base_x = pad + (box["width"] - 2 * pad - size) / 2
    base_y = pad + (box["height"] - 2 * pad - size) / 2
    return box["x"] + base_x + nx * size, box["y"] + base_y + ny * size


def run(frames: int = 180) -> dict[str, Any]:
    from pathlib import Path

    from ordo.config import Settings
    from ordo.gateway.app import STATIC_DIR
    from ordo.gateway.server import GatewayThread
    from ordo.launch import free_port
    from tests.fixtures.synthetic_map import SyntheticMap

    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        raise BenchError("Chromium is missing (/usr/bin/chromium): apt-get install -y chromium")
    if not (STATIC_DIR / "index.html").exists():
        raise BenchError("the web UI is not built: run `make web`")
    from playwright.sync_api import sync_playwright

    synthetic = SyntheticMap(POINTS, CLUSTERS)
    port = free_port()
    gateway = GatewayThread(Settings(address=f"127.0.0.1:{free_port()}"), "127.0.0.1", port)
    if not gateway.start():
        raise BenchError("the gateway did not start")
    base_url = f"http://127.0.0.1:{port}"
    load_before = load_avg()
    results: dict[str, Any] = {"config": {"points": POINTS, "frames": frames, "viewport": VIEWPORT}}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(chromium), args=["--headless", "--no-sandbox"], headless=True
            )
            page = browser.new_context(viewport=VIEWPORT, base_url=base_url).new_page()
            page.route("**/api/**", synthetic.router(base_url))
            started = time.perf_counter()
            page.goto("/#/map?thumbs=0")
            page.locator("#map-canvas[data-point-count]").wait_for(timeout=120_000)
            results["first_draw_s"] = round(time.perf_counter() - started, 2)
            log(f"map: {POINTS} points drawn after {results['first_draw_s']} s; panning the whole map")
            results["whole_dots"] = _measure(page, frames, 3)

            x, y = _blob_centre(page, synthetic.projection)
            page.mouse.move(x, y)
            for _ in range(40):  # zoom on blob 0 until few enough points are in view for thumbnails
                drawn = int(page.locator("#map-canvas").get_attribute("data-drawn-count") or 0)
                if drawn <= THUMB_VISIBLE_MAX * 0.8:
                    break
                page.mouse.wheel(0, -240)
                page.wait_for_timeout(60)
            results["zoomed_points_in_view"] = int(page.locator("#map-canvas").get_attribute("data-drawn-count") or 0)
            results["zoomed_scale"] = float(page.locator("#map-canvas").get_attribute("data-scale") or 0)
            log(f"map: zoomed to {results['zoomed_scale']}x, {results['zoomed_points_in_view']} points in view")
            results["zoomed_dots"] = _measure(page, frames, 2)

            page.check("#map-thumbs")
            wanted = results["zoomed_points_in_view"]
            atlas_started = time.perf_counter()
            page.wait_for_function(
                f"Number(document.querySelector('#map-canvas').dataset.atlasLoaded) >= {int(wanted * 0.95)}",
                timeout=120_000,
                polling=100,
            )
            results["atlas_fill_s"] = round(time.perf_counter() - atlas_started, 2)
            results["zoomed_thumbnails"] = _measure(page, frames, 2)
            browser.close()
    finally:
        gateway.stop()
    dots, thumbs = results["zoomed_dots"]["fps"], results["zoomed_thumbnails"]["fps"]
    results["ratio_thumbnails_vs_dots"] = round(thumbs / dots, 2) if dots and thumbs else None
    results["target_fps"] = TARGET_FPS
    results["passed"] = bool(
        results["whole_dots"]["fps"] and results["whole_dots"]["fps"] >= TARGET_FPS and thumbs and thumbs >= TARGET_FPS
    )
    results["load_avg_1m"] = {"before": load_before, "after": load_avg()}
    return results


def table_rows(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    sec = f"map @{r['config']['points']:,} points (Chromium, pan)"
    rows = []
    for key, label in (
        ("whole_dots", "whole map, dots"),
        ("zoomed_dots", f"zoomed {r['zoomed_scale']}x, dots only (baseline)"),
        ("zoomed_thumbnails", "zoomed, thumbnails (atlas)"),
    ):
        m = r[key]
        rows.append(
            (
                sec,
                f"{label}: fps, frame p50/p95, draw p50/p95",
                f"{m['fps']}  ({m['frame_ms_p50']} / {m['frame_ms_p95']} ms; draw {m['draw_ms_p50']} / "
                f"{m['draw_ms_p95']} ms; {m['thumbnails_drawn_p50']:.0f} thumbnails)",
            )
        )
    rows.append(
        (
            sec,
            "thumbnails / dots fps ratio",
            f"{r['ratio_thumbnails_vs_dots']}  ({r['zoomed_points_in_view']} points in view, atlas filled in "
            f"{r['atlas_fill_s']} s; load avg {r['load_avg_1m']['before']} → {r['load_avg_1m']['after']})",
        )
    )
    return rows
