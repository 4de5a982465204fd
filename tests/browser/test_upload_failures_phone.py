"""Against the real embedded stack (tiny CLIP): a file the server accepts but the worker cannot decode (a
truncated JPEG) ends up shown as failed in the upload list, with the worker's reason, once the job says so;
and at phone size (390×844) the first search result starts in the top third of the screen and the viewer's
close control is on screen. Screenshots go to $ORDO_TEST_ARTIFACTS."""

from __future__ import annotations

from pathlib import Path

from tests.fixtures.gateway_stack import GatewayStack

PHONE = {"width": 390, "height": 844}
JOB_TIMEOUT_MS = 300_000


def test_worker_failure_in_upload_list_and_phone_layout(  # type: ignore[no-untyped-def]
    browser, gw: GatewayStack, coco_images: list[Path], artifacts: Path, tmp_path: Path
) -> None:
    truncated = tmp_path / "truncated.jpg"
    data = coco_images[3].read_bytes()
    truncated.write_bytes(data[: len(data) // 3])  # a valid header, then nothing: decodes only in part
    context = browser.new_context(viewport=PHONE, base_url=gw.base_url, is_mobile=True, has_touch=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto("/#/upload")
        page.set_input_files("#file-input", [str(p) for p in coco_images[:3]] + [str(truncated)])
        summary = page.locator(".summary[data-state]")
        summary.wait_for(timeout=JOB_TIMEOUT_MS)
        job_failed = int(page.locator(".job .counts").inner_text().split(" failed")[0].split("·")[-1].strip())
        row = page.locator(".files li[data-path='truncated.jpg'] .outcome")
        # Whatever stage refuses it (the server on arrival, or the worker later), the row ends up failed
        # with a reason, and the list agrees with the job's own count.
        assert "failed" in row.get_attribute("class"), row.inner_text()
        assert row.inner_text().startswith("failed: ")
        assert job_failed >= 1
        assert page.locator(".files li .outcome.failed").count() == job_failed
        assert page.locator(".files li .outcome.new").count() == 3
        page.screenshot(path=artifacts / "upload-worker-failure-phone.png", full_page=True)

        # Phone: a compact header and folded filters put the first result in the top third.
        page.goto("/#/search?q=people")
        first = page.locator(".results .tile").first
        first.wait_for()
        top = first.bounding_box()["y"]
        assert top < PHONE["height"] / 3, f"the first result starts at y={top}"
        assert page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth") <= 0
        page.screenshot(path=artifacts / "search-first-result-phone.png")

        # The viewer fills the screen and its close control stays on it, even scrolled down.
        first.click()
        dialog = page.locator("dialog[open]")
        dialog.wait_for()
        page.mouse.wheel(0, 2000)
        close = dialog.get_by_role("button", name="Close")
        box = close.bounding_box()
        assert box and box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"]
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        page.screenshot(path=artifacts / "viewer-phone.png")
        close.click()
        dialog.wait_for(state="detached")
    finally:
        context.close()
    assert not errors, errors
