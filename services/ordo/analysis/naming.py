"""Short human names for clusters, read off the text tower: the vocabulary prompts closest to each centroid.

Why a fixed vocabulary: a CLIP-style model puts images and texts in one space, so ranking the prompts
"a photo of {term}" by cosine similarity to a cluster's centroid is zero-shot classification of the cluster.
The built-in list (``vocabulary.txt``, ~2,600 everyday concepts: COCO objects, ImageNet-1k classes, scenes,
activities, foods, animals, vehicles, events...) is small enough to encode once per model and broad enough
to name most photo collections; callers may pass their own.

Why contrast instead of raw similarity: some prompts sit near *every* photo ("photograph", "landscape", the
modality gap between the image and text cones lifts all of them alike), so ranking by raw similarity tends to
give many clusters the same generic name. A term describes cluster *i* when it is close to *i*'s centroid and
closer to it than to the other clusters. So terms are ranked by

    score_i(t) = s_i(t) - CONTRAST · mean_{j≠i} s_j(t),   CONTRAST = 0.5

(``s`` = cosine similarity of the prompt embedding to a centroid), restricted to the ``candidates`` terms with
the highest raw similarity to ``i`` so that a term that is merely *unlike the others* but far from ``i``
itself cannot win. Subtracting the other clusters' mean removes what every cluster shares (the modality gap,
the "it is a photo" direction, hub terms such as "petri dish" that a weak text tower puts near everything)
and leaves what is specific. Half of it, not all: on real photos with ordo-lite a full subtraction let
"stuffed animal" beat "toy poodle" for a cluster of dogs (a term far from the others, but also less close to
the dogs), while 0.5 kept the close, specific term. With a single cluster there is nothing to contrast with
and the raw similarity is used. Finally names are kept distinct: clusters are named in
order (callers pass them largest first) and a cluster whose best term is already another's name takes its
next-best term, so two clusters of dogs become e.g. "golden retriever" and "labrador retriever".

Names at the basic level: people name things at the basic level ("dog", not "Bouvier des Flandres" nor
"carnivore"; Rosch 1976), so with the built-in vocabulary the *name* is the best-ranked basic-level noun
(``lexicon.basic_level``: a one-word lexicon noun that other lexicon nouns are kinds of, ~500 of them) while the
top terms stay the best of the whole vocabulary ("puppy", "golden retriever" stay visible beside the name).
Measured with ordo-lite (README, "Clusters that organise a library"): Leiden leaves' naming accuracy on
cifar10-2k 0.24 → 0.27, coco-captions-mini unchanged (0.18), where restricting terms too (names *and* terms
basic-level) reached 0.38 on CIFAR but fell to 0.08 on COCO. A caller's own vocabulary is named from as given.

Member evidence (``members=``, :func:`member_evidence`): ``s_i(t)`` may instead be the mean over a cluster's
members of each member's softmax over the vocabulary. Measured, it helped on cifar10-2k (leaves 0.24 → 0.27)
and hurt on coco-captions-mini (0.18 → 0.11), so the service keeps the centroid's similarity.

Prompt ensembling (Radford et al. 2021, CLIP §3.1.4): each term is encoded in several templates
(``PROMPTS``: "a photo of a {}", "a close-up photo of the {}") and the normalised mean
is the term's text embedding; it smooths over one template's quirks and was worth several points of zero-shot
accuracy for CLIP. The vocabulary is ``vocabulary.txt`` plus the WordNet nouns of ``lexicon.tsv`` (see
``ordo.analysis.lexicon``): ~5,000 terms.

Encoding ~10,000 prompts costs up to a minute on a slow CPU, so the prompt embeddings are cached per
(model id, prompt template, vocabulary): in memory for the process, and as a ``.npy`` file under
``cache_dir`` (e.g. the data dir) and in the machine's cache, so neither a restarted service nor a new library
nor an ``ordo eval`` run pays again (``ordo.analysis.prompt_cache``: every file is checked against the
encoder first, since a model id does not identify weights).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources

import numpy as np

from ordo.analysis import concepts, lexicon, prompt_cache
from ordo.analysis.vectors import as_unit_vectors
from ordo.errors import InvalidInput

logger = logging.getLogger(__name__)

DEFAULT_PROMPT = "a photo of {}"
# The ensemble used when no single prompt is asked for (see module docstring).
# Two templates: each doubles the prompts to encode (5,000 terms: ~10k prompts, cached per model on disk).
PROMPTS: tuple[str, ...] = ("a photo of a {}.", "a close-up photo of the {}.")
# Only the terms with the highest raw similarity to a centroid compete on contrast (see module docstring).
DEFAULT_CANDIDATES = 20
# Weight of the other clusters' mean similarity in the contrastive score (see module docstring).
CONTRAST = 0.5
# Member evidence (see member_evidence): CLIP's logit scale, and how many members per cluster are read.
MEMBER_TEMPERATURE = 100.0
# Names from basic-level nouns, top terms from the whole vocabulary (see module docstring).
BASIC_NAMES = True
MEMBER_SAMPLE = 256
# Prompts are encoded in chunks so a progress callback and memory stay reasonable.
ENCODE_BATCH = 256

TextEncoder = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class ClusterName:
    """A cluster's name and the top terms behind it (``scores`` are the contrast scores, best first)."""

    name: str
    terms: list[str]
    scores: list[float]


@cache
def builtin_vocabulary() -> tuple[str, ...]:
    """The packaged vocabulary: one lowercase term per line, ``#`` comments and blank lines skipped."""
    text = resources.files("ordo.analysis").joinpath("vocabulary.txt").read_text(encoding="utf-8")
    return tuple(dict.fromkeys(parse_vocabulary(text) + lexicon.terms()))


def parse_vocabulary(text: str) -> tuple[str, ...]:
    """Terms from a vocabulary file's text, in order, without comments, blanks or repeats."""
    seen: dict[str, None] = {}
    for line in text.splitlines():
        term = line.strip()
        if term and not term.startswith("#"):
            seen.setdefault(term, None)
    return tuple(seen)


# ------------------------------------------------------------------------------------------ prompt cache
_MEMORY: dict[tuple[str, str, str], np.ndarray] = {}
_MEMORY_LOCK = threading.Lock()


def _digest(vocabulary: Sequence[str], prompt: str) -> str:
    h = hashlib.sha256(prompt.encode())
    for term in vocabulary:
        h.update(b"\x00" + term.encode())
    return h.hexdigest()[:16]


def prompt_embeddings(
    encode_texts: TextEncoder,
    vocabulary: Sequence[str],
    *,
    prompt: str = DEFAULT_PROMPT,
    model_id: str | None = None,
    cache_dir: prompt_cache.CacheDirs = None,
) -> np.ndarray:
    """L2-normalised embeddings of ``prompt.format(term)`` for every term, ``(len(vocabulary), d)`` float32.

    Cached when ``model_id`` is given (without it there is no key at all): in memory for the process, and on
    disk under ``cache_dir`` and in the machine's cache (``prompt_cache``: each file checked against the
    encoder before use). A corrupt, mismatched or stale cache file is re-encoded.
    """
    if "{}" not in prompt:
        raise InvalidInput(f"prompt must contain '{{}}' where the term goes, got {prompt!r}")
    if not vocabulary:
        raise InvalidInput("the vocabulary is empty")
    digest = _digest(vocabulary, prompt)
    key = (model_id or "", prompt, digest)
    if model_id:
        with _MEMORY_LOCK:
            hit = _MEMORY.get(key)
        if hit is not None:
            return hit
    texts = [prompt.format(term) for term in vocabulary]
    places = prompt_cache.folders(cache_dir) if model_id else []
    if model_id:
        stored, lacking = prompt_cache.load(places, model_id, digest, texts, encode_texts)
        if stored is not None:
            prompt_cache.store(lacking, model_id, digest, stored)
            with _MEMORY_LOCK:
                _MEMORY[key] = stored
            return stored
    chunks = [np.asarray(encode_texts(texts[i : i + ENCODE_BATCH])) for i in range(0, len(texts), ENCODE_BATCH)]
    matrix = as_unit_vectors(np.vstack(chunks), "prompt embeddings")
    if matrix.shape[0] != len(texts):
        raise InvalidInput(f"encode_texts returned {matrix.shape[0]} vectors for {len(texts)} prompts")
    if model_id:
        with _MEMORY_LOCK:
            _MEMORY[key] = matrix
        prompt_cache.store(places, model_id, digest, matrix)
    return matrix


def ensemble_embeddings(
    encode_texts: TextEncoder,
    vocabulary: Sequence[str],
    prompts: str | Sequence[str],
    *,
    model_id: str | None = None,
    cache_dir: prompt_cache.CacheDirs = None,
) -> np.ndarray:
    """Per term, the normalised mean of its prompts' embeddings (one prompt: exactly :func:`prompt_embeddings`)."""
    templates = [prompts] if isinstance(prompts, str) else list(prompts)
    if not templates:
        raise InvalidInput("at least one prompt template is needed")
    total = sum(
        prompt_embeddings(encode_texts, vocabulary, prompt=t, model_id=model_id, cache_dir=cache_dir).astype(np.float64)
        for t in templates
    )
    return as_unit_vectors(total, "prompt embeddings")


def clear_prompt_cache() -> None:
    """Forget the in-memory prompt embeddings (tests; a model whose weights changed under the same id)."""
    with _MEMORY_LOCK:
        _MEMORY.clear()


# ------------------------------------------------------------------------------------------ naming
def member_evidence(members: Sequence[np.ndarray], texts: np.ndarray, seed: int = 0) -> np.ndarray:
    """Per cluster, the mean over its members of each member's softmax over the vocabulary, ``(k, m)``.

    Each member is zero-shot classified against every term (similarities × ``MEMBER_TEMPERATURE``, CLIP's logit
    scale, then a softmax) and a cluster's evidence for a term is the mean of its members' probabilities: a
    term wins when it is *confidently* the best for many members, not merely close to their average direction
    (which for a weak text tower drifts toward hub terms). At most ``MEMBER_SAMPLE`` members per cluster (a
    seeded sample) are read, so the cost is bounded at any collection size.
    """
    rng = np.random.default_rng(seed)
    out = np.zeros((len(members), texts.shape[0]), dtype=np.float64)
    texts32 = np.ascontiguousarray(texts, dtype=np.float32)
    for i, rows in enumerate(members):
        if len(rows) == 0:  # no evidence: the row stays 0 and only contrast with the others ranks its terms
            continue
        unit = as_unit_vectors(rows, "cluster members")
        if unit.shape[0] > MEMBER_SAMPLE:
            unit = unit[np.sort(rng.choice(unit.shape[0], size=MEMBER_SAMPLE, replace=False))]
        # float32 GEMM (the cost: members × terms × d), softmax in float64
        logits = MEMBER_TEMPERATURE * (unit.astype(np.float32) @ texts32.T).astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        probabilities = np.exp(logits)
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        out[i] = probabilities.mean(axis=0)
    return out


def name_clusters(
    centroids: np.ndarray,
    encode_texts: TextEncoder,
    *,
    members: Sequence[np.ndarray] | None = None,
    top_n: int = 5,
    prompt: str | Sequence[str] = PROMPTS,
    vocabulary: Sequence[str] | None = None,
    model_id: str | None = None,
    cache_dir: prompt_cache.CacheDirs = None,
    candidates: int = DEFAULT_CANDIDATES,
    basic_names: bool = BASIC_NAMES,
    concept_head: concepts.ConceptHead | None = None,
    concept_members: Sequence[np.ndarray] | None = None,
) -> list[ClusterName]:
    """One :class:`ClusterName` per centroid row (same order), from the vocabulary terms that fit it best.

    ``centroids`` are the clusters' mean directions (``clustering.centroids``), ideally largest cluster first:
    that order decides who keeps a contested name. ``members`` (optional, same order) are each cluster's member
    embeddings: when given, terms are ranked on the members' evidence (:func:`member_evidence`, what the service
    does), otherwise on the centroid's similarity. ``encode_texts`` maps prompts to the *same* model's text
    embeddings. With ``basic_names`` and the built-in vocabulary the *name* is the best basic-level noun
    (``lexicon.basic_level``) while the top terms stay the whole vocabulary's. ``model_id``/``cache_dir`` enable
    the prompt cache (see :func:`prompt_embeddings`). See the module docstring for the contrastive score and why
    names are distinct. ``concept_head`` + ``concept_members`` (each cluster's member embeddings, same order;
    models with an ImageNet head, i.e. ordo-lite): names and leading terms from the image tower's class evidence
    wherever it has any (:func:`with_concepts`).
    """
    if top_n < 1:
        raise InvalidInput(f"top_n must be >= 1, got {top_n}")
    if candidates < 1:
        raise InvalidInput(f"candidates must be >= 1, got {candidates}")
    centres = as_unit_vectors(centroids, "centroids")
    if members is not None and len(members) != centres.shape[0]:
        raise InvalidInput(f"{len(members)} member sets for {centres.shape[0]} centroids")
    terms = tuple(vocabulary) if vocabulary is not None else builtin_vocabulary()
    texts = ensemble_embeddings(encode_texts, terms, prompt, model_id=model_id, cache_dir=cache_dir)
    if texts.shape[1] != centres.shape[1]:
        raise InvalidInput(
            f"dimension mismatch: centroids have {centres.shape[1]}, the text embeddings {texts.shape[1]} "
            "(centroids and encode_texts must come from the same model)"
        )
    # (k, m): the members' evidence, or the centroids' cosine similarity to every term
    similarity = member_evidence(members, texts) if members is not None else (centres @ texts.T).astype(np.float64)
    ranked = _ranked(similarity, terms, top_n, candidates)
    if basic_names and vocabulary is None:  # a caller's own vocabulary is named from as given
        basic = lexicon.basic_level()
        eligible = [j for j, term in enumerate(terms) if term in basic]
        if eligible:  # a vocabulary of the caller's own with no basic-level noun: names as ranked
            named = _ranked(similarity[:, eligible], [terms[j] for j in eligible], 1, candidates)
            ranked = [replace(r, name=b.name) for r, b in zip(ranked, named, strict=True)]
    if concept_head is not None and concept_members is not None and vocabulary is None:
        if len(concept_members) != len(ranked):
            raise InvalidInput(f"{len(concept_members)} member sets for {len(ranked)} centroids")
        ranked = with_concepts(ranked, concept_head, concept_members, top_n)
    return ranked


def with_concepts(
    ranked: list[ClusterName], head: concepts.ConceptHead, members: Sequence[np.ndarray], top_n: int
) -> list[ClusterName]:
    """The text tower's names, overruled by the image tower's ImageNet evidence wherever it has any.

    Per cluster: the members' class evidence (:func:`concepts.class_evidence`) less ``concepts.CONTRAST`` × the
    mean over all clusters (what every cluster shares: the prior of classes like the 118 dog breeds), summed per
    basic-level name. The best basic name above ``concepts.CONFIDENT`` becomes the cluster's name (if another
    cluster already took it, the next of its top ``1 + concepts.ALTERNATIVES`` basic names); the top terms are
    then the next ``concepts.ALTERNATIVES`` basic names above the threshold, the best specific class ("golden
    retriever"), and the text tower's terms. When larger clusters took all of those basic names (a later leaf of
    dogs), the best specific class is the name and the basic names lead the terms: a sibling of "dog" becomes
    "beagle" with "dog" beside it. Before, such a cluster fell back to the text tower, whose names there were
    often abstract nouns ("misfortune", "sustenance" on cifar10-2k); leaves' naming accuracy went 0.40 -> 0.43
    there (strict 0.33 -> 0.43; with the class table of then, before superordinates left it), coco-captions-mini
    unchanged at 0.42.

    Why alternatives: on low-resolution or mixed clusters the recovered evidence is spread over a few basic names
    ("truck, car, airplane") and the right one is often second or third; listing two beside the name lifted naming
    from 0.25 to 0.41 on cifar10-2k and from 0.37 to 0.40 on coco-captions-mini, while a third (pushing every text
    term out of the top three) fell to 0.35 on COCO (README, third naming study). Without evidence above the
    threshold the text tower's naming stands.
    """
    evidence = concepts.contrasted(concepts.class_evidence(head, members))
    basic = concepts.basic_evidence(evidence)
    names, _ = concepts.basic_names()
    table = concepts.classes()
    taken: set[str] = set()
    out = []
    for i, named in enumerate(ranked):
        order = [int(j) for j in np.argsort(-basic[i], kind="stable")[: 1 + concepts.ALTERNATIVES]]
        confident = [names[j] for j in order if basic[i, j] > concepts.CONFIDENT]
        pick = next((n for n in confident if n not in taken), None)
        name, terms = named.name, list(named.terms)
        specific = table[int(np.argmax(evidence[i]))].name
        if pick is not None:
            name = pick
            alternatives = [n for n in confident if n != pick][: concepts.ALTERNATIVES]
            terms = [t for t in dict.fromkeys([*alternatives, specific, *terms]) if t != name][:top_n]
        elif confident:  # every basic name it has evidence for is a larger cluster's: its best class names it
            name = specific
            terms = [t for t in dict.fromkeys([*confident, *terms]) if t != name][:top_n]
        if name in taken:
            name = next((t for t in terms if t not in taken), name)
        taken.add(name)
        out.append(replace(named, name=name, terms=terms, scores=named.scores[: len(terms)]))
    return out


def _ranked(similarity: np.ndarray, terms: Sequence[str], top_n: int, candidates: int) -> list[ClusterName]:
    """Contrastive ranking of each row's terms, names kept distinct in row order (see module docstring)."""
    k, m = similarity.shape
    if k > 1:
        others_mean = (similarity.sum(axis=0, keepdims=True) - similarity) / (k - 1)
        score = similarity - CONTRAST * others_mean
    else:
        score = similarity
    pool = min(max(candidates, top_n), m)
    taken: set[str] = set()
    names: list[ClusterName] = []
    for i in range(k):
        # Candidates: the `pool` terms most similar to this centroid (stable sort: ties keep vocabulary order).
        nearest = np.argsort(-similarity[i], kind="stable")[:pool]
        ranked: list[int] = [int(j) for j in nearest[np.argsort(-score[i, nearest], kind="stable")]]
        top = ranked[:top_n]
        name = next((terms[j] for j in ranked if terms[j] not in taken), terms[ranked[0]])
        taken.add(name)
        names.append(
            ClusterName(
                name=name,
                terms=[terms[int(j)] for j in top],
                scores=[round(float(score[i, j]), 6) for j in top],
            )
        )
    return names
