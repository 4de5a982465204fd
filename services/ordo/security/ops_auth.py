"""``/metrics`` and ``/ops``: open on loopback (ORDO_METRICS_HOST, the default 127.0.0.1); on any other
interface they need an admin key (``Authorization: Bearer``, which Prometheus's ``authorization``
scrape option sends). No CORS header is ever sent: the web UI reads the ops view through the gateway."""

from __future__ import annotations

from collections.abc import Mapping

from ordo.config import Settings
from ordo.errors import OrdoError
from ordo.security.audit import failed_attempt
from ordo.security.authenticator import Authenticator, bearer
from ordo.security.binding import is_loopback
from ordo.security.policy import OPS_POLICY

_authenticators: dict[int, Authenticator] = {}


def _authenticator(settings: Settings) -> Authenticator:
    """One per settings object (its key cache is what keeps scrapes cheap)."""
    return _authenticators.setdefault(id(settings), Authenticator(settings))


def refuse_ops_request(
    settings: Settings, bound_host: str, path: str, headers: Mapping[str, str]
) -> tuple[int, str] | None:
    """None to serve, else (HTTP status, message)."""
    access = OPS_POLICY.get(path)
    if access is None or access == "public" or is_loopback(bound_host) or settings.auth != "required":
        return None
    auth = _authenticator(settings)
    try:
        principal = auth.principal(bearer(headers.get("authorization")))
        auth.check(principal, access, path)
    except OrdoError as exc:
        failed_attempt("ops", path, exc.reason)
        return (
            401 if exc.reason in ("MISSING_KEY", "MALFORMED_KEY", "UNKNOWN_KEY", "KEY_REVOKED", "KEY_EXPIRED") else 403,
            exc.message,
        )
    return None
