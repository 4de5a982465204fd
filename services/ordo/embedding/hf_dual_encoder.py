"""Embedder for Hugging Face ``transformers`` dual encoders: CLIP, SigLIP, MetaCLIP, AltCLIP and kin.

Any checkpoint whose model class has ``get_image_features`` / ``get_text_features`` and whose repository
holds an image processor and a tokenizer works. Finding and loading the weights is
:mod:`ordo.embedding.hf_loading`; reading the model's limits and outputs is :mod:`ordo.embedding.hf_features`;
the lazy, locked, on-the-lane loading is :class:`ordo.embedding.lane_embedder.LaneEmbedder`'s.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ordo.embedding.cpu_budget import process_budget
from ordo.embedding.dual_text_runtime import OnnxInt8TextTower, onnx_int8_text
from ordo.embedding.fast_preprocess import GeometryPlan
from ordo.embedding.hf_features import (
    FALLBACK_MAX_LENGTH,
    check_dual_encoder,
    checked_plan,
    explicit_parameters,
    features_tensor,
    normalised,
    text_limits,
)
from ordo.embedding.hf_loading import load_pretrained, model_id_for_directory
from ordo.embedding.lane_embedder import LaneEmbedder
from ordo.embedding.tuned_tower import RuntimeOptions, lane_job_images
from ordo.errors import ModelUnavailable

logger = logging.getLogger(__name__)

DEFAULT_INPUT_SIZE = 224
_MIN_QUANTIZED_AGREEMENT = 0.995


def resolve_device(device: str) -> str:
    """Map ``"auto"`` to ``"cuda"`` when a GPU is usable, else ``"cpu"``; pass explicit devices through."""
    device = device.strip().lower()
    if device in ("", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


class HFDualEncoder(LaneEmbedder):
    """An :class:`ordo.embedding.base.Embedder` over a ``transformers`` image–text dual encoder.

    Concurrency: ``load()`` is guarded by a lock; inference runs without one (a module in ``eval()`` under
    ``torch.inference_mode`` keeps no per-call state), except the tokenizer call, which is serialised: a fast
    tokenizer mutates its Rust-side padding/truncation state whenever a call's settings differ from the last
    one, and concurrent calls then fail with "Already borrowed" (huggingface/tokenizers#537). With our
    uniform settings 8 threads x 3,000 calls did not trigger it on tokenizers 0.23; the lock costs
    microseconds and keeps it that way if anyone shares the tokenizer.
    """

    def __init__(
        self,
        model_name: str,
        *,
        device: str = "auto",
        batch_size: int = 16,
        half_on_gpu: bool = True,
        cache_dir: str | None = None,
        local_files_only: bool | None = None,
        torch_threads: int | None = None,
        model_id: str | None = None,
        quantize_text_on_cpu: bool = True,
        runtime_options: RuntimeOptions | None = None,
    ) -> None:
        """Configure only; nothing heavy happens until :meth:`load`.

        ``local_files_only``: ``None`` (default) tries the local cache first and the Hub only if that fails;
        ``True`` never touches the network; ``False`` always consults the Hub (picks up new revisions).
        ``torch_threads``: an explicit intra-op thread count (otherwise the process's CPU budget, measured).
        ``model_id`` overrides the derived id (for families that build their model in-process).
        ``quantize_text_on_cpu``: on a CPU, run the text tower with int8 dynamic quantisation, in ONNX Runtime
        where it agrees with fp32, else in torch (see :meth:`_quantize_text`).
        ``runtime_options``: on a CPU the vision tower's batch size, threads, dtype and runtime are measured at
        load time (see :mod:`ordo.embedding.tuned_tower`); default: from the environment.
        """
        name = model_name.strip()
        if not name:
            raise ModelUnavailable("No model configured: set ORDO_MODEL to a Hugging Face model id or a directory.")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if torch_threads is not None and torch_threads < 1:
            raise ValueError(f"torch_threads must be >= 1, got {torch_threads}")
        options = runtime_options or RuntimeOptions.from_env()
        local_dir = Path(name).expanduser()
        if model_id is None:
            model_id = model_id_for_directory(local_dir) if local_dir.is_dir() else name
        super().__init__(
            model_id=model_id,
            device=resolve_device(device),
            batch_size=batch_size,
            input_size=DEFAULT_INPUT_SIZE,
            runtime_options=options if torch_threads is None else replace(options, threads=torch_threads),
        )
        self.model_name = name
        self.half_on_gpu = half_on_gpu
        self.cache_dir = cache_dir
        self.local_files_only = local_files_only
        self.torch_threads = torch_threads
        self.quantize_text_on_cpu = quantize_text_on_cpu
        self.text_quantized = False
        self.text_runtime = "torch"  # "onnxruntime-int8" when the text tower runs there (see _quantize_text)
        self._onnx_text: OnnxInt8TextTower | None = None
        self.dtype = torch.float16 if self.device.startswith("cuda") and half_on_gpu else torch.float32

        self._tokenizer_lock = threading.Lock()
        self._model: Any = None
        self._image_processor: Any = None
        # Preprocessing split into decoder-thread geometry and on-device arithmetic (None: the processor).
        self._plan: GeometryPlan | None = None
        self._tokenizer: Any = None
        self._max_length = FALLBACK_MAX_LENGTH
        self._padding: bool | str = True
        self._text_inputs: frozenset[str] = frozenset()
        self._image_inputs: frozenset[str] = frozenset()

    # ---------------------------------------------------------------- loading

    def _load_on_lane(self) -> None:
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ModelUnavailable(
                f"Model {self.model_id!r} was configured for device {self.device!r}, but CUDA is not "
                "available in this process. Set the device to 'auto' or 'cpu'."
            )
        model, image_processor, tokenizer = self._load_components()
        self._prepare(model, image_processor, tokenizer)

    def _log_loaded(self, seconds: float) -> None:
        logger.info(
            "Loaded embedding model %s on %s (%s, dim %d, max text tokens %d) in %.1f s",
            self.model_id,
            self.device,
            str(self.dtype).removeprefix("torch."),
            self.dim,
            self._max_length,
            seconds,
        )

    def _load_components(self) -> tuple[Any, Any, Any]:
        """Return ``(model, image_processor, tokenizer)``. Subclasses that build a model in-process (the
        ``random-clip`` family) override only this; everything after it is shared."""
        return load_pretrained(
            self.model_name, cache_dir=self.cache_dir, local_files_only=self.local_files_only, dtype=self.dtype
        )

    def _prepare(self, model: Any, image_processor: Any, tokenizer: Any) -> None:
        """Move to device/dtype, derive text limits and input names, then probe both towers once.

        The probe gives ``dim`` for every architecture (SigLIP has no ``projection_dim``) and turns a
        checkpoint that is not a dual encoder, or whose towers disagree, into a load-time error rather than
        a failure on the first user request.
        """
        check_dual_encoder(model, tokenizer, self.model_id)
        model.eval()
        model.to(device=self.device, dtype=self.dtype)
        if tokenizer.pad_token is None and tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token
        self._max_length, self._padding = text_limits(model.config, tokenizer)
        self._text_inputs = explicit_parameters(model.get_text_features)
        self._image_inputs = explicit_parameters(model.get_image_features)
        self._image_processor = image_processor
        self._tokenizer = tokenizer
        text_dim = self._run_text(model, ["a photo"]).shape[1]
        image_dim = self._run_images(model, [Image.new("RGB", (64, 64), (128, 128, 128))]).shape[1]
        if text_dim != image_dim:
            raise ModelUnavailable(
                f"Model {self.model_id!r} embeds images into {image_dim} and texts into {text_dim} "
                "dimensions; it is not a dual encoder with one shared space."
            )
        self.dim = int(text_dim)
        if self.quantize_text_on_cpu and self.device == "cpu":
            self._quantize_text(model)
        vision_config = getattr(model.config, "vision_config", None) or model.config
        self.input_size = int(getattr(vision_config, "image_size", 0) or DEFAULT_INPUT_SIZE)
        self._plan = checked_plan(image_processor, self._image_inputs, self.model_id)
        if self.device == "cpu" and self._plan is not None:
            tower = self._tune(
                model,
                lambda pixels: features_tensor(model.get_image_features(pixel_values=pixels)),
                conv=False,
                default_batch=self.batch_size,
                text_probe=lambda: self._texts_on(model, ["a dog running on the beach"]),
                text_in_torch=self._onnx_text is None,
            )
            # one tower call a lane job; with streams a smaller one (lane_job_images: text queries wait no longer)
            self.batch_size = lane_job_images(1, tower.config)
        self._model = model

    def _quantize_text(self, model: Any) -> None:
        """int8 text queries on a CPU: in ONNX Runtime where it agrees with fp32 to cosine >= 0.999
        (:mod:`ordo.embedding.dual_text_runtime`), else eager torch int8 (:meth:`_quantize_text_tower`).
        ``ORDO_MODEL_RUNTIME=torch`` keeps the text tower in torch too."""
        if self.runtime_options.runtime != "torch" and {"input_ids", "attention_mask"} <= self._text_inputs:
            threads = process_budget(model_threads=self.runtime_options.threads).model_threads
            self._onnx_text = onnx_int8_text(
                model,
                self._tokenize_np,
                lambda texts: self._run_text(model, texts),
                self.model_id,
                threads,
                self.runtime_options.cache_file,
            )
            if self._onnx_text is not None:
                self.text_quantized = True
                self.text_runtime = "onnxruntime-int8"
                return
        self._quantize_text_tower(model)

    def _quantize_text_tower(self, model: Any) -> None:
        """Swap the text tower for an int8 dynamically quantised copy, if it agrees with the original.

        A text query on a CPU is memory-bound: one query of ~10 tokens reads every weight of the tower
        once (about 150 MB in fp32 for CLIP ViT-B/32's), which alone cost ~20 ms here. int8 weights read
        4x less and use fbgemm's int8 kernels: ~7 ms, with query vectors at cosine ~0.999 to fp32. Image
        vectors are untouched (the vision tower stays fp32). Skipped, with a log line, when the model has
        no ``text_model`` or the quantised tower disagrees (min cosine on probe texts < 0.995).
        """
        tower = getattr(model, "text_model", None)
        if not isinstance(tower, torch.nn.Module):
            return
        probes = ["a photo of a dog", "two people riding bicycles down a city street at night", "receipt"]
        reference = self._run_text(model, probes)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch marks the eager quantisation API as deprecated
                quantized = torch.ao.quantization.quantize_dynamic(tower, {torch.nn.Linear}, dtype=torch.qint8)
        except (RuntimeError, AssertionError, AttributeError) as exc:  # no int8 engine on this CPU, etc.
            logger.info("text tower of %s not quantised: %s", self.model_id, exc)
            return
        model.text_model = quantized
        agreement = float((self._run_text(model, probes) * reference).sum(axis=1).min())
        if agreement < _MIN_QUANTIZED_AGREEMENT:
            model.text_model = tower
            logger.warning("int8 text tower of %s disagrees (cosine %.4f): keeping fp32", self.model_id, agreement)
            return
        self.text_quantized = True
        logger.info("text tower of %s runs in int8 on the CPU (cosine to fp32 >= %.4f)", self.model_id, agreement)

    # ------------------------------------------------------------ preprocessing

    def prepare_image(self, image: Image.Image) -> np.ndarray:
        """Everything about an image that can run off the inference thread: call it from decoder threads
        (thread-safe), then hand the results to :meth:`embed_prepared`. ``embed_images`` is exactly
        ``embed_prepared([prepare_image(i) for i in images])``, so both paths give the same vectors."""
        self.load()
        if self._plan is not None:
            return self._plan.pixels(image)
        return np.asarray(self._image_processor(images=[image], return_tensors="np")["pixel_values"][0])

    # -------------------------------------------------------------- inference

    def _run_prepared(self, batch: list[np.ndarray]) -> np.ndarray:
        if self._plan is not None and self.tower is not None:
            pixels = self._plan.to_model_input(batch, "cpu", torch.float32)
            return normalised(torch.from_numpy(self.tower(pixels.numpy())))
        if self._plan is not None:
            pixels = self._plan.to_model_input(batch, self.device, self.dtype)
        else:
            pixels = torch.from_numpy(np.stack(batch)).to(self.device, dtype=self.dtype)
        with torch.inference_mode():
            output = self._model.get_image_features(pixel_values=pixels)
        return normalised(output)

    def _run_texts(self, texts: list[str]) -> np.ndarray:
        return self._texts_on(self._model, texts)

    def _texts_on(self, model: Any, texts: list[str]) -> np.ndarray:
        # int8 dynamic quantisation scales activations per call, so batch mates (and their padding) would
        # nudge a text's vector: the quantised tower embeds one text per call, which keeps every text's
        # vector the same however it is batched (~6 ms a text, as fast as fp32 batches on this CPU).
        if self._onnx_text is not None:
            return self._onnx_text.features(texts)  # one text a call, for the same reason
        step = 1 if self.text_quantized else self.batch_size
        parts = [self._run_text(model, texts[start : start + step]) for start in range(0, len(texts), step)]
        return np.concatenate(parts, axis=0)

    def _run_images(self, model: Any, images: list[Image.Image]) -> np.ndarray:
        encoded = self._image_processor(images=images, return_tensors="pt")
        inputs = self._to_model(encoded, self._image_inputs)
        with torch.inference_mode():
            output = model.get_image_features(**inputs)
        return normalised(output)

    def _tokenize(self, texts: list[str], tensors: str) -> Any:
        with self._tokenizer_lock:
            return self._tokenizer(
                texts, padding=self._padding, truncation=True, max_length=self._max_length, return_tensors=tensors
            )

    def _tokenize_np(self, texts: list[str]) -> dict[str, Any]:
        return dict(self._tokenize(texts, "np"))

    def _run_text(self, model: Any, texts: list[str]) -> np.ndarray:
        encoded = self._tokenize(texts, "pt")
        inputs = self._to_model(encoded, self._text_inputs)
        with torch.inference_mode():
            output = model.get_text_features(**inputs)
        return normalised(output)

    def _to_model(self, encoded: Mapping[str, Any], accepted: frozenset[str]) -> dict[str, Any]:
        """Keep the inputs the model declares, on its device; floating tensors (pixels) in its dtype."""
        inputs: dict[str, Any] = {}
        for key, value in encoded.items():
            if key not in accepted:
                continue
            if isinstance(value, torch.Tensor):
                value = value.to(self.device, dtype=self.dtype) if value.is_floating_point() else value.to(self.device)
            inputs[key] = value
        return inputs
