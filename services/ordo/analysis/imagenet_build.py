"""Build ``imagenet.tsv`` (ImageNet-1k classes → everyday names) from WordNet. Run by hand:

    python -m ordo.analysis.imagenet_build imagenet_synsets.txt /usr/share/wordnet \\
        > services/ordo/analysis/imagenet.tsv

``imagenet_synsets.txt``: the 1,000 ILSVRC-2012 WordNet ids (``n01440764``...), one a line, in class-index
order (sorted; e.g. ``timm/data/_info/imagenet_synsets.txt`` in the ``timm`` wheel). The WordNet folder needs
``data.noun`` (Debian ``wordnet-base``) and ``index.sense`` (``wordnet-sense-index``) for SemCor tag counts.

Why: ordo-lite's image tower is an ImageNet classifier, so a cluster's members carry evidence for 1,000 WordNet
synsets ("golden retriever", "sorrel", "airliner"). People name things at the *basic level* ("dog", "horse",
"airplane"; Rosch 1976), so each class gets an everyday name by a rule that stays generic (no dataset's list):

1. **entry**: the class's own synset if one of its lemmas is an *everyday* noun — a noun of Ordo's lexicon
   (SemCor-tagged, see ``lexicon_build``) or of the curated sections of ``vocabulary.txt`` (COCO objects,
   everyday objects, animals, vehicles, food..., not the dataset class lists) — else its lowest hypernym that is;
   "golden retriever" → "dog", "zebra" stays "zebra". When that hypernym is more than ``MAX_ENTRY_STEPS`` steps
   up and the class is one word, the class names itself: "beaver", not "mammal" (a compound such as "golden
   retriever" still goes up: people say "dog").
2. **basic**: from the entry, climb to the direct hypernym while that hypernym is everyday and at least
   ``CLIMB_RATIO`` times as frequent in SemCor (tag counts of the synset's senses): a much more frequent parent is
   the word people use ("convertible" (2) → "car" (89), "pickup" (2) → "truck" (20)), a comparable one is not
   ("pizza" (1) stays, not "dish" (3); "clock" (15) stays, not "timepiece" (1)). One hypernym that is not an
   everyday noun may be skipped ("terrier" → "dog" over "hunting dog"), not more ("garden spider" stays "spider").
3. **never a superordinate** (``SUPERORDINATES``): a climb stops below one, a class whose entry is one names
   itself, and so does a one-word class whose climb would have gone from its entry straight to one ("ski", not
   "runner"). Rosch's superordinate level (furniture, vehicle, tool, clothing, fruit, vegetable) and WordNet's
   general nodes (device, instrument, machine, container, structure, animal, mammal...) are what people say when
   they do not know what a thing is; before this rule the frequency climb reached them from 132 classes: "ski",
   "remote control", "sunglass" and "crane" were all "device", "broccoli" "vegetable", "bookcase" "furniture",
   "partridge" and "sea urchin" "animal".

Each row: ``index, wnid, name, basic, ancestors`` — ``name`` the class's first lemma, ``ancestors`` the everyday
names above ``basic`` (nearest first, first hypernym path), used to aggregate evidence up the hierarchy, and
``kinds`` — all of the class's hypernym lemmas, so the naming judge (``lexicon.matches``) knows that a "golden
retriever" is a dog. WordNet 3.0's licence (header) allows redistribution with its notice.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ordo.analysis import lexicon
from ordo.analysis.lexicon_build import HEADER as LEXICON_HEADER
from ordo.analysis.lexicon_build import _lemma, _synsets

CLIMB_RATIO = 5
MAX_ENTRY_STEPS = 2  # beyond: a one-word class names itself
CLIMB_STEPS = 2  # a climb may skip one hypernym that is not an everyday noun, not more
# Never a basic name (rule 3 of the module docstring): Rosch's superordinates and WordNet's general nodes that the
# climb reached. Folk-biology life forms ("bird", "fish", "snake", "insect") are basic for most people and stay.
SUPERORDINATES = frozenset(
    {
        "animal",
        "artifact",
        "clothing",
        "commodity",
        "container",
        "conveyance",
        "covering",
        "device",
        "equipment",
        "food",
        "fruit",
        "furniture",
        "implement",
        "instrument",
        "instrumentality",
        "invertebrate",
        "machine",
        "mammal",
        "object",
        "organism",
        "produce",
        "structure",
        "tool",
        "vegetable",
        "vehicle",
        "vertebrate",
    }
)
# vocabulary.txt sections that are dataset class lists, not everyday concepts: everything from the first of them on
DATASET_SECTIONS = "# --- ImageNet-1k class names"


def everyday_terms(vocabulary_text: str) -> frozenset[str]:
    """Lexicon nouns plus the curated (pre-dataset-list) terms of ``vocabulary.txt``."""
    curated = vocabulary_text.split(DATASET_SECTIONS)[0]
    terms = {line.strip() for line in curated.splitlines() if line.strip() and not line.startswith("#")}
    return frozenset(terms | set(lexicon.entries()))


def _tag_counts(folder: Path) -> dict[str, int]:
    """Synset offset -> SemCor tag count summed over its lemmas' senses (``index.sense``, nouns only)."""
    counts: dict[str, int] = {}
    for line in (folder / "index.sense").read_text(encoding="latin-1").splitlines():
        key, offset, _, count = line.split()
        if key.split("%")[1].startswith("1"):
            counts[offset] = counts.get(offset, 0) + int(count)
    return counts


def build(wnids: list[str], folder: Path, everyday: frozenset[str]) -> list[str]:
    synsets = _synsets(folder)
    counts = _tag_counts(folder)

    def lemmas(offset: str) -> list[str]:
        return list(dict.fromkeys(_lemma(w).lower() for w in synsets[offset][1]))

    def everyday_name(offset: str) -> str | None:
        return next((lem for lem in lemmas(offset) if lem in everyday), None)

    def all_ancestors(offset: str) -> list[str]:
        seen: dict[str, None] = {}
        stack, visited = list(synsets[offset][2]), set()
        while stack:
            off = stack.pop()
            if off not in visited:
                visited.add(off)
                seen.update(dict.fromkeys(lemmas(off)))
                stack.extend(synsets[off][2])
        return list(seen)

    rows = []
    for index, wnid in enumerate(wnids):
        path = [wnid[1:]]
        while synsets[path[-1]][2]:
            path.append(synsets[path[-1]][2][0])
        entry = next(i for i, off in enumerate(path) if everyday_name(off) or i == len(path) - 1)
        if entry > MAX_ENTRY_STEPS and " " not in lemmas(path[0])[0]:
            entry = 0  # "beaver" over "mammal", "scorpion" over "animal" (see module docstring)
        if everyday_name(path[entry]) in SUPERORDINATES:
            entry = 0  # "sea urchin" over "animal", "sewing machine" over "commodity"
        basic = entry
        while (up := next((i for i in range(basic + 1, len(path)) if everyday_name(path[i])), None)) is not None:
            if up - basic > CLIMB_STEPS:
                break
            if counts.get(path[up], 0) < CLIMB_RATIO * max(1, counts.get(path[basic], 0)):
                break
            if everyday_name(path[up]) in SUPERORDINATES:
                if basic == entry > 0 and " " not in lemmas(path[0])[0]:
                    basic = 0  # "ski" over "runner", the hypernym the climb used to leave for "device"
                break
            basic = up
        basic_name = everyday_name(path[basic]) or lemmas(path[basic])[0]
        above = [n for off in path[basic + 1 :] if (n := everyday_name(off))]
        above = [n for n in dict.fromkeys(above) if n != basic_name]
        name = lemmas(path[0])[0]
        rows.append("\t".join([str(index), wnid, name, basic_name, ",".join(above), ",".join(all_ancestors(path[0]))]))
    return rows


HEADER = (
    LEXICON_HEADER.replace("naming lexicon", "ImageNet-1k class table")
    .replace("ordo.analysis.lexicon_build", "ordo.analysis.imagenet_build")
    .split("Columns:")[0]
    + "Columns: class index, WordNet id, name,\n"
    + "# basic-level name, everyday names above it (nearest first), all hypernym lemmas.\n"
)


if __name__ == "__main__":
    ids = Path(sys.argv[1]).read_text().split()
    if len(ids) != 1000:
        raise SystemExit(f"expected 1000 ImageNet ids, got {len(ids)}")
    wordnet = Path(sys.argv[2] if len(sys.argv) > 2 else "/usr/share/wordnet")
    vocab = (Path(__file__).parent / "vocabulary.txt").read_text(encoding="utf-8")
    sys.stdout.write(HEADER + "\n".join(build(ids, wordnet, everyday_terms(vocab))) + "\n")
