"""The gRPC client's retry policy, as gRPC itself implements it: a ``retryPolicy`` in the channel's
service config (gRFC A6), instead of hand-written retry loops around calls.

Why only reads: a retried call may run twice on the server. ``Get*``, ``List*`` and ``Search*`` are
idempotent (as are EmbedTexts, FindDuplicates and CompareRuns), so a transient UNAVAILABLE (a server
restarting, a connection reset between attempts) is retried with exponential backoff. Writes (uploads,
ingestion, clustering, deletes) are left to the caller, who knows whether a second attempt is safe
(uploads carry a request_id for that). The method list is read from the contracts' own descriptors, so a
new read RPC is covered without touching this module.
"""

from __future__ import annotations

import json
from typing import Any, Final

from ordo.v1 import analysis_pb2, ingest_pb2, search_pb2

READ_PREFIXES: Final = ("Get", "List", "Search")
# Reads whose names do not say so: they compute an answer and change nothing a second call would see.
OTHER_READS: Final = frozenset({"EmbedTexts", "FindDuplicates", "CompareRuns"})
RETRY_POLICY: Final = {
    "maxAttempts": 4,  # the first call and three retries
    "initialBackoff": "0.2s",
    "maxBackoff": "3s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}
# gRPC's own reconnect backoff grows to 120 s, and while a connection waits out its backoff every call on it
# fails at once with UNAVAILABLE. A service that restarted in two seconds would stay unreachable to a
# long-lived client (the gateway) for up to two minutes; capped at 2 s (gRPC adds ±20 % jitter), it is back
# within ~2.4 s of listening.
RECONNECT_OPTIONS: Final = (
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.min_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 2000),
)
_FILES = (ingest_pb2, search_pb2, analysis_pb2)


def read_methods() -> list[dict[str, str]]:
    """``{"service": ..., "method": ...}`` for every idempotent read RPC of Ordo's public services."""
    names = []
    for module in _FILES:
        for service in module.DESCRIPTOR.services_by_name.values():
            names += [
                {"service": service.full_name, "method": m.name}
                for m in service.methods
                if m.name.startswith(READ_PREFIXES) or m.name in OTHER_READS
            ]
    return names


def service_config() -> str:
    """The JSON service config that retries the reads on UNAVAILABLE."""
    return json.dumps({"methodConfig": [{"name": read_methods(), "retryPolicy": RETRY_POLICY}]})


def channel_options() -> list[tuple[str, Any]]:
    """Channel options that turn the policy on (``grpc.enable_retries`` is on by default; said anyway) and
    keep reconnects quick."""
    return [("grpc.enable_retries", 1), ("grpc.service_config", service_config()), *RECONNECT_OPTIONS]
