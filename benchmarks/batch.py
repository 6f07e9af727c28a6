"""Clips per hour of `python -m nodes.cli batch` on this machine: --engine local vs --engine ray (2 workers).

    python benchmarks/batch.py [--items 16] [--steps 8] [--seconds 1] [--stable-audio DIR --caption "..."]

Without --stable-audio: the tiny demo models (the plumbing, not a model's speed). Each engine runs the same manifest
in a fresh process (model loading included, as a user sees it) into a fresh folder; the figures are the batch's own
summary (items done / wall time of the run, after the models are built). Ray is skipped when not importable.
Captions are given (--caption), so the figures are generation + craft + saving, not BLIP.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _manifest(folder: str, items: int) -> str:
    from PIL import Image

    os.makedirs(os.path.join(folder, "imgs"))
    with open(os.path.join(folder, "items.jsonl"), "w") as f:
        for i in range(items):
            Image.new("RGB", (32, 24), (i * 15 % 256, 80, 160)).save(os.path.join(folder, "imgs", f"{i}.png"))
            f.write(json.dumps({"image": f"imgs/{i}.png", "id": f"item-{i}"}) + "\n")
    return os.path.join(folder, "items.jsonl")


def _run(manifest: str, out: str, common: list[str], *extra: str) -> dict:
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "nodes.cli", "batch", manifest, "--out", out, *common, *extra],
                         cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if run.returncode != 0:
        raise SystemExit(f"batch failed ({run.returncode}): {run.stderr[-2000:]}")
    summary = json.load(open(os.path.join(out, "summary.json")))
    summary["process_seconds"] = round(wall, 1)
    summary["process_clips_per_hour"] = round(summary["done"] * 3600 / wall, 1)
    return summary


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--items", type=int, default=16)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--stable-audio")
    p.add_argument("--caption", default="rain on a tin roof")
    p.add_argument("--workers", type=int, default=2)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        manifest = _manifest(tmp, a.items)
        sa = a.stable_audio
        if not sa:
            sys.path.insert(0, ROOT)
            from nodes.tools.demo_models import build_demo_models

            _, sa = build_demo_models(os.path.join(tmp, "models"))
        common = ["--stable-audio", sa, "--caption", a.caption, "--steps", str(a.steps), "--seconds",
                  str(a.seconds), "--no-spectrogram", "--quiet"]
        print(f"{a.items} items, {a.steps} steps, {a.seconds:g} s clips, model {os.path.basename(sa)}, "
              f"{os.cpu_count()} CPUs")
        rows = [("local", _run(manifest, os.path.join(tmp, "local"), common))]
        try:
            import ray.data  # noqa: F401
        except ImportError:
            print("ray: not installed (pip install \"ray[data]\"), skipped")
        else:
            rows.append((f"ray, {a.workers} workers", _run(manifest, os.path.join(tmp, "ray"), common, "--engine",
                                                           "ray", "--workers", str(a.workers))))
        for name, s in rows:
            print(f"{name:<16} batch {s['seconds']:>7.1f} s  {s['clips_per_hour']:>9.1f} clips/hour   whole process "
                  f"{s['process_seconds']:>7.1f} s  {s['process_clips_per_hour']:>9.1f} clips/hour")


if __name__ == "__main__":
    main()
