"""Retrieval and classification metrics on unit vectors, as plain numpy functions.

Ranks are 0-based and count the candidates scoring *strictly* higher than the best true one, so ties
resolve in the query's favour (the convention of the CLIP papers' evaluation code), and a rank below k
is a hit at R@k. Captions may number differently per image: ``owner[j]`` names caption j's image.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DEFAULT_KS = (1, 5, 10)


def _caption_scores(image: np.ndarray, text: np.ndarray, owner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every caption's score against every image, ``(m, n)``, and against its own image, ``(m,)``."""
    scores = text @ image.T
    return scores, scores[np.arange(len(owner)), owner]


def text_to_image_ranks(image: np.ndarray, text: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """Rank of each caption's own image among all images: ``image`` (n, d), ``text`` (m, d), ``owner`` (m,)."""
    scores, true = _caption_scores(image, text, owner)
    return (scores > true[:, None]).sum(axis=1)


def text_to_image_rank_bounds(
    image: np.ndarray, text: np.ndarray, owner: np.ndarray, tie: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(best, worst)``: each caption's own-image rank when images scored within ``tie`` of it may fall on either
    side of it. Why: a service may embed a caption differently by a hair than the vectors compared with it (a
    batch of texts in bfloat16, a lone query in float32), and two images that close may then swap places."""
    scores, true = _caption_scores(image, text, owner)
    best = (scores > true[:, None] + tie).sum(axis=1)
    worst = (scores >= true[:, None] - tie).sum(axis=1) - 1  # minus the own image, always counted here
    return best, worst


def image_to_text_ranks(image: np.ndarray, text: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """Rank of each image's best own caption among all captions (a hit when any own caption is in the top k)."""
    scores = image @ text.T  # (n, m)
    own = owner[None, :] == np.arange(len(image))[:, None]
    best_true = np.where(own, scores, -np.inf).max(axis=1)
    return (scores > best_true[:, None]).sum(axis=1)


def recall_at(ranks: np.ndarray, ks: Sequence[int] = DEFAULT_KS) -> dict[str, float]:
    """``{"R@k": percent of ranks < k}`` (percent, 2 decimals)."""
    ranks = np.asarray(ranks)
    if ranks.size == 0:
        raise ValueError("no ranks to measure recall on")
    return {f"R@{k}": round(100.0 * float((ranks < k).mean()), 2) for k in ks}


def rank_summary(ranks: np.ndarray) -> dict[str, float]:
    """Median and mean 1-based rank: where recall saturates, these still separate models."""
    one_based = np.asarray(ranks) + 1
    return {"median_rank": float(np.median(one_based)), "mean_rank": round(float(one_based.mean()), 2)}


def mean_own_cosine(image: np.ndarray, text: np.ndarray, owner: np.ndarray) -> float:
    """The seed's measure: the mean cosine between each image and each of its own captions (unit rows)."""
    return float(np.einsum("ij,ij->i", text, image[owner]).mean())


def mean_other_cosine(image: np.ndarray, text: np.ndarray, owner: np.ndarray) -> float:
    """Mean cosine between images and *other* images' captions: the baseline the own-caption cosine must beat."""
    scores = text @ image.T
    mask = np.ones_like(scores, dtype=bool)
    mask[np.arange(len(owner)), owner] = False
    return float(scores[mask].mean()) if mask.any() else float("nan")


def class_vectors(prompt_vectors: np.ndarray) -> np.ndarray:
    """Prompt ensembling: ``(classes, templates, d)`` → mean over templates, re-normalised, ``(classes, d)``."""
    mean = prompt_vectors.mean(axis=1)
    return mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)


def zero_shot_accuracy(
    image: np.ndarray, classes: np.ndarray, labels: np.ndarray, ks: Sequence[int] = (1, 5)
) -> dict[str, float]:
    """Top-k accuracy (percent) of classifying ``image`` (n, d) by nearest ``classes`` (c, d); ``labels`` (n,)."""
    ranks = text_to_image_ranks(classes, image, labels)  # each image is a "query" against the class vectors
    return {f"top{k}": round(100.0 * float((ranks < k).mean()), 2) for k in ks if k <= len(classes)}


def per_class_accuracy(image: np.ndarray, classes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Top-1 accuracy (percent) per class; NaN for classes with no image."""
    predicted = (image @ classes.T).argmax(axis=1)
    out = np.full(len(classes), np.nan)
    for c in range(len(classes)):
        members = labels == c
        if members.any():
            out[c] = 100.0 * float((predicted[members] == c).mean())
    return out
