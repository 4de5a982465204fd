"""ordo-lite's text tower for batches of concurrent queries on a CPU with native bfloat16 (AMX or AVX512-BF16),
where it costs less CPU than ONNX Runtime, measured at load: bfloat16 in a frozen TorchScript graph, so a pass
never waits for the GIL between its ops.

Why not eager autocast (what ran here before): eager PyTorch releases the GIL inside each op and takes it back
between ops, ~300 times a MiniLM pass. Under 50 SearchText clients the gRPC handlers and Qdrant Edge's
searches (its binding holds the GIL ~1.2 ms a query) held it most of the time, so each op queued for it and
the inference lane, the server's bottleneck, ran a text in ~5 ms instead of ~1.1: 50 clients got 180-206
req/s with the process using 1.0-1.15 of its 2 cores (per-thread CPU from ``/proc``, py-spy on the lane;
2-core Xeon with AMX). Micro-benchmark on that machine, texts/s at batch 32, alone / beside one pure-Python
thread: eager bf16 642 / 48, this graph 834 / 460 (ONNX Runtime float32 on 2 threads: 541 alone). A traced,
frozen graph runs every op in TorchScript's C++ interpreter with the GIL released for the whole pass, and the
freeze folds the weights' bfloat16 casts into constants once instead of casting each weight every pass.

The graph is traced at load from the same mean-pooled encoder the ONNX export uses (``MeanPooledEncoder``),
under autocast with TorchScript's own autocast pass off (it would cast twice). It must agree with eager
float32 on the probe texts in a mixed-length batch and one text at a time (cosine >= ``MIN_AGREEMENT``;
measured 0.99998) or it is not used. Shapes vary per pass (batch size and token length); the trace records no
shape-dependent branch for MiniLM, which the one-at-a-time probe (other shapes than the trace's) checks.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from ordo.embedding.text_runtime import (
    MIN_AGREEMENT,
    PROBE_TEXTS,
    TEXT_INPUTS,
    GraphTextTower,
    MeanPooledEncoder,
    kept_if_agrees,
    probe_agreement,
)

log = logging.getLogger(__name__)

# A pass's fixed cost in padded token rows (see ``text_runtime._length_groups``). Measured on one thread of a
# 2-core Xeon with AMX, ms a pass of n texts x w tokens: (1, 12) 3.5, (16, 12) 13.6, (48, 12) 34.2, (48, 32)
# 53.5, i.e. ~3 ms a pass + ~0.4 ms a text + ~0.02 ms a token row: a pass costs ~150 padded rows, so a drain of
# concurrent queries runs as one or two passes. (ONNX Runtime's 8 made ~10 passes of 50 queries here, some of
# one text, at 1.7 ms of CPU a text against ~1.0 in one pass.)
PASS_ROWS = 150
# What load-time timings run: a 32-text pass of the probe texts (mixed lengths, as concurrent queries are).
TIMED_TEXTS = list(PROBE_TEXTS) * 8


class TracedSession:
    """A frozen TorchScript graph behind ONNX Runtime's ``run(None, feeds)`` call, so :class:`GraphTextTower`
    tokenises and length-groups for it exactly as for an ONNX session.

    ``threads``: torch's intra-op threads for its passes, as measured at load (:func:`fastest_threads`), and
    never more than ``cap()``: the CPU budget's model threads, read at every pass, so a budget shrunk by a
    second Ordo process caps this too. Each pass sets its own count: the lane runs other work between passes
    (single queries, image batches) on other counts, and a pass that only lowered the count it found ran
    on one thread where two were measured faster (a 2-core EPYC: 1.5 against 2.5 ms a text at 32)."""

    def __init__(self, graph: torch.jit.ScriptModule, threads: int, cap: Callable[[], int] | None = None) -> None:
        self._graph = graph
        self.threads = threads
        self._cap = cap

    def run(self, _outputs: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        threads = max(1, min(self.threads, self._cap() if self._cap is not None else self.threads))
        if threads != torch.get_num_threads():
            torch.set_num_threads(threads)
        with torch.inference_mode():
            out = self._graph(*(torch.from_numpy(feeds[name]) for name in TEXT_INPUTS))
        return [out.float().numpy()]


def best_pass_seconds(
    tower: Any, texts: Sequence[str], repeats: int = 3, clock: Callable[[], float] = time.perf_counter
) -> float:
    """Seconds of ``clock`` (wall by default) that ``tower.features(texts)`` takes, best of ``repeats`` after one
    untimed run (a traced graph's profiling executor specialises on its first runs at a shape)."""
    tower.features(texts)
    best = float("inf")
    for _ in range(repeats):
        started = clock()
        tower.features(texts)
        best = min(best, clock() - started)
    return best


def fastest_threads(session: TracedSession, tower: GraphTextTower, budget_threads: int) -> int:
    """1 or the budget's threads, whichever runs a 32-text pass faster here (best of 3). Measured on the
    inference lane (a thread that is not the process's main thread), with Ordo's passive OpenMP waiting, one
    thread won on a 2-core Xeon with AMX: 743 / 996 texts/s at 16 / 48 texts, against 409 / 811 on two (on the
    main thread two won: 905 / 1221); two won on a 2-core EPYC with AVX512-BF16 (1.5 against 2.5 ms a text)."""
    timings: dict[int, float] = {}
    before = torch.get_num_threads()
    try:
        for threads in sorted({1, max(1, budget_threads)}):
            session.threads = threads
            timings[threads] = best_pass_seconds(tower, TIMED_TEXTS)
    finally:
        torch.set_num_threads(before)
    session.threads = min(timings, key=lambda t: timings[t])
    log.info(
        "traced bf16 text batches: %d torch thread(s) (ms a 32-text pass: %s)",
        session.threads,
        {t: round(v * 1000, 1) for t, v in timings.items()},
    )
    return session.threads


def trace_bf16(module: torch.nn.Module, sample: tuple[torch.Tensor, ...]) -> torch.jit.ScriptModule:
    """``module`` traced on ``sample`` under bfloat16 autocast and frozen (weights cast once, at freeze)."""
    previous = torch._C._jit_set_autocast_mode(False)  # the traced casts are the only ones
    try:
        with warnings.catch_warnings(), torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            warnings.simplefilter("ignore")  # TracerWarnings about Python values in transformers' mask helpers
            return torch.jit.freeze(torch.jit.trace(module.eval(), sample, check_trace=False, strict=False))
    finally:
        torch._C._jit_set_autocast_mode(previous)


def traced_bf16_minilm(
    sentence_model: Any,
    model_id: str,
    threads: int,
    *,
    cap: Callable[[], int] | None = None,
    baseline: GraphTextTower | None = None,
) -> GraphTextTower | None:
    """The traced bfloat16 MiniLM for batches of texts, or None (logged) where it fails, agrees too little,
    or costs no less CPU a 32-text pass than ``baseline`` (ONNX Runtime float32, when in use) on this machine.
    Build it on the thread that will run it (the inference lane): its thread count is measured there.
    ``cap``: the CPU budget's model threads, read before every pass (see :class:`TracedSession`).

    Why measured rather than decided by CPU flags: in a 32-text pass a text cost 1.9 against ONNX Runtime's
    3.5 ms with AMX (a 2-core Xeon), 2.9 against 3.9 ms of CPU with AVX512-BF16 alone (a 2-core EPYC, where
    50 concurrent SearchText clients then got ~14 % more); a CPU we have not measured may differ."""

    def build() -> tuple[GraphTextTower, float]:
        tokenizer = sentence_model.tokenizer
        sample = tokenizer(list(PROBE_TEXTS[:2]), padding=True, return_tensors="pt")
        graph = trace_bf16(MeanPooledEncoder(sentence_model[0].auto_model), tuple(sample[name] for name in TEXT_INPUTS))
        session = TracedSession(graph, threads, cap)
        tower = GraphTextTower(session, tokenizer, int(sentence_model.max_seq_length or 128), threads, PASS_ROWS)
        agreement = probe_agreement(tower, sentence_model)
        if agreement >= MIN_AGREEMENT:
            tower.threads = fastest_threads(session, tower, threads)
        return tower, agreement

    tower = kept_if_agrees(model_id, "TorchScript bfloat16 (batches)", build)
    if tower is None or baseline is None:
        return tower
    return tower if beats(tower, baseline, model_id) else None


def beats(tower: GraphTextTower, baseline: GraphTextTower, model_id: str) -> bool:
    """Whether ``tower`` spends less CPU than ``baseline`` on a 32-text pass here (the process's CPU clock, best
    of 3 each, same texts); logged. CPU rather than wall time: batches exist only under concurrent queries,
    when the gRPC threads want the same cores, and an ONNX pass on two threads can match the graph's wall
    time while costing more CPU (a 2-core EPYC: 2.9 against 3.9 ms of CPU a text, 1.5 against 2.2 ms wall)."""
    before = torch.get_num_threads()
    try:
        ours = best_pass_seconds(tower, TIMED_TEXTS, clock=time.process_time)
        theirs = best_pass_seconds(baseline, TIMED_TEXTS, clock=time.process_time)
    finally:
        torch.set_num_threads(before)
    log.info(
        "%s text batches: %s (ms of CPU a 32-text pass: bf16 graph %.1f, ONNX Runtime %.1f)",
        model_id,
        "bf16 graph" if ours < theirs else "ONNX Runtime (the graph costs no less here)",
        ours * 1000,
        theirs * 1000,
    )
    return ours < theirs
