"""Cancel inside long DSP: the largest gap between two Cancel checks (CPU, no model).

    python benchmarks/cancel_latency.py [--minutes 10] [--before REV] [--profile] [--only loudness loop fades]

A 10-minute 44.1 kHz stereo pink-ish noise clip (seeded) goes through Normalize Loudness (-10 LUFS, -1 dBTP ceiling,
so the limiter works), Make Seamless Loop (2 s overlap, 60 s quiet-end search) and Fade In / Out (60 s each way),
with a ``cancel`` callback that timestamps each call. "largest gap" is the longest stretch of work without a check
(from the call's start to the first check, between checks, and from the last check to the return): how long
ComfyUI's Cancel can wait (wall time; the largest gap in this process's CPU time is printed too, as other work on a
shared machine stretches wall gaps) (after a warm-up call on 1 s, so first-use imports are not counted; the --before version's too). With --before REV, Normalize Loudness as it was at REV runs too (loaded from
``git show REV:nodes/audio/loudness.py``; a version without a ``cancel`` argument has one gap, its whole run).
--profile prints cProfile's top functions for Normalize Loudness. Figures depend on the machine and its load.
"""
import argparse
import cProfile
import importlib
import importlib.util
import os
import pstats
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RATE = 44100


def _pack(name: str):
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from pack_loader import load_pack_nodes

    load_pack_nodes()
    return importlib.import_module(f"ambient_nodes.{name}")


def _old_loudness(rev: str):
    """``nodes/audio/loudness.py`` at ``rev``, loaded as a sibling of the current one (same relative imports)."""
    source = subprocess.run(["git", "-C", ROOT, "show", f"{rev}:nodes/audio/loudness.py"], check=True,
                            capture_output=True, text=True).stdout
    path = os.path.join(tempfile.mkdtemp(prefix="cancel_latency_"), "loudness_before.py")
    with open(path, "w") as f:
        f.write(source)
    _pack("audio.loudness")
    spec = importlib.util.spec_from_file_location("ambient_nodes.audio.loudness_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def pink_noise(minutes: float, seed: int = 1):
    """``float32 [1, 2, T]`` pink-ish noise (white noise shaped 1/sqrt(f) by FFT), peak 0.5."""
    import numpy as np
    import torch

    frames = int(minutes * 60 * RATE)
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft(rng.standard_normal((2, frames)), axis=-1)
    f = np.arange(spectrum.shape[-1], dtype=np.float64)
    spectrum /= np.sqrt(np.maximum(f, 1.0))
    x = np.fft.irfft(spectrum, frames, axis=-1)
    x *= 0.5 / np.abs(x).max()
    return torch.from_numpy(x.astype(np.float32))[None]


def timed(fn, *args, cancellable=True, **kwargs) -> dict:
    stamps, places, cpu_stamps = [], [], []

    def cancel():
        stamps.append(time.perf_counter())
        cpu_stamps.append(time.process_time())
        caller = sys._getframe(1)
        while caller.f_code.co_name in ("_check", "cancel_blocks"):
            caller = caller.f_back
        places.append(f"{caller.f_code.co_name}:{caller.f_lineno}")

    cpu_start, start = time.process_time(), time.perf_counter()
    if cancellable:
        fn(*args, cancel=cancel, **kwargs)
    else:
        fn(*args, **kwargs)
    stop, cpu = time.perf_counter(), time.process_time() - cpu_start
    points = [start, *stamps, stop]
    cpu_points = [cpu_start, *cpu_stamps, cpu_start + cpu]
    gaps = [b - a for a, b in zip(points, points[1:])]
    where = ["start", *places, "return"]
    worst = max(range(len(gaps)), key=gaps.__getitem__)
    return {"seconds": stop - start, "cpu_seconds": cpu, "checks": len(stamps), "largest_gap": max(gaps),
            "gap_between": f"{where[worst]} -> {where[worst + 1]}",
            "largest_cpu_gap": max(b - a for a, b in zip(cpu_points, cpu_points[1:]))}


def _report(name: str, result: dict) -> None:
    print(f"{name:<28} total {result['seconds']:7.2f} s (CPU {result['cpu_seconds']:.2f} s)   checks {result['checks']:6d}   "
          f"largest gap {result['largest_gap']:6.3f} s ({result['gap_between']}; largest CPU-time gap "
          f"{result['largest_cpu_gap']:.3f} s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--before", default=None, help="git revision of the Normalize Loudness to compare with")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--only", nargs="*", default=["loudness", "loop", "fades"])
    args = parser.parse_args()
    clip = pink_noise(args.minutes)
    print(f"clip: {args.minutes:g} min, {RATE} Hz stereo pink-ish noise; load average {os.getloadavg()[0]:.1f}, "
          f"{os.cpu_count()} CPUs", flush=True)
    if "loudness" in args.only:
        loudness = _pack("audio.loudness")
        if args.before:
            old = _old_loudness(args.before)
            takes_cancel = "cancel" in old.normalize_loudness.__code__.co_varnames
            old.normalize_loudness(clip[..., :RATE], RATE, -10.0, -1.0)  # its first-use imports not timed either
            _report(f"loudness at {args.before}", timed(old.normalize_loudness, clip, RATE, -10.0, -1.0,
                                                        cancellable=takes_cancel))
        loudness.normalize_loudness(clip[..., :RATE], RATE, -10.0, -1.0)  # imports (scipy.signal: ~1-2 s) not timed
        if args.profile:
            profile = cProfile.Profile()
            profile.enable()
        _report("loudness (this tree)", timed(loudness.normalize_loudness, clip, RATE, -10.0, -1.0))
        if args.profile:
            profile.disable()
            pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
    if "loop" in args.only:
        loop = _pack("audio.loop")
        loop.make_seamless_loop(clip[..., :RATE], RATE, 0.2, 0.5)
        _report("loop (this tree)", timed(loop.make_seamless_loop, clip, RATE, 2.0, 60.0))
    if "fades" in args.only:
        fades = _pack("audio.fades")
        fades.apply_fades(clip[..., :RATE], RATE, 0.2, 0.2, "equal-power")
        _report("fades (this tree)", timed(fades.apply_fades, clip, RATE, 60.0, 60.0, "equal-power"))


if __name__ == "__main__":
    main()
