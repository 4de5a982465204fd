"""`ordo eval retrieval` and `ordo eval zeroshot`: quality on a dataset folder through the real pipeline.

Both start a throw-away `ordo up` for the model (`ordo.launch.scratch_stack`), upload the folder's images
through the ingest service, wait for the job, then measure through the search service (SearchText,
EmbedTexts, GetImageVectors). A table goes to the screen and the full report to ``--json-out``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.table import Table

from ordo.cli.common import out, progress_bar
from ordo.cli.eval_common import default_model, scratch_ingest, served_model_id, spread, write_report
from ordo.errors import OrdoError


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

    model = model or default_model()
    try:
        loaded = load_captions(dataset, split=split, limit=limit)
        images = loaded.items
        with scratch_ingest(model, [image.path for image in images]) as (client, ingest), progress_bar() as progress:
            bars: dict[str, Any] = {}

            def on_progress(stage: str, done: int, total: int) -> None:
                if stage not in bars:
                    bars[stage] = progress.add_task(f"{stage}", total=total, rate="")
                progress.update(bars[stage], completed=done)

            report = evaluate_retrieval(client, images, on_progress=on_progress)
            model_id = served_model_id(client)
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
    write_report(report, json_out)


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

    model = model or default_model()
    try:
        chosen = check_templates(templates or DEFAULT_TEMPLATES)
        loaded = load_labels(dataset)
        images = spread(loaded.items, limit)
        with scratch_ingest(model, [image.path for image in images]) as (client, ingest):
            report = evaluate_zeroshot(client, images, chosen)
            model_id = served_model_id(client)
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
    write_report(report, json_out)
