"""Cluster names from an image tower's own ImageNet classifier, aggregated at the basic level.

Why: ordo-lite's text tower caps naming near 48 % on cifar10-2k even with an oracle vocabulary (README, naming
study), while its image tower, EfficientNet-Lite2, is an ImageNet classifier (90.7 % top-1). Its image head is
linear, ``v = normalise(W p + b)`` (``p`` the 1,280-d pooled features), so class evidence can be recovered from a
*stored* vector without re-reading the image: ``p̂ = W⁺ (s v − b)`` (``W⁺`` the pseudo-inverse, ``s`` the head's
mean output norm) and ``logits = C p̂ + c`` (``C, c`` the classifier): one ``(1000, d)`` matrix computed once at
model load (:class:`ConceptHead`). Measured on coco-captions-mini, the recovered top-1 class agrees with the true
classifier's for 66 % of the photos and the true top-1 is among the recovered top 5 for 92 %; averaged over a
cluster's members that is plenty to name the cluster.

Each of the 1,000 classes has an everyday *basic-level* name (``imagenet.tsv``, built by
``ordo.analysis.imagenet_build`` from WordNet: all dog breeds → "dog", "airliner" → "airplane", "sorrel" →
"horse"; no dataset's list). A cluster's evidence for a basic name is the mean over (a sample of) its members of
each member's probability mass on the classes carrying that name, less the mean over all clusters (``CONTRAST``).
The best basic name is the cluster's name when that contrasted mass is above ``CONFIDENT`` (any evidence above
the average cluster), and the next ``ALTERNATIVES`` basic names lead its top terms; otherwise the text tower's
naming stands. Only models that expose such a head (ordo-lite) use it; CLIP keeps its text-tower naming.

The constants were chosen by a sweep on cifar10-2k and coco-captions-mini together (README, third naming study:
logits × 1–8, contrast 0.5–1.25, threshold none/0–0.1, 0–3 alternatives) at the middle of the plateau where both
datasets are near their best, not at either one's peak.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

from ordo.analysis.vectors import as_unit_vectors

CONFIDENT = 0.0  # contrasted basic-level mass the image tower's name must exceed to win over the text tower's
CONTRAST = 1.0  # weight of the mean over all clusters subtracted from each cluster's evidence
SHARPEN = 4.0  # logits x this: the pseudo-inverse loses the head's null space, which flattens the softmax
ALTERNATIVES = 2  # next basic names (contrasted mass above CONFIDENT) that lead the top terms, after the name
MEMBER_SAMPLE = 256  # members read per cluster (seeded sample): bounded cost at any size


@dataclass(frozen=True)
class ImagenetClass:
    wnid: str
    name: str
    basic: str
    above: tuple[str, ...]  # everyday names above ``basic``, nearest first
    kinds: frozenset[str]  # every hypernym lemma (what the class is a kind of)


@cache
def classes() -> tuple[ImagenetClass, ...]:
    """The 1,000 ImageNet-1k classes in classifier order, from the packaged ``imagenet.tsv``."""
    text = resources.files("ordo.analysis").joinpath("imagenet.tsv").read_text(encoding="utf-8")
    rows = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        _, wnid, name, basic, above, kinds = line.split("\t")
        rows.append(
            ImagenetClass(wnid, name, basic, tuple(a for a in above.split(",") if a), frozenset(kinds.split(",")))
        )
    return tuple(rows)


@cache
def basic_names() -> tuple[tuple[str, ...], np.ndarray]:
    """The distinct basic names and a ``(1000,)`` index of each class's basic name into them."""
    names = tuple(dict.fromkeys(c.basic for c in classes()))
    position = {n: i for i, n in enumerate(names)}
    return names, np.array([position[c.basic] for c in classes()], dtype=np.int64)


@dataclass(frozen=True)
class ConceptHead:
    """ImageNet logits of a stored embedding: ``logits = scale · (v @ matrix.T) + bias`` (see module docstring)."""

    matrix: np.ndarray  # (1000, d)
    bias: np.ndarray  # (1000,)
    scale: float

    @classmethod
    def from_linear_heads(
        cls, head_weight: np.ndarray, head_bias: np.ndarray, fc_weight: np.ndarray, fc_bias: np.ndarray, scale: float
    ) -> ConceptHead:
        """From an image head ``v = normalise(W p + b)`` and a classifier ``C p + c``: ``M = C W⁺``."""
        pinv = np.linalg.pinv(np.asarray(head_weight, dtype=np.float64))  # (features, d)
        matrix = np.asarray(fc_weight, dtype=np.float64) @ pinv
        bias = np.asarray(fc_bias, dtype=np.float64) - matrix @ np.asarray(head_bias, dtype=np.float64)
        return cls(matrix.astype(np.float32), bias.astype(np.float32), float(scale))

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        """Softmax over the 1,000 classes for each row of ``vectors`` (unit embeddings), float64 ``(n, 1000)``."""
        logits = self.scale * (np.asarray(vectors, dtype=np.float32) @ self.matrix.T).astype(np.float64) + self.bias
        logits *= SHARPEN
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)


def class_evidence(head: ConceptHead, members: Sequence[np.ndarray], seed: int = 0) -> np.ndarray:
    """Per cluster, the mean over (at most ``MEMBER_SAMPLE``) members of their class probabilities, ``(k, 1000)``."""
    rng = np.random.default_rng(seed)
    out = np.zeros((len(members), head.matrix.shape[0]), dtype=np.float64)
    for i, rows in enumerate(members):
        if len(rows) == 0:
            continue
        unit = as_unit_vectors(rows, "cluster members")
        if unit.shape[0] > MEMBER_SAMPLE:
            unit = unit[np.sort(rng.choice(unit.shape[0], size=MEMBER_SAMPLE, replace=False))]
        out[i] = head.probabilities(unit).mean(axis=0)
    return out


def basic_evidence(evidence: np.ndarray) -> np.ndarray:
    """``(k, 1000)`` class evidence summed per basic name, ``(k, len(basic_names()[0]))``."""
    names, index = basic_names()
    out = np.zeros((evidence.shape[0], len(names)), dtype=np.float64)
    np.add.at(out.T, index, evidence.T)
    return out


def contrasted(evidence: np.ndarray) -> np.ndarray:
    """Each cluster's evidence less ``CONTRAST`` × the mean over the clusters (one cluster: unchanged)."""
    if evidence.shape[0] < 2:
        return evidence
    return evidence - CONTRAST * evidence.mean(axis=0, keepdims=True)
