"""`ordo finetune` (placeholder until implemented)."""

from __future__ import annotations

import click


@click.command()
def finetune() -> None:
    """Fine-tune the model on your own entities."""
    raise click.ClickException("not implemented yet")
