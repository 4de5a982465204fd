"""The embedding task's retries are Celery's (``autoretry_for`` + backoff options); giving up is Ordo's."""

from __future__ import annotations

from pathlib import Path

import pytest

from ordo.adapters.celery_queue import encode_task
from ordo.adapters.sqlite_jobs import SqliteJobStore
from ordo.domain import EmbedTask, JobState, SampleRef
from ordo.errors import Unavailable
from ordo.worker import tasks
from ordo.worker.dead_letters import DeadLetter


def test_the_task_declares_celerys_retry_policy() -> None:
    task = tasks.embed_batch
    assert task.autoretry_for == (Unavailable,)
    assert task.max_retries == tasks.MAX_RETRIES
    assert task.retry_backoff == 1 and task.retry_backoff_max == tasks.BACKOFF_CAP_S and task.retry_jitter


def test_unavailable_is_retried_then_every_sample_fails_and_is_buried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = SqliteJobStore(tmp_path / "jobs.sqlite3")
    attempts: list[str] = []
    after: list[str] = []

    class DownPipeline:
        def run(self, task: EmbedTask) -> None:
            attempts.append(task.batch_id)
            raise Unavailable("the vector index is unreachable")

    buried: list[DeadLetter] = []
    parts = tasks.WorkerParts(jobs, lambda model: DownPipeline(), after.append)  # type: ignore[arg-type, return-value]
    monkeypatch.setattr(tasks, "_parts", lambda: parts)
    monkeypatch.setattr(tasks, "_bury", buried.extend)
    job = jobs.create("ingest")
    jobs.add_inputs(job.job_id, 2, enumeration_done=True)
    refs = tuple(SampleRef(f"{i:064x}", f"originals/{i}") for i in range(2))
    task = EmbedTask(f"{job.job_id}-000001", job.job_id, refs, "", "")

    # Eager: Celery runs each retry at once (no countdown), so every attempt happens in this call.
    result = tasks.embed_batch.apply(args=[encode_task(task)])

    assert result.get() == 0  # given up, not raised: the job must still complete
    assert len(attempts) == tasks.MAX_RETRIES + 1
    assert len(after) == tasks.MAX_RETRIES + 1  # a model switch is checked after every attempt
    final = jobs.get(job.job_id)
    assert (final.failed, final.state) == (2, JobState.FAILED)
    assert {f.reason for f in final.failures} == {"UNAVAILABLE"}
    assert [letter.source_uri for letter in buried] == [f"asset://{ref.asset_id}" for ref in refs]
    assert {letter.reason for letter in buried} == {"UNAVAILABLE"}
