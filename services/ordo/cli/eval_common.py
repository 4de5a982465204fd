"""What every `ordo eval ...` command shares: a scratch stack with the dataset ingested through the real
ingest service, an even subsample of a labelled folder, and the JSON report."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from ordo.cli.common import console, settings_or_fail, upload_paths, watch_job

T = TypeVar("T")


def default_model() -> str:
    return settings_or_fail().model


@contextmanager
def scratch_ingest(
    model: str, paths: list[Path], env: dict[str, str] | None = None
) -> Iterator[tuple[Any, dict[str, Any]]]:
    """A scratch stack serving ``model`` (``env``: extra settings, e.g. the image processor on) with ``paths``
    uploaded and embedded; yields (client, ingestion summary for the report)."""
    from ordo.launch import scratch_stack

    extra = f" ({', '.join(f'{k}={v}' for k, v in env.items())})" if env else ""
    console.print(f"starting a scratch stack for [bold]{model}[/bold]{extra} ...")
    started = time.perf_counter()
    with scratch_stack(model, env=env) as (client, _settings, _root):
        up = time.perf_counter()
        job_id, local_failures = upload_paths(client, paths, recursive=False)
        if not job_id:
            raise click.ClickException("nothing could be uploaded: " + "; ".join(m for _, _, m in local_failures))
        job = watch_job(client, job_id)
        seconds = time.perf_counter() - up
        failures = [(f.source_uri, f.reason, f.message) for f in job.failures] + local_failures
        if failures:
            uri, reason, message = failures[0]
            console.print(f"[yellow]{len(failures)} images failed to ingest[/yellow], e.g. {uri}: {reason}: {message}")
        yield (
            client,
            {
                "stack_start_seconds": round(up - started, 1),
                "ingest_seconds": round(seconds, 1),
                "images_per_second": round(len(paths) / max(seconds, 1e-9), 1),
                "seconds_per_image": round(seconds / max(len(paths), 1), 3),
                "ingest_failures": len(failures),
                "stage_seconds": {t.stage: round(t.seconds, 2) for t in job.stage_timings},
            },
        )


def served_model_id(client: Any) -> str:
    """The model id the scratch stack serves (what the report is about)."""
    from ordo.v1 import ingest_pb2

    return str(client.ingest.GetStats(ingest_pb2.GetStatsRequest()).model_id)


def spread(items: Sequence[T], limit: int | None) -> list[T]:
    """``limit`` items spread evenly over ``items`` (so every class of a sorted labels file keeps its share)."""
    if not limit or limit >= len(items):
        return list(items)
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]


def write_report(report: dict[str, Any], json_out: Path | None) -> None:
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report, indent=2) + "\n")
        console.print(f"report written to {json_out}")
