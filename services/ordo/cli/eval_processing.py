"""`ordo eval ocr` and `ordo eval detection`: the image processor measured through the real pipeline.

Each starts a throw-away `ordo up` with the processor switched on for the deployment (ORDO_READ_TEXT or
ORDO_DETECT_OBJECTS), uploads the folder through the ingest service, waits for the job, then reads the
samples back (GetAsset) and queries the search service. A table goes to the screen, the report to
``--json-out``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.table import Table

from ordo.cli.common import console, out, progress_bar
from ordo.cli.eval_common import scratch_ingest, write_report


def _progress(total: int) -> tuple[Any, Any]:
    progress = progress_bar()
    task = progress.add_task("measuring", total=total, rate="")
    return progress, lambda stage: progress.update(task, advance=1, description=stage)


_dataset = click.option(
    "--dataset", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True, help="Dataset folder."
)
_model = click.option("--model", default="auto", show_default=True, help="Model that embeds crops and text.")
_limit = click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N images.")
_json_out = click.option("--json-out", type=click.Path(dir_okay=False, path_type=Path), default=None)


@click.command()
@_dataset
@_model
@_limit
@_json_out
def ocr(dataset: Path, model: str, limit: int | None, json_out: Path | None) -> None:
    """OCR character error rate and line recall vs ocr.jsonl; search for each receipt by its company name."""
    from ordo.evaluation.processing import SEARCH_MODES, evaluate_ocr, read_receipts

    receipts = read_receipts(dataset, limit)
    with scratch_ingest(model, [r.path for r in receipts], {"ORDO_READ_TEXT": "true"}) as (client, ingest):
        progress, step = _progress(len(receipts) * (1 + len(SEARCH_MODES)))
        with progress:
            report = {"dataset": str(dataset), "model": model, "ingest": ingest, **evaluate_ocr(client, receipts, step)}
    table = Table("metric", "value", title=f"OCR on {len(receipts)} receipts ({dataset.name})")
    table.add_row("character error rate", f"{report['cer_percent']:.2f} %")
    table.add_row("line recall (CER ≤ 0.2)", f"{report['line_recall_percent']:.1f} %")
    table.add_row("line recall (exact)", f"{report['line_recall_exact_percent']:.1f} %")
    for mode, result in report["company_search"].items():
        table.add_row(
            f"company → receipt at rank 1 ({mode})",
            f"{result['rank1_percent']:.0f} % (same company {result['rank1_same_company_percent']:.0f} %)",
        )
    table.add_row("ingest seconds per receipt (OCR on)", f"{ingest['seconds_per_image']:.2f}")
    out.print(table)
    write_report(report, json_out)


@click.command()
@_dataset
@_model
@_limit
@click.option("--threshold", type=click.FloatRange(0, 1), default=0.5, show_default=True, help="Detection threshold.")
@_json_out
def detection(dataset: Path, model: str, limit: int | None, threshold: float, json_out: Path | None) -> None:
    """Image-level COCO category recall and precision of the object crops, vs captions.jsonl's objects."""
    from ordo.evaluation.processing import evaluate_detection, read_detection_images

    images = read_detection_images(dataset, limit)
    env = {"ORDO_DETECT_OBJECTS": "true", "ORDO_DETECTION_THRESHOLD": str(threshold)}
    with scratch_ingest(model, [i.path for i in images], env) as (client, ingest):
        progress, step = _progress(len(images))
        with progress:
            result = evaluate_detection(client, images, threshold, step)
    report = {"dataset": str(dataset), "model": model, "ingest": ingest, **result}
    table = Table("threshold", "recall", "precision", "categories found", title=f"Detection on {len(images)} images")
    for row in result["by_threshold"]:
        table.add_row(
            f"{row['threshold']:.1f}",
            f"{row['recall_percent']:.1f} %",
            f"{row['precision_percent']:.1f} %",
            f"{row['predicted_categories']} / {row['true_categories']}",
        )
    out.print(table)
    console.print(f"{result['object_samples']} object samples; {ingest['seconds_per_image']:.2f} s per image ingested")
    write_report(report, json_out)


COMMANDS = (ocr, detection)
