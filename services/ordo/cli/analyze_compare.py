"""`ordo analyze compare RUN_A RUN_B`: two clustering runs compared by membership (CompareRuns).

Prints ARI/NMI over the samples both runs saw, how many stayed with their cluster's best match and how many
moved, and the largest moves ("12 of 'harbour' → 'boats'", with example assets); ``--matrix`` adds the overlap
(contingency) matrix's largest cells, ``--json`` everything.
"""

from __future__ import annotations

import json

import click
from google.protobuf.json_format import MessageToDict
from rich.table import Table

from ordo.cli.common import make_client, out, rpc


def _label(cluster: object) -> str:
    cid, name = cluster.cluster_id, cluster.name  # type: ignore[attr-defined]
    return f"{name or '?'} ({cid})" if cid else "noise"


@click.command()
@click.argument("run_a")
@click.argument("run_b")
@click.option("--level", type=click.Choice(["leaf", "group"]), default="leaf", show_default=True)
@click.option("--moves", "max_moves", type=click.IntRange(1, 200), default=15, show_default=True)
@click.option("--matrix", is_flag=True, help="Also print the largest cells of the overlap matrix.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def compare(run_a: str, run_b: str, level: str, max_moves: int, matrix: bool, as_json: bool) -> None:
    """Compare two clustering runs by their members: ARI/NMI, overlap matrix, where images moved."""
    from ordo.v1 import analysis_pb2

    client = make_client()
    request = analysis_pb2.CompareRunsRequest(
        run_id_a=run_a, run_id_b=run_b, level=getattr(analysis_pb2, f"CLUSTER_LEVEL_{level.upper()}")
    )
    result = rpc(lambda: client.analysis.CompareRuns(request), "CompareRuns", client.settings)
    if as_json:
        out.print_json(json.dumps(MessageToDict(result)))
        return
    out.print(
        f"{result.common_samples} samples in both runs: ARI {result.ari:.3f}, NMI {result.nmi:.3f}; "
        f"{result.stayed} stayed with their cluster's best match, {result.moved} moved"
    )
    a, b = result.clusters_a, result.clusters_b
    table = Table("from (run A)", "to (run B)", "images", "examples", title="largest moves")
    for move in result.moves[:max_moves]:
        table.add_row(
            _label(a[move.a_index]),
            _label(b[move.b_index]),
            str(move.count),
            " ".join(x[:12] for x in move.example_asset_ids),
        )
    out.print(table)
    if matrix:
        cells = Table("run A", "run B", "shared", title="overlap matrix, largest cells")
        for cell in result.cells[:50]:
            cells.add_row(_label(a[cell.a_index]), _label(b[cell.b_index]), str(cell.count))
        out.print(cells)
