"""`ordo eval retrieval` and `ordo eval zeroshot`: quality on a dataset folder through the real pipeline.

Both start a throw-away `ordo up` for the model (`ordo.launch.scratch_stack`), upload the folder's images
through the ingest service, wait for the job, then measure through the search service (SearchText,
EmbedTexts, GetImageVectors). A table goes to the screen and the full report to ``--json-out``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from ordo.cli.common import console, out, progress_bar, settings_or_fail, upload_paths, watch_job
from ordo.errors import OrdoError


def _default_model() -> str:
    return settings_or_fail().model


@contextmanager
def _ingested(model: str, paths: list[Path]) -> Iterator[tuple[Any, dict[str, Any]]]:
    """A scratch stack serving ``model`` with ``paths`` ingested; yields (client, ingestion summary)."""
    from ordo.launch import scratch_stack

    console.print(f"starting a scratch stack for [bold]{model}[/bold] ...")
    started = time.perf_counter()
    with scratch_stack(model) as (client, _settings, _root):
        up = time.perf_counter()
        job_id, local_failures = upload_paths(client, paths, recursive=False)
        if not job_id:
            raise click.ClickException("nothing could be uploaded: " + "; ".join(m for _, _, m in local_failures))
        job = watch_job(client, job_id)
        finished = time.perf_counter()
        failures = [(f.source_uri, f.reason, f.message) for f in job.failures] + local_failures
        if failures:
            uri, reason, message = failures[0]
            console.print(f"[yellow]{len(failures)} images failed to ingest[/yellow], e.g. {uri}: {reason}: {message}")
        summary = {
            "stack_start_seconds": round(up - started, 1),
            "ingest_seconds": round(finished - up, 1),
            "images_per_second": round(len(paths) / max(finished - up, 1e-9), 1),
            "ingest_failures": len(failures),
        }
        yield client, summary


def _write_json(report: dict[str, Any], json_out: Path | None) -> None:
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report, indent=2) + "\n")
        console.print(f"report written to {json_out}")


def _model_id(client: Any) -> str:
    from ordo.v1 import ingest_pb2

    return client.ingest.GetStats(ingest_pb2.GetStatsRequest()).model_id


@click.command()
@click.option(
    "--dataset",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="A folder with captions.jsonl (file, captions[, split]).",
)
@click.option("--split", default=None, help="Only records of this split (e.g. dev).")
@click.option("--model", default=None, help="Model to evaluate (default: ORDO_MODEL), e.g. ordo-lite-v1.")
@click.option("--limit", type=click.IntRange(min=2), default=None, help="Only the first N images.")
@click.option("--json-out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write the report.")
def retrieval(dataset: Path, split: str | None, model: str | None, limit: int | None, json_out: Path | None) -> None:
    """Text→image and image→text recall (R@1/5/10) and image–caption cosine on a captioned folder."""
    from ordo.evaluation.datasets import load_captions
    from ordo.evaluation.retrieval import evaluate_retrieval

    model = model or _default_model()
    try:
        loaded = load_captions(dataset, split=split, limit=limit)
        images = loaded.items
        with _ingested(model, [image.path for image in images]) as (client, ingest), progress_bar() as progress:
            bars: dict[str, Any] = {}

            def on_progress(stage: str, done: int, total: int) -> None:
                if stage not in bars:
                    bars[stage] = progress.add_task(f"{stage}", total=total, rate="")
                progress.update(bars[stage], completed=done)

            report = evaluate_retrieval(client, images, on_progress=on_progress)
            model_id = _model_id(client)
    except OrdoError as exc:
        raise click.ClickException(str(exc)) from exc
    report = {
        "dataset": str(dataset),
        "split": split,
        "model": model,
        "model_id": model_id,
        **report,
        "duplicates_dropped": loaded.duplicates,
        "missing_files": loaded.missing,
        "ingest": ingest,
    }
    table = Table(
        "direction",
        "R@1",
        "R@5",
        "R@10",
        "median rank",
        title=f"{model_id} on {dataset.name}"
        + (f" ({split})" if split else "")
        + f": {report['images']} images, {report['captions']} captions",
    )
    for key, name in (("text_to_image", "text → image"), ("image_to_text", "image → text")):
        row = report[key]
        table.add_row(name, *(f"{row[k]:.1f}" for k in ("R@1", "R@5", "R@10")), f"{row['median_rank']:g}")
    out.print(table)
    cos = report["cosine"]
    out.print(
        f"mean cosine image–own captions {cos['image_own_captions']:.4f} (other captions "
        f"{cos['image_other_captions']:.4f}); search agrees with the vectors on "
        f"{report['consistency']['search_agrees_with_vectors']:.1f}% of queries; "
        f"{report['seconds']['queries_per_second']:.0f} text queries/s"
    )
    _write_json(report, json_out)


@click.command()
@click.option(
    "--dataset",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="A folder with labels.jsonl (file, label).",
)
@click.option("--model", default=None, help="Model to evaluate (default: ORDO_MODEL), e.g. ordo-lite-v1.")
@click.option(
    "--templates",
    multiple=True,
    help="Prompt template with one {} for the class name; repeat for an ensemble (default: 8 templates).",
)
@click.option(
    "--limit",
    type=click.IntRange(min=2),
    default=None,
    help="Evaluate N images spread evenly over the file (every class keeps its share).",
)
@click.option("--json-out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write the report.")
def zeroshot(
    dataset: Path, model: str | None, templates: tuple[str, ...], limit: int | None, json_out: Path | None
) -> None:
    """Zero-shot classification accuracy on a labelled folder, with prompt templates."""
    from ordo.evaluation.datasets import load_labels
    from ordo.evaluation.zeroshot import DEFAULT_TEMPLATES, check_templates, evaluate_zeroshot

    model = model or _default_model()
    try:
        chosen = check_templates(templates or DEFAULT_TEMPLATES)
        loaded = load_labels(dataset)
        images = loaded.items
        if limit and limit < len(images):
            step = len(images) / limit
            images = [images[int(i * step)] for i in range(limit)]
        with _ingested(model, [image.path for image in images]) as (client, ingest):
            report = evaluate_zeroshot(client, images, chosen)
            model_id = _model_id(client)
    except OrdoError as exc:
        raise click.ClickException(str(exc)) from exc
    report = {
        "dataset": str(dataset),
        "model": model,
        "model_id": model_id,
        **report,
        "duplicates_dropped": loaded.duplicates,
        "missing_files": loaded.missing,
        "ingest": ingest,
    }
    table = Table("class", "top-1 %", title=f"{model_id} zero-shot on {dataset.name}: {report['images']} images")
    for name, accuracy in report["per_class_top1"].items():
        table.add_row(name, f"{accuracy:.1f}")
    out.print(table)
    acc = report["accuracy"]
    out.print(
        "accuracy "
        + ", ".join(f"{k} {v:.2f}%" for k, v in acc.items())
        + f" with {len(report['templates'])} templates (first template alone: "
        + f"{report['accuracy_first_template_only']['top1']:.2f}%; chance {report['chance_top1']:.2f}%)"
    )
    _write_json(report, json_out)
