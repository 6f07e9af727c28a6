"""The scene table: places, objects, cue words, source kinds, ambient layers and exclusions, read from data files.

The built-in table is ``scenes.json`` beside this module (its ``about`` entry documents the format); users add
their own scene families in the same format (``.json``, or ``.toml`` on Python 3.11+) in a folder or file that is
merged over it: an entry with the name of a built-in place, object, layer or exclusion replaces it, a new name adds
one, cue and kind word lists are extended. The 77 classic families of tables.py come first; a place or object named
like one of them replaces it. Every file is checked when loaded: a bad entry raises ``ValueError`` naming the file,
the line and the entry. Pure Python, standard library only; nothing is read at import.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
from dataclasses import dataclass

from .tables import FAMILIES, Family

BUILTIN_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scenes.json")
SETTINGS = ("indoor", "outdoor", "underwater", "vehicle", "space", "abstract")
CUE_AXES = ("setting", "time", "season", "weather")
WHEN_KEYS = ("setting", "time", "season", "weather", "family")
_SECTIONS = ("about", "family_settings", "places", "objects", "cues", "kinds", "layers", "exclusions")


@dataclass(frozen=True)
class SceneTable:
    """A loaded, validated scene table (built-in plus user files), ready for matching.

    ``families``: the classic families then the table's places and objects (index = family id);
    ``index``: every trigger form -> (family id, canonical trigger); ``cues[axis][value]``: cue phrases;
    ``kinds[kind]``: word phrases that put a source phrase in that kind; ``layers`` and ``exclusions``:
    name -> rule dict (``when`` = list of condition dicts, OR of ANDs); ``files``: what was read, in order."""

    families: tuple
    index: dict
    longest: int
    cues: dict
    kinds: dict
    layers: dict
    exclusions: dict
    files: tuple
    cue_index: dict = dataclasses.field(default_factory=dict)
    cue_longest: int = 1
    first_words: frozenset = frozenset()  # first words of every trigger (a quick skip)
    cue_first_words: frozenset = frozenset()  # first words of every cue phrase


def variants(trigger: str) -> list[str]:
    """Singular/plural forms of a trigger (inflecting its last word), the trigger first."""
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


class _Source:
    """One data file's text, to name the line of an entry in errors."""

    def __init__(self, path: str, text: str):
        self.path, self.text = path, text

    def fail(self, entry: str, problem: str) -> ValueError:
        key = entry.split(".")[-1].strip('"')
        line = next((i for i, t in enumerate(self.text.splitlines(), 1) if f'"{key}"' in t or f"{key} =" in t
                     or f"[{entry}" in t), 0)
        where = f"{self.path}, line {line}" if line else self.path
        return ValueError(f'Build Ambient Prompt: scene table {where}, entry {entry}: {problem}. Fix or remove '
                          "that entry (the format is described in nodes/text/scenes.json, \"about\").")


def _parse(path: str) -> tuple[dict, _Source]:
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    src = _Source(path, text)
    try:
        if path.endswith(".toml"):
            try:
                import tomllib
            except ImportError as err:  # Python 3.10
                raise ValueError(f"Build Ambient Prompt: scene table {path} is TOML, which needs Python 3.11 or "
                                 "newer. Write it as .json instead (same entries).") from err
            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"Build Ambient Prompt: scene table {path}, line {err.lineno}: not valid JSON "
                         f"({err.msg}). Fix the syntax there.") from err
    except ValueError as err:
        if "Build Ambient Prompt" in str(err):
            raise
        raise ValueError(f"Build Ambient Prompt: scene table {path}: not valid TOML ({err}). Fix the syntax "
                         "there.") from err
    if not isinstance(data, dict):
        raise src.fail("(top level)", "must be a table of sections")
    unknown = [k for k in data if k not in _SECTIONS]
    if unknown:
        raise src.fail(unknown[0], f"unknown section; the sections are {', '.join(_SECTIONS)}")
    return data, src


def _words(value: object, src: _Source, entry: str, allow_empty: bool = False) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise src.fail(entry, "must be a list of non-empty strings")
    if not value and not allow_empty:
        raise src.fail(entry, "must not be empty")
    return tuple(" ".join(v.lower().split()) if entry.endswith("triggers") else v.strip() for v in value)


def _entry(name: str, spec: object, src: _Source, section: str) -> Family:
    entry = f'{section}."{name}"'
    if not isinstance(spec, dict):
        raise src.fail(entry, "must be a table with triggers and sources")
    extra = [k for k in spec if k not in ("triggers", "sources", "setting", "voices", "replaces", "note")]
    if extra:
        raise src.fail(entry, f'unknown key "{extra[0]}" (keys: triggers, sources, setting, voices, replaces, note)')
    setting = spec.get("setting", "")
    if setting not in ("", *SETTINGS):
        raise src.fail(entry, f'setting "{setting}" is not one of {", ".join(SETTINGS)}')
    if not isinstance(spec.get("voices", False), bool):
        raise src.fail(entry, "voices must be true or false")
    triggers = _words(spec.get("triggers"), src, f"{entry}.triggers")
    sources = _words(spec.get("sources"), src, f"{entry}.sources")
    replaces = _words(spec.get("replaces", []), src, f"{entry}.replaces", allow_empty=True)
    return Family(name, triggers, sources, spec.get("voices", False), False, setting, replaces)


def _when(value: object, src: _Source, entry: str) -> tuple[dict, ...]:
    conds = [value] if isinstance(value, dict) else value
    if not isinstance(conds, list) or not conds or not all(isinstance(c, dict) and c for c in conds):
        raise src.fail(entry, "when must be a condition table or a list of them")
    out = []
    for c in conds:
        bad = [k for k in c if k not in WHEN_KEYS]
        if bad:
            raise src.fail(entry, f'unknown condition "{bad[0]}" (conditions: {", ".join(WHEN_KEYS)})')
        out.append({k: frozenset(_words(v, src, f"{entry}.when.{k}")) for k, v in c.items()})
    return tuple(out)


def _rule(name: str, spec: object, src: _Source, section: str, kinds: dict) -> dict:
    entry = f'{section}."{name}"'
    keys = ("when", "sources", "note") if section == "layers" else ("when", "drop", "unless", "why")
    if not isinstance(spec, dict) or [k for k in spec if k not in keys]:
        raise src.fail(entry, f"must be a table with the keys {', '.join(keys)}")
    rule = {"name": name, "when": _when(spec.get("when"), src, entry)}
    if section == "layers":
        rule["sources"] = _words(spec.get("sources"), src, f"{entry}.sources")
        return rule
    rule["drop"] = _words(spec.get("drop"), src, f"{entry}.drop")
    missing = [k for k in rule["drop"] if k not in kinds]
    if missing:
        raise src.fail(entry, f'drops the unknown kind "{missing[0]}" (define it under "kinds")')
    rule["unless"] = frozenset(_words(spec.get("unless", []), src, f"{entry}.unless", allow_empty=True))
    why = spec.get("why", "")
    if not isinstance(why, str) or not why.strip():
        raise src.fail(entry, "why must say in a few words why these sounds do not fit")
    rule["why"] = why.strip()
    return rule


def _merge_file(acc: dict, data: dict, src: _Source) -> None:
    """Merge one parsed file into the accumulated raw table ``acc`` (later files win by entry name)."""
    for setting, names in (data.get("family_settings") or {}).items():
        if setting not in SETTINGS:
            raise src.fail(f"family_settings.{setting}", f"not one of {', '.join(SETTINGS)}")
        for fam in _words(names, src, f"family_settings.{setting}"):
            acc["family_settings"][fam] = setting
    for axis, values in (data.get("cues") or {}).items():
        if axis not in CUE_AXES or not isinstance(values, dict):
            raise src.fail(f"cues.{axis}", f"cue axes are {', '.join(CUE_AXES)}, each a table value -> words")
        for value, words in values.items():
            if axis == "setting" and value not in SETTINGS:
                raise src.fail(f"cues.setting.{value}", f"not one of {', '.join(SETTINGS)}")
            acc["cues"].setdefault(axis, {}).setdefault(value, [])
            acc["cues"][axis][value] += _words(words, src, f"cues.{axis}.{value}")
    for kind, words in (data.get("kinds") or {}).items():
        acc["kinds"].setdefault(kind, [])
        acc["kinds"][kind] += _words(words, src, f'kinds."{kind}"')
    for section in ("places", "objects"):
        for name, spec in (data.get(section) or {}).items():
            fam = _entry(name, spec, src, section)
            acc["entries"][name] = (fam, src, section)
    for section in ("layers", "exclusions"):
        for name, spec in (data.get(section) or {}).items():
            acc[section][name] = (spec, src)


def _build_index(families: list[Family], owners: list) -> tuple[dict, int]:
    index: dict[str, tuple[int, str]] = {}
    claimed: dict[str, object] = {}
    for fi, fam in enumerate(families):
        for trig in fam.triggers:
            if trig in index and index[trig][0] != fi and claimed.get(trig) is owners[fi][0]:
                other = families[index[trig][0]].name
                raise owners[fi][0].fail(f'{owners[fi][1]}."{fam.name}"', f'trigger "{trig}" is also a trigger '
                                         f'of "{other}" in the same file; keep it in one of them')
            index[trig], claimed[trig] = (fi, trig), owners[fi][0]
    for fi, fam in enumerate(families):
        for trig in fam.triggers:
            for form in variants(trig)[1:]:
                index.setdefault(form, (fi, trig))
    return index, max(len(k.split()) for k in index)


def _assemble(acc: dict, files: tuple) -> SceneTable:
    settings = acc["family_settings"]
    families = [dataclasses.replace(f, setting=settings.get(f.name, f.setting)) for f in FAMILIES]
    builtin_owner = (_Source("nodes/text/tables.py", ""), "families")
    owners: list = [builtin_owner] * len(families)
    by_name = {f.name: i for i, f in enumerate(families)}
    for name, (fam, src, section) in acc["entries"].items():
        fam = dataclasses.replace(fam, setting=fam.setting or settings.get(name, ""))
        if name in by_name:
            families[by_name[name]], owners[by_name[name]] = fam, (src, section)
        else:
            by_name[name] = len(families)
            families.append(fam)
            owners.append((src, section))
    index, longest = _build_index(families, owners)
    kinds = {k: tuple(dict.fromkeys(v)) for k, v in acc["kinds"].items()}
    layers = {n: _rule(n, spec, src, "layers", kinds) for n, (spec, src) in acc["layers"].items()}
    exclusions = {n: _rule(n, spec, src, "exclusions", kinds) for n, (spec, src) in acc["exclusions"].items()}
    cues = {axis: {v: tuple(dict.fromkeys(w)) for v, w in vals.items()} for axis, vals in acc["cues"].items()}
    cue_index: dict[str, list[tuple[str, str]]] = {}
    for axis, vals in cues.items():
        for value, phrases in vals.items():
            for phrase in phrases:
                cue_index.setdefault(" ".join(phrase.lower().split()), []).append((axis, value))
    cue_longest = max((len(k.split()) for k in cue_index), default=1)
    return SceneTable(tuple(families), index, longest, cues, kinds, layers, exclusions, files, cue_index,
                      cue_longest, frozenset(k.split()[0] for k in index),
                      frozenset(k.split()[0] for k in cue_index))


def user_files(paths: tuple[str, ...] | list[str], optional: tuple[str, ...] | list[str] = ()) -> list[str]:
    """The scene files that ``optional`` folders (skipped when missing) and then ``paths`` (files or folders that
    must exist; empty strings are skipped) name: a file itself, or a folder's ``*.json`` and ``*.toml`` (sorted)."""
    found: list[str] = []
    for p, must in [*((q, False) for q in optional), *((q, True) for q in paths)]:
        p = os.path.expanduser(p.strip()) if isinstance(p, str) else ""
        if not p:
            continue
        if os.path.isdir(p):
            found += sorted(os.path.join(p, n) for n in os.listdir(p) if n.endswith((".json", ".toml")))
        elif os.path.isfile(p):
            found.append(p)
        elif must:
            raise ValueError(f'Build Ambient Prompt: "scenes_path" is {p!r}, which does not exist. Give an '
                             "existing .json/.toml file or a folder of them, or leave it empty.")
    return found


@functools.lru_cache(maxsize=8)
def _load(files: tuple, stamps: tuple) -> SceneTable:
    acc: dict = {"family_settings": {}, "cues": {}, "kinds": {}, "entries": {}, "layers": {}, "exclusions": {}}
    for path in files:
        data, src = _parse(path)
        _merge_file(acc, data, src)
    return _assemble(acc, files)


def load_scene_table(paths: tuple[str, ...] | list[str] = (), optional: tuple[str, ...] | list[str] = ()) -> SceneTable:
    """The built-in scene table merged with the user files that ``optional`` folders (e.g. ComfyUI's
    user/default/ambient_scenes, skipped when missing) and then ``paths`` (files or folders) hold; later files
    win. Cached until a file changes.

    Raises:
        ValueError: naming the file, line and entry of a bad entry, or a path in ``paths`` that does not exist.
    """
    files = (BUILTIN_PATH, *user_files(list(paths), list(optional)))
    stamps = tuple((os.path.getmtime(f), os.path.getsize(f)) for f in files)
    return _load(files, stamps)
