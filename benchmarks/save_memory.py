"""Save WAV: memory that saving adds on top of the audio it is given, against length (CPU, no model).

    python benchmarks/save_memory.py [--minutes 1 10 60] [--before REV]

Each case runs in a fresh process that first makes the clip (stereo, 44.1 kHz, float32, as a sampler hands it
over), then resets the kernel's peak-RSS mark (/proc/self/clear_refs) and saves it with loop points and metadata.
"added" = peak RSS during the save minus RSS before it: what saving needs beyond the audio itself. With --before,
the same cases also run against the pack as it was at REV (extracted with git archive), for a before/after table.
Prints a table and writes benchmarks/results_save_memory.json.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import time

CHILD = r"""
import json, os, resource, sys, tempfile, time
sys.path.insert(0, {tools!r})
from pack_loader import load_pack_nodes
load_pack_nodes()
import importlib
import torch
wav = importlib.import_module("ambient_nodes.audio.wav")

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
clip = torch.empty(1, 2, int({minutes} * 60 * 44100)).uniform_(-0.8, 0.8)
wav.save_wav(clip[:, :, :44100], 44100, tempfile.mkdtemp(), "warm/x", {bit_depth!r})  # imports, first-call caches
before = status("VmRSS")
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    how = "VmHWM after clear_refs"
except OSError:
    how = "ru_maxrss (peak may predate the save)"
t = time.perf_counter()
with tempfile.TemporaryDirectory(dir={out!r}) as out:
    wav.save_wav(clip, 44100, out, "bench/x", {bit_depth!r}, loop_points=True, metadata={{"ambient": {{"seed": 1}}}})
    seconds = time.perf_counter() - t
    size = sum(os.path.getsize(os.path.join(d, n)) for d, _, names in os.walk(out) for n in names)
peak = status("VmHWM") if how.startswith("VmHWM") else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"minutes": {minutes}, "bit_depth": {bit_depth!r}, "audio_mb": clip.numel() * 4 / 2**20,
                  "file_mb": size / 2**20, "rss_before_mb": before, "peak_rss_mb": peak,
                  "added_mb": peak - before, "seconds": seconds, "measured_by": how}}))
"""


def _extract(rev: str, root: str) -> str:
    """The pack's tree at ``rev`` in a temporary folder (git archive), for the 'before' runs."""
    dest = tempfile.mkdtemp(prefix="save_mem_before_")
    tar = os.path.join(dest, "tree.tar")
    subprocess.run(["git", "-C", root, "archive", "-o", tar, rev], check=True)
    with tarfile.open(tar) as t:
        t.extractall(dest)
    return dest


def _run(tree: str, minutes: float, bit_depth: str, out: str) -> dict:
    code = CHILD.format(tools=os.path.join(tree, "tools"), minutes=minutes, bit_depth=bit_depth, out=out)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, nargs="+", default=[1, 10, 60])
    ap.add_argument("--bit-depths", nargs="+", default=["16", "32-float"],
                    help="for lengths under 60 minutes; 60 minutes and over use 16 (the node's default) only")
    ap.add_argument("--before", metavar="REV", help="also measure the pack at this git revision")
    ap.add_argument("--out", default=None, help="folder for the JSON (default: benchmarks/)")
    args = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    trees = [("after", root)] + ([("before", _extract(args.before, root))] if args.before else [])
    scratch = tempfile.mkdtemp(prefix="save_mem_")
    rows = []
    for minutes in args.minutes:
        for bit_depth in (args.bit_depths if minutes < 60 else ["16"]):
            for label, tree in trees:
                row = {"version": label, **_run(tree, minutes, bit_depth, scratch)}
                rows.append(row)
                print(f"{label:>7} {minutes:>6g} min {bit_depth:>9}: audio {row['audio_mb']:8.1f} MB, file "
                      f"{row['file_mb']:8.1f} MB, saving added {row['added_mb']:8.1f} MB, {row['seconds']:.2f} s",
                      flush=True)
    print(f"\n| minutes | bit depth | audio MB | {' | '.join(f'added by saving, {t} (MB)' for t, _ in trees)} |")
    print("|---|---|---|" + "---|" * len(trees))
    for minutes in args.minutes:
        for bit_depth in (args.bit_depths if minutes < 60 else ["16"]):
            cells = [r for r in rows if r["minutes"] == minutes and r["bit_depth"] == bit_depth]
            print(f"| {minutes:g} | {bit_depth} | {cells[0]['audio_mb']:.1f} | "
                  + " | ".join(f"{r['added_mb']:.1f}" for r in cells) + " |")
    out_dir = args.out or os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(out_dir, "results_save_memory.json"), "w") as f:
        json.dump({"date": time.strftime("%Y-%m-%d"), "machine": platform.platform(), "python": sys.version.split()[0],
                   "before_rev": args.before, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
