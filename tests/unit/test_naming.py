"""Cluster names from the text tower: the built-in vocabulary, the contrastive ranking, distinct names, the cache.

Real model: ordo-lite (the bundled offline model) names clusters of real COCO photos. Constructed vectors
(a toy "text encoder" whose embeddings are known) pin down the ranking rules exactly.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ordo.analysis import prompt_cache
from ordo.analysis.naming import (
    DEFAULT_PROMPT,
    ClusterName,
    builtin_vocabulary,
    clear_prompt_cache,
    name_clusters,
    parse_vocabulary,
    prompt_embeddings,
)
from ordo.errors import InvalidInput
from tests.fixtures.datasets import DATASETS, dataset_records

DIM = 16


# ------------------------------------------------------------------------------------------ vocabulary
def test_builtin_vocabulary_is_large_clean_and_covers_everyday_concepts() -> None:
    terms = builtin_vocabulary()
    assert len(terms) >= 2000
    assert len(set(terms)) == len(terms)
    assert all(t == t.lower().strip() and t and not t.startswith("#") for t in terms)
    for concept in ("dog", "cat", "pizza", "beach", "wedding", "skiing", "train", "birthday party", "kitchen"):
        assert concept in terms


def test_parse_vocabulary_skips_comments_blanks_and_repeats() -> None:
    assert parse_vocabulary("# header\n\ndog\n cat \ndog\n#x\n") == ("dog", "cat")


# ------------------------------------------------------------------------------------------ constructed
class ToyEncoder:
    """Each known term is an orthonormal axis; the template ("a ... of {}") is ignored. Counts prompts encoded."""

    def __init__(self, terms: list[str]) -> None:
        self.axes = {t: np.eye(DIM, dtype=np.float32)[i] for i, t in enumerate(terms)}
        self.calls = 0
        self.prompts = 0

    def __call__(self, prompts: list[str]) -> np.ndarray:
        self.calls += 1
        self.prompts += len(prompts)
        return np.stack([self.axes[_term(p)] for p in prompts])


TERMS = ["photograph", "dog", "puppy", "cat", "beach", "car"]


def _term(prompt: str) -> str:
    """The term inside any of the prompt templates ("a photo of a {}.", "a close-up photo of the {}.")."""
    term = prompt.split(" of ", 1)[1].rstrip(".")
    for article in ("a ", "the "):
        term = term.removeprefix(article)
    return term


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def test_contrast_beats_a_term_every_cluster_shares() -> None:
    """Every centroid is closest to "photograph"; the specific term must win the name anyway."""
    enc = ToyEncoder(TERMS)
    e = {t: enc.axes[t] for t in TERMS}
    centroids = _unit(np.stack([0.8 * e["photograph"] + 0.6 * e["dog"], 0.8 * e["photograph"] + 0.6 * e["cat"]]))
    names = name_clusters(centroids, enc, vocabulary=TERMS, top_n=3)
    assert [n.name for n in names] == ["dog", "cat"]
    assert names[0].terms[0] == "dog" and "photograph" in names[0].terms
    assert names[0].scores == sorted(names[0].scores, reverse=True)
    assert all(isinstance(n, ClusterName) and len(n.terms) == len(n.scores) == 3 for n in names)


def test_single_cluster_uses_raw_similarity() -> None:
    enc = ToyEncoder(TERMS)
    centroid = _unit(0.8 * enc.axes["photograph"] + 0.6 * enc.axes["dog"])[None]
    [only] = name_clusters(centroid, enc, vocabulary=TERMS, top_n=2)
    assert only.name == "photograph" and only.terms == ["photograph", "dog"]
    assert only.scores == pytest.approx([0.8, 0.6], abs=1e-5)


def test_two_clusters_with_the_same_best_term_get_distinct_names() -> None:
    """Two dog clusters: the first (larger) keeps "dog", the second takes its next-best term."""
    enc = ToyEncoder(TERMS)
    e = {t: enc.axes[t] for t in TERMS}
    centroids = _unit(
        np.stack(
            [
                0.9 * e["dog"] + 0.3 * e["puppy"],
                0.8 * e["dog"] + 0.5 * e["puppy"],
                e["beach"] + 0.1 * e["car"],
            ]
        )
    )
    names = name_clusters(centroids, enc, vocabulary=TERMS, top_n=2)
    assert [n.name for n in names] == ["dog", "puppy", "beach"]
    assert names[1].terms[0] == "dog"  # the terms still tell the truth about what is closest


def test_members_evidence_names_what_members_are_confidently_not_the_hub_near_their_mean() -> None:
    """Every member is a photograph *of something*; their mean is nearest the hub term "photograph", but no member
    is best described by it: ranked on the members' evidence the name is what most members are ("dog")."""
    enc = ToyEncoder(TERMS)
    e = {t: enc.axes[t] for t in TERMS}
    dogs = [0.6 * e["photograph"] + 0.8 * e["dog"]] * 3
    members = _unit(np.stack(dogs + [0.6 * e["photograph"] + 0.8 * e["beach"]] * 2))
    centroid = _unit(members.mean(axis=0))[None]
    [by_centroid] = name_clusters(centroid, enc, vocabulary=TERMS, top_n=3)
    [by_members] = name_clusters(centroid, enc, members=[members], vocabulary=TERMS, top_n=3)
    assert by_centroid.name == "photograph"
    assert by_members.name == "dog" and by_members.terms[:2] == ["dog", "beach"]
    assert by_members.scores[0] == pytest.approx(0.6, abs=1e-3)  # 3 of 5 members are dogs (probability ~1 each)


def test_member_evidence_reads_a_bounded_sample_and_rejects_mismatched_sets() -> None:
    enc = ToyEncoder(TERMS)
    e = {t: enc.axes[t] for t in TERMS}
    many = _unit(np.stack([e["cat"] + 0.1 * e["car"]] * 5000))
    [named] = name_clusters(_unit(many[:1]), enc, members=[many], vocabulary=TERMS, top_n=1)
    assert named.name == "cat"
    with pytest.raises(InvalidInput):
        name_clusters(_unit(many[:2]), enc, members=[many], vocabulary=TERMS)


def test_basic_level_nouns_are_single_words_that_have_kinds() -> None:
    from ordo.analysis.lexicon import basic_level

    basic = basic_level()
    assert {"dog", "cat", "car", "bird", "truck", "airplane"} <= basic
    assert all(" " not in t for t in basic) and "golden retriever" not in basic
    assert 200 < len(basic) < 1500  # a few hundred everyday category nouns, not the whole lexicon


def test_builtin_vocabulary_names_at_the_basic_level_and_keeps_specific_terms(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the built-in vocabulary the name is the best basic-level noun ("dog" for a cluster of puppies),
    the top terms still the closest of all ("puppy" first); a caller's own vocabulary is named as given."""
    import ordo.analysis.naming as naming

    monkeypatch.setattr(naming, "builtin_vocabulary", lambda: tuple(TERMS))
    enc = ToyEncoder(TERMS)
    e = {t: enc.axes[t] for t in TERMS}
    centroids = _unit(np.stack([0.9 * e["puppy"] + 0.4 * e["dog"], e["car"] + 0.2 * e["beach"]]))
    builtin = name_clusters(centroids, enc, top_n=2)
    assert [n.name for n in builtin] == ["dog", "car"]
    assert builtin[0].terms[0] == "puppy"
    own = name_clusters(centroids, enc, vocabulary=TERMS, top_n=2)
    assert own[0].name == "puppy"


def test_prompt_embeddings_are_cached_in_memory_and_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(prompt_cache.SHARED_ENV, "off")  # the library's own folder alone (the machine's: below)
    clear_prompt_cache()
    enc = ToyEncoder(TERMS)
    first = prompt_embeddings(enc, TERMS, model_id="toy/v1", cache_dir=tmp_path)
    assert enc.prompts == len(TERMS)
    files = list(tmp_path.glob("vocab-toy_v1-*.npy"))
    assert len(files) == 1
    prompt_embeddings(enc, TERMS, model_id="toy/v1", cache_dir=tmp_path)
    assert enc.prompts == len(TERMS)  # memory hit
    clear_prompt_cache()
    again = prompt_embeddings(enc, TERMS, model_id="toy/v1", cache_dir=tmp_path)
    checked = len(prompt_cache.check_rows(len(TERMS)))  # a disk hit re-encodes only the check's prompts
    assert enc.prompts == len(TERMS) + checked and np.array_equal(first, again)
    # Another model, another template or another vocabulary is another key.
    prompt_embeddings(enc, TERMS, model_id="toy/v2", cache_dir=tmp_path)
    prompt_embeddings(enc, TERMS, model_id="toy/v1", cache_dir=tmp_path, prompt="a picture of {}")
    prompt_embeddings(enc, TERMS[:3], model_id="toy/v1", cache_dir=tmp_path)
    assert enc.prompts == 3 * len(TERMS) + checked + 3
    # A corrupt cache file is re-encoded, not trusted.
    clear_prompt_cache()
    files[0].write_bytes(b"not numpy")
    assert np.array_equal(prompt_embeddings(enc, TERMS, model_id="toy/v1", cache_dir=tmp_path), first)
    # Without a model id nothing is cached (there is no key).
    before = enc.prompts
    prompt_embeddings(enc, TERMS)
    prompt_embeddings(enc, TERMS)
    assert enc.prompts == before + 2 * len(TERMS)
    assert not list(tmp_path.glob(".vocab-*"))  # no temporary file left behind
    clear_prompt_cache()


class SeededEncoder:
    """A stand-in for a real text tower with ``weights``: each prompt's vector is a fixed random one, so two
    ``weights`` give unrelated vectors for the same prompt (a fine-tune under the same model id). Counts prompts."""

    def __init__(self, weights: int) -> None:
        self.weights = weights
        self.prompts = 0

    def __call__(self, prompts: list[str]) -> np.ndarray:
        self.prompts += len(prompts)
        seeds = [int(hashlib.sha256(f"{self.weights}:{p}".encode()).hexdigest()[:16], 16) for p in prompts]
        return np.stack([np.random.default_rng(seed).normal(size=DIM) for seed in seeds])


MANY = [f"term {i}" for i in range(200)]


def test_a_new_library_reads_the_machines_cache_after_a_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every new library (and every ``ordo eval`` scratch stack) used to encode the whole vocabulary; the
    machine's cache serves it after re-encoding ``CHECK_TERMS`` prompts, and the library keeps its own copy."""
    monkeypatch.setenv(prompt_cache.SHARED_ENV, str(tmp_path / "machine"))
    clear_prompt_cache()
    enc = SeededEncoder(weights=1)
    first = prompt_embeddings(enc, MANY, model_id="m", cache_dir=tmp_path / "library-a")
    assert enc.prompts == len(MANY)
    assert len(list((tmp_path / "machine").glob("vocab-m-*.npy"))) == 1
    clear_prompt_cache()  # another process
    again = prompt_embeddings(enc, MANY, model_id="m", cache_dir=tmp_path / "library-b")
    assert enc.prompts == len(MANY) + prompt_cache.CHECK_TERMS
    assert np.array_equal(first, again) and again.dtype == np.float32
    assert len(list((tmp_path / "library-b").glob("vocab-m-*.npy"))) == 1  # filled from the machine's copy
    clear_prompt_cache()
    monkeypatch.setenv(prompt_cache.SHARED_ENV, "off")
    prompt_embeddings(enc, MANY, model_id="m", cache_dir=tmp_path / "library-c")
    assert enc.prompts == 2 * len(MANY) + prompt_cache.CHECK_TERMS  # off: the machine's cache is not read
    assert len(list((tmp_path / "machine").glob("vocab-m-*.npy"))) == 1
    clear_prompt_cache()


def test_a_cache_written_by_other_weights_under_the_same_id_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A model id does not identify weights (a directory's basename; two fine-tunes of one name): the check
    catches the other weights' file, the vocabulary is encoded with these, and the file is replaced."""
    monkeypatch.setenv(prompt_cache.SHARED_ENV, str(tmp_path / "machine"))
    clear_prompt_cache()
    prompt_embeddings(SeededEncoder(weights=1), MANY, model_id="my-finetune", cache_dir=tmp_path / "a")
    clear_prompt_cache()
    other = SeededEncoder(weights=2)
    # The module's own logger, directly: an earlier test in the session may have configured Ordo's logging
    # (levels, propagation) so that nothing reaches the root logger, where caplog listens.
    caplog.set_level(logging.WARNING, logger=prompt_cache.logger.name)
    prompt_cache.logger.addHandler(caplog.handler)
    try:
        got = prompt_embeddings(other, MANY, model_id="my-finetune", cache_dir=tmp_path / "b")
    finally:
        prompt_cache.logger.removeHandler(caplog.handler)
    assert other.prompts == prompt_cache.CHECK_TERMS + len(MANY)  # checked, refused, encoded
    reference = other([DEFAULT_PROMPT.format(term) for term in MANY])
    reference /= np.linalg.norm(reference, axis=1, keepdims=True)
    assert np.allclose(got, reference, atol=1e-6)
    assert "written by other weights" in caplog.text
    clear_prompt_cache()
    counted = other.prompts
    assert np.allclose(prompt_embeddings(other, MANY, model_id="my-finetune", cache_dir=tmp_path / "b"), got)
    assert other.prompts == counted + prompt_cache.CHECK_TERMS  # the new file passes its check
    clear_prompt_cache()


def test_a_killed_writers_temporary_file_is_dropped_once_stale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kill between a write's create and rename leaves a ``.vocab-*`` file; the next write removes it once it
    is an hour old (a younger one may be another process's write in progress)."""
    monkeypatch.setenv(prompt_cache.SHARED_ENV, "off")
    stale, fresh = tmp_path / ".vocab-killed.npy", tmp_path / ".vocab-writing.npy"
    for leftover in (stale, fresh):
        leftover.write_bytes(b"half a file")
    os.utime(stale, (time.time() - 2 * prompt_cache.STALE_TEMPORARY_S,) * 2)
    clear_prompt_cache()
    prompt_embeddings(SeededEncoder(weights=1), MANY, model_id="m", cache_dir=tmp_path)
    assert not stale.exists() and fresh.exists()
    assert len(list(tmp_path.glob("vocab-m-*.npy"))) == 1
    clear_prompt_cache()


def test_an_unwritable_machine_cache_costs_speed_not_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder should be")
    monkeypatch.setenv(prompt_cache.SHARED_ENV, str(blocked))
    clear_prompt_cache()
    enc = SeededEncoder(weights=1)
    got = prompt_embeddings(enc, MANY, model_id="m", cache_dir=tmp_path / "library")
    assert got.shape == (len(MANY), DIM) and np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert len(list((tmp_path / "library").glob("vocab-m-*.npy"))) == 1
    clear_prompt_cache()


def test_bad_input_is_refused() -> None:
    enc = ToyEncoder(TERMS)
    good = _unit(np.ones((1, DIM)))
    with pytest.raises(InvalidInput, match="top_n"):
        name_clusters(good, enc, vocabulary=TERMS, top_n=0)
    with pytest.raises(InvalidInput, match="prompt"):
        name_clusters(good, enc, vocabulary=TERMS, prompt="no placeholder")
    with pytest.raises(InvalidInput, match="vocabulary is empty"):
        name_clusters(good, enc, vocabulary=[])
    with pytest.raises(InvalidInput, match="dimension mismatch"):
        name_clusters(_unit(np.ones((1, DIM + 1))), enc, vocabulary=TERMS)
    with pytest.raises(InvalidInput, match="NaN"):
        name_clusters(np.full((1, DIM), np.nan), enc, vocabulary=TERMS)


# ------------------------------------------------------------------------------------------ real model
DOGGISH = ("dog", "puppy", "poodle", "terrier", "retriever", "spaniel", "hound", "pet", "collie", "shepherd")
TRAINISH = ("train", "railroad", "railway", "locomotive", "subway", "tram", "streetcar")
PLANEISH = ("airplane", "airliner", "jet", "aircraft", "plane", "airfield", "runway", "airport")


def _photos_of(category: str, exclude: tuple[str, ...], n: int = 4) -> list[Path]:
    records = dataset_records("coco-captions-mini", "captions.jsonl")
    chosen = [
        DATASETS / "coco-captions-mini" / r["file"]
        for r in records
        if category in r.get("objects", []) and not set(exclude) & set(r.get("objects", []))
    ]
    assert len(chosen) >= n, f"too few COCO photos of {category}"
    return chosen[:n]


@pytest.mark.slow
@pytest.mark.timeout(900)  # encodes the whole vocabulary (5,160 terms x 2 prompts) with the text tower
def test_ordo_lite_names_real_photo_clusters(tmp_path: Path) -> None:
    from ordo.embedding.ordo_lite import OrdoLiteEmbedder

    embedder = OrdoLiteEmbedder()
    embedder.load()
    categories = ("dog", "train", "airplane")
    centroids = []
    for category in categories:
        files = _photos_of(category, tuple(c for c in (*categories, "cat") if c != category))
        vectors = embedder.embed_images([Image.open(p).convert("RGB") for p in files])
        centroids.append(vectors.mean(axis=0))
    names = name_clusters(
        np.stack(centroids), embedder.embed_texts, model_id=embedder.model_id, cache_dir=tmp_path, top_n=5
    )
    record = json.dumps([n.__dict__ for n in names])  # shown on failure: what the model actually said
    for name, words in zip(names, (DOGGISH, TRAINISH, PLANEISH), strict=True):
        assert any(w in term for term in name.terms[:3] for w in words), record
    assert len({n.name for n in names}) == 3
    assert list(tmp_path.glob("vocab-*.npy")), "the prompt embeddings were not cached on disk"
