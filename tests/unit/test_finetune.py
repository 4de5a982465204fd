"""`ordo finetune`'s core: the loss, the trainer on real photos, entity swap, holdout, and the model directory
loading through the embedder factory."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ordo.embedding import ordo_lite
from ordo.embedding.factory import create_embedder
from ordo.errors import InvalidInput
from ordo.training.entity_swap import apply_swap, builtin_swap_map, load_swap_map
from ordo.training.features import Encoded, FeatureCache, encode
from ordo.training.measure import measure
from ordo.training.model_dir import save_model
from ordo.training.pairs import Pair, read_background, read_target, split_holdout
from ordo.training.tower_tail import TowerTail
from ordo.training.train_heads import Heads, Recipe
from ordo.training.trainer import FinetuneConfig, batch_loss, load_base_heads, sample_batch, symmetric_clip_loss, train
from tests.fixtures.datasets import DATASETS, dataset_records

# ------------------------------------------------------------------ loss


def test_symmetric_clip_loss_known_values() -> None:
    eye = torch.eye(2)
    # logits = [[1, 0], [0, 1]] at scale 1: each row's loss is -log(e / (e + 1)) = log(1 + 1/e).
    expected = math.log(1 + math.exp(-1))
    assert float(symmetric_clip_loss(eye, eye, torch.tensor(0.0))) == pytest.approx(expected, abs=1e-6)
    # Swapping the pairs makes every positive the worse logit: log(1 + e).
    swapped = eye[[1, 0]]
    assert float(symmetric_clip_loss(eye, swapped, torch.tensor(0.0))) == pytest.approx(math.log(1 + math.e), abs=1e-6)
    # Asymmetric case: image→text and text→image differ, the loss is their mean.
    image = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    text = torch.eye(2)
    logits = image @ text.T
    rows = -torch.log_softmax(logits, dim=1).diagonal().mean()
    cols = -torch.log_softmax(logits, dim=0).diagonal().mean()
    value = symmetric_clip_loss(image, text, torch.tensor(0.0))
    assert float(value) == pytest.approx(float(0.5 * (rows + cols)), abs=1e-6)
    assert float(rows) != pytest.approx(float(cols))


def test_batch_loss_matches_the_trainers_loss() -> None:
    """Fine-tuning optimises exactly what train_heads optimised (same heads, same clamp)."""
    torch.manual_seed(0)
    heads = Heads(Recipe(dim=8, input_dropout=0.0)).eval()
    image, text = torch.randn(5, ordo_lite.IMAGE_FEATURE_DIM), torch.randn(5, ordo_lite.TEXT_FEATURE_DIM)
    with torch.no_grad():
        heads.logit_scale.fill_(math.log(500.0))  # above the clamp at 100
        assert float(batch_loss(heads, image, text)) == pytest.approx(float(heads.loss(image, text)))


# ------------------------------------------------------------------ swap and holdout


def test_builtin_swap_is_deterministic_and_applied() -> None:
    names = ["George W Bush", "Colin Powell", "Tony Blair"]
    first = builtin_swap_map(names)
    assert first == builtin_swap_map(list(reversed(names)))  # order does not matter
    assert set(first) == set(names) and not set(first.values()) & set(names)
    assert len(set(first.values())) == 3
    assert len(first["George W Bush"].split()) == 3 and len(first["George W Bush"].split()[1]) == 1
    pairs = [
        Pair(Path("a.jpg"), ("a photo of Colin Powell",), "Colin Powell"),
        Pair(Path("b.jpg"), ("Colin Powellson and Tony Blair",), "x"),
    ]
    swapped = apply_swap(pairs, first)
    assert swapped[0].captions == (f"a photo of {first['Colin Powell']}",)
    assert swapped[0].group == first["Colin Powell"]
    # Whole words only: "Colin Powellson" is another name.
    assert swapped[1].captions == (f"Colin Powellson and {first['Tony Blair']}",)


def test_swap_map_file_is_checked(tmp_path: Path) -> None:
    good = tmp_path / "map.json"
    good.write_text(json.dumps({"Tony Blair": "Ravel Dorquin"}))
    assert load_swap_map(good) == {"Tony Blair": "Ravel Dorquin"}
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(InvalidInput, match="JSON object"):
        load_swap_map(bad)


def test_holdout_keeps_every_label_on_both_sides() -> None:
    pairs = [Pair(Path(f"{g}/{i}.jpg"), (g,), g) for g in "ab" for i in range(8)]
    pairs.append(Pair(Path("c/0.jpg"), ("c",), "c"))  # a single image stays in training
    kept, held = split_holdout(pairs, 0.25)
    assert sorted(p.group for p in held) == ["a", "a", "b", "b"]
    assert len(kept) == 13 and {p.group for p in kept} == {"a", "b", "c"}
    assert split_holdout(pairs, 0.25) == (kept, held)  # deterministic


def test_labels_become_captions_through_the_template() -> None:
    pairs = read_target(DATASETS / "lfw-top40", "a photo of {name}")
    assert pairs[0].captions == ("a photo of George W Bush",) and pairs[0].group == "George W Bush"
    with pytest.raises(InvalidInput, match="name"):
        read_target(DATASETS / "lfw-top40", "a photo of {}")


# ------------------------------------------------------------------ the trainer on real photos


@pytest.fixture(scope="module")
def small_sets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Encoded, Encoded]:
    """4 people x 3 LFW photos (swapped names) and 12 COCO photos with captions, as cached tower features."""
    records = dataset_records("lfw-top40", "labels.jsonl")
    people: dict[str, list[dict]] = {}
    for record in records:
        people.setdefault(record["label"], []).append(record)
    chosen = [r for name in sorted(people)[:4] for r in people[name][:3]]
    target = [Pair(DATASETS / "lfw-top40" / r["file"], (f"a photo of {r['label']}",), r["label"]) for r in chosen]
    target = apply_swap(target, builtin_swap_map([p.group for p in target]))
    background = read_background(DATASETS / "coco-captions-mini", None, 12)
    cache = FeatureCache(tmp_path_factory.mktemp("features"))
    return encode(target, cache), encode(background, cache)


def test_a_few_trainer_steps_decrease_the_loss(small_sets: tuple, tmp_path: Path) -> None:
    target, background = small_sets
    assert target.image.shape == (12, ordo_lite.IMAGE_FEATURE_DIM) and len(target.captions) == 4
    config = FinetuneConfig(epochs=6, steps_per_epoch=5, batch_size=12, target_fraction=0.34, lr=1e-3)
    heads = load_base_heads(ordo_lite.HEADS_DIR, 0.0, config.max_logit_scale)
    before = measure(heads, target)
    history = train(heads, target, background, config, checkpoint_dir=tmp_path / "ckpt")
    after = measure(heads, target)
    assert history[-1] < history[0] * 0.8, history
    assert after["cosine"] > before["cosine"]
    assert after["i2t_R@1"] >= before["i2t_R@1"]
    assert (tmp_path / "ckpt" / "last.pt").is_file()


def test_batches_never_repeat_a_target_label(small_sets: tuple) -> None:
    import random

    target, background = small_sets
    config = FinetuneConfig(batch_size=8, target_fraction=0.5)
    images, texts = sample_batch(target, background, config, random.Random(0))
    target_rows = images[images < len(target.image)]
    assert len(target_rows) == 4 and len(set(target.group[target_rows].tolist())) == 4
    assert len(images) == len(texts) == 8
    assert (texts[: len(target_rows)] < len(target.text)).all() and (
        texts[len(target_rows) :] >= len(target.text)
    ).all()


def test_output_directory_loads_through_the_factory(small_sets: tuple, tmp_path: Path) -> None:
    target, background = small_sets
    heads = load_base_heads(ordo_lite.HEADS_DIR, 0.0, 100.0)
    config = FinetuneConfig(epochs=1, steps_per_epoch=2, batch_size=8, target_fraction=0.5, lr=1e-3)
    train(heads, target, background, config)
    metrics = measure(heads, target)
    report = {
        "base_model": "ordo-lite-v1",
        "before": {"target": metrics},
        "after": {"target": metrics},
        "config": {},
        "data": {"target": "t", "background": "b", "swap": "built-in"},
    }
    model_id, out = save_model(heads, tmp_path / "people", "My People", ordo_lite.HEADS_DIR, report)
    assert model_id.startswith("ordo-lite-ft-my-people-") and len(model_id) == len("ordo-lite-ft-my-people-") + 8
    assert json.loads((out / "ordo_model.json").read_text())["model_id"] == model_id
    assert (out / "MODEL_CARD.md").read_text().startswith(f"# {model_id}")

    tuned = create_embedder(str(out))
    assert isinstance(tuned, ordo_lite.OrdoLiteEmbedder) and tuned.model_id == model_id
    base = ordo_lite.OrdoLiteEmbedder()
    texts = ["a photo of a dog", target.captions[0]]
    tuned_vectors, base_vectors = tuned.embed_texts(texts), base.embed_texts(texts)
    np.testing.assert_allclose(np.linalg.norm(tuned_vectors, axis=1), 1.0, atol=1e-5)
    # The fine-tuned heads are what the embedder uses: its vectors are the trained heads' projections.
    with torch.no_grad():
        expected = heads.encode_text(torch.from_numpy(ordo_lite.text_features(base._text_tower, texts))).numpy()
    np.testing.assert_allclose(tuned_vectors, expected, atol=1e-5)
    assert not np.allclose(tuned_vectors, base_vectors, atol=1e-3)
    # A directory without ordo_model.json is not mistaken for one.
    assert not ordo_lite.is_model_dir(str(tmp_path))

    # It is a model version: activating it gives it its own collection and makes it serve.
    from ordo.app import AppContext
    from ordo.config import Settings, collection_for
    from ordo.domain import JobState

    ctx = AppContext(Settings(data_dir=tmp_path / "data", model="random-clip:tiny"))
    try:
        version, job = ctx.activate_model(str(out))
        assert (version.model_id, version.collection) == (model_id, collection_for(str(out)))
        assert job.state is JobState.SUCCEEDED  # nothing stored yet: the flip is immediate
        assert ctx.active_version().model == str(out) and ctx.load_embedder().model_id == model_id
    finally:
        ctx.close()


def test_unfrozen_tower_tail_trains_and_loads(tmp_path: Path) -> None:
    """--unfreeze-last: the tail on cached activations reproduces the frozen features, trains, and the saved
    model directory loads with the fine-tuned blocks (its image vectors follow the trained tail)."""
    from PIL import Image

    records = dataset_records("lfw-top40", "labels.jsonl")
    people: dict[str, list[dict]] = {}
    for record in records:
        people.setdefault(record["label"], []).append(record)
    chosen = [r for name in sorted(people)[:3] for r in people[name][:2]]
    pairs = [Pair(DATASETS / "lfw-top40" / r["file"], (f"a photo of {r['label']}",), r["label"]) for r in chosen]
    cache = FeatureCache(tmp_path / "features")
    data = encode(pairs, cache, unfreeze=1)
    assert data.activations is not None and data.activations.shape[:2] == (6, 208)
    tail = TowerTail(cache._image_tower or ordo_lite.load_image_tower(), 1)
    # Before training the tail is the frozen tower: same features (up to the float16 cache).
    np.testing.assert_allclose(tail.features(data.activations), data.image, atol=0.05, rtol=0.02)
    heads = load_base_heads(ordo_lite.HEADS_DIR, 0.0, 100.0)
    config = FinetuneConfig(epochs=3, steps_per_epoch=3, batch_size=3, lr=1e-3, tower_lr=1e-3, unfreeze_last=1)
    block_before = tail.blocks[0]._project_conv.weight.detach().clone()
    history = train(heads, data, None, config, tail=tail)
    assert history[-1] < history[0]
    assert not torch.equal(block_before, tail.blocks[0]._project_conv.weight)
    report = {
        "base_model": "ordo-lite-v1",
        "before": {"t": measure(heads, data, tail)},
        "after": {"t": measure(heads, data, tail)},
        "config": {"unfreeze_last": 1},
        "data": {"target": "t", "background": "none", "swap": "none"},
    }
    model_id, out = save_model(heads, tmp_path / "tail", "tail", ordo_lite.HEADS_DIR, report, tail)
    assert (out / "image_tower_tail.safetensors").is_file()
    assert json.loads((out / "ordo_model.json").read_text())["unfrozen_image_blocks"] == 1
    tuned = create_embedder(str(out))
    assert tuned.model_id == model_id
    photo = Image.open(pairs[0].path).convert("RGB")
    with torch.no_grad():
        expected = heads.encode_image(torch.from_numpy(tail.features(data.activations[:1]))).numpy()
    np.testing.assert_allclose(tuned.embed_images([photo]), expected, atol=0.02)


def test_finetune_command_writes_a_model_and_the_seeds_table(tmp_path: Path) -> None:
    """`ordo finetune` end to end on a tiny target (labels → captions, swapped names) and background."""
    from click.testing import CliRunner

    from ordo.cli.finetune import finetune as command

    labels = dataset_records("lfw-top40", "labels.jsonl")
    people: dict[str, list[dict]] = {}
    for record in labels:
        people.setdefault(record["label"], []).append(record)
    target = tmp_path / "people"
    target.mkdir()
    chosen = [r for name in sorted(people)[:3] for r in people[name][:4]]
    (target / "labels.jsonl").write_text(
        "\n".join(json.dumps({**r, "file": str(DATASETS / "lfw-top40" / r["file"])}) for r in chosen)
    )
    background = tmp_path / "background"
    background.mkdir()
    captions = dataset_records("coco-captions-mini", "captions.jsonl")[:8]
    (background / "captions.jsonl").write_text(
        "\n".join(json.dumps({**r, "file": str(DATASETS / "coco-captions-mini" / r["file"])}) for r in captions)
    )
    out = tmp_path / "model"
    args = ["--target", str(target), "--name", "people", "--background", str(background), "--background-split", ""]
    args += ["--background-eval", str(background), "--swap", "--epochs", "2", "--steps-per-epoch", "3"]
    args += ["--batch-size", "8", "--mix", "0.5", "--out", str(out), "--cache-dir", str(tmp_path / "cache")]
    args += ["--json-out", str(tmp_path / "report.json")]
    result = CliRunner().invoke(command, args)
    assert result.exit_code == 0, result.output
    assert "trained 2 epochs" in result.output and "ordo models activate" in result.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report["before"]) == set(report["after"]) == {"target (held out)", "background"}
    assert len(report["swap_map"]) == 3 and report["data"]["swap"] == "built-in"
    assert "3 held out" in report["data"]["target"]  # one of each person's 4 photos
    descriptor = json.loads((out / "ordo_model.json").read_text())
    assert descriptor["model_id"] == report["model_id"] and (out / "checkpoints" / "last.pt").is_file()
    assert ordo_lite.is_model_dir(str(out))
