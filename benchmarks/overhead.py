"""Overhead of the nodes over the raw libraries, on tiny random models (CPU): the node graph (loader -> caption ->
prompt -> sampler -> save) against the same work as direct transformers/diffusers calls with the same settings,
interleaved, N repetitions each; medians and ratios. Also counts model loads from disk across repeated runs.

    python benchmarks/overhead.py [-n 20]

Sampling compares like with like: the pack's sampler at window="full" and decode unchunked (the raw pipeline's
work) as well as its default (trimmed window, chunked decode).
"""
import argparse
import importlib
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "comfy_stub"))
from pack_loader import load_pack_nodes  # noqa: E402


def main() -> None:
    import folder_paths
    import torch

    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=20)
    ap.add_argument("--out", default=".")
    args = ap.parse_args()
    nodes = load_pack_nodes()
    devices = importlib.import_module("ambient_nodes.models.devices")
    loading = importlib.import_module("ambient_nodes.models.loading")
    soundscape = importlib.import_module("ambient_nodes.generate.soundscape")
    demo = importlib.import_module("ambient_nodes.tools.demo_models")
    loading.quiet_libraries()
    base = tempfile.mkdtemp(prefix="overhead_")
    folder_paths.set_base(base)
    blip_dir, sa_dir = demo.build_demo_models(os.path.join(base, "models"), sample_size=224)
    N = nodes.NODE_CLASS_MAPPINGS
    image = torch.rand(1, 64, 96, 3, generator=torch.Generator().manual_seed(0))
    prompt, negative, seconds, steps = "rain on a roof, distant thunder", "music, speech", 10.0, 20

    loads = {"n": 0}
    real_load = loading._load_stable_audio

    def counting(handle):
        loads["n"] += 1
        return real_load(handle)

    loading._load_stable_audio = counting

    def graph(window):
        (blip,) = N["AmbientBlipLoader"]().execute(demo.BLIP_NAME, "fp32")
        (caps,) = N["AmbientBlipCaption"]().execute(image, blip, "", 20, 1)
        p, neg = N["AmbientPromptBuilder"]().execute(caps[0], "natural field recording", "")
        (sa,) = N["AmbientStableAudioLoader"]().execute(demo.STABLE_AUDIO_NAME, "fp32")
        t = time.perf_counter()
        if window == "default":
            (audio,) = N["AmbientStableAudioSampler"]().execute(sa, prompt, negative, seconds, steps, 7.0, 0, 1)
        else:  # the sampler's own function with the raw pipeline's window and decode
            with devices.stable_audio_session(sa, devices.DevicePlan(), "balanced", node="benchmark") as (pipe, stage):
                w, r = soundscape.generate_soundscape(pipe, prompt, negative_prompt=negative, seconds=seconds,
                                                      steps=steps, seed=0, window="full", decode_chunk_frames=0)
        return time.perf_counter() - t

    from diffusers import StableAudioPipeline
    from transformers import BlipForConditionalGeneration, BlipProcessor

    raw_blip = BlipForConditionalGeneration.from_pretrained(blip_dir, local_files_only=True).eval()
    raw_proc = BlipProcessor.from_pretrained(blip_dir, local_files_only=True)
    raw_pipe = StableAudioPipeline.from_pretrained(sa_dir, local_files_only=True)
    raw_pipe.set_progress_bar_config(disable=True)

    def raw():
        import numpy as np
        from PIL import Image

        pil = Image.fromarray((image[0].numpy() * 255).astype(np.uint8))
        with torch.inference_mode():
            raw_blip.generate(**raw_proc(images=pil, return_tensors="pt"), max_new_tokens=20)
            t = time.perf_counter()
            raw_pipe(prompt, negative_prompt=negative, audio_end_in_s=seconds, num_inference_steps=steps,
                     guidance_scale=7.0, generator=torch.Generator("cpu").manual_seed(0))
        return time.perf_counter() - t

    graph("default"), graph("full"), raw()  # warm-up
    loads_after_warmup = loads["n"]
    res = {"pack sampler, default (trimmed window, chunked decode on GPU only)": [], "pack sampler, full window": [],
           "raw diffusers pipeline": []}
    for _ in range(args.n):
        res["pack sampler, default (trimmed window, chunked decode on GPU only)"].append(graph("default"))
        res["pack sampler, full window"].append(graph("full"))
        res["raw diffusers pipeline"].append(raw())
    med = {k: statistics.median(v) for k, v in res.items()}
    raw_med = med["raw diffusers pipeline"]
    print(f"tiny models, CPU, {seconds:g} s clip, {steps} steps, cfg 7, n={args.n} interleaved")
    for k, v in med.items():
        print(f"  {k:<58} {v * 1000:8.1f} ms   x raw {v / raw_med:5.3f}")
    print(f"  overhead of the node path at the raw pipeline's settings: "
          f"{(med['pack sampler, full window'] / raw_med - 1) * 100:+.1f} % (goal <= 2 %)")
    print(f"  Stable Audio loads from disk in {2 * args.n} graph runs after the first: {loads['n'] - loads_after_warmup}")
    with open(os.path.join(args.out, "overhead.json"), "w") as f:
        json.dump({"medians_s": med, "loads_after_first": loads["n"] - loads_after_warmup, "n": args.n}, f, indent=1)


if __name__ == "__main__":
    main()
