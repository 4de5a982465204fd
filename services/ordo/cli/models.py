"""`ordo models ...`: model versions (placeholder until implemented)."""

from __future__ import annotations

import click


@click.group()
def models() -> None:
    """List models and switch the active one (background re-embed, then an alias flip)."""


COMMANDS: list[click.Command] = [models]
