"""Scene reading: what a caption says about where and when, before any sound is picked.

From the caption: the setting (indoor, outdoor, underwater, vehicle, space, abstract), the place and objects (the
scene table's families, multi-word places first), the time of day, season and weather (cue words). Then: which
families a place overrides, which ambient layers the reading adds, and which sources it rules out (and why). All the
words and rules are data (scenetable.py, scenes.json). Pure Python, standard library only, deterministic.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from .clean import contains_phrase, norm_tokens
from .scene import families_in_order, leftmost_longest, match_triggers
from .scenetable import CUE_AXES, SceneTable

_SETTING_ORDER = ("underwater", "space", "vehicle", "indoor", "abstract", "outdoor")


@dataclass(frozen=True)
class Reading:
    """What a caption says about its scene.

    ``hits``: the trigger matches (word position, family id, words); ``family_ids``: the families to take sources from, in caption order, after ``replaced`` ones were dropped;
    ``cues[axis]``: the values named for setting, time, season and weather; ``setting_from``: the words or family
    the setting was read from; ``layers``: the names of the ambient layers that apply; ``rules``: the exclusions
    that apply (dicts with ``drop``, ``why``)."""

    setting: str
    setting_from: str
    hits: tuple
    family_ids: tuple
    replaced: tuple
    cues: dict
    layers: tuple
    rules: tuple


def _cue_hits(words: list[str], table: SceneTable) -> dict[str, list[tuple[str, str]]]:
    """Cue values per axis in caption order, each with the phrase that first named it (longest phrase first)."""
    out: dict[str, list[tuple[str, str]]] = {axis: [] for axis in CUE_AXES}
    for _, phrase, found in leftmost_longest(words, table.cue_first_words, table.cue_longest, table.cue_index):
        for axis, value in found:
            if value not in [v for v, _ in out[axis]]:
                out[axis].append((value, phrase))
    return out


def _setting(cue_hits: list[tuple[str, str]], family_ids: list[int], table: SceneTable) -> tuple[str, str]:
    for value in _SETTING_ORDER:
        for v, phrase in cue_hits:
            if v == value and value != "indoor":
                return value, f'"{phrase}"'
    for fi in family_ids:
        fam = table.families[fi]
        if fam.setting in ("underwater", "space", "vehicle"):
            return fam.setting, fam.name
    for v, phrase in cue_hits:
        if v == "indoor":
            return v, f'"{phrase}"'
    for fi in family_ids:
        fam = table.families[fi]
        if fam.setting:
            return fam.setting, fam.name
    return "", ""


def _drop_replaced(family_ids: list[int], table: SceneTable) -> tuple[list[int], list[str]]:
    fams = table.families
    named = {fams[fi].name for fi in family_ids}
    over = {r for fi in family_ids for r in fams[fi].replaces if r in named and r != fams[fi].name}
    return [fi for fi in family_ids if fams[fi].name not in over], sorted(over)


def _matches(when: tuple, facts: dict[str, set[str]]) -> bool:
    return any(all(facts.get(k, set()) & vals for k, vals in cond.items()) for cond in when)


def read_scene(caption: str, cleaned: str, table: SceneTable) -> Reading:
    """Read a caption's scene.

    Args:
        caption: The raw caption (cue words are looked for in it, so "an underwater view of" still counts).
        cleaned: The cleaned caption (families are matched in it).
        table: A loaded scene table.

    Returns:
        A :class:`Reading`.
    """
    words = re.findall(r"[a-z0-9]+", str(caption or "").lower())
    hits = _cue_hits(words, table)
    trigger_hits = match_triggers(cleaned, table)
    fids = families_in_order(trigger_hits, table)
    fids, replaced = _drop_replaced(fids, table)
    setting, setting_from = _setting(hits["setting"], fids, table)
    cues = {axis: tuple(v for v, _ in hits[axis]) for axis in ("time", "season", "weather")}
    facts = {"setting": {setting}, "family": {table.families[fi].name for fi in fids},
             **{k: set(v) for k, v in cues.items()}}
    layers = tuple(n for n, r in table.layers.items() if _matches(r["when"], facts))
    said = norm_tokens(" ".join(words))
    said_set = set(said)

    def named(phrase: str) -> bool:
        toks = norm_tokens(phrase)
        return len(toks) == 1 and toks[0] in said_set or len(toks) > 1 and contains_phrase(said, toks)

    rules = tuple(r for r in table.exclusions.values() if _matches(r["when"], facts)
                  and not any(named(u) for u in r["unless"]))
    return Reading(setting, setting_from, tuple(trigger_hits), tuple(fids), tuple(replaced), cues, layers, rules)


def kinds_of(phrase: str, table: SceneTable) -> set[str]:
    """The kinds (insects, traffic, calm shore...) a sound phrase belongs to."""
    toks = norm_tokens(phrase)
    return {k for k, ws in table.kinds.items() if any(contains_phrase(toks, norm_tokens(w)) for w in ws)}


def exclusion_of(reading: Reading, table: SceneTable) -> Callable[[str], str]:
    """A function: sound phrase -> why the reading rules it out ("" when it fits)."""
    cache: dict[str, str] = {}

    def why(phrase: str) -> str:
        if phrase not in cache:
            kinds = kinds_of(phrase, table)
            cache[phrase] = next((r["why"] for r in reading.rules if kinds & set(r["drop"])), "")
        return cache[phrase]

    return why


def source_groups(reading: Reading, table: SceneTable) -> list[tuple[str, ...]]:
    """The families' sources in caption order, then each ambient layer's."""
    groups = [table.families[fi].sources for fi in reading.family_ids]
    return groups + [table.layers[name]["sources"] for name in reading.layers]


def explain_reading(reading: Reading, table: SceneTable, sources: list[str], excluded: list[tuple[str, str]]) -> str:
    """A short plain-text explanation: the reading, each source and where it came from, what was left out."""
    fams = table.families
    cues = reading.cues
    lines = [f"setting: {reading.setting or 'unknown'}" + (f" (from {reading.setting_from})"
                                                            if reading.setting_from else ""),
             "place: " + (fams[reading.family_ids[0]].name if reading.family_ids else "none recognised")
             + "".join(f"; also {fams[fi].name}" for fi in reading.family_ids[1:]),
             f"time: {', '.join(cues['time']) or '-'}; season: {', '.join(cues['season']) or '-'}; "
             f"weather: {', '.join(cues['weather']) or '-'}"]
    origin = {}
    for fi in reading.family_ids:
        for s in fams[fi].sources:
            origin.setdefault(s, fams[fi].name)
    for name in reading.layers:
        for s in table.layers[name]["sources"]:
            origin.setdefault(s, f"layer: {name}")
    lines.append("sources: " + ("; ".join(f"{s} ({origin.get(s, 'generic: nothing recognised')})" for s in sources)
                                or "-"))
    left = [f"{s} ({why})" for s, why in excluded]
    left += [f"{name} sounds (replaced by a more specific place)" for name in reading.replaced]
    lines.append("left out: " + ("; ".join(left) or "-"))
    return "\n".join(lines)
