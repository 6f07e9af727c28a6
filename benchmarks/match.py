"""Do the prompts fit the audio? Images -> BLIP caption -> ambient prompt (every preset) -> Stable Audio takes ->
CLAP score, printed as the mean score per preset, with what each stage cost.

    python benchmarks/match.py --blip DIR --stable-audio DIR --clap DIR [--variations 4] [--seconds 10]
    python benchmarks/match.py --demo          # tiny random models in a temp folder: checks the plumbing only
    python benchmarks/match.py --demo full     # published sizes, random weights: timings only (use a GPU)

The images are assets/*.jpg plus a few synthesized scenes (--images to pick files). Each takes's score is CLAP's
cosine similarity with its own prompt (-1..1, higher is better), mean over its 10 s windows (nodes/clap.py). Per
preset the table shows the mean over all takes, the mean of the best take of each batch (what Rank Takes keeps),
the similarity with the caption, and a control: the same takes scored against another image's prompt of the same
preset. Only "prompt" above "control" says the audio follows its prompt; absolute values differ between CLAP
models, so compare presets within one run.
"""
import argparse
import glob
import importlib
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from pack_loader import load_pack_nodes  # noqa: E402


def random_warning(size: str) -> str:
    lines = ["RANDOM MODELS (--demo): untrained weights. EVERY SCORE BELOW IS MEANINGLESS NOISE.",
             "This run only shows that image -> caption -> prompt -> audio -> CLAP score works end to end."]
    if size == "full":
        lines.append("The timings are real: the models have the published sizes (BLIP-large, Stable Audio Open 1.0, "
                     "larger_clap_general).")
    bar = "#" * max(len(line) + 4 for line in lines)
    return "\n".join([bar, *(f"# {line} " for line in lines), bar])


def _mods():
    load_pack_nodes()
    return {n: importlib.import_module(f"ambient_nodes.{path}")
            for n, path in {"devices": "models.devices", "folders": "models.folders", "loading": "models.loading", "caption": "generate.caption", "prompt": "text.prompt", "soundscape": "generate.soundscape", "clap": "generate.clap", "demo_models": "tools.demo_models"}.items()}


def synthetic_images(size=(192, 256)):
    """A few simple scenes as IMAGE tensors [1, H, W, 3]: sea under a sky, a forest, a city at night, a fire."""
    import torch

    h, w = size
    g = torch.Generator().manual_seed(0)
    y = torch.linspace(0, 1, h)[:, None].expand(h, w)
    scenes = {}
    sea = torch.stack([0.3 + 0.2 * y, 0.5 + 0.2 * y, 0.9 - 0.3 * y], -1)
    sea[h // 2:] = torch.stack([0.05 + 0 * y, 0.25 + 0.1 * y, 0.5 + 0 * y], -1)[h // 2:]
    scenes["synthetic-sea"] = sea
    forest = torch.rand(h, w, 3, generator=g) * torch.tensor([0.15, 0.55, 0.1]) + torch.tensor([0.05, 0.2, 0.05])
    scenes["synthetic-forest"] = forest
    night = torch.full((h, w, 3), 0.03)
    lights = torch.rand(h, w, generator=g) > 0.985
    night[lights] = torch.tensor([1.0, 0.85, 0.4])
    scenes["synthetic-night-city"] = night
    fire = torch.stack([0.9 * (1 - y) + 0.1, 0.4 * (1 - y) ** 2, 0.05 + 0 * y], -1)
    scenes["synthetic-fire"] = fire
    return {name: img.clamp(0, 1)[None].float() for name, img in scenes.items()}


def load_images(paths):
    import numpy as np
    import torch
    from PIL import Image

    out = {}
    for path in paths:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
        out[os.path.splitext(os.path.basename(path))[0]] = torch.from_numpy(arr)[None]
    return out


def build_demo(root: str, size: str, m) -> tuple[str, str, str]:
    """Random models saved like ComfyUI's folders: tiny ones, or the published sizes (BLIP-large, Stable Audio
    Open 1.0, laion/larger_clap_general)."""
    import torch

    demo = m["demo_models"]
    m["loading"].quiet_libraries()
    full = size == "full"
    device = "cuda" if full and torch.cuda.is_available() else "cpu"
    with torch.device(device):
        blip = demo.build_tiny_blip(os.path.join(root, "blip", "blip-random"), size="large" if full else "tiny")
        sa = demo.build_tiny_stable_audio(os.path.join(root, "diffusers", "sa-random"),
                                          sample_size=1024 if full else 48, size="open-1.0" if full else "tiny")
        clap = demo.build_tiny_clap(os.path.join(root, "clap", "clap-random"), size="larger" if full else "tiny")
    return blip, sa, clap


def handle(m, kind, folder, dtype, plan):
    folder = os.path.abspath(folder)
    return m["folders"].make_handle(kind, os.path.basename(folder), [os.path.dirname(folder)], dtype, plan)


def sync():
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--blip", help="a BLIP captioning folder (e.g. ComfyUI/models/blip/blip-image-captioning-large)")
    ap.add_argument("--stable-audio", help="a diffusers Stable Audio folder (ComfyUI/models/diffusers/...)")
    ap.add_argument("--clap", help="a transformers CLAP folder (ComfyUI/models/clap/larger_clap_general)")
    ap.add_argument("--demo", nargs="?", const="tiny", choices=("tiny", "full"),
                    help="build random models in a temp folder: tiny (plumbing, CPU) or full (published sizes: "
                         "timings, GPU)")
    ap.add_argument("--images", nargs="*", help="image files (default: assets/*.jpg and synthesized scenes)")
    ap.add_argument("--presets", nargs="*", help="preset names (default: all)")
    ap.add_argument("--variations", type=int, default=4, help="takes per prompt (default 4)")
    ap.add_argument("--seconds", type=float, help="clip length (default 10; tiny demo 2)")
    ap.add_argument("--steps", type=int, help="sampling steps (default: the model's own, 100 for Open 1.0 and 8 for "
                                              "Stable Audio 3; tiny demo 8)")
    ap.add_argument("--cfg", type=float, default=0.0, help="guidance (default 0: the model's own)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", default="auto", choices=("auto", "fp32", "fp16", "bf16"))
    args = ap.parse_args()
    if not args.demo and not (args.blip and args.stable_audio and args.clap):
        ap.error("give --blip, --stable-audio and --clap model folders, or --demo")

    m = _mods()
    import torch

    tiny = args.demo == "tiny"
    seconds = args.seconds or (2.0 if tiny else 10.0)
    steps = args.steps or (8 if tiny else 0)
    if args.demo:
        root = tempfile.mkdtemp(prefix="match_demo_")
        blip_dir, sa_dir, clap_dir = build_demo(root, args.demo, m)
        print(random_warning(args.demo))
    else:
        blip_dir, sa_dir, clap_dir = args.blip, args.stable_audio, args.clap
    devices, folders, prompt_mod, soundscape, clap = m["devices"], m["folders"], m["prompt"], m["soundscape"], m["clap"]
    plan = devices.standalone_plan()
    images = load_images(args.images) if args.images else {
        **load_images(sorted(glob.glob(os.path.join(ROOT, "assets", "*.jpg")))), **synthetic_images()}
    presets = args.presets or list(prompt_mod.PRESET_NAMES)
    names = list(images)
    print(f"device {plan.load_device}, {len(names)} images x {len(presets)} presets x {args.variations} takes of "
          f"{seconds:g} s, {steps or 'the model default'} steps, cfg {args.cfg or 'the model default'}, "
          f"torch {torch.__version__}")

    timing = {"caption": [], "sample": [], "score": []}
    h_blip = handle(m, folders.BLIP, blip_dir, args.dtype, plan)
    captions = {}
    with devices.on_device(h_blip, plan) as (model, processor):
        for name in names:
            sync()
            t = time.perf_counter()
            captions[name] = m["caption"].caption_images(model, processor, images[name], max_new_tokens=30,
                                                         num_beams=3)[0]
            sync()
            timing["caption"].append(time.perf_counter() - t)
    prompts = {(n, p): prompt_mod.build_prompt(captions[n], p) for n in names for p in presets}

    h_sa = handle(m, folders.STABLE_AUDIO, sa_dir, args.dtype, plan)
    takes = {}
    with devices.stable_audio_session(h_sa, plan, "balanced", node="benchmark") as (pipe, stage):
        for key, (prompt, negative) in prompts.items():
            sync()
            t = time.perf_counter()
            waveform, rate = soundscape.generate_soundscape(
                pipe, prompt, negative_prompt=negative, seconds=seconds, steps=steps, cfg=args.cfg, seed=args.seed,
                variations=args.variations, stage=stage,
                decode_chunk_frames=devices.decode_chunk_frames(plan, "balanced", pipe))
            sync()
            timing["sample"].append(time.perf_counter() - t)
            takes[key] = (waveform.cpu(), rate)

    h_clap = handle(m, folders.CLAP, clap_dir, args.dtype, plan)
    results = {p: {"prompt": [], "best": [], "caption": [], "control": []} for p in presets}
    with devices.on_device(h_clap, plan) as (model, processor):
        for (name, preset), (waveform, rate) in takes.items():
            other = names[(names.index(name) + 1) % len(names)]
            texts = [prompts[(name, preset)][0], captions[name], prompts[(other, preset)][0]]
            sync()
            t = time.perf_counter()
            sims = clap.take_similarities(model, processor, waveform, rate, texts)
            sync()
            timing["score"].append((time.perf_counter() - t) / waveform.shape[0])
            r = results[preset]
            r["prompt"] += sims[:, 0].tolist()
            r["best"].append(float(sims[:, 0].max()))
            r["caption"] += sims[:, 1].tolist()
            r["control"] += sims[:, 2].tolist()

    print("\ncaptions:")
    for name in names:
        print(f"  {name}: {captions[name]!r}")
    print(f"\nmean CLAP score per preset ({len(names)} images x {args.variations} takes; -1..1, higher = closer)")
    print(f"{'preset':<28}{'prompt':>9}{'best take':>11}{'caption':>9}{'control':>9}{'margin':>9}")
    for preset in presets:
        r = results[preset]
        mean = {k: statistics.fmean(v) for k, v in r.items()}
        print(f"{preset:<28}{mean['prompt']:>+9.4f}{mean['best']:>+11.4f}{mean['caption']:>+9.4f}"
              f"{mean['control']:>+9.4f}{mean['prompt'] - mean['control']:>+9.4f}")
    print("  margin = prompt - control (the same takes against another image's prompt): above 0 = the audio "
          "follows its own prompt")
    med = {k: statistics.median(v) for k, v in timing.items()}
    print(f"\ncost (median): caption {med['caption']:.2f} s/image; sampling {med['sample']:.2f} s per batch of "
          f"{args.variations} x {seconds:g} s; CLAP scoring {med['score']:.3f} s per {seconds:g} s take "
          f"({plan.load_device}; each model moved to it once for all its work)")
    if args.demo:
        print("\nREMINDER: random models -- the scores above are meaningless.")


if __name__ == "__main__":
    main()
