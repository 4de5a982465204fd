"""The web UI with auth on, in Debian's Chromium: sign in with a key (HttpOnly cookie), the role hides what
it cannot do, writes carry the CSRF token, sign out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import stop_stack
from tests.security.conftest import SecureStack, start_secure_stack


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory, tiny_clip_dir: Path) -> Iterator[SecureStack]:
    s = start_secure_stack(tmp_path_factory, tiny_clip_dir)
    yield s
    stop_stack(s.stack)


def test_sign_in_role_and_sign_out(browser, secure: SecureStack) -> None:
    context = browser.new_context(base_url=secure.base_url)
    page = context.new_page()
    try:
        page.goto("/#/search")
        page.get_by_role("heading", name="Sign in").wait_for()
        assert not page.locator("nav").is_visible()
        page.get_by_label("API key").fill(secure.keys["revoked"])
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("alert").filter(has_text="KEY_REVOKED").wait_for()

        page.get_by_label("API key").fill(secure.keys["read"])
        page.get_by_role("button", name="Sign in").click()
        page.get_by_text("reader (read)").wait_for()
        assert page.locator("nav").is_visible()
        assert not page.get_by_role("link", name="Upload").is_visible()  # a read key cannot upload
        cookies = {c["name"]: c for c in context.cookies()}
        session = cookies["ordo_session"]
        assert session["httpOnly"] and session["sameSite"] == "Strict"
        assert page.evaluate("document.cookie") == ""  # no script can read the session
        page.goto("/#/jobs")
        page.get_by_role("heading", name="Jobs").wait_for()
        # Issue 16: delete is for admins; a reader never sees it, and the route refuses it anyway.
        page.goto("/#/library")
        # A retrying assertion: the library may render its bar again once its first page lands.
        expect(page.locator("#sel-delete")).to_have_css("display", "none", timeout=30_000)
        refused = page.evaluate(
            """async () => {
                const s = await (await fetch('/api/session')).json();
                const r = await fetch('/api/assets/batch-delete', {method: 'POST',
                    headers: {'content-type': 'application/json', 'X-CSRF-Token': s.csrf_token},
                    body: JSON.stringify({asset_ids: ['0'.repeat(64)]})});
                return r.status;
            }"""
        )
        assert refused == 403
        # Role-aware views (issue 16): a read key sees no analysis form, and a bookmarked Upload says why.
        page.goto("/#/clusters")
        page.locator("form.run-form").wait_for(state="attached")
        assert not page.locator("form.run-form").is_visible()
        page.goto("/#/upload")
        page.get_by_role("alert").filter(has_text="role is read").wait_for()
        assert page.locator(".dropzone").count() == 0

        page.get_by_role("button", name="Sign out").click()
        page.get_by_role("heading", name="Sign in").wait_for()
        assert "ordo_session" not in {c["name"] for c in context.cookies()}

        page.get_by_label("API key").fill(secure.keys["write"])
        page.get_by_role("button", name="Sign in").click()
        page.get_by_text("writer (write)").wait_for()
        assert page.get_by_role("link", name="Upload").is_visible()
        # A write from the page carries the CSRF token (the server refuses cookie writes without it).
        status = page.evaluate(
            """async () => {
                const s = await (await fetch('/api/session')).json();
                const body = JSON.stringify({algorithm: 'kmeans', n_clusters: 2});
                const headers = {'content-type': 'application/json'};
                const bare = await fetch('/api/runs/clustering', {method: 'POST', headers, body});
                headers['X-CSRF-Token'] = s.csrf_token;
                const withToken = await fetch('/api/runs/clustering', {method: 'POST', headers, body});
                return [bare.status, withToken.status];
            }"""
        )
        assert status[0] == 403 and status[1] not in (401, 403)
    finally:
        context.close()
