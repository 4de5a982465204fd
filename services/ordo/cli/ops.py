"""`ordo ops`: the operator's view of the distributed mode, and its plumbing.

* ``ordo ops`` — queue depth, tasks in flight, dead letters, live workers and their throughput, running
  jobs (the same data as ``/ops`` on every process's metrics port, which the web UI links to).
* ``ordo ops dead-letters`` — inputs that can never succeed, with their reasons.
* ``ordo ops resume JOB_ID`` — queue a job's lost work again (see ``ordo.worker.resume``).
* ``ordo ops flower`` — Flower on Ordo's Celery app (the embedding queue listed even with no worker up).
* ``ordo ops index-host`` — lend one qdrant-client local-mode index to several processes (no Qdrant
  server can be installed here; ``ordo_devstack.index_host``: gRPC, per-run bearer token).
* ``ordo ops up-distributed`` — Redis + SeaweedFS + index host + services + N workers, without Docker.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import signal
import threading
from pathlib import Path

import click
from rich.table import Table

from ordo.cli.common import console, out, settings_or_fail


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print the view as JSON.")
@click.pass_context
def ops(click_ctx: click.Context, as_json: bool) -> None:
    """Queue depth, dead letters, workers and running jobs (reads Redis/the broker directly)."""
    if click_ctx.invoked_subcommand is not None:
        return
    from ordo.metrics import ops_snapshot

    snap = ops_snapshot(settings_or_fail())
    if as_json:
        out.print_json(json.dumps(snap))
        return
    queue = snap.get("queue", {})
    out.print(f"mode {snap['mode']}; broker {snap['broker']}")
    if "error" in queue:
        out.print(f"queue: [red]{queue['error']}[/red]")
    else:
        in_flight = queue["in_flight"] if queue["in_flight"] >= 0 else "?"
        out.print(f"queue: {queue['waiting']} waiting, {in_flight} in flight")
    dead = snap.get("dead_letters", {})
    out.print(f"dead letters: {dead.get('count', dead.get('error'))}")
    workers = snap.get("workers", [])
    if isinstance(workers, list) and workers:
        table = Table("worker", "batches", "images", "failed", "img/s busy", "seen (s ago)", title="workers")
        for w in workers:
            table.add_row(
                w["name"],
                str(w["batches"]),
                str(w["images"]),
                str(w["failed"]),
                f"{w['images_per_busy_second']:.1f}",
                f"{w['seconds_since_seen']:.0f}",
            )
        out.print(table)
    jobs = snap.get("jobs", [])
    if isinstance(jobs, list) and jobs:
        table = Table("job", "state", "done/total", "failed", "pending", "rate/s", "eta s", title="running jobs")
        for j in jobs:
            table.add_row(
                j["job_id"],
                j["state"],
                f"{j['done']}/{j['total']}",
                str(j["failed"]),
                str(j["pending"]),
                f"{j['rate_per_second']:.1f}",
                "?" if j["eta_seconds"] < 0 else f"{j['eta_seconds']:.0f}",
            )
        out.print(table)


@ops.command("dead-letters")
@click.option("-n", "--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def dead_letters(limit: int, as_json: bool) -> None:
    """Inputs that can never succeed, newest first, with their reasons."""
    from ordo.worker.dead_letters import create_dead_letters

    store = create_dead_letters(settings_or_fail())
    letters = store.list(limit)
    if as_json:
        out.print_json(json.dumps([vars(d) for d in letters]))
        return
    table = Table("when", "reason", "source", "message", "job", title=f"{store.count()} dead letters")
    for d in letters:
        when = dt.datetime.fromtimestamp(d.at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(when, d.reason, d.source_uri, d.message, d.job_id[:12])
    out.print(table)


@ops.command()
@click.argument("job_id")
def resume(job_id: str) -> None:
    """Queue a job's PENDING assets again after its queued work was lost; closes its enumeration."""
    from ordo.cli.common import make_client, rpc
    from ordo.v1 import ingest_pb2

    client = make_client()
    result = rpc(
        lambda: client.ingest.ResumeJob(ingest_pb2.ResumeJobRequest(job_id=job_id)), "ResumeJob", client.settings
    )
    console.print(f"job {job_id}: {result.requeued} asset(s) queued again in {result.tasks} task(s)")


@ops.command("index-host")
@click.option("--path", required=True, help="Folder of the qdrant-client local-mode index (or :memory:).")
@click.option("--port", default=6399, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback unless you say).")
@click.option("--token-file", default="", help="File with the bearer token (else ORDO_INDEX_HOST_TOKEN).")
def index_host(path: str, port: int, host: str, token_file: str) -> None:
    """Serve one vector index to several local processes over gRPC (ORDO_QDRANT_URL=ordo-index://HOST:PORT,
    ORDO_INDEX_HOST_TOKEN on every client). Every call needs the token; there is no default."""
    from ordo.errors import InvalidInput
    from ordo_devstack.index_host.client import read_token
    from ordo_devstack.index_host.server import start

    try:
        token = read_token(os.environ.get("ORDO_INDEX_HOST_TOKEN", ""), token_file)
        if path != ":memory:":
            Path(path).mkdir(parents=True, exist_ok=True)
        server, bound, _ = start(path, token, host, port)
    except InvalidInput as exc:
        raise click.ClickException(exc.message) from exc
    console.print(f"index host on {host}:{bound} serving {path}")
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))  # local mode persists each write; nothing to flush
    server.wait_for_termination()


@ops.command()
@click.argument("target")
@click.option("--service", default="", help="gRPC service name to check ('' = the server as a whole).")
@click.option("--timeout", default=3.0, show_default=True)
def healthcheck(target: str, service: str, timeout: float) -> None:
    """Exit 0 when TARGET answers healthy: host:port (gRPC health) or http://... (GET 200). For probes."""
    import urllib.request

    if target.startswith("http://") or target.startswith("https://"):
        try:
            with urllib.request.urlopen(target, timeout=timeout) as response:
                ok = response.status == 200
        except OSError as exc:
            raise click.ClickException(f"{target}: {exc}") from exc
    else:
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        from ordo.security.tls import make_channel

        with make_channel(target, settings_or_fail(), []) as channel:  # TLS when ORDO_TLS_CA is set
            try:
                # grpc_health's generated stub has no type information: pyright cannot see the
                # methods its __init__ sets.
                reply = health_pb2_grpc.HealthStub(channel).Check(  # pyright: ignore[reportAttributeAccessIssue]
                    health_pb2.HealthCheckRequest(service=service), timeout=timeout
                )
            except grpc.RpcError as exc:
                raise click.ClickException(f"{target}: {exc.code().name}") from exc  # type: ignore[attr-defined]
        ok = reply.status == health_pb2.HealthCheckResponse.SERVING
    if not ok:
        raise click.ClickException(f"{target}: not serving")


@ops.command()
@click.option("--address", default="127.0.0.1", show_default=True)
@click.option("--port", default=5555, show_default=True)
@click.option("--unauthenticated-api", is_flag=True, help="Open Flower's /api/* without auth (trusted networks).")
def flower(address: str, port: int, unauthenticated_api: bool) -> None:
    """Flower on Ordo's Celery app, so the embedding queue shows up (ORDO_BROKER_URL)."""
    import sys

    env = dict(os.environ)
    if not env.get("FLOWER_BASIC_AUTH"):
        # Never a default password: a credential of this run's own, printed once.
        env["FLOWER_BASIC_AUTH"] = f"ordo:{secrets.token_urlsafe(18)}"
        console.print(f"Flower sign-in (generated; set FLOWER_BASIC_AUTH to choose): {env['FLOWER_BASIC_AUTH']}")
    if unauthenticated_api:
        env["FLOWER_UNAUTHENTICATED_API"] = "true"
    args = [sys.executable, "-m", "celery", "-A", "ordo.worker.flower_app", "flower"]
    sys.stdout.flush()
    sys.stderr.flush()
    # exec, not a child: a signal to this process reaches Flower itself, and nothing is left behind.
    os.execve(sys.executable, [*args, f"--address={address}", f"--port={port}"], env)


@ops.command("up-distributed")
@click.option("--data-dir", type=click.Path(path_type=Path), default=Path("data/distributed"), show_default=True)
@click.option("--workers", default=2, show_default=True)
@click.option("--port", default=50051, show_default=True, help="gRPC port of the services.")
@click.option("--metrics-port", default=9100, show_default=True, help="Services' /metrics; workers get the next.")
def up_distributed(data_dir: Path, workers: int, port: int, metrics_port: int) -> None:
    """The distributed topology on this machine, without Docker: a private Redis (append-only),
    SeaweedFS (S3), the index host, `ordo serve all` and N `ordo worker` processes. Ctrl-C stops all."""
    from ordo.processes import free_port
    from ordo_devstack.cluster import (
        RedisServer,
        distributed_env,
        start_index_host,
        start_services,
        start_worker,
        stop_all,
        wait_for_workers,
    )
    from ordo_devstack.seaweedfs import start_seaweedfs, stop_seaweedfs

    settings = settings_or_fail()
    data_dir = data_dir.resolve()
    logs = data_dir / "logs"
    redis_server = RedisServer(data_dir / "redis", port=free_port()).start()
    try:
        s3 = start_seaweedfs(data_dir / "seaweedfs")
    except RuntimeError as exc:
        redis_server.stop()
        raise click.ClickException(str(exc)) from exc
    index_port = free_port()
    # The index host's bearer token, this run's own: every process started here inherits it.
    token = os.environ.get("ORDO_INDEX_HOST_TOKEN") or secrets.token_urlsafe(32)
    processes = [start_index_host(data_dir / "qdrant", index_port, logs / "index-host.log", token)]
    env = distributed_env(
        data_dir, s3, index_port, redis_server.url, ORDO_MODEL=settings.model, ORDO_INDEX_HOST_TOKEN=token
    )
    env["ORDO_AUTH"] = "required"  # the distributed topology always runs with keys
    admin_key = _first_admin_key(env)
    try:
        processes.append(start_services({**env, "ORDO_METRICS_PORT": str(metrics_port)}, port, logs / "services.log"))
        for i in range(workers):
            worker_env = {**env, "ORDO_METRICS_PORT": str(metrics_port + 1 + i)}
            processes.append(start_worker(worker_env, logs / f"worker-{i + 1}.log"))
        wait_for_workers(env["ORDO_REDIS_URL"], workers, processes[-workers:], timeout=300)
        console.print(f"Ordo (distributed) on 127.0.0.1:{port}: {workers} workers; logs in {logs}")
        console.print(f"  ops: http://127.0.0.1:{metrics_port}/ops   metrics: /metrics on {metrics_port}..")
        console.print("  client settings:")
        for key, value in {**env, "ORDO_ADDRESS": f"127.0.0.1:{port}", "ORDO_API_KEY": admin_key}.items():
            console.print(f"    export {key}={value}", soft_wrap=True)  # one line each, for copy-paste
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        stop.wait()
    finally:
        stop_all(processes)
        stop_seaweedfs(s3)
        redis_server.stop()


def _first_admin_key(env: dict[str, str]) -> str:
    """An admin key for this run's operator, created in its object store and printed once."""
    from ordo.app import create_object_store
    from ordo.config import Settings
    from ordo.security.keys import KeyStore
    from ordo.security.principal import Role

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        store = create_object_store(Settings())
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return KeyStore(store).create(role=Role.ADMIN, name="up-distributed operator").token


COMMANDS: list[click.Command] = [ops]
