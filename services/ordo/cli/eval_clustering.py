"""`ordo eval clustering`: the default (Leiden, groups and leaves) beside k-means (true k), DBSCAN and HDBSCAN
against a labelled folder, through the real stack: purity, NMI, ARI, noise, largest-cluster share, naming accuracy.

Starts a throw-away `ordo up` for the model (`ordo.launch.scratch_stack`), uploads the folder's images through
the ingest service, then asks the AnalysisService for one clustering run per algorithm with the folder's labels
as ground truth (`ordo.evaluation.clustering`). A table goes to the screen and the full report to ``--json-out``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import grpc
from rich.table import Table

from ordo.cli.common import out, progress_bar, rpc_error
from ordo.cli.eval_common import default_model, scratch_ingest, served_model_id, spread, write_report
from ordo.errors import OrdoError


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def report_table(report: dict[str, Any]) -> Table:
    """The comparison table: one row per algorithm."""
    table = Table(
        "algorithm",
        "purity",
        "NMI",
        "ARI",
        "noise",
        "largest",
        "naming",
        "clusters",
        "seconds",
        title=f"{report['model_id']} on {Path(report['dataset']).name}: {report['images']} images, "
        f"{report['classes']} classes (k-means k = {report['k']})",
    )
    for row in report["rows"]:
        name = row["algorithm"] + (f" (eps {row['eps_used']:.3f})" if row.get("eps_used") else "")
        table.add_row(
            name,
            _fmt(row["purity"]),
            _fmt(row["nmi"]),
            _fmt(row["ari"]),
            _fmt(row["noise_fraction"]),
            _fmt(row.get("largest_share")),
            _fmt(row.get("naming_accuracy")),
            str(row["clusters"]),
            f"{row['seconds']:.1f}",
        )
    return table


def largest_clusters_lines(report: dict[str, Any]) -> list[str]:
    """One line per algorithm: its largest clusters as "name (size)", named by the text tower."""
    lines = []
    for row in report["rows"]:
        clusters = ", ".join(f"{c['name'] or '?'} ({c['size']})" for c in row["largest_clusters"])
        lines.append(f"{row['algorithm']}: {clusters or '-'}")
    return lines


@click.command()
@click.option(
    "--dataset",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="A folder with labels.jsonl (file, label).",
)
@click.option("--model", default=None, help="Model to evaluate (default: ORDO_MODEL), e.g. ordo-lite.")
@click.option(
    "--limit",
    type=click.IntRange(min=2),
    default=None,
    help="Evaluate N images spread evenly over the file (every class keeps its share).",
)
@click.option("--min-samples", type=click.IntRange(min=1), default=5, show_default=True, help="DBSCAN/HDBSCAN.")
@click.option("--min-cluster-size", type=click.IntRange(min=2), default=5, show_default=True, help="HDBSCAN.")
@click.option("--json-out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write the report.")
def clustering(
    dataset: Path, model: str | None, limit: int | None, min_samples: int, min_cluster_size: int, json_out: Path | None
) -> None:
    """Leiden (default), k-means (k = true classes), DBSCAN and HDBSCAN against ground-truth labels."""
    from ordo.evaluation.clustering import evaluate_clustering
    from ordo.evaluation.datasets import load_labels

    model = model or default_model()
    try:
        loaded = load_labels(dataset)
        images = spread(loaded.items, limit)
        with scratch_ingest(model, [image.path for image in images]) as (client, ingest), progress_bar() as progress:
            bars: dict[str, Any] = {}

            def on_run(algorithm: str, job: Any) -> None:
                if algorithm not in bars:
                    bars[algorithm] = progress.add_task(algorithm, total=None, rate="")
                stage = job.stage_timings[-1].stage if job.stage_timings else ""
                progress.update(bars[algorithm], completed=job.succeeded, total=job.total or None, rate=stage)

            try:
                report = evaluate_clustering(
                    client, images, min_samples=min_samples, min_cluster_size=min_cluster_size, on_run=on_run
                )
                model_id = served_model_id(client)
            except grpc.RpcError as exc:
                raise rpc_error(exc, "clustering evaluation", client.settings) from None
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
    out.print(report_table(report))
    out.print("largest clusters:")
    for line in largest_clusters_lines(report):
        out.print("  " + line, highlight=False)
    write_report(report, json_out)
