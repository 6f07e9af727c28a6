"""Start-up cost: importing the pack in a fresh interpreter (as ComfyUI does at start) against importing the
libraries it would otherwise load eagerly. Median of N fresh processes each.

    python benchmarks/startup.py [-n 10]

Prints a table and writes startup.json. Goal: the pack's import <= 0.05 s.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = {
    "the pack (__init__.py, as ComfyUI loads it)": (
        "import importlib.util, sys; s = importlib.util.spec_from_file_location('pack', {init!r}, "
        "submodule_search_locations=[{root!r}]); m = importlib.util.module_from_spec(s); sys.modules['pack'] = m; "
        "s.loader.exec_module(m)"),
    "from diffusers import StableAudioPipeline": "from diffusers import StableAudioPipeline",
    "from transformers import BlipForConditionalGeneration, BlipProcessor":
        "from transformers import BlipForConditionalGeneration, BlipProcessor",
    "import torch": "import torch",
}


def time_import(stmt: str) -> float:
    code = ("import time; t = time.perf_counter(); " + stmt + "; print(time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/",
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=10)
    ap.add_argument("--out", default=".")
    args = ap.parse_args()
    rows = {}
    for label, stmt in CASES.items():
        stmt = stmt.format(init=os.path.join(ROOT, "__init__.py"), root=ROOT)
        times = [time_import(stmt) for _ in range(args.n)]
        rows[label] = {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times)}
    pack = rows[next(iter(CASES))]["median_s"]
    print(f"{'import':<72} {'median s':>9} {'x pack':>8}")
    for label, r in rows.items():
        print(f"{label:<72} {r['median_s']:>9.4f} {r['median_s'] / pack:>8.0f}")
    print(f"goal: pack <= 0.05 s -> {'met' if pack <= 0.05 else 'missed'} ({pack:.4f} s)")
    with open(os.path.join(args.out, "startup.json"), "w") as f:
        json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
