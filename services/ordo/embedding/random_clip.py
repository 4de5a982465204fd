"""The ``random-clip:<preset>`` family: a randomly initialised CLIP with a real architecture, built in memory.

Benchmarks and plumbing demos run with it where no weights can be downloaded; its vectors are meaningless.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from ordo.embedding.hf_dual_encoder import HFDualEncoder
from ordo.embedding.offline_tokenizer import BOS_ID, EOS_ID, PAD_ID, build_offline_tokenizer
from ordo.errors import ModelUnavailable

logger = logging.getLogger(__name__)

RANDOM_CLIP_PREFIX = "random-clip:"
RANDOM_CLIP_SEED = 0
# OpenAI CLIP's image preprocessing constants (same as transformers' OPENAI_CLIP_MEAN / _STD).
_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
_BICUBIC = 3  # PIL.Image.Resampling.BICUBIC, as CLIP's preprocessor_config.json stores it

# Architectures, not weights. ``vit-b-32`` is exactly openai/clip-vit-base-patch32's, so its compute (and
# therefore its throughput and memory) are those of real CLIP ViT-B/32.
_RANDOM_CLIP_PRESETS: dict[str, dict[str, Any]] = {
    "vit-b-32": {
        "text": {
            "vocab_size": 49408,
            "hidden_size": 512,
            "intermediate_size": 2048,
            "num_hidden_layers": 12,
            "num_attention_heads": 8,
            "max_position_embeddings": 77,
            "hidden_act": "quick_gelu",
        },
        "vision": {
            "hidden_size": 768,
            "intermediate_size": 3072,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "image_size": 224,
            "patch_size": 32,
            "hidden_act": "quick_gelu",
        },
        "projection_dim": 512,
    },
    "tiny": {
        "text": {
            "vocab_size": 1024,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 77,
        },
        "vision": {
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        "projection_dim": 16,
    },
}


def random_clip_presets() -> tuple[str, ...]:
    return tuple(_RANDOM_CLIP_PRESETS)


def random_clip_config(preset: str) -> Any:
    """The ``CLIPConfig`` of a ``random-clip`` preset, with token ids matching the offline tokenizer."""
    from transformers import CLIPConfig

    spec = _RANDOM_CLIP_PRESETS.get(preset)
    if spec is None:
        raise ModelUnavailable(
            f"Unknown random-clip preset {preset!r}; choose one of: {', '.join(random_clip_presets())} "
            f"(e.g. '{RANDOM_CLIP_PREFIX}vit-b-32')."
        )
    text = {**spec["text"], "pad_token_id": PAD_ID, "bos_token_id": BOS_ID, "eos_token_id": EOS_ID}
    return CLIPConfig(text_config=text, vision_config=dict(spec["vision"]), projection_dim=spec["projection_dim"])


def clip_image_processor(image_size: int = 224) -> Any:
    """OpenAI CLIP's preprocessing (shortest edge → ``image_size``, centre crop, bicubic, CLIP mean/std).

    Uses the PIL backend when torchvision is absent: transformers would fall back to it anyway, but with a
    warning on every construction.
    """
    from transformers.utils.import_utils import is_torchvision_available

    if is_torchvision_available():
        from transformers import CLIPImageProcessor as processor_class
    else:
        from transformers import CLIPImageProcessorPil as processor_class
    return processor_class(
        do_resize=True,
        size={"shortest_edge": image_size},
        resample=_BICUBIC,
        do_center_crop=True,
        crop_size={"height": image_size, "width": image_size},
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=list(_CLIP_MEAN),
        image_std=list(_CLIP_STD),
        do_convert_rgb=True,
    )


class RandomClipEmbedder(HFDualEncoder):
    """A randomly initialised CLIP of a real architecture, built in memory (no download, no disk).

    Only :meth:`_load_components` differs from :class:`HFDualEncoder`; preprocessing, batching, inference and
    normalisation are the production code paths, which is the point: benchmarks measure what production runs.
    The weights are seeded, so vectors are reproducible across runs of one torch version -- and meaningless.
    """

    def __init__(
        self,
        model_name: str,
        *,
        device: str = "auto",
        batch_size: int = 16,
        cache_dir: str | None = None,
        half_on_gpu: bool = True,
        torch_threads: int | None = None,
        seed: int = RANDOM_CLIP_SEED,
        quantize_text_on_cpu: bool = True,
        runtime_options: Any = None,
    ) -> None:
        preset = model_name.removeprefix(RANDOM_CLIP_PREFIX)
        self.config = random_clip_config(preset)  # unknown presets fail here, before any load
        self.preset = preset
        self.seed = seed
        del cache_dir  # nothing is downloaded or cached
        super().__init__(
            model_name,
            device=device,
            batch_size=batch_size,
            half_on_gpu=half_on_gpu,
            local_files_only=True,
            torch_threads=torch_threads,
            model_id=f"{RANDOM_CLIP_PREFIX}{preset}",
            quantize_text_on_cpu=quantize_text_on_cpu,
            runtime_options=runtime_options,
        )

    def _load_components(self) -> tuple[Any, Any, Any]:
        from transformers import CLIPModel

        logger.warning(
            "Embedding model %s has RANDOM weights: its vectors are meaningless, so search results will be "
            "noise. Use it only for benchmarks and plumbing demos; set ORDO_MODEL to a real model otherwise.",
            self.model_id,
        )
        # fork_rng: reproducible weights without resetting the caller's global RNG.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            model = CLIPModel(self.config)
        tokenizer = build_offline_tokenizer(model_max_length=self.config.text_config.max_position_embeddings)
        return model, clip_image_processor(self.config.vision_config.image_size), tokenizer
