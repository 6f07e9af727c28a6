"""How well do the prompts fit their scenes? Every caption of tests/data/prompt_cases.jsonl x every preset through
Build Ambient Prompt's builder, scored without any model:

- on-scene: the prompt names at least one of the case's expected sources ("waves", "pins", "fans"...);
- contradiction: the prompt names one of the case's forbidden sources ("crickets" in snow, "car horns" in a
  bowling alley...), or contains a forbidden text slip ("an underwater a");
- within limit: prompt and negative fit PROMPT_TOKEN_LIMIT estimated T5 tokens and MAX_PROMPT_WORDS words;
- deterministic: the same outputs twice in this process and once more in a fresh interpreter with another hash seed.

Sources are looked for in the prompt without its echo of the caption ("ambience of a bowling alley": a segment made
only of the caption's own words) and without the preset's qualifiers, so a caption word never counts as a source.
Words match whole, plural-insensitive ("car" matches "cars passing by").

    python benchmarks/prompts.py            # table per preset, writes benchmarks/results_prompts.json
    python benchmarks/prompts.py --show 20  # also print the first 20 failing cases of each kind (default preset)
    python benchmarks/prompts.py --out -    # no file
    python benchmarks/prompts.py --cases tests/data/prompt_cases_heldout.jsonl --label heldout-after
    AMBIENT_TEXT_DIR=/old/checkout/nodes/text python benchmarks/prompts.py --label before   # measure another builder
"""
from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.util
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEXT = os.environ.get("AMBIENT_TEXT_DIR") or os.path.join(ROOT, "nodes", "text")  # another checkout's, to compare
CASES = os.path.join(ROOT, "tests", "data", "prompt_cases.jsonl")
RESULTS = os.path.join(ROOT, "benchmarks", "results_prompts.json")
FILLER = {"ambience", "of", "a", "an", "the"}


def load_prompt_module():
    """nodes/text as a standalone package (standard library only), without the rest of the pack."""
    spec = importlib.util.spec_from_file_location("ambient_text", os.path.join(TEXT, "__init__.py"),
                                                  submodule_search_locations=[TEXT])
    pkg = importlib.util.module_from_spec(spec)
    sys.modules["ambient_text"] = pkg
    spec.loader.exec_module(pkg)
    return importlib.import_module("ambient_text.prompt")


def load_cases(path: str = CASES) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def tokens(text: str) -> list[str]:
    toks = re.findall(r"[a-z0-9]+", text.lower())
    return [t[:-1] if len(t) > 3 and t.endswith("s") else t for t in toks]


def has_phrase(hay: list[str], phrase: str) -> bool:
    needle = tokens(phrase)
    n = len(needle)
    return n > 0 and any(hay[i:i + n] == needle for i in range(len(hay) - n + 1))


def sound_tokens(prompt: str, caption: str, qualifiers: tuple) -> list[str]:
    """The prompt's tokens without the caption echo and the preset qualifiers ("" between segments)."""
    cap = set(tokens(caption)) | FILLER
    quals = {q.strip().lower() for q in qualifiers}
    out: list[str] = []
    for seg in prompt.split(","):
        seg = seg.strip()
        toks = tokens(seg)
        if not toks or seg.lower() in quals or set(toks) <= cap:
            continue
        out.extend(toks)
        out.append("")
    return out


def score_case(case: dict, prompt: str, qualifiers: tuple) -> tuple[bool, list[str]]:
    hay = sound_tokens(prompt, case["caption"], qualifiers)
    on_scene = any(has_phrase(hay, e) for e in case["expect"])
    bad = [f for f in case["forbid"] if has_phrase(hay, f)]
    bad += [f for f in case.get("forbid_text", []) if f in prompt.lower()]
    return on_scene, bad


def run_all(mod, cases: list[dict]) -> dict:
    out = {}
    for preset in mod.PRESET_NAMES:
        out[preset] = [mod.build_prompt(c["caption"], preset) for c in cases]
    return out


def digest(outputs: dict) -> str:
    return hashlib.sha256(json.dumps(outputs, sort_keys=True).encode()).hexdigest()


def fresh_digest(seed: str, cases: str) -> str:
    env = dict(os.environ, PYTHONHASHSEED=seed, AMBIENT_TEXT_DIR=TEXT)
    res = subprocess.run([sys.executable, os.path.abspath(__file__), "--digest", "--cases", cases], env=env,
                         capture_output=True, text=True, check=True)
    return res.stdout.strip()


def summarise(mod, cases: list[dict], outputs: dict, show: int) -> dict:
    table = {}
    for preset, pairs in outputs.items():
        quals = mod.PRESETS[preset].qualifiers
        on = bad = fit = 0
        misses, contras = [], []
        for case, (prompt, negative) in zip(cases, pairs):
            ok, wrong = score_case(case, prompt, quals)
            on += ok
            bad += bool(wrong)
            fit += all(mod.estimate_tokens(t) <= mod.PROMPT_TOKEN_LIMIT and len(t.split()) <= mod.MAX_PROMPT_WORDS
                       for t in (prompt, negative))
            if not ok:
                misses.append((case["caption"], prompt))
            if wrong:
                contras.append((case["caption"], wrong, prompt))
        n = len(cases)
        table[preset] = {"cases": n, "on_scene": round(on / n, 4), "contradictions": round(bad / n, 4),
                         "within_limit": round(fit / n, 4)}
        if show and preset == mod.DEFAULT_PRESET:
            for cap, p in misses[:show]:
                print(f"MISS  {cap!r}\n      -> {p}")
            for cap, w, p in contras[:show]:
                print(f"CONTRA {cap!r} {w}\n      -> {p}")
    return table


def build_speed(mod, cases: list[dict]) -> dict:
    """Milliseconds per build_prompt call: over the case set's captions, and for one 2,500-word caption (the
    figure the old timed unit test held under 50 ms; timings live here, not in tests)."""
    import time

    t0 = time.perf_counter()
    for case in cases:
        mod.build_prompt(case["caption"])
    per_caption = (time.perf_counter() - t0) / max(1, len(cases)) * 1000
    stress = "a busy market street with people near a river " * 250
    t0 = time.perf_counter()
    for _ in range(5):
        mod.build_prompt(stress)
    return {"per_caption_ms": round(per_caption, 3), "stress_ms": round((time.perf_counter() - t0) / 5 * 1000, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--show", type=int, default=0, help="print up to N misses and N contradictions (default preset)")
    ap.add_argument("--out", default=RESULTS, help="results JSON path ('-' for none)")
    ap.add_argument("--label", default="", help="key of this run in the JSON (default latest); other keys are kept")
    ap.add_argument("--cases", default=CASES, help="the case file (JSON lines: caption, expect, forbid)")
    ap.add_argument("--digest", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    mod = load_prompt_module()
    cases = load_cases(args.cases)
    outputs = run_all(mod, cases)
    if args.digest:
        print(digest(outputs))
        return 0
    same = digest(outputs) == digest(run_all(mod, cases)) == fresh_digest("12345", args.cases)
    table = summarise(mod, cases, outputs, args.show)
    print(f"{len(cases)} captions x {len(table)} presets   deterministic: {same}")
    print(f"{'preset':26s} {'on-scene':>9s} {'contradict':>11s} {'in limit':>9s}")
    for preset, row in table.items():
        print(f"{preset:26s} {row['on_scene']:9.1%} {row['contradictions']:11.1%} {row['within_limit']:9.1%}")
    allrows = list(table.values())
    mean = {k: round(sum(r[k] for r in allrows) / len(allrows), 4) for k in ("on_scene", "contradictions",
                                                                           "within_limit")}
    print(f"{'all presets':26s} {mean['on_scene']:9.1%} {mean['contradictions']:11.1%} {mean['within_limit']:9.1%}")
    speed = build_speed(mod, cases)
    print(f"speed: {speed['per_caption_ms']:.2f} ms per caption (the case set), {speed['stress_ms']:.0f} ms for a "
          f"2,500-word caption")
    if args.out != "-":
        runs = {}
        if os.path.exists(args.out):  # keep the other labelled runs (before / after) side by side
            with open(args.out, encoding="utf-8") as fh:
                runs = json.load(fh).get("runs", {})
        runs[args.label or "latest"] = {"cases": len(cases), "deterministic": same, "presets": table, "mean": mean,
                                        "speed": speed}
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump({"runs": runs}, fh, indent=2)
            fh.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
