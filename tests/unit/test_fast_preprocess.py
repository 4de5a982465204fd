"""The split preprocessing (geometry on decoder threads, arithmetic on the device) must reproduce the
transformers processor's pixels, or not be used at all: a silent preprocessing difference costs accuracy
without any error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoImageProcessor, CLIPImageProcessorPil

from ordo.embedding.factory import get_embedder
from ordo.embedding.fast_preprocess import GeometryPlan


def _noise(height: int, width: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


def _max_error(processor: object, plan: GeometryPlan, images: list[Image.Image]) -> float:
    expected = processor(images=images, return_tensors="pt")["pixel_values"].float()  # type: ignore[operator]
    actual = plan.to_model_input([plan.pixels(i) for i in images], "cpu", torch.float32)
    assert expected.shape == actual.shape
    return float((expected - actual).abs().max())


SIZES = [(32, 32), (480, 640), (640, 427), (31, 500), (1001, 999), (7, 3)]


def test_matches_the_clip_processor_of_a_saved_model(tiny_clip_dir: Path, coco_images: list[Path]) -> None:
    processor = AutoImageProcessor.from_pretrained(str(tiny_clip_dir))
    plan = GeometryPlan.from_processor(processor)
    assert plan is not None and plan.shortest_edge and plan.crop
    images = [_noise(h, w, i) for i, (h, w) in enumerate(SIZES)] + [
        Image.open(p).convert("RGB") for p in coco_images[:3]
    ]
    assert _max_error(processor, plan, images) < 1e-5


def test_matches_a_fixed_size_processor_without_crop() -> None:
    """SigLIP-style: resize straight to a square, no crop, mean/std 0.5."""
    processor = CLIPImageProcessorPil(
        size={"height": 48, "width": 48}, do_center_crop=False, image_mean=[0.5] * 3, image_std=[0.5] * 3
    )
    plan = GeometryPlan.from_processor(processor)
    assert plan is not None and plan.size == (48, 48) and plan.crop is None
    assert _max_error(processor, plan, [_noise(h, w, i) for i, (h, w) in enumerate(SIZES)]) < 1e-5


@pytest.mark.parametrize("settings", [{"do_pad": True}, {"size": {"shortest_edge": 32, "longest_edge": 64}}])
def test_unknown_processor_settings_keep_the_processor(settings: dict) -> None:
    assert GeometryPlan.from_processor(CLIPImageProcessorPil(**settings)) is None


def test_embedder_paths_agree(tiny_clip_dir: Path, coco_images: list[Path]) -> None:
    """Search (embed_images) and the pipeline (prepare_image on decoder threads, then embed_prepared) give
    the same vectors, and they equal what the plain processor path gives."""
    embedder = get_embedder(str(tiny_clip_dir), device="cpu", batch_size=4)
    assert embedder._plan is not None  # the tiny CLIP's processor is mirrored
    images = [Image.open(p).convert("RGB") for p in coco_images[:6]]
    via_images = embedder.embed_images(images)
    via_prepared = embedder.embed_prepared([embedder.prepare_image(i) for i in images])
    via_processor = embedder._run_images(embedder._model, images)
    np.testing.assert_array_equal(via_images, via_prepared)
    np.testing.assert_allclose(via_images, via_processor, atol=1e-5)
    assert embedder.prepare_image(images[0]).dtype == np.uint8  # 4x less to move to a GPU than float32
