"""`ordo finetune`: teach ordo-lite your own entities (the seed's method; see ordo.training.finetune).

Runs locally on cached frozen-tower features (no stack needed), shows a progress bar, prints the seed's
before/after table and writes a model directory that ``ORDO_MODEL=<dir>`` (or model versions) can load.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from ordo.cli.common import console, out, progress_bar, settings_or_fail
from ordo.errors import OrdoError

if TYPE_CHECKING:  # torch and the training code load only when the command runs
    from ordo.training.finetune import FinetuneRun


@click.command()
@click.option(
    "--target",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="Folder with captions.jsonl, or labels.jsonl (labels become captions through --caption-template).",
)
@click.option("--name", required=True, help="Short name of the fine-tuned model (part of its model id).")
@click.option(
    "--background",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="captions.jsonl folder mixed in so the model does not forget (e.g. flickr8k).",
)
@click.option("--background-split", default="train", show_default=True, help="Split of --background to train on.")
@click.option("--background-limit", type=click.IntRange(min=1), default=2000, show_default=True)
@click.option(
    "--background-eval",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="captions.jsonl folder measured before/after (e.g. coco-captions-mini; never trained on).",
)
@click.option(
    "--mix",
    type=click.FloatRange(0.01, 1.0),
    default=0.25,
    show_default=True,
    help="Share of each batch drawn from the target set (the rest is background).",
)
@click.option(
    "--distill",
    type=click.FloatRange(min=0.0),
    default=20.0,
    show_default=True,
    help="Weight of keeping background embeddings where the base model put them (0: off).",
)
@click.option("--caption-template", default="a photo of {name}", show_default=True)
@click.option(
    "--holdout",
    type=click.FloatRange(0.0, 0.9),
    default=0.25,
    show_default=True,
    help="Share of each label's images held out for the after measurement.",
)
@click.option("--swap", is_flag=True, help="Replace every name by a deterministic invented one.")
@click.option(
    "--swap-map",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="JSON object {old name: new name} (instead of --swap).",
)
@click.option("--epochs", type=click.IntRange(min=1), default=30, show_default=True)
@click.option("--steps-per-epoch", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=2), default=128, show_default=True)
@click.option("--lr", type=float, default=1e-4, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--unfreeze-last",
    type=click.IntRange(0, 5),
    default=0,
    show_default=True,
    help="Also train the image tower's last N blocks (on cached activations: one more tower pass per image, "
    "~34 kB of cache per image, and each step costs ~13x a heads-only step for N=1, ~35x for N=3). 0: heads only.",
)
@click.option("--tower-lr", type=float, default=1e-5, show_default=True, help="Learning rate of unfrozen blocks.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Model directory (default: <ORDO_DATA_DIR>/models/<name>).",
)
@click.option("--json-out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write the report.")
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where frozen-tower features are cached (default: ~/.cache/ordo/finetune).",
)
@click.option(
    "--activate",
    is_flag=True,
    help="Then make it the active model of the running stack (ordo models activate: background re-embed, flip).",
)
def finetune(
    target: Path,
    name: str,
    background: Path | None,
    background_split: str,
    background_limit: int,
    background_eval: Path | None,
    mix: float,
    distill: float,
    caption_template: str,
    holdout: float,
    swap: bool,
    swap_map: Path | None,
    epochs: int,
    steps_per_epoch: int,
    batch_size: int,
    lr: float,
    seed: int,
    unfreeze_last: int,
    tower_lr: float,
    out: Path | None,
    json_out: Path | None,
    cache_dir: Path | None,
    activate: bool,
) -> None:
    """Fine-tune ordo-lite's projection heads on your own entities (towers frozen)."""
    from ordo.training.features import DEFAULT_CACHE
    from ordo.training.finetune import FinetuneRun
    from ordo.training.trainer import FinetuneConfig

    if swap and swap_map:
        raise click.UsageError("give either --swap or --swap-map, not both")
    model_dir = out or settings_or_fail().data_dir / "models" / name
    config = FinetuneConfig(
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        batch_size=batch_size,
        target_fraction=mix,
        distill=distill,
        lr=lr,
        seed=seed,
        unfreeze_last=unfreeze_last,
        tower_lr=tower_lr,
    )
    run = FinetuneRun(
        target=target,
        name=name,
        out=model_dir,
        background=background,
        background_split=background_split or None,
        background_limit=background_limit,
        background_eval=background_eval,
        template=caption_template,
        holdout=holdout,
        swap=swap,
        swap_map=swap_map,
        cache_dir=cache_dir or DEFAULT_CACHE,
        config=config,
    )
    report = _train_with_progress(run, epochs * steps_per_epoch)
    print_report(report)
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report, indent=2) + "\n")
    console.print(
        f"model [bold]{report['model_id']}[/bold] written to {report['model_dir']}; a new model version: "
        f"`ordo models activate {report['model_dir']}` re-embeds the collection with it and switches when done"
    )
    if activate:
        from ordo.cli.models import activate as activate_command

        click.get_current_context().invoke(activate_command, model=str(report["model_dir"]), no_wait=False)


def _train_with_progress(run: FinetuneRun, total_steps: int) -> dict[str, Any]:
    """:func:`run_finetune` under progress bars: one per feature set, then the training steps with their loss."""
    from ordo.training.finetune import run_finetune

    with progress_bar() as progress:
        bars: dict[str, Any] = {}

        def on_features(label: str, done: int, total: int) -> None:
            if label not in bars:
                bars[label] = progress.add_task(label, total=total, rate="")
            progress.update(bars[label], completed=done)

        train_bar = progress.add_task("training", total=total_steps, rate="", visible=False)

        def on_step(step: int, loss: float) -> None:
            progress.update(train_bar, completed=step, visible=True, rate=f"loss {loss:.3f}")

        try:
            return run_finetune(run, on_features=on_features, on_step=on_step)
        except OrdoError as exc:
            raise click.ClickException(str(exc)) from exc


def print_report(report: dict[str, Any]) -> None:
    """The seed's before/after table."""
    table = Table(
        "set",
        "cosine before",
        "cosine after",
        "change",
        "t2i R@1 before",
        "after",
        "i2t R@1 before",
        "after",
        title=f"{report['name']}: image–caption cosine and retrieval, before → after",
    )
    for name, before in report["before"].items():
        after = report["after"][name]
        change = 100.0 * (after["cosine"] - before["cosine"]) / abs(before["cosine"]) if before["cosine"] else 0.0
        table.add_row(
            name,
            f"{before['cosine']:.4f}",
            f"{after['cosine']:.4f}",
            f"{change:+.1f}%",
            f"{before['t2i_R@1']:.1f}",
            f"{after['t2i_R@1']:.1f}",
            f"{before['i2t_R@1']:.1f}",
            f"{after['i2t_R@1']:.1f}",
        )
    out.print(table)
    out.print(
        f"trained {len(report['loss_per_epoch'])} epochs in {report['train_seconds']:.1f} s; "
        f"loss {report['loss_per_epoch'][0]:.3f} → {report['loss_per_epoch'][-1]:.3f}"
    )
