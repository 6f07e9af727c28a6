"""The pack's chain on one GPU with full-size, randomly initialised models (speed and memory do not depend on
weight values): BLIP-large captioning and Stable Audio Open 1.0 sampling through the pack's own loading, device
moves and sampling code, beside the raw diffusers call (the figures to beat, gpu-baseline.md) in the same process.

    python benchmarks/gpu_chain.py [--out DIR] [--steps 100]

Prints a table and writes gpu_chain.json. Needs a CUDA GPU (~12 GB).
"""
import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
from pack_loader import load_pack_nodes  # noqa: E402


def main() -> None:
    import importlib

    import torch

    load_pack_nodes()
    models = importlib.import_module("ambient_nodes.models")
    caption_images = importlib.import_module("ambient_nodes.caption").caption_images
    demo = importlib.import_module("ambient_nodes.demo_models")
    build_tiny_blip, build_tiny_stable_audio = demo.build_tiny_blip, demo.build_tiny_stable_audio
    generate_soundscape = importlib.import_module("ambient_nodes.soundscape").generate_soundscape

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=".")
    ap.add_argument("--steps", type=int, default=100)
    args = ap.parse_args()
    assert torch.cuda.is_available(), "needs a CUDA GPU"
    models.quiet_libraries()
    rows, gib = {}, 1024 ** 3
    tmp = tempfile.mkdtemp(prefix="ambient_bench_")
    t = time.perf_counter()
    with torch.device("cuda"):  # random init on the GPU is fast; weights are saved fp16
        blip_dir = build_tiny_blip(os.path.join(tmp, "blip", "blip-large-random"), size="large")
        sa_dir = build_tiny_stable_audio(os.path.join(tmp, "diffusers", "sao-random"), sample_size=1024,
                                         size="open-1.0")
    rows["build + save both (s)"] = time.perf_counter() - t
    torch.cuda.empty_cache()

    plan = models.standalone_plan()
    blip = models.make_handle(models.BLIP, "blip-large-random", [os.path.dirname(blip_dir)], "auto", plan)
    sa = models.make_handle(models.STABLE_AUDIO, "sao-random", [os.path.dirname(sa_dir)], "auto", plan)
    rows["dtype auto on this GPU"] = sa.dtype
    t = time.perf_counter()
    models.load(blip, plan)
    models.load(sa, plan)
    rows["load both from disk to CPU (s)"] = time.perf_counter() - t
    image = torch.rand(1, 512, 768, 3, generator=torch.Generator().manual_seed(0))
    prompt = "waves breaking, gentle wash on sand, distant seagulls, sea breeze, high quality field recording"
    negative = "music, melody, vocals, speech, distortion, clipping, low quality"

    def timed(fn):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        out = fn()
        torch.cuda.synchronize()
        return out, time.perf_counter() - t0, torch.cuda.max_memory_allocated() / gib

    def pack_caption():
        with models.on_device(blip, plan) as (m, p):
            return caption_images(m, p, image, max_new_tokens=30, num_beams=3)

    def pack_sample(seconds, steps):
        with models.on_device(sa, plan) as pipe:
            return generate_soundscape(pipe, prompt, negative_prompt=negative, seconds=seconds, steps=steps,
                                       cfg=7.0, seed=0)

    pack_caption()
    pack_sample(5.0, 2)  # warm-up (kernels, allocator)
    _, s, peak = timed(pack_caption)
    rows["pack: caption, BLIP-large, 3 beams, 30 tokens (s)"] = s
    rows["pack: caption peak VRAM (GiB)"] = peak
    for seconds in (20.0, 47.0):
        (w, rate), s, peak = timed(lambda sec=seconds: pack_sample(sec, args.steps))
        rows[f"pack: {seconds:g} s audio, {args.steps} steps, incl. moves in/out (s)"] = s
        rows[f"pack: {seconds:g} s peak VRAM (GiB)"] = peak
        rows[f"pack: {seconds:g} s output shape"] = list(w.shape)
        rows[f"pack: {seconds:g} s finite"] = bool(torch.isfinite(w).all())
    rows["after runs: models on"] = [models.model_device(models.load(blip)[0]), models.model_device(models.load(sa))]
    rows["after runs: VRAM still allocated (GiB)"] = torch.cuda.memory_allocated() / gib

    # the raw diffusers call, as the seed script did: whole pipeline resident on the GPU
    pipe = models.load(sa)
    pipe.to("cuda")
    gen = lambda: torch.Generator("cpu").manual_seed(0)  # noqa: E731
    raw = lambda sec: pipe(prompt, negative_prompt=negative, audio_end_in_s=sec, num_inference_steps=args.steps,  # noqa
                           guidance_scale=7.0, generator=gen()).audios
    pipe(prompt, negative_prompt=negative, audio_end_in_s=5.0, num_inference_steps=2, generator=gen())
    for seconds in (20.0, 47.0):
        _, s, peak = timed(lambda sec=seconds: raw(sec))
        rows[f"raw diffusers: {seconds:g} s audio, {args.steps} steps, resident (s)"] = s
        rows[f"raw diffusers: {seconds:g} s peak VRAM (GiB)"] = peak
    pipe.to("cpu")
    rows["device"] = torch.cuda.get_device_name(0)
    rows["torch"] = torch.__version__
    width = max(len(k) for k in rows)
    for k, v in rows.items():
        print(f"{k:<{width}}  {v:.3f}" if isinstance(v, float) else f"{k:<{width}}  {v}")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "gpu_chain.json"), "w") as f:
        json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
