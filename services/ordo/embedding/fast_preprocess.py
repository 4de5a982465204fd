"""Image preprocessing split in two halves: geometry on the decoder threads, arithmetic on the device.

Measured on an H200 (bench/gpu_embedding.py): CLIP ViT-B/32's forward pass runs ~27,000 images/s at batch
256, but calling the transformers image processor inside the single inference thread capped Ordo at ~470
images/s — preprocessing, not the model, was the bottleneck by 50x. clip-retrieval and Immich solve this
the same way: preprocess in parallel workers, hand the model ready tensors.

``GeometryPlan`` mirrors the PIL backend of transformers' CLIP/SigLIP processors exactly (PIL resize with
the processor's resample and output size, then the same centre crop) but stops at uint8 HWC pixels: cheap to
compute on any thread, 4x smaller than float32 to move to a GPU. ``to_model_input`` then rescales and
normalises a stacked batch on the model's device. A plan is only built for processor settings it knows
(resize by shortest edge or to a fixed size, optional centre crop, rescale, normalise, no padding); any
other processor keeps the transformers path. The encoder checks at load time that both paths agree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image


def _get(value: Any, key: str) -> Any:
    """SizeDict (attribute access) and plain dicts alike."""
    if isinstance(value, Mapping):
        return value.get(key)
    return getattr(value, key, None)


@dataclass(frozen=True)
class GeometryPlan:
    """What to do to a PIL image before the arithmetic: resize, then optionally centre-crop."""

    shortest_edge: int | None  # resize so the shorter side is this (aspect kept) ...
    size: tuple[int, int] | None  # ... or to exactly (height, width)
    crop: tuple[int, int] | None  # centre crop (height, width) after resizing
    resample: int
    scale: float | None  # rescale factor (1/255), None when the processor does not rescale
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None

    @classmethod
    def from_processor(cls, processor: Any) -> GeometryPlan | None:
        """A plan equivalent to ``processor``, or None when its settings are outside what this mirrors."""
        if not getattr(processor, "do_resize", False) or getattr(processor, "do_pad", False):
            return None
        if getattr(processor, "do_convert_rgb", True) is False:
            return None
        size = getattr(processor, "size", None)
        shortest = _get(size, "shortest_edge")
        height, width = _get(size, "height"), _get(size, "width")
        if _get(size, "longest_edge") or _get(size, "max_height"):
            return None
        if not shortest and not (height and width):
            return None
        crop = None
        if getattr(processor, "do_center_crop", False):
            crop_size = getattr(processor, "crop_size", None)
            ch, cw = _get(crop_size, "height"), _get(crop_size, "width")
            if not (ch and cw):
                return None
            crop = (int(ch), int(cw))
        resample = getattr(processor, "resample", None)
        resample = int(resample) if resample is not None else int(Image.Resampling.BILINEAR)
        scale = float(processor.rescale_factor) if getattr(processor, "do_rescale", False) else None
        mean = std = None
        if getattr(processor, "do_normalize", False):
            mean = tuple(float(m) for m in np.broadcast_to(processor.image_mean, (3,)))
            std = tuple(float(s) for s in np.broadcast_to(processor.image_std, (3,)))
        return cls(
            int(shortest) if shortest else None,
            None if shortest else (int(height), int(width)),
            crop,
            resample,
            scale,
            mean,
            std,
        )

    def output_size(self, width: int, height: int) -> tuple[int, int]:
        """(height, width) after resizing, computed as transformers' ``get_resize_output_image_size``."""
        if self.size is not None:
            return self.size
        assert self.shortest_edge is not None
        short, long = (width, height) if width <= height else (height, width)
        new_short, new_long = self.shortest_edge, int(self.shortest_edge * long / short)
        return (new_long, new_short) if width <= height else (new_short, new_long)

    def pixels(self, image: Image.Image) -> np.ndarray:
        """uint8 (H, W, 3): resized and cropped, not yet rescaled or normalised. Thread-safe."""
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        out_h, out_w = self.output_size(rgb.width, rgb.height)
        if (out_w, out_h) != rgb.size:
            rgb = rgb.resize((out_w, out_h), resample=self.resample)
        array = np.asarray(rgb, dtype=np.uint8)
        if self.crop is not None:
            array = _center_crop(array, *self.crop)
        return np.ascontiguousarray(array)

    def to_model_input(self, batch: Sequence[np.ndarray], device: str, dtype: torch.dtype) -> torch.Tensor:
        """Stacked uint8 HWC pixels → float NCHW on ``device``: the processor's arithmetic, on the device."""
        tensor = torch.from_numpy(np.stack(batch)).to(device, non_blocking=True)
        tensor = tensor.permute(0, 3, 1, 2).to(torch.float32)
        if self.scale is not None:
            tensor = tensor * self.scale
        if self.mean is not None and self.std is not None:
            mean = torch.tensor(self.mean, device=device, dtype=torch.float32).view(1, 3, 1, 1)
            std = torch.tensor(self.std, device=device, dtype=torch.float32).view(1, 3, 1, 1)
            tensor = (tensor - mean) / std
        return tensor.to(dtype)


def _center_crop(array: np.ndarray, crop_h: int, crop_w: int) -> np.ndarray:
    """transformers' ``center_crop`` on HWC pixels, including its zero padding of images smaller than the crop."""
    height, width = array.shape[:2]
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    if top >= 0 and left >= 0:
        return array[top : top + crop_h, left : left + crop_w]
    new_h, new_w = max(crop_h, height), max(crop_w, width)
    padded = np.zeros((new_h, new_w, array.shape[2]), dtype=array.dtype)
    top_pad, left_pad = math.ceil((new_h - height) / 2), math.ceil((new_w - width) / 2)
    padded[top_pad : top_pad + height, left_pad : left_pad + width] = array
    top, left = top + top_pad, left + left_pad
    return padded[max(0, top) : min(new_h, top + crop_h), max(0, left) : min(new_w, left + crop_w)]
