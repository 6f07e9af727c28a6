"""A caption or prompt -> the procedural layers that fit it, at mixing levels (a small keyword table, stdlib only).

Each rule is (words, layers): when any of its words appears in the text (whole words, case-insensitive, a plural
"s" allowed), its layers join the plan at their gains in dB (a layer named by several rules keeps its loudest
gain). Nothing matched: a soft brown-noise bed. The plan's levels are relative to each layer's calibrated -23 LUFS.
"""
from __future__ import annotations

import re

# (words, ((layer, gain_db), ...)): the first matching rule for a layer sets nothing special; all matches add up
RULES = (
    (("beach", "ocean", "sea", "seaside", "shore", "coast", "surf", "wave", "waves", "bay", "harbor", "harbour"),
     (("surf", 0.0), ("wind", -10.0))),
    (("drizzle", "drizzling", "mist", "misty"), (("rain (light)", -2.0),)),
    (("rain", "rainy", "raining", "rainfall", "wet", "umbrella", "puddle"), (("rain (steady)", 0.0),)),
    (("downpour", "storm", "stormy", "monsoon", "pouring"), (("rain (heavy)", 0.0), ("wind", -6.0))),
    (("thunder", "thunderstorm", "lightning"), (("rain (heavy)", -2.0), ("thunder", -3.0))),
    (("wind", "windy", "breeze", "breezy", "gust", "mountain", "mountains", "desert", "field", "meadow",
      "prairie", "cliff", "hill", "snow", "snowy", "tundra"), (("wind", 0.0),)),
    (("forest", "woods", "woodland", "tree", "trees", "jungle", "park", "garden", "leaves"), (("wind", -6.0),)),
    (("cricket", "crickets", "summer", "insects", "meadow"), (("crickets", -8.0),)),
    (("river", "stream", "creek", "brook", "waterfall", "fountain"), (("stream", 0.0),)),
    (("fire", "fireplace", "campfire", "bonfire", "fireside", "hearth", "candle", "candles"), (("fire", 0.0),)),
    (("city", "street", "road", "traffic", "highway", "downtown", "urban", "car", "cars", "bus", "town"),
     (("traffic", -4.0),)),
    (("office", "room", "bedroom", "library", "interior", "indoor", "indoors", "kitchen", "cafe", "hall",
      "classroom", "studio", "hotel", "lobby", "spaceship", "cabin"), (("room tone", 0.0),)),
    (("white noise",), (("white", 0.0),)),
    (("pink noise",), (("pink", 0.0),)),
    (("brown noise", "brownian", "sleep", "sleeping"), (("brown", -4.0),)),
)
NIGHT_WORDS = ("night", "evening", "dusk", "midnight", "twilight", "moonlit", "moon")
NIGHT_OUTDOORS = ("forest", "woods", "woodland", "trees", "meadow", "field", "garden", "park", "summer", "countryside",
                  "farm", "camp", "campfire", "lake", "prairie")
DEFAULT_PLAN = (("brown", -3.0),)


def _has(text: str, word: str) -> bool:
    return re.search(r"\b" + re.escape(word) + r"s?\b", text) is not None


def scene_plan(text: str) -> list[tuple[str, float]]:
    """The layers for ``text`` as ``[(layer, gain_db), ...]`` (loudest first, at most 5); a summer night or a
    night outdoors adds crickets."""
    text = (text or "").lower()
    gains: dict[str, float] = {}
    for words, layers in RULES:
        if any(_has(text, w) for w in words):
            for layer, gain_db in layers:
                gains[layer] = max(gains.get(layer, -1e9), gain_db)
    if any(_has(text, w) for w in NIGHT_WORDS) and any(_has(text, w) for w in NIGHT_OUTDOORS):
        gains["crickets"] = max(gains.get("crickets", -1e9), -6.0)
    plan = sorted(gains.items(), key=lambda kv: -kv[1])[:5]
    return plan or list(DEFAULT_PLAN)


def describe_plan(text: str, plan: list[tuple[str, float]]) -> str:
    """One line a person reads: what was heard in the text and what will play, e.g.
    ``"beach at dusk" -> surf 0 dB + wind -10 dB``."""
    layers = " + ".join(f"{layer} {gain_db:+g} dB" if gain_db else f"{layer} 0 dB" for layer, gain_db in plan)
    note = " (no scene word matched: a soft bed)" if tuple(plan) == DEFAULT_PLAN and text.strip() else ""
    return f"{text.strip()!r} -> {layers}{note}"
