"""`ordo eval retrieval` and `ordo eval zeroshot` (placeholder until implemented)."""

from __future__ import annotations

import click


@click.command()
def retrieval() -> None:
    """Text→image and image→text recall on a captioned folder."""
    raise click.ClickException("not implemented yet")


@click.command()
def zeroshot() -> None:
    """Zero-shot classification accuracy on a labelled folder."""
    raise click.ClickException("not implemented yet")
