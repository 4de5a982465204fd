"""Near-duplicate groups found through a real Qdrant Edge index (k-NN queries + union-find), never all pairs.

Two kinds of data: constructed vectors with planted near-duplicates (same vector + tiny noise), so the exact
groups are known; and real COCO photos embedded by ordo-lite, where a resized, re-encoded copy of a photo must
group with its original while unrelated photos stay apart.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ordo.adapters.edge_index import EdgeVectorIndex
from ordo.analysis.duplicates import DuplicateGroup, find_duplicate_groups
from ordo.domain import Filter, SampleKind, VectorPoint
from ordo.errors import InvalidInput
from ordo.ids import asset_id_for, sample_id_for

DIM = 64


def _asset(i: int) -> str:
    return asset_id_for(f"asset-{i}".encode())


def _points(vectors: np.ndarray, assets: list[str], source: str = "s3://a/") -> list[VectorPoint]:
    return [
        VectorPoint(
            id=sample_id_for(asset, SampleKind.IMAGE),
            vector=[float(x) for x in vector],
            payload={"asset_id": asset, "kind": "image", "source_uri": f"{source}{asset[:8]}.jpg"},
        )
        for vector, asset in zip(vectors, assets, strict=True)
    ]


@pytest.fixture
def planted(tmp_path: Path) -> tuple[EdgeVectorIndex, list[set[str]]]:
    """200 random unit vectors; among them 3 planted groups (sizes 2, 3 and 20) of vector + tiny noise."""
    rng = np.random.default_rng(7)
    base = rng.normal(size=(200, DIM))
    groups = [list(range(0, 2)), list(range(10, 13)), list(range(50, 70))]
    for members in groups:
        for i in members[1:]:
            base[i] = base[members[0]] + 0.01 * rng.normal(size=DIM)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    assets = [_asset(i) for i in range(200)]
    # First half from one source, second half from another: lets a filter split a group.
    points = _points(base[:100], assets[:100], "s3://a/") + _points(base[100:], assets[100:], "s3://b/")
    index = EdgeVectorIndex(tmp_path / "vectors")
    index.ensure_collection(DIM)
    index.upsert(points)
    yield index, [{assets[i] for i in members} for members in groups]
    index.close()


def test_planted_groups_are_found_exactly_largest_first(planted: tuple[EdgeVectorIndex, list[set[str]]]) -> None:
    index, truth = planted
    seen: list[int] = []
    # k=4 < 19: the 20-member group can only come out whole through union-find's transitivity.
    groups = find_duplicate_groups(index, None, 0.95, k=4, batch=64, progress=seen.append)
    assert [set(g.asset_ids) for g in groups] == [truth[2], truth[1], truth[0]]
    assert all(g.asset_ids == sorted(g.asset_ids) for g in groups)
    assert all(0.95 <= g.min_similarity < 1.0 for g in groups)
    assert seen[-1] == 200 and seen == sorted(seen)
    # Deterministic: the same index gives the same answer.
    assert find_duplicate_groups(index, None, 0.95, k=4, batch=64) == groups


def test_threshold_and_filter_bound_the_groups(planted: tuple[EdgeVectorIndex, list[set[str]]]) -> None:
    index, truth = planted
    # Random 64-d vectors are ~0 apart; at 0.5 nothing unplanted joins, at 0.99999 the noisy copies drop out.
    assert [set(g.asset_ids) for g in find_duplicate_groups(index, None, 0.5)] == [truth[2], truth[1], truth[0]]
    assert find_duplicate_groups(index, None, 0.99999) == []
    # Only source b (assets 100..199) is read and searched: the planted groups all live in source a.
    assert find_duplicate_groups(index, Filter(source_uri_prefix="s3://b/"), 0.95) == []
    only_a = find_duplicate_groups(index, Filter(source_uri_prefix="s3://a/"), 0.95)
    assert len(only_a) == 3


def test_samples_of_one_asset_do_not_make_a_group(tmp_path: Path) -> None:
    """Two samples (image + object crop) of the same asset are not a near-duplicate pair."""
    rng = np.random.default_rng(1)
    vector = rng.normal(size=DIM)
    vector /= np.linalg.norm(vector)
    asset = _asset(1)
    with EdgeVectorIndex(tmp_path / "v") as index:
        index.ensure_collection(DIM)
        index.upsert(
            [
                VectorPoint(sample_id_for(asset, SampleKind.IMAGE), list(map(float, vector)), {"asset_id": asset}),
                VectorPoint(sample_id_for(asset, SampleKind.OBJECT), list(map(float, vector)), {"asset_id": asset}),
            ]
        )
        assert find_duplicate_groups(index, None, 0.9) == []


def test_empty_index_and_bad_parameters(tmp_path: Path) -> None:
    with EdgeVectorIndex(tmp_path / "empty") as index:
        assert find_duplicate_groups(index, None, 0.9) == []
        for bad in (0.0, -0.5, 1.5, float("nan")):
            with pytest.raises(InvalidInput, match="min_similarity"):
                find_duplicate_groups(index, None, bad)
        with pytest.raises(InvalidInput, match="k must be"):
            find_duplicate_groups(index, None, 0.9, k=0)
        with pytest.raises(InvalidInput, match="batch must be"):
            find_duplicate_groups(index, None, 0.9, batch=0)


def _reencoded(path: Path) -> Image.Image:
    """A resized (3/4 size), JPEG-recompressed (quality 90) copy: different bytes, same picture.

    ordo-lite is not very invariant to heavy re-encoding (half size at quality 60 drops some photos to 0.75
    cosine, as close as two unrelated COCO photos can be), so the copy is the kind a phone or a web upload makes.
    """
    image = Image.open(path).convert("RGB")
    image = image.resize((image.width * 3 // 4, image.height * 3 // 4), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def test_real_photo_and_its_reencoded_copy_group_unrelated_photos_do_not(
    coco_images: list[Path], tmp_path: Path
) -> None:
    from ordo.embedding.ordo_lite import OrdoLiteEmbedder

    embedder = OrdoLiteEmbedder()
    embedder.load()
    originals = coco_images[:8]
    images = [Image.open(p).convert("RGB") for p in originals] + [_reencoded(originals[0]), _reencoded(originals[3])]
    vectors = embedder.embed_images(images)
    assets = [asset_id_for(p.read_bytes()) for p in originals] + [_asset(900), _asset(901)]
    with EdgeVectorIndex(tmp_path / "photos") as index:
        index.ensure_collection(vectors.shape[1])
        index.upsert(_points(vectors, assets))
        groups = find_duplicate_groups(index, None, 0.9)
    assert {frozenset(g.asset_ids) for g in groups} == {
        frozenset({assets[0], assets[8]}),
        frozenset({assets[3], assets[9]}),
    }
    assert all(isinstance(g, DuplicateGroup) and g.min_similarity >= 0.9 for g in groups)
    # The margin is real: unrelated photos sit far below the threshold.
    similarity = vectors[:8] @ vectors[:8].T
    assert similarity[~np.eye(8, dtype=bool)].max() < 0.85
