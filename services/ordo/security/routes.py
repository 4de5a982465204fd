"""REST routes of the security layer: sign in/out of the web UI, API key management, the ops view.

Key management is also what ``ordo keys`` does against the store directly; here it goes through the
caller's key, so "never more rights than your own" is enforced (KeyStore.create(by=...)).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI, Request, Response
from pydantic import BaseModel, Field

from ordo.errors import Reason, Unauthenticated
from ordo.security.audit import audit
from ordo.security.http_auth import SESSION_COOKIE, GatewaySecurity
from ordo.security.keys import MAX_NAME_CHARS, parse_duration
from ordo.security.principal import LOCAL_ADMIN, Role, current_principal, parse_grants


class SignIn(BaseModel):
    api_key: str = Field(min_length=1, max_length=200)


class NewKeyBody(BaseModel):
    role: Literal["read", "write", "admin"]
    name: str = Field("", max_length=MAX_NAME_CHARS)
    libraries: list[str] = Field(default_factory=list, max_length=100, description="`name` or `name:read`.")
    expires: str = Field("", max_length=16, description="e.g. 30d, 12h; empty: never.")


def add_security_routes(router: FastAPI, security: GatewaySecurity) -> None:
    """Added on the app itself, so they carry the app's policy dependency like every other route."""
    settings = security.settings

    @router.post(
        "/api/session", tags=["security"], summary="Sign in with an API key: sets an HttpOnly, SameSite=Strict cookie."
    )
    async def sign_in(body: SignIn, request: Request, response: Response) -> dict[str, Any]:
        principal = security.auth.principal(body.api_key.strip())
        if not security.auth.required:
            principal = LOCAL_ADMIN
        session_id, session = security.sessions.create(body.api_key.strip())
        response.set_cookie(
            SESSION_COOKIE,
            session_id,
            max_age=int(security.sessions.seconds),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return {"auth": settings.auth, "principal": principal.describe(), "csrf_token": session.csrf}

    @router.get("/api/session", tags=["security"], summary="Who the browser is signed in as (401 when signed out).")
    async def whoami(request: Request) -> dict[str, Any]:
        if not security.auth.required:
            return {"auth": "off", "principal": LOCAL_ADMIN.describe(), "csrf_token": ""}
        session = security.sessions.get(request.cookies.get(SESSION_COOKIE))
        if session is None:
            raise Unauthenticated("not signed in", reason=Reason.NO_SESSION)
        principal = security.auth.principal(session.token)  # revoked keys end their sessions
        return {"auth": "required", "principal": principal.describe(), "csrf_token": session.csrf}

    @router.delete("/api/session", status_code=204, tags=["security"], summary="Sign out.")
    async def sign_out(request: Request) -> Response:
        security.sessions.drop(request.cookies.get(SESSION_COOKIE))
        response = Response(status_code=204)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return response

    @router.get("/api/keys", tags=["security"], summary="API keys (never the keys themselves).")
    def list_keys() -> dict[str, Any]:
        return {"keys": [record.public() for record in security.auth.keys.list()]}

    @router.post("/api/keys", tags=["security"], summary="Create a key; the key is in this answer only.")
    def create_key(body: NewKeyBody) -> dict[str, Any]:
        caller = current_principal()
        new = security.auth.keys.create(
            role=Role.parse(body.role),
            name=body.name,
            libraries=parse_grants(body.libraries),
            expires_in=parse_duration(body.expires) if body.expires else None,
            by=caller,
        )
        audit(settings, "create_key", caller.key_id, new_key=new.record.key_id, role=body.role)
        return {"key": new.token, **new.record.public()}

    @router.delete(
        "/api/keys/{key_id}", tags=["security"], summary="Revoke a key (effective everywhere within seconds)."
    )
    def revoke_key(key_id: str) -> dict[str, Any]:
        record = security.auth.keys.revoke(key_id[:40])
        audit(settings, "revoke_key", current_principal().key_id, target=record.key_id)
        return record.public()

    @router.post(
        "/api/keys/{key_id}/rotate", tags=["security"], summary="A new secret for a key; the old one stops working."
    )
    def rotate_key(key_id: str) -> dict[str, Any]:
        new = security.auth.keys.rotate(key_id[:40])
        audit(settings, "rotate_key", current_principal().key_id, target=key_id[:40])
        return {"key": new.token, **new.record.public()}

    @router.get("/api/ops", tags=["ops"], summary="Queue depth, dead letters, live workers (the ops view).")
    def ops() -> dict[str, Any]:
        from ordo.metrics import ops_snapshot

        return ops_snapshot(settings)
