"""The Celery app Flower loads: ``celery -A ordo.worker.flower_app flower`` (or ``ordo ops flower``).

Flower lists only the queues its workers report consuming, or — with none reporting — the app's
``task_default_queue`` and ``task_queues``. Loading *Ordo's* app (not a bare ``celery``) makes
``ordo.embed`` appear in its broker view even before a worker is up, with its depth.
"""

from __future__ import annotations

from ordo.config import Settings
from ordo.worker.celery_app import create_celery_app

app = create_celery_app(Settings())
