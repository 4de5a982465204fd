"""What a transformers dual encoder tells us about itself, read once at load: whether it is a dual encoder
at all, its text context length and padding, the inputs its towers accept, and whether the split image
preprocessing reproduces its processor; plus turning its outputs into unit float32 rows."""

from __future__ import annotations

import inspect
import logging
from typing import Any

import numpy as np
import torch
from PIL import Image

from ordo.embedding.fast_preprocess import GeometryPlan
from ordo.errors import ModelUnavailable

logger = logging.getLogger(__name__)

# Text towers that pool a fixed position (SigLIP takes the *last* token) were trained on texts padded to
# ``max_length``; dynamic padding would move the pooled position and silently change the embeddings.
_PAD_TO_MAX_LENGTH_MODEL_TYPES = frozenset({"siglip", "siglip2"})
# Used when neither the text config nor the tokenizer states a usable context length (CLIP's is 77).
FALLBACK_MAX_LENGTH = 77
# A tokenizer's ``model_max_length`` above this is transformers' "unknown" sentinel (int(1e30)), not a limit.
_SANE_TOKENIZER_MAX_LENGTH = 100_000
# Fewer entries than this means the tokenizer files were missing (see check_dual_encoder); real ones have 30k+.
_MIN_VOCABULARY = 100
# How far the split preprocessing may differ from the model's processor, in normalised pixel units: exact
# against transformers' PIL backend; resize antialiasing (~2-3 of 255 levels) against its torchvision one.
_PLAN_MAX_ERROR_PIL = 1e-4
_PLAN_MAX_ERROR_OTHER_BACKEND = 0.1


def check_dual_encoder(model: Any, tokenizer: Any, model_id: str) -> None:
    """Refuse, at load time, a checkpoint without both towers or with an empty tokenizer."""
    if not (hasattr(model, "get_image_features") and hasattr(model, "get_text_features")):
        model_type = getattr(getattr(model, "config", None), "model_type", "?")
        raise ModelUnavailable(
            f"Model {model_id!r} (type {model_type!r}) is not an image–text dual encoder: it has "
            "no get_image_features/get_text_features. Use a CLIP- or SigLIP-style model."
        )
    vocabulary = len(tokenizer)
    if vocabulary < _MIN_VOCABULARY:
        # transformers 5 builds an *empty* CLIPTokenizer when a directory lacks the tokenizer files,
        # instead of failing; every text would then embed to the same vector.
        raise ModelUnavailable(
            f"Model {model_id!r} has a tokenizer with only {vocabulary} entries: its tokenizer files "
            "(tokenizer.json, or vocab.json + merges.txt) are probably missing. Copy the complete model."
        )


def text_limits(config: Any, tokenizer: Any) -> tuple[int, bool | str]:
    """``(max_length, padding)`` for the tokenizer: the smaller of the text config's and the tokenizer's
    stated context, and ``"max_length"`` padding for towers that pool a fixed position."""
    text_config = getattr(config, "text_config", None) or config
    limits = [getattr(text_config, "max_position_embeddings", None)]
    tokenizer_limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(tokenizer_limit, int) and tokenizer_limit < _SANE_TOKENIZER_MAX_LENGTH:
        limits.append(tokenizer_limit)
    usable = [int(limit) for limit in limits if isinstance(limit, int) and limit > 0]
    max_length = min(usable) if usable else FALLBACK_MAX_LENGTH
    model_type = getattr(config, "model_type", "")
    return max_length, "max_length" if model_type in _PAD_TO_MAX_LENGTH_MODEL_TYPES else True


def explicit_parameters(method: Any) -> frozenset[str]:
    """Named parameters of ``method``: we pass preprocessor outputs only under names the model declares, so
    e.g. a BERT-style ``token_type_ids`` never reaches a model that would choke on it via ``**kwargs``."""
    try:
        parameters = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):
        return frozenset({"input_ids", "attention_mask", "pixel_values"})
    return frozenset(
        p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"
    )


def checked_plan(image_processor: Any, image_inputs: frozenset[str], model_id: str) -> GeometryPlan | None:
    """The split preprocessing, if this processor's settings are mirrored and it reproduces the
    processor's pixels on probe images of awkward sizes; otherwise None (the processor is used).

    The plan resizes with PIL, exactly as transformers' PIL backend does (max error ~1e-7). Where
    torchvision is installed (GPU images) transformers picks its torchvision backend, whose antialiased
    resize differs by a couple of intensity levels; the plan is still used there, so that a CPU worker
    and a GPU worker give the same vector for the same image."""
    if "pixel_values" not in image_inputs:
        return None
    plan = GeometryPlan.from_processor(image_processor)
    if plan is None:
        logger.info("image processor of %s not mirrored: it runs on the inference thread", model_id)
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
        logger.warning("split preprocessing of %s differs from its processor (%.2g)", model_id, error)
        return None
    if not pil_backend:
        logger.info(
            "%s: PIL geometry instead of %s (max difference %.3f, resize antialiasing)",
            model_id,
            type(image_processor).__name__,
            error,
        )
    return plan


def features_tensor(output: Any) -> torch.Tensor:
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


def normalised(output: Any) -> np.ndarray:
    """L2-normalise in float32 (fp16 norms lose precision) and hand back a C-contiguous numpy array."""
    features = features_tensor(output).float()
    features = torch.nn.functional.normalize(features, p=2.0, dim=-1, eps=1e-12)
    return np.ascontiguousarray(features.cpu().numpy(), dtype=np.float32)
