"""Files stored in groups (``IngestCore.ingest_many``, ``FileGroup``, the upload stream): each file keeps its
own outcome, in order; a group is durable originals first, then records; dedup stays atomic when groups
overlap; and a model task's chunks end together on every stream (``chunk_bounds``).

Real adapters throughout (a local directory store with fsync, SQLite jobs, the embedded SQLite queue)."""

from __future__ import annotations

import itertools
import random
import threading
from collections import Counter
from pathlib import Path

import pytest

from ordo.adapters.celery_queue import CeleryTaskQueue, decode_task
from ordo.adapters.local_store import LocalDirectoryStore
from ordo.adapters.sqlite_jobs import SqliteJobStore
from ordo.config import Settings
from ordo.core.catalog import AssetCatalog, original_key, record_key
from ordo.core.embedding_pipeline import chunk_bounds
from ordo.core.ingestion import GROUP_BYTES, GROUP_FILES, FileGroup, IncomingFile, IngestCore, Outcome
from ordo.domain import EmbedTask, JobState
from ordo.errors import Unavailable
from ordo.ids import asset_id_for
from ordo.imaging import ImageLimits
from ordo.worker.celery_app import create_celery_app, queue_path
from ordo.worker.sqlite_queue import queued_payloads


class _Stack:
    def __init__(self, root: Path, *, fsync: bool = False, batch: int = 32) -> None:
        self.store = LocalDirectoryStore(root / "objects", fsync=fsync)
        self.catalog = AssetCatalog(self.store)
        self.jobs = SqliteJobStore(root / "jobs.db")
        self.settings = Settings(data_dir=root)
        self.core = IngestCore(
            catalog=self.catalog,
            jobs=self.jobs,
            queue=CeleryTaskQueue(create_celery_app(self.settings)),
            limits=ImageLimits(),
            collection="",
            model_id="",
            task_batch_size=batch,
        )

    def queued(self) -> list[EmbedTask]:
        return [decode_task(p) for p in queued_payloads(queue_path(self.settings))]


def test_a_group_gives_each_file_its_own_outcome_in_order(tmp_path: Path, coco_images: list[Path]) -> None:
    stack = _Stack(tmp_path)
    earlier = stack.core.start_job()
    stored_before = stack.core.ingest_bytes(earlier.job_id, coco_images[3].read_bytes(), file_name="before.jpg")
    job = stack.core.start_job()
    a, b = coco_images[0].read_bytes(), coco_images[1].read_bytes()
    files = [
        IncomingFile(a, "a.jpg"),
        IncomingFile(b"%PDF-1.4 not an image", "cut.jpg"),  # refused by the header probe
        IncomingFile(b, "b.jpg", "file:///photos/b.jpg", {"album": "x"}),
        IncomingFile(a, "a-again.jpg"),  # the same bytes twice in one group: one NEW
        IncomingFile(b"", "empty.jpg"),
        IncomingFile(coco_images[3].read_bytes(), "before-again.jpg"),  # stored by the earlier job, on its way
    ]
    results = stack.core.ingest_many(job.job_id, files)
    assert [(r.file_name, r.outcome) for r in results] == [
        ("a.jpg", Outcome.NEW),
        ("cut.jpg", Outcome.FAILED),
        ("b.jpg", Outcome.NEW),
        ("a-again.jpg", Outcome.DUPLICATE),
        ("empty.jpg", Outcome.FAILED),
        ("before-again.jpg", Outcome.DUPLICATE),
    ]
    assert results[1].failure is not None and results[1].failure.reason
    assert results[4].failure is not None and results[4].failure.reason == "EMPTY_FILE"
    assert results[0].asset_id == results[3].asset_id and results[5].asset_id == stored_before.asset_id
    assert results[2].source_uri == "file:///photos/b.jpg" and results[0].source_uri == "upload://a.jpg"
    assert stack.catalog.get(results[2].asset_id).metadata == {"album": "x"}
    done = stack.core.finish_enumeration(job.job_id)
    assert (done.total, done.pending, done.duplicates, done.failed) == (6, 2, 2, 2)
    assert done.state is JobState.RUNNING  # two embeddings to go
    queued = Counter(r.asset_id for t in stack.queued() if t.job_id == job.job_id for r in t.samples)
    assert queued == Counter({results[0].asset_id: 1, results[2].asset_id: 1})


def test_a_group_writes_every_original_before_any_record(
    tmp_path: Path, coco_images: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The order a power loss needs, with real fsyncs: the kill point between the group's two durable steps
    sees every original (renamed into place, so fsynced) and no record: a kill there leaves nothing
    acknowledged and nothing listed. After it, every record is there, PENDING, before its task is queued."""
    stack = _Stack(tmp_path, fsync=True)
    job = stack.core.start_job()
    files = [p.read_bytes() for p in coco_images[:GROUP_FILES]]
    ids = [asset_id_for(data, "default") for data in files]
    seen: list[tuple[str, int, int, int]] = []

    def kill_point(name: str) -> None:
        root = stack.store.root
        originals = sum((root / original_key(i)).exists() for i in ids)
        records = sum((root / record_key(i)).exists() for i in ids)
        seen.append((name, originals, records, len(stack.queued())))

    monkeypatch.setattr("ordo.core.ingestion.checkpoint", kill_point)
    results = stack.core.ingest_many(job.job_id, [IncomingFile(d, f"{i}.jpg") for i, d in enumerate(files)])
    assert [r.outcome for r in results] == [Outcome.NEW] * len(files)
    # one group: all originals, no record; then the first task (a quarter of 32) is queued with all records in
    assert seen[0] == ("upload", len(files), 0, 0)
    assert seen[1] == ("queue", len(files), len(files), 0)
    assert all(stack.catalog.get(i).state.value == "pending" for i in ids)


def test_overlapping_groups_from_many_clients_give_one_new_per_image(tmp_path: Path, coco_images: list[Path]) -> None:
    """Eight clients send the same 16 photos in shuffled groups of up to eight: each photo is NEW exactly once
    and queued once, and no two groups wait on each other's locks for good (a group takes its locks in one
    global order)."""
    stack = _Stack(tmp_path)
    files = [p.read_bytes() for p in coco_images[:16]]
    outcomes: Counter[tuple[str, Outcome]] = Counter()
    lock = threading.Lock()

    def client(seed: int) -> None:
        order = list(range(len(files)))
        random.Random(seed).shuffle(order)
        job = stack.core.start_job()
        group = FileGroup(lambda held: stack.core.ingest_many(job.job_id, held))
        done = []
        for i in order:
            done += group.add(IncomingFile(files[i], f"{i}.jpg"))
        done += group.flush()
        with lock:
            outcomes.update((r.asset_id, r.outcome) for r in done)
        stack.core.finish_enumeration(job.job_id)

    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "groups deadlocked"
    new = [a for (a, o), n in outcomes.items() if o is Outcome.NEW for _ in range(n)]
    assert len(new) == len(set(new)) == len(files)
    assert sum(n for (_, o), n in outcomes.items() if o is Outcome.DUPLICATE) == 7 * len(files)
    assert sorted(r.asset_id for t in stack.queued() for r in t.samples) == sorted(new)


def test_file_groups_flush_by_count_and_by_bytes_and_keep_the_order() -> None:
    stored: list[list[str]] = []

    def store(held: list[IncomingFile]) -> list:
        stored.append([f.file_name for f in held])
        return [f.file_name for f in held]

    group = FileGroup(store)  # type: ignore[arg-type]
    out = []
    for i in range(GROUP_FILES + 3):
        out += group.add(IncomingFile(b"x", f"{i}"))
    assert stored == [[str(i) for i in range(GROUP_FILES)]] and len(group) == 3
    # A file that would take the held bytes past the bound sends the short group on first, then goes alone.
    out += group.add(IncomingFile(b"x" * GROUP_BYTES, "big"))
    assert stored[1:] == [[str(GROUP_FILES), str(GROUP_FILES + 1), str(GROUP_FILES + 2)], ["big"]]
    assert len(group) == 0
    out += group.add(IncomingFile(b"x" * (GROUP_BYTES // 2), "half"))
    out += group.add(IncomingFile(b"x" * (GROUP_BYTES // 2), "other half"))  # reaches the bound: sent
    assert stored[3:] == [["half", "other half"]]
    assert group.flush() == [] and len(stored) == 4  # nothing held: no empty group stored
    assert out == [str(i) for i in range(GROUP_FILES + 3)] + ["big", "half", "other half"]


def test_a_store_that_fails_mid_group_accounts_for_every_file_and_reports_it(
    tmp_path: Path, coco_images: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk goes away while a group is written: no file of the group is reported NEW, the job counts
    each one failed with the store's reason, and the outage reaches the caller (the stream ends UNAVAILABLE)."""
    stack = _Stack(tmp_path)
    job = stack.core.start_job()

    def broken(*args: object, **kwargs: object) -> None:
        raise Unavailable("cannot write objects: disk gone", reason="STORAGE_IO")

    monkeypatch.setattr(stack.catalog, "put_new_many", broken)
    files = [IncomingFile(p.read_bytes(), p.name) for p in coco_images[:3]] + [IncomingFile(b"", "empty.jpg")]
    with pytest.raises(Unavailable):
        stack.core.ingest_many(job.job_id, files)
    state = stack.jobs.get(job.job_id)
    assert (state.total, state.pending, state.failed) == (4, 0, 4)
    assert sorted(f.reason for f in state.failures) == ["EMPTY_FILE", "STORAGE_IO", "STORAGE_IO", "STORAGE_IO"]
    assert stack.queued() == []


@pytest.mark.parametrize(
    ("count", "size", "streams", "sizes"),
    [
        (24, 8, 2, [6, 6, 6, 6]),  # three chunks of 8 left one stream idle at the end
        (8, 8, 2, [4, 4]),
        (32, 8, 2, [8, 8, 8, 8]),
        (7, 2, 2, [1, 2, 2, 2]),
        (1, 8, 2, [1]),
        (32, 16, 1, [16, 16]),
        (5, 8, 1, [5]),
        (0, 8, 2, []),
    ],
)
def test_a_tasks_chunks_are_a_multiple_of_the_streams_and_balanced(
    count: int, size: int, streams: int, sizes: list[int]
) -> None:
    bounds = chunk_bounds(count, size, streams)
    assert [b - a for a, b in itertools.pairwise(bounds)] == sizes
    assert bounds[0] == 0 and bounds[-1] == count
