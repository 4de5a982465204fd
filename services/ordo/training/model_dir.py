"""The fine-tuned model directory: heads (and tower tail), config, descriptor, metrics and a model card.

``ORDO_MODEL=<dir>`` loads it like any model, under its own model id (distinct per name and per weights).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

from ordo.embedding import ordo_lite
from ordo.training.tower_tail import TOWER_TAIL_FILE, TowerTail
from ordo.training.train_heads import Heads

MODEL_FILE = "ordo_model.json"


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
