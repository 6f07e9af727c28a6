"""Scene matching: find the scene families a cleaned caption names, pick their sounds, and phrase the scene
("ambience of a sandy beach"). Pure Python, standard library only, deterministic."""

from __future__ import annotations

import re

from .clean import LEADING_DROP, tidy_edges
from .tables import FAMILIES, GENERIC_SOURCES

MAX_SOURCES = 6
PRIMARY_SOURCES = 3  # sources guaranteed to the first family named in the caption
SCENE_MAX_WORDS = 12
DAYTIME_RE = re.compile(r"bird|gull|skylark|woodpecker|rooster")  # sources that do not fit a night scene


def _variants(trigger: str) -> list[str]:
    """Singular/plural forms of a trigger (inflecting its last word)."""
    words = trigger.split()
    last = words[-1]
    forms = [last]
    if re.search(r"(?:s|x|z|ch|sh)$", last):
        forms.append(last + "es")
    elif re.search(r"[^aeiou]y$", last):
        forms.append(last[:-1] + "ies")
    else:
        forms.append(last + "s")
    if last.endswith("fe"):
        forms.append(last[:-2] + "ves")
    elif last.endswith("f"):
        forms.append(last[:-1] + "ves")
    head = " ".join(words[:-1])
    return [f"{head} {f}".strip() for f in forms]


def _build_index() -> tuple[dict[str, tuple[int, str]], int]:
    """Map every trigger form to (family index, trigger); listed forms beat generated plurals."""
    index: dict[str, tuple[int, str]] = {}
    for fi, fam in enumerate(FAMILIES):
        for trig in fam.triggers:
            if trig in index and index[trig][0] != fi:
                raise ValueError(f"trigger {trig!r} is listed in two families")
            index[trig] = (fi, trig)
    for fi, fam in enumerate(FAMILIES):
        for trig in fam.triggers:
            for form in _variants(trig)[1:]:
                index.setdefault(form, (fi, trig))
    return index, max(len(k.split()) for k in index)


_INDEX, _LONGEST = _build_index()


def match_triggers(cleaned: str) -> list[tuple[int, int, str]]:
    """Leftmost-longest whole-word matches: (word position, family index, matched text)."""
    words = re.findall(r"[a-z0-9]+", cleaned)
    hits: list[tuple[int, int, str]] = []
    i = 0
    while i < len(words):
        for n in range(min(_LONGEST, len(words) - i), 0, -1):
            key = " ".join(words[i : i + n])
            found = _INDEX.get(key)
            if found is not None:
                hits.append((i, found[0], key))
                i += n
                break
        else:
            i += 1
    return hits


def families_in_order(hits: list[tuple[int, int, str]]) -> list[int]:
    """Family indices in order of first mention; weak families only when no strong one is named."""
    first: dict[int, int] = {}
    for pos, fi, _ in hits:
        first.setdefault(fi, pos)
    order = sorted(first, key=lambda fi: (first[fi], fi))
    strong = [fi for fi in order if not FAMILIES[fi].weak]
    return strong or order


def pick_sources(family_ids: list[int]) -> list[str]:
    """Up to MAX_SOURCES deduplicated sources; the first family gets a head start."""
    if not family_ids:
        return list(GENERIC_SOURCES)
    chosen: list[list[str]] = [[] for _ in family_ids]
    cursors = [0] * len(family_ids)
    night = any(FAMILIES[fi].name == "night" for fi in family_ids)
    seen: set[str] = set()
    total = 0

    def take(k: int) -> bool:
        nonlocal total
        srcs = FAMILIES[family_ids[k]].sources
        while cursors[k] < len(srcs):
            s = srcs[cursors[k]]
            cursors[k] += 1
            if s not in seen and not (night and DAYTIME_RE.search(s)):
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
        for k in range(len(family_ids)):
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

