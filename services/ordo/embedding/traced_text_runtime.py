"""ordo-lite's text tower for batches of concurrent queries on a CPU with AMX: bfloat16 in a frozen TorchScript
graph, so a pass never waits for the GIL between its ops.

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


class TracedSession:
    """A frozen TorchScript graph behind ONNX Runtime's ``run(None, feeds)`` call, so :class:`GraphTextTower`
    tokenises and length-groups for it exactly as for an ONNX session. ``threads``: torch's intra-op threads
    for its passes, never more than the caller set (the lane sets the CPU budget's share before every text
    pass, so a budget shrunk by a second Ordo process caps this too); the image tower sets its own."""

    def __init__(self, graph: torch.jit.ScriptModule, threads: int) -> None:
        self._graph = graph
        self.threads = threads

    def run(self, _outputs: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        if self.threads < torch.get_num_threads():
            torch.set_num_threads(self.threads)
        with torch.inference_mode():
            out = self._graph(*(torch.from_numpy(feeds[name]) for name in TEXT_INPUTS))
        return [out.float().numpy()]


def fastest_threads(session: TracedSession, tower: GraphTextTower, budget_threads: int) -> int:
    """1 or the budget's threads, whichever runs a 32-text pass faster here (best of 3). Measured on the
    inference lane (a thread that is not the process's main thread), with Ordo's passive OpenMP waiting, one
    thread won on a 2-core Xeon: 743 / 996 texts/s at 16 / 48 texts, against 409 / 811 on two (on the main
    thread two won: 905 / 1221)."""
    texts = list(PROBE_TEXTS) * 8
    timings: dict[int, float] = {}
    before = torch.get_num_threads()
    try:
        for threads in sorted({1, max(1, budget_threads)}):
            session.threads = threads
            torch.set_num_threads(threads)
            tower.features(texts)  # the profiling executor's first run at this shape
            best = float("inf")
            for _ in range(3):
                started = time.perf_counter()
                tower.features(texts)
                best = min(best, time.perf_counter() - started)
            timings[threads] = best
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


def traced_bf16_minilm(sentence_model: Any, model_id: str, threads: int) -> GraphTextTower | None:
    """The traced bfloat16 MiniLM for batches of texts, or None (logged) where it fails or agrees too little.
    Build it on the thread that will run it (the inference lane): its thread count is measured there."""

    def build() -> tuple[GraphTextTower, float]:
        tokenizer = sentence_model.tokenizer
        sample = tokenizer(list(PROBE_TEXTS[:2]), padding=True, return_tensors="pt")
        graph = trace_bf16(MeanPooledEncoder(sentence_model[0].auto_model), tuple(sample[name] for name in TEXT_INPUTS))
        session = TracedSession(graph, threads)
        tower = GraphTextTower(session, tokenizer, int(sentence_model.max_seq_length or 128), threads, PASS_ROWS)
        agreement = probe_agreement(tower, sentence_model)
        if agreement >= MIN_AGREEMENT:
            tower.threads = fastest_threads(session, tower, threads)
        return tower, agreement

    return kept_if_agrees(model_id, "TorchScript bfloat16 (batches)", build)
