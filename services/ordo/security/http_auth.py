"""The gateway's side of the policy: a FastAPI dependency that checks every route against the table,
browser sessions (HttpOnly, SameSite=Strict cookie; CSRF token), and an ASGI guard for the Host header
(DNS rebinding) and cross-origin writes.

Credentials, in order: ``Authorization: Bearer``, ``X-Api-Key``, the session cookie. The gateway forwards
the caller's key to the gRPC services, which check it again: the REST check gives early 401/403 answers;
the services' check is the one that cannot be bypassed.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from ordo.config import Settings
from ordo.errors import OrdoError, PermissionDenied, Reason
from ordo.security.audit import failed_attempt
from ordo.security.authenticator import Authenticator, bearer
from ordo.security.binding import is_loopback
from ordo.security.grpc_auth import forwarded_key
from ordo.security.policy import rest_access
from ordo.security.principal import ANONYMOUS, Principal, _current

SESSION_COOKIE = "ordo_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_SESSIONS = 10_000


@dataclass
class Session:
    token: str
    csrf: str
    expires: float


class SessionStore:
    """Server-side sessions in the gateway's memory: the cookie holds only a random id. A restart signs
    everyone out, which is the safe failure; the key itself never reaches the browser's script."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, token: str) -> tuple[str, Session]:
        session_id = secrets.token_urlsafe(32)
        session = Session(token, secrets.token_urlsafe(32), time.time() + self.seconds)
        with self._lock:
            if len(self._sessions) >= MAX_SESSIONS:
                self._expire()
            self._sessions[session_id] = session
        return session_id, session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        with self._lock:
            session = self._sessions.get(session_id[:100])
            if session is not None and session.expires < time.time():
                del self._sessions[session_id]
                return None
            return session

    def drop(self, session_id: str | None) -> None:
        with self._lock:
            self._sessions.pop(session_id or "", None)

    def _expire(self) -> None:
        now = time.time()
        for key in [k for k, s in self._sessions.items() if s.expires < now]:
            del self._sessions[key]
        if len(self._sessions) >= MAX_SESSIONS:  # still full: drop the oldest
            oldest = min(self._sessions, key=lambda k: self._sessions[k].expires)
            del self._sessions[oldest]


class GatewaySecurity:
    """What the gateway keeps for access control: the authenticator and the sessions."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.auth = Authenticator(settings)
        self.sessions = SessionStore(settings.session_hours * 3600)

    def credential(self, request: Request) -> tuple[str, Session | None]:
        token = bearer(request.headers.get("authorization")) or request.headers.get("x-api-key", "")[:512]
        if token:
            return token.strip(), None
        session = self.sessions.get(request.cookies.get(SESSION_COOKIE))
        return (session.token, session) if session else ("", None)

    async def dependency(self, request: Request) -> Principal:
        """Runs before every route (async, so the context variables it sets reach the route)."""
        route = request.scope.get("route")
        path = getattr(route, "path", request.url.path)
        method = request.method
        target = f"{method} {path}"
        access = rest_access(method, path)
        try:
            token, session = self.credential(request)
            if access == "public":
                principal = ANONYMOUS
            else:
                if session is not None and method not in SAFE_METHODS:
                    sent = request.headers.get(CSRF_HEADER, "")
                    if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
                        raise PermissionDenied(
                            "missing or wrong X-CSRF-Token for a signed-in session", reason=Reason.CSRF_TOKEN
                        )
                principal = self.auth.principal(token)
                self.auth.check(principal, access, target)
        except OrdoError as exc:
            failed_attempt("http", target, exc.reason, peer=request.client.host if request.client else "")
            raise
        _current.set(principal)
        forwarded_key.set(token or None)
        return principal


# --- the ASGI guard: Host header and cross-origin writes -----------------------------------------------
def _host_name(value: str) -> str:
    value = value.strip().lower()
    if value.startswith("["):
        return value[: value.find("]") + 1]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class OriginGuard:
    """Refuses requests for other host names (DNS rebinding) and state-changing requests a browser sent
    from another origin (CSRF), with or without auth. Non-browser clients send no Origin and pass."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        names = {h.strip().lower() for h in settings.allowed_hosts.split(",") if h.strip()}
        self.any_host = "*" in names
        self.hosts = names

    def host_allowed(self, host: str) -> bool:
        name = _host_name(host)
        return self.any_host or name in self.hosts or is_loopback(name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host", "")
        problem = None
        if not self.host_allowed(host):
            problem = (421, f"host '{_host_name(host)[:100]}' is not served here (set ORDO_ALLOWED_HOSTS)", "BAD_HOST")
        elif scope["method"] not in SAFE_METHODS:
            origin = headers.get("origin", "")
            fetch_site = headers.get("sec-fetch-site", "")
            cross = fetch_site in ("cross-site", "same-site") or (
                origin and origin != "null" and origin.split("://", 1)[-1].lower() != host.lower()
            )
            if cross or origin == "null":
                problem = (403, "cross-origin requests may not change anything", "CROSS_ORIGIN")
        if problem is None:
            await self.app(scope, receive, send_with_headers(send))
            return
        status, detail, reason = problem
        failed_attempt("http", f"{scope['method']} {scope.get('path', '')}", reason)
        body = json.dumps({"detail": detail, "reason": reason, "code": "PERMISSION_DENIED"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


def send_with_headers(send: Send) -> Send:
    async def wrapped(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
        await send(message)

    return wrapped  # type: ignore[return-value]
