"""Stable Audio 3 Small on the CPU: wall seconds per second of audio, split into text encoder / 8 DiT steps /
SAME-S decode, and peak RSS, for the full-size architecture with random weights (speed and memory do not depend on
weight values). The model folder is built once by ``demo_models.build_tiny_stable_audio3(size="sa3-small")`` (fp16
on disk, about 1.6 GB) and loaded through the pack's loader path (``loading.pipeline_from_folder``, which puts the
exact SAME-S class in); the phases are the pack's own functions in ``generate/sa3.py``.

    python benchmarks/cpu_sa3_small.py                 # --quick: one config (bf16, 30 s clip), a few minutes
    python benchmarks/cpu_sa3_small.py --matrix        # fp32 and bf16 x 10 / 30 / 120 s (the pack's path)
    python benchmarks/cpu_sa3_small.py --all           # the matrix, then the levers; writes
                                                       # benchmarks/results_cpu_sa3_small.json
    python benchmarks/cpu_sa3_small.py --only bf16-30s-math   # chosen configs by name (see --list)

Every configuration runs in a fresh subprocess, so its peak RSS is its own. Per config: load (timed, not counted),
one short warm-up (2 s clip, 1 step, decode), then one timed run: the text encoder, 8 DiT steps (no guidance: the
model is distilled), the decode the pack does on the CPU (``families.decode_chunk_frames``: 256-latent chunks with
32 of overlap), then the extra decodes a config asks for (other chunk sizes; not counted in the total), and the
text encoder again on the same prompt (what a cache of the encoding would save). "total" = text + DiT + decode;
"x RT" = total / audio seconds. Peak RSS (GB = 1e9 bytes): the kernel's peak mark (VmHWM) over load + warm-up, then
per phase after resetting it through /proc/self/clear_refs; "peak" = the largest over the pack's path (load, text,
DiT, its decode; the extra decodes have their own peaks). A thread samples RssAnon / RssFile every 50 ms to tell
the weights from the mapped safetensors files (file-backed, reclaimable page cache). ``os.getloadavg()`` is recorded
before, during and after each config: the machine may be shared, and contention shows there.

Goals (issue 14, CPU speed): 30 s of audio in <= 30 s wall on 2 cores; 120 s in <= 120 s; peak RSS <= 3 GB. This is
a benchmark: it prints figures and never fails on a missed goal (targets are not tests).
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

PROMPT = "waves breaking, gentle wash on sand, distant seagulls, sea breeze, high quality field recording"
DEFAULT_FOLDER = os.path.join("/tmp", "sa3-small")
RESULTS = os.path.join(ROOT, "benchmarks", "results_cpu_sa3_small.json")
GB = 1e9


def config(name, *, dtype="bf16", seconds=30.0, threads=2, interop=None, decodes=(), sdpa="default", mkldnn=True,
           compile=False, note=""):
    """One measured configuration. ``dtype``: weights fp32 / bf16, or "autocast-bf16" (fp32 weights under
    ``torch.autocast("cpu", bfloat16)``); ``decodes``: extra decodes to time ((latent chunk, overlap), chunk 0 = whole);
    ``sdpa``: "default", "math" or "flash" (``torch.nn.attention.sdpa_kernel``); ``mkldnn``: oneDNN on or off;
    ``compile``: ``torch.compile`` (mode default) of the DiT, its compile time reported apart."""
    return dict(name=name, dtype=dtype, seconds=float(seconds), threads=threads, interop=interop,
                decodes=[list(d) for d in decodes], sdpa=sdpa, mkldnn=mkldnn, compile=compile, note=note)


# extra decodes (latent chunk, overlap; chunk 0 = whole); SAME-S sees at most 2 latents across an edge (see
# check_overlap), so an overlap of 2 decodes exactly what 32 does
_DECODES = {("fp32", 120): ((256, 2),),
            ("bf16", 30): ((128, 32), (0, 0), (256, 2)),
            ("bf16", 120): ((128, 32), (0, 0), (256, 2), (128, 2))}
MATRIX = [config(f"{dt}-{s}s", dtype=dt, seconds=s, decodes=_DECODES.get((dt, s), ()))
          for dt in ("bf16", "fp32") for s in (10, 30, 120)]
LEVERS = [
    config("bf16-30s-1thread", threads=1, note="torch.set_num_threads(1)"),
    config("bf16-30s-interop1", interop=1, note="torch.set_num_interop_threads(1)"),
    config("autocast-bf16-30s", dtype="autocast-bf16", note="fp32 weights, torch.autocast('cpu', bfloat16)"),
    config("bf16-30s-math", sdpa="math", note="SDPA math backend only"),
    config("bf16-30s-flash", sdpa="flash", note="SDPA flash backend only (CPU flash kernel)"),
    config("bf16-30s-no-onednn", mkldnn=False, note="torch.backends.mkldnn disabled"),
    config("bf16-30s-compile", compile=True, note="torch.compile(transformer), mode default"),
    config("fp32-30s-1thread", dtype="fp32", threads=1, note="torch.set_num_threads(1)"),
    config("bf16-120s-compile", seconds=120, compile=True, note="torch.compile(transformer), mode default"),
]
CONFIGS = {c["name"]: c for c in MATRIX + LEVERS}
QUICK = ["bf16-30s"]

GOALS = [("30 s of audio in <= 30 s wall on 2 cores", 30.0, "total_s", 30.0),
         ("120 s of audio in <= 120 s wall", 120.0, "total_s", 120.0),
         ("peak RSS <= 3 GB", None, "peak_rss_gb", 3.0)]


# ---------------------------------------------------------------------------------------------------- child


def _status_kb(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return float(line.split()[1])
    return float("nan")


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_gb() -> float:
    return _status_kb("VmHWM") * 1024 / GB


class MemorySampler:
    """Samples RssAnon / RssFile of this process every ``interval`` s in a thread: the kernel keeps a peak of their
    sum only (VmHWM), and the file-backed part is the mapped safetensors files (clean page cache)."""

    def __init__(self, interval: float = 0.05):
        import threading

        self.interval, self.peak = interval, {"RssAnon": 0.0, "RssFile": 0.0, "VmRSS": 0.0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self):
        with open("/proc/self/status") as f:
            for line in f:
                key = line.split(":", 1)[0]
                if key in self.peak:
                    self.peak[key] = max(self.peak[key], float(line.split()[1]) * 1024 / GB)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.sample()

    def take(self) -> dict:
        """The peaks since the last take (GB), then start again."""
        self.sample()
        out, self.peak = dict(self.peak), {k: 0.0 for k in self.peak}
        return {f"sampled_peak_{k}_gb": v for k, v in out.items()}


def run_child(cfg: dict, folder: str) -> dict:
    """Measure one configuration in this (fresh) process; returns the row."""
    with MemorySampler() as sampler:
        return _run_child(cfg, folder, sampler)


def _run_child(cfg: dict, folder: str, sampler) -> dict:
    import contextlib
    import gc
    import importlib
    import resource

    out = {"config": cfg, "loadavg_start": list(os.getloadavg())}
    import torch

    torch.set_num_threads(cfg["threads"])
    if cfg["interop"]:
        torch.set_num_interop_threads(cfg["interop"])
    from pack_loader import load_pack_nodes

    load_pack_nodes()
    loading = importlib.import_module("ambient_nodes.models.loading")
    families = importlib.import_module("ambient_nodes.models.families")
    sa3 = importlib.import_module("ambient_nodes.generate.sa3")
    loading.quiet_libraries()
    from diffusers import StableAudio3Pipeline

    weights = torch.bfloat16 if cfg["dtype"] == "bf16" else torch.float32
    t0 = time.perf_counter()
    pipe = loading.pipeline_from_folder(StableAudio3Pipeline, folder, dtype=weights)
    pipe.set_progress_bar_config(disable=True)
    loading.exact_rotary_frequencies(pipe)  # as the pack's loader does (a no-op in fp32)
    out["load_s"] = time.perf_counter() - t0
    out["peak_rss_load_gb"] = _peak_gb()
    out["load_sampled"] = sampler.take()
    # the safetensors files stay mapped (file-backed RSS, ~1 GB here) until their objects are collected
    out["rss_file_at_load_gb"] = _status_kb("RssFile") * 1024 / GB
    out["rss_anon_at_load_gb"] = _status_kb("RssAnon") * 1024 / GB
    gc.collect()
    out["rss_after_load_gb"] = _status_kb("VmRSS") * 1024 / GB
    out["params_m"] = {n: sum(p.numel() for p in getattr(pipe, n).parameters()) / 1e6
                       for n in ("text_encoder", "transformer", "vae", "duration_embedder")}
    out["threads"] = [torch.get_num_threads(), torch.get_num_interop_threads()]
    pack_chunk = families.decode_chunk_frames(pipe, "balanced", "cpu")
    out["pack_decode_chunk"] = pack_chunk

    transformer = None
    if cfg["compile"]:
        transformer = torch.compile(pipe.transformer)

    stack = contextlib.ExitStack()
    if cfg["dtype"] == "autocast-bf16":
        stack.enter_context(torch.autocast("cpu", dtype=torch.bfloat16))
    if cfg["sdpa"] != "default":
        from torch.nn.attention import SDPBackend, sdpa_kernel

        backend = {"math": SDPBackend.MATH, "flash": SDPBackend.FLASH_ATTENTION}[cfg["sdpa"]]
        stack.enter_context(sdpa_kernel([backend]))
    if not cfg["mkldnn"]:
        stack.enter_context(torch.backends.mkldnn.flags(enabled=False))
    stack.enter_context(torch.inference_mode())
    seconds = cfg["seconds"]
    vae_dtype = next(pipe.vae.parameters()).dtype

    def text_phase(secs):
        return sa3.encode_text(pipe, PROMPT, None, secs, 1, guided=False)

    def dit_phase(text, secs, steps, model, stamps=None):
        frames = sa3.latent_frames(pipe, secs)
        cond = sa3.prepare_conditioning(pipe, *text, frames, 1, None, ())
        generator = torch.Generator("cpu").manual_seed(0)
        latents, sigma_max = sa3.initial_latents(pipe, frames, 1, generator, None, 1.0)
        on_step = (lambda done, total: stamps.append(time.perf_counter())) if stamps is not None else None
        return sa3.denoise(pipe, latents, cond, cfg=1.0, steps=steps, sigma_max=sigma_max, generator=generator,
                           transformer=model, split_cfg=False, on_step=on_step)

    with stack:
        # warm-up: a 2 s clip, 1 step (eager) / the compile at the real length (compiled: shapes are specialised)
        t0 = time.perf_counter()
        text = text_phase(2.0)
        sa3.decode(pipe.vae, dit_phase(text, 2.0, 1, None).to(vae_dtype), pack_chunk)
        out["warmup_s"] = time.perf_counter() - t0
        if transformer is not None:
            text = text_phase(seconds)
            t0 = time.perf_counter()
            dit_phase(text, seconds, 1, transformer)
            out["compile_first_step_s"] = time.perf_counter() - t0
        out["loadavg_run"] = list(os.getloadavg())
        out["peak_rss_warmup_gb"] = _peak_gb()  # load and warm-up (compile included)
        sampler.take()
        how = "VmHWM after clear_refs" if _reset_peak() else "ru_maxrss"
        out["peak_method"] = how

        t0 = time.perf_counter()
        text = text_phase(seconds)
        out["text_s"] = time.perf_counter() - t0
        out["peak_rss_text_gb"] = _peak_gb()

        _reset_peak()
        stamps = [time.perf_counter()]
        latents = dit_phase(text, seconds, 8, transformer, stamps)
        out["dit_s"] = stamps[-1] - stamps[0]
        out["dit_step_s"] = [b - a for a, b in zip(stamps[:-1], stamps[1:])]
        out["peak_rss_dit_gb"] = _peak_gb()
        if transformer is not None:
            out["compile_s"] = out["compile_first_step_s"] - statistics_median(out["dit_step_s"])
        out["latent_frames"] = int(latents.shape[-1])

        out["decodes"] = {}
        audio = first = None
        pack_decode = (pack_chunk, sa3.OVERLAP_FRAMES)
        for chunk, overlap in [pack_decode] + [tuple(d) for d in cfg["decodes"] if tuple(d) != pack_decode]:
            del audio
            _reset_peak()
            t0 = time.perf_counter()
            audio = sa3.decode(pipe.vae, latents.to(vae_dtype), chunk, overlap)
            row = {"s": time.perf_counter() - t0, "peak_rss_gb": _peak_gb(), "chunk": chunk,
                   "overlap": overlap if chunk else 0}
            if (chunk, overlap) != pack_decode:
                row["max_abs_diff_vs_pack"] = float((audio.float() - first.float()).abs().max())
            else:
                first = audio.clone()
            row["finite"] = bool(torch.isfinite(audio).all())
            out["decodes"][f"{chunk}/{overlap}" if chunk else "whole"] = row
        pack_key = f"{pack_chunk}/{sa3.OVERLAP_FRAMES}"
        out["pack_decode"] = pack_key
        out["decode_s"] = out["decodes"][pack_key]["s"]
        out["peak_rss_decode_gb"] = out["decodes"][pack_key]["peak_rss_gb"]
        out["audio_shape"] = list(audio.shape)
        del audio, first

        t0 = time.perf_counter()
        text_phase(seconds)
        out["text_again_s"] = time.perf_counter() - t0

    out["run_sampled"] = sampler.take()  # text, DiT, every decode, text again
    out["total_s"] = out["text_s"] + out["dit_s"] + out["decode_s"]
    out["x_realtime"] = out["total_s"] / seconds
    out["total_with_text_cached_s"] = out["dit_s"] + out["decode_s"]
    out["peak_rss_run_gb"] = max(out["peak_rss_text_gb"], out["peak_rss_dit_gb"], out["peak_rss_decode_gb"])
    # the pack's path in this process, loading included (clear_refs also resets the mark ru_maxrss reads, so the
    # marks are taken per phase); the extra decodes are apart, in peak_rss_all_gb
    out["peak_rss_gb"] = max(out["peak_rss_load_gb"], out["peak_rss_warmup_gb"], out["peak_rss_run_gb"])
    out["peak_rss_all_gb"] = max([out["peak_rss_gb"], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GB]
                                 + [d["peak_rss_gb"] for d in out["decodes"].values()])
    out["loadavg_end"] = list(os.getloadavg())
    return out


def check_overlap(folder: str) -> dict:
    """How much context a SAME-S chunk needs: the folder's autoencoder in fp32, made to depend on its latents as a
    trained one does (``demo_models._liven``: a fresh full-size decoder nearly ignores them), decoded whole and in
    chunks with overlaps 0 / 2 / 32 at odd and even lengths; the largest difference to the whole decode."""
    import importlib

    import torch

    from pack_loader import load_pack_nodes

    load_pack_nodes()
    sa3 = importlib.import_module("ambient_nodes.generate.sa3")
    same_s = importlib.import_module("ambient_nodes.models.same_s")
    demo = importlib.import_module("ambient_nodes.tools.demo_models")
    importlib.import_module("ambient_nodes.models.loading").quiet_libraries()
    vae = same_s.AutoencoderSAMEChunked.from_pretrained(os.path.join(folder, "vae"), torch_dtype=torch.float32).eval()
    torch.manual_seed(0)
    demo._liven(vae, torch.nn.Linear(1, 1))
    out = {"how": "max |chunked - whole| on a livened fp32 SAME-S, random latents", "cases": []}
    with torch.inference_mode():
        for length in (95, 96):
            latents = torch.randn(1, int(vae.config.latent_dim), length)
            whole = sa3.decode(vae, latents, 0)
            for chunk, overlap in ((40, 0), (40, 2), (64, 2), (24, 2), (80, 32)):
                diff = float((sa3.decode(vae, latents, chunk, overlap) - whole).abs().max())
                out["cases"].append({"latents": length, "chunk": chunk, "overlap": overlap, "max_abs_diff": diff,
                                     "whole_peak": float(whole.abs().max())})
    return out


def count_flops(folder: str, lengths=(10.0, 30.0, 120.0)) -> dict:
    """FLOPs of each phase (``torch.utils.flop_counter``: matmuls, convolutions and attention; elementwise work is
    not counted) at each length: text encoder, one DiT step, and the decode at the chunk/overlap settings timed."""
    import importlib

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from pack_loader import load_pack_nodes

    load_pack_nodes()
    loading = importlib.import_module("ambient_nodes.models.loading")
    sa3 = importlib.import_module("ambient_nodes.generate.sa3")
    loading.quiet_libraries()
    from diffusers import StableAudio3Pipeline

    pipe = loading.pipeline_from_folder(StableAudio3Pipeline, folder, dtype=torch.bfloat16)

    out = {"how": "torch.utils.flop_counter.FlopCounterMode, bf16, the pack's functions; GFLOP", "lengths": {}}
    with torch.inference_mode():
        for seconds in lengths:
            counter = FlopCounterMode(display=False)
            with counter:
                text = sa3.encode_text(pipe, PROMPT, None, seconds, 1, guided=False)
            row = {"latent_frames": sa3.latent_frames(pipe, seconds), "text_gflop": counter.get_total_flops() / 1e9}
            cond = sa3.prepare_conditioning(pipe, *text, row["latent_frames"], 1, None, ())
            generator = torch.Generator("cpu").manual_seed(0)
            latents, sigma_max = sa3.initial_latents(pipe, row["latent_frames"], 1, generator, None, 1.0)
            counter = FlopCounterMode(display=False)
            with counter:
                latents = sa3.denoise(pipe, latents, cond, cfg=1.0, steps=1, sigma_max=sigma_max, generator=generator,
                                      transformer=None, split_cfg=False, on_step=None)
            row["dit_step_gflop"] = counter.get_total_flops() / 1e9
            row["dit_8_steps_gflop"] = 8 * row["dit_step_gflop"]
            row["decode_gflop"] = {}
            for chunk, overlap in ((256, 32), (128, 32), (0, 0), (256, 2), (128, 2)):
                counter = FlopCounterMode(display=False)
                with counter:
                    sa3.decode(pipe.vae, latents, chunk, overlap)
                row["decode_gflop"][f"{chunk}/{overlap}" if chunk else "whole"] = counter.get_total_flops() / 1e9
            out["lengths"][f"{seconds:g}"] = row
            print(seconds, json.dumps(row), flush=True)
    return out


def statistics_median(values):
    import statistics

    return statistics.median(values)


# --------------------------------------------------------------------------------------------------- parent


def machine() -> dict:
    import torch

    model, flags = "", set()
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name") and not model:
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    import diffusers
    import transformers

    return {"cpu": model, "cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "diffusers": diffusers.__version__, "transformers": transformers.__version__,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "flags": sorted(f for f in flags if f.startswith(("avx512", "amx", "avx_vnni"))),
            "default_threads": [torch.get_num_threads(), torch.get_num_interop_threads()],
            "mem_gb": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GB}


def build_folder(folder: str) -> float:
    import importlib

    from pack_loader import load_pack_nodes

    load_pack_nodes()
    demo = importlib.import_module("ambient_nodes.tools.demo_models")
    t0 = time.perf_counter()
    demo.build_tiny_stable_audio3(folder, size="sa3-small")
    return time.perf_counter() - t0


def run_config(cfg: dict, folder: str, timeout: float) -> dict:
    loadavg = list(os.getloadavg())
    t0 = time.perf_counter()
    cmd = [sys.executable, os.path.abspath(__file__), "--child", json.dumps(cfg), "--folder", folder]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"config": cfg, "loadavg_before": loadavg, "error": f"timed out after {timeout:g} s"}
    wall = time.perf_counter() - t0
    rows = [line[len("RESULT "):] for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not rows:
        return {"config": cfg, "loadavg_before": loadavg, "process_s": wall,
                "error": f"exit {proc.returncode}: {proc.stderr.strip()[-600:]}"}
    row = json.loads(rows[-1])
    row["loadavg_before"] = loadavg
    row["process_s"] = wall
    return row


def goals(rows: dict) -> list:
    """Each goal against the bf16 and the fp32 figure of the pack's path (the matrix configs)."""
    out = []
    for name, seconds, key, limit in GOALS:
        for dtype in ("bf16", "fp32"):
            length = seconds or 120.0
            row = rows.get(f"{dtype}-{length:g}s")
            if row is None or "error" in row:
                continue
            if key == "peak_rss_gb":  # the largest of the three lengths: the peak a user sees
                cands = [rows[n] for n in (f"{dtype}-{s}s" for s in (10, 30, 120)) if n in rows and "error" not in rows[n]]
                row = max(cands, key=lambda r: r["peak_rss_gb"])
            value = row[key]
            out.append({"name": name, "config": row["config"]["name"], "measured": round(value, 3), "goal": limit,
                        "met": bool(value <= limit),
                        "breakdown": {k: round(row[k], 3) for k in ("text_s", "dit_s", "decode_s", "peak_rss_run_gb",
                                                                   "peak_rss_load_gb")}})
    return out


def table(report: dict) -> str:
    lines = [f"{report['machine']['cpu']}, {report['machine']['cores']} cores, torch {report['machine']['torch']}",
             f"{'config':<22} {'load1':>5} {'text':>6} {'DiT 8':>7} {'decode':>7} {'total':>7} {'x RT':>5} "
             f"{'s/step':>6} {'peak':>5} {'run pk':>6}  extra"]
    for name, row in report["rows"].items():
        if "error" in row:
            lines.append(f"{name:<22} {row['loadavg_before'][0]:5.2f} ERROR {row['error'][:120]}")
            continue
        extra = [f"dec {k}: {v['s']:.1f} s pk {v['peak_rss_gb']:.2f}" for k, v in row["decodes"].items()
                 if k != row["pack_decode"]]
        if "compile_s" in row:
            extra.append(f"compile {row['compile_s']:.1f} s")
        extra.append(f"text again {row['text_again_s']:.2f} s")
        lines.append(f"{name:<22} {row['loadavg_before'][0]:5.2f} {row['text_s']:6.2f} {row['dit_s']:7.2f} "
                     f"{row['decode_s']:7.2f} {row['total_s']:7.2f} {row['x_realtime']:5.2f} "
                     f"{statistics_median(row['dit_step_s']):6.2f} {row['peak_rss_gb']:5.2f} "
                     f"{row['peak_rss_run_gb']:6.2f}  " + "; ".join(extra))
    lines.append("times in s; x RT = total / audio s; peak = VmHWM over the pack's path in GB, loading included; "
                 "run pk = the same over text/DiT/decode only")
    for g in report.get("goals", []):
        lines.append(f"goal {g['name']!r} [{g['config']}]: {g['measured']} vs {g['goal']} -> "
                     f"{'met' if g['met'] else 'MISSED'}")
    return "\n".join(lines)


def markdown(report: dict) -> str:
    """The report as the tables of benchmarks/RESULTS.md."""
    rows = {n: r for n, r in report["rows"].items() if "error" not in r}
    md = ["| config | load avg (1 min) before | text encoder | 8 DiT steps (per step) | decode (pack: 256/32) | "
          "total | wall s per s of audio | peak RSS (load incl.) | peak RSS, timed run |", "|---" * 9 + "|"]
    for name in [c["name"] for c in MATRIX]:
        r = rows.get(name)
        if r is None:
            md.append(f"| {name} | {report['rows'].get(name, {}).get('error', 'not run')[:80]} |" + " |" * 7)
            continue
        md.append(f"| {name} | {r['loadavg_before'][0]:.2f} | {r['text_s']:.2f} s | {r['dit_s']:.1f} s "
                  f"({statistics_median(r['dit_step_s']):.2f}) | {r['decode_s']:.1f} s | **{r['total_s']:.1f} s** | "
                  f"**{r['x_realtime']:.2f}** | {r['peak_rss_gb']:.2f} GB | {r['peak_rss_run_gb']:.2f} GB |")
    md += ["", "| config | decode | wall | s per s of audio | peak RSS during it | max abs diff to 256/32 |",
           "|---" * 6 + "|"]
    for name, r in rows.items():
        for key, d in r.get("decodes", {}).items():
            if len(r["decodes"]) < 2:
                continue
            diff = d.get("max_abs_diff_vs_pack")
            md.append(f"| {name} | {key} | {d['s']:.1f} s | {d['s'] / r['config']['seconds']:.3f} | "
                      f"{d['peak_rss_gb']:.2f} GB | {'(pack)' if diff is None else f'{diff:.1e}'} |")
    base = rows.get("bf16-30s")
    md += ["", "| lever | load avg | text | 8 DiT steps | decode | total | total vs | peak RSS |",
           "|---" * 8 + "|"]
    for name in ["bf16-30s", "fp32-30s"] + [c["name"] for c in LEVERS]:
        r = rows.get(name)
        if r is None:
            md.append(f"| {name} | {report['rows'].get(name, {}).get('error', 'not run')[:80]} |" + " |" * 6)
            continue
        ref = rows.get(f"{r['config']['dtype'] if r['config']['dtype'] != 'autocast-bf16' else 'bf16'}-"
                       f"{r['config']['seconds']:g}s") if name not in ("bf16-30s", "fp32-30s") else base
        ratio = f"x{r['total_s'] / ref['total_s']:.2f} of {ref['config']['name']}" if ref else ""
        extra = f"; compile {r['compile_s']:.0f} s apart" if "compile_s" in r else ""
        md.append(f"| {name} ({r['config']['note'] or r['config']['dtype']}{extra}) | {r['loadavg_before'][0]:.2f} | "
                  f"{r['text_s']:.2f} s (again: {r['text_again_s']:.2f}) | {r['dit_s']:.1f} s | {r['decode_s']:.1f} s | "
                  f"{r['total_s']:.1f} s | {ratio} | {r['peak_rss_gb']:.2f} GB |")
    md += ["", "| goal | config | measured | goal | |", "|---" * 5 + "|"]
    for g in report.get("goals", []):
        md.append(f"| {g['name']} | {g['config']} | {g['measured']:.2f} | {g['goal']:g} | "
                  f"{'met' if g['met'] else '**missed**'} |")
    return "\n".join(md)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--folder", default=DEFAULT_FOLDER, help="the Small folder (built there when missing)")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="one config (default)")
    mode.add_argument("--matrix", action="store_true", help="fp32 and bf16 x 10 / 30 / 120 s")
    mode.add_argument("--all", action="store_true", help="the matrix and the levers")
    mode.add_argument("--only", nargs="+", help="configs by name")
    mode.add_argument("--list", action="store_true")
    mode.add_argument("--flops", action="store_true",
                      help="count each phase's FLOPs (writes benchmarks/results_cpu_sa3_small_flops.json)")
    mode.add_argument("--markdown", metavar="JSON", help="print a results JSON as RESULTS.md tables")
    ap.add_argument("--out", help=f"JSON to write (default: {RESULTS} with --all, else a temporary file)")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per config")
    ap.add_argument("--stop-at", metavar="HH:MM", help="UTC time after which no config starts (and none runs past)")
    ap.add_argument("--check-overlap", action="store_true", help="also check how much decode overlap SAME-S needs")
    ap.add_argument("--seconds", type=float, help="override every config's clip length (a smoke test of the script)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--child-overlap", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child_overlap:
        print("RESULT " + json.dumps(check_overlap(args.folder)), flush=True)
        return
    if args.child:
        print("RESULT " + json.dumps(run_child(json.loads(args.child), args.folder)), flush=True)
        return
    if args.markdown:
        with open(args.markdown) as f:
            print(markdown(json.load(f)))
        return
    if args.flops:
        path = args.out or os.path.join(ROOT, "benchmarks", "results_cpu_sa3_small_flops.json")
        with open(path, "w") as f:
            json.dump(count_flops(args.folder), f, indent=1)
        print(f"wrote {path}")
        return
    if args.list:
        for c in CONFIGS.values():
            print(c["name"], json.dumps({k: v for k, v in c.items() if k != "name"}))
        return
    names = (list(CONFIGS) if args.all else [c["name"] for c in MATRIX] if args.matrix
             else args.only if args.only else QUICK)
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        sys.exit(f"unknown config(s) {unknown}; --list shows them")
    out_path = args.out or (RESULTS if args.all else os.path.join("/tmp", "cpu_sa3_small.json"))

    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(),
              "model": "Stable Audio 3 Small architecture, random weights (demo_models size='sa3-small')",
              "prompt": PROMPT, "steps": 8, "cfg": 1.0, "folder": args.folder, "rows": {}}
    if not os.path.isfile(os.path.join(args.folder, "model_index.json")):
        report["build_s"] = build_folder(args.folder)
    print(json.dumps(report["machine"]), flush=True)
    if args.all or args.check_overlap:
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child-overlap", "--folder", args.folder],
                              capture_output=True, text=True)
        rows = [line[len("RESULT "):] for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        report["overlap_check"] = json.loads(rows[-1]) if rows else {"error": proc.stderr.strip()[-600:]}
        print("overlap check", json.dumps(report["overlap_check"]), flush=True)
    stop = None
    if args.stop_at:
        hour, minute = (int(x) for x in args.stop_at.split(":"))
        now = time.gmtime()
        stop = time.time() + ((hour * 60 + minute) - (now.tm_hour * 60 + now.tm_min)) * 60 - now.tm_sec
    for name in names:
        cfg = dict(CONFIGS[name], seconds=args.seconds or CONFIGS[name]["seconds"])
        timeout = args.timeout if stop is None else min(args.timeout, stop - time.time())
        if timeout <= 30:
            report["rows"][name] = {"config": cfg, "loadavg_before": list(os.getloadavg()),
                                    "error": f"not run: past --stop-at {args.stop_at} UTC"}
            print(name, "skipped (--stop-at)", flush=True)
            continue
        row = run_config(cfg, args.folder, timeout)
        report["rows"][name] = row
        brief = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()
                 if k in ("loadavg_before", "text_s", "dit_s", "decode_s", "total_s", "x_realtime", "peak_rss_gb",
                          "peak_rss_run_gb", "compile_s", "text_again_s", "error")}
        print(name, json.dumps(brief), flush=True)
        report["goals"] = goals(report["rows"])
        with open(out_path, "w") as f:
            json.dump(report, f, indent=1)
    print()
    print(table(report))
    print(f"\nwrote {out_path}")


if __name__ == "__main__":
    main()
