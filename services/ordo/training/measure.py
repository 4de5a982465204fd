"""Before/after measurements of a fine-tuning run: image-caption cosine and retrieval R@1."""

from __future__ import annotations

import numpy as np
import torch

from ordo.training.features import Encoded
from ordo.training.tower_tail import TowerTail
from ordo.training.train_heads import Heads


def _project(heads: Heads, data: Encoded, tail: TowerTail | None = None) -> tuple[np.ndarray, np.ndarray]:
    heads.eval()
    features = tail.features(data.activations) if tail is not None and data.activations is not None else data.image
    with torch.no_grad():
        return (
            heads.encode_image(torch.from_numpy(features)).numpy(),
            heads.encode_text(torch.from_numpy(data.text)).numpy(),
        )


def measure(heads: Heads, data: Encoded, tail: TowerTail | None = None) -> dict[str, float]:
    """The seed's table row: mean cosine between each image and its own captions, plus retrieval.

    ``t2i_R@1``: each distinct caption is a query over the images; a hit when the top image is one of the
    caption's own (for labels: any photo of that person). ``i2t_R@1``: each image's nearest caption is its own
    (for labels: naming the person among all names)."""
    image, text = _project(heads, data, tail)
    own = [float(np.mean(text[ids] @ image[i])) for i, ids in enumerate(data.caption_ids)]
    scores = text @ image.T  # (captions, images)
    owners: dict[int, set[int]] = {}
    for i, ids in enumerate(data.caption_ids):
        for c in ids:
            owners.setdefault(c, set()).add(i)
    top_image = scores.argmax(axis=1)
    t2i = np.mean([top_image[c] in owners.get(c, ()) for c in range(len(data.captions))])
    top_caption = scores.argmax(axis=0)
    i2t = np.mean([top_caption[i] in ids for i, ids in enumerate(data.caption_ids)])
    return {
        "cosine": round(float(np.mean(own)), 4),
        "t2i_R@1": round(100.0 * float(t2i), 2),
        "i2t_R@1": round(100.0 * float(i2t), 2),
    }
