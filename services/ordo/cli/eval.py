"""`ordo eval ...`: quality measurements on a labelled folder, through the real pipeline.

Each subcommand starts a scratch stack (`ordo.launch.scratch_stack`), ingests the folder through the
ingest service, queries the search/analysis services, prints a table and writes JSON. The subcommands
live in their own modules; this one only groups them."""

from __future__ import annotations

import click

from ordo.cli import eval_processing as _processing
from ordo.cli.eval_clustering import clustering
from ordo.cli.eval_retrieval import retrieval, zeroshot


@click.group("eval")
def eval_group() -> None:
    """Measure retrieval, zero-shot and clustering quality on a dataset folder (JSON out, table on screen)."""


eval_group.add_command(retrieval)
eval_group.add_command(zeroshot)
eval_group.add_command(clustering)
for _command in _processing.COMMANDS:  # `ordo eval ocr`, `ordo eval detection`
    eval_group.add_command(_command)
