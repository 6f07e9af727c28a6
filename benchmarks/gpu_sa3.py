"""Stable Audio 3 Medium at full size on one GPU: the pack's loader and sampler (its memory modes) beside the raw
diffusers ``StableAudio3Pipeline`` in the same process. Weights are random (speed and memory do not depend on
their values), built with the published architecture (T5Gemma b-b encoder, SAME-L, 1.45 B DiT), saved as a
diffusers folder and loaded through the pack's loader.

    python benchmarks/gpu_sa3.py [--out DIR]     # CUDA GPU: about 3 minutes with the build
    python benchmarks/gpu_sa3.py --smoke         # CPU check of the script on the tiny SA3 (figures meaningless)

Prints a table and writes gpu_sa3.json. Peaks are torch.cuda.max_memory_allocated over the whole call, weights
on the GPU included. Goals (issue 8): 380 s in <= 1.5 s at <= 6 GiB peak, 120 s in <= 0.8 s, 380 s within a
12 GB card in low-vram mode.
"""
import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time

TOOLS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools")
sys.path.insert(0, TOOLS)
from pack_loader import load_pack_nodes  # noqa: E402

PROMPT = "waves breaking, gentle wash on sand, distant seagulls, sea breeze, high quality field recording"
GIB = 1024 ** 3


def _mods():
    import importlib

    load_pack_nodes()
    return {name: importlib.import_module(f"ambient_nodes.{path}")
            for name, path in {"devices": "models.devices", "folders": "models.folders", "loading": "models.loading", "soundscape": "generate.soundscape", "demo_models": "tools.demo_models", "sa3": "generate.sa3", "extend": "generate.extend", "loop": "generate.inpaint_loop", "vary": "generate.vary"}.items()}


def measure(fn, cuda: bool, repeat: int = 3) -> dict:
    """Median wall time of ``repeat`` calls after one warm-up, and the peak over one more call."""
    import torch

    def once():
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = fn()
        if cuda:
            torch.cuda.synchronize()
        return out, time.perf_counter() - t0

    fn()
    times = [once()[1] for _ in range(repeat)]
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    out, _ = once()
    row = {"s": statistics.median(times), "runs_s": times}
    if cuda:
        row["peak_alloc_gib"] = torch.cuda.max_memory_allocated() / GIB
        row["peak_reserved_gib"] = torch.cuda.max_memory_reserved() / GIB
    if isinstance(out, tuple):
        out = out[0]
    row["finite"] = bool(torch.isfinite(out).all())
    row["shape"] = list(out.shape)
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=".")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--lengths", nargs="+", type=float, default=[120.0, 380.0])
    ap.add_argument("--no-raw", action="store_true")
    ap.add_argument("--features", action="store_true",
                    help="only what the nodes built on SA3 cost (fast mode): 4 takes of 60 s, the inpainted loop "
                         "joint of a 60 s clip, Vary Audio of 60 s, Extend 10 minutes by continuation")
    args = ap.parse_args()
    import torch

    m = _mods()
    devices, folders, loading, soundscape, demo, sa3 = m["devices"], m["folders"], m["loading"], m["soundscape"], m["demo_models"], m["sa3"]
    loading.quiet_libraries()
    cuda = torch.cuda.is_available() and not args.smoke
    device = "cuda" if cuda else "cpu"
    lengths = [4.0, 12.0] if args.smoke else args.lengths
    size, dtype = ("tiny-medium", "fp32") if args.smoke else ("sa3-medium", "fp16")
    root = os.path.join(tempfile.mkdtemp(prefix="ambient_sa3_"), "diffusers")
    t0 = time.perf_counter()
    with torch.device(device):
        demo.build_tiny_stable_audio3(os.path.join(root, "sa3-medium-random"), size=size)
    report = {"device": torch.cuda.get_device_name(0) if cuda else "cpu", "torch": torch.__version__,
              "date": time.strftime("%Y-%m-%d"), "model": size, "dtype": dtype,
              "build_s": time.perf_counter() - t0, "cases": {}}
    cases = report["cases"]
    if cuda:
        torch.cuda.empty_cache()
    plan = devices.standalone_plan() if cuda else devices.DevicePlan()
    handle = folders.make_handle(folders.STABLE_AUDIO, "sa3-medium-random", [root], dtype, plan)
    t0 = time.perf_counter()
    pipe = loading.load(handle, plan)
    report["load_s"] = time.perf_counter() - t0
    report["params_m"] = {n: sum(p.numel() for p in getattr(pipe, n).parameters()) / 1e6
                          for n in devices.sa_parts(pipe)}
    del pipe  # only the pack's cache holds the model: loading.unload() then really frees it
    print(json.dumps({k: v for k, v in report.items() if k != "cases"}), flush=True)

    if args.features:
        features(m, handle, plan, cuda, report, smoke=args.smoke)
        _finish(report, args.out)
        return

    for memory in ("balanced", "fast", "low-vram"):
        for seconds in lengths:
            def gen(seconds=seconds, memory=memory):
                with devices.stable_audio_session(handle, plan, memory, node="benchmark") as (p, stage):
                    return soundscape.generate_soundscape(
                        p, PROMPT, seconds=seconds, steps=0, cfg=0.0, seed=0, stage=stage,
                        decode_chunk_frames=devices.decode_chunk_frames(plan, memory, p),
                        split_cfg=devices.SPLIT_CFG[memory])
            try:
                cases[f"pack {memory} {seconds:g}s"] = measure(gen, cuda)
            except Exception as err:  # noqa: BLE001 - report and go on
                cases[f"pack {memory} {seconds:g}s"] = {"error": f"{type(err).__name__}: {str(err)[:300]}"}
            print(f"pack {memory} {seconds:g}s", json.dumps(cases[f"pack {memory} {seconds:g}s"]), flush=True)
        if memory == "fast":
            loading.unload()  # leave nothing resident before low-vram
            gc.collect()
            if cuda:
                torch.cuda.empty_cache()
                report["resident_before_low_vram_gib"] = torch.cuda.memory_allocated() / GIB

    # where the time goes at the longest length: 8 DiT steps alone, then the decode alone (chunk sizes)
    pipe = loading.load(handle, plan)
    for name in devices.sa_parts(pipe):
        getattr(pipe, name).to(device)
    seconds = lengths[-1]
    latents = sa3.generate(pipe, PROMPT, seconds=seconds, steps=8, seed=0, output="latents")
    cases[f"denoise only {seconds:g}s (8 steps)"] = measure(
        lambda: sa3.generate(pipe, PROMPT, seconds=seconds, steps=8, seed=0, output="latents"), cuda)
    for chunk in (128, 256):
        with torch.inference_mode():
            cases[f"decode only {seconds:g}s chunk {chunk}/32"] = measure(
                lambda chunk=chunk, lat=latents: sa3.decode(pipe.vae, lat, chunk, 32), cuda)
        print(f"decode {chunk}", json.dumps(cases[f"decode only {seconds:g}s chunk {chunk}/32"]), flush=True)
    with torch.inference_mode():
        a = sa3.decode(pipe.vae, latents[:, :, :640], 0)
        b = sa3.decode(pipe.vae, latents[:, :, :640], 128, 32)
    cases["chunked vs whole decode, 640 latents"] = {"max_abs_diff": float((a - b).abs().max()),
                                                     "output_peak": float(a.abs().max())}
    del a, b, latents

    if not args.no_raw:
        # raw diffusers: everything resident, the pipeline's own decode (in one piece)
        from diffusers import StableAudio3Pipeline

        del pipe
        loading.unload()
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
        raw = StableAudio3Pipeline.from_pretrained(os.path.join(root, "sa3-medium-random"), local_files_only=True,
                                                   torch_dtype=torch.float16 if cuda else torch.float32).to(device)
        raw.set_progress_bar_config(disable=True)
        for seconds in lengths:
            def run(seconds=seconds):
                return raw(PROMPT, duration=seconds, generator=torch.Generator("cpu").manual_seed(0)).audios
            try:
                cases[f"raw diffusers {seconds:g}s"] = measure(run, cuda, repeat=2)
            except Exception as err:  # noqa: BLE001 - the unchunked decode may not fit
                cases[f"raw diffusers {seconds:g}s"] = {"error": f"{type(err).__name__}: {str(err)[:300]}"}
                if cuda:
                    torch.cuda.empty_cache()
            print(f"raw {seconds:g}s", json.dumps(cases[f"raw diffusers {seconds:g}s"]), flush=True)

    _finish(report, args.out)


def features(m, handle, plan, cuda: bool, report: dict, smoke: bool = False) -> None:
    """Wall time and peak of the SA3-only features through their plain functions, in fast mode."""
    import torch

    devices, soundscape, extend, loop, vary = m["devices"], m["soundscape"], m["extend"], m["loop"], m["vary"]
    cases = report["cases"]
    seconds, minutes = (8.0, 0.5) if smoke else (60.0, 10.0)
    with devices.stable_audio_session(handle, plan, "fast", node="benchmark") as (pipe, stage):
        chunk = devices.decode_chunk_frames(plan, "fast", pipe)
        clip, rate = soundscape.generate_soundscape(pipe, PROMPT, seconds=seconds, seed=1, stage=stage,
                                                    decode_chunk_frames=chunk)
        runs = {
            f"sampler 1 take of {seconds:g}s": lambda: soundscape.generate_soundscape(
                pipe, PROMPT, seconds=seconds, seed=0, stage=stage, decode_chunk_frames=chunk),
            f"sampler 4 takes of {seconds:g}s (variations 4)": lambda: soundscape.generate_soundscape(
                pipe, PROMPT, seconds=seconds, seed=0, variations=4, stage=stage, decode_chunk_frames=chunk),
            f"loop inpaint, {seconds:g}s clip, 4 s joint": lambda: loop.inpaint_loop(
                pipe, clip, rate, PROMPT, seed=0, stage=stage, decode_chunk_frames=chunk),
            f"vary audio {seconds:g}s, strength 0.6": lambda: vary.vary_audio(
                pipe, clip, rate, PROMPT, 0.6, seed=0, stage=stage, decode_chunk_frames=chunk),
            f"extend {minutes:g} min, continue": lambda: extend.extend_soundscape(
                pipe, PROMPT, minutes=minutes, seed=0, stage=stage, decode_chunk_frames=chunk, method="continue"),
        }
        for name, fn in runs.items():
            try:
                cases[name] = measure(fn, cuda, repeat=1 if "extend" in name else 3)
            except Exception as err:  # noqa: BLE001 - report and go on
                cases[name] = {"error": f"{type(err).__name__}: {str(err)[:300]}"}
            print(name, json.dumps(cases[name]), flush=True)
    if cuda:
        torch.cuda.empty_cache()


def _finish(report: dict, out: str) -> None:
    cases = report["cases"]
    print(json.dumps(report, indent=1))
    print(f"\n{report['device']}, torch {report['torch']}, {report['model']} {report['dtype']}, {report['date']}")
    for case, row in cases.items():
        print(f"  {case:<40} " + ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                                          for k, v in row.items() if k != "runs_s"))
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "gpu_sa3.json"), "w") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
