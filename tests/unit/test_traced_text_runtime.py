"""The traced bfloat16 MiniLM (batches of concurrent text queries on AMX CPUs): it gives eager float32's
vectors, and a pass keeps running at speed while another Python thread wants the GIL — the reason it
replaced eager autocast, which slowed ~13x beside one pure-Python thread (``ordo.embedding.traced_text_runtime``).

Runs on any CPU: where bfloat16 is emulated the graph is slower but computes the same thing."""

from __future__ import annotations

import json
import statistics
import sys
import threading
import time
from collections.abc import Callable

import numpy as np
import pytest
import torch

from ordo.config import Settings
from tests.fixtures.datasets import DATASETS

ordo_lite = pytest.importorskip("ordo.embedding.ordo_lite")
pytest.importorskip("sentence_transformers")
from ordo.embedding.text_runtime import TEXT_INPUTS, MeanPooledEncoder  # noqa: E402
from ordo.embedding.traced_text_runtime import TracedSession, trace_bf16, traced_bf16_minilm  # noqa: E402


@pytest.fixture(scope="module")
def minilm():
    return ordo_lite.load_text_tower()


@pytest.fixture(scope="module")
def captions() -> list[str]:
    records = [json.loads(line) for line in (DATASETS / "coco-captions-mini" / "captions.jsonl").open()][:32]
    return [record["captions"][0] for record in records]


def test_agrees_with_eager_float32_in_any_batch(minilm, captions: list[str]) -> None:
    tower = traced_bf16_minilm(minilm, "ordo-lite-test", 1)
    assert tower is not None  # traced and agreeing on the probe texts
    texts = [*captions[:22], "dog", "a " * 200 + "cat"]  # 1 word piece .. truncated at 128
    reference = ordo_lite.text_features(minilm, texts)
    for batch in (texts, texts[:9], texts[-2:]):
        got = tower.features(batch)
        assert got.dtype == np.float32 and got.shape == (len(batch), reference.shape[1])
        assert float((got * reference[[texts.index(t) for t in batch]]).sum(axis=1).min()) >= 0.999


def _slowdown(run: Callable[[], object]) -> float:
    """Median pass time beside a pure-Python thread over the median alone (one intra-op thread, so on two
    cores the pass and the Python thread need not share a core: only the GIL can slow the pass)."""
    alone = [_timed(run) for _ in range(5)]
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            sum(range(500))

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    try:
        beside = [_timed(run) for _ in range(5)]
    finally:
        stop.set()
        spinner.join()
    return statistics.median(beside) / statistics.median(alone)


def _timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def test_a_pass_does_not_wait_for_the_gil_between_ops(minilm, captions: list[str]) -> None:
    """At the servers' GIL switch interval (0.5 ms), 8 texts, one thread: the traced pass measured 1.17-1.26x
    slower beside a Python thread, eager autocast 4.5x (2-core Xeon with AMX; beside a Python *process* both
    stay at 1.0-1.1x: no core is shared). Both run the same module on the same token tensors, so only how each
    holds the GIL differs."""
    threads, interval = torch.get_num_threads(), sys.getswitchinterval()
    torch.set_num_threads(1)
    sys.setswitchinterval(Settings().gil_switch_interval_ms / 1000)
    try:
        module = MeanPooledEncoder(minilm[0].auto_model).eval()
        encoded = minilm.tokenizer(captions[:8], padding=True, return_tensors="pt")
        tensors = tuple(encoded[name] for name in TEXT_INPUTS)
        session = TracedSession(trace_bf16(module, tensors), threads=1)
        feeds = {name: encoded[name].numpy() for name in TEXT_INPUTS}
        session.run(None, feeds)  # the profiling executor's first runs

        def eager() -> object:
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
                return module(*tensors)

        traced, control = _slowdown(lambda: session.run(None, feeds)), _slowdown(eager)
    finally:
        torch.set_num_threads(threads)
        sys.setswitchinterval(interval)
    assert traced < 2.0, f"traced pass {traced:.1f}x slower beside a Python thread"
    assert control > 1.5 * traced, f"eager control {control:.1f}x vs traced {traced:.1f}x: the test shows nothing here"


def test_a_pass_never_uses_more_threads_than_the_caller_set() -> None:
    """The lane sets the CPU budget's share before each text pass; the graph's measured count only lowers it.
    (A stand-in graph records the thread count it ran with; the real graph's speed is measured above.)"""
    seen: list[int] = []

    def graph(*tensors: torch.Tensor) -> torch.Tensor:
        seen.append(torch.get_num_threads())
        return torch.zeros((tensors[0].shape[0], 4))

    feeds = {name: np.zeros((3, 5), dtype=np.int64) for name in TEXT_INPUTS}
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        TracedSession(graph, threads=1).run(None, feeds)  # type: ignore[arg-type]
        torch.set_num_threads(1)  # a second Ordo process shrank the budget
        out = TracedSession(graph, threads=2).run(None, feeds)  # type: ignore[arg-type]
    finally:
        torch.set_num_threads(before)
    assert seen == [1, 1]
    assert out[0].shape == (3, 4) and out[0].dtype == np.float32
