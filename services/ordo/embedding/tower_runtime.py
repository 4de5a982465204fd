"""Runtimes for an image tower: eager PyTorch (optionally channels-last, bfloat16) or ONNX Runtime.

Why several: which is fastest depends on the CPU and on how busy it is. On this 2-core AMD EPYC, with other
jobs running, EfficientNet-Lite2 ran 15-20 img/s in ONNX Runtime against 3-6 in eager torch (torch's OpenMP
threads spin and lose their cores under contention; ONNX Runtime's pool degrades gracefully), while on a quiet
Xeon torch at batch 4 reached 34 img/s. So the tuner (``ordo.embedding.autotune``) measures both and keeps
the winner, and every candidate other than the float32 torch reference must agree with it on probe inputs
(minimum cosine >= :data:`MIN_AGREEMENT`), otherwise it is not a candidate.

The ONNX graph is exported once per model and torch version (a few seconds) into the user cache
(``~/.cache/ordo/onnx``, beside the tuning cache) and reused; a corrupt file is re-exported.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ordo.embedding.autotune import TowerConfig, cache_path

log = logging.getLogger(__name__)

MIN_AGREEMENT = 0.999
TowerFn = Callable[[np.ndarray], np.ndarray]
"""float32 NCHW pixels (already preprocessed) → float32 (n, d) features."""


class FeatureModule(torch.nn.Module):
    """Wraps ``forward(pixels) -> features`` so torch.onnx can trace a tower that is a method call."""

    def __init__(self, owner: torch.nn.Module, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.owner = owner
        self._fn = fn

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self._fn(pixels)


def torch_tower(module: torch.nn.Module, *, channels_last: bool, bf16: bool) -> TowerFn:
    """Eager torch; channels-last input (and weights) for convolutional towers; bfloat16 autocast."""
    layout = torch.channels_last if channels_last else torch.contiguous_format

    def run(pixels: np.ndarray) -> np.ndarray:
        _set_layout(module, layout)  # candidates share one module: each brings its weights' layout back
        batch = torch.from_numpy(pixels)
        if channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = module(batch)
        return np.ascontiguousarray(out.float().numpy(), dtype=np.float32)

    return run


def _set_layout(module: torch.nn.Module, layout: torch.memory_format) -> None:
    if getattr(module, "_ordo_layout", None) != layout:
        # Module.to accepts memory_format (torch documents it) but its stubs omit the keyword.
        module.to(memory_format=layout)  # pyright: ignore[reportCallIssue]
        module.__dict__["_ordo_layout"] = layout  # a plain attribute (Module.__setattr__ is typed for tensors)


def _digest(module: torch.nn.Module) -> str:
    """A cheap fingerprint of the weights (per tensor: shape, sum, absolute sum), for the ONNX file's name."""
    h = hashlib.sha256(torch.__version__.encode())
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
                continue  # int8 packed params of a quantised text tower, dtypes, counters
            t = tensor.detach().contiguous().double()  # layout-independent: channels-last changes summation order
            h.update(f"{name}{tuple(t.shape)}{float(t.sum()):.6e}{float(t.abs().sum()):.6e}".encode())
    return h.hexdigest()[:20]


def onnx_path(name: str, module: torch.nn.Module, cache_file: str = "") -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:60]
    return cache_path(cache_file).parent / "onnx" / f"{safe}-{_digest(module)}.onnx"


def export_onnx(module: torch.nn.Module, sample: np.ndarray, path: Path) -> Path:
    """Export once (dynamic batch); later loads reuse the file."""
    if path.is_file():
        return path
    import onnx  # noqa: F401  (the exporter needs it; a clear ImportError otherwise)

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(),
            (torch.from_numpy(sample),),
            str(tmp),
            input_names=["pixels"],
            output_names=["features"],
            dynamic_axes={"pixels": {0: "n"}, "features": {0: "n"}},
            dynamo=False,
            opset_version=17,
        )
    os.replace(tmp, path)
    return path


def open_session(path: Path, threads: int) -> Any:
    """An ONNX Runtime session for one exported tower (image or text), on the CPU.

    Idle pool threads sleep instead of spinning: a spinning pool steals the cores it shares with the decoders,
    the gRPC threads and other Ordo processes (the collapse issue 18 measured with torch's OpenMP pool). A
    truncated or corrupt export is removed, so the next load exports it again."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception:
        path.unlink(missing_ok=True)
        raise


def onnx_tower(path: Path, threads: int) -> TowerFn:
    session = open_session(path, threads)

    def run(pixels: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(session.run(None, {"pixels": pixels})[0], dtype=np.float32)

    return run


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return float((a * b).sum(axis=1).min())


def probe_pixels(size: int, n: int = 4) -> np.ndarray:
    """Smooth images with texture, in a normalised input range: closer to photos than white noise."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    out = np.empty((n, 3, size, size), dtype=np.float32)
    for i in range(n):
        for c in range(3):
            phase = rng.uniform(0, 6.28)
            out[i, c] = np.sin(6 * x * (c + 1) + phase) * np.cos(4 * y * (i + 1)) * 0.8
    out += rng.standard_normal(out.shape, dtype=np.float32) * 0.1
    return out


class TowerRuntimes:
    """Builds the tower function of a :class:`TowerConfig`, checking agreement with float32 torch."""

    def __init__(
        self, name: str, module: torch.nn.Module, input_size: int, *, conv: bool, cache_file: str = ""
    ) -> None:
        self.name = name
        self.cache_file = cache_file
        self.module = module.eval()
        self.input_size = input_size
        self.conv = conv  # channels-last matters only for convolutional towers
        self._probe = probe_pixels(input_size)
        self._reference: np.ndarray | None = None  # float32 torch on the probes, computed when first needed
        self.agreement: dict[str, float] = {}

    def reference(self) -> np.ndarray:
        if self._reference is None:
            self._reference = torch_tower(self.module, channels_last=False, bf16=False)(self._probe)
        return self._reference

    def build(self, config: TowerConfig, *, enforce: bool = True) -> TowerFn:
        """The tower for ``config``; raises ValueError when it disagrees with the reference (``enforce``)."""
        if config.runtime == "onnxruntime":
            path = export_onnx(self.module, self._probe[:1], onnx_path(self.name, self.module, self.cache_file))
            fn = onnx_tower(path, config.threads)
        else:
            fn = torch_tower(self.module, channels_last=self.conv and config.channels_last, bf16=config.bf16)
            if not config.bf16:
                return fn  # float32 torch is the reference (memory format changes rounding only, ~1e-6)
        agreement = min_cosine(fn(self._probe), self.reference())
        self.agreement[config.label()] = agreement
        if agreement < MIN_AGREEMENT and enforce:
            raise ValueError(f"cosine to float32 torch {agreement:.5f} < {MIN_AGREEMENT}")
        return fn

    def prepare(self, config: TowerConfig) -> Callable[[int], None]:
        """For the tuner: a function that runs one batch of ``n`` probe images on each of the config's
        streams at once (one batch when it has a single stream)."""
        if config.streams > 1 and config.runtime != "onnxruntime":
            raise ValueError("streams need ONNX Runtime (torch's passes share one OpenMP pool)")
        fn = self.build(config)
        probe = self._probe

        def run(n: int) -> None:
            fn(np.ascontiguousarray(np.resize(probe, (n, *probe.shape[1:]))))

        if config.streams == 1:
            return run
        pool = ThreadPoolExecutor(config.streams, thread_name_prefix="ordo-tune-stream")

        def run_streams(n: int) -> None:
            for done in [pool.submit(run, n) for _ in range(config.streams)]:
                done.result()

        return run_streams


def describe(config: TowerConfig, agreement: dict[str, Any]) -> str:
    cos = agreement.get(config.label())
    return config.label() + (f" (cosine to fp32 {cos:.5f})" if cos is not None else "")
