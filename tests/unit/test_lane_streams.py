"""Image passes side by side on the inference lane's helper threads (streams), and how the tuner picks them.

Everything here runs for real: real threads on a real ``InferenceLane``, the tiny CLIP's real ONNX Runtime
session called from two threads at once, the tuner's real measuring loop (with towers whose speed is set by
sleeping, as in ``test_cpu_tuning``)."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest
import torch

from ordo.embedding import autotune, cpu_budget
from ordo.embedding.autotune import TowerConfig, TuneResult
from ordo.embedding.inference_lane import IMAGE_PRIORITY, TEXT_PRIORITY, InferenceLane
from ordo.embedding.tower_runtime import TowerRuntimes, min_cosine

pytestmark = pytest.mark.usefixtures("isolated_tuning")


class _Overlap:
    """Records how many jobs ran at once and on which threads."""

    def __init__(self, hold_s: float = 0.05) -> None:
        self.hold_s = hold_s
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.threads: set[str] = set()

    def job(self, value: int) -> np.ndarray:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
            self.threads.add(threading.current_thread().name)
        time.sleep(self.hold_s)
        with self.lock:
            self.running -= 1
        return np.full((1, 2), value, dtype=np.float32)


# ---------------------------------------------------------------------------------------------- the lane
def test_shared_passes_run_side_by_side_and_come_back_in_order() -> None:
    lane = InferenceLane("lane-two")
    lane.set_streams(lambda: 2)
    overlap = _Overlap()
    out = lane.map_batches(IMAGE_PRIORITY, lambda batch: overlap.job(batch[0]), list(range(8)), 1, shared=True)
    assert out[:, 0].tolist() == list(range(8))  # results stacked in the items' order, whoever ran them
    assert overlap.most == 2 and overlap.threads == {"lane-two", "lane-two-1"}


def test_one_stream_runs_one_pass_at_a_time() -> None:
    lane = InferenceLane("lane-one")  # no streams set: the lane alone, as before
    overlap = _Overlap(0.01)
    lane.map_batches(IMAGE_PRIORITY, lambda batch: overlap.job(batch[0]), list(range(6)), 1, shared=True)
    assert overlap.most == 1 and overlap.threads == {"lane-one"}
    lane.map_batches(IMAGE_PRIORITY, lambda batch: overlap.job(batch[0]), list(range(6)), 1)  # not shared
    assert overlap.most == 1 and overlap.threads == {"lane-one"}


def test_text_and_lane_only_jobs_never_run_on_a_helper_and_go_first() -> None:
    lane = InferenceLane("lane-prio")
    lane.set_streams(lambda: 2)
    gate = threading.Event()
    ran: list[tuple[str, str]] = []  # (job, thread) in the order they ran

    def record(job: str) -> str:
        ran.append((job, threading.current_thread().name))
        return threading.current_thread().name

    # both streams busy on a held pass, more image passes queued behind them, then a text query
    held = [lane.submit_shared(gate.wait, 5) for _ in range(2)]
    queued = [lane.submit_shared(record, f"image{i}") for i in range(3)]
    text = lane.submit(TEXT_PRIORITY, record, "text")
    time.sleep(0.05)
    gate.set()
    assert text.result(timeout=5) == "lane-prio"  # on the lane itself, never on a helper
    for future in held + queued:
        future.result(timeout=5)
    # the lane runs the text query before any of the queued image passes it takes (a helper may take some)
    on_lane = [job for job, thread in ran if thread == "lane-prio"]
    assert on_lane[0] == "text"


def test_the_stream_count_is_read_before_every_pass() -> None:
    """A peer Ordo process shrinks the CPU budget: the count drops to 1 and the helper stops taking passes."""
    lane = InferenceLane("lane-shrink")
    streams = [2]
    lane.set_streams(lambda: streams[0])
    first = _Overlap()
    lane.map_batches(IMAGE_PRIORITY, lambda batch: first.job(batch[0]), list(range(6)), 1, shared=True)
    assert first.most == 2
    streams[0] = 1
    second = _Overlap()
    lane.map_batches(IMAGE_PRIORITY, lambda batch: second.job(batch[0]), list(range(6)), 1, shared=True)
    assert second.most == 1 and second.threads == {"lane-shrink"}


def test_a_failing_pass_and_a_broken_stream_count_reach_the_caller_not_the_threads() -> None:
    lane = InferenceLane("lane-fail")

    def broken() -> int:
        raise RuntimeError("budget file unreadable")

    lane.set_streams(broken)  # falls back to the lane alone
    with pytest.raises(ValueError, match="bad batch"):
        lane.map_batches(
            IMAGE_PRIORITY, lambda batch: (_ for _ in ()).throw(ValueError("bad batch")), [1], 1, shared=True
        )
    overlap = _Overlap(0.01)
    out = lane.map_batches(IMAGE_PRIORITY, lambda batch: overlap.job(batch[0]), [1, 2, 3], 1, shared=True)
    assert out[:, 0].tolist() == [1, 2, 3] and overlap.most == 1


# --------------------------------------------------------------------------------------------- the tuner
def _timed_prepare(speeds: dict[tuple[int, int], float]):
    """A tower whose speed per (threads, streams) is given in img/s: a call sleeps batch / per-stream speed,
    and a streams config runs one call per stream at once, as ``TowerRuntimes.prepare`` does."""

    def prepare(config: TowerConfig):
        speed = speeds.get((config.threads, config.streams), 1.0)

        def run(n: int) -> None:
            time.sleep(n * config.streams / speed)  # k streams at once: each at speed / k

        return run

    return prepare


@pytest.mark.parametrize(
    ("streams_speed", "chosen_streams"),
    [(300.0, 2), (195.0, 2), (170.0, 1)],  # faster; within the 10 % margin of 200; clearly slower
)
def test_the_tuner_favours_streams_within_the_margin(streams_speed: float, chosen_streams: int) -> None:
    speeds = {(2, 1): 200.0, (1, 1): 100.0, (1, 2): streams_speed}
    result = autotune.tune(
        TowerConfig(batch_size=8, threads=2, runtime="onnxruntime"),
        _timed_prepare(speeds),
        max_threads=2,
        budget_s=5,
        variants=[{"threads": 1, "streams": 2}],
        tune_batch=False,
    )
    assert result.config.streams == chosen_streams
    labels = [m["config"] for m in result.measured]
    assert any("x2 streams" in label for label in labels)  # measured, and labelled as such


def test_a_cached_choice_serves_only_the_knobs_it_was_measured_with() -> None:
    """The cache key holds what settings fixed: a choice measured with every knob free (two streams) is not
    served to a process told ``ORDO_MODEL_STREAMS=1``, and an entry needing more cores than there are is
    measured again."""
    measured: list[TowerConfig] = []

    def prepare(config: TowerConfig):
        measured.append(config)
        return lambda n: time.sleep(0.001 if config.streams == 2 else 0.01)

    def tuned(**options: Any) -> TuneResult:
        default = TowerConfig(threads=2, runtime="onnxruntime")
        return autotune.tuned("m", default, prepare, cpus=2, max_threads=2, budget_s=0.5, tune_batch=False, **options)

    free = tuned(variants=[{"threads": 1, "streams": 2}])
    assert free.config.streams == 2 and free.source == "measured"
    measured.clear()
    pinned = tuned(pinned="streams=1")
    assert pinned.source == "measured" and pinned.config.streams == 1 and measured
    assert autotune.tuned("m", TowerConfig(threads=2), prepare, cpus=2, max_threads=2).source == "cache"
    # an entry whose streams x threads exceed the cores now available is measured again
    key = f"{autotune.machine_key('m')}-t1"
    autotune.store_result(key, TuneResult(TowerConfig(threads=1, streams=2, runtime="onnxruntime"), 9.0, cpus=1))
    assert autotune.cached_result(key, 1) is None


def test_lane_jobs_shrink_with_streams_so_text_queries_wait_no_longer() -> None:
    from ordo.embedding.tuned_tower import lane_job_images

    one = TowerConfig(batch_size=2, threads=2)
    assert lane_job_images(8, one) == 8 and lane_job_images(7, one) == 8  # whole tower calls
    two = TowerConfig(batch_size=2, threads=1, streams=2, runtime="onnxruntime")
    assert lane_job_images(8, two) == 4  # half the images: each job runs on half the threads
    clip = TowerConfig(batch_size=8, threads=1, streams=2, runtime="onnxruntime")
    assert lane_job_images(1, clip) == 4  # a family whose job is one tower call: a call of half the batch
    single = TowerConfig(batch_size=1, threads=1, streams=2, runtime="onnxruntime")
    assert lane_job_images(1, single) == 1


# ---------------------------------------------------------------------------------- runtimes and embedder
def test_streams_need_onnx_runtime_and_one_session_serves_two_threads(tiny_vision: torch.nn.Module) -> None:
    runtimes = TowerRuntimes("tiny-streams", tiny_vision, 32, conv=False)
    with pytest.raises(ValueError, match="ONNX Runtime"):
        runtimes.prepare(TowerConfig(threads=1, streams=2, runtime="torch"))
    config = TowerConfig(batch_size=2, threads=1, streams=2, channels_last=False, runtime="onnxruntime")
    fn = runtimes.build(config)
    batches = [np.random.default_rng(i).standard_normal((2, 3, 32, 32), dtype=np.float32) for i in range(8)]
    serial = [fn(b) for b in batches]
    results: dict[int, np.ndarray] = {}

    def run(indices: range) -> None:
        for i in indices:
            results[i] = fn(batches[i])

    threads = [threading.Thread(target=run, args=(range(k, 8, 2),)) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i, expected in enumerate(serial):
        assert np.allclose(results[i], expected, atol=1e-6)  # concurrent calls do not mix their batches
    runtimes.prepare(config)(2)  # the tuner's runner: one batch on each stream at once


def test_the_active_streams_follow_the_budget(tiny_vision: torch.nn.Module) -> None:
    from ordo.embedding.tuned_tower import TunedTower

    budget = cpu_budget.ThreadBudget(cpus=2, peers=1, model_threads=2, decode_threads=1, _checked=1e18)
    runtimes = TowerRuntimes("tiny-streams", tiny_vision, 32, conv=False)
    config = TowerConfig(batch_size=2, threads=1, streams=2, channels_last=False, runtime="onnxruntime")
    tower = TunedTower(runtimes.build(config), TuneResult(config, 1.0), budget, runtimes)
    pixels = np.random.default_rng(3).standard_normal((2, 3, 32, 32), dtype=np.float32)
    tower(pixels)
    assert tower.active_streams == 2
    budget.model_threads = 1  # what refresh() sets when a second Ordo process registers
    tower(pixels)
    assert tower.active_streams == 1 and tower._threads == 1  # no new session: a stream has one thread


def test_an_embedder_with_streams_embeds_the_same_vectors_on_two_threads() -> None:
    """``ORDO_MODEL_STREAMS=2`` end to end on the tiny CLIP: ONNX Runtime, one thread a stream, the lane's
    helper thread takes passes, and the vectors equal the one-pass-at-a-time embedder's."""
    from PIL import Image

    from ordo.config import Settings
    from ordo.embedding.factory import RandomClipEmbedder
    from ordo.embedding.tuned_tower import RuntimeOptions, runtime_options

    options = runtime_options(Settings(model_streams=2, autotune=True, autotune_budget_s=0.5))["runtime_options"]
    assert options.streams == 2
    streamed = RandomClipEmbedder("random-clip:tiny", device="cpu", batch_size=2, runtime_options=options)
    plain = RandomClipEmbedder(
        "random-clip:tiny", device="cpu", batch_size=2, runtime_options=RuntimeOptions(autotune=False)
    )
    streamed.load()
    plain.load()
    assert streamed.tower is not None
    assert (streamed.tower.config.streams, streamed.tower.config.threads) == (2, 1)
    assert streamed.tower.config.runtime == "onnxruntime"
    images = [Image.new("RGB", (40 + i, 30), (i * 20, 100, 200 - i * 15)) for i in range(12)]
    assert min_cosine(streamed.embed_images(images), plain.embed_images(images)) >= 0.999
    if streamed.tower.budget.model_threads >= 2:  # a 1-core machine runs one stream, whatever is asked
        helpers = [t.name for t in threading.enumerate() if t.name == "ordo-infer-random-clip:tiny-1"]
        assert helpers  # the second stream's thread exists (it starts with the first shared pass)

    untuned = runtime_options(Settings(model_streams=2, autotune=False))["runtime_options"]
    fixed = RandomClipEmbedder("random-clip:tiny", device="cpu", runtime_options=untuned)
    fixed.load()
    assert fixed.tower is not None and (fixed.tower.config.streams, fixed.tower.config.threads) == (2, 1)

    never = RandomClipEmbedder(
        "random-clip:tiny", device="cpu", runtime_options=RuntimeOptions(autotune=True, budget_s=0.5, streams=1)
    )
    never.load()
    assert never.tower is not None and never.tower.config.streams == 1
