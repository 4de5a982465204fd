"""Closed-loop load generation shared by the concurrency benchmark and the soak test.

Each client is a thread that calls its function back to back for the duration and records every call's
latency; an exception is an error (counted, the first few kept). Client threads share one process, so the
client side costs CPU on the same 2 cores as the server: the numbers are what a co-located load sees, and
a ratio against one client in the same run cancels most of that.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.common import load_avg, percentiles_ms


@dataclass
class LoadResult:
    clients: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return len(self.latencies) + self.errors

    def summary(self) -> dict[str, Any]:
        ok = len(self.latencies)
        return {
            "clients": self.clients,
            "seconds": round(self.seconds, 1),
            "requests": self.requests,
            "errors": self.errors,
            "error_samples": self.error_samples[:5],
            "req_per_s": round(ok / self.seconds, 1) if self.seconds else 0.0,
            **(percentiles_ms(self.latencies) if self.latencies else {}),
            "p95_ms": round(float(np.percentile(np.asarray(self.latencies) * 1000, 95)), 3) if ok else None,
            "load_avg_1m": load_avg(),
        }


def run_clients(
    clients: int, call: Callable[[int, int], Any], seconds: float, *, stop: threading.Event | None = None
) -> LoadResult:
    """``call(client_index, call_index)`` from ``clients`` threads for ``seconds``; all latencies and errors."""
    result = LoadResult(clients, seconds)
    lock = threading.Lock()
    stop = stop or threading.Event()
    start = threading.Barrier(clients + 1)

    def loop(index: int) -> None:
        start.wait()
        n = 0
        latencies: list[float] = []
        errors: list[str] = []
        while not stop.is_set():
            t0 = time.perf_counter()
            try:
                call(index, n)
                latencies.append(time.perf_counter() - t0)
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
            n += 1
        with lock:
            result.latencies.extend(latencies)
            result.errors += len(errors)
            result.error_samples.extend(errors[:2])

    threads = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    stop.wait(seconds)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    result.seconds = time.perf_counter() - began
    return result
