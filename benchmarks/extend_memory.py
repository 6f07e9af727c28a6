"""Extend Soundscape: peak process memory against length, on a tiny random Stable Audio model (CPU).

    python benchmarks/extend_memory.py [--minutes 1 10 30]

Each length runs in a fresh process; peak RSS minus the output buffer (21 MB per stereo minute at 44.1 kHz)
is the working memory, which should not grow with length. Prints a table and writes extend_memory.json.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

CHILD = r"""
import json, os, resource, sys, time
sys.path.insert(0, {tools!r})
from pack_loader import load_pack_nodes
load_pack_nodes()
import importlib
devices = importlib.import_module("ambient_nodes.models.devices")
folders = importlib.import_module("ambient_nodes.models.folders")
loading = importlib.import_module("ambient_nodes.models.loading")
extend = importlib.import_module("ambient_nodes.generate.extend")
handle = folders.make_handle(folders.STABLE_AUDIO, "sa448", [{root!r}], "fp32", devices.DevicePlan())
pipe = loading.load(handle)
extend.extend_soundscape(pipe, "rain", minutes=0.5, overlap_seconds=2.0, steps=2, seed=0)  # warm-up
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t = time.perf_counter()
w, rate = extend.extend_soundscape(pipe, "rain", minutes={minutes}, overlap_seconds=2.0, steps=2, seed=0)
print(json.dumps({{"minutes": {minutes}, "seconds": time.perf_counter() - t, "samples": w.shape[-1],
                  "output_mb": w.numel() * 4 / 2**20, "rss_before_mb": base,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, nargs="+", default=[1, 10, 30])
    ap.add_argument("--out", default=".")
    args = ap.parse_args()
    root_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    tools = os.path.join(root_dir, "tools")
    sys.path.insert(0, tools)
    from pack_loader import load_pack_nodes

    load_pack_nodes()
    import importlib

    demo = importlib.import_module("ambient_nodes.tools.demo_models")
    tmp = tempfile.mkdtemp(prefix="extend_mem_")
    demo.build_tiny_stable_audio(os.path.join(tmp, "sa448"), sample_size=448)
    rows = []
    for minutes in args.minutes:
        code = CHILD.format(tools=tools, root=tmp, minutes=minutes)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        row["working_mb"] = row["peak_rss_mb"] - row["output_mb"]
        rows.append(row)
    print(f"{'minutes':>8} {'samples':>12} {'time s':>8} {'output MB':>10} {'peak RSS MB':>12} {'peak - output MB':>17}")
    for r in rows:
        print(f"{r['minutes']:>8g} {r['samples']:>12} {r['seconds']:>8.1f} {r['output_mb']:>10.1f} "
              f"{r['peak_rss_mb']:>12.1f} {r['working_mb']:>17.1f}")
    with open(os.path.join(args.out, "extend_memory.json"), "w") as f:
        json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
