"""Tests for nodes/text/ (caption -> Stable Audio Open prompt)."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest

from conftest import pack_module

_TEXT = pathlib.Path(__file__).resolve().parents[1] / "nodes" / "text"
prompt = pack_module("text.prompt")
layered_mod = pack_module("text.layered")
clean_mod = pack_module("text.clean")
# a fresh interpreter with the text package alone (standard library only), loaded by file path as `m`
_LOAD_TEXT = (
    "import importlib,importlib.util,sys;"
    f"s=importlib.util.spec_from_file_location('text', {str(_TEXT / '__init__.py')!r}, "
    f"submodule_search_locations=[{str(_TEXT)!r}]);"
    "t=importlib.util.module_from_spec(s);sys.modules['text']=t;s.loader.exec_module(t);"
    "m=importlib.import_module('text.prompt');"
)

BEACH = "a picture of a sandy beach with blue water and palm trees"
OFFICE = "there is a man sitting at a desk with a computer in an office"
FOREST = "a forest with tall trees and moss"
STREET = "arafed view of a city street at night with cars"


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def has_word(text: str, word: str) -> bool:
    return re.search(rf"\b{re.escape(word)}\b", text.lower()) is not None


def neg_terms(negative: str) -> list[str]:
    return [t.strip() for t in negative.split(",") if t.strip()]


# --- public constants -------------------------------------------------------------


def test_preset_choices_lookup_and_negative_extras():
    # the node's choice list: saved workflows store these names; the default comes first
    assert prompt.PRESET_NAMES == [
        "natural field recording",
        "calm meditation bed",
        "cinematic atmosphere",
        "game background loop",
        "cozy interior",
    ]
    assert prompt.DEFAULT_PRESET == prompt.PRESET_NAMES[0]
    # a name is found whatever its case and spacing
    assert prompt.build_prompt(BEACH, "  Cozy   INTERIOR ") == prompt.build_prompt(BEACH, "cozy interior")
    # each preset's own negative terms reach the negative prompt unless the prompt itself names them
    for name in prompt.PRESET_NAMES:
        p, n = prompt.build_prompt(FOREST, name)
        extras = prompt.PRESETS[name].negative_extra
        assert extras and all(t in neg_terms(n) or has_word(p, t) for t in extras), name
    with pytest.raises(Exception):
        prompt.PRESETS[prompt.DEFAULT_PRESET].name = "x"  # frozen: no caller changes a preset for everyone


def test_word_budget_is_conservative():
    assert 20 <= prompt.MAX_PROMPT_WORDS <= 64
    # 1.5 tokens a word plus a comma every few words must stay under T5's 128 tokens
    assert prompt.MAX_PROMPT_WORDS * 2 <= 128


# --- scene mapping ----------------------------------------------------------------


def test_beach_caption():
    p, n = prompt.build_prompt(BEACH)
    assert "waves" in p and "gulls" in p
    assert not has_word(p, "blue") and not has_word(p, "picture")
    assert "sandy beach" in p
    assert "music" in neg_terms(n) and "speech" in neg_terms(n)


def test_office_caption_wants_speech_murmur():
    p, n = prompt.build_prompt(OFFICE)
    assert "keyboard" in p
    terms = neg_terms(n)
    assert "speech" not in terms and "talking" not in terms
    assert "music" in terms and "distortion" in terms
    assert not has_word(p, "there")


def test_forest_caption():
    p, n = prompt.build_prompt(FOREST)
    assert "birdsong" in p and "leaves rustling" in p
    assert "speech" in neg_terms(n)


def test_city_street_at_night():
    p, _ = prompt.build_prompt(STREET)
    assert "arafed" not in p and not has_word(p, "view")
    assert "footsteps on pavement" in p and "crickets" in p and "traffic" in p
    assert "birdsong" not in p  # daytime birds are skipped in night scenes


def test_families_table_size_and_uniqueness():
    fams = prompt.FAMILIES
    assert len(fams) >= 40
    names = [f.name for f in fams]
    assert len(set(names)) == len(names)
    triggers = [t for f in fams for t in f.triggers]
    assert len(set(triggers)) == len(triggers), "a trigger word belongs to two families"
    for f in fams:
        assert f.triggers and f.sources
        assert all(t == t.lower().strip() for t in f.triggers)


@pytest.mark.parametrize("family", prompt.FAMILIES, ids=lambda f: f.name)
def test_first_trigger_yields_family_sources(family):
    caption = f"a photo of {family.triggers[0]}"
    p, _ = prompt.build_prompt(caption)
    assert any(src in p for src in family.sources), (caption, p)
    assert family.name in prompt.explain_prompt(caption)["families"]


def test_plurals_and_simple_stemming():
    assert "forest" in prompt.explain_prompt("tall trees")["families"]
    assert "city" in prompt.explain_prompt("two cities")["families"]
    assert "beach" in prompt.explain_prompt("big waves")["families"]
    assert "wildlife" in prompt.explain_prompt("wolves in snow")["families"]


def test_whole_word_matching():
    fams = prompt.explain_prompt("a red barn on a farm")["families"]
    assert "bar" not in fams and "farm" in fams
    assert "bar" in prompt.explain_prompt("people drinking in a bar")["families"]
    assert "bar" in prompt.explain_prompt("Bars")["families"]
    # "seat" and "season" must not trigger "sea"; "crowded" is a listed form of crowd
    assert prompt.explain_prompt("a seat in the season")["families"] == []
    p, _ = prompt.build_prompt("a barn")
    assert "glasses clinking" not in p


def test_longest_phrase_wins():
    assert prompt.explain_prompt("a coffee shop")["families"] == ["cafe"]
    assert prompt.explain_prompt("a fire truck")["families"] == ["emergency"]
    assert prompt.explain_prompt("a parking lot")["families"] == ["traffic"]
    assert prompt.explain_prompt("a rain forest")["families"] == ["jungle"]


def test_combined_families_capped_deduped_and_ordered():
    info = prompt.explain_prompt("a campfire in the woods next to a lake under a stormy sky with a dog")
    assert info["families"][:3] == ["fire", "forest", "lake"]
    assert "sky" not in info["families"]  # weak family ignored when others match
    srcs = info["sources"]
    assert len(srcs) == prompt.MAX_SOURCES == 6
    assert len(set(srcs)) == len(srcs)
    assert srcs[0] == "crackling fire"
    p, _ = prompt.build_prompt("a campfire in the woods next to a lake")
    assert p.index("crackling fire") < p.index("calm water lapping")


def test_weak_family_used_alone():
    assert prompt.explain_prompt("a cloudy sky")["families"] == ["sky"]


# --- caption cleaning ---------------------------------------------------------------


def test_colour_words_dropped():
    cap = "a red car and a green tree next to a bright yellow house with a black and white dog"
    p, _ = prompt.build_prompt(cap)
    for colour in ("red", "green", "yellow", "black", "white", "bright"):
        assert not has_word(p, colour), colour
    assert prompt.clean_caption("an orange cat on a blue sofa") == "a cat on a sofa"


def test_artefacts_and_lead_ins_dropped():
    assert prompt.clean_caption("a photography of a lake") == "a lake"
    assert prompt.clean_caption("a black and white photo of a dog") == "a dog"
    assert prompt.clean_caption("arafed view of a city street at night with cars") == "a city street at night with cars"
    assert prompt.clean_caption("there are two dogs in the background") == "two dogs"
    assert prompt.clean_caption("an image of a close up of a cat") == "a cat"
    assert prompt.clean_caption("araffe  standing   in a FIELD") == "standing in a field"
    p, _ = prompt.build_prompt("a photography of a snowy mountain range")
    assert not has_word(p, "photography") and "snow" in p
    dropped = prompt.explain_prompt("a photography of a blue lake")["dropped"]
    assert "a photography of" in dropped and "blue" in dropped


def test_clean_caption_handles_odd_input():
    assert prompt.clean_caption("") == ""
    assert prompt.clean_caption(None) == ""
    assert prompt.clean_caption("\x00beach\x07\nat\tnight\x1b") == "beach at night"
    assert prompt.clean_caption("Café 🌊 海 beach") == "cafe beach"


# --- presets ------------------------------------------------------------------------


def test_every_preset_changes_prompt_and_adds_qualifiers():
    prompts = {}
    for name in prompt.PRESET_NAMES:
        p, n = prompt.build_prompt(BEACH, name)
        for q in prompt.PRESETS[name].qualifiers:
            assert q in p, (name, q)
        assert n
        prompts[name] = p
    assert len(set(prompts.values())) == len(prompts)
    # the scene sources come first regardless of the preset
    assert all(p.startswith("waves breaking") for p in prompts.values())


def test_preset_negative_extras():
    _, n = prompt.build_prompt(FOREST, "calm meditation bed")
    assert "sudden loud sounds" in neg_terms(n)
    _, n = prompt.build_prompt(FOREST, "game background loop")
    assert "distinct events" in neg_terms(n)


def test_unknown_preset_raises():
    with pytest.raises(ValueError) as exc:
        prompt.build_prompt(BEACH, "dubstep")
    msg = str(exc.value)
    assert msg.startswith('Build Ambient Prompt: "preset" is "dubstep" but must be one of: ')
    assert all(name in msg for name in prompt.PRESET_NAMES)
    assert msg.endswith("Pick one from the list.")
    with pytest.raises(ValueError, match='"preset"'):
        prompt.explain_prompt(BEACH, "nope")


# --- negative prompt ------------------------------------------------------------------


@pytest.mark.parametrize(
    "caption",
    ["a band playing music on stage at a concert", "a man playing a piano in a living room", "a guitar on a bed"],
)
def test_music_caption_keeps_music_out_of_negative(caption):
    _, n = prompt.build_prompt(caption)
    terms = neg_terms(n)
    assert "music" not in terms and "melody" not in terms
    assert "distortion" in terms


def test_music_in_extra_and_singing():
    _, n = prompt.build_prompt(FOREST, extra="distant piano")
    assert "music" not in neg_terms(n)
    _, n = prompt.build_prompt("a choir singing in a cathedral")
    terms = neg_terms(n)
    assert "singing" not in terms and "vocals" not in terms and "music" not in terms
    _, n = prompt.build_prompt("a concert hall")
    assert "singing" in neg_terms(n)  # music wanted, singing not asked for


def test_negative_never_contradicts_prompt_and_is_deduped():
    for cap in (BEACH, OFFICE, STREET, "an ambulance with sirens", "a crowded market"):
        for name in prompt.PRESET_NAMES:
            p, n = prompt.build_prompt(cap, name)
            terms = neg_terms(n)
            assert len(terms) == len(set(terms))
            for t in terms:
                assert not has_word(p, t), (cap, name, t)
    _, n = prompt.build_prompt("an ambulance in the street", "calm meditation bed")
    assert "sirens" not in neg_terms(n)  # the scene wants sirens


# --- generic / odd input ----------------------------------------------------------------


@pytest.mark.parametrize("caption", ["", "   \n\t ", None, "a cell phone", "🙂🙂", "東京の夜景"])
def test_unknown_or_empty_scene_gives_generic_prompt(caption):
    p, n = prompt.build_prompt(caption)
    assert p.startswith("soft room tone, distant ambient sounds")
    for q in prompt.PRESETS[prompt.DEFAULT_PRESET].qualifiers:
        assert q in p
    assert n
    assert prompt.explain_prompt(caption)["families"] == []


def test_emoji_non_latin_and_control_chars():
    cap = "a beach 🌊🏖️ at sunset, 海辺 пляж\x00\x07\x1b\u200b\r\n"
    p, n = prompt.build_prompt(cap, extra="calm 🌙 夜 mood\x00\x08")
    assert "waves" in p
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f\u200b]", p + n)
    assert "海辺" not in p and "пляж" not in p and "🌊" not in p
    assert "calm 🌙 夜 mood" in p  # kept when the user typed it in extra


def test_extra_is_placed_after_scene_before_qualifiers():
    p, _ = prompt.build_prompt(BEACH, extra="light rain")
    assert p.index("ambience of a sandy beach") < p.index("light rain") < p.index("high quality field recording")


def test_determinism_in_process():
    runs = {prompt.build_prompt(STREET, name, "x") for name in prompt.PRESET_NAMES for _ in range(3)}
    assert len(runs) == len(prompt.PRESET_NAMES)


def test_determinism_across_hash_seeds():
    code = (
        _LOAD_TEXT
        + "c='a campfire in the woods next to a lake with a dog, a cat, a market and people at a concert';"
        "print(m.build_prompt(c, 'cozy interior', 'warm'))"
    )
    outs = set()
    for seed in ("1", "12345"):
        res = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONHASHSEED": seed}, check=True
        )
        outs.add(res.stdout)
    outs.add(repr(prompt.build_prompt(
        "a campfire in the woods next to a lake with a dog, a cat, a market and people at a concert",
        "cozy interior",
        "warm",
    )) + "\n")
    assert len(outs) == 1


# --- length limits ------------------------------------------------------------------------


def _check_whole_words(short: str, full: str) -> None:
    full_words = set(words(full))
    assert all(w in full_words for w in words(short)), (short, full)


def test_huge_caption_stays_within_budget():
    vocab = "beach forest city rain office crowd kitchen train snow desert market temple".split()
    caption = " ".join(f"a {vocab[i % len(vocab)]} with number{i}" for i in range(2000))[:10_000]
    assert len(caption) == 10_000
    for name in prompt.PRESET_NAMES:
        p, n = prompt.build_prompt(caption, name, extra="slow evolving " * 100)
        assert 0 < len(p.split()) <= prompt.MAX_PROMPT_WORDS
        assert prompt.estimate_tokens(p) <= prompt.PROMPT_TOKEN_LIMIT
        assert len(n.split()) <= prompt.MAX_PROMPT_WORDS
        full = prompt._unshortened_prompt(caption, name, "slow evolving " * 100)
        assert len(full.split()) > len(p.split())
        assert full.startswith(p.rstrip(","))
        _check_whole_words(p, full)
        assert p.startswith("waves breaking")  # sources survive; the tail is cut


def test_long_extra_drops_qualifiers_first():
    extra = ", ".join(f"detail number {i}" for i in range(40))
    p, _ = prompt.build_prompt(BEACH, extra=extra)
    assert len(p.split()) <= prompt.MAX_PROMPT_WORDS
    assert "waves breaking" in p and "ambience of a sandy beach" in p
    assert "spacious stereo" not in p
    assert not p.endswith(",")


def test_shorten_returns_unchanged_when_it_fits():
    text = "  birds chirping,  wind  "
    assert prompt.shorten_to_limit(text, 100) is text
    assert prompt.shorten_to_limit(text, 100, lambda s: 0) is text


@pytest.mark.parametrize("limit", [0, 1, 2, 3, 5, 8, 13, 21, 34])
def test_shorten_custom_counter_whole_words(limit):
    text = (
        "birds chirping, wind blowing through tall pine trees, distant stream over stones, "
        "field recording, spacious stereo, very detailed and natural sounding ambience"
    )

    def count(s):
        return len(s.split()) * 2

    out = prompt.shorten_to_limit(text, limit, count)
    assert count(out) <= limit
    out_words = out.split()
    src_words = text.split()
    if not out_words:
        assert limit < 2 and out == ""  # not even one word fits
        return
    assert out_words[:-1] == src_words[: len(out_words) - 1]
    last = src_words[len(out_words) - 1]
    assert out_words[-1] in (last, last.rstrip(","))
    assert not out.endswith(",") and out == out.strip()


def test_shorten_prefers_comma_boundary():
    text = "waves breaking, gentle wash on sand, distant seagulls, sea breeze"
    out = prompt.shorten_to_limit(text, 8, lambda s: len(s.split()))
    assert out == "waves breaking, gentle wash on sand, distant seagulls"
    # no comma prefix worth keeping -> falls back to a word boundary
    out = prompt.shorten_to_limit("one two three four five six, seven", 4, lambda s: len(s.split()))
    assert out == "one two three four"


def test_shorten_default_counter_and_trailing_connectors():
    text = "the sound of waves on a beach with a light wind " * 30
    out = prompt.shorten_to_limit(text, 40)
    assert 0 < prompt.estimate_tokens(out) <= 40
    assert out.split()[-1] not in {"a", "of", "on", "with", "the"}
    assert prompt.shorten_to_limit("x" * 500, 3) == ""  # a single over-long word is never cut


def test_estimate_tokens_is_conservative():
    assert prompt.estimate_tokens("") == 1
    assert prompt.estimate_tokens("birds chirping, wind") >= 5
    assert prompt.estimate_tokens("a " * 60) >= 90


# --- layered mode (bed + separate sources) ---------------------------------------------------

NIGHT_STREET = "a quiet street at night with a parked car"
UNKNOWN = "a cell phone"


def layered(caption, preset=prompt.DEFAULT_PRESET, extra="", max_sources=3):
    return prompt.build_layered_prompts(caption, preset, extra, max_sources)


def noun_key(label: str) -> str:
    return layered_mod.noun_key(label)


def test_layered_api_shape():
    lp = layered(BEACH)
    assert isinstance(lp, prompt.LayeredPrompts)
    assert isinstance(lp.bed, str) and lp.bed
    assert isinstance(lp.sources, tuple) and isinstance(lp.source_names, tuple)
    assert len(lp.sources) == len(lp.source_names)
    assert isinstance(lp.negative, str) and lp.negative
    with pytest.raises(Exception):
        lp.bed = "x"  # frozen
    assert prompt.MAX_LAYER_SOURCES == 3
    assert prompt.build_layered_prompts(BEACH) == layered(BEACH)  # defaults: default preset, 3 sources
    for name in ("LayeredPrompts", "build_layered_prompts", "explain_layered", "family_layers", "EVENT_LABELS"):
        assert name in prompt.__all__


def test_every_family_has_a_bed_phrase():
    generic = 0
    for fam in prompt.FAMILIES:
        beds, events = prompt.family_layers(fam)
        assert beds, fam.name
        assert all(isinstance(b, str) and b for b in beds)
        assert not set(beds) & set(events), fam.name
        assert set(events) <= set(fam.sources)
        assert set(fam.sources) <= set(beds) | set(events)  # every source phrase is one or the other
        if set(beds) <= set(prompt.GENERIC_BED):
            generic += 1
    assert generic <= 3  # the generic room-tone fallback is the exception, not the rule


def test_event_labels_refer_to_known_phrases():
    known = {s for f in prompt.FAMILIES for s in f.sources} | set(prompt.GENERIC_SOURCES)
    assert set(prompt.EVENT_LABELS) <= known, set(prompt.EVENT_LABELS) - known
    assert all(label and label == label.strip().lower() for label in prompt.EVENT_LABELS.values())
    assert set(prompt.EXTRA_BEDS) <= {f.name for f in prompt.FAMILIES}
    assert prompt.GENERIC_BED and prompt.GENERIC_EVENTS
    assert set(prompt.GENERIC_BED) | set(prompt.GENERIC_EVENTS) == set(prompt.GENERIC_SOURCES)


def test_layered_beach():
    lp = layered(BEACH)
    assert any(has_word(lp.bed, w) for w in ("waves", "surf", "sea")), lp.bed
    assert "gull" not in lp.bed
    assert "steady continuous background ambience" in lp.bed
    assert "sandy beach" in lp.bed
    assert "gulls" in lp.source_names
    assert "seagulls" in lp.sources[lp.source_names.index("gulls")]
    assert lp.sources[0].startswith("distant seagulls")  # beach is named before the palm trees
    for src in lp.sources:
        assert "occasional" in src and "isolated" in src
        assert "waves" not in src
    assert "music" in neg_terms(lp.negative) and "speech" in neg_terms(lp.negative)


def test_layered_office():
    lp = layered(OFFICE)
    assert any(w in lp.bed for w in ("hum", "room tone", "murmur")), lp.bed
    assert "keyboard" not in lp.bed
    assert any("keyboard" in s or "phone" in s for s in lp.sources)
    assert set(lp.source_names) >= {"keyboard", "phone"}
    terms = neg_terms(lp.negative)
    assert "speech" not in terms and "talking" not in terms  # office murmur is wanted
    assert "music" in terms


def test_layered_forest():
    lp = layered(FOREST)
    assert "leaves" in lp.bed or "wind" in lp.bed
    assert "birdsong" not in lp.bed and "woodpecker" not in lp.bed
    assert any("birdsong" in s or "woodpecker" in s for s in lp.sources)
    assert lp.source_names[:2] == ("birdsong", "woodpecker")


@pytest.mark.parametrize("caption", [STREET, NIGHT_STREET])
def test_layered_night_street(caption):
    lp = layered(caption)
    assert "crickets" in lp.bed and "traffic" in lp.bed
    assert "footsteps on pavement" in lp.sources[0]
    allsrc = " ".join(lp.sources)
    assert not re.search(r"bird|gull|skylark|woodpecker|rooster", allsrc + lp.bed)  # no daytime birds at night
    assert 1 <= len(lp.sources) <= 3


@pytest.mark.parametrize("caption", ["", None, "   ", UNKNOWN, "🙂🙂", "東京の夜景"])
def test_layered_unknown_scene_gets_generic_bed(caption):
    lp = layered(caption)
    assert lp.bed.startswith("soft room tone, gentle air movement")
    assert len(lp.sources) <= 1
    for src in lp.sources:
        assert "distant ambient sounds" in src
    assert lp.negative
    assert prompt.explain_layered(caption)["families"] == []


def test_layered_scene_without_events_is_not_padded():
    lp = layered("a waterfall")
    assert "waterfall" in lp.bed
    assert lp.sources == () and lp.source_names == ()
    assert len(layered("a foggy field").sources) <= 3
    # a family whose sounds are all events falls back to a generic bed only when nothing else has a bed
    lp = layered("a dog in a park")
    assert "room tone" not in lp.bed and "park" in lp.bed
    assert lp.source_names[0] == "dog"
    assert layered("a dog").bed.startswith("soft room tone")


@pytest.mark.parametrize("n", [0, 1, 2, 3])
def test_layered_max_sources_respected(n):
    lp = layered(FOREST, max_sources=n)
    assert len(lp.sources) == len(lp.source_names) == n
    assert lp.sources == layered(FOREST).sources[:n]  # a smaller count is a prefix of the full list
    assert lp.bed == layered(FOREST).bed


@pytest.mark.parametrize("bad", [4, 5, -1, 2.0, "2", None, True])
def test_layered_bad_max_sources_raises(bad):
    with pytest.raises(ValueError) as exc:
        layered(BEACH, max_sources=bad)
    msg = str(exc.value)
    assert msg.startswith('Build Ambient Prompt: "sources" is ')
    assert "must be 0 to 3" in msg


def test_layered_bad_max_sources_message():
    with pytest.raises(ValueError, match=r'^Build Ambient Prompt: "sources" is 5 but must be 0 to 3\. '):
        layered(BEACH, max_sources=5)
    with pytest.raises(ValueError, match='"preset"'):
        layered(BEACH, "dubstep")


CAPTIONS = [
    BEACH, OFFICE, FOREST, STREET, NIGHT_STREET, UNKNOWN,
    "a boat in a harbor with children on the beach",
    "a campfire in the woods next to a lake under a stormy sky with a dog",
    "a farm with cows, sheep, horses and chickens",
    "a busy market street with people near a river",
    "a bird on a branch in a garden with a birdbath",
    "a street with cars and a bus at a crosswalk",
    "a church next to a temple with a bell tower",
    "a kitchen with a stove",
]


@pytest.mark.parametrize("caption", CAPTIONS)
def test_layered_sources_distinct_one_noun_each(caption):
    lp = layered(caption)
    assert len(lp.sources) <= 3
    assert len(set(lp.sources)) == len(lp.sources)
    assert len(set(lp.source_names)) == len(lp.source_names)
    keys = [noun_key(n) for n in lp.source_names]
    assert len(set(keys)) == len(keys), lp.source_names
    for i, src in enumerate(lp.sources):
        for j, key in enumerate(keys):
            if i != j:
                assert key not in clean_mod.norm_tokens(src), (src, lp.source_names[j])
    for src in lp.sources:
        assert src.split(",")[0] not in lp.bed  # an event is a source, not part of the bed


def test_layered_sources_follow_caption_order():
    info = prompt.explain_layered("a boat in a harbor with children on the beach")
    assert info["families"] == ["harbor", "park", "beach"]
    lp = layered("a boat in a harbor with children on the beach")
    assert lp.source_names == ("boats", "children", "gulls")
    assert info["event_labels"][:3] == list(lp.source_names)


def test_layered_source_nouns_are_not_repeated():
    lp = layered("a dog in a living room")  # "distant dog barking" and "dog panting softly" share "dog"
    assert sum("dog" in s for s in lp.sources) == 1
    lp = layered("a street with cars")  # "cars passing by" then not "distant car horns"
    assert sum(has_word(s, "car") or has_word(s, "cars") for s in lp.sources) == 1
    lp = layered("a forest with birds")  # birdsong and birds chirping: one bird source
    assert sum("bird" in s for s in lp.sources) == 1


@pytest.mark.parametrize("name", prompt.PRESET_NAMES)
def test_layered_preset_qualifiers_on_bed(name):
    lp = layered(BEACH, name)
    for q in prompt.PRESETS[name].qualifiers:
        assert q in lp.bed, (name, q)
    for src in lp.sources:
        assert "loopable" not in src and "background ambience" not in src
    assert lp.bed.startswith("waves breaking")


def test_layered_presets_differ():
    beds = {layered(BEACH, name).bed for name in prompt.PRESET_NAMES}
    srcs = {layered(BEACH, name).sources for name in prompt.PRESET_NAMES}
    assert len(beds) == len(srcs) == len(prompt.PRESET_NAMES)


def test_layered_negative_rules_match_build_prompt():
    for cap in (BEACH, OFFICE, FOREST, STREET):
        assert layered(cap).negative == prompt.build_prompt(cap)[1]
    for cap in ("a band playing music on stage at a concert", "a man playing a piano in a living room"):
        terms = neg_terms(layered(cap).negative)
        assert "music" not in terms and "melody" not in terms and "distortion" in terms
    terms = neg_terms(layered("a choir singing in a cathedral").negative)
    assert "singing" not in terms and "vocals" not in terms
    assert "music" not in neg_terms(layered(FOREST, extra="distant piano").negative)
    assert "speech" not in neg_terms(layered("a crowded market").negative)


def test_layered_negative_never_contradicts_any_prompt():
    for cap in CAPTIONS + ["an ambulance with sirens", "a crowded market"]:
        for name in prompt.PRESET_NAMES:
            lp = layered(cap, name)
            terms = neg_terms(lp.negative)
            assert len(terms) == len(set(terms))
            for t in terms:
                for text in (lp.bed, *lp.sources):
                    assert not has_word(text, t), (cap, name, t, text)


def test_layered_game_loop_negative_allows_sources():
    terms = neg_terms(layered(FOREST, "game background loop").negative)
    assert "distinct events" not in terms and "sudden sounds" not in terms and "silence" not in terms
    assert "fade in" in terms
    # with no sources the preset's full negative applies, as in build_prompt
    lp = layered(FOREST, "game background loop", max_sources=0)
    assert lp.negative == prompt.build_prompt(FOREST, "game background loop")[1]
    assert "distinct events" in neg_terms(lp.negative)


def test_layered_extra_goes_on_bed_and_named_events_become_sources():
    lp = layered(BEACH, extra="distant thunder")
    assert "distant thunder" in lp.bed
    assert lp.bed.index("sandy beach") < lp.bed.index("distant thunder") < lp.bed.index("high quality")
    assert lp.source_names == ("gulls", "tropical birds", "thunder")
    assert prompt.explain_layered(BEACH, extra="distant thunder")["extra_families"] == ["storm"]
    # extra names a family but none of its events: the bed gets it, the sources do not
    lp = layered(BEACH, extra="light rain")
    assert "light rain" in lp.bed and lp.source_names == ("gulls", "tropical birds")
    lp = layered(FOREST, extra="thunder")  # the extra ranks as one more family after the caption's
    assert lp.source_names == ("birdsong", "thunder", "woodpecker")
    assert layered(FOREST, extra="thunder", max_sources=1).source_names == ("birdsong",)
    lp = layered(UNKNOWN, extra="a dog barking")
    assert lp.source_names == ("dog",)


@pytest.mark.parametrize("name", prompt.PRESET_NAMES)
def test_layered_prompts_within_budget(name):
    vocab = "beach forest city rain office crowd kitchen train snow desert market temple".split()
    caption = " ".join(f"a {vocab[i % len(vocab)]} with number{i}" for i in range(2000))[:10_000]
    for cap, extra in ((caption, "slow evolving " * 100), (BEACH, ""), (STREET, "x " * 300)):
        lp = layered(cap, name, extra)
        for text in (lp.bed, *lp.sources, lp.negative):
            assert 0 < len(text.split()) <= prompt.MAX_PROMPT_WORDS
            assert prompt.estimate_tokens(text) <= prompt.PROMPT_TOKEN_LIMIT
            assert not text.endswith(",") and text == text.strip()
    lp = layered(caption, name, "slow evolving " * 100)
    assert lp.bed.startswith("waves breaking")  # the textures survive; the tail is cut
    assert len(lp.sources) == 3


def test_layered_determinism():
    runs = {layered(STREET, name, "x", n) for name in prompt.PRESET_NAMES for n in range(4) for _ in range(3)}
    assert len(runs) == len(prompt.PRESET_NAMES) * 4
    code = (
        _LOAD_TEXT
        + "c='a campfire in the woods next to a lake with a dog, a cat, a market and people at a concert';"
        "print(m.build_layered_prompts(c, 'cozy interior', 'warm thunder', 3))"
    )
    outs = set()
    for seed in ("1", "12345"):
        res = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONHASHSEED": seed}, check=True
        )
        outs.add(res.stdout)
    assert len(outs) == 1


def test_explain_layered():
    info = prompt.explain_layered(BEACH, "cinematic atmosphere")
    assert info["families"] == ["beach", "tropical"]
    assert info["preset"] == "cinematic atmosphere"
    assert "waves breaking" in info["bed_textures"]
    assert info["events"][0] == "distant seagulls" and info["event_labels"][0] == "gulls"
    assert info["extra_families"] == []
    with pytest.raises(ValueError, match='"preset"'):
        prompt.explain_layered(BEACH, "nope")


def test_layered_leaves_build_prompt_alone():
    before = [prompt.build_prompt(c) for c in CAPTIONS]
    for c in CAPTIONS:
        layered(c)
    assert [prompt.build_prompt(c) for c in CAPTIONS] == before
