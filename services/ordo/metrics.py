"""Ordo's operational view: Prometheus ``/metrics`` on every process, and ``/ops`` (JSON) for people and
the web UI — queue depth, tasks in flight, dead letters, live workers and their throughput, running jobs.

Every service process and every worker serves both on ``ORDO_METRICS_PORT`` (0 = off). The process's own
counters (batches, images, stage seconds) are in-memory Prometheus metrics; the shared picture (queue,
dead letters, workers) is read from the broker / Redis at scrape time by :class:`OpsCollector`, so any
instance answers the same thing. Workers publish a heartbeat with their totals after each batch (a
Redis hash with a TTL), which is how the view knows who is alive and how fast each one is.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import redis
from prometheus_client import REGISTRY, Counter, Histogram, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from ordo.config import Settings
from ordo.security.binding import check_binds
from ordo.security.ops_auth import refuse_ops_request

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)

BATCHES = Counter("ordo_worker_batches_total", "Embedding batches finished by this worker", ["outcome"])
IMAGES = Counter("ordo_worker_images_total", "Images handled by this worker", ["outcome"])
STAGE_SECONDS = Histogram(
    "ordo_worker_stage_seconds",
    "Seconds per batch in each stage (fetch and decode add up across decoder threads)",
    ["stage"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
MERGED_PASSES = Counter(
    "ordo_worker_merged_forward_passes_total", "Forward passes that served several tasks at once (cross-task batching)"
)
DEAD_LETTERS = Counter("ordo_worker_dead_letters_total", "Dead letters written by this worker", ["reason"])

WORKER_KEY = "ordo:workers:"
HEARTBEAT_TTL_S = 60


def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=1, decode_responses=True)


# --- worker heartbeats ---------------------------------------------------------------------------
class Heartbeat:
    """A worker's totals in Redis (``ordo:workers:<name>``, expiring): the ops view's list of live workers."""

    def __init__(self, settings: Settings, name: str) -> None:
        self.name = name
        self._client = _redis(settings.redis_url) if settings.job_store == "redis" else None
        self._started = time.time()

    def beat(self, images: int = 0, failed: int = 0, seconds: float = 0.0) -> None:
        if self._client is None:
            return
        key = WORKER_KEY + self.name
        try:
            pipe = self._client.pipeline(transaction=True)
            pipe.hsetnx(key, "started", f"{self._started:.3f}")
            pipe.hincrby(key, "batches", 1 if (images or failed) else 0)
            pipe.hincrby(key, "images", images)
            pipe.hincrby(key, "failed", failed)
            pipe.hincrbyfloat(key, "busy_seconds", seconds)
            pipe.hset(key, "last_seen", f"{time.time():.3f}")
            pipe.expire(key, HEARTBEAT_TTL_S)
            pipe.execute()
        except RedisError as exc:  # observability must never fail a batch
            log.debug("heartbeat not written: %s", exc)


# --- the shared picture --------------------------------------------------------------------------
def queue_depth(settings: Settings) -> dict[str, int]:
    """Messages waiting and taken-but-unacknowledged on the embedding queue."""
    # Worker and wiring modules are imported when first scraped, not at import: they pull in Celery and the
    # adapters, which a service process that only exposes its counters should not pay for at start-up.
    from ordo.worker.celery_app import EMBED_QUEUE

    if settings.broker_url.startswith("redis"):
        client = redis.Redis.from_url(settings.broker_url, socket_timeout=2, socket_connect_timeout=1)
        pipe = client.pipeline()
        pipe.llen(EMBED_QUEUE)
        pipe.hlen("unacked")
        waiting, unacked = pipe.execute()
        return {"waiting": int(waiting), "in_flight": int(unacked)}
    from ordo.worker.celery_app import queue_path
    from ordo.worker.sqlite_queue import counts

    found = counts(queue_path(settings))
    return {"waiting": found["ready"], "in_flight": found["taken"]}


def workers(settings: Settings) -> list[dict[str, Any]]:
    if settings.job_store != "redis":
        return []
    client = _redis(settings.redis_url)
    out = []
    now = time.time()
    for key in sorted(client.scan_iter(match=WORKER_KEY + "*", count=200)):
        h = client.hgetall(key)
        if not h:
            continue
        busy = float(h.get("busy_seconds", 0) or 0)
        images = int(h.get("images", 0) or 0)
        out.append(
            {
                "name": key.removeprefix(WORKER_KEY),
                "batches": int(h.get("batches", 0) or 0),
                "images": images,
                "failed": int(h.get("failed", 0) or 0),
                "images_per_busy_second": round(images / busy, 2) if busy else 0.0,
                "seconds_since_seen": round(now - float(h.get("last_seen", now)), 1),
            }
        )
    return out


def ops_snapshot(settings: Settings, dead_letter_limit: int = 20) -> dict[str, Any]:
    """Everything the ops view shows; each part reports its own error instead of failing the whole."""
    from ordo.app import create_job_store
    from ordo.worker.dead_letters import create_dead_letters

    snapshot: dict[str, Any] = {"mode": settings.mode, "broker": settings.broker_url.split(":", 1)[0]}
    try:
        snapshot["queue"] = queue_depth(settings)
    except Exception as exc:
        snapshot["queue"] = {"error": str(exc)}
    try:
        letters = create_dead_letters(settings)
        snapshot["dead_letters"] = {
            "count": letters.count(),
            "recent": [vars(d) for d in letters.list(dead_letter_limit)],
        }
    except Exception as exc:
        snapshot["dead_letters"] = {"error": str(exc)}
    try:
        snapshot["workers"] = workers(settings)
    except Exception as exc:
        snapshot["workers"] = {"error": str(exc)}
    try:
        jobs, _ = create_job_store(settings).list(page_size=50)
        snapshot["jobs"] = [
            {
                "job_id": j.job_id,
                "state": j.state.value,
                "total": j.total,
                "done": j.done_count,
                "failed": j.failed,
                "pending": j.pending,
                "rate_per_second": round(j.rate_per_second, 2),
                "eta_seconds": round(j.eta_seconds, 1),
            }
            for j in jobs
            if not j.state.is_final
        ]
    except Exception as exc:
        snapshot["jobs"] = {"error": str(exc)}
    return snapshot


class OpsCollector(Collector):
    """Shared gauges, read at scrape time (so every instance exports the same numbers)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def collect(self) -> Iterable[GaugeMetricFamily]:
        try:
            depth = queue_depth(self.settings)
        except Exception:
            depth = {}
        waiting = GaugeMetricFamily("ordo_queue_waiting", "Embedding tasks waiting in the queue")
        waiting.add_metric([], depth.get("waiting", -1))
        yield waiting
        in_flight = GaugeMetricFamily("ordo_queue_in_flight", "Embedding tasks taken by a worker, not yet acked")
        in_flight.add_metric([], depth.get("in_flight", -1))
        yield in_flight
        try:
            from ordo.worker.dead_letters import create_dead_letters

            dead = create_dead_letters(self.settings).count()
        except Exception:
            dead = -1
        letters = GaugeMetricFamily("ordo_dead_letters", "Dead letters recorded (all workers)")
        letters.add_metric([], dead)
        yield letters
        try:
            live = workers(self.settings)
        except Exception:
            live = []
        gauge = GaugeMetricFamily("ordo_workers_alive", "Workers with a heartbeat in the last minute")
        gauge.add_metric([], len(live))
        yield gauge
        rate = GaugeMetricFamily(
            "ordo_worker_images_per_busy_second", "Each live worker's throughput while busy", labels=["worker"]
        )
        for w in live:
            rate.add_metric([w["name"]], w["images_per_busy_second"])
        yield rate


# --- the HTTP endpoint ---------------------------------------------------------------------------
# ``/metrics`` is prometheus_client's own WSGI app (its exposition, content negotiation and ``name[]``
# filtering), served by prometheus_client's threading WSGI server. What Ordo adds around it, and why
# ``start_http_server`` alone does not do the job: the same port also answers ``/ops`` (JSON) and
# ``/healthz``, and every path passes ``refuse_ops_request`` first (off loopback, with auth on, a key with
# the path's role is required), which prometheus_client's server has no hook for.
class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("metrics: " + format, *args)


def _plain(start_response: StartResponse, status: str, body: bytes, ctype: str = "text/plain") -> list[bytes]:
    start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(body)))])
    return [body]


def ops_app(settings: Settings, role: str, bound_host: str) -> WSGIApplication:
    """``/metrics`` (Prometheus), ``/ops`` (JSON), ``/`` and ``/healthz`` (``ok``), behind the ops policy."""
    metrics = make_wsgi_app(REGISTRY)

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        refusal = refuse_ops_request(settings, bound_host, path, headers)
        if refusal is not None:
            status, message = refusal
            return _plain(start_response, f"{status} {HTTPStatus(status).phrase}", f"{message}\n".encode())
        if path == "/metrics":
            return metrics(environ, start_response)
        if path == "/ops":
            snapshot = {"role": role, "host": socket.gethostname(), "pid": os.getpid()}
            snapshot.update(ops_snapshot(settings))
            return _plain(start_response, "200 OK", json.dumps(snapshot, indent=1).encode(), "application/json")
        if path in ("/", "/healthz"):
            return _plain(start_response, "200 OK", b"ok\n")
        return _plain(start_response, "404 Not Found", b"not found\n")

    return app


_collector_lock = threading.Lock()
_collector_registered = False


def start_metrics_server(settings: Settings, role: str, port: int | None = None) -> WSGIServer | None:
    """Serve ``/metrics`` and ``/ops`` on a daemon thread; None when the port is 0 (off)."""
    global _collector_registered
    port = settings.metrics_port if port is None else port
    if not port:
        return None
    with _collector_lock:
        if not _collector_registered:
            REGISTRY.register(OpsCollector(settings))
            _collector_registered = True
    check_binds(settings, settings.metrics_host)  # loopback by default; elsewhere only with auth (admin key)
    app = ops_app(settings, role, settings.metrics_host)
    server = make_server(settings.metrics_host, port, app, ThreadingWSGIServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="ordo-metrics", daemon=True).start()
    log.info("metrics and ops view on http://%s:%d/metrics and /ops", settings.metrics_host, server.server_port)
    return server
