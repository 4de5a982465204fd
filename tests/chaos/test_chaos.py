"""Crash rounds in CI size (the harness is ``tests/chaos/harness.py``; ``make chaos`` runs the big one):
SIGKILL `ordo up` at chosen and random moments of an ingest, during a model switch and as an analysis
run starts; after a restart nothing acknowledged is lost, nothing is stored twice, every job ends."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos import harness

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(("seed", "point"), [(1, "upload"), (2, "write"), (3, "random")])
def test_a_killed_ingest_loses_nothing(
    seed: int, point: str, tmp_path: Path, tiny_clip_dir: Path, coco_images: list[Path]
) -> None:
    result = harness.ingest_round(seed, coco_images[:60], tiny_clip_dir, tmp_path, point=point)
    assert result.ok, result.problems
    if point != "random":
        assert result.killed  # the kill point was reached: the round tested a crash, not a clean run


def test_a_killed_model_switch_finishes_after_restart(
    tmp_path: Path, tiny_clip_dir: Path, coco_images: list[Path]
) -> None:
    result = harness.switch_round(4, coco_images[:24], tiny_clip_dir, tmp_path)
    assert result.killed and result.ok, result.problems


def test_a_killed_analysis_run_ends_interrupted(tmp_path: Path, tiny_clip_dir: Path, coco_images: list[Path]) -> None:
    result = harness.analysis_round(5, coco_images[:24], tiny_clip_dir, tmp_path)
    assert result.killed and result.ok, result.problems
