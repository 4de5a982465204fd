"""Fine-tune ordo-lite on your own entities: the seed system's method, on frozen-tower features.

The recipe (why each part is there):

* **Target set**: images with captions, or with labels turned into captions through a template
  ("a photo of {name}"). Part of each label's images is held out so "after" is measured on unseen photos.
* **Background set** (a ``captions.jsonl`` folder, e.g. Flickr8k train or COCO-mini) mixed into every batch
  at a configurable ratio, so the shared space keeps what it knew: without it the heads collapse onto the
  few target captions and general search degrades.
* **Entity swap** (optional): every name is replaced by an invented one (``--swap`` derives them
  deterministically; ``--swap-map`` takes your own). The towers have never seen these strings, so a gain on
  swapped names proves the model learned the new names rather than recalling famous ones.
* **Loss**: the symmetric CLIP contrastive loss with a learnable temperature (:func:`symmetric_clip_loss`).
  A batch never holds two images of one label, whose identical captions would be false negatives.
* **Distillation** on the background rows (learning without forgetting): ``distill x (2 - cos(new, base) of the
  image - cos(new, base) of the caption)``. Mixing alone did not keep the background: its image-caption cosine
  fell 20 % (mix 0.25) or 18 % (mix 0.1) on COCO-mini; with the distillation weight at 20 it moves ~1 %.
* **Heads only**: the towers stay frozen, their features are computed once and cached (``~/.cache/ordo``), and
  training starts from the shipped ordo-lite heads; a run takes seconds to a few minutes on a CPU.
* ``--unfreeze-last N`` also trains the image tower's last N blocks (:class:`TowerTail`) on cached activations
  taken just before them: one extra tower pass per image, then each step costs ~13x a heads-only step for
  N=1 (~35x for N=3) on a CPU. The text tower stays frozen.

The result is a model directory (``heads.safetensors``, ``config.json``, ``ordo_model.json``, a model card and
``metrics.json``) that ``ORDO_MODEL=<dir>`` loads like any model, under its own model id.

Where each part lives: ``pairs`` (reading and splitting the data), ``entity_swap``, ``features`` (the cache),
``tower_tail`` (``--unfreeze-last``), ``trainer`` (loss, batches, the loop), ``measure`` (before/after) and
``model_dir`` (what is written). This module runs them in order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ordo.embedding import ordo_lite
from ordo.training.entity_swap import apply_swap, builtin_swap_map, load_swap_map
from ordo.training.features import DEFAULT_CACHE, Encoded, FeatureCache, encode
from ordo.training.measure import measure
from ordo.training.model_dir import save_model
from ordo.training.pairs import DEFAULT_TEMPLATE, Pair, read_background, read_target, split_holdout
from ordo.training.tower_tail import TowerTail
from ordo.training.trainer import FinetuneConfig, load_base_heads, train

FeatureProgress = Callable[[str, int, int], None]


@dataclass
class FinetuneRun:
    """Inputs of one fine-tuning run (what the CLI collects)."""

    target: Path
    name: str
    out: Path
    background: Path | None = None
    background_split: str | None = "train"
    background_limit: int | None = 2000
    background_eval: Path | None = None
    template: str = DEFAULT_TEMPLATE
    holdout: float = 0.25
    swap: bool = False
    swap_map: Path | None = None
    base_heads: Path = ordo_lite.HEADS_DIR
    cache_dir: Path = DEFAULT_CACHE
    config: FinetuneConfig = field(default_factory=FinetuneConfig)


def run_finetune(
    run: FinetuneRun,
    *,
    on_features: FeatureProgress | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> dict[str, Any]:
    """The whole method: data → features → before → train → after → model directory. Returns the report."""
    pairs = read_target(run.target, run.template)
    mapping = _swap_map(run, pairs)
    pairs = apply_swap(pairs, mapping)
    train_pairs, held_pairs = split_holdout(pairs, run.holdout)
    if not held_pairs:
        held_pairs = train_pairs  # tiny sets: measure on what was trained on (said in the report)
    cache = FeatureCache(run.cache_dir)

    def encoded(label: str, items: Sequence[Pair]) -> Encoded:
        return _encode_with_progress(label, items, cache, run.config.unfreeze_last, on_features)

    target_train = encoded("target features", train_pairs)
    target_eval = encoded("held-out features", held_pairs)
    background = None
    background_eval = None
    if run.background is not None:
        background = encoded(
            "background features", read_background(run.background, run.background_split, run.background_limit)
        )
    if run.background_eval is not None:
        background_eval = encoded("background eval features", read_background(run.background_eval, None, None))

    config = run.config
    torch.set_num_threads(max(1, min(torch.get_num_threads(), 2)))
    heads = load_base_heads(run.base_heads, config.input_dropout, config.max_logit_scale)
    sets = {"target (held out)": target_eval}
    if background_eval is not None:
        sets["background"] = background_eval
    tail = None
    if config.unfreeze_last:
        tail = TowerTail(cache._image_tower or ordo_lite.load_image_tower(), config.unfreeze_last)
    before = {name: measure(heads, data, tail) for name, data in sets.items()}
    started = time.perf_counter()
    history = train(
        heads, target_train, background, config, on_step=on_step, checkpoint_dir=run.out / "checkpoints", tail=tail
    )
    seconds = time.perf_counter() - started
    after = {name: measure(heads, data, tail) for name, data in sets.items()}
    report = {
        "name": run.name,
        "base_model": ordo_lite.MODEL_ID,
        "before": before,
        "after": after,
        "loss_per_epoch": [round(x, 4) for x in history],
        "train_seconds": round(seconds, 1),
        "config": asdict(config),
        "data": _data_description(run, len(train_pairs), len(held_pairs), background),
        "swap_map": mapping,
    }
    model_id, _ = save_model(heads, run.out, run.name, run.base_heads, report, tail)
    report["model_id"] = model_id
    report["model_dir"] = str(run.out)
    return report


def _swap_map(run: FinetuneRun, pairs: Sequence[Pair]) -> dict[str, str]:
    """The names to swap: the run's own map, invented ones with ``swap``, else none."""
    if run.swap_map is not None:
        return load_swap_map(run.swap_map)
    if run.swap:
        return builtin_swap_map([p.group for p in pairs])
    return {}


def _encode_with_progress(
    label: str, items: Sequence[Pair], cache: FeatureCache, unfreeze: int, on_features: FeatureProgress | None
) -> Encoded:
    """:func:`encode`, reporting ``(label, images done, images in all)`` after every batch."""
    done = [0]

    def step(count: int) -> None:
        done[0] += count
        if on_features:
            on_features(label, done[0], len(items))

    return encode(items, cache, step, unfreeze=unfreeze)


def _data_description(run: FinetuneRun, n_train: int, n_held: int, background: Encoded | None) -> dict[str, str]:
    """The report's ``data`` block: what was trained and measured on, in words."""
    return {
        "target": f"{run.target} ({n_train} train, {n_held} held out, template {run.template!r})",
        "background": f"{run.background} split={run.background_split} ({len(background.image)} images)"
        if background is not None
        else "none",
        "background_eval": str(run.background_eval) if run.background_eval else "none",
        "swap": ("map " + str(run.swap_map)) if run.swap_map else ("built-in" if run.swap else "none"),
    }
