"""Failed attempts (logged and counted) and the audit log of admin actions (JSON lines).

The audit log is an append-only file (``ORDO_AUDIT_LOG``, default ``<data_dir>/audit.log``) plus the
``ordo.audit`` logger, so it is kept even where only logs are collected. Entries name the key id, never
the key.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import Counter

from ordo.config import Settings

log = logging.getLogger("ordo.security")
audit_log = logging.getLogger("ordo.audit")

AUTH_FAILURES = Counter(
    "ordo_auth_failures_total",
    "Refused requests: missing, bad, revoked or expired keys and denied rights",
    ["surface", "reason"],
)
_write_lock = threading.Lock()


def failed_attempt(surface: str, target: str, reason: str, key_id: str = "", peer: str = "") -> None:
    AUTH_FAILURES.labels(surface, reason).inc()
    log.warning("refused %s %s: %s (key %s, peer %s)", surface, target, reason, key_id or "-", peer or "-")


def audit_path(settings: Settings) -> Path:
    return Path(settings.audit_log) if settings.audit_log else settings.data_dir / "audit.log"


def audit(settings: Settings, action: str, key_id: str, **details: Any) -> None:
    """One admin action: who (key id), what, on what, when."""
    entry = {"time": datetime.now(UTC).isoformat(timespec="seconds"), "action": action, "key_id": key_id, **details}
    line = json.dumps(entry, sort_keys=True, default=str)
    audit_log.info(line)
    path = audit_path(settings)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _write_lock, path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
    except OSError as exc:  # the logger line above still holds it
        log.error("cannot append to audit log %s: %s", path, exc)
