"""Scene reading (issue 18): places before words, exclusions, the explanation, user scene tables."""

from __future__ import annotations

import json
import pathlib
import re
import sys

import pytest

from conftest import pack_module, run_node

prompt = pack_module("text.prompt")
scenetable = pack_module("text.scenetable")
CASES = pathlib.Path(__file__).parent / "data" / "prompt_cases.jsonl"


def sources_of(p: str, caption: str) -> str:
    """The prompt without its echo of the caption and without the default preset's qualifiers."""
    cap = set(re.findall(r"[a-z0-9]+", caption.lower())) | {"ambience", "of", "a", "an", "the"}
    quals = set(prompt.PRESETS[prompt.DEFAULT_PRESET].qualifiers)
    segs = [s.strip() for s in p.split(",")]
    return ", ".join(s for s in segs if s not in quals and not set(re.findall(r"[a-z0-9]+", s)) <= cap)


def heard(caption: str) -> str:
    return sources_of(prompt.build_prompt(caption)[0], caption)


@pytest.mark.parametrize("caption, wanted, unwanted", [
    ("a snowy cabin in the mountains at night", r"wind|snow", r"cricket|insect|cicada"),
    ("a crowded night market with food stalls", r"vendors|sizzling|chatter", r"cricket|\bowl"),
    ("an empty parking garage at night", r"concrete|engine", r"cricket|\bowl"),
    ("a spaceship cockpit with a view of the stars", r"hum|beeps", r"cricket|\bowl|bird|wind"),
    ("a bowling alley with people bowling", r"pins|bowling balls", r"pavement|car horns|cars passing"),
    ("there is a server room with racks of computers", r"fans|hum", r"clock|household|keyboard"),
    ("a painting of a stormy sea with a ship", r"waves|thunder|surf", r"gentle wash|at the dock"),
    ("a tennis match in a stadium", r"ball|applause", r"whistle"),
    ("a train station at night", r"train|announcements", r"cricket|\bowl"),
    ("a frozen lake with people ice skating", r"skates|ice", r"cricket|frog|lapping"),
])
def test_issue_scenes_get_their_sources_and_no_contradiction(caption, wanted, unwanted):
    got = heard(caption)
    assert re.search(wanted, got), (caption, got)
    assert not re.search(unwanted, got), (caption, got)


def test_underwater_echo_has_no_grammar_slip():
    p, _ = prompt.build_prompt("an underwater view of a coral reef")
    assert "an underwater a" not in p and "bubbles" in p


def test_the_case_set_meets_the_goal():
    cases = [json.loads(line) for line in CASES.read_text().splitlines() if line.strip()]
    assert len(cases) >= 300
    on = bad = 0
    for case in cases:
        got = f", {heard(case['caption']).lower()},"
        on += any(re.search(rf"\b{re.escape(e)}", got) for e in case["expect"])
        bad += any(re.search(rf"\b{re.escape(f)}", got) for f in case["forbid"])
    assert on / len(cases) >= 0.97 and bad / len(cases) <= 0.01, (on, bad, len(cases))


def test_explanation_names_setting_place_sources_and_exclusions():
    _, _, why = prompt.build_prompt_explained("a snowy cabin in the mountains at night")
    assert "setting: outdoor" in why and "time: night" in why and "weather: snow" in why
    assert "crickets chirping (no insects in snow" in why
    _, _, why = prompt.build_prompt_explained("a bowling alley with people bowling")
    assert "setting: indoor" in why and "place: bowling alley" in why
    assert "pins crashing (bowling alley)" in why
    _, _, why = prompt.build_prompt_explained("a server room with a computer")
    assert "office sounds (replaced by a more specific place)" in why and "keyboard" not in why


def test_node_has_an_explanation_output_and_keeps_the_first_two():
    p, n, why = run_node("AmbientPromptBuilder", caption="a beach", preset="natural field recording", extra="")
    assert (p, n) == prompt.build_prompt("a beach") and "place: beach" in why


def write(path: pathlib.Path, data: dict) -> pathlib.Path:
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


def test_user_table_adds_and_replaces_places(tmp_path):
    user = write(tmp_path / "mine.json", {"places": {
        "pinball hall": {"triggers": ["pinball hall"], "setting": "indoor", "sources": ["flippers clacking"]},
        "beach": {"triggers": ["beach"], "setting": "outdoor", "sources": ["pebbles rolling in the surf"]},
    }})
    table = prompt.load_scene_table([str(tmp_path)])
    assert str(user) in table.files
    assert "flippers clacking" in prompt.build_prompt("a pinball hall", table=table)[0]
    assert prompt.build_prompt("a beach", table=table)[0].startswith("pebbles rolling in the surf")
    assert "waves breaking" in prompt.build_prompt("a beach")[0]  # the built-in table is untouched


def test_node_reads_the_comfyui_user_folder_and_the_path_input(tmp_path, monkeypatch):
    import folder_paths

    folder = tmp_path / "user" / "default" / "ambient_scenes"
    folder.mkdir(parents=True)
    write(folder / "a.json", {"places": {"forge hall": {"triggers": ["forge hall"], "sources": ["anvils ringing"]}}})
    other = write(tmp_path / "b.json", {"places": {"sauna": {"triggers": ["sauna"], "sources": ["steam hissing"]}}})
    monkeypatch.setattr(folder_paths, "get_user_directory", lambda: str(tmp_path / "user"))
    out = run_node("AmbientPromptBuilder", caption="a forge hall", preset="natural field recording", extra="")
    assert "anvils ringing" in out[0]
    out = run_node("AmbientPromptBuilder", caption="a sauna", preset="natural field recording", extra="",
                   scenes_path=str(other))
    assert "steam hissing" in out[0]


@pytest.mark.parametrize("data, words", [
    ({"places": {"x": {"triggers": ["x"], "sources": "not a list"}}}, ['places."x".sources', "list"]),
    ({"places": {"x": {"triggers": ["x"], "sources": ["a"], "setting": "moon"}}}, ['places."x"', "moon"]),
    ({"exclusions": {"x": {"when": {"setting": ["indoor"]}, "drop": ["ghosts"], "why": "w"}}}, ["ghosts", "kinds"]),
    ({"layers": {"x": {"when": {"colour": ["red"]}, "sources": ["a"]}}}, ['layers."x"', "colour"]),
    ({"placez": {}}, ["placez", "unknown section"]),
])
def test_bad_entry_names_file_line_and_entry(tmp_path, data, words):
    path = write(tmp_path / "bad.json", data)
    with pytest.raises(ValueError) as err:
        prompt.load_scene_table([str(path)])
    msg = str(err.value)
    assert str(path) in msg and re.search(r"line [1-9]", msg), msg
    assert all(w in msg for w in words), msg


def test_bad_json_names_the_line(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{\n  "places": {\n    "x": {"triggers": ["x"],}\n  }\n}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken\.json, line 3"):
        prompt.load_scene_table([str(path)])
    for missing in (tmp_path / "missing.json", tmp_path / "no_such_folder"):
        with pytest.raises(ValueError, match="does not exist"):
            prompt.load_scene_table([str(missing)])
    assert prompt.load_scene_table(optional=[str(tmp_path / "no_such_folder")]).files == (scenetable.BUILTIN_PATH,)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="TOML needs tomllib (Python 3.11+)")
def test_toml_user_table(tmp_path):
    (tmp_path / "mine.toml").write_text('[places."ice rink hall"]\ntriggers = ["ice rink hall"]\n'
                                        'setting = "indoor"\nsources = ["skates scraping"]\n', encoding="utf-8")
    table = prompt.load_scene_table([str(tmp_path)])
    assert "skates scraping" in prompt.build_prompt("an ice rink hall", table=table)[0]


def test_builtin_table_is_valid_and_documented():
    table = scenetable.load_scene_table()
    assert len(table.families) > len(prompt.FAMILIES) + 50
    data = json.loads(pathlib.Path(scenetable.BUILTIN_PATH).read_text())
    assert "about" in data and all(f["why"] for f in data["exclusions"].values())


def test_save_wav_keeps_the_explanation_in_the_metadata(tmp_path, monkeypatch):
    import torch

    comfy_glue = pack_module("comfy.glue")
    wav = pack_module("audio.wav")
    monkeypatch.setattr(comfy_glue, "output_directory", lambda: str(tmp_path))
    _, _, why = run_node("AmbientPromptBuilder", caption="a snowy cabin at night", preset="natural field recording",
                         extra="")
    audio = {"waveform": torch.zeros(1, 2, 2000), "sample_rate": 44100, "ambient_meta": {"seed": 3}}
    saved = run_node("AmbientSaveWav", audio=audio, filename_prefix="ambient/x", bit_depth="16", explanation=why)
    f = saved["ui"]["audio"][0]
    back = wav.read_metadata(str(tmp_path / f["subfolder"] / f["filename"]))
    assert back["ambient"] == {"seed": 3, "explanation": why} and "no insects in snow" in why
