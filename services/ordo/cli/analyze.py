"""`ordo analyze cluster|project|duplicates`, `ordo runs`, `ordo clusters RUN` (placeholder)."""

from __future__ import annotations

import click


@click.group()
def analyze() -> None:
    """Cluster, project to 2-D, or find near-duplicates over the collection."""


COMMANDS: list[click.Command] = [analyze]
