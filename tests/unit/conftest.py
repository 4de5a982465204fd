"""Fixtures shared by the unit tests of the CPU budget, the tuner and the lane's streams."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from ordo.embedding import autotune, cpu_budget


@pytest.fixture
def isolated_tuning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A private peers folder and tuning cache, and torch's thread count restored afterwards."""
    monkeypatch.setenv(cpu_budget.PEERS_DIR_ENV, str(tmp_path / "peers"))
    monkeypatch.setenv(autotune.CACHE_ENV, str(tmp_path / "cache" / "tuning.json"))
    cpu_budget.reset_process_budget()
    threads = torch.get_num_threads()
    yield
    cpu_budget.reset_process_budget()
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_vision() -> torch.nn.Module:
    """The tiny CLIP's image tower as a module of pixels → features (what the tuner and runtimes take)."""
    from transformers import CLIPModel

    from ordo.embedding.factory import random_clip_config
    from ordo.embedding.hf_features import features_tensor
    from ordo.embedding.tower_runtime import FeatureModule

    model = CLIPModel(random_clip_config("tiny")).eval()
    return FeatureModule(model, lambda pixels: features_tensor(model.get_image_features(pixel_values=pixels)))
