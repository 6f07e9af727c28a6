"""Layered mode: split a scene's sounds into a steady bed and a few distinct, intermittent source events.

A layered soundscape is one background bed plus up to ``MAX_LAYER_SOURCES`` quieter, separately generated sources.
Which phrase is an event and which a bed texture is data (``EVENT_LABELS``, ``EXTRA_BEDS`` in tables.py); this module
picks them for a caption's families. Pure Python, standard library only, deterministic.
"""

from __future__ import annotations

from collections.abc import Callable

from .clean import clean_caption_report, norm_tokens
from .scene import families_in_order, match_triggers
from .scenetable import SceneTable
from .tables import EVENT_LABELS, EXTRA_BEDS, GENERIC_BED, GENERIC_EVENTS, LABEL_NOUN_ALIASES, Family

MAX_LAYER_SOURCES = 3  # most separate source prompts a layered soundscape gets
MAX_BED_TEXTURES = 3  # most family textures in the bed prompt


def family_layers(family: Family) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Split a family's sounds into continuous bed textures and intermittent events.

    Args:
        family: One of the scene table's families.

    Returns:
        ``(beds, events)``: ``beds`` is never empty (sources not in ``EVENT_LABELS``, then
        ``EXTRA_BEDS[family.name]``, else ``GENERIC_BED``); ``events`` are the sources listed in
        ``EVENT_LABELS``, in family order.
    """
    events = tuple(s for s in family.sources if s in EVENT_LABELS)
    return _own_beds(family) or GENERIC_BED[:2], events


def _own_beds(family: Family) -> tuple[str, ...]:
    return tuple(s for s in family.sources if s not in EVENT_LABELS) + EXTRA_BEDS.get(family.name, ())


def noun_key(label: str) -> str:
    """The main noun of a source label (last word, singular): "church bells" -> "bell"."""
    toks = norm_tokens(label)
    last = toks[-1] if toks else label
    return LABEL_NOUN_ALIASES.get(last, last)


def _round_robin(groups: list[tuple[str, ...]], limit: int, accept: Callable[[str], bool]) -> list[str]:
    """Take the 1st item of each group in order, then the 2nd..., while ``accept`` says yes, up to ``limit``."""
    out: list[str] = []
    depth = max((len(g) for g in groups), default=0)
    for d in range(depth):
        for g in groups:
            if len(out) >= limit:
                return out
            if d < len(g) and accept(g[d]):
                out.append(g[d])
    return out


def pick_textures(family_ids: list[int], table: SceneTable, fits: Callable[[str], bool]) -> list[str]:
    """Up to ``MAX_BED_TEXTURES`` bed textures that ``fits`` accepts, round-robin over the families in caption
    order."""
    fams = table.families
    # an all-event family's generic fallback bed is used only when no matched family has a bed of its own
    bed_groups = [_own_beds(fams[fi]) for fi in family_ids]
    if not any(bed_groups):
        bed_groups = [family_layers(fams[fi])[0] for fi in family_ids] or [GENERIC_BED]
    seen_beds: set[str] = set()

    def new_bed(s: str) -> bool:
        if s in seen_beds or not fits(s):
            return False
        seen_beds.add(s)
        return True

    return _round_robin(bed_groups, MAX_BED_TEXTURES, new_bed) or list(GENERIC_BED[:2])


def extra_families(extra: str, family_ids: list[int], table: SceneTable) -> list[int]:
    """Families the (cleaned) extra text names that the caption did not, in the order named."""
    hits = match_triggers(clean_caption_report(extra)[0], table)
    return [fi for fi in families_in_order(hits, table) if fi not in family_ids]


def pick_events(family_ids: list[int], extra: str, extra_fids: list[int], table: SceneTable,
                fits: Callable[[str], bool]) -> list[str]:
    """Up to ``MAX_LAYER_SOURCES`` source events that ``fits`` accepts, one per main noun, round-robin over the
    caption's families in order, then (as one more family) the events of ``extra_fids`` that the extra text
    names outright."""
    fams = table.families
    event_groups = [family_layers(fams[fi])[1] for fi in family_ids]
    extra_tokens = set(norm_tokens(extra))
    for fi in extra_fids:
        named = tuple(e for e in family_layers(fams[fi])[1] if extra_tokens & set(norm_tokens(e)))
        if named:
            event_groups.append(named)
    if not family_ids and not any(event_groups):
        event_groups = [GENERIC_EVENTS]
    nouns: set[str] = set()  # main nouns of the chosen events
    words: set[str] = set()  # every word of the chosen events

    def new_event(s: str) -> bool:
        # one main noun per source: "distant car horns" is skipped after "cars passing by"
        key = noun_key(EVENT_LABELS[s])
        toks = set(norm_tokens(s)) | {key}
        if key in words or nouns & toks or not fits(s):
            return False
        nouns.add(key)
        words.update(toks)
        return True

    return _round_robin(event_groups, MAX_LAYER_SOURCES, new_event)
