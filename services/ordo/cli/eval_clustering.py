"""`ordo eval clustering` (placeholder until implemented)."""

from __future__ import annotations

import click


@click.command()
def clustering() -> None:
    """DBSCAN, HDBSCAN and a k-means baseline against ground-truth labels."""
    raise click.ClickException("not implemented yet")
