"""Scene matching: find the scene families a cleaned caption names, pick their sounds, and phrase the scene
("ambience of a sandy beach"). Pure Python, standard library only, deterministic."""

from __future__ import annotations

import re
from collections.abc import Callable

from .clean import LEADING_DROP, tidy_edges
from .scenetable import SceneTable, load_scene_table
from .tables import GENERIC_SOURCES

MAX_SOURCES = 6
PRIMARY_SOURCES = 3  # sources guaranteed to the first family named in the caption
SCENE_MAX_WORDS = 12


def leftmost_longest(words: list[str], first_words, longest: int, index: dict):
    """Yield ``(word position, phrase, index[phrase])`` for the leftmost-longest whole-word phrases of ``words``
    found in ``index`` (``first_words``: the first words of its phrases; ``longest``: its longest phrase, in words);
    matches do not overlap."""
    i = 0
    while i < len(words):
        if words[i] not in first_words:
            i += 1
            continue
        for n in range(min(longest, len(words) - i), 0, -1):
            phrase = " ".join(words[i : i + n])
            found = index.get(phrase)
            if found is not None:
                yield i, phrase, found
                i += n
                break
        else:
            i += 1


def match_triggers(cleaned: str, table: SceneTable | None = None) -> list[tuple[int, int, str]]:
    """Leftmost-longest whole-word matches: (word position, family index, matched text)."""
    table = table or load_scene_table()
    words = re.findall(r"[a-z0-9]+", cleaned)
    return [(i, found[0], key) for i, key, found in leftmost_longest(words, table.first_words, table.longest,
                                                                     table.index)]


def families_in_order(hits: list[tuple[int, int, str]], table: SceneTable | None = None) -> list[int]:
    """Family indices in order of first mention; weak families only when no strong one is named."""
    families = (table or load_scene_table()).families
    first: dict[int, int] = {}
    for pos, fi, _ in hits:
        first.setdefault(fi, pos)
    order = sorted(first, key=lambda fi: (first[fi], fi))
    strong = [fi for fi in order if not families[fi].weak]
    return strong or order


def pick_sources(groups: list[tuple[str, ...]], keep: Callable[[str], bool] = lambda s: True) -> list[str]:
    """Up to MAX_SOURCES deduplicated sources, round-robin over ``groups`` (the families' sources in caption
    order, then the ambient layers) that ``keep`` accepts; the first group gets a head start. No group at all
    gives the generic sources."""
    if not groups:
        return list(GENERIC_SOURCES)
    chosen: list[list[str]] = [[] for _ in groups]
    cursors = [0] * len(groups)
    seen: set[str] = set()
    total = 0

    def take(k: int) -> bool:
        nonlocal total
        srcs = groups[k]
        while cursors[k] < len(srcs):
            s = srcs[cursors[k]]
            cursors[k] += 1
            if s not in seen and keep(s):
                seen.add(s)
                chosen[k].append(s)
                total += 1
                return True
        return False

    for _ in range(PRIMARY_SOURCES):
        if total < MAX_SOURCES:
            take(0)
    progress = True
    while total < MAX_SOURCES and progress:
        progress = False
        for k in range(len(groups)):
            if total >= MAX_SOURCES:
                break
            progress = take(k) or progress
    return [s for group in chosen for s in group]


_PREPS = (
    r"(?:in\s+front\s+of|on\s+top\s+of|next\s+to|inside|into|down|up|on|at|in|near|by|along|across|through|"
    r"under|over|around|to|with|from)"
)
_SUBJECT_RE = re.compile(
    r"^(?:(?:a|an|the|two|three|four|five|several|some|many|a\s+group\s+of|group\s+of|a\s+couple\s+of|couple\s+of)\s+)*"
    r"(?:(?:young|old|little|small)\s+)?"
    r"(?:man|men|woman|women|person|people|boy|boys|girl|girls|child|children|kid|kids|lady|ladies|guy|guys|"
    r"couple|family|tourist|tourists|surfer|surfers|student|students|worker|workers)\s+"
    r"(?:(?:is|are)\s+)?"
    rf"(?:\w+ing\s+(?:{_PREPS}\s+)?|{_PREPS}\s+)"
)
_LEADING_VERB_RE = re.compile(rf"^\s*(?:is\s+|are\s+)?\w+ing\s+(?:{_PREPS}\s+)?(?=(?:a|an|the)\b)")


def scene_phrase(cleaned: str) -> str:
    """Short "ambience of ..." phrase from the cleaned caption ("" if nothing usable)."""
    np = cleaned.replace(",", " ")
    np = _SUBJECT_RE.sub("", np, count=1)
    np = _LEADING_VERB_RE.sub("", np, count=1)  # "araffe standing in a field" -> "a field"
    words = np.split()[:SCENE_MAX_WORDS]
    np = tidy_edges(" ".join(words), LEADING_DROP | {"inside", "near", "next", "under", "along"})
    if not np:
        return ""
    parts = np.split()
    if len(parts) <= 2 and parts[0] not in ("a", "an", "the"):
        return f"{np} ambience"
    return f"ambience of {np}"

