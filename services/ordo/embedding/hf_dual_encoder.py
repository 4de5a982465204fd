"""Embedder for Hugging Face ``transformers`` dual encoders: CLIP, SigLIP, MetaCLIP, AltCLIP and kin.

Any checkpoint whose model class has ``get_image_features`` / ``get_text_features`` and whose repository
holds an image processor and a tokenizer works. We load those three parts with ``AutoModel``,
``AutoImageProcessor`` and ``AutoTokenizer`` rather than ``AutoProcessor``, because many third-party dual
encoder repositories ship the two preprocessors without a ``processor_config.json`` binding them.

Loading is lazy (explicit ``load()`` or the first embed call), idempotent and thread-safe, and it fails fast
and once: when the weights cannot be had we raise a single :class:`ordo.errors.ModelUnavailable` that says
what to do, instead of letting ``huggingface_hub`` retry an unreachable Hub for ~25 s.
"""

from __future__ import annotations

import inspect
import logging
import re
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ordo.embedding.base import checked_images, checked_texts
from ordo.embedding.fast_preprocess import GeometryPlan
from ordo.embedding.inference_lane import IMAGE_PRIORITY, TEXT_PRIORITY, InferenceLane
from ordo.embedding.tuned_tower import RuntimeOptions, TunedTower, tune_tower
from ordo.errors import ModelUnavailable

logger = logging.getLogger(__name__)

# Text towers that pool a fixed position (SigLIP takes the *last* token) were trained on texts padded to
# ``max_length``; dynamic padding would move the pooled position and silently change the embeddings.
_PAD_TO_MAX_LENGTH_MODEL_TYPES = frozenset({"siglip", "siglip2"})
# Used when neither the text config nor the tokenizer states a usable context length (CLIP's is 77).
_FALLBACK_MAX_LENGTH = 77
# A tokenizer's ``model_max_length`` above this is transformers' "unknown" sentinel (int(1e30)), not a limit.
_SANE_TOKENIZER_MAX_LENGTH = 100_000
# Fewer entries than this means the tokenizer files were missing (see _prepare); real ones have 30k+.
_MIN_VOCABULARY = 100
# One HEAD request decides whether going online is worth it; never longer than this.
_HUB_PROBE_TIMEOUT_S = 3.0
# ``hf download org/name`` keeps snapshots at .../models--org--name/snapshots/<revision>.
_HF_CACHE_SNAPSHOT = re.compile(r"models--(?P<org>[^/\\]+?)--(?P<name>[^/\\]+)[/\\]snapshots[/\\][^/\\]+$")
_GUIDANCE_TAIL = (
    "Download it once on a connected machine (`hf download {name}`) and copy the cache (HF_HOME), "
    "or point ORDO_MODEL at a local directory holding the model. (Ordo's bundled offline model arrives "
    "separately.)"
)


DEFAULT_INPUT_SIZE = 224
# How far the split preprocessing may differ from the model's processor, in normalised pixel units: exact
# against transformers' PIL backend; resize antialiasing (~2-3 of 255 levels) against its torchvision one.
_PLAN_MAX_ERROR_PIL = 1e-4
_PLAN_MAX_ERROR_OTHER_BACKEND = 0.1
_MIN_QUANTIZED_AGREEMENT = 0.995


def resolve_device(device: str) -> str:
    """Map ``"auto"`` to ``"cuda"`` when a GPU is usable, else ``"cpu"``; pass explicit devices through."""
    device = device.strip().lower()
    if device in ("", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _looks_like_path(name: str) -> bool:
    """A name the user meant as a directory: absolute, explicitly relative, home-relative or Windows-style.

    ``org/name`` is *not* a path (it is a Hub id), even though it contains a slash.
    """
    return (
        name.startswith(("/", "./", "../", "~", ".\\", "..\\"))
        or "\\" in name
        or bool(re.match(r"^[A-Za-z]:[/\\]", name))
    )


def _hub_reachable(timeout_s: float = _HUB_PROBE_TIMEOUT_S) -> bool:
    """One HEAD request to the configured Hub endpoint, without ``huggingface_hub``'s retry loop.

    Uses the Hub library's own HTTP session so ``HF_ENDPOINT`` and proxy settings are honoured. Any HTTP
    answer (even an error status) means the network path works; only a transport failure means offline.
    """
    try:
        from huggingface_hub import constants
        from huggingface_hub.utils import get_session

        get_session().head(constants.ENDPOINT, timeout=timeout_s)
    except Exception as exc:  # any transport or library error means "do not try online"
        logger.debug("Hugging Face Hub not reachable: %r", exc)
        return False
    return True


def _hub_offline_forced() -> bool:
    """True when the environment forbids Hub access (``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE``)."""
    try:
        from huggingface_hub import constants

        return bool(constants.is_offline_mode())
    except Exception:
        return False


def _hf_cache_location(cache_dir: str | None) -> str:
    if cache_dir:
        return cache_dir
    try:
        from huggingface_hub import constants

        return str(constants.HF_HUB_CACHE)
    except Exception:
        return "the Hugging Face cache"


def _model_id_for_directory(path: Path) -> str:
    """A stable, human-readable id for a model loaded from a directory.

    A snapshot inside a Hugging Face cache maps back to its repository id (``org/name``), so copying a
    cache and pointing ORDO_MODEL at the snapshot gives the same id as loading by name. Any other directory
    is named by its basename. We deliberately ignore ``_name_or_path`` in ``config.json``: fine-tunes saved
    from ``openai/clip-...`` carry the *base* model's name there, and sharing an id with the base model would
    mix incompatible vectors in one index.
    """
    resolved = path.expanduser().resolve()
    match = _HF_CACHE_SNAPSHOT.search(str(resolved))
    if match:
        return f"{match['org']}/{match['name']}"
    return resolved.name or str(resolved)


def _features_tensor(output: Any) -> torch.Tensor:
    """``get_*_features`` return a tensor in transformers < 5 and a ``BaseModelOutputWithPooling`` whose
    ``pooler_output`` is the *projected* embedding in 5.x; accept both (and ``image_embeds`` /
    ``text_embeds`` style outputs some remote-code models use)."""
    if isinstance(output, torch.Tensor):
        return output
    for attribute in ("pooler_output", "image_embeds", "text_embeds", "embeds"):
        value = getattr(output, attribute, None)
        if isinstance(value, torch.Tensor):
            return value
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise TypeError(f"Unexpected output type from get_*_features: {type(output).__name__}")


def _explicit_parameters(method: Any) -> frozenset[str]:
    """Named parameters of ``method``: we pass preprocessor outputs only under names the model declares, so
    e.g. a BERT-style ``token_type_ids`` never reaches a model that would choke on it via ``**kwargs``."""
    try:
        parameters = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):
        return frozenset({"input_ids", "attention_mask", "pixel_values"})
    return frozenset(
        p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"
    )


class HFDualEncoder:
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
        ``quantize_text_on_cpu``: on a CPU, run the text tower with int8 dynamic quantisation (see
        :meth:`_quantize_text_tower`).
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
        self.model_name = name
        self.batch_size = batch_size
        self.device = resolve_device(device)
        self.half_on_gpu = half_on_gpu
        self.cache_dir = cache_dir
        self.local_files_only = local_files_only
        self.torch_threads = torch_threads
        self.quantize_text_on_cpu = quantize_text_on_cpu
        self.text_quantized = False
        options = runtime_options or RuntimeOptions.from_env()
        self.runtime_options = options if torch_threads is None else replace(options, threads=torch_threads)
        self.tower: TunedTower | None = None  # the vision tower's tuned CPU runtime, set by load()
        local_dir = Path(name).expanduser()
        if model_id is not None:
            self.model_id = model_id
        elif local_dir.is_dir():
            self.model_id = _model_id_for_directory(local_dir)
        else:
            self.model_id = name
        self.dtype = torch.float16 if self.device.startswith("cuda") and half_on_gpu else torch.float32

        self._load_lock = threading.Lock()
        self._tokenizer_lock = threading.Lock()
        self._lane = InferenceLane(f"ordo-infer-{self.model_id}")
        self._model: Any = None  # published last in load(): "not None" means every other field is ready
        self._image_processor: Any = None
        # Preprocessing split into decoder-thread geometry and on-device arithmetic (None: the processor).
        self._plan: GeometryPlan | None = None
        self._tokenizer: Any = None
        # Embedding width; 0 until load(). A plain attribute on purpose, not a lazily loading property:
        # on Python 3.11 ``isinstance(x, Embedder)`` reads every protocol member and would load the model.
        self.dim = 0
        # Side of the model's square input; decoders may downscale JPEGs (DCT draft) to no less than this.
        self.input_size = DEFAULT_INPUT_SIZE
        self._max_length = _FALLBACK_MAX_LENGTH
        self._padding: bool | str = True
        self._text_inputs: frozenset[str] = frozenset()
        self._image_inputs: frozenset[str] = frozenset()

    def __repr__(self) -> str:
        state = "loaded" if self.is_loaded else "not loaded"
        return f"{type(self).__name__}({self.model_id!r}, device={self.device!r}, {state})"

    # ---------------------------------------------------------------- loading

    @property
    def is_loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        """Load weights and preprocessors once; later and concurrent calls return when that is done.

        Raises :class:`ModelUnavailable` (with what to do) when the model cannot be had or is not a usable
        dual encoder. A failed load leaves the instance unloaded, so a later call tries again.
        """
        if self._model is not None:
            return
        if not self._lane.is_current_thread():
            self._lane.submit(TEXT_PRIORITY, self.load).result()  # the probes run torch: on the lane too
            return
        with self._load_lock:
            if self._model is not None:
                return
            started = time.perf_counter()
            if self.device.startswith("cuda") and not torch.cuda.is_available():
                raise ModelUnavailable(
                    f"Model {self.model_id!r} was configured for device {self.device!r}, but CUDA is not "
                    "available in this process. Set the device to 'auto' or 'cpu'."
                )
            model, image_processor, tokenizer = self._load_components()
            self._prepare(model, image_processor, tokenizer)
            logger.info(
                "Loaded embedding model %s on %s (%s, dim %d, max text tokens %d) in %.1f s",
                self.model_id,
                self.device,
                str(self.dtype).removeprefix("torch."),
                self.dim,
                self._max_length,
                time.perf_counter() - started,
            )

    def _load_components(self) -> tuple[Any, Any, Any]:
        """Return ``(model, image_processor, tokenizer)``. Subclasses that build a model in-process (the
        ``random-clip`` family) override only this; everything after it is shared."""
        local_dir = Path(self.model_name).expanduser()
        if local_dir.is_dir():  # checked again here: the directory may have been mounted after __init__
            try:
                return self._from_pretrained(str(local_dir), local_files_only=True)
            except (OSError, ValueError, KeyError) as exc:
                raise ModelUnavailable(
                    f"Could not load model from directory {str(local_dir)!r}: {exc}. The directory "
                    "must hold a transformers dual encoder saved with save_pretrained (config.json, the "
                    "weights, preprocessor_config.json and the tokenizer files)."
                ) from exc
        name = self.model_name
        if _looks_like_path(name):
            raise ModelUnavailable(
                f"Could not load model {name!r}: no such directory. Point ORDO_MODEL at a directory holding "
                "a transformers dual encoder (saved with save_pretrained or `hf download --local-dir`), or "
                "at a Hugging Face model id such as 'openai/clip-vit-base-patch32'."
            )

        cache_error: Exception | None = None
        if self.local_files_only is not False:
            try:
                return self._from_pretrained(name, local_files_only=True)
            except OSError as exc:  # not (completely) in the cache
                cache_error = exc
            except (ValueError, KeyError) as exc:
                raise self._unusable(exc) from exc
            logger.debug("Model %s not in the local cache: %s", name, cache_error)

        cache = _hf_cache_location(self.cache_dir)
        tail = _GUIDANCE_TAIL.format(name=name)
        if self.local_files_only is True or _hub_offline_forced():
            why = "local_files_only=True" if self.local_files_only is True else "HF_HUB_OFFLINE is set"
            raise ModelUnavailable(
                f"Could not load model {name!r}: it is not in the local Hugging Face cache ({cache}) and Hub "
                f"access is disabled ({why}). {tail}"
            ) from cache_error
        if not _hub_reachable():
            raise ModelUnavailable(
                f"Could not load model {name!r}: it is not in the local Hugging Face cache ({cache}) and the "
                f"Hub cannot be reached. {tail}"
            ) from cache_error
        try:
            logger.info("Model %s not in the local cache; downloading it from the Hugging Face Hub", name)
            return self._from_pretrained(name, local_files_only=False)
        except OSError as exc:  # repository not found, gated, network dropped mid-download...
            raise ModelUnavailable(
                f"Could not load model {name!r} from the Hugging Face Hub: {exc}. Check the model id (and "
                f"HF_TOKEN for gated models). {tail}"
            ) from exc
        except (ValueError, KeyError) as exc:
            raise self._unusable(exc) from exc

    def _unusable(self, exc: Exception) -> ModelUnavailable:
        return ModelUnavailable(
            f"Model {self.model_name!r} was found but cannot be loaded as an image–text dual encoder by "
            f"this transformers version: {exc}"
        )

    def _from_pretrained(self, source: str, *, local_files_only: bool) -> tuple[Any, Any, Any]:
        """The three ``Auto*.from_pretrained`` calls, with one set of cache/offline options."""
        from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

        options: dict[str, Any] = {"local_files_only": local_files_only}
        if self.cache_dir is not None:
            options["cache_dir"] = self.cache_dir
        # An explicit dtype: transformers 5 defaults to the checkpoint's dtype, and fp16 weights on a CPU are
        # slow or unsupported.
        model = AutoModel.from_pretrained(source, dtype=self.dtype, **options)
        image_processor = AutoImageProcessor.from_pretrained(source, **options)
        tokenizer = AutoTokenizer.from_pretrained(source, **options)
        return model, image_processor, tokenizer

    def _prepare(self, model: Any, image_processor: Any, tokenizer: Any) -> None:
        """Move to device/dtype, derive text limits and input names, then probe both towers once.

        The probe gives ``dim`` for every architecture (SigLIP has no ``projection_dim``) and turns a
        checkpoint that is not a dual encoder, or whose towers disagree, into a load-time error rather than
        a failure on the first user request.
        """
        if not (hasattr(model, "get_image_features") and hasattr(model, "get_text_features")):
            model_type = getattr(getattr(model, "config", None), "model_type", "?")
            raise ModelUnavailable(
                f"Model {self.model_id!r} (type {model_type!r}) is not an image–text dual encoder: it has "
                "no get_image_features/get_text_features. Use a CLIP- or SigLIP-style model."
            )
        vocabulary = len(tokenizer)
        if vocabulary < _MIN_VOCABULARY:
            # transformers 5 builds an *empty* CLIPTokenizer when a directory lacks the tokenizer files,
            # instead of failing; every text would then embed to the same vector.
            raise ModelUnavailable(
                f"Model {self.model_id!r} has a tokenizer with only {vocabulary} entries: its tokenizer files "
                "(tokenizer.json, or vocab.json + merges.txt) are probably missing. Copy the complete model."
            )
        model.eval()
        model.to(device=self.device, dtype=self.dtype)
        if tokenizer.pad_token is None and tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token

        config = model.config
        text_config = getattr(config, "text_config", None) or config
        limits = [getattr(text_config, "max_position_embeddings", None)]
        tokenizer_limit = getattr(tokenizer, "model_max_length", None)
        if isinstance(tokenizer_limit, int) and tokenizer_limit < _SANE_TOKENIZER_MAX_LENGTH:
            limits.append(tokenizer_limit)
        usable = [int(limit) for limit in limits if isinstance(limit, int) and limit > 0]
        self._max_length = min(usable) if usable else _FALLBACK_MAX_LENGTH
        model_type = getattr(config, "model_type", "")
        self._padding = "max_length" if model_type in _PAD_TO_MAX_LENGTH_MODEL_TYPES else True
        self._text_inputs = _explicit_parameters(model.get_text_features)
        self._image_inputs = _explicit_parameters(model.get_image_features)

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
            self._quantize_text_tower(model)
        vision_config = getattr(config, "vision_config", None) or config
        self.input_size = int(getattr(vision_config, "image_size", 0) or DEFAULT_INPUT_SIZE)
        self._plan = self._checked_plan(image_processor)
        if self.device == "cpu" and self._plan is not None:
            self.tower = tune_tower(
                self.model_id,
                model,
                lambda pixels: _features_tensor(model.get_image_features(pixel_values=pixels)),
                input_size=self.input_size,
                conv=False,
                default_batch=self.batch_size,
                options=self.runtime_options,
            )
            self.batch_size = self.tower.config.batch_size
            self.tower.tune_text(
                lambda: self._run_text(model, ["a dog running on the beach"]), self.runtime_options.autotune
            )
        self._model = model

    def _checked_plan(self, image_processor: Any) -> GeometryPlan | None:
        """The split preprocessing, if this processor's settings are mirrored and it reproduces the
        processor's pixels on probe images of awkward sizes; otherwise None (the processor is used).

        The plan resizes with PIL, exactly as transformers' PIL backend does (max error ~1e-7). Where
        torchvision is installed (GPU images) transformers picks its torchvision backend, whose antialiased
        resize differs by a couple of intensity levels; the plan is still used there, so that a CPU worker
        and a GPU worker give the same vector for the same image."""
        if "pixel_values" not in self._image_inputs:
            return None
        plan = GeometryPlan.from_processor(image_processor)
        if plan is None:
            logger.info("image processor of %s not mirrored: it runs on the inference thread", self.model_id)
            return None
        rng = np.random.default_rng(0)
        sizes = ((64, 64), (301, 203), (97, 460))
        probes = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for h, w in sizes]
        expected = image_processor(images=probes, return_tensors="pt")["pixel_values"].float()
        actual = plan.to_model_input([plan.pixels(p) for p in probes], "cpu", torch.float32)
        error = float((expected - actual).abs().max()) if expected.shape == actual.shape else float("inf")
        pil_backend = "Pil" in type(image_processor).__name__
        limit = _PLAN_MAX_ERROR_PIL if pil_backend else _PLAN_MAX_ERROR_OTHER_BACKEND
        if error > limit:
            logger.warning("split preprocessing of %s differs from its processor (%.2g)", self.model_id, error)
            return None
        if not pil_backend:
            logger.info(
                "%s: PIL geometry instead of %s (max difference %.3f, resize antialiasing)",
                self.model_id,
                type(image_processor).__name__,
                error,
            )
        return plan

    # ------------------------------------------------------------ preprocessing

    def prepare_image(self, image: Image.Image) -> np.ndarray:
        """Everything about an image that can run off the inference thread: call it from decoder threads
        (thread-safe), then hand the results to :meth:`embed_prepared`. ``embed_images`` is exactly
        ``embed_prepared([prepare_image(i) for i in images])``, so both paths give the same vectors."""
        self.load()
        if self._plan is not None:
            return self._plan.pixels(image)
        return np.asarray(self._image_processor(images=[image], return_tensors="np")["pixel_values"][0])

    def embed_prepared(self, prepared: Sequence[np.ndarray]) -> np.ndarray:
        """Embed outputs of :meth:`prepare_image`; float32 (n, dim), unit rows."""
        self.load()
        if not prepared:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._lane.map_batches(IMAGE_PRIORITY, self._run_prepared, list(prepared), self.batch_size)

    def _run_prepared(self, batch: list[np.ndarray]) -> np.ndarray:
        if self._plan is not None and self.tower is not None:
            pixels = self._plan.to_model_input(batch, "cpu", torch.float32)
            return self._normalised(torch.from_numpy(self.tower(pixels.numpy())))
        if self._plan is not None:
            pixels = self._plan.to_model_input(batch, self.device, self.dtype)
        else:
            pixels = torch.from_numpy(np.stack(batch)).to(self.device, dtype=self.dtype)
        with torch.inference_mode():
            output = self._model.get_image_features(pixel_values=pixels)
        return self._normalised(output)

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

    # -------------------------------------------------------------- inference

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Embed RGB PIL images of any size (other modes are converted); float32 (n, dim), unit rows."""
        self.load()
        return self.embed_prepared([self.prepare_image(image) for image in checked_images(images)])

    def submit_text_work(self, work: Callable[[], None]) -> None:
        """Run ``work`` on this model's inference lane at text priority (the search service's query
        batcher drains there, so passes follow each other without a thread hand-off)."""
        self._lane.submit(TEXT_PRIORITY, work)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Embed text queries; float32 (n, dim), unit rows. Texts longer than the model's context
        (77 tokens for CLIP) are truncated; an empty or whitespace-only text is an :class:`InvalidInput`."""
        self.load()
        checked = checked_texts(texts)
        if not checked:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._lane.submit(TEXT_PRIORITY, self._embed_text_batches, checked).result()

    def _embed_text_batches(self, texts: list[str]) -> np.ndarray:
        if self.tower is not None:
            self.tower.before_text()
        # int8 dynamic quantisation scales activations per call, so batch mates (and their padding) would
        # nudge a text's vector: the quantised tower embeds one text per call, which keeps every text's
        # vector the same however it is batched (~6 ms a text, as fast as fp32 batches on this CPU).
        step = 1 if self.text_quantized else self.batch_size
        parts = [self._run_text(self._model, texts[start : start + step]) for start in range(0, len(texts), step)]
        return np.concatenate(parts, axis=0)

    def _run_images(self, model: Any, images: list[Image.Image]) -> np.ndarray:
        encoded = self._image_processor(images=images, return_tensors="pt")
        inputs = self._to_model(encoded, self._image_inputs)
        with torch.inference_mode():
            output = model.get_image_features(**inputs)
        return self._normalised(output)

    def _run_text(self, model: Any, texts: list[str]) -> np.ndarray:
        with self._tokenizer_lock:
            encoded = self._tokenizer(
                texts,
                padding=self._padding,
                truncation=True,
                max_length=self._max_length,
                return_tensors="pt",
            )
        inputs = self._to_model(encoded, self._text_inputs)
        with torch.inference_mode():
            output = model.get_text_features(**inputs)
        return self._normalised(output)

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

    @staticmethod
    def _normalised(output: Any) -> np.ndarray:
        """L2-normalise in float32 (fp16 norms lose precision) and hand back a C-contiguous numpy array."""
        features = _features_tensor(output).float()
        features = torch.nn.functional.normalize(features, p=2.0, dim=-1, eps=1e-12)
        return np.ascontiguousarray(features.cpu().numpy(), dtype=np.float32)
