"""Task queue port: hands embedding work to the workers (Celery over a filesystem folder or Redis)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ordo.domain import EmbedTask


@runtime_checkable
class TaskQueue(Protocol):
    backend: str

    def submit(self, task: EmbedTask) -> None:
        """Enqueue durably; raises ``ordo.errors.Unavailable`` when the broker cannot take it."""
        ...

    def check(self) -> None:
        """Raise ``Unavailable`` unless the broker answers."""
        ...
