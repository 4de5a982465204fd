"""The gateway against browsers' attacks, over real HTTP: cross-origin writes (CSRF), DNS rebinding
(Host), sessions in an HttpOnly SameSite=Strict cookie with a CSRF token, and no permissive CORS."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.security.conftest import SecureStack


def _files(path: Path) -> dict:
    return {"files": (path.name, path.read_bytes(), "image/jpeg")}


def test_a_cross_origin_upload_is_refused(secure: SecureStack, coco_images: list[Path]) -> None:
    url = f"{secure.base_url}/api/uploads"
    admin = secure.headers("admin")
    for headers in ({"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}, {"Origin": "null"}):
        answer = httpx.post(url, files=_files(coco_images[8]), headers={**admin, **headers})
        assert (answer.status_code, answer.json()["reason"]) == (403, "CROSS_ORIGIN")
    same = httpx.post(url, files=_files(coco_images[8]), headers={**admin, "Origin": secure.base_url})
    assert same.status_code == 200, same.text


def test_other_host_names_are_refused(secure: SecureStack) -> None:
    answer = httpx.get(f"{secure.base_url}/api/status", headers={"Host": "attacker.example", **secure.headers("read")})
    assert (answer.status_code, answer.json()["reason"]) == (421, "BAD_HOST")
    assert httpx.get(f"{secure.base_url}/healthz", headers={"Host": "localhost"}).status_code == 200


def test_session_cookie_csrf_and_sign_out(secure: SecureStack) -> None:
    with httpx.Client(base_url=secure.base_url) as browser:
        assert browser.get("/api/session").status_code == 401
        assert browser.post("/api/session", json={"api_key": secure.keys["revoked"]}).status_code == 401
        signed = browser.post("/api/session", json={"api_key": secure.keys["write"]})
        assert signed.status_code == 200 and signed.json()["principal"]["role"] == "write"
        cookie = signed.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
        assert secure.keys["write"] not in signed.text  # the key is never handed back to the page
        csrf = signed.json()["csrf_token"]
        assert browser.get("/api/session").json()["csrf_token"] == csrf
        assert browser.get("/api/jobs").status_code == 200  # reads need only the cookie
        body = {"algorithm": "kmeans", "n_clusters": 2}
        refused = browser.post("/api/runs/clustering", json=body)
        assert (refused.status_code, refused.json()["reason"]) == (403, "CSRF_TOKEN")
        wrong = browser.post("/api/runs/clustering", json=body, headers={"X-CSRF-Token": "x" * 43})
        assert wrong.status_code == 403
        allowed = browser.post("/api/runs/clustering", json=body, headers={"X-CSRF-Token": csrf})
        assert allowed.status_code not in (401, 403), allowed.text
        assert browser.get("/api/keys").status_code == 403  # a write key is no admin
        assert browser.delete("/api/session").status_code == 204
        assert browser.get("/api/jobs").status_code == 401


def test_keys_over_the_api_never_escalate(secure: SecureStack) -> None:
    admin_b = secure.headers("team_b")  # an admin of team-b only
    wider = httpx.post(f"{secure.base_url}/api/keys", json={"role": "read"}, headers=admin_b)
    assert (wider.status_code, wider.json()["reason"]) == (403, "KEY_ESCALATION")
    made = httpx.post(
        f"{secure.base_url}/api/keys",
        json={"role": "read", "libraries": ["team-b:read"], "expires": "1d"},
        headers=admin_b,
    )
    assert made.status_code == 200 and made.json()["key"].startswith("ordo_")
    key_id = made.json()["key_id"]
    listed = httpx.get(f"{secure.base_url}/api/keys", headers=secure.headers("admin")).json()["keys"]
    assert key_id in {k["key_id"] for k in listed} and all("key_hash" not in k for k in listed)
    revoked = httpx.delete(f"{secure.base_url}/api/keys/{key_id}", headers=secure.headers("admin"))
    assert revoked.json()["status"] == "revoked"
    again = httpx.get(f"{secure.base_url}/api/jobs", headers={"Authorization": f"Bearer {made.json()['key']}"})
    assert (again.status_code, again.json()["reason"]) == (401, "KEY_REVOKED")
    assert '"action": "create_key"' in (secure.stack.data_dir / "audit.log").read_text()


def test_no_permissive_cors(secure: SecureStack) -> None:
    preflight = httpx.options(
        f"{secure.base_url}/api/uploads",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    answer = httpx.get(f"{secure.base_url}/api/status", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in answer.headers
    assert answer.headers["x-frame-options"] == "DENY"
