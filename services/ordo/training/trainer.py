"""The fine-tuning loop: CLIP's contrastive loss through the heads, background mixing and distillation.

* **Loss**: the symmetric CLIP contrastive loss with a learnable temperature (:func:`symmetric_clip_loss`).
  A batch never holds two images of one label, whose identical captions would be false negatives.
* **Distillation** on the background rows (learning without forgetting): ``distill x (2 - cos(new, base) of the
  image - cos(new, base) of the caption)``; see ``ordo.training.finetune`` for the measurements behind it.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ordo.embedding import ordo_lite
from ordo.training.features import Encoded
from ordo.training.tower_tail import TowerTail
from ordo.training.train_heads import Heads, Recipe


def symmetric_clip_loss(image: torch.Tensor, text: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """CLIP's loss on unit rows: row i of ``image`` and row i of ``text`` are a pair, every other row a negative.

    ``logits = exp(log_scale) * image @ text.T``; the mean of the image→text and text→image cross-entropies.
    ``log_scale`` is the learnable log inverse temperature (clamp it before calling, as CLIP does at 100).
    """
    logits = log_scale.exp() * image @ text.T
    targets = torch.arange(len(logits))
    return 0.5 * (
        torch.nn.functional.cross_entropy(logits, targets) + torch.nn.functional.cross_entropy(logits.T, targets)
    )


@dataclass(frozen=True)
class FinetuneConfig:
    """The fine-tuning recipe; written to the model directory so a run can be reproduced."""

    epochs: int = 30
    steps_per_epoch: int = 20
    batch_size: int = 128
    target_fraction: float = 0.25  # share of each batch drawn from the target set (the rest: background)
    lr: float = 1e-4
    weight_decay: float = 0.1
    input_dropout: float = 0.1
    max_logit_scale: float = 100.0
    seed: int = 0
    unfreeze_last: int = 0  # image tower blocks trained too (0: heads only)
    tower_lr: float = 1e-5  # the pretrained blocks move far more slowly than the heads
    # Weight of the distillation term that keeps background embeddings where the base model put them
    # (learning without forgetting); 0 turns it off.
    distill: float = 20.0  # lfw-top40 vs COCO-mini: 0 → background cosine -20 %, 5 → -6 %, 20 → -1 %


def load_base_heads(heads_dir: Path, dropout: float, max_logit_scale: float) -> Heads:
    """The shipped heads as a trainable :class:`Heads`, temperature from their config."""
    config, tensors = ordo_lite.load_heads(heads_dir)
    heads = Heads(Recipe(dim=int(config["dim"]), input_dropout=dropout, max_logit_scale=max_logit_scale))
    state = {f"{side}.{part}": tensors[f"{side}.{part}"] for side in ("image", "text") for part in ("weight", "bias")}
    state["logit_scale"] = torch.tensor(math.log(1.0 / float(config.get("temperature", 0.07))))
    heads.load_state_dict(state)
    return heads


def batch_loss(heads: Heads, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    """The symmetric CLIP loss on tower features through the heads, temperature clamped as CLIP does."""
    return symmetric_clip_loss(
        heads.encode_image(image), heads.encode_text(text), heads.logit_scale.clamp(max=heads.max_log_scale)
    )


def sample_batch(
    target: Encoded, background: Encoded | None, config: FinetuneConfig, rng: random.Random
) -> tuple[np.ndarray, np.ndarray]:
    """Indices into ``(image, text)`` rows of the concatenated sets: target images from distinct groups (identical
    captions in a batch would be false negatives), background images filling the rest, one random caption each."""
    groups: dict[int, list[int]] = {}
    for i, g in enumerate(target.group.tolist()):
        groups.setdefault(g, []).append(i)
    n_target = config.batch_size if background is None else round(config.batch_size * config.target_fraction)
    chosen_groups = rng.sample(sorted(groups), min(n_target, len(groups)))
    images = [rng.choice(groups[g]) for g in chosen_groups]
    texts = [rng.choice(target.caption_ids[i]) for i in images]
    if background is not None:
        n_back = config.batch_size - len(images)
        back = rng.sample(range(len(background.image)), min(n_back, len(background.image)))
        images += [len(target.image) + i for i in back]
        texts += [len(target.text) + rng.choice(background.caption_ids[i]) for i in back]
    return np.array(images), np.array(texts)


def train(
    heads: Heads,
    target: Encoded,
    background: Encoded | None,
    config: FinetuneConfig,
    *,
    on_step: Callable[[int, float], None] | None = None,
    checkpoint_dir: Path | None = None,
    tail: TowerTail | None = None,
) -> list[float]:
    """Fine-tune ``heads`` (and ``tail``, when given) in place; returns the mean loss of each epoch.
    Checkpoints after every epoch."""
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    groups: list[dict[str, Any]] = [{"params": list(heads.parameters()), "lr": config.lr}]
    if tail is not None:
        groups.append({"params": list(tail.parameters()), "lr": config.tower_lr})
    optimizer = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    sets = [target] + ([background] if background else [])
    if tail is not None:
        if any(part.activations is None for part in sets):
            raise ValueError("unfreezing tower blocks needs the sets encoded with activations")
        image = torch.from_numpy(np.concatenate([part.activations for part in sets]))  # type: ignore[misc]
    else:
        image = torch.from_numpy(np.concatenate([part.image for part in sets]))
    text = torch.from_numpy(np.concatenate([target.text] + ([background.text] if background else [])))
    anchor_image = anchor_text = None
    if config.distill > 0 and background is not None:
        # The base model's embeddings of every background image and caption, from the frozen features.
        anchor = copy.deepcopy(heads).eval()
        with torch.no_grad():
            anchor_image = anchor.encode_image(torch.from_numpy(np.concatenate([p.image for p in sets])))
            anchor_text = anchor.encode_text(text)
    history = []
    step = 0
    for epoch in range(config.epochs):
        heads.train()
        total = 0.0
        for _ in range(config.steps_per_epoch):
            image_rows, text_rows = sample_batch(target, background, config, rng)
            image_batch = tail(image[image_rows]) if tail is not None else image[image_rows]
            loss = batch_loss(heads, image_batch, text[text_rows])
            if anchor_image is not None and anchor_text is not None:
                back = image_rows >= len(target.image)
                new_image = heads.encode_image(image_batch[torch.from_numpy(back)])
                new_text = heads.encode_text(text[text_rows[back]])
                drift = 2.0 - (new_image * anchor_image[image_rows[back]]).sum(-1).mean()
                drift = drift - (new_text * anchor_text[text_rows[back]]).sum(-1).mean()
                loss = loss + config.distill * drift
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
            step += 1
            if on_step:
                on_step(step, float(loss.detach()))
        history.append(total / config.steps_per_epoch)
        if checkpoint_dir is not None:
            checkpoint_dir.mkdir(parents=True, exist_ok=True)
            torch.save(
                {
                    "epoch": epoch,
                    "heads": heads.state_dict(),
                    "tower_tail": tail.tower_state() if tail is not None else None,
                    "optimizer": optimizer.state_dict(),
                },
                checkpoint_dir / "last.pt",
            )
    heads.eval()
    return history
