"""ImageNet evidence for cluster names (``ordo.analysis.concepts``): the class table's basic-level names, the
pseudo-inverse map, and ordo-lite naming pure clusters of real COCO photos from its image tower's classifier."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from ordo.analysis import concepts
from ordo.analysis.imagenet_build import SUPERORDINATES
from ordo.analysis.lexicon import matches
from ordo.analysis.naming import ClusterName, with_concepts
from tests.fixtures.datasets import DATASETS, dataset_records


def _basic(name: str) -> str:
    return next(c.basic for c in concepts.classes() if c.name == name)


def test_class_table_maps_imagenet_classes_to_basic_level_nouns() -> None:
    table = concepts.classes()
    assert len(table) == 1000 and table[0].wnid == "n01440764"  # classifier order: sorted WordNet ids
    expected = {
        "golden retriever": "dog",
        "chihuahua": "dog",
        "siberian husky": "dog",
        "tabby": "cat",
        "sorrel": "horse",
        "airliner": "airplane",
        "convertible": "car",
        "sports car": "car",
        "pickup": "truck",
        "fire engine": "truck",
        "container ship": "ship",
        "tree frog": "frog",
        "bullfrog": "frog",
        "zebra": "zebra",  # an everyday noun itself: not "mammal"
        "pizza": "pizza",  # not "dish": the parent is not much more frequent
        # never a superordinate (imagenet_build.SUPERORDINATES): the frequency climb used to reach one
        "ski": "ski",  # was "device"
        "remote control": "remote control",  # was "device"
        "broccoli": "broccoli",  # was "vegetable"
        "table lamp": "lamp",  # was "furniture"
        "motor scooter": "scooter",  # was "vehicle"
        "sea urchin": "sea urchin",  # was "animal"
        "house finch": "bird",  # a life form stays basic
    }
    assert {name: _basic(name) for name in expected} == expected
    assert not {c.basic for c in table} & SUPERORDINATES
    assert not any(c.basic == "deer" for c in table)  # ImageNet-1k has no deer class
    # each class carries what it is a kind of (WordNet hypernyms)
    assert "dog" in next(c for c in table if c.name == "golden retriever").kinds


def test_basic_evidence_sums_classes_sharing_a_name() -> None:
    names, index = concepts.basic_names()
    evidence = np.zeros((1, 1000))
    breeds = [i for i, c in enumerate(concepts.classes()) if c.basic == "dog"][:5]
    evidence[0, breeds] = 0.1
    evidence[0, next(i for i, c in enumerate(concepts.classes()) if c.name == "tabby")] = 0.3
    basic = concepts.basic_evidence(evidence)
    assert names[int(basic[0].argmax())] == "dog" and basic[0].max() == pytest.approx(0.5)
    assert index.shape == (1000,)


def test_pseudo_inverse_recovers_the_classifier_when_the_head_keeps_everything() -> None:
    rng = np.random.default_rng(0)
    features, dim = 12, 12  # a square, invertible head: nothing is lost, logits come back exactly
    w, b = rng.normal(size=(dim, features)), rng.normal(size=dim)
    c, cb = rng.normal(size=(1000, features)), rng.normal(size=1000)
    p = rng.normal(size=(3, features))
    y = p @ w.T + b
    norms = np.linalg.norm(y, axis=1)
    for row, norm in zip(y, norms, strict=True):
        head = concepts.ConceptHead.from_linear_heads(w, b, c, cb, float(norm))
        logits = head.scale * (row / norm) @ head.matrix.T.astype(np.float64) + head.bias
        true = c @ np.linalg.solve(w, row - b) + cb
        np.testing.assert_allclose(logits, true, rtol=1e-3, atol=1e-3)


def test_contrast_removes_what_every_cluster_shares() -> None:
    evidence = np.array([[0.6, 0.4], [0.2, 0.4]])
    shared = concepts.CONTRAST * np.array([0.4, 0.4])
    np.testing.assert_allclose(concepts.contrasted(evidence), evidence - shared)
    assert concepts.contrasted(evidence)[1, 0] < concepts.contrasted(evidence)[0, 0]
    np.testing.assert_array_equal(concepts.contrasted(evidence[:1]), evidence[:1])


def _class(name: str) -> int:
    return next(i for i, c in enumerate(concepts.classes()) if c.name == name)


def _named_by_hand(axis0: dict[str, float], axis1: dict[str, float]) -> list[ClusterName]:
    """Three clusters named by a head whose logits are set by hand: ``axisN`` maps ImageNet classes to the logit
    a member along axis N gives them. Clusters, largest first: 3 members along axis 0, 3 along axis 1, 2 along
    axis 0. Their text-tower names are placeholders ("text0", "more0", ...)."""
    matrix = np.zeros((1000, 2), dtype=np.float32)
    for column, logits in enumerate((axis0, axis1)):
        for name, logit in logits.items():
            matrix[_class(name), column] = logit
    head = concepts.ConceptHead(matrix, np.zeros(1000, dtype=np.float32), 1.0)
    axis = np.eye(2, dtype=np.float32)
    members = [np.repeat(axis[:1], 3, axis=0), np.repeat(axis[1:], 3, axis=0), np.repeat(axis[:1], 2, axis=0)]
    text = [ClusterName(name=f"text{i}", terms=[f"text{i}", f"more{i}"], scores=[0.0, 0.0]) for i in range(3)]
    return with_concepts(text, head, members, top_n=5)


def test_names_come_with_runner_up_basic_names_and_stay_distinct() -> None:
    """Members along axis 0 lean truck > car > airplane, along axis 1 are golden retrievers. The name is the best
    basic name, the next ones lead the top terms, then the best class, then the text's terms; a second truck-like
    cluster takes the next basic name instead of repeating "truck"."""
    # the retrievers' logit is sure enough that their other classes fall below the average
    named = _named_by_hand({"pickup": 5.0, "sports car": 4.5, "airliner": 4.0}, {"golden retriever": 10.0})
    assert [n.name for n in named] == ["truck", "dog", "car"]
    assert named[0].terms == [*["car", "airplane"][: concepts.ALTERNATIVES], "pickup", "text0", "more0"]
    assert named[1].terms == ["golden retriever", "text1", "more1"]  # no other basic name above the average
    assert named[2].terms[:2] == ["truck", "airplane"]


def test_a_cluster_whose_basic_names_are_taken_is_named_by_its_best_class() -> None:
    """Two clusters of golden retrievers and one of tabbies: the larger dog cluster is "dog"; the second, whose
    only basic name is taken, is "golden retriever" with "dog" leading its terms, not the text tower's name
    (which on cifar10-2k was often an abstract noun such as "misfortune")."""
    named = _named_by_hand({"golden retriever": 10.0}, {"tabby": 10.0})
    assert [n.name for n in named] == ["dog", "cat", "golden retriever"]
    assert named[2].terms == ["dog", "text2", "more2"]
    assert any(matches(t, "dog") for t in named[2].terms[:3])


def _photos(category: str, others: tuple[str, ...], n: int = 6) -> list[Image.Image]:
    records = dataset_records("coco-captions-mini", "captions.jsonl")
    files = [
        DATASETS / "coco-captions-mini" / r["file"]
        for r in records
        if category in r.get("objects", []) and not set(others) & set(r.get("objects", []))
    ]
    assert len(files) >= 3, f"too few COCO photos of {category}"
    return [Image.open(p).convert("RGB") for p in files[:n]]


@pytest.mark.timeout(120)
def test_ordo_lite_names_pure_clusters_of_real_photos_from_imagenet_evidence() -> None:
    """Three pure clusters of real COCO photos (zebras, pizzas, buses): the image tower's evidence, read back
    from the stored vectors alone, names each correctly, overruling placeholder text-tower names."""
    from ordo.embedding.ordo_lite import OrdoLiteEmbedder

    embedder = OrdoLiteEmbedder()
    head = embedder.concept_head()
    assert head is not None and head.matrix.shape == (1000, embedder.dim)
    categories = ("zebra", "pizza", "bus")
    members = [
        embedder.embed_images(_photos(c, tuple(o for o in (*categories, "giraffe") if o != c))) for c in categories
    ]
    placeholders = [ClusterName(name=f"text{i}", terms=[f"text{i}"], scores=[0.0]) for i in range(3)]
    named = with_concepts(placeholders, head, members, top_n=5)
    record = json.dumps([n.__dict__ for n in named])  # what the model said, shown on failure
    for name, category in zip(named, categories, strict=True):
        assert any(matches(t, category) for t in [name.name, *name.terms[:3]]), record
    assert len({n.name for n in named}) == 3, record
