"""`ordo analyze cluster|project|duplicates`, `ordo runs`, `ordo clusters RUN` — the AnalysisService from a shell.

Runs are computed by the server as jobs; these commands start one, follow its job with a progress bar (one step
per tick: load, cluster, match, name, metrics, write) and print the result. `--no-wait` returns at once with the
run id, `--json` prints the messages as JSON.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import grpc
from google.protobuf.json_format import MessageToDict
from rich.table import Column, Table

from ordo.cli.analyze_compare import compare
from ordo.cli.common import console, filter_pb, make_client, out, progress_bar, rpc, rpc_error

if TYPE_CHECKING:
    from ordo.v1 import analysis_pb2

KINDS = click.Choice(["image", "object", "text"])


def _filter_options(fn: Any) -> Any:
    fn = click.option("--kind", multiple=True, type=KINDS, help="Sample kinds (default: whole images).")(fn)
    fn = click.option("--source-prefix", default="", help="Only sources under this URI prefix.")(fn)
    return click.option("--mime", multiple=True, help="Only these MIME types.")(fn)


def watch_run(client: Any, run: Any, what: str) -> Any:
    """Follow the run's job with a progress bar; return the finished run (GetRun)."""
    from ordo.v1 import analysis_pb2, common_pb2, ingest_pb2

    settings = client.settings
    with progress_bar() as progress:
        bar = progress.add_task(what, total=None, rate="")
        try:
            for update in client.ingest.WatchJob(ingest_pb2.WatchJobRequest(job_id=run.job_id)):
                job = update.job
                done = [t.stage for t in job.stage_timings]
                progress.update(bar, completed=job.succeeded, total=job.total or None, rate=", ".join(done[-1:]))
                if job.state == common_pb2.JOB_STATE_FAILED:
                    break
        except grpc.RpcError as exc:
            raise rpc_error(exc, f"watching job {run.job_id}", settings) from None
    finished = rpc(
        lambda: client.analysis.GetRun(analysis_pb2.GetRunRequest(run_id=run.run_id)), "GetRun", settings
    ).run
    if finished.state == analysis_pb2.RUN_STATE_FAILED:
        raise click.ClickException(f"run {finished.run_id} failed: {finished.error_reason}: {finished.error}")
    return finished


def _metric(metrics: Any, name: str) -> str:
    return f"{getattr(metrics, name):.3f}" if metrics.HasField(name) else "–"


def print_run(run: Any) -> None:
    from ordo.v1 import analysis_pb2

    kind = analysis_pb2.RunKind.Name(run.kind).removeprefix("RUN_KIND_").lower()
    state = analysis_pb2.RunState.Name(run.state).removeprefix("RUN_STATE_").lower()
    line = f"run [bold]{run.run_id}[/bold] ({kind}, {state}): {run.sample_count} samples"
    if run.kind == analysis_pb2.RUN_KIND_CLUSTERING:
        line += f", {run.cluster_count} clusters, {run.noise_count} noise"
        if run.eps_used:
            line += f", eps {run.eps_used:.4f}"
        if run.group_count:
            line += f", {run.group_count} groups (stability {run.group_stability:.2f})"
    line += f", {run.seconds:.1f} s, model {run.model_id}"
    out.print(line)
    if run.HasField("metrics"):
        m = run.metrics
        out.print(
            f"metrics: purity {_metric(m, 'purity')}, NMI {_metric(m, 'nmi')}, ARI {_metric(m, 'ari')}, "
            f"noise {m.noise_fraction:.3f}, silhouette {_metric(m, 'silhouette')}"
            + (f" ({m.labelled_count} labelled)" if m.labelled_count else "")
        )
    if run.previous_run_id:
        out.print(f"cluster ids continue run {run.previous_run_id}")


def clusters_table(run_id: str, clusters: list[Any]) -> Table:
    # ids are what users copy into the next command: never wrapped or cut
    ident = Column("cluster", no_wrap=True, min_width=12)
    levels = any(c.parent_id or c.child_count for c in clusters)  # two-level runs only: keep others narrow
    columns = ["name", "size", "top terms", *(["group / leaves"] if levels else []), "representatives"]
    table = Table(ident, *columns, title=f"clusters of {run_id}")
    for c in clusters:
        name = f"{c.name} (renamed)" if c.renamed else c.name
        terms = ", ".join(c.top_terms[:3])
        level = [f"{c.child_count} leaves" if c.child_count else c.parent_id] if levels else []
        reps = " ".join(a[:12] for a in c.representative_asset_ids[:3])
        table.add_row(c.cluster_id, name, str(c.size), terms, *level, reps)
    return table


def all_clusters(
    client: Any, run_id: str, level: analysis_pb2.ClusterLevel | str = "CLUSTER_LEVEL_UNSPECIFIED", parent_id: str = ""
) -> list[Any]:
    from ordo.v1 import analysis_pb2

    clusters: list[Any] = []
    token = ""
    while True:
        page = rpc(
            lambda t=token: client.analysis.GetClusters(
                analysis_pb2.GetClustersRequest(
                    run_id=run_id,
                    page_size=1000,
                    page_token=t,
                    level=level,
                    parent_id=parent_id,
                )
            ),
            "GetClusters",
            client.settings,
        )
        clusters.extend(page.clusters)
        token = page.next_page_token
        if not token:
            return clusters


def _read_labels(path: Path) -> dict[str, str]:
    """``labels.jsonl`` (``{"asset_id": ..., "label": ...}`` or ``{"file": ..., "label": ...}`` beside the file)."""
    import hashlib

    labels: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            label = str(record["label"])
            if "asset_id" in record:
                key = str(record["asset_id"])
            else:
                key = hashlib.sha256((path.parent / record["file"]).read_bytes()).hexdigest()
        except (ValueError, KeyError, OSError) as exc:
            raise click.ClickException(f"{path}:{number}: {exc}") from None
        labels[key] = label
    return labels


@click.group()
def analyze() -> None:
    """Cluster, project to 2-D, or find near-duplicates over the collection."""


@analyze.command()
@click.option(
    "--algorithm", type=click.Choice(["leiden", "dbscan", "hdbscan", "kmeans"]), default="leiden", show_default=True
)
@click.option(
    "--resolution",
    type=click.FloatRange(0.0, 50.0),
    default=0.0,
    help="Leiden: groups' resolution (0 = 1, modularity, at most 30 groups); higher = more groups.",
)
@click.option("--eps", type=float, default=0.0, help="DBSCAN radius (cosine distance); 0 picks it automatically.")
@click.option("--min-samples", type=int, default=0, help="Density threshold (default 5).")
@click.option("--min-cluster-size", type=int, default=0, help="HDBSCAN smallest cluster (default 5).")
@click.option("--n-clusters", type=int, default=0, help="k for the k-means baseline.")
@click.option("--label-field", default="", help="Payload field holding ground truth (for metrics).")
@click.option(
    "--labels",
    "labels_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="labels.jsonl with ground truth (file or asset_id, label) for metrics.",
)
@_filter_options
@click.option("--no-wait", is_flag=True, help="Return once the run has started.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def cluster(
    algorithm: str,
    resolution: float,
    eps: float,
    min_samples: int,
    min_cluster_size: int,
    n_clusters: int,
    label_field: str,
    labels_file: Path | None,
    kind: tuple[str, ...],
    source_prefix: str,
    mime: tuple[str, ...],
    no_wait: bool,
    as_json: bool,
) -> None:
    """Cluster the collection (or a filtered part); cluster ids go into the index (`ordo search --cluster`)."""
    from ordo.v1 import analysis_pb2

    client = make_client()
    request = analysis_pb2.CreateClusteringRunRequest(
        filter=filter_pb(kind, mime, source_prefix),
        params=analysis_pb2.ClusteringParams(
            algorithm=getattr(analysis_pb2, f"CLUSTERING_ALGORITHM_{algorithm.upper()}"),
            eps=eps,
            min_samples=min_samples,
            min_cluster_size=min_cluster_size,
            n_clusters=n_clusters,
            resolution=resolution,
        ),
        label_field=label_field,
        labels=_read_labels(labels_file) if labels_file else {},
    )
    created = rpc(lambda: client.analysis.CreateClusteringRun(request), "CreateClusteringRun", client.settings)
    if no_wait:
        if as_json:
            out.print_json(json.dumps(MessageToDict(created)))
        else:
            out.print(f"run {created.run.run_id} started (job {created.job.job_id})")
        return
    run = watch_run(client, created.run, "clustering")
    clusters = all_clusters(client, run.run_id)
    if as_json:
        out.print_json(json.dumps({"run": MessageToDict(run), "clusters": [MessageToDict(c) for c in clusters]}))
        return
    print_run(run)
    out.print(clusters_table(run.run_id, clusters))


@analyze.command()
@click.option("--method", type=click.Choice(["tsne", "pca"]), default="tsne", show_default=True)
@click.option("--perplexity", type=float, default=0.0, help="t-SNE perplexity (default 30, clipped for few points).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--run", "run_id", default="", help="Colour points by this clustering run.")
@_filter_options
@click.option(
    "--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the points (.csv or .json)."
)
@click.option("--no-wait", is_flag=True, help="Return once the run has started.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the run; points go to --out).")
def project(
    method: str,
    perplexity: float,
    seed: int,
    run_id: str,
    kind: tuple[str, ...],
    source_prefix: str,
    mime: tuple[str, ...],
    out_path: Path | None,
    no_wait: bool,
    as_json: bool,
) -> None:
    """A 2-D map of the collection (t-SNE or PCA), optionally coloured by a clustering run."""
    from ordo.v1 import analysis_pb2

    client = make_client()
    request = analysis_pb2.CreateProjectionRunRequest(
        filter=filter_pb(kind, mime, source_prefix),
        params=analysis_pb2.ProjectionParams(
            method=getattr(analysis_pb2, f"PROJECTION_METHOD_{method.upper()}"), perplexity=perplexity, seed=seed
        ),
        clustering_run_id=run_id,
    )
    created = rpc(lambda: client.analysis.CreateProjectionRun(request), "CreateProjectionRun", client.settings)
    if no_wait:
        out.print(f"run {created.run.run_id} started (job {created.job.job_id})")
        return
    run = watch_run(client, created.run, "projecting")
    if out_path is not None:
        points = _projection_points(client, run.run_id)
        _write_points(out_path, points)
        console.print(f"{len(points)} points written to {out_path}")
    if as_json:
        out.print_json(json.dumps(MessageToDict(run)))
    else:
        print_run(run)


def _projection_points(client: Any, run_id: str) -> list[Any]:
    from ordo.v1 import analysis_pb2

    try:
        return [
            p
            for page in client.analysis.GetProjection(analysis_pb2.GetProjectionRequest(run_id=run_id, page_size=5000))
            for p in page.points
        ]
    except grpc.RpcError as exc:
        raise rpc_error(exc, "GetProjection", client.settings) from None


def _write_points(path: Path, points: list[Any]) -> None:
    rows = [
        {"sample_id": p.sample_id, "asset_id": p.asset_id, "x": p.x, "y": p.y, "cluster_id": p.cluster_id}
        for p in points
    ]
    if path.suffix == ".json":
        path.write_text(json.dumps(rows))
        return
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["sample_id", "asset_id", "x", "y", "cluster_id"])
        writer.writeheader()
        writer.writerows(rows)


@analyze.command()
@click.option("--min-similarity", type=float, default=0.95, show_default=True, help="Cosine similarity threshold.")
@_filter_options
@click.option("--limit", type=int, default=50, show_default=True, help="Groups to show.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def duplicates(
    min_similarity: float, kind: tuple[str, ...], source_prefix: str, mime: tuple[str, ...], limit: int, as_json: bool
) -> None:
    """Groups of near-duplicate images (k-NN through the index, so it scales past memory)."""
    from ordo.v1 import analysis_pb2

    client = make_client()
    with console.status("looking for near-duplicates"):
        response = rpc(
            lambda: client.analysis.FindDuplicates(
                analysis_pb2.FindDuplicatesRequest(
                    filter=filter_pb(kind, mime, source_prefix), min_similarity=min_similarity, page_size=limit
                )
            ),
            "FindDuplicates",
            client.settings,
        )
    if as_json:
        out.print_json(json.dumps(MessageToDict(response)))
        return
    table = Table("#", "assets", "weakest similarity", title=f"{len(response.groups)} near-duplicate groups")
    for i, group in enumerate(response.groups, 1):
        table.add_row(str(i), " ".join(a[:12] for a in group.asset_ids), f"{group.min_similarity:.3f}")
    out.print(table)
    if response.next_page_token:
        out.print("more groups exist: raise --limit (at most 1000 per call)")


@click.command()
@click.argument("run_id", required=False)
@click.option("--kind", "run_kind", type=click.Choice(["clustering", "projection"]), help="Only runs of this kind.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def runs(run_id: str | None, run_kind: str | None, as_json: bool) -> None:
    """List analysis runs (newest first), or show one."""
    from ordo.v1 import analysis_pb2

    client = make_client()
    if run_id:
        run = rpc(lambda: client.analysis.GetRun(analysis_pb2.GetRunRequest(run_id=run_id)), "GetRun", client.settings)
        if as_json:
            out.print_json(json.dumps(MessageToDict(run.run)))
        else:
            print_run(run.run)
            if run.run.error:
                out.print(f"[red]{run.run.error_reason}[/red]: {run.run.error}")
        return
    kind = f"RUN_KIND_{run_kind.upper()}" if run_kind else "RUN_KIND_UNSPECIFIED"  # an enum field takes its name
    response = rpc(
        lambda: client.analysis.ListRuns(analysis_pb2.ListRunsRequest(page_size=50, kind=kind)),
        "ListRuns",
        client.settings,
    )
    if as_json:
        out.print_json(json.dumps([MessageToDict(r) for r in response.runs]))
        return
    ident = Column("run", no_wrap=True, min_width=len("r20240501t101500123456-1a2b3c"))
    table = Table(ident, "kind", "state", "samples", "clusters", "noise", "seconds", "created")
    for r in response.runs:
        table.add_row(
            r.run_id,
            analysis_pb2.RunKind.Name(r.kind).removeprefix("RUN_KIND_").lower(),
            analysis_pb2.RunState.Name(r.state).removeprefix("RUN_STATE_").lower(),
            str(r.sample_count),
            str(r.cluster_count),
            str(r.noise_count),
            f"{r.seconds:.1f}",
            r.create_time.ToDatetime().strftime("%Y-%m-%d %H:%M:%S"),
        )
    out.print(table)


@click.command()
@click.argument("run_id")
@click.option("--rename", nargs=2, metavar="CLUSTER_ID NAME", help="Give a cluster a name that survives re-runs.")
@click.option("--groups", "show_groups", is_flag=True, help="The top-level groups instead of the leaves.")
@click.option("--group", "group_id", default="", help="Only the leaves of this group.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def clusters(run_id: str, rename: tuple[str, str] | None, show_groups: bool, group_id: str, as_json: bool) -> None:
    """The clusters of clustering run RUN_ID (size, name, top terms, representatives)."""
    from ordo.v1 import analysis_pb2

    client = make_client()
    if rename:
        cluster_id, name = rename
        renamed = rpc(
            lambda: client.analysis.RenameCluster(
                analysis_pb2.RenameClusterRequest(run_id=run_id, cluster_id=cluster_id, name=name)
            ),
            "RenameCluster",
            client.settings,
        ).cluster
        if as_json:
            out.print_json(json.dumps(MessageToDict(renamed)))
        else:
            out.print(f"cluster {renamed.cluster_id} is now “{renamed.name}”")
        return
    level = analysis_pb2.CLUSTER_LEVEL_GROUP if show_groups else analysis_pb2.CLUSTER_LEVEL_LEAF
    found = all_clusters(client, run_id, level, group_id)
    if as_json:
        out.print_json(json.dumps([MessageToDict(c) for c in found]))
        return
    out.print(clusters_table(run_id, found))


analyze.add_command(compare)
COMMANDS: list[click.Command] = [analyze, runs, clusters]
