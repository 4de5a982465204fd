"""`ordo` — run the services and talk to them.

Server commands (`up`, `serve`, `worker`) build an AppContext from settings; client commands
(`ingest`, `search`, `jobs`, `status`) only speak gRPC, so they work against a remote deployment too.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click
import grpc
from google.protobuf.json_format import MessageToDict
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ordo.config import Settings
from ordo.errors import ModelUnavailable, OrdoError

console = Console(stderr=True)
out = Console()
T = TypeVar("T")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("httpx", "urllib3", "filelock", "kombu", "celery.worker.strategy", "celery.app.trace"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _settings() -> Settings:
    try:
        return Settings()
    except (ValueError, OrdoError) as exc:
        raise click.ClickException(f"bad configuration: {exc}") from exc


def _rpc_error(exc: grpc.RpcError, what: str, settings: Settings) -> click.ClickException:
    """One readable line for a failed RPC."""
    code = exc.code()  # type: ignore[attr-defined]
    details = exc.details()  # type: ignore[attr-defined]
    if code == grpc.StatusCode.UNAVAILABLE:
        return click.ClickException(
            f"cannot reach Ordo at {settings.address} ({what}): is `ordo up` running? [{details}]"
        )
    return click.ClickException(f"{what} failed: {code.name}: {details}")


def _rpc(call: Callable[[], T], what: str, settings: Settings) -> T:
    try:
        return call()
    except grpc.RpcError as exc:
        raise _rpc_error(exc, what, settings) from None


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def main(verbose: bool) -> None:
    """Ordo: organise and search a large pile of unlabeled images."""
    _setup_logging(verbose)


# ------------------------------------------------------------------------------------------------
# server side
# ------------------------------------------------------------------------------------------------
def _start_context(settings: Settings, preload_model: bool) -> Any:
    from ordo.app import AppContext, set_current_context

    ctx = AppContext(settings)
    set_current_context(ctx)
    if preload_model:
        try:
            ctx.embedder  # noqa: B018 — load now: model errors belong at start-up, not at the first search
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
def up(port: int | None, data_dir: Path | None, no_worker: bool) -> None:
    """Run every service in one process, with an embedding worker (the embedded stack).

    All services share one port. The worker runs in this process because the embedded vector index
    (Qdrant Edge) may be opened by one process only; scale out with a Qdrant server and `ordo worker`.
    """
    overrides: dict[str, Any] = {}
    if port is not None:
        overrides["port"] = port
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    settings = Settings(**overrides) if overrides else _settings()
    from ordo.grpc_api.server import SERVICES, OrdoServer

    ctx = _start_context(settings, preload_model=True)
    ctx.index  # noqa: B018 — open the index now: a locked embedded index should fail at start-up
    ctx.jobs  # noqa: B018
    server = OrdoServer(ctx, SERVICES, settings.host, settings.port).start()
    console.print(
        f"Ordo is up ({settings.mode}) on {settings.host}:{server.port} — model {ctx.model_id} on "
        f"{ctx.embedder.device}; data in {settings.data_dir.resolve()}"
    )
    try:
        if no_worker:
            _wait_for_signal()
        else:
            _run_worker(ctx)
    finally:
        server.stop()
        ctx.close()


def _run_worker(ctx: Any) -> None:
    from ordo.worker.celery_app import EMBED_QUEUE

    worker = ctx.celery.Worker(
        pool="solo",
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
    from ordo.grpc_api.server import SERVICES, OrdoServer

    settings = _settings()
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
    settings = _settings()
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
def _client() -> Any:
    from ordo.client import OrdoClient

    return OrdoClient(_settings())


def _expand_local(paths: list[Path], recursive: bool) -> Iterator[Path]:
    """Folders become their image files; anything else is sent as named (a missing file is then
    reported as unreadable, with the rest of the batch going on)."""
    from ordo.core.ingestion import walk_images

    for path in paths:
        path = path.expanduser()
        if path.is_dir():
            yield from walk_images(path, recursive)
        else:
            yield path


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


@main.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--no-recursive", is_flag=True, help="Do not descend into sub-folders.")
@click.option("--server-side", is_flag=True, help="Let the server read local paths itself (same machine).")
@click.option("--no-wait", is_flag=True, help="Return once queued; do not wait for embeddings.")
@click.option("--json", "as_json", is_flag=True, help="Print the final job as JSON.")
def ingest(inputs: tuple[str, ...], no_recursive: bool, server_side: bool, no_wait: bool, as_json: bool) -> None:
    """Ingest images: files, folders (recursive) or s3://bucket/prefix."""
    from ordo.v1 import ingest_pb2

    client = _client()
    settings = client.settings
    s3 = [i for i in inputs if i.startswith("s3://")]
    local = [Path(i) for i in inputs if not i.startswith("s3://")]
    local_failures: list[tuple[str, str, str]] = []
    job_ids: list[str] = []
    if s3 or (server_side and local):
        uris = s3 + ([str(p.expanduser().resolve()) for p in local] if server_side else [])
        response = _rpc(
            lambda: client.ingest.IngestUris(
                ingest_pb2.IngestUrisRequest(uris=uris, non_recursive=no_recursive, request_id=uuid.uuid4().hex)
            ),
            "IngestUris",
            settings,
        )
        job_ids.append(response.job.job_id)
    if local and not server_side:
        job_id, local_failures = upload_paths(client, local, not no_recursive)
        if job_id:
            job_ids.append(job_id)
    jobs = [_watch(client, job_id, no_wait) for job_id in job_ids]
    print_summary(jobs, local_failures, as_json)
    if any(j.failed for j in jobs) or local_failures:
        sys.exit(1)


def upload_paths(client: Any, paths: list[Path], recursive: bool) -> tuple[str, list[tuple[str, str, str]]]:
    """Uploads files and folders with a progress bar; returns the job id ('' when nothing was sent)
    and the files that could not even be read here."""
    files = list(_expand_local(paths, recursive))
    unreadable: list[tuple[Path, str]] = []
    job_id = ""
    if not files:
        console.print("no image files found in " + ", ".join(map(str, paths)))
        return job_id, []
    with _progress() as progress:
        bar = progress.add_task("uploading", total=len(files), rate="")
        try:
            response = client.upload(
                files,
                request_id=uuid.uuid4().hex,
                unreadable=unreadable,
                on_file=lambda _p, _n: progress.advance(bar),
            )
            job_id = response.job.job_id
        except grpc.RpcError as exc:
            # Every file unreadable leaves an empty stream, which the server refuses: not an error here.
            if not (exc.code() == grpc.StatusCode.INVALID_ARGUMENT and unreadable):  # type: ignore[attr-defined]
                raise _rpc_error(exc, "UploadImages", client.settings) from None
    return job_id, [(p.resolve().as_uri(), "UNREADABLE", reason) for p, reason in unreadable]


def watch_job(client: Any, job_id: str, no_wait: bool = False) -> Any:
    return _watch(client, job_id, no_wait)


def _watch(client: Any, job_id: str, no_wait: bool) -> Any:
    from ordo.v1 import ingest_pb2

    settings = client.settings
    if no_wait:
        return _rpc(lambda: client.ingest.GetJob(ingest_pb2.GetJobRequest(job_id=job_id)), "GetJob", settings).job
    job = None
    with _progress() as progress:
        bar = progress.add_task("embedding", total=None, rate="")
        try:
            for update in client.ingest.WatchJob(ingest_pb2.WatchJobRequest(job_id=job_id)):
                job = update.job
                done = job.succeeded + job.duplicates + job.failed
                progress.update(
                    bar,
                    completed=done,
                    total=job.total if job.enumeration_done else None,
                    rate=f"{job.rate_per_second:.1f}/s",
                )
        except grpc.RpcError as exc:
            raise _rpc_error(exc, f"watching job {job_id}", settings) from None
    return job


def print_summary(jobs: list[Any], local_failures: list[tuple[str, str, str]], as_json: bool) -> None:
    from ordo.v1 import common_pb2

    if as_json:
        out.print_json(
            json.dumps(
                {
                    "jobs": [MessageToDict(j) for j in jobs],
                    "local_failures": [{"source_uri": u, "reason": r, "message": m} for u, r, m in local_failures],
                }
            )
        )
        return
    new = sum(j.succeeded for j in jobs)
    pending = sum(j.pending for j in jobs)
    dup = sum(j.duplicates for j in jobs)
    failures = [(f.source_uri, f.reason, f.message) for j in jobs for f in j.failures] + local_failures
    states = ", ".join(common_pb2.JobState.Name(j.state).removeprefix("JOB_STATE_").lower() for j in jobs)
    out.print(
        f"[bold]{new}[/bold] new, [bold]{dup}[/bold] duplicate, [bold]{len(failures)}[/bold] failed"
        + (f", {pending} still embedding" if pending else "")
        + (f" ({states})" if states else "")
    )
    if failures:
        table = Table("file", "reason", "message", title="failures")
        for uri, reason, message in failures:
            table.add_row(uri, reason, message)
        out.print(table)


def _filter_pb(kind: tuple[str, ...], mime: tuple[str, ...], source_prefix: str) -> Any:
    from ordo.v1 import common_pb2

    kinds = [getattr(common_pb2, f"SAMPLE_KIND_{k.upper()}") for k in kind]
    return common_pb2.Filter(kinds=kinds, mime_types=list(mime), source_uri_prefix=source_prefix)


@main.command()
@click.argument("text", required=False)
@click.option(
    "--image",
    "image",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Query by example image.",
)
@click.option("--like", "like", help="Query by an asset already in the collection (more like this).")
@click.option("-k", "--top-k", default=10, show_default=True, help="Results to show.")
@click.option("--kind", multiple=True, type=click.Choice(["image", "object", "text"]), help="Only these sample kinds.")
@click.option("--mime", multiple=True, help="Only these MIME types.")
@click.option("--source-prefix", default="", help="Only sources under this URI prefix.")
@click.option("--page-token", default="", help="Continue a previous search.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def search(
    text: str | None,
    image: Path | None,
    like: str | None,
    top_k: int,
    kind: tuple[str, ...],
    mime: tuple[str, ...],
    source_prefix: str,
    page_token: str,
    as_json: bool,
) -> None:
    """Search by TEXT, by --image FILE, or --like ASSET_ID."""
    from ordo.v1 import search_pb2

    if sum(x is not None for x in (text, image, like)) != 1:
        raise click.UsageError("give exactly one of TEXT, --image FILE or --like ASSET_ID")
    client = _client()
    flt = _filter_pb(kind, mime, source_prefix)
    if text is not None:
        response = _rpc(
            lambda: client.search.SearchText(
                search_pb2.SearchTextRequest(query=text, top_k=top_k, filter=flt, page_token=page_token)
            ),
            "SearchText",
            client.settings,
        )
    else:
        request = search_pb2.SearchImageRequest(top_k=top_k, filter=flt, page_token=page_token)
        if image is not None:
            request.image = image.read_bytes()
        else:
            request.asset_id = like or ""
        response = _rpc(lambda: client.search.SearchImage(request), "SearchImage", client.settings)
    if as_json:
        out.print_json(json.dumps(MessageToDict(response)))
        return
    table = Table("#", "score", "file", "size", "asset", title=f"{len(response.hits)} results ({response.model_id})")
    for hit in response.hits:
        a = hit.asset
        table.add_row(str(hit.rank), f"{hit.score:.3f}", a.file_name, f"{a.width}×{a.height}", a.asset_id[:12])
    out.print(table)
    if response.next_page_token:
        out.print(f"more: --page-token {response.next_page_token}")


@main.command()
@click.argument("job_id", required=False)
@click.option("--json", "as_json", is_flag=True)
def jobs(job_id: str | None, as_json: bool) -> None:
    """List recent jobs, or show one."""
    from ordo.v1 import common_pb2, ingest_pb2

    client = _client()
    if job_id:
        items = [
            _rpc(
                lambda: client.ingest.GetJob(ingest_pb2.GetJobRequest(job_id=job_id)),
                "GetJob",
                client.settings,
            ).job
        ]
    else:
        items = list(
            _rpc(
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

    client = _client()
    health = {name: client.health(name) for name in ("ingest", "search", "analysis")}
    stats = None
    if health["ingest"] == "SERVING":
        stats = _rpc(lambda: client.ingest.GetStats(ingest_pb2.GetStatsRequest()), "GetStats", client.settings)
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
    if any(v != "SERVING" for v in health.values()):
        sys.exit(1)


@main.command()
def config() -> None:
    """Print the configuration table (Markdown), as in the README."""
    click.echo("| variable | default | description |\n|---|---|---|")
    for name, field in Settings.model_fields.items():
        click.echo(f"| `ORDO_{name.upper()}` | `{field.default}` | {field.description} |")


from ordo.cli.demo import demo  # noqa: E402 — registers the demo command

main.add_command(demo)

if __name__ == "__main__":
    main()
