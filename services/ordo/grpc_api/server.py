"""Builds gRPC servers: any subset of Ordo's services on one port, with health and reflection."""

from __future__ import annotations

import logging
import sys
from concurrent.futures import ThreadPoolExecutor

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from ordo.app import AppContext
from ordo.config import Settings
from ordo.embedding.lane_priority import demote_process_threads
from ordo.grpc_api.guards import KEEPALIVE_OPTIONS, guard_interceptor
from ordo.security.serving import bind_grpc, grpc_interceptors
from ordo.v1 import analysis_pb2, analysis_pb2_grpc, ingest_pb2, ingest_pb2_grpc, search_pb2, search_pb2_grpc

log = logging.getLogger(__name__)

SERVICES = ("ingest", "search", "analysis")
SERVICE_NAMES = {
    "ingest": ingest_pb2.DESCRIPTOR.services_by_name["IngestService"].full_name,
    "search": search_pb2.DESCRIPTOR.services_by_name["SearchService"].full_name,
    "analysis": analysis_pb2.DESCRIPTOR.services_by_name["AnalysisService"].full_name,
}


def set_gil_switch_interval(settings: Settings) -> None:
    """Hand the GIL over sooner in a server process (``ORDO_GIL_SWITCH_INTERVAL_MS``, 0.5 ms against Python's 5).

    Why: under concurrent searches ~50 threads take turns on the GIL (gRPC handlers, the index binding, the
    inference lane's glue between ONNX Runtime calls, which release it). A thread that wants it waits for the
    holder's switch interval, and while the lane waits, a core idles: a per-thread profile of 50 SearchText
    clients showed the machine 29 % idle with the lane idle a third of the time. Measured on a 2-core AMD
    EPYC (``bench.concurrency_bench``, 100k, exclusive): 5 / 1 / 0.5 ms gave 1 client 97 / 111 / 121 req/s
    and 50 clients 177 / 201 / 213 req/s, p99 550 / 492 / 495 ms."""
    sys.setswitchinterval(settings.gil_switch_interval_ms / 1000.0)


def prepare_serving_process(settings: Settings) -> None:
    """What a serving process (`ordo up`, `ordo serve`) sets before it starts threads: the GIL's switch interval,
    and every thread but the inference lane as ``SCHED_BATCH`` (``ordo.embedding.lane_priority``: threads
    created later inherit it, the lane switches itself back)."""
    set_gil_switch_interval(settings)
    if settings.lane_priority:
        demote_process_threads()


class OrdoServer:
    """A running gRPC server and what it owns (a pool for background jobs)."""

    def __init__(self, ctx: AppContext, services: tuple[str, ...], host: str, port: int) -> None:
        unknown = set(services) - set(SERVICES)
        if unknown:
            raise ValueError(f"unknown services {sorted(unknown)}; choose from {SERVICES}")
        settings = ctx.settings
        self.ctx = ctx
        self.background = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ordo-job")
        limit = settings.max_message_bytes
        # Room for every capped stream on top of grpc_workers: streams never starve unary calls (guards).
        self.server = grpc.server(
            ThreadPoolExecutor(max_workers=settings.grpc_workers + settings.max_streams, thread_name_prefix="ordo-rpc"),
            # The access policy first (ordo.security.policy), so the fair-use guard sees the principal.
            interceptors=[*grpc_interceptors(settings), guard_interceptor(settings)],
            options=[
                ("grpc.max_receive_message_length", limit),
                ("grpc.max_send_message_length", limit),
                *KEEPALIVE_OPTIONS,
            ],
        )
        if "ingest" in services:
            from ordo.grpc_api.ingest_servicer import IngestServicer

            ingest_pb2_grpc.add_IngestServiceServicer_to_server(IngestServicer(ctx, self.background), self.server)
        if "search" in services:
            from ordo.grpc_api.search_servicer import SearchServicer

            search_pb2_grpc.add_SearchServiceServicer_to_server(SearchServicer(ctx), self.server)
        if "analysis" in services:
            from ordo.grpc_api.analysis_servicer import AnalysisServicer

            analysis_pb2_grpc.add_AnalysisServiceServicer_to_server(AnalysisServicer(ctx, self.background), self.server)

        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        names = [SERVICE_NAMES[s] for s in services]
        reflection.enable_server_reflection((*names, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server)
        self.port = bind_grpc(self.server, settings, host, port)  # TLS when configured; no exposed bind without auth
        if self.port == 0:
            raise OSError(f"cannot bind gRPC server to {host}:{port} (in use?)")
        self.services = services
        self._names = names

    def start(self) -> OrdoServer:
        self.server.start()
        for name in ("", *self._names):
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("serving %s on port %d", ", ".join(self.services), self.port)
        return self

    def stop(self, grace: float = 2.0) -> None:
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()
        self.background.shutdown(wait=False, cancel_futures=True)
