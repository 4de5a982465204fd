"""ordo-lite's text tower (MiniLM) in ONNX Runtime: a text query in ~4 ms instead of ~15, and no GIL held.

Why: a text query is the one model call a person waits for. Eager PyTorch spends most of a single MiniLM
query in Python glue between ~100 small ops (15 ms here, 3.7 ms in ONNX Runtime on one thread), and that glue
holds the GIL, so under 50 concurrent searches the gRPC threads queued behind the inference lane for it.
ONNX Runtime runs the whole graph in one call with the GIL released, so the gRPC threads keep serving
requests while the lane computes.

Numerical agreement is checked at load against the eager tower on probe texts (minimum cosine >=
:data:`MIN_AGREEMENT`); anything less, or any failure to export or load, keeps the eager tower (logged).
int8 dynamic quantisation was measured and rejected: MiniLM's vectors then agree only to cosine 0.95-0.99.

Large batches (concurrent queries, see ``ordo.core.query_vectors``) run in bfloat16 on a CPU with AMX, as a
frozen TorchScript graph (``ordo.embedding.traced_text_runtime``, which says why not eager autocast).
A single query stays in ONNX Runtime, where bf16's per-op overhead would make it slower.

Batches are cut by token length before they run: concurrent queries of 8 and 40 tokens padded to one length
would cost as if all had 40 (attention and every linear layer run over the padding).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from ordo.embedding.autotune import cache_path
from ordo.embedding.tower_runtime import onnx_path, open_session

log = logging.getLogger(__name__)

MIN_AGREEMENT = 0.999
PROBE_TEXTS = (
    "a dog running on the beach",
    "two people riding bicycles down a city street at night",
    "receipt",
    "a plate of food with broccoli, rice and a fork next to a glass of red wine on a wooden table",
)
T = TypeVar("T")


def kept_if_agrees(model_id: str, runtime: str, build: Callable[[], tuple[T, float]]) -> T | None:
    """The faster text tower ``build`` makes, kept only when its agreement (minimum cosine to the eager
    reference on the probe texts) reaches :data:`MIN_AGREEMENT`; None, logged, when it cannot be built here
    or agrees less. Why one gate: every runtime swapped in for a text tower (MiniLM's ONNX graph, CLIP-style
    int8 graphs) must pass the same check and fall back to the eager tower the same way."""
    try:
        tower, agreement = build()
    except Exception as exc:  # no onnxruntime/onnx, an export the runtime refuses, a corrupt cache file...
        log.warning("%s text tower stays in PyTorch: %s unusable here (%s)", model_id, runtime, exc)
        return None
    if agreement < MIN_AGREEMENT:
        log.warning("%s text tower stays in PyTorch: %s agrees to cosine %.5f only", model_id, runtime, agreement)
        return None
    log.info("%s text tower: %s (cosine to the eager tower %.6f)", model_id, runtime, agreement)
    return tower


# What one more pass costs, in padded token rows (see _length_groups): a graph run's fixed cost over its
# cost per token row. ONNX Runtime float32 MiniLM: ~0.9 ms a pass and ~0.28 ms a row on one thread of a 2-core
# AMD EPYC (~3); ~2.2 ms and ~0.14 ms on two threads of a 2-core Xeon (~16); 8 sits between. The traced
# bfloat16 graph has its own (``ordo.embedding.traced_text_runtime.PASS_ROWS``).
ONNX_PASS_ROWS = 8


class MeanPooledEncoder(torch.nn.Module):
    """A BERT-style encoder + mask-aware mean pooling + L2 norm: what sentence-transformers' MiniLM does."""

    def __init__(self, encoder: torch.nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor):
        hidden = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2.0, dim=-1)


TEXT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def export_text_onnx(module: MeanPooledEncoder, tokenizer: Any, path: Path) -> Path:
    """Export once (dynamic batch and length) to ``path``; later loads reuse the file."""
    if path.is_file():
        return path
    import onnx  # noqa: F401  (the exporter needs it; a clear ImportError otherwise)

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    sample = tokenizer(list(PROBE_TEXTS[:2]), padding=True, return_tensors="pt")
    trace_text_graph(module, {name: sample[name] for name in TEXT_INPUTS}, tmp)
    os.replace(tmp, path)
    return path


def trace_text_graph(module: torch.nn.Module, sample: dict[str, torch.Tensor], path: Path) -> None:
    """Trace ``module(*sample.values())`` to an ONNX graph at ``path``: inputs named as ``sample``'s keys with
    dynamic batch and length, one ``features`` output with a dynamic batch. Shared by every text graph Ordo
    exports, so they all take the same inputs and the same opset (17, TorchScript exporter)."""
    dynamic = {name: {0: "n", 1: "tokens"} for name in sample}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(),
            tuple(sample.values()),
            str(path),
            input_names=list(sample),
            output_names=["features"],
            dynamic_axes={**dynamic, "features": {0: "n"}},
            dynamo=False,
            opset_version=17,
        )


def _session(path: Path, threads: int) -> Any:
    """Between passes the cores belong to the gRPC threads: the shared opener keeps idle pool threads asleep."""
    return open_session(path, threads)


def _length_groups(lengths: Sequence[int], pass_rows: int = ONNX_PASS_ROWS) -> list[list[int]]:
    """Indices of texts in groups of similar token length (shortest first), one pass each: the split of the
    sorted lengths that costs least, a pass costing ``pass_rows`` + its texts x its longest text's length.
    Why: concurrent queries of 8 and 40 tokens padded to one length cost as if all had 40, while every extra
    pass pays the runtime's fixed cost; which wins depends on the runtime, so it is weighed, not guessed.

    A dynamic programme over the *distinct* lengths: texts of one length never gain from two passes (the second
    pays ``pass_rows`` and saves no padding), so the work is at most (max tokens)² steps, 128² for MiniLM,
    however many texts a call brings (up to 512 through ``EmbedTexts``), not (texts)²."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    widths = sorted({max(1, int(n)) for n in lengths})
    count = Counter(max(1, int(n)) for n in lengths)
    upto = [0]  # upto[u]: texts no longer than widths[u - 1]
    for width in widths:
        upto.append(upto[-1] + count[width])
    best = [0.0] + [float("inf")] * len(widths)  # best[v]: cheapest split of the texts up to widths[v - 1]
    cut = [0] * (len(widths) + 1)
    for v in range(1, len(widths) + 1):
        for u in range(v):  # the last pass holds the widths u .. v-1, padded to widths[v - 1]
            cost = best[u] + pass_rows + (upto[v] - upto[u]) * widths[v - 1]
            if cost < best[v]:
                best[v], cut[v] = cost, u
    groups: list[list[int]] = []
    v = len(widths)
    while v > 0:
        groups.append(order[upto[cut[v]] : upto[v]])
        v = cut[v]
    return groups[::-1]


class GraphTextTower:
    """``features(texts)`` → float32 (n, d) unit rows, as the eager tower computes them, from a whole-graph
    runtime: an ONNX Runtime session, or anything with its ``run(None, feeds) -> [features]`` (the traced
    bfloat16 graph's :class:`ordo.embedding.traced_text_runtime.TracedSession`). Tokenising and length
    grouping live here once for both.

    One ONNX session, on the budget's model threads, for a lone query and for a batch of concurrent ones alike.
    Measured on a 2-core AMD EPYC with AVX-512 (exclusive micro-benchmark, COCO captions of ~13 tokens, ms
    of wall time a text at batch 1 / 8 / 32 / 64, length-grouped): one thread 4.6 / 4.2 / 3.9 / 3.7, two
    threads 4.4 / 3.1 / 2.6 / 2.8. MiniLM is compute-bound (~0.28 GFLOP a caption, ~75 GFLOP/s on one
    core), so batching saves ~20 % and the second thread ~30 %; under 50 SearchText clients two threads
    gave 192 req/s against 168 on one (``bench.concurrency_bench``, same run, stack sampler attached).
    Earlier variants (a lone query on its own session, batches split in parts run side by side) measured
    no better and are gone.
    """

    def __init__(
        self, session: Any, tokenizer: Any, max_tokens: int, threads: int, pass_rows: int = ONNX_PASS_ROWS
    ) -> None:
        self._session = session
        self.pass_rows = pass_rows
        self._tokenizer = tokenizer
        self.max_tokens = max_tokens
        self.threads = threads

    def features(self, texts: Sequence[str]) -> np.ndarray:
        encoded = self._tokenizer(list(texts), truncation=True, max_length=self.max_tokens)
        ids: list[list[int]] = encoded["input_ids"]
        types: list[list[int]] = encoded.get("token_type_ids") or [[0] * len(row) for row in ids]
        out: np.ndarray | None = None
        lengths = [len(row) for row in ids]
        for group in _length_groups(lengths, self.pass_rows):
            width = max(lengths[g] for g in group)
            batch = {name: np.zeros((len(group), width), dtype=np.int64) for name in TEXT_INPUTS}
            for row, g in enumerate(group):
                n = lengths[g]
                batch["input_ids"][row, :n] = ids[g]
                batch["attention_mask"][row, :n] = 1
                batch["token_type_ids"][row, :n] = types[g]
            features = self._session.run(None, batch)[0]
            if out is None:
                out = np.empty((len(ids), features.shape[1]), dtype=np.float32)
            out[group] = features
        assert out is not None
        return out


def onnx_minilm(sentence_model: Any, model_id: str, threads: int, cache_file: str = "") -> GraphTextTower | None:
    """ONNX Runtime for a sentence-transformers MiniLM on ``threads`` intra-op threads, or None (logged) where
    it cannot be used here. The agreement check covers one text at a time and one batch of mixed lengths."""

    def build() -> tuple[GraphTextTower, float]:
        encoder = sentence_model[0].auto_model
        tokenizer = sentence_model.tokenizer
        module = MeanPooledEncoder(encoder).eval()
        path = onnx_path(f"{model_id}-text", module, cache_file)
        if not path.parent.is_relative_to(cache_path(cache_file).parent):
            raise ValueError(f"unexpected ONNX cache location {path}")
        exported = export_text_onnx(module, tokenizer, path)
        tower = GraphTextTower(
            _session(exported, threads), tokenizer, int(sentence_model.max_seq_length or 128), threads
        )
        return tower, probe_agreement(tower, sentence_model)

    return kept_if_agrees(model_id, f"ONNX Runtime, {threads} thread(s)", build)


def probe_agreement(tower: GraphTextTower, sentence_model: Any) -> float:
    """Minimum cosine to the eager float32 tower over the probe texts, run as one batch of mixed lengths and
    one text at a time: a graph runtime must agree in both shapes."""
    reference = sentence_model.encode(list(PROBE_TEXTS), convert_to_numpy=True, normalize_embeddings=True)
    return min(
        float((tower.features(PROBE_TEXTS) * reference).sum(axis=1).min()),
        float((np.concatenate([tower.features([t]) for t in PROBE_TEXTS]) * reference).sum(axis=1).min()),
    )
