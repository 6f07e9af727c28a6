"""Turn an image caption (what is seen) into a Stable Audio Open prompt (what is heard).

Pure Python, standard library only, deterministic. This module assembles the prompts and is the text package's
public face; the steps live beside it: clean.py (caption cleaning), scene.py (scene matching), layered.py (bed vs.
source events), shorten.py (token budget) and tables.py (the presets, scene families and sound tables, as data).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from .clean import clean_caption, clean_caption_report, clean_extra, contains_phrase, norm_tokens
from .layered import MAX_LAYER_SOURCES, extra_families, family_layers, pick_events, pick_textures
from .reading import exclusion_of, explain_reading, read_scene, source_groups
from .scene import MAX_SOURCES, pick_sources, scene_phrase
from .scenetable import SceneTable, load_scene_table
from .shorten import estimate_tokens, shorten_to_limit
from .tables import (
    BASE_NEGATIVE,
    BED_STEADY,
    DEFAULT_PRESET,
    EVENT_HOSTILE_NEGATIVE,
    EVENT_LABELS,
    EXTRA_BEDS,
    FAMILIES,
    GENERIC_BED,
    GENERIC_EVENTS,
    GENERIC_SOURCES,
    PRESET_NAMES,
    PRESETS,
    SOURCE_BACKGROUND,
    SOURCE_FLAVOUR,
    SOURCE_STYLE,
    Family,
    Preset,
)

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_PRESET",
    "EVENT_LABELS",
    "EXTRA_BEDS",
    "FAMILIES",
    "GENERIC_BED",
    "GENERIC_EVENTS",
    "GENERIC_SOURCES",
    "MAX_LAYER_SOURCES",
    "MAX_PROMPT_WORDS",
    "MAX_SOURCES",
    "PRESETS",
    "PRESET_NAMES",
    "PROMPT_TOKEN_LIMIT",
    "Family",
    "LayeredPrompts",
    "Preset",
    "build_layered_prompts",
    "build_prompt",
    "build_prompt_explained",
    "load_scene_table",
    "clean_caption",
    "estimate_tokens",
    "explain_layered",
    "explain_prompt",
    "family_layers",
    "shorten_to_limit",
]

PROMPT_TOKEN_LIMIT = 120  # Stable Audio Open's T5 encoder reads at most 128 tokens; stay well below it
MAX_PROMPT_WORDS = 60

# --- negative prompt -----------------------------------------------------------

_MUSIC_RE = re.compile(
    r"\b(?:music|musical|musician|musicians|band|bands|concert|concerts|piano|pianos|guitar|guitars|violin|"
    r"violins|cello|orchestra|drum|drums|drummer|singer|singers|singing|song|songs|choir|jazz|melody|"
    r"melodies|dj|opera|saxophone|trumpet|flute|harp|vocals|instrument|instruments)\b"
)
_SINGING_RE = re.compile(
    r"\b(?:sing|sings|singing|singer|singers|choir|vocal|vocals|song|songs|opera|chant|chanting)\b"
)
_VOICE_RE = re.compile(
    r"\b(?:voice|voices|talking|talk|speech|conversation|conversations|chatter|chatting|murmur|whisper|"
    r"whispers|whispering|laughter|laughing|people|crowd)\b"
)


def _negative(prompt: str, preset: Preset, voiced: bool, caption: str, extra: str) -> str:
    wanted = f"{caption} {extra.lower()}"
    voices = voiced or bool(_VOICE_RE.search(wanted))
    music = bool(_MUSIC_RE.search(wanted))
    singing = bool(_SINGING_RE.search(wanted))
    remove: set[str] = set()
    if voices:
        remove |= {"speech", "talking"}
    if music:
        remove |= {"music", "melody"}
    if singing:
        remove |= {"singing", "vocals"}
    hay = norm_tokens(prompt)
    terms: list[str] = []
    for term in BASE_NEGATIVE + preset.negative_extra:
        if term in remove or term in terms or contains_phrase(hay, norm_tokens(term)):
            continue
        terms.append(term)
    return ", ".join(terms)


# --- public API -----------------------------------------------------------------


def _get_preset(preset: str) -> Preset:
    if isinstance(preset, str):
        if preset in PRESETS:
            return PRESETS[preset]
        key = " ".join(preset.split()).lower()
        for name, p in PRESETS.items():
            if name.lower() == key:
                return p
    names = ", ".join(PRESET_NAMES)
    raise ValueError(
        f'Build Ambient Prompt: "preset" is "{preset}" but must be one of: {names}. Pick one from the list.'
    )


def _pick(reading, table: SceneTable) -> tuple[list[str], list[tuple[str, str]]]:
    """The reading's sources, and the ones its exclusions left out (with why)."""
    why = exclusion_of(reading, table)
    excluded: list[tuple[str, str]] = []

    def keep(s: str) -> bool:
        w = why(s)
        if w and (s, w) not in excluded:
            excluded.append((s, w))
        return not w

    groups = source_groups(reading, table)
    return (pick_sources(groups, keep) if groups else []) or list(GENERIC_SOURCES), excluded


def _analyse(caption: str, preset: str, extra: str, table: SceneTable | None = None) -> dict:
    p = _get_preset(preset)
    table = table or load_scene_table()
    cleaned, dropped = clean_caption_report(caption)
    reading = read_scene(caption if isinstance(caption, str) else "", cleaned, table)
    family_ids = list(reading.family_ids)
    used = set(family_ids)
    scene_words: list[str] = []
    for _, fi, word in reading.hits:
        if fi in used and word not in scene_words:
            scene_words.append(word)
    sources, excluded = _pick(reading, table)
    scene = scene_phrase(cleaned)
    extra_text = clean_extra(extra)
    segments: list[str] = []
    for seg in [*sources, scene, extra_text, *p.qualifiers]:
        if seg and seg not in segments:
            segments.append(seg)
    return {
        "preset": p,
        "table": table,
        "reading": reading,
        "excluded": excluded,
        "voiced": any(table.families[fi].voices for fi in family_ids),
        "cleaned": cleaned,
        "dropped": dropped,
        "family_ids": family_ids,
        "scene_words": scene_words,
        "sources": sources,
        "extra": extra_text,
        "full_prompt": ", ".join(segments),
    }


def _unshortened_prompt(caption: str, preset: str = DEFAULT_PRESET, extra: str = "") -> str:
    """The prompt before length limiting (for tests and debugging)."""
    return _analyse(caption, preset, extra)["full_prompt"]


def _fit(text: str) -> str:
    text = shorten_to_limit(text, MAX_PROMPT_WORDS, lambda s: len(s.split()))
    return shorten_to_limit(text, PROMPT_TOKEN_LIMIT)


def build_prompt(caption: str, preset: str = DEFAULT_PRESET, extra: str = "",
                 table: SceneTable | None = None) -> tuple[str, str]:
    """Build a Stable Audio Open prompt and negative prompt from an image caption.

    Args:
        caption: Image caption (what is seen); empty gives a generic ambience.
        preset: One of ``PRESET_NAMES``.
        extra: Optional user detail text, inserted before the preset qualifiers.
        table: A scene table from :func:`load_scene_table` (with user files); ``None`` for the built-in one.

    Returns:
        ``(prompt, negative_prompt)``, each within ``MAX_PROMPT_WORDS`` words and
        ``PROMPT_TOKEN_LIMIT`` estimated T5 tokens. Deterministic.

    Raises:
        ValueError: If ``preset`` is not a known preset name.
    """
    return build_prompt_explained(caption, preset, extra, table)[:2]


def build_prompt_explained(caption: str, preset: str = DEFAULT_PRESET, extra: str = "",
                           table: SceneTable | None = None) -> tuple[str, str, str]:
    """:func:`build_prompt` plus a short plain-text explanation of how the caption was read: setting, place,
    time, season, weather, each source and where it came from, and what was left out and why."""
    info = _analyse(caption, preset, extra, table)
    prompt = _fit(info["full_prompt"])
    negative = _fit(_negative(prompt, info["preset"], info["voiced"], info["cleaned"], info["extra"]))
    explanation = explain_reading(info["reading"], info["table"], info["sources"], info["excluded"])
    log.debug("ambient prompt: %s | prompt=%r", explanation.replace("\n", " | "), prompt)
    return prompt, negative, explanation


def explain_prompt(caption: str, preset: str = DEFAULT_PRESET, extra: str = "",
                   table: SceneTable | None = None) -> dict:
    """Report what the prompt builder matched, for logging and the CLI.

    Args:
        caption: Image caption.
        preset: One of ``PRESET_NAMES``.
        extra: Optional user detail text.

    Returns:
        ``{"scene_words", "families", "sources", "dropped", "preset"}``: matched
        caption words, family names in caption order, chosen sound sources, words
        removed from the caption, and the preset name.
    """
    info = _analyse(caption, preset, extra, table)
    fams = info["table"].families
    return {
        "scene_words": list(info["scene_words"]),
        "families": [fams[fi].name for fi in info["family_ids"]],
        "sources": list(info["sources"]),
        "dropped": list(info["dropped"]),
        "preset": info["preset"].name,
    }


# --- layered mode ----------------------------------------------------------------


@dataclass(frozen=True)
class LayeredPrompts:
    """Prompts for a layered soundscape: one steady bed plus up to three separate, intermittent sources.

    ``sources[i]`` is labelled ``source_names[i]``; ``negative`` is shared by all prompts."""

    bed: str
    sources: tuple[str, ...]
    negative: str
    source_names: tuple[str, ...]


def _join_new(segments: list[str]) -> str:
    """Join segments with commas, skipping empty ones and ones whose words already appear in order."""
    kept: list[str] = []
    hay: list[str] = []
    for seg in segments:
        toks = norm_tokens(seg)
        if not seg or not toks or contains_phrase(hay, toks):
            continue
        kept.append(seg)
        hay.extend(toks)
        hay.append("")  # no phrase match across a comma
    return ", ".join(kept)


def _neg_split(negative: str) -> list[str]:
    return [t.strip() for t in negative.split(",") if t.strip()]


def _check_max_sources(max_sources: object) -> int:
    if isinstance(max_sources, bool) or not isinstance(max_sources, int) or not (
        0 <= max_sources <= MAX_LAYER_SOURCES
    ):
        raise ValueError(
            f'Build Ambient Prompt: "sources" is {max_sources!r} but must be 0 to {MAX_LAYER_SOURCES}. '
            f"Pick a whole number from 0 (bed only) to {MAX_LAYER_SOURCES}."
        )
    return max_sources


def _analyse_layers(caption: str, preset: str, extra: str, table: SceneTable | None = None) -> dict:
    info = _analyse(caption, preset, extra, table)
    table = info["table"]
    why = exclusion_of(info["reading"], table)

    def fits(s: str) -> bool:
        return not why(s)

    extra_fids = extra_families(info["extra"], info["family_ids"], table)
    textures = pick_textures(info["family_ids"], table, fits)
    events = pick_events(info["family_ids"], info["extra"], extra_fids, table, fits)
    return {**info, "textures": textures, "events": events, "extra_family_ids": extra_fids}


def build_layered_prompts(
    caption: str, preset: str = DEFAULT_PRESET, extra: str = "", max_sources: int = MAX_LAYER_SOURCES,
    table: SceneTable | None = None,
) -> LayeredPrompts:
    """Build prompts for a layered soundscape from one image caption.

    The bed is the steady background texture of the scene (generate it at full level); each source is
    one distinct, intermittent sound (generate each separately and mix it in quieter, panned).

    Args:
        caption: Image caption (what is seen); empty or unknown gives a generic bed and one generic source.
        preset: One of ``PRESET_NAMES``; its qualifiers go on the bed, its style on the sources.
        extra: Optional user detail, added to the bed; an event it names outright ("thunder") may also
            become a source, ranked like one more family named after the caption's.
        max_sources: How many source prompts at most, 0 to ``MAX_LAYER_SOURCES``. Sources are taken
            round-robin over the families in caption order (each family's first event, then second...),
            one per main noun; fewer come back when the scene has fewer distinct events, and duplicates
            are never used as padding.

    Returns:
        A :class:`LayeredPrompts`. Every prompt, and the shared negative (built by the same rules as
        :func:`build_prompt`'s and contradicting none of the prompts), is within ``MAX_PROMPT_WORDS``
        words and ``PROMPT_TOKEN_LIMIT`` estimated T5 tokens. Deterministic.

    Raises:
        ValueError: If ``preset`` is unknown or ``max_sources`` is not a whole number from 0 to 3.
    """
    n = _check_max_sources(max_sources)
    info = _analyse_layers(caption, preset, extra, table)
    p: Preset = info["preset"]
    scene = scene_phrase(info["cleaned"])
    bed = _fit(_join_new([*info["textures"], scene, BED_STEADY, info["extra"], *p.qualifiers]))
    style = SOURCE_STYLE.get(p.name, SOURCE_STYLE[DEFAULT_PRESET])
    events = info["events"][:n]
    sources = tuple(_fit(_join_new([e, *SOURCE_FLAVOUR, *style, SOURCE_BACKGROUND])) for e in events)
    negative = _negative(" , ".join([bed, *sources]), p, info["voiced"], info["cleaned"], info["extra"])
    if sources:
        negative = ", ".join(t for t in _neg_split(negative) if t not in EVENT_HOSTILE_NEGATIVE)
    negative = _fit(negative)
    names = tuple(EVENT_LABELS[e] for e in events)
    log.debug("layered ambient prompts: bed=%r sources=%r", bed, names)
    return LayeredPrompts(bed=bed, sources=sources, negative=negative, source_names=names)


def explain_layered(caption: str, preset: str = DEFAULT_PRESET, extra: str = "",
                    table: SceneTable | None = None) -> dict:
    """Report how a caption was split into a bed and sources, for logging and the CLI.

    Args:
        caption: Image caption.
        preset: One of ``PRESET_NAMES``.
        extra: Optional user detail text.

    Returns:
        ``{"families", "extra_families", "bed_textures", "events", "event_labels", "preset"}``: family
        names matched in the caption and (for events it names) in ``extra``, the family textures on the
        bed, every candidate source event in order (up to ``MAX_LAYER_SOURCES``) with its label, and
        the preset name.
    """
    info = _analyse_layers(caption, preset, extra, table)
    fams = info["table"].families
    return {
        "families": [fams[fi].name for fi in info["family_ids"]],
        "extra_families": [fams[fi].name for fi in info["extra_family_ids"]],
        "bed_textures": list(info["textures"]),
        "events": list(info["events"]),
        "event_labels": [EVENT_LABELS[e] for e in info["events"]],
        "preset": info["preset"].name,
    }


def source_prompts(layered: LayeredPrompts, slots: int = 3) -> list[str]:
    """The source prompts for ``slots`` outputs: the distinct sources first, then a faint variant of the bed
    (its first phrase, "distant, faint, quiet background") in every slot the scene has no source for, so a
    sampler connected to an unused output still makes a quiet layer that mixes in unnoticed."""
    faint = f"{layered.bed.split(',')[0]}, distant, faint, quiet background"
    return list(layered.sources[:slots]) + [faint] * (slots - len(layered.sources[:slots]))
