"""Fair use: who a caller is, how fast they may call, and how many long-lived streams they may hold.

Shared by the gRPC interceptor (:mod:`ordo.grpc_api.guards`) and the REST gateway
(:mod:`ordo.gateway.guards`) so both doors count the same way. Rate limiting uses the maintained
``limits`` package (moving window, in-process memory storage: each service process limits what it
serves), rather than a hand-written token bucket.

:func:`client_identity` is the one place that decides whose budget a call spends: the API key of the
authenticated principal when there is one, else the peer address.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass

from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from ordo.errors import TooLarge
from ordo.security.principal import ANONYMOUS, LOCAL_ADMIN, principal_or_none

RATE_LIMITED = "RATE_LIMITED"
TOO_MANY_STREAMS = "TOO_MANY_STREAMS"


class Throttled(TooLarge):
    """Over a fair-use limit: RESOURCE_EXHAUSTED (gRPC) / 429 (REST), with a retry hint in seconds."""

    reason = RATE_LIMITED

    def __init__(self, message: str, *, reason: str, retry_after: float) -> None:
        super().__init__(message, reason=reason)
        self.retry_after = max(1.0, retry_after)


def client_identity(peer: str) -> str:
    """Whose budget a call spends. ``peer``: a gRPC peer (``ipv4:1.2.3.4:5678``, ``ipv6:[::1]:5678``,
    ``unix:...``) or an HTTP client host. The port is dropped (one client, many connections).

    With auth on, a caller with an API key spends its key's budget wherever it connects from (the
    gateway forwards each caller's key, so REST users behind one gateway are still told apart); the
    shared principals (auth off, anonymous) fall back to the address."""
    principal = principal_or_none()
    if principal is not None and principal.key_id not in (LOCAL_ADMIN.key_id, ANONYMOUS.key_id):
        return f"key:{principal.key_id}"
    if peer.startswith(("ipv4:", "ipv6:")):
        address = peer.split(":", 1)[1]
        host = address.rsplit(":", 1)[0] if address.count(":") == 1 or address.startswith("[") else address
        return "addr:" + host.strip("[]")
    if peer.startswith("unix:"):
        return "unix"
    return "addr:" + (peer or "unknown")


class RateLimiter:
    """Per-identity request budget; ``spec`` in the ``limits`` notation, e.g. ``"200/second;5000/minute"``.
    An empty spec disables it."""

    def __init__(self, spec: str, exempt: frozenset[str] = frozenset()) -> None:
        self.items = parse_many(spec) if spec.strip() else []
        self.exempt = exempt
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    @property
    def enabled(self) -> bool:
        return bool(self.items)

    def check(self, identity: str) -> None:
        if identity in self.exempt:
            return
        for item in self.items:
            if not self._limiter.hit(item, identity):
                reset, _ = self._limiter.get_window_stats(item, identity)
                raise Throttled(
                    f"too many requests: the limit is {item} per client; retry shortly",
                    reason=RATE_LIMITED,
                    retry_after=reset - time.time(),
                )


@dataclass
class StreamSlots:
    """Counts open long-lived streams (WatchJob, UploadImages, SSE) per identity and in total, so
    streams can never take the threads that unary calls and health checks need."""

    total: int
    per_client: int

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._open: Counter[str] = Counter()

    def acquire(self, identity: str) -> None:
        with self._lock:
            if sum(self._open.values()) >= self.total:
                raise Throttled(
                    f"the server holds its maximum of {self.total} open streams; retry shortly",
                    reason=TOO_MANY_STREAMS,
                    retry_after=5,
                )
            if self._open[identity] >= self.per_client:
                raise Throttled(
                    f"this client already holds {self.per_client} open streams (the limit); close one first",
                    reason=TOO_MANY_STREAMS,
                    retry_after=5,
                )
            self._open[identity] += 1

    def release(self, identity: str) -> None:
        with self._lock:
            self._open[identity] -= 1
            if self._open[identity] <= 0:
                del self._open[identity]

    @property
    def in_use(self) -> int:
        with self._lock:
            return sum(self._open.values())
