"""Evaluation metrics on constructed cases whose answers are known by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ordo.errors import InvalidInput
from ordo.evaluation import metrics
from ordo.evaluation.datasets import load_captions, load_labels
from ordo.evaluation.zeroshot import check_templates


def unit(*rows: list[float]) -> np.ndarray:
    array = np.asarray(rows, dtype=np.float32)
    return array / np.linalg.norm(array, axis=1, keepdims=True)


# Three images on the axes; four captions: 0 and 1 belong to image 0, 2 to image 1, 3 to image 2.
IMAGES = unit([1, 0, 0], [0, 1, 0], [0, 0, 1])
OWNER = np.array([0, 0, 1, 2])
# caption 0: right image first; caption 1: image 1 beats its own image 0 (rank 1); caption 2: right;
# caption 3: own image 2 is last behind images 0 and 1 (rank 2).
TEXTS = unit([1, 0.1, 0], [0.6, 0.8, 0], [0, 1, 0.2], [0.7, 0.6, 0.4])


def test_text_to_image_ranks_known_case() -> None:
    ranks = metrics.text_to_image_ranks(IMAGES, TEXTS, OWNER)
    assert ranks.tolist() == [0, 1, 0, 2]
    assert metrics.recall_at(ranks, ks=(1, 2, 3)) == {"R@1": 50.0, "R@2": 75.0, "R@3": 100.0}


def test_image_to_text_ranks_use_the_best_own_caption() -> None:
    # Each image's own caption scores highest on its axis: image 2 (z) sees 0.39 for caption 3, 0.20 for caption 2.
    ranks = metrics.image_to_text_ranks(IMAGES, TEXTS, OWNER)
    assert ranks.tolist() == [0, 0, 0]
    # Make image 2's caption worse than caption 2 on z: then it ranks second.
    texts = TEXTS.copy()
    texts[3] = unit([0.9, 0.4, 0.1])[0]
    assert metrics.image_to_text_ranks(IMAGES, texts, OWNER).tolist() == [0, 0, 1]


def test_ties_count_for_the_query() -> None:
    images = unit([1, 0], [1, 0])  # identical images: both score the same
    ranks = metrics.text_to_image_ranks(images, unit([1, 0], [1, 0]), np.array([0, 1]))
    assert ranks.tolist() == [0, 0]


def test_rank_bounds_widen_only_over_near_ties() -> None:
    """Images scored within ``tie`` of the own image may land on either side of it (a caption embedded in
    bf16 in one place and float32 in another); anything farther keeps its exact rank."""
    best, worst = metrics.text_to_image_rank_bounds(IMAGES, TEXTS, OWNER, tie=0.01)
    assert best.tolist() == worst.tolist() == [0, 1, 0, 2]  # no near-ties: the exact ranks
    texts = unit([1, 0.995, 0], [0, 0, 1])  # caption 0: images 0 and 1 within 0.005 of each other
    best, worst = metrics.text_to_image_rank_bounds(IMAGES, texts, np.array([0, 2]), tie=0.01)
    assert best.tolist() == [0, 0] and worst.tolist() == [1, 0]
    best, worst = metrics.text_to_image_rank_bounds(IMAGES, texts, np.array([0, 2]), tie=0.001)
    assert best.tolist() == worst.tolist() == [0, 0]  # the same pair is no tie at a smaller tolerance


def test_cosines_and_rank_summary() -> None:
    own = metrics.mean_own_cosine(IMAGES, TEXTS, OWNER)
    expected = np.mean([TEXTS[0, 0], TEXTS[1, 0], TEXTS[2, 1], TEXTS[3, 2]])
    assert own == pytest.approx(float(expected), abs=1e-6)
    other = metrics.mean_other_cosine(IMAGES, TEXTS, OWNER)
    scores = TEXTS @ IMAGES.T
    assert other == pytest.approx((scores.sum() - scores[np.arange(4), OWNER].sum()) / 8, abs=1e-6)
    assert metrics.rank_summary(np.array([0, 1, 0, 2])) == {"median_rank": 1.5, "mean_rank": 1.75}
    with pytest.raises(ValueError):
        metrics.recall_at(np.array([]))


def test_zero_shot_accuracy_with_prompt_ensembling() -> None:
    # Two classes, two templates each: class 0's templates average to the x axis, class 1's to y.
    prompts = np.stack([unit([1, 0.5], [1, -0.5]), unit([0.5, 1], [-0.5, 1])])
    classes = metrics.class_vectors(prompts)
    np.testing.assert_allclose(classes, [[1, 0], [0, 1]], atol=1e-6)
    images = unit([1, 0.2], [0.9, -0.3], [0.1, 1], [0.8, 0.7])
    labels = np.array([0, 0, 1, 1])  # the last image is misclassified (closer to x)
    assert metrics.zero_shot_accuracy(images, classes, labels, ks=(1, 2)) == {"top1": 75.0, "top2": 100.0}
    np.testing.assert_allclose(metrics.per_class_accuracy(images, classes, labels), [100.0, 50.0])


def test_datasets_key_images_by_content_and_drop_duplicates(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"one")
    (tmp_path / "b.jpg").write_bytes(b"one")  # same bytes: the same asset
    (tmp_path / "c.jpg").write_bytes(b"two")
    records = [
        {"file": "a.jpg", "captions": ["x"], "split": "dev"},
        {"file": "b.jpg", "captions": ["y"], "split": "dev"},
        {"file": "c.jpg", "captions": ["z", " "], "split": "train"},
        {"file": "gone.jpg", "captions": ["w"], "split": "dev"},
    ]
    (tmp_path / "captions.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    loaded = load_captions(tmp_path, split="dev")
    assert [i.path.name for i in loaded.items] == ["a.jpg"]
    assert (loaded.duplicates, loaded.missing) == (1, 1)
    assert load_captions(tmp_path, split="train").items[0].captions == ("z",)
    with pytest.raises(InvalidInput, match="split 'test'"):
        load_captions(tmp_path, split="test")
    with pytest.raises(InvalidInput, match=r"labels\.jsonl"):
        load_labels(tmp_path)


def test_templates_need_one_placeholder() -> None:
    assert check_templates(["a photo of a {}.", " "]) == ["a photo of a {}."]
    with pytest.raises(InvalidInput):
        check_templates(["no placeholder"])
    with pytest.raises(InvalidInput):
        check_templates([])
