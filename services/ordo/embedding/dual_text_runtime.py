"""A dual encoder's text tower (CLIP and kin) as an int8 ONNX Runtime graph: a lone text query without
PyTorch's per-op overhead, OpenMP spinning or the GIL.

Why: a text query is the one model call a person waits for, and CLIP ViT-B/32's text tower in eager PyTorch
is ~250 small ops, each an OpenMP parallel region. libgomp lets its workers spin between regions only while
the process's OpenMP threads fit its CPUs; as soon as a second thread of the process has run one parallel torch
op (the search bench's speed probe, any torch call off the inference lane), it manages 4 threads on 2 cores,
throttles the spin, and the worker sleeps and is woken ~250 times a query (per-thread CPU time: the worker
was busy ~27 % of the wall time instead of ~100 %). Measured on a 2-core AMD EPYC
(AVX-512, exclusive, COCO captions of 9-18 tokens, the same process before and after one 384x384 matmul on
the main thread): eager int8 9.0 -> 19.8 ms p50 (the 9 ms of ``bench cpu-speed`` against the 18.4 ms of
``bench search``), this int8 graph 6.3 -> 7.4 ms. Other measured p50s (ms, 1 / 2 threads): eager fp32
32.8 / 26.8 (it reads ~150 MB of weights a query), ONNX Runtime fp32 16.4 / 14.0, ONNX Runtime int8 with
per-channel weights 7.2 / 6.9. ONNX Runtime also runs the whole graph in one call with the GIL released (eager
torch holds it between ops, so gRPC threads wait), and its pool sleeps when idle
(``tower_runtime.open_session``) instead of spinning against peers: the search service's load-time probe once
measured an eager query at 7.2 ms on one thread and 91.7 ms on two while another process was busy.

int8 dynamic quantisation scales activations per call, so batch mates would nudge a text's vector: every text
runs in its own call, and a text's vector is the same however queries are batched. Agreement with the eager
float32 tower is checked at load on probe texts (minimum cosine >= ``text_runtime.MIN_AGREEMENT``; per-tensor weights
reached only 0.99897 on CLIP ViT-B/32 with random weights, per-channel 0.9992-0.9994); anything less, or any
failure to export, quantise or load, returns None and the caller keeps its eager path (logged).

On an x86 CPU without VNNI (AVX2 only, or AVX-512 without VNNI) the weights are unsigned 8-bit (u8 x u8
products): there ONNX Runtime's u8 x s8 kernel sums products in pairs into 16 bits, which saturates. Measured on
the tiny test CLIP on a 2-core AMD EPYC with AVX2 only: signed weights agreed to cosine 0.972 (so queries stayed
in eager torch), signed 7-bit ones (``reduce_range``, ONNX Runtime's usual advice) 0.998, unsigned 7-bit 0.998,
unsigned 8-bit >= 0.999.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ordo.embedding.autotune import cache_path, cpu_flags
from ordo.embedding.hf_features import features_tensor
from ordo.embedding.text_runtime import kept_if_agrees, trace_text_graph
from ordo.embedding.tower_runtime import onnx_path, open_session

log = logging.getLogger(__name__)

PROBE_TEXTS = (
    "a photo of a dog",
    "two people riding bicycles down a city street at night",
    "receipt",
    "a plate of food with broccoli, rice and a fork next to a glass of red wine on a wooden table",
    "a black and white cat sleeping on a red couch",
)
_INPUTS = ("input_ids", "attention_mask")
Tokenize = Callable[[list[str]], dict[str, Any]]
"""texts → numpy ``input_ids`` / ``attention_mask`` (as the embedder tokenises them)."""


class TextFeatures(torch.nn.Module):
    """``get_text_features`` + L2 norm as one traceable module (the ONNX graph's contents)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model: Any = model  # a transformers dual encoder: get_text_features is not on Module's type

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        features = features_tensor(self.model.get_text_features(input_ids=input_ids, attention_mask=attention_mask))
        return torch.nn.functional.normalize(features.float(), p=2.0, dim=-1)


def _quiet_quantizer(record: logging.LogRecord) -> bool:
    """quantize_dynamic logs on the root logger: ~80 INFO lines per graph (tensors it leaves in float) and
    advice to run a shape-inference pass meant for static quantisation. Neither says anything actionable."""
    return record.levelno >= logging.WARNING and not str(record.msg).startswith("Please consider to run")


def needs_unsigned_weights(flags: set[str] | None = None) -> bool:
    """An x86 CPU whose u8 x s8 dot products saturate: AVX2 without any VNNI flavour (see the module notes)."""
    flags = cpu_flags() if flags is None else flags
    return "avx2" in flags and not {"avx512_vnni", "avx_vnni", "amx_int8"} & flags


def export_int8(module: TextFeatures, sample: dict[str, np.ndarray], path: Path, *, unsigned: bool = False) -> Path:
    """Export float32 (dynamic batch and length), quantise to int8 into ``path`` and drop the float32 file;
    later loads reuse ``path``. ``unsigned``: u8 weights instead of s8 (see the module notes)."""
    if path.is_file():
        return path
    import onnx  # noqa: F401  (the exporter needs it; a clear ImportError otherwise)
    from onnxruntime.quantization import QuantType, quantize_dynamic

    path.parent.mkdir(parents=True, exist_ok=True)
    fp32 = path.with_name(f"{path.stem}.{os.getpid()}.fp32.onnx")
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        trace_text_graph(module, {name: torch.from_numpy(sample[name]) for name in _INPUTS}, fp32)
        root = logging.getLogger()
        root.addFilter(_quiet_quantizer)
        try:
            quantize_dynamic(
                str(fp32), str(tmp), per_channel=True, weight_type=QuantType.QUInt8 if unsigned else QuantType.QInt8
            )
        finally:
            root.removeFilter(_quiet_quantizer)
        os.replace(tmp, path)
    finally:
        fp32.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
    return path


class OnnxInt8TextTower:
    """``features(texts)`` → float32 (n, d) unit rows: one ``session.run`` per text (see the module doc)."""

    def __init__(self, session: Any, tokenize: Tokenize, threads: int) -> None:
        self._session = session
        self._tokenize = tokenize
        self.threads = threads

    def features(self, texts: Sequence[str]) -> np.ndarray:
        rows = []
        for text in texts:
            encoded = self._tokenize([text])
            feeds = {name: np.ascontiguousarray(encoded[name], dtype=np.int64) for name in _INPUTS}
            rows.append(self._session.run(None, feeds)[0])
        return np.ascontiguousarray(np.concatenate(rows, axis=0), dtype=np.float32)


def onnx_int8_text(
    model: torch.nn.Module,
    tokenize: Tokenize,
    reference: Callable[[list[str]], np.ndarray],
    model_id: str,
    threads: int,
    cache_file: str = "",
) -> OnnxInt8TextTower | None:
    """The int8 ONNX Runtime text tower on ``threads`` intra-op threads, or None (logged) where it cannot be
    used here or disagrees with ``reference`` (the eager float32 tower, one text a call)."""

    def build() -> tuple[OnnxInt8TextTower, float]:
        module = TextFeatures(model).eval()
        unsigned = needs_unsigned_weights()
        path = onnx_path(f"{model_id}-text-int8{'-u8w' if unsigned else ''}", module, cache_file)
        if not path.parent.is_relative_to(cache_path(cache_file).parent):
            raise ValueError(f"unexpected ONNX cache location {path}")
        sample = tokenize(list(PROBE_TEXTS[:2]))
        cached = path.is_file()
        try:
            session = open_session(export_int8(module, sample, path, unsigned=unsigned), threads)
        except Exception:
            if not cached:
                raise
            # a truncated or corrupt cached file (open_session removed it): export it again, once
            log.warning("%s: cached int8 text graph %s unreadable; exporting it again", model_id, path)
            session = open_session(export_int8(module, sample, path, unsigned=unsigned), threads)
        tower = OnnxInt8TextTower(session, tokenize, threads)
        expected = np.concatenate([reference([text]) for text in PROBE_TEXTS])
        return tower, float((tower.features(PROBE_TEXTS) * expected).sum(axis=1).min())

    return kept_if_agrees(model_id, f"int8 ONNX Runtime, {threads} thread(s)", build)
