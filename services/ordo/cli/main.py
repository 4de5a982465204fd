"""`ordo` — run the services and talk to them.

Server commands (`up`, `serve`, `worker`) build an AppContext from settings; client commands
(`ingest`, `search`, `jobs`, `status`) only speak gRPC, so they work against a remote deployment too.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import click
from google.protobuf.json_format import MessageToDict
from rich.table import Table

from ordo.cli.common import (
    check_listeners,
    console,
    filter_pb,
    make_client,
    out,
    print_summary,
    rpc,
    settings_or_fail,
    setup_logging,
    upload_paths,
    watch_job,
)
from ordo.config import Settings
from ordo.errors import ModelUnavailable


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def main(verbose: bool) -> None:
    """Ordo: organise and search a large pile of unlabeled images."""
    setup_logging(verbose)


# ------------------------------------------------------------------------------------------------
# server side
# ------------------------------------------------------------------------------------------------
def _start_context(settings: Settings, preload_model: bool) -> Any:
    from ordo.app import AppContext, set_current_context

    ctx = AppContext(settings)
    set_current_context(ctx)
    from ordo.metrics import start_metrics_server

    start_metrics_server(settings, role="ordo")  # /metrics and /ops when ORDO_METRICS_PORT is set
    if preload_model:
        try:
            ctx.load_embedder()  # load now: model errors belong at start-up, not at the first search
        except ModelUnavailable as exc:
            console.print(f"[red]error:[/red] {exc.message}")
            sys.exit(2)
    return ctx


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


@main.command()
@click.option("--port", type=int, default=None, help="gRPC port (default ORDO_PORT, 50051).")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="Data directory (ORDO_DATA_DIR).")
@click.option("--no-worker", is_flag=True, help="Do not run an embedding worker in this process.")
@click.option("--http-port", type=int, default=None, help="HTTP gateway + web UI port (ORDO_HTTP_PORT, 8080; 0: off).")
def up(port: int | None, data_dir: Path | None, no_worker: bool, http_port: int | None) -> None:
    """Run every service in one process, with an embedding worker (the embedded stack).

    All services share one port. The worker runs in this process because the embedded vector index
    (Qdrant Edge) may be opened by one process only; scale out with a Qdrant server and `ordo worker`.
    """
    overrides: dict[str, Any] = {}
    if port is not None:
        overrides["port"] = port
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if http_port is not None:
        overrides["http_port"] = http_port
    settings = Settings(**overrides) if overrides else settings_or_fail()
    from ordo.grpc_api.server import SERVICES, OrdoServer, prepare_serving_process

    check_listeners(settings, settings.host, settings.metrics_host if settings.metrics_port else "")
    prepare_serving_process(settings)

    ctx = _start_context(settings, preload_model=True)
    ctx.active_index()  # open the index now: a locked embedded index should fail at start-up
    ctx.open_jobs()
    from ordo.worker.recover import mark_clean_shutdown, recover_at_start

    console.print(recover_at_start(ctx).summary())  # before serving: a re-upload must see what is queued
    server = OrdoServer(ctx, SERVICES, settings.host, settings.port).start()
    gateway = _start_gateway(settings, server.port)
    embedder, version = ctx.load_embedder(), ctx.active_version()
    console.print(
        f"Ordo is up ({settings.mode}) on {settings.host}:{server.port} — model {embedder.model_id} on "
        f"{embedder.device}; data in {settings.data_dir.resolve()}"
    )
    console.print(f"model {version.model}: {version.reason}")
    if gateway is not None:
        console.print(f"web UI and REST on http://{settings.host}:{settings.http_port} (API docs at /docs)")
    try:
        if no_worker:
            _wait_for_signal()
        else:
            _run_worker(ctx)
    finally:
        if gateway is not None:
            gateway.stop()
        server.stop()
        ctx.close()
        mark_clean_shutdown(ctx)


def _start_gateway(settings: Settings, grpc_port: int) -> Any:
    """The HTTP gateway on a thread of `ordo up`, speaking gRPC to this process's own server."""
    if not settings.http_port:
        return None
    from ordo.gateway.server import GatewayThread

    local = settings.model_copy(
        update={"address": f"127.0.0.1:{grpc_port}", "ingest_address": "", "search_address": "", "analysis_address": ""}
    )
    gateway = GatewayThread(local, settings.host, settings.http_port)
    if not gateway.start():
        console.print(
            f"[yellow]warning:[/yellow] the HTTP gateway could not listen on port {settings.http_port} "
            "(in use?); gRPC serves on. Set ORDO_HTTP_PORT or --http-port."
        )
        return None
    return gateway


def _run_worker(ctx: Any) -> None:
    from ordo.worker.celery_app import EMBED_QUEUE, worker_tasks

    try:  # the image processor's models, when the deployment enables them: a broken file fails here, now
        ctx.load_image_processor()
    except ModelUnavailable as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        sys.exit(2)
    tasks = worker_tasks(ctx.settings)
    worker = ctx.celery.Worker(
        # several tasks at once overlap (and, when set, share forward passes: ordo.worker.coalescing); one
        # runs on the main thread
        pool="threads" if tasks > 1 else "solo",
        concurrency=tasks,
        queues=[EMBED_QUEUE],
        loglevel="INFO",
        without_heartbeat=True,
        without_mingle=True,
        without_gossip=True,
        quiet=True,
        hostname=f"ordo@{os.uname().nodename}-{os.getpid()}",
    )
    worker.start()


@main.command()
@click.argument("services", nargs=-1, type=click.Choice(["ingest", "search", "analysis", "all"]))
@click.option("--port", type=int, default=None)
def serve(services: tuple[str, ...], port: int | None) -> None:
    """Run some services (no worker). Separate processes need the server adapters (Qdrant server)."""
    from ordo.grpc_api.server import SERVICES, OrdoServer, prepare_serving_process

    settings = settings_or_fail()
    check_listeners(settings, settings.host, settings.metrics_host if settings.metrics_port else "")
    prepare_serving_process(settings)
    chosen = SERVICES if not services or "all" in services else tuple(dict.fromkeys(services))
    ctx = _start_context(settings, preload_model="search" in chosen)
    server = OrdoServer(ctx, chosen, settings.host, port if port is not None else settings.port).start()
    console.print(f"serving {', '.join(chosen)} on {settings.host}:{server.port}")
    try:
        _wait_for_signal()
    finally:
        server.stop()
        ctx.close()


@main.command()
def worker() -> None:
    """Run an embedding worker (Celery) consuming the embedding queue."""
    settings = settings_or_fail()
    if settings.vector_backend == "edge":
        raise click.ClickException(
            "a separate worker cannot share the embedded vector index (Qdrant Edge allows one process); "
            "`ordo up` already runs a worker. Set ORDO_VECTOR_BACKEND=qdrant and ORDO_QDRANT_URL to scale out."
        )
    ctx = _start_context(settings, preload_model=True)
    try:
        _run_worker(ctx)
    finally:
        ctx.close()


# ------------------------------------------------------------------------------------------------
# client side
# ------------------------------------------------------------------------------------------------
@main.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--no-recursive", is_flag=True, help="Do not descend into sub-folders.")
@click.option("--server-side", is_flag=True, help="Let the server read local paths itself (same machine).")
@click.option("--no-wait", is_flag=True, help="Return once queued; do not wait for embeddings.")
@click.option("--json", "as_json", is_flag=True, help="Print the final job as JSON.")
@click.option(
    "--objects/--no-objects", default=None, help="Detect objects as extra samples (default: ORDO_DETECT_OBJECTS)."
)
@click.option("--text/--no-text", default=None, help="Read text (OCR) as extra samples (default: ORDO_READ_TEXT).")
@click.option("--library", default="", help="The library (tenant) the images go into (default: `default`).")
def ingest(
    inputs: tuple[str, ...],
    no_recursive: bool,
    server_side: bool,
    no_wait: bool,
    as_json: bool,
    objects: bool | None,
    text: bool | None,
    library: str,
) -> None:
    """Ingest images: files, folders (recursive) or s3://bucket/prefix."""
    from ordo.v1 import common_pb2, ingest_pb2

    processing = common_pb2.ProcessingOptions(detect_objects=objects, read_text=text)
    client = make_client()
    settings = client.settings
    s3 = [i for i in inputs if i.startswith("s3://")]
    local = [Path(i) for i in inputs if not i.startswith("s3://")]
    local_failures: list[tuple[str, str, str]] = []
    job_ids: list[str] = []
    if s3 or (server_side and local):
        uris = s3 + ([str(p.expanduser().resolve()) for p in local] if server_side else [])
        response = rpc(
            lambda: client.ingest.IngestUris(
                ingest_pb2.IngestUrisRequest(
                    uris=uris,
                    non_recursive=no_recursive,
                    request_id=uuid.uuid4().hex,
                    processing=processing,
                    library=library,
                )
            ),
            "IngestUris",
            settings,
        )
        job_ids.append(response.job.job_id)
    if local and not server_side:
        job_id, local_failures = upload_paths(client, local, not no_recursive, processing, library)
        if job_id:
            job_ids.append(job_id)
    jobs = [watch_job(client, job_id, no_wait) for job_id in job_ids]
    print_summary(jobs, local_failures, as_json)
    if any(j.failed for j in jobs) or local_failures:
        sys.exit(1)


@main.command()
@click.argument("text", required=False)
@click.option(
    "--image",
    "image",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Query by example image.",
)
@click.option("--like", "like", help="Query by an asset already in the collection (more like this).")
@click.option(
    "-k",
    "--top-k",
    "--page-size",
    "top_k",
    default=10,
    show_default=True,
    help="Results per page (the request's page_size).",
)
@click.option("--kind", multiple=True, type=click.Choice(["image", "object", "text"]), help="Only these sample kinds.")
@click.option("--mime", multiple=True, help="Only these MIME types.")
@click.option("--source-prefix", default="", help="Only sources under this URI prefix.")
@click.option("--cluster", multiple=True, help="Only inside these clusters (ids from `ordo clusters RUN`).")
@click.option("--page-token", default="", help="Continue a previous search.")
@click.option(
    "--mode",
    type=click.Choice(["hybrid", "semantic", "keyword"]),
    default="hybrid",
    show_default=True,
    help="Text queries: embeddings, keywords on OCR text, or both fused.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def search(
    text: str | None,
    image: Path | None,
    like: str | None,
    top_k: int,
    kind: tuple[str, ...],
    mime: tuple[str, ...],
    source_prefix: str,
    cluster: tuple[str, ...],
    page_token: str,
    mode: str,
    as_json: bool,
) -> None:
    """Search by TEXT, by --image FILE, or --like ASSET_ID."""
    from ordo.v1 import search_pb2

    if sum(x is not None for x in (text, image, like)) != 1:
        raise click.UsageError("give exactly one of TEXT, --image FILE or --like ASSET_ID")
    client = make_client()
    flt = filter_pb(kind, mime, source_prefix, cluster)
    if text is not None:
        response = rpc(
            lambda: client.search.SearchText(
                search_pb2.SearchTextRequest(
                    query=text,
                    page_size=top_k,
                    filter=flt,
                    page_token=page_token,
                    mode=f"SEARCH_MODE_{mode.upper()}",  # an enum field takes its value's name
                )
            ),
            "SearchText",
            client.settings,
        )
    else:
        request = search_pb2.SearchImageRequest(page_size=top_k, filter=flt, page_token=page_token)
        if image is not None:
            request.image = image.read_bytes()
        else:
            request.asset_id = like or ""
        response = rpc(lambda: client.search.SearchImage(request), "SearchImage", client.settings)
    if as_json:
        out.print_json(json.dumps(MessageToDict(response)))
        return
    table = Table(
        "#", "score", "file", "size", "asset", "match", title=f"{len(response.hits)} results ({response.model_id})"
    )
    for hit in response.hits:
        a = hit.asset
        table.add_row(
            str(hit.rank), f"{hit.score:.3f}", a.file_name, f"{a.width}×{a.height}", a.asset_id[:12], _match_label(hit)
        )
    out.print(table)
    if response.next_page_token:
        out.print(f"more: --page-token {response.next_page_token}")


def _match_label(hit: Any) -> str:
    """Which sample of the image matched: the whole image, an object crop (label) or a text line."""
    from ordo.v1 import common_pb2

    sample = hit.sample
    if sample.kind == common_pb2.SAMPLE_KIND_OBJECT:
        return f"object: {sample.label}"
    if sample.kind == common_pb2.SAMPLE_KIND_TEXT:
        text = sample.text if len(sample.text) <= 40 else sample.text[:39] + "…"
        return f"text: {text}"
    return "image"


@main.command()
@click.argument("job_id", required=False)
@click.option("--json", "as_json", is_flag=True)
def jobs(job_id: str | None, as_json: bool) -> None:
    """List recent jobs, or show one."""
    from ordo.v1 import common_pb2, ingest_pb2

    client = make_client()
    if job_id:
        items = [
            rpc(
                lambda: client.ingest.GetJob(ingest_pb2.GetJobRequest(job_id=job_id)),
                "GetJob",
                client.settings,
            ).job
        ]
    else:
        items = list(
            rpc(
                lambda: client.ingest.ListJobs(ingest_pb2.ListJobsRequest(page_size=20)),
                "ListJobs",
                client.settings,
            ).jobs
        )
    if as_json:
        out.print_json(json.dumps([MessageToDict(j) for j in items]))
        return
    table = Table("job", "kind", "state", "total", "new", "dup", "failed", "pending", "rate/s", "created")
    for j in items:
        table.add_row(
            j.job_id,
            j.kind,
            common_pb2.JobState.Name(j.state).removeprefix("JOB_STATE_").lower(),
            str(j.total),
            str(j.succeeded),
            str(j.duplicates),
            str(j.failed),
            str(j.pending),
            f"{j.rate_per_second:.1f}",
            j.create_time.ToDatetime().strftime("%Y-%m-%d %H:%M:%S"),
        )
    out.print(table)
    if job_id and items[0].failures:
        for f in items[0].failures:
            out.print(f"  {f.source_uri}: {f.reason}: {f.message}")


@main.command()
@click.option("--json", "as_json", is_flag=True)
def status(as_json: bool) -> None:
    """Services, counts and model."""
    from ordo.v1 import ingest_pb2

    client = make_client()
    health = {name: client.health(name) for name in ("ingest", "search", "analysis")}
    stats = None
    if health["ingest"] == "SERVING":
        stats = rpc(lambda: client.ingest.GetStats(ingest_pb2.GetStatsRequest()), "GetStats", client.settings)
    if as_json:
        out.print_json(
            json.dumps(
                {
                    "services": {k: {"address": client.addresses[k], "health": v} for k, v in health.items()},
                    "stats": MessageToDict(stats) if stats else None,
                }
            )
        )
        return
    table = Table("service", "address", "health")
    for name, state in health.items():
        table.add_row(name, client.addresses[name], state)
    out.print(table)
    if stats:
        out.print(
            f"mode {stats.mode}; model {stats.model_id} (dim {stats.embedding_dim}, {stats.device or '?'}); "
            f"{stats.asset_count} assets, {stats.vector_count} vectors; "
            f"vectors: {stats.vector_backend}, objects: {stats.object_backend}, queue: {stats.queue_backend}"
        )
        out.print(f"model {stats.model} → collection {stats.collection}: {stats.model_reason}")
    if any(v != "SERVING" for v in health.values()):
        sys.exit(1)


@main.command()
def config() -> None:
    """Print the configuration table (Markdown), as in the README."""
    click.echo("| variable | default | description |\n|---|---|---|")
    for name, field in Settings.model_fields.items():
        click.echo(f"| `ORDO_{name.upper()}` | `{field.default}` | {field.description} |")


# Commands defined in their own modules, registered here so `ordo --help` lists them all.
from ordo.cli import analyze as _analyze  # noqa: E402
from ordo.cli import gateway as _gateway  # noqa: E402
from ordo.cli import keys as _keys  # noqa: E402
from ordo.cli import models as _models  # noqa: E402
from ordo.cli import ops as _ops  # noqa: E402
from ordo.cli import watch as _watch  # noqa: E402
from ordo.cli.demo import demo  # noqa: E402
from ordo.cli.eval import eval_group  # noqa: E402
from ordo.cli.finetune import finetune  # noqa: E402

for _command in (
    demo,
    eval_group,
    finetune,
    *_analyze.COMMANDS,
    *_models.COMMANDS,
    *_ops.COMMANDS,
    *_watch.COMMANDS,
    *_gateway.COMMANDS,
    *_keys.COMMANDS,
):
    main.add_command(_command)

if __name__ == "__main__":
    main()
