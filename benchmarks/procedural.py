"""The procedural engine (issue 19): speed, flat memory, no repetition over an hour, and the measured spectra.

    python benchmarks/procedural.py [--minutes 60] [--layers pink surf ...] [--out benchmarks]

Each layer streams ``--minutes`` (and 1 minute) in a fresh process pinned to one CPU core with one BLAS/OpenMP
thread; each block is consumed on the fly (its 1 s RMS kept), so the process' peak RSS is the engine's working
memory, which must not grow with length. Prints a table and writes results_procedural.json.

- speed: audio seconds per CPU second of the process (``time.process_time``, one core), the ``--minutes`` stream.
- memory: peak RSS (MB) at 1 minute and at ``--minutes``.
- repetition: the largest |normalised autocorrelation| (unbiased) of the 1 s RMS envelope at lags from 10 s to half
  the length; a bed that repeated itself would read near 1.
- spectra (120 s, seed 1): pink/brown slope (dB/octave, 50 Hz-10 kHz, fit on 1/6-octave band means of a Welch PSD);
  spectral centroid and envelope-modulation centroid (50 ms RMS, 0.02-10 Hz) of rain, wind and surf; the crickets'
  envelope peak against Dolbear's law at 15, 22 and 30 C.
"""
import argparse
import json
import math
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHILD = r"""
import json, os, resource, sys, time
os.sched_setaffinity(0, {{min(os.sched_getaffinity(0))}})
sys.path.insert(0, {root!r})
import numpy as np
from nodes.audio import procedural as P
list(P.stream_layer({layer!r}, 2.0, 0))  # warm-up: imports and first calls
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t, w = time.process_time(), time.perf_counter()
rms = []
for block in P.stream_layer({layer!r}, {seconds}, 0):
    m = (block.astype(np.float64).mean(0) ** 2)
    n = m.size // P.SAMPLE_RATE
    rms += list(np.sqrt(m[:n * P.SAMPLE_RATE].reshape(n, P.SAMPLE_RATE).mean(1)))
cpu, wall = time.process_time() - t, time.perf_counter() - w
e = np.asarray(rms) - np.mean(rms)
k = e.size
ac = np.correlate(e, e, "full")[k - 1:] / float(e @ e) * k / (k - np.arange(k))
print(json.dumps({{"seconds": {seconds}, "cpu_s": cpu, "wall_s": wall, "rss_before_mb": rss0,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "repetition": float(np.abs(ac[10:k // 2]).max()) if k > 40 else None}}))
"""


def stream_child(layer: str, seconds: float) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", CHILD.format(root=ROOT, layer=layer, seconds=seconds)],
                         capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def spectra() -> dict:
    """The measured spectra and rates (120 s, seed 1; crickets 60 s, seed 3)."""
    import numpy as np
    from scipy.signal import welch

    sys.path.insert(0, ROOT)
    from nodes.audio import procedural as P
    from nodes.audio.procedural_layers import chirps_per_second

    sr = P.SAMPLE_RATE

    def psd(x):
        return welch(x.astype(np.float64).mean(0), sr, nperseg=16384)

    def slope(x, lo=50.0, hi=10000.0):
        f, p = psd(x)
        edges = lo * 2 ** (np.arange(0, math.log2(hi / lo) + 1e-9, 1 / 6))
        c = [math.log2(math.sqrt(a * b)) for a, b in zip(edges[:-1], edges[1:])]
        lv = [10 * math.log10(p[(f >= a) & (f < b)].mean()) for a, b in zip(edges[:-1], edges[1:])]
        return float(np.polyfit(c, lv, 1)[0])

    def envelope_spectrum(x, frame):
        hop = round(frame * sr)
        m = x.astype(np.float64).mean(0) ** 2
        e = np.sqrt(m[:m.size // hop * hop].reshape(-1, hop).mean(1))
        e = e - e.mean()
        return np.fft.rfftfreq(e.size, frame), np.abs(np.fft.rfft(e)) ** 2

    out = {"slope_db_per_octave": {c: round(slope(P.render_layer(c, 120, 1)), 3) for c in ("white", "pink", "brown")}}
    for layer in ("rain (light)", "rain (steady)", "rain (heavy)", "wind", "surf"):
        x = P.render_layer(layer, 120, 1)
        f, p = psd(x)
        fm, pm = envelope_spectrum(x, 0.05)
        k = (fm >= 0.02) & (fm <= 10)
        out[layer] = {"centroid_hz": round(float((f * p).sum() / p.sum()), 1),
                      "modulation_centroid_hz": round(float((fm[k] * pm[k]).sum() / pm[k].sum()), 3)}
    crickets = {}
    for celsius in (15.0, 22.0, 30.0):
        expected = chirps_per_second(celsius)
        fm, pm = envelope_spectrum(P.render_layer("crickets", 60, 3, temperature_c=celsius), 0.01)
        k = (fm >= expected / 1.5) & (fm <= expected * 1.5)
        crickets[f"{celsius:g} C"] = {"dolbear_chirps_per_s": round(expected, 4),
                                      "measured_chirps_per_s": round(float(fm[k][np.argmax(pm[k])]), 4)}
    out["crickets"] = crickets
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--layers", nargs="+")
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks"))
    args = ap.parse_args()
    sys.path.insert(0, ROOT)
    from nodes.audio.procedural import LAYER_NAMES

    rows = {}
    print(f"{'layer':15s} {'x real time':>11s} {'RSS 1 min':>10s} {'RSS ' + format(args.minutes, 'g') + ' min':>11s} "
          f"{'repetition':>10s}", flush=True)
    for layer in args.layers or LAYER_NAMES:
        short, long = stream_child(layer, 60.0), stream_child(layer, args.minutes * 60)
        rows[layer] = {"x_real_time_one_core": round(long["seconds"] / long["cpu_s"], 1),
                       "peak_rss_mb_1_min": round(short["peak_rss_mb"], 1),
                       f"peak_rss_mb_{args.minutes:g}_min": round(long["peak_rss_mb"], 1),
                       "repetition_max_autocorr_lag_over_10s": round(long["repetition"], 3), "runs": [short, long]}
        r = rows[layer]
        print(f"{layer:15s} {r['x_real_time_one_core']:>10.1f}x {r['peak_rss_mb_1_min']:>9.1f} "
              f"{r[f'peak_rss_mb_{args.minutes:g}_min']:>10.1f} {r['repetition_max_autocorr_lag_over_10s']:>10.3f}",
              flush=True)
    result = {"minutes": args.minutes, "cpu": os.uname().machine, "load_average_at_end": os.getloadavg(),
              "layers": rows, "spectra": spectra()}
    print(json.dumps(result["spectra"], indent=1))
    with open(os.path.join(args.out, "results_procedural.json"), "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
