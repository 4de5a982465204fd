"""Helpers every client-side CLI command shares: settings, RPC error handling, progress bars, job
watching. Client commands live in several modules (`main`, `analyze`, `eval`, ...); they all import these
so errors and progress look the same everywhere."""

from __future__ import annotations

import json
import logging
import os
import sys
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
from ordo.errors import OrdoError

console = Console(stderr=True)
out = Console()
T = TypeVar("T")


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("httpx", "urllib3", "filelock", "kombu", "celery.worker.strategy", "celery.app.trace"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def settings_or_fail() -> Settings:
    try:
        return Settings()
    except (ValueError, OrdoError) as exc:
        raise click.ClickException(f"bad configuration: {exc}") from exc


def rpc_error(exc: grpc.RpcError, what: str, settings: Settings) -> click.ClickException:
    """One readable line for a failed RPC."""
    code = exc.code()  # type: ignore[attr-defined]
    details = exc.details()  # type: ignore[attr-defined]
    if code == grpc.StatusCode.UNAVAILABLE:
        return click.ClickException(
            f"cannot reach Ordo at {settings.address} ({what}): is `ordo up` running? [{details}]"
        )
    return click.ClickException(f"{what} failed: {code.name}: {details}")


def rpc(call: Callable[[], T], what: str, settings: Settings) -> T:
    try:
        return call()
    except grpc.RpcError as exc:
        raise rpc_error(exc, what, settings) from None


def make_client() -> Any:
    from ordo.client import OrdoClient

    return OrdoClient(settings_or_fail())


def expand_local(paths: list[Path], recursive: bool, skipped: list[tuple[Path, str]] | None = None) -> Iterator[Path]:
    """Folders become their image files (decided by content, see ``ordo.core.local_files``); what a
    walk leaves out goes to ``skipped`` with its reason. Anything else is sent as named (a missing or
    unreadable file is then reported, with the rest of the batch going on)."""
    from ordo.core import local_files

    for path in paths:
        path = path.expanduser()
        if path.is_dir():
            for entry in local_files.walk(path, recursive):
                if isinstance(entry, local_files.Skipped):
                    if skipped is not None:
                        skipped.append((entry.path, f"{entry.reason}: {entry.message}"))
                else:
                    yield entry
        else:
            yield path


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def upload_paths(
    client: Any, paths: list[Path], recursive: bool, processing: Any = None, library: str = ""
) -> tuple[str, list[tuple[str, str, str]]]:
    """Uploads files and folders with a progress bar; returns the job id ('' when nothing was sent)
    and the files that could not even be read here. ``processing``: an ``ordo.v1.ProcessingOptions``."""
    unreadable: list[tuple[Path, str]] = []
    files = list(expand_local(paths, recursive, unreadable))
    job_id = ""
    if not files:
        console.print("no image files found in " + ", ".join(map(str, paths)))
        return job_id, _local_failures(unreadable)
    with progress_bar() as progress:
        bar = progress.add_task("uploading", total=len(files), rate="")
        request_id = uuid.uuid4().hex
        try:
            response = client.upload(
                files,
                request_id=request_id,
                unreadable=unreadable,
                on_file=lambda _p, _n: progress.advance(bar),
                processing=processing,
                library=library,
            )
            job_id = response.job.job_id
            if response.HasField("stream_error"):
                console.print(f"[yellow]upload stream: {response.stream_error.message}[/yellow]")
        except grpc.RpcError as exc:
            # Every file unreadable leaves an empty stream, which the server refuses: not an error here.
            if not (exc.code() == grpc.StatusCode.INVALID_ARGUMENT and unreadable):  # type: ignore[attr-defined]
                job_id = _job_after_broken_stream(client, request_id)
                if not job_id:
                    raise rpc_error(exc, "UploadImages", client.settings) from None
                console.print(
                    f"[yellow]the upload stream broke ({exc.code().name}: {exc.details()}); "  # type: ignore[attr-defined]
                    f"job {job_id} holds the files that arrived[/yellow]"
                )
    return job_id, _local_failures(unreadable)


def _local_failures(unreadable: list[tuple[Path, str]]) -> list[tuple[str, str, str]]:
    """(source URI, reason, message) for files this side never sent; ``reason: message`` is split."""
    out = []
    for path, text in unreadable:
        reason, _, message = text.partition(": ")
        if not message or not reason.isupper():
            reason, message = "UNREADABLE", text
        # Named as given (resolving would name /dev/zero rather than the link the user has).
        out.append((Path(os.path.abspath(path)).as_uri(), reason, message))
    return out


def _job_after_broken_stream(client: Any, request_id: str) -> str:
    """The job a broken upload stream still created (its id follows from the request id), or ''."""
    from ordo.core.ingestion import job_id_for_request
    from ordo.v1 import ingest_pb2

    job_id = job_id_for_request(request_id)
    try:
        client.ingest.GetJob(ingest_pb2.GetJobRequest(job_id=job_id), timeout=10)
    except grpc.RpcError:
        return ""
    return job_id


def watch_job(client: Any, job_id: str, no_wait: bool = False) -> Any:
    return _watch(client, job_id, no_wait)


def _watch(client: Any, job_id: str, no_wait: bool) -> Any:
    from ordo.v1 import ingest_pb2

    settings = client.settings
    if no_wait:
        return rpc(lambda: client.ingest.GetJob(ingest_pb2.GetJobRequest(job_id=job_id)), "GetJob", settings).job
    job = None
    with progress_bar() as progress:
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
            raise rpc_error(exc, f"watching job {job_id}", settings) from None
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


def filter_pb(kind: tuple[str, ...], mime: tuple[str, ...], source_prefix: str, cluster: tuple[str, ...] = ()) -> Any:
    from ordo.v1 import common_pb2

    kinds = [getattr(common_pb2, f"SAMPLE_KIND_{k.upper()}") for k in kind]
    return common_pb2.Filter(
        kinds=kinds, mime_types=list(mime), source_uri_prefix=source_prefix, cluster_ids=list(cluster)
    )


def check_listeners(settings: Settings, *hosts: str) -> None:
    """Refuse to start before anything listens when auth is off on a non-loopback address."""
    from ordo.security.binding import check_binds

    try:
        check_binds(settings, *hosts)
    except OrdoError as exc:
        raise click.ClickException(exc.message) from exc
