"""ordo-lite's text tower (MiniLM) in ONNX Runtime: a text query in ~4 ms instead of ~15, and no GIL held.

Why: a text query is the one model call a person waits for. Eager PyTorch spends most of a single MiniLM
query in Python glue between ~100 small ops (15 ms here, 3.7 ms in ONNX Runtime on one thread), and that glue
holds the GIL, so under 50 concurrent searches the gRPC threads queued behind the inference lane for it.
ONNX Runtime runs the whole graph in one call with the GIL released: the lane computes on one core while the
gRPC threads serve requests on the other.

Numerical agreement is checked at load against the eager tower on probe texts (minimum cosine >=
:data:`MIN_AGREEMENT`); anything less, or any failure to export or load, keeps the eager tower (logged).
int8 dynamic quantisation was measured and rejected: MiniLM's vectors then agree only to cosine 0.95-0.99.

Large batches (concurrent queries, see ``ordo.core.query_vectors``) run in PyTorch with bfloat16 autocast
where the CPU has it natively (AMX / AVX512-BF16): 1.9 ms a text at 32 texts against 3.5 in ONNX Runtime
float32 (which gains nothing from batching: MiniLM is compute-bound), cosine 0.99998 to float32. A single
query stays in ONNX Runtime, where bf16's per-op overhead would make it slower (15 ms against 3.7).

Batches are cut by token length before they run: concurrent queries of 8 and 40 tokens padded to one length
would cost as if all had 40 (attention and every linear layer run over the padding).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

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
    dynamic = {name: {0: "n", 1: "tokens"} for name in _INPUTS}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(),
            tuple(sample[name] for name in _INPUTS),
            str(tmp),
            input_names=list(_INPUTS),
            output_names=["features"],
            dynamic_axes={**dynamic, "features": {0: "n"}},
            dynamo=False,
            opset_version=17,
        )
    os.replace(tmp, path)
    return path


def _session(path: Path, threads: int) -> Any:
    """Between queries the cores belong to the gRPC threads: the shared opener keeps idle pool threads asleep."""
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

    Two ways to use more than one core, both measured on a 2-core AMD EPYC without AVX-512 (where MiniLM
    costs ~10.5 ms a text of one core, batched or not):

    * a lone query runs on ``solo_session`` (same graph, the budget's threads): 10.9 ms against 12.6 on one;
    * a batch (concurrent queries) is split in ``parallel`` halves that run at the same time, each on its
      own single-threaded call of ``session`` (the lane's thread and helpers; ``run`` releases the GIL and is
      safe to call concurrently). Intra-op threads gained almost nothing on batches (10.4 against 10.9 ms a
      text at 32): MiniLM's ops are small and every one of them waits for the sleeping pool threads to wake.
      Whole sub-batches side by side have nothing to synchronise until they end.
    """

    def __init__(
        self,
        session: Any,
        tokenizer: Any,
        max_tokens: int,
        threads: int,
        solo_session: Any = None,
        parallel: int = 1,
    ) -> None:
        self._session = session
        self._solo = solo_session
        self._tokenizer = tokenizer
        self.max_tokens = max_tokens
        self.threads = threads
        self.parallel = max(1, parallel)
        self._helpers = (
            ThreadPoolExecutor(self.parallel - 1, thread_name_prefix="ordo-text") if self.parallel > 1 else None
        )

    def features(self, texts: Sequence[str]) -> np.ndarray:
        encoded = self._tokenizer(list(texts), truncation=True, max_length=self.max_tokens)
        ids: list[list[int]] = encoded["input_ids"]
        types: list[list[int]] = encoded.get("token_type_ids") or [[0] * len(row) for row in ids]
        if len(ids) == 1 and self._solo is not None:
            return self._rows(self._solo, ids, types, [0])
        if self._helpers is None or len(ids) < 2:
            return self._rows(self._session, ids, types, list(range(len(ids))))
        # dealt by length (shortest first, round robin): every part gets the same mix, so they end together
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        parts = [order[k :: self.parallel] for k in range(min(self.parallel, len(ids)))]
        futures = [self._helpers.submit(self._rows, self._session, ids, types, part) for part in parts[1:]]
        results = [self._rows(self._session, ids, types, parts[0]), *(f.result() for f in futures)]
        out = np.empty((len(ids), results[0].shape[1]), dtype=np.float32)
        for part, rows in zip(parts, results, strict=True):
            out[part] = rows
        return out

    def _rows(self, session: Any, ids: list[list[int]], types: list[list[int]], rows: list[int]) -> np.ndarray:
        """Features of ``rows`` (indices into ids), in that order, run in length groups."""
        out: np.ndarray | None = None
        lengths = [len(ids[i]) for i in rows]
        for group in _length_groups(lengths):
            width = max(lengths[g] for g in group)
            batch = {name: np.zeros((len(group), width), dtype=np.int64) for name in _INPUTS}
            for row, g in enumerate(group):
                i, n = rows[g], lengths[g]
                batch["input_ids"][row, :n] = ids[i]
                batch["attention_mask"][row, :n] = 1
                batch["token_type_ids"][row, :n] = types[i]
            features = session.run(None, batch)[0]
            if out is None:
                out = np.empty((len(rows), features.shape[1]), dtype=np.float32)
            out[group] = features
        assert out is not None
        return out


def onnx_minilm(
    sentence_model: Any, model_id: str, threads: int, cache_file: str = "", solo_threads: int = 0, parallel: int = 1
) -> OnnxTextTower | None:
    """ONNX Runtime for a sentence-transformers MiniLM, or None (logged) where it cannot be used here.

    ``solo_threads`` > ``threads``: a second session of the same graph with that many threads runs lone
    queries and ``parallel`` > 1 splits batches (see :class:`OnnxTextTower`); the agreement check below covers
    both (one text at a time, and one batch)."""
    try:
        encoder = sentence_model[0].auto_model
        tokenizer = sentence_model.tokenizer
        module = MeanPooledEncoder(encoder).eval()
        path = onnx_path(f"{model_id}-text", module, cache_file)
        if not path.parent.is_relative_to(cache_path(cache_file).parent):
            raise ValueError(f"unexpected ONNX cache location {path}")
        exported = export_text_onnx(module, tokenizer, path)
        tower = OnnxTextTower(
            _session(exported, threads),
            tokenizer,
            int(sentence_model.max_seq_length or 128),
            threads,
            _session(exported, solo_threads) if solo_threads > threads else None,
            parallel,
        )
        reference = sentence_model.encode(list(PROBE_TEXTS), convert_to_numpy=True, normalize_embeddings=True)
        # one batch of mixed lengths and one text at a time: both must agree with the eager tower
        agreement = min(
            float((tower.features(PROBE_TEXTS) * reference).sum(axis=1).min()),
            float((np.concatenate([tower.features([t]) for t in PROBE_TEXTS]) * reference).sum(axis=1).min()),
        )
    except Exception as exc:  # no onnxruntime/onnx, an export the runtime refuses, a corrupt cache file...
        log.warning("%s text tower stays in PyTorch: ONNX Runtime unusable here (%s)", model_id, exc)
        return None
    if agreement < MIN_AGREEMENT:
        log.warning("%s text tower stays in PyTorch: ONNX Runtime agrees to cosine %.5f only", model_id, agreement)
        return None
    log.info(
        "%s text tower: ONNX Runtime, %d thread(s), a lone query %d, batches in %d part(s) (cosine to PyTorch %.6f)",
        model_id,
        threads,
        max(threads, solo_threads),
        tower.parallel,
        agreement,
    )
    return tower


def bf16_agreement(sentence_model: Any) -> float:
    """Minimum cosine between bfloat16-autocast and float32 MiniLM vectors of the probe texts (one batch)."""
    texts = list(PROBE_TEXTS)
    with torch.inference_mode():
        reference = sentence_model.encode(texts, convert_to_numpy=True, normalize_embeddings=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fast = sentence_model.encode(texts, convert_to_numpy=True, normalize_embeddings=True)
    return float((np.asarray(fast, dtype=np.float32) * reference).sum(axis=1).min())
