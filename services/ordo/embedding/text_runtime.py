"""ordo-lite's text tower (MiniLM) in ONNX Runtime: a text query in ~4 ms instead of ~15, and no GIL held.

Why: a text query is the one model call a person waits for. Eager PyTorch spends most of a single MiniLM
query in Python glue between ~100 small ops (15 ms here, 3.7 ms in ONNX Runtime on one thread), and that glue
holds the GIL, so under 50 concurrent searches the gRPC threads queued behind the inference lane for it.
ONNX Runtime runs the whole graph in one call with the GIL released, so the gRPC threads keep serving
requests while the lane computes.

Numerical agreement is checked at load against the eager tower on probe texts (minimum cosine >=
:data:`MIN_AGREEMENT`); anything less, or any failure to export or load, keeps the eager tower (logged).
int8 dynamic quantisation was measured and rejected: MiniLM's vectors then agree only to cosine 0.95-0.99.

Large batches (concurrent queries, see ``ordo.core.query_vectors``) run in PyTorch with bfloat16 autocast
on a CPU with AMX: 1.9 ms a text at 32 texts against 3.5 in ONNX Runtime float32, cosine 0.99998 to
float32 (2-core Xeon). Without AMX they stay here: on a 2-core AMD EPYC with AVX512-BF16 but no AMX, bf16
batches cost 3.4-4.2 ms a text on one thread (no better than ONNX Runtime) and, holding the GIL between ops,
took 50 SearchText clients from 168 req/s down to 119 (``bench.concurrency_bench``, same exclusive run,
stack sampler attached).
A single query stays in ONNX Runtime, where bf16's per-op overhead would make it slower (15 ms against 3.7).

Batches are cut by token length before they run: concurrent queries of 8 and 40 tokens padded to one length
would cost as if all had 40 (attention and every linear layer run over the padding).
"""

from __future__ import annotations

import logging
import os
import warnings
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


# A length group (see _length_groups) grows while its longest text is at most this factor of its shortest.
LENGTH_SPREAD = 1.3


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


_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def export_text_onnx(module: MeanPooledEncoder, tokenizer: Any, path: Path) -> Path:
    """Export once (dynamic batch and length) to ``path``; later loads reuse the file."""
    if path.is_file():
        return path
    import onnx  # noqa: F401  (the exporter needs it; a clear ImportError otherwise)

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    sample = tokenizer(list(PROBE_TEXTS[:2]), padding=True, return_tensors="pt")
    trace_text_graph(module, {name: sample[name] for name in _INPUTS}, tmp)
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


def _length_groups(lengths: Sequence[int]) -> list[list[int]]:
    """Indices of texts grouped by similar token length (shortest first), so padding wastes little."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    groups: list[list[int]] = []
    for i in order:
        if groups and lengths[i] <= LENGTH_SPREAD * max(1, lengths[groups[-1][0]]):
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


class OnnxTextTower:
    """``features(texts)`` → float32 (n, d) unit rows, as the eager tower computes them.

    One session, on the budget's model threads, for a lone query and for a batch of concurrent ones alike.
    Measured on a 2-core AMD EPYC with AVX-512 (exclusive micro-benchmark, COCO captions of ~13 tokens, ms
    of wall time a text at batch 1 / 8 / 32 / 64, length-grouped): one thread 4.6 / 4.2 / 3.9 / 3.7, two
    threads 4.4 / 3.1 / 2.6 / 2.8. MiniLM is compute-bound (~0.28 GFLOP a caption, ~75 GFLOP/s on one
    core), so batching saves ~20 % and the second thread ~30 %; under 50 SearchText clients two threads
    gave 192 req/s against 168 on one (``bench.concurrency_bench``, same run, stack sampler attached).
    Earlier variants (a lone query on its own session, batches split in parts run side by side) measured
    no better and are gone.
    """

    def __init__(self, session: Any, tokenizer: Any, max_tokens: int, threads: int) -> None:
        self._session = session
        self._tokenizer = tokenizer
        self.max_tokens = max_tokens
        self.threads = threads

    def features(self, texts: Sequence[str]) -> np.ndarray:
        encoded = self._tokenizer(list(texts), truncation=True, max_length=self.max_tokens)
        ids: list[list[int]] = encoded["input_ids"]
        types: list[list[int]] = encoded.get("token_type_ids") or [[0] * len(row) for row in ids]
        out: np.ndarray | None = None
        lengths = [len(row) for row in ids]
        for group in _length_groups(lengths):
            width = max(lengths[g] for g in group)
            batch = {name: np.zeros((len(group), width), dtype=np.int64) for name in _INPUTS}
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


def onnx_minilm(sentence_model: Any, model_id: str, threads: int, cache_file: str = "") -> OnnxTextTower | None:
    """ONNX Runtime for a sentence-transformers MiniLM on ``threads`` intra-op threads, or None (logged) where
    it cannot be used here. The agreement check covers one text at a time and one batch of mixed lengths."""

    def build() -> tuple[OnnxTextTower, float]:
        encoder = sentence_model[0].auto_model
        tokenizer = sentence_model.tokenizer
        module = MeanPooledEncoder(encoder).eval()
        path = onnx_path(f"{model_id}-text", module, cache_file)
        if not path.parent.is_relative_to(cache_path(cache_file).parent):
            raise ValueError(f"unexpected ONNX cache location {path}")
        exported = export_text_onnx(module, tokenizer, path)
        tower = OnnxTextTower(
            _session(exported, threads), tokenizer, int(sentence_model.max_seq_length or 128), threads
        )
        reference = sentence_model.encode(list(PROBE_TEXTS), convert_to_numpy=True, normalize_embeddings=True)
        # one batch of mixed lengths and one text at a time: both must agree with the eager tower
        agreement = min(
            float((tower.features(PROBE_TEXTS) * reference).sum(axis=1).min()),
            float((np.concatenate([tower.features([t]) for t in PROBE_TEXTS]) * reference).sum(axis=1).min()),
        )
        return tower, agreement

    return kept_if_agrees(model_id, f"ONNX Runtime, {threads} thread(s)", build)


def bf16_agreement(sentence_model: Any) -> float:
    """Minimum cosine between bfloat16-autocast and float32 MiniLM vectors of the probe texts (one batch)."""
    texts = list(PROBE_TEXTS)
    with torch.inference_mode():
        reference = sentence_model.encode(texts, convert_to_numpy=True, normalize_embeddings=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fast = sentence_model.encode(texts, convert_to_numpy=True, normalize_embeddings=True)
    return float((np.asarray(fast, dtype=np.float32) * reference).sum(axis=1).min())
