"""`ordo watch s3://bucket/prefix`: the long-running bucket watcher (a producer, like the ingest service).

It needs what the ingest service needs (ORDO_S3_*, the job store, the queue); workers embed what it
queues. Stop it with Ctrl-C or SIGTERM; run it again and it resumes from its persisted cursor.
"""

from __future__ import annotations

import signal

import click

from ordo.cli.common import console, settings_or_fail


@click.command()
@click.argument("uri")
@click.option("--interval", default=2.0, show_default=True, help="Seconds between listings.")
@click.option("--once", is_flag=True, help="List once, ingest what is new, and exit.")
def watch(uri: str, interval: float, once: bool) -> None:
    """Ingest every new object under s3://BUCKET/PREFIX exactly once, as it appears."""
    from ordo.app import AppContext, create_object_store, set_current_context
    from ordo.errors import OrdoError
    from ordo.watcher.bucket_watcher import BucketWatcher, PollResult, cursor_for
    from ordo.worker.dead_letters import DeadLetter, create_dead_letters

    settings = settings_or_fail()
    if not (settings.s3_access_key and settings.s3_secret_key):
        raise click.ClickException("watching a bucket needs ORDO_S3_ENDPOINT, ORDO_S3_ACCESS_KEY, ORDO_S3_SECRET_KEY")
    ctx = AppContext(settings)
    set_current_context(ctx)
    from ordo.metrics import start_metrics_server

    start_metrics_server(settings, role="watcher")
    letters = create_dead_letters(settings)

    def bury(job_id: str, failures: list) -> None:
        letters.add([DeadLetter(job_id, "", f.source_uri, f.reason, f.message, "watcher") for f in failures])

    try:
        watcher = BucketWatcher(
            ctx.ingest,
            lambda bucket: create_object_store(settings, bucket=bucket),
            cursor_for(settings, uri),
            uri,
            bury,
        )
    except OrdoError as exc:
        raise click.ClickException(exc.message) from exc

    def report(result: PollResult) -> None:
        console.print(
            f"job {result.job_id}: {result.new} new, {result.duplicates} duplicate, {result.failed} failed"
            + (f", {result.deferred} deferred" if result.deferred else "")
        )
        for f in result.failures:
            console.print(f"  [yellow]{f.source_uri}[/yellow]: {f.reason}: {f.message}")

    if once:
        report(watcher.poll())
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: watcher.stop())
    console.print(f"watching {uri} every {interval:g} s (Ctrl-C stops; the cursor is kept)")
    watcher.run(interval, report)


COMMANDS: list[click.Command] = [watch]
