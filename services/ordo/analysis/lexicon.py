"""The naming lexicon: WordNet nouns with their synonyms and what they are a kind of (``lexicon.tsv``).

``lexicon.tsv`` is generated once from WordNet by ``ordo.analysis.lexicon_build`` (why, and which nouns, is
said there) and ships inside Ordo's wheel, so naming works offline with no extra package. Two uses:

* the naming vocabulary is the curated ``vocabulary.txt`` (COCO objects, ImageNet classes, scenes, activities)
  plus these nouns — ~5,000 terms instead of ~2,600;
* :func:`matches` judges a name against a class label — the label itself, a synonym (same WordNet synset) or a
  kind of it (a hyponym: "sparrow" for "bird", "jet" for "airplane") — which is what ``ordo eval clustering``
  reports as naming accuracy.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import cache
from importlib import resources

BASIC_KINDS = 2  # see basic_level


@dataclass(frozen=True)
class Entry:
    synonyms: frozenset[str]
    ancestors: frozenset[str]


@cache
def entries() -> dict[str, Entry]:
    """term -> its synonyms and ancestors (lowercase), from the packaged ``lexicon.tsv``."""
    text = resources.files("ordo.analysis").joinpath("lexicon.tsv").read_text(encoding="utf-8")
    out: dict[str, Entry] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        term, synonyms, ancestors = [*line.split("\t"), "", ""][:3]
        out[term] = Entry(
            synonyms=frozenset(s for s in synonyms.split(",") if s),
            ancestors=frozenset(a for a in ancestors.split(",") if a),
        )
    return out


@cache
def basic_level() -> frozenset[str]:
    """Single-word lexicon nouns that at least ``BASIC_KINDS`` other lexicon nouns are kinds of ("dog", "car").

    A structural stand-in for Rosch's basic level (the level people name things at: "dog", not "Bouvier des
    Flandres" nor "carnivore"): a noun with several kinds of it in an everyday-noun lexicon is general enough to
    cover them, and one word long it is not a specific compound. WordNet carries no basic-level mark, and no word
    frequency list ships offline, so this is the measurable proxy (README, "Clusters that organise a library")."""
    kinds = Counter(a for entry in entries().values() for a in entry.ancestors)
    return frozenset(t for t in entries() if " " not in t and kinds[t] >= BASIC_KINDS)


def terms() -> tuple[str, ...]:
    return tuple(entries())


def _forms(text: str) -> set[str]:
    t = text.strip().lower().replace("_", " ")
    return {t, t[:-1]} if t.endswith("s") and len(t) > 3 else {t}


def matches(term: str, label: str) -> bool:
    """True when ``term`` names ``label``: equal (plurals folded), a synonym, or a kind of it (WordNet).

    A compound not in the lexicon is judged by its head, the last word ("semi truck" is a truck), as English
    compounds are right-headed."""
    if _matches(term, label):
        return True
    words = term.strip().lower().split()
    return len(words) > 1 and term.strip().lower() not in entries() and _matches(words[-1], label)


def _matches(term: str, label: str) -> bool:
    label_forms = _forms(label)
    term_forms = _forms(term)
    if label_forms & term_forms:
        return True
    table = entries()
    for form in term_forms:
        entry = table.get(form)
        if entry is not None and label_forms & (entry.synonyms | entry.ancestors):
            return True
    for form in label_forms:  # the label is the lexicon term and the name one of its synonyms
        entry = table.get(form)
        if entry is not None and term_forms & entry.synonyms:
            return True
    return False
