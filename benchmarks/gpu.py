"""The full-size chain on one GPU: BLIP-large + Stable Audio Open 1.0 at their published sizes with random weights
(speed and memory do not depend on weight values), saved as model folders and loaded through the pack's loaders,
beside the raw transformers/diffusers calls in the same process.

    python benchmarks/gpu.py [--out DIR]               # the full table (CUDA GPU, ~4 minutes)
    python benchmarks/gpu.py --smoke                   # CPU check of the script: full-size models, 1 step, 1 s
    python benchmarks/gpu.py --device cpu --steps 4    # CPU cost, to extrapolate a full run (labelled so)

Prints tables and writes gpu.json. Compiled (CUDA graphs) figures come from child processes, so the cold compile
and the warm start from the on-disk cache are both measured as a fresh ComfyUI would see them.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

TOOLS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools")
sys.path.insert(0, TOOLS)
from pack_loader import load_pack_nodes  # noqa: E402

PROMPT = "waves breaking, gentle wash on sand, distant seagulls, sea breeze, high quality field recording"
NEGATIVE = "music, melody, vocals, speech, distortion, clipping, low quality"
GIB = 1024 ** 3


def _mods():
    import importlib

    load_pack_nodes()
    return {name: importlib.import_module(f"ambient_nodes.{path}")
            for name, path in {"devices": "models.devices", "families": "models.families", "folders": "models.folders", "loading": "models.loading", "caption": "generate.caption", "soundscape": "generate.soundscape", "demo_models": "tools.demo_models"}.items()}


def build(root: str, device: str) -> tuple[str, str]:
    import torch

    m = _mods()
    with torch.device(device):
        blip = m["demo_models"].build_tiny_blip(os.path.join(root, "blip", "blip-large-random"), size="large")
        sa = m["demo_models"].build_tiny_stable_audio(os.path.join(root, "diffusers", "sao-random"),
                                                      sample_size=1024, size="open-1.0")
    return blip, sa


class Timer:
    def __init__(self, device):
        import torch

        self.torch, self.cuda = torch, device.startswith("cuda")

    def __call__(self, fn):
        if self.cuda:
            self.torch.cuda.synchronize()
            self.torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        out = fn()
        if self.cuda:
            self.torch.cuda.synchronize()
        peak = (self.torch.cuda.max_memory_allocated() / GIB, self.torch.cuda.max_memory_reserved() / GIB) \
            if self.cuda else (0.0, 0.0)
        return out, time.perf_counter() - t0, peak


def compiled_child(sa_root: str, cache: str, steps: int) -> dict:
    """Runs in a fresh process: compile (cold or from the disk cache) and steady state, 47 s and 10 s."""
    import torch

    m = _mods()
    devices, folders, loading, soundscape = m["devices"], m["folders"], m["loading"], m["soundscape"]
    loading.quiet_libraries()
    plan = devices.standalone_plan()
    handle = folders.make_handle(folders.STABLE_AUDIO, "sao-random", [sa_root], "fp16", plan)
    timer, out = Timer("cuda"), {}
    t0 = time.perf_counter()
    with devices.stable_audio_session(handle, plan, "fast", node="benchmark") as (pipe, stage):
        out["load_s"] = time.perf_counter() - t0
        transformer = loading.compiled_transformer(handle, pipe, cache)
        for seconds in (47.0, 10.0):
            def run(seconds=seconds):
                return soundscape.generate_soundscape(pipe, PROMPT, negative_prompt=NEGATIVE, seconds=seconds,
                                                      steps=steps, cfg=7.0, seed=0, stage=stage,
                                                      decode_chunk_frames=m["families"].FAMILIES["open"].decode_chunk_frames["fast"],
                                                      transformer=transformer)
            (w, _), first, _ = timer(run)
            times = [timer(run)[1] for _ in range(3)]
            (w2, _), _, peak = timer(run)
            out[f"{seconds:g}s"] = {"first_call_s": first, "steady_s": statistics.median(times),
                                    "peak_alloc_gib": peak[0], "peak_reserved_gib": peak[1],
                                    "finite": bool(torch.isfinite(w).all()), "peak_abs": float(w.abs().max())}
    return out


def measure_dtype(m, dtype, blip_dir, sa_dir, plan, timer, image, device, steps, lengths) -> dict:
    """One dtype: loads, caption, the pack's memory modes, VAE decode, raw diffusers."""
    import torch

    devices, folders, loading, soundscape, caption = m["devices"], m["folders"], m["loading"], m["soundscape"], m["caption"]
    cuda = device.startswith("cuda")
    row = {}
    loading.unload()
    blip = folders.make_handle(folders.BLIP, "blip-large-random", [os.path.dirname(blip_dir)], dtype, plan)
    sa = folders.make_handle(folders.STABLE_AUDIO, "sao-random", [os.path.dirname(sa_dir)], dtype, plan)
    t = time.perf_counter()
    loading.load(blip, plan)
    loading.load(sa, plan)
    row["load_s"] = time.perf_counter() - t

    def cap(beams):
        with devices.on_device(blip, plan) as (mdl, proc):
            return caption.caption_images(mdl, proc, image, max_new_tokens=30, num_beams=beams)

    try:
        cap(1)
        row["caption_greedy_s"] = statistics.median(timer(lambda: cap(1))[1] for _ in range(3))
        row["caption_3beams_s"] = timer(lambda: cap(3))[1]
    except Exception as err:  # noqa: BLE001 - report and go on to the audio figures
        row["caption_error"] = f"{type(err).__name__}: {err}"

        def cap(beams):
            return None

    for memory in (("balanced", "low-vram", "fast") if cuda else ("balanced",)):
        def gen(seconds, n_steps, memory=memory):
            with devices.stable_audio_session(sa, plan, memory, node="benchmark") as (pipe, stage):
                return soundscape.generate_soundscape(pipe, PROMPT, negative_prompt=NEGATIVE, seconds=seconds,
                                                      steps=n_steps, cfg=7.0, seed=0, stage=stage,
                                                      decode_chunk_frames=m["families"].FAMILIES["open"].decode_chunk_frames[memory],
                                                      split_cfg=devices.SPLIT_CFG[memory])
        gen(lengths[0], 2)  # warm-up
        for seconds in lengths:
            if cuda:
                torch.cuda.reset_peak_memory_stats()
                cap(3)  # the whole chain: caption, then sound
            (w, rate), s, _ = timer(lambda seconds=seconds: gen(seconds, steps))
            chain_peak = (torch.cuda.max_memory_allocated() / GIB, torch.cuda.max_memory_reserved() / GIB) \
                if cuda else (0, 0)
            short = timer(lambda seconds=seconds: gen(seconds, max(1, steps // 10)))[1]
            per_step = (s - short) / max(1, steps - max(1, steps // 10))
            row[f"pack {memory} {seconds:g}s"] = {
                "s": s, "rtf": seconds / s, "per_step_ms": per_step * 1000, "chain_peak_alloc_gib": chain_peak[0],
                "chain_peak_reserved_gib": chain_peak[1], "finite": bool(torch.isfinite(w).all()),
                "silent": bool(w.abs().max() == 0)}

    # VAE decode of the longest clip's latents, whole vs chunked, and the difference
    pipe = loading.load(sa)
    pipe.to(device)
    frames = soundscape.window_frames(pipe, lengths[-1])
    lat = torch.randn(1, 64, frames, generator=torch.Generator().manual_seed(1)).to(device, pipe.vae.dtype)
    with torch.inference_mode():
        whole, s_whole, p_whole = timer(lambda: soundscape.decode_latents(pipe.vae, lat, 0))
        chunk, s_chunk, p_chunk = timer(lambda: soundscape.decode_latents(pipe.vae, lat, 128, 32))
    row["vae decode"] = {"whole_s": s_whole, "whole_peak_gib": p_whole[0], "chunked_128_32_s": s_chunk,
                         "chunked_peak_gib": p_chunk[0], "max_abs_diff": float((whole - chunk).abs().max()),
                         "output_peak": float(whole.abs().max())}
    del whole, chunk

    # raw diffusers, whole pipeline resident, default full window (what the seed did)
    def raw(seconds, n_steps):
        with torch.inference_mode():
            return pipe(PROMPT, negative_prompt=NEGATIVE, audio_end_in_s=seconds, num_inference_steps=n_steps,
                        guidance_scale=7.0, generator=torch.Generator("cpu").manual_seed(0)).audios
    pipe.set_progress_bar_config(disable=True)
    raw(lengths[0], 2)
    for seconds in lengths:
        a, s, peak = timer(lambda seconds=seconds: raw(seconds, steps))
        row[f"raw diffusers {seconds:g}s"] = {"s": s, "rtf": seconds / s, "peak_alloc_gib": peak[0],
                                              "peak_reserved_gib": peak[1], "finite": bool(torch.isfinite(a).all())}
    pipe.to("cpu")
    if cuda:
        torch.cuda.empty_cache()
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=".")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--device", default=None, help="cuda (default when available) or cpu")
    ap.add_argument("--smoke", action="store_true", help="CPU check: full-size models, 1 step, 1 s, fp32")
    ap.add_argument("--dtypes", nargs="+", default=["fp32", "fp16", "bf16"])
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--child", nargs=2, metavar=("SA_ROOT", "CACHE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(compiled_child(args.child[0], args.child[1], args.steps)))
        return
    import torch

    m = _mods()
    devices, loading = m["devices"], m["loading"]
    loading.quiet_libraries()
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    cuda = device.startswith("cuda")
    steps, lengths, dtypes = args.steps, (10.0, 47.0), args.dtypes
    if args.smoke:
        steps, lengths, dtypes = 1, (1.0,), ["fp32"]
    if not cuda:
        dtypes = [d for d in dtypes if d == "fp32"] or ["fp32"]
    tmp = tempfile.mkdtemp(prefix="ambient_gpu_")
    t0 = time.perf_counter()
    blip_dir, sa_dir = build(tmp, device)
    report = {"device": torch.cuda.get_device_name(0) if cuda else "cpu", "torch": torch.__version__,
              "date": time.strftime("%Y-%m-%d"), "steps": steps, "build_s": time.perf_counter() - t0, "cases": {}}
    if cuda:
        torch.cuda.empty_cache()
    plan = devices.standalone_plan() if cuda else devices.DevicePlan()
    timer = Timer(device)
    image = torch.rand(1, 512, 768, 3, generator=torch.Generator().manual_seed(0))

    for dtype in dtypes:
        report["cases"][dtype] = measure_dtype(m, dtype, blip_dir, sa_dir, plan, timer, image, device, steps,
                                               lengths)

    if cuda and not args.no_compile and not args.smoke:
        cache = os.path.join(tmp, "inductor")
        loading.unload()
        for label in ("compiled fp16, cold cache", "compiled fp16, warm cache (fresh process)"):
            try:
                out = subprocess.run([sys.executable, __file__, "--child", os.path.dirname(sa_dir), cache,
                                      "--steps", str(steps)], capture_output=True, text=True,
                                     timeout=float(os.environ.get("AMBIENT_CHILD_TIMEOUT", "900")))
                report["cases"][label] = json.loads(out.stdout.strip().splitlines()[-1])
            except subprocess.TimeoutExpired:
                report["cases"][label] = {"error": "timed out"}
            except (ValueError, IndexError):
                report["cases"][label] = {"error": out.stderr[-2000:]}

    print(json.dumps(report, indent=1))
    _table(report)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "gpu.json"), "w") as f:
        json.dump(report, f, indent=1)


def _table(report: dict) -> None:
    print(f"\n{report['device']}, torch {report['torch']}, {report['steps']} steps, {report['date']}")
    for case, row in report["cases"].items():
        print(f"\n== {case}")
        for k, v in row.items():
            if isinstance(v, dict):
                print(f"  {k:<28} " + ", ".join(f"{a}={b:.3f}" if isinstance(b, float) else f"{a}={b}"
                                                for a, b in v.items()))
            else:
                print(f"  {k:<28} {v:.3f}" if isinstance(v, float) else f"  {k:<28} {v}")


if __name__ == "__main__":
    main()
