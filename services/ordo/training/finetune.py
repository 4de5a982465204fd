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
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ordo.embedding import ordo_lite
from ordo.errors import InvalidInput, Reason
from ordo.training.train_heads import FEATURES_VERSION, Heads, Recipe

MODEL_FILE = "ordo_model.json"
DEFAULT_CACHE = Path.home() / ".cache" / "ordo" / "finetune"
DEFAULT_TEMPLATE = "a photo of {name}"
_IMAGE_BATCH = 8
CACHE_CHUNK = 64  # images per cache file


# ------------------------------------------------------------------ loss


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


# ------------------------------------------------------------------ data


@dataclass(frozen=True)
class Pair:
    """One training/evaluation image with its captions and its group (label; the file for captioned data)."""

    path: Path
    captions: tuple[str, ...]
    group: str


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise InvalidInput(f"{path} does not exist", reason=Reason.DATASET_INDEX_MISSING)
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_target(dataset: Path, template: str = DEFAULT_TEMPLATE) -> list[Pair]:
    """A target folder: ``captions.jsonl`` as is, or ``labels.jsonl`` with each label put into ``template``."""
    if "{name}" not in template:
        raise InvalidInput(f"caption template {template!r} needs a {{name}} placeholder", reason=Reason.BAD_TEMPLATE)
    if (dataset / "captions.jsonl").is_file():
        return [
            Pair(dataset / r["file"], tuple(r["captions"]), r["file"])
            for r in _jsonl(dataset / "captions.jsonl")
            if r.get("captions")
        ]
    records = _jsonl(dataset / "labels.jsonl")
    return [Pair(dataset / r["file"], (template.format(name=r["label"]),), r["label"]) for r in records]


def read_background(dataset: Path, split: str | None, limit: int | None) -> list[Pair]:
    """A ``captions.jsonl`` folder (optionally one split, the first ``limit`` images)."""
    records = [r for r in _jsonl(dataset / "captions.jsonl") if split is None or r.get("split") == split]
    if not records:
        raise InvalidInput(f"no background images in {dataset} (split {split!r})", reason=Reason.EMPTY_DATASET)
    records = records[:limit] if limit else records
    return [Pair(dataset / r["file"], tuple(r["captions"]), r["file"]) for r in records]


def split_holdout(pairs: Sequence[Pair], fraction: float) -> tuple[list[Pair], list[Pair]]:
    """``(train, held out)``: within each group (sorted by file), every k-th image is held out, so each label
    keeps training images and gets evaluation images. Groups of one image stay in training."""
    if not 0.0 <= fraction < 1.0:
        raise InvalidInput("the held-out fraction must be in [0, 1)", reason=Reason.BAD_HOLDOUT)
    groups: dict[str, list[Pair]] = {}
    for pair in pairs:
        groups.setdefault(pair.group, []).append(pair)
    train, held = [], []
    for members in groups.values():
        members = sorted(members, key=lambda p: str(p.path))
        count = math.floor(len(members) * fraction) if len(members) > 1 else 0
        step = len(members) / count if count else 0
        chosen = {int(i * step + step / 2) for i in range(count)} if count else set()
        for i, pair in enumerate(members):
            (held if i in chosen else train).append(pair)
    return train, held


# ------------------------------------------------------------------ entity swap

_SYLLABLES = ("ka", "lo", "mi", "ra", "ve", "no", "tu", "si", "de", "fa", "zo", "ri", "bel", "dor", "quin", "tha")


def invented_name(name: str, salt: str = "ordo-swap") -> str:
    """A deterministic made-up name with as many words as ``name`` (e.g. "George W Bush" → "Kalo V Ravemi")."""
    words = []
    for i, word in enumerate(name.split()):
        digest = hashlib.sha256(f"{salt}/{name}/{i}".encode()).digest()
        if len(word) <= 2:  # an initial stays an initial
            words.append(chr(ord("A") + digest[0] % 26))
            continue
        syllables = [_SYLLABLES[b % len(_SYLLABLES)] for b in digest[1 : 2 + digest[0] % 2 + 1]]
        words.append("".join(syllables).capitalize())
    return " ".join(words)


def builtin_swap_map(names: Sequence[str]) -> dict[str, str]:
    """Every name → an invented one; collisions (among new names or with old ones) get a new salt."""
    mapping: dict[str, str] = {}
    taken = set(names)
    for name in sorted(set(names)):
        salt, attempt = "ordo-swap", 0
        new = invented_name(name, salt)
        while new in taken:
            attempt += 1
            new = invented_name(name, f"{salt}-{attempt}")
        mapping[name] = new
        taken.add(new)
    return mapping


def load_swap_map(path: Path) -> dict[str, str]:
    """A JSON object ``{"old name": "new name", ...}``."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"cannot read swap map {path}: {exc}", reason=Reason.BAD_SWAP_MAP) from exc
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise InvalidInput(f"swap map {path} must be a JSON object of name → name", reason=Reason.BAD_SWAP_MAP)
    return data


def apply_swap(pairs: Sequence[Pair], mapping: dict[str, str]) -> list[Pair]:
    """Replace every mapped name (whole words, longest first) in captions and groups."""
    if not mapping:
        return list(pairs)
    names = sorted(mapping, key=len, reverse=True)
    pattern = re.compile(r"\b(" + "|".join(re.escape(n) for n in names) + r")\b")

    def swap(text: str) -> str:
        return pattern.sub(lambda m: mapping[m.group(1)], text)

    return [Pair(p.path, tuple(swap(c) for c in p.captions), swap(p.group)) for p in pairs]


# ------------------------------------------------------------------ frozen-tower features, cached


class FeatureCache:
    """Tower features on disk: images by (file, size, mtime), texts by content; the towers load only on a miss."""

    def __init__(self, cache_dir: Path = DEFAULT_CACHE) -> None:
        self.cache_dir = cache_dir
        self._image_tower: torch.nn.Module | None = None
        self._text_tower: Any = None

    def _chunked(self, kind: str, keys: Sequence[str], compute: Callable[[slice], np.ndarray]) -> np.ndarray:
        """Cache in chunks of :data:`CACHE_CHUNK` items, so an interrupted run keeps what it computed."""
        parts = []
        for start in range(0, len(keys), CACHE_CHUNK):
            part = slice(start, min(start + CACHE_CHUNK, len(keys)))
            parts.append(self._cached(self._path(kind, keys[part]), lambda part=part: compute(part)))
        return np.concatenate(parts, axis=0)

    def _path(self, kind: str, keys: Sequence[str]) -> Path:
        digest = hashlib.sha256(FEATURES_VERSION.encode())
        for key in keys:
            digest.update(key.encode() + b"\0")
        return self.cache_dir / f"{kind}-{len(keys)}-{digest.hexdigest()[:16]}.npy"

    def _cached(self, path: Path, compute: Callable[[], np.ndarray]) -> np.ndarray:
        if path.is_file():
            return np.load(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        array = compute()
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, array)
        tmp.replace(path)
        return array

    def images(self, paths: Sequence[Path], on_batch: Callable[[int], None] | None = None) -> np.ndarray:
        keys = []
        for path in paths:
            stat = path.stat()
            keys.append(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}")

        def compute(part: slice) -> np.ndarray:
            if self._image_tower is None:
                self._image_tower = ordo_lite.load_image_tower()
            chunk = paths[part]
            parts = []
            for start in range(0, len(chunk), _IMAGE_BATCH):
                batch = [Image.open(p).convert("RGB") for p in chunk[start : start + _IMAGE_BATCH]]
                parts.append(ordo_lite.image_features(self._image_tower, batch))
                if on_batch:
                    on_batch(len(batch))
            return np.concatenate(parts, axis=0)

        return self._chunked("image", keys, compute)

    def activations(
        self, paths: Sequence[Path], unfreeze: int, on_batch: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """The image tower's activations *before* its last ``unfreeze`` blocks, float16 (n, 208, 9, 9): what an
        unfrozen tail trains on, so the frozen front of the tower still runs once per image, not once per step."""
        check_unfreeze(unfreeze)
        keys = []
        for path in paths:
            stat = path.stat()
            keys.append(f"act{unfreeze}|{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}")

        def compute(part: slice) -> np.ndarray:
            if self._image_tower is None:
                self._image_tower = ordo_lite.load_image_tower()
            tower = self._image_tower
            front = len(tower._blocks) - unfreeze
            chunk = paths[part]
            parts = []
            for start in range(0, len(chunk), _IMAGE_BATCH):
                batch = [Image.open(p).convert("RGB") for p in chunk[start : start + _IMAGE_BATCH]]
                x = torch.from_numpy(np.stack([ordo_lite.preprocess_image(image) for image in batch]))
                with torch.inference_mode():
                    x = tower._swish(tower._bn0(tower._conv_stem(x)))
                    for block in tower._blocks[:front]:
                        x = block(x)
                parts.append(x.numpy().astype(np.float16))
                if on_batch:
                    on_batch(len(batch))
            return np.concatenate(parts, axis=0)

        return self._chunked("act", keys, compute)

    def texts(self, texts: Sequence[str]) -> np.ndarray:
        def compute() -> np.ndarray:
            if self._text_tower is None:
                self._text_tower = ordo_lite.load_text_tower()
            return ordo_lite.text_features(self._text_tower, list(texts), batch_size=128)

        return self._cached(self._path("text", list(texts)), compute)


@dataclass
class Encoded:
    """A set of pairs as tower features: image (n, 1280); captions deduplicated: text (m, 384) and, per image,
    the indices of its captions; ``group`` (n,) integer group ids."""

    image: np.ndarray
    text: np.ndarray
    captions: list[str]
    caption_ids: list[list[int]]
    group: np.ndarray
    activations: np.ndarray | None = None  # with --unfreeze-last: the input of the trainable tower tail


def encode(
    pairs: Sequence[Pair],
    cache: FeatureCache,
    on_batch: Callable[[int], None] | None = None,
    unfreeze: int = 0,
) -> Encoded:
    paths = [p.path for p in pairs]
    image = cache.images(paths, on_batch)
    captions = sorted({c for p in pairs for c in p.captions})
    index = {c: i for i, c in enumerate(captions)}
    groups = {g: i for i, g in enumerate(sorted({p.group for p in pairs}))}
    return Encoded(
        image=image,
        text=cache.texts(captions),
        captions=captions,
        caption_ids=[[index[c] for c in p.captions] for p in pairs],
        group=np.array([groups[p.group] for p in pairs]),
        activations=cache.activations(paths, unfreeze, on_batch) if unfreeze else None,
    )


# ------------------------------------------------------------------ unfreezing the image tower's last blocks

MAX_UNFREEZE = 5  # blocks 16-20 all take 208x9x9 inputs: the float16 cache stays ~34 kB per image
TOWER_TAIL_FILE = ordo_lite.TOWER_TAIL_FILE


def check_unfreeze(unfreeze: int) -> None:
    if not 0 <= unfreeze <= MAX_UNFREEZE:
        raise InvalidInput(f"--unfreeze-last must be between 0 and {MAX_UNFREEZE}", reason=Reason.BAD_UNFREEZE)


class TowerTail(torch.nn.Module):
    """The image tower's last ``n`` blocks plus its head convolution, trainable, on cached activations.

    Batch norms keep their ImageNet running statistics (eval mode, as in the frozen tower); their affine
    parameters and the convolutions train. Drop-connect stays off: the batches are small and the data few.
    """

    def __init__(self, tower: torch.nn.Module, n: int) -> None:
        super().__init__()

        check_unfreeze(n)
        self.first = len(tower._blocks) - n
        self.blocks = torch.nn.ModuleList(copy.deepcopy(list(tower._blocks[self.first :])))
        self.conv_head = copy.deepcopy(tower._conv_head)
        self.bn1 = copy.deepcopy(tower._bn1)
        self.swish = tower._swish
        self.eval()

    def train(self, mode: bool = True) -> TowerTail:
        return super().train(False)  # BN statistics stay frozen

    def forward(self, activations: torch.Tensor) -> torch.Tensor:
        x = activations.float()
        for block in self.blocks:
            x = block(x)
        return self.swish(self.bn1(self.conv_head(x))).mean(dim=(2, 3))

    def features(self, activations: np.ndarray, batch: int = 256) -> np.ndarray:
        with torch.no_grad():
            parts = [self(torch.from_numpy(activations[i : i + batch])) for i in range(0, len(activations), batch)]
        return torch.cat(parts).numpy()

    def tower_state(self) -> dict[str, torch.Tensor]:
        """The tail's tensors under the full tower's names (``_blocks.20.…``, ``_conv_head.…``, ``_bn1.…``)."""
        state = {}
        for name, tensor in self.state_dict().items():
            if name.startswith("blocks."):
                index, rest = name.removeprefix("blocks.").split(".", 1)
                state[f"_blocks.{self.first + int(index)}.{rest}"] = tensor
            elif name.startswith("conv_head.") or name.startswith("bn1."):
                state[f"_{name}"] = tensor
        return {k: v.detach().contiguous() for k, v in state.items()}


# ------------------------------------------------------------------ model


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


# ------------------------------------------------------------------ measurements


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


# ------------------------------------------------------------------ the model directory


def model_id_for(name: str, heads_file: Path, tail_file: Path | None = None) -> str:
    """``ordo-lite-ft-<name>-<8 hex of the weights>``: distinct per name and per weights."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "model"
    digest_input = heads_file.read_bytes() + (tail_file.read_bytes() if tail_file is not None else b"")
    digest = hashlib.sha256(digest_input).hexdigest()[:8]
    return f"{ordo_lite.FAMILY_PREFIX}-ft-{slug}-{digest}"


def save_model(
    heads: Heads,
    out: Path,
    name: str,
    base_dir: Path,
    report: dict[str, Any],
    tail: TowerTail | None = None,
) -> tuple[str, Path]:
    """Write the loadable model directory; returns ``(model_id, out)``."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    tensors = {
        f"{side}.{part}": getattr(getattr(heads, side), part).detach().contiguous()
        for side in ("image", "text")
        for part in ("weight", "bias")
    }
    heads_path = out / ordo_lite.HEADS_FILE
    save_file(tensors, str(heads_path), metadata={"base": ordo_lite.MODEL_ID})
    if tail is not None:
        save_file(tail.tower_state(), str(out / TOWER_TAIL_FILE), metadata={"base": ordo_lite.MODEL_ID})
    else:
        (out / TOWER_TAIL_FILE).unlink(missing_ok=True)
    model_id = model_id_for(name, heads_path, out / TOWER_TAIL_FILE if tail is not None else None)
    base_config = json.loads((base_dir / ordo_lite.CONFIG_FILE).read_text())
    temperature = 1.0 / math.exp(min(float(heads.logit_scale.detach()), heads.max_log_scale))
    config = {
        **{k: v for k, v in base_config.items() if k not in ("metrics", "recipe", "data", "train_seconds")},
        "model_id": model_id,
        "temperature": round(temperature, 6),
        "base_model": base_config.get("model_id", ordo_lite.MODEL_ID),
    }
    (out / ordo_lite.CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    descriptor = {
        "family": ordo_lite.FAMILY_PREFIX,
        "model_id": model_id,
        "heads": ordo_lite.HEADS_FILE,
        "base_model": config["base_model"],
        "towers": {"image": base_config.get("image_tower"), "text": base_config.get("text_tower")},
        "image_tower_tail": TOWER_TAIL_FILE if tail is not None else None,
        "unfrozen_image_blocks": len(tail.blocks) if tail is not None else 0,
    }
    (out / MODEL_FILE).write_text(json.dumps(descriptor, indent=2) + "\n")
    (out / "metrics.json").write_text(json.dumps({**report, "model_id": model_id}, indent=2) + "\n")
    (out / "MODEL_CARD.md").write_text(model_card(model_id, report))
    return model_id, out


def model_card(model_id: str, report: dict[str, Any]) -> str:
    rows = "\n".join(
        f"| {name} | {before['cosine']:.4f} | {after['cosine']:.4f} | {before['t2i_R@1']:.1f} | "
        f"{after['t2i_R@1']:.1f} | {before['i2t_R@1']:.1f} | {after['i2t_R@1']:.1f} |"
        for name, (before, after) in ((n, (report["before"][n], report["after"][n])) for n in report["before"])
    )
    unfrozen = report["config"].get("unfreeze_last", 0)
    trained = (
        f"projection heads and the image tower's last {unfrozen} blocks"
        if unfrozen
        else "projection heads only; towers frozen"
    )
    return (
        f"# {model_id}\n\n"
        f"Fine-tuned from {report['base_model']} by `ordo finetune` ({trained}).\n\n"
        f"* target: {report['data']['target']}\n* background: {report['data']['background']}\n"
        f"* entity swap: {report['data']['swap']}\n* recipe: `{json.dumps(report['config'])}`\n\n"
        "| set | cosine before | cosine after | t2i R@1 before | after | i2t R@1 before | after |\n"
        "|---|---|---|---|---|---|---|\n"
        f"{rows}\n\n"
        "Load it with `ORDO_MODEL=<this directory>`. Limits: as ordo-lite's (see its model card), and names are\n"
        "learned only from the target photos given.\n"
    )


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
    on_features: Callable[[str, int, int], None] | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> dict[str, Any]:
    """The whole method: data → features → before → train → after → model directory. Returns the report."""
    pairs = read_target(run.target, run.template)
    mapping: dict[str, str] = {}
    if run.swap_map is not None:
        mapping = load_swap_map(run.swap_map)
    elif run.swap:
        mapping = builtin_swap_map([p.group for p in pairs])
    pairs = apply_swap(pairs, mapping)
    train_pairs, held_pairs = split_holdout(pairs, run.holdout)
    if not held_pairs:
        held_pairs = train_pairs  # tiny sets: measure on what was trained on (said in the report)
    cache = FeatureCache(run.cache_dir)

    def encoded(label: str, items: Sequence[Pair]) -> Encoded:
        done = [0]

        def step(count: int) -> None:
            done[0] += count
            if on_features:
                on_features(label, done[0], len(items))

        return encode(items, cache, step, unfreeze=run.config.unfreeze_last)

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
        "data": {
            "target": f"{run.target} ({len(train_pairs)} train, {len(held_pairs)} held out, template {run.template!r})",
            "background": f"{run.background} split={run.background_split} ({len(background.image)} images)"
            if background is not None
            else "none",
            "background_eval": str(run.background_eval) if run.background_eval else "none",
            "swap": ("map " + str(run.swap_map)) if run.swap_map else ("built-in" if run.swap else "none"),
        },
        "swap_map": mapping,
    }
    model_id, _ = save_model(heads, run.out, run.name, run.base_heads, report, tail)
    report["model_id"] = model_id
    report["model_dir"] = str(run.out)
    return report
