"""Entity swap: every name replaced by an invented one, in captions and groups.

Why: the towers have never seen these strings, so a gain on swapped names proves the model learned the new
names rather than recalling famous ones. ``--swap`` derives them deterministically; ``--swap-map`` takes yours.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path

from ordo.errors import InvalidInput, Reason
from ordo.training.pairs import Pair

_SYLLABLES = ("ka", "lo", "mi", "ra", "ve", "no", "tu", "si", "de", "fa", "zo", "ri", "bel", "dor", "quin", "tha")


def invented_name(name: str, salt: str = "ordo-swap") -> str:
    """A deterministic made-up name with as many words as ``name`` (e.g. "George W Bush" → "Kalo V Ravemi")."""
    words = []
    for i, word in enumerate(name.split()):
        digest = hashlib.sha256(f"{salt}/{name}/{i}".encode()).digest()
        if len(word) <= 2:  # an initial stays an initial
            words.append(chr(ord("A") + digest[0] % 26))
            continue
        syllables = [_SYLLABLES[b % len(_SYLLABLES)] for b in digest[1 : 2 + digest[0] % 2 + 1]]
        words.append("".join(syllables).capitalize())
    return " ".join(words)


def builtin_swap_map(names: Sequence[str]) -> dict[str, str]:
    """Every name → an invented one; collisions (among new names or with old ones) get a new salt."""
    mapping: dict[str, str] = {}
    taken = set(names)
    for name in sorted(set(names)):
        salt, attempt = "ordo-swap", 0
        new = invented_name(name, salt)
        while new in taken:
            attempt += 1
            new = invented_name(name, f"{salt}-{attempt}")
        mapping[name] = new
        taken.add(new)
    return mapping


def load_swap_map(path: Path) -> dict[str, str]:
    """A JSON object ``{"old name": "new name", ...}``."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"cannot read swap map {path}: {exc}", reason=Reason.BAD_SWAP_MAP) from exc
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise InvalidInput(f"swap map {path} must be a JSON object of name → name", reason=Reason.BAD_SWAP_MAP)
    return data


def apply_swap(pairs: Sequence[Pair], mapping: dict[str, str]) -> list[Pair]:
    """Replace every mapped name (whole words, longest first) in captions and groups."""
    if not mapping:
        return list(pairs)
    names = sorted(mapping, key=len, reverse=True)
    pattern = re.compile(r"\b(" + "|".join(re.escape(n) for n in names) + r")\b")

    def swap(text: str) -> str:
        return pattern.sub(lambda m: mapping[m.group(1)], text)

    return [Pair(p.path, tuple(swap(c) for c in p.captions), swap(p.group)) for p in pairs]
