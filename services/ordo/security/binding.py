"""ORDO_AUTH=off is allowed only while every listener binds loopback (Redis's "protected mode" rule).

Checked before any listener opens, so a misconfigured deployment never serves a single anonymous call.
"""

from __future__ import annotations

import ipaddress

from ordo.config import Settings
from ordo.errors import InvalidInput, Reason

LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    host = host.strip().strip("[]")
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it could resolve anywhere


def check_binds(settings: Settings, *hosts: str) -> None:
    """Refuse to start when auth is off and any listener is reachable from other machines."""
    if settings.auth == "required":
        return
    exposed = sorted({h for h in hosts if h and not is_loopback(h)})
    if exposed:
        raise InvalidInput(
            f"refusing to listen on {', '.join(exposed)} without authentication. Either bind loopback "
            "(ORDO_HOST=127.0.0.1), or set ORDO_AUTH=required and create a key first: "
            "`ordo keys create --role admin --name me` (against this data directory / object store), "
            "then send it as ORDO_API_KEY.",
            reason=Reason.AUTH_REQUIRED_FOR_BIND,
        )
