"""Image(s) in, ambient WAV(s) out, from the command line: the same functions the ComfyUI nodes call.

    python -m nodes.cli                                   # no models: the procedural engine's beach bed
    python -m nodes.cli --engine procedural --caption "a rainy street at night" --minutes 10 --loop
    python -m nodes.cli --engine plumbing                 # tiny random models: checks the chain, makes noise
    python -m nodes.cli photo.jpg --blip models/blip/blip-image-captioning-large \\
        --stable-audio models/diffusers/stable-audio-open-1.0 --seconds 20

    python -m nodes.cli --spatial wide --regions 3 --ambix out.wav --binaural out_bin.wav   # AmbiX + headphones

    python -m nodes.cli batch photos/ --out runs/photos   # a folder, list or table of images: resumable, sharded
    python -m nodes.cli --check --comfyui ~/ComfyUI        # which models are there, and how to get the others

    python -m nodes.cli convert-sa3 stable-audio-3-medium.safetensors ComfyUI/models/diffusers/stable-audio-3-medium \\
        --text-encoder t5gemma-b-b-ul2                    # official Stable Audio 3 file -> diffusers folder

Exit codes: 0 done, 1 a run failed (message on stderr), 2 bad arguments, 130 interrupted (Ctrl+C);
``--check``: 0 all models found, 3 something is missing.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile

from .audio.wav import BIT_DEPTHS
from .headless import (
    AUTO,
    DEFAULT_LOOP,
    DEFAULT_OVERLAP,
    OOM_ADVICE,
    SAMPLING_FLAGS,
    as_flags,
    captions,
    craft,
    default_seconds,
    image_files,
    model_handle,
    progress,
    sample,
)
from .models import devices, folders, loading
from .text.prompt import DEFAULT_PRESET, PRESET_NAMES, build_prompt
from .tools.model_check import check_models

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_IMAGE = os.path.join(ROOT, "assets", "example_beach.jpg")
DEMO_CAPTION = "a sandy beach with waves under a blue sky"  # the bundled picture, for the procedural engine
ENGINES = ("auto", "stable-audio", "procedural", "plumbing")
DEMO_FAMILIES = ("open", "sa3-small", "sa3-medium")
PROCEDURAL_SECONDS = 30.0  # the procedural engine's default length


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m nodes.cli",
        description="Turn images into matching ambient soundscapes (BLIP caption -> ambient prompt -> Stable Audio "
                    "-> WAV). Without --stable-audio the model-free procedural engine makes the audio from the "
                    "scene's words (rain, surf, wind, traffic, crickets...); --engine plumbing runs the chain on "
                    "tiny random models instead (noise, a check).",
        epilog="Stable Audio 3: `python -m nodes.cli convert-sa3 --help` converts the official checkpoint into a "
               "diffusers folder.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("images", nargs="*", help="image files or folders of images (default: the bundled beach picture)")
    _model_args(p.add_argument_group("models (local folders; see the README for `hf download`)"))
    c = p.add_argument_group("caption")
    c.add_argument("--caption-prefix", default="", help="conditional caption start, e.g. 'a photography of'")
    c.add_argument("--max-tokens", type=int, default=30, help="longest caption in tokens")
    c.add_argument("--beams", type=int, default=3, help="beam-search width (1 = greedy)")
    c.add_argument("--caption", help="skip BLIP and use this caption for every image")
    pr = p.add_argument_group("prompt")
    pr.add_argument("--preset", choices=PRESET_NAMES, default=DEFAULT_PRESET, help="character of the soundscape")
    pr.add_argument("--extra", default="", help="sounds or words to add to the prompt")
    s = p.add_argument_group("sampling")
    s.add_argument("--seconds", type=float, help="clip length (default: 10 s, or the model's maximum if shorter)")
    s.add_argument("--steps", type=int, default=0,
                   help="sampling steps (default 0: the model's own, 100 for Open 1.0, 8 for Stable Audio 3)")
    s.add_argument("--cfg", type=float, default=0.0,
                   help="guidance scale, 1 = off (default 0: the model's own, 7 for Open 1.0, 1 for Stable Audio 3)")
    s.add_argument("--seed", type=int, default=0, help="same seed + same inputs = same audio")
    s.add_argument("--variations", type=int, default=1, help="clips per image")
    d = p.add_argument_group("sound craft (applied in this order)")
    d.add_argument("--minutes", type=float, help="make a long soundscape of this many minutes (joined segments) "
                   "instead of one clip")
    d.add_argument("--overlap", type=float, help="with --minutes: cross-fade between segments in seconds "
                   f"(default: {DEFAULT_OVERLAP:g}, or a quarter of a segment if that is shorter)")
    d.add_argument("--loop", type=float, nargs="?", const=AUTO, metavar="OVERLAP",
                   help=f"make a seamless loop with this cross-fade in seconds (default: {DEFAULT_LOOP:g}, or a "
                        "quarter of the clip if that is shorter) and write loop points")
    d.add_argument("--fade", type=float, nargs=2, metavar=("IN", "OUT"), help="fade in and out, in seconds")
    d.add_argument("--fade-curve", default="equal-power", choices=("linear", "equal-power", "exponential"),
                   help="fade shape")
    d.add_argument("--loudness", type=float, metavar="LUFS", help="normalize integrated loudness to this target "
                   "(e.g. -23 broadcast, -16 podcast, -14 streaming)")
    d.add_argument("--true-peak", type=float, default=-1.0, metavar="DBTP", help="true-peak ceiling with --loudness")
    _output_args(p.add_argument_group("output"))
    _spatial_args(p.add_argument_group("spatial soundscape (AmbiX first-order ambisonics; the sound craft flags "
                                       "apply to all 4 channels)"))
    return p


def _model_args(m) -> None:
    m.add_argument("--blip", metavar="DIR", help="a transformers BLIP captioning folder")
    m.add_argument("--stable-audio", metavar="DIR", help="a diffusers Stable Audio folder (model_index.json)")
    m.add_argument("--engine", choices=ENGINES, default="auto", help="auto: Stable Audio when --stable-audio is "
                   "given, else procedural (no model: layered rain/surf/wind... from the caption's words); "
                   "plumbing: tiny random models built on the fly (makes noise: checks the chain)")
    m.add_argument("--demo-family", choices=DEMO_FAMILIES, default="open",
                   help="with --engine plumbing (no model folders): which tiny random Stable Audio to build: Open "
                        "1.0, Stable Audio 3 Small (its exact SAME-S autoencoder) or Medium (random weights: noise)")
    m.add_argument("--dtype", choices=folders.DTYPES, default="auto", help="weight precision (auto: fp16 on a GPU)")
    m.add_argument("--memory", choices=devices.MEMORY_MODES, default="balanced",
                   help="GPU memory mode: balanced, fast (stays resident), low-vram (6-8 GB cards)")
    m.add_argument("--check", action="store_true", help="only check which models are there (in --blip, "
                   "--stable-audio, which may also name folders of model folders, and --comfyui) and print the "
                   "`hf download` command for each missing one; exit 0 when all are found, 3 when not")
    m.add_argument("--comfyui", metavar="DIR", help="with --check: a ComfyUI folder; searches its models/blip, "
                   "models/diffusers and the folders its extra_model_paths.yaml adds (default: the ComfyUI this "
                   "pack is installed in, if any)")


def _spatial_args(g) -> None:
    from .audio.hrtf import BUILTIN

    g.add_argument("--spatial", choices=("panorama", "wide"), help="plan a scene around the listener from the "
                   "picture: panorama = an equirectangular 360 deg image (its centre in front), wide = an ordinary "
                   "picture across +-60 deg; each region captioned, one take for a diffuse bed and one per source "
                   "at its direction, mixed in AmbiX")
    g.add_argument("--regions", type=int, metavar="N", help="with --spatial: regions to caption, 3 to 8 (default 4)")
    g.add_argument("--ambix", metavar="OUT.wav", help="with --spatial: write the 4-channel AmbiX WAV (ACN/SN3D) "
                   "here (never over an existing file)")
    g.add_argument("--binaural", metavar="OUT.wav", help="with --spatial: write the 2-channel headphone decode here "
                   "(never over an existing file)")
    g.add_argument("--hrtf", metavar="FILE_OR_NAME", help=f"with --binaural: a SOFA HRTF file to hear it through "
                   f"(needs `pip install sofar`), or a file name in ComfyUI/models/hrtf (default: {BUILTIN})")


def _output_args(o) -> None:
    o.add_argument("--out", default="output", help="output folder")
    o.add_argument("--prefix", default="ambient/soundscape", help="file name prefix inside --out")
    o.add_argument("--bit-depth", choices=list(BIT_DEPTHS), default="16", help="WAV sample format")
    o.add_argument("--no-spectrogram", action="store_true", help="do not write a spectrogram PNG beside each WAV")
    o.add_argument("--quiet", action="store_true", help="no progress bar")


def _engine(args: argparse.Namespace) -> str:
    """The engine that makes the audio: --engine, with auto as Stable Audio when a folder is given, else
    procedural; refuses a Stable Audio folder with a model-free engine."""
    engine = args.engine
    if engine == "auto":
        engine = "stable-audio" if args.stable_audio else "procedural"
    if engine in ("procedural", "plumbing") and args.stable_audio:
        raise ValueError(f"--engine {engine} makes audio without --stable-audio. Drop one of them.")
    if engine == "stable-audio" and not args.stable_audio:
        raise ValueError("--engine stable-audio needs --stable-audio DIR (a diffusers Stable Audio folder).")
    return engine


def _check_run_args(args: argparse.Namespace) -> bool:
    """Whether this is the plumbing demo (neither --blip nor --stable-audio); refuses half a model pair."""
    demo = not (args.blip or args.stable_audio)
    if not demo and not args.stable_audio:
        raise ValueError("--stable-audio is required when --blip is given (or pass neither for the demo).")
    if not demo and not args.blip and not args.caption:
        raise ValueError("--blip is required to caption images (or give --caption to skip captioning).")
    return demo


def _build_demo(args: argparse.Namespace) -> tempfile.TemporaryDirectory:
    """Tiny random models in a temporary folder, set as ``args.blip`` and ``args.stable_audio``."""
    from .tools import demo_models

    tmp = tempfile.TemporaryDirectory(prefix="ambient_demo_")
    args.blip, args.stable_audio = demo_models.build_demo_models(tmp.name)
    family = getattr(args, "demo_family", "open")
    if family != "open":  # the same tiny BLIP; a tiny Stable Audio 3 of that family in place of Open 1.0
        size = {"sa3-small": "tiny", "sa3-medium": "tiny-medium"}[family]
        args.stable_audio = demo_models.build_tiny_stable_audio3(
            os.path.join(tmp.name, "diffusers", f"tiny-random-{family}"), size=size)
    label = {"open": "Stable Audio Open 1.0", "sa3-small": "Stable Audio 3 Small (exact SAME-S autoencoder)",
             "sa3-medium": "Stable Audio 3 Medium"}[family]
    print(f"PLUMBING DEMO: tiny random models of BLIP and {label} (a few thousand random weights), built on the "
          "fly. The caption is random words and the audio is noise; pass --blip and --stable-audio folders for "
          "real soundscapes.")
    return tmp


def _save(waveform, rate: int, loop: bool, args: argparse.Namespace) -> None:
    """Each clip as a WAV (and a spectrogram PNG beside it), printing where."""
    from .audio.spectrogram import save_spectrogram_png
    from .audio.wav import save_wav

    saved_files = save_wav(waveform, rate, args.out, args.prefix, args.bit_depth, loop_points=loop)
    for clip, saved in zip(waveform, saved_files):
        print(f"wav:      {saved.path}  ({clip.shape[-1] / rate:.2f} s, {rate} Hz, {clip.shape[0]} ch)")
        if not args.no_spectrogram:
            png = save_spectrogram_png(clip, rate, saved.path[:-4] + ".png", title=os.path.basename(saved.path))
            print(f"picture:  {png}")


def run(args: argparse.Namespace) -> int:
    """The whole chain for each image: caption, prompt, sampling, sound craft, WAV (+ spectrogram)."""
    from .generate.soundscape import NODE

    loading.quiet_libraries()
    if args.spatial:
        return run_spatial_scene(args)
    if _engine(args) == "procedural":
        return run_procedural(args)
    demo = _check_run_args(args)
    images = image_files(args.images or [DEMO_IMAGE])
    plan = devices.standalone_plan()
    tmp = _build_demo(args) if demo else None
    try:
        sa = model_handle(folders.STABLE_AUDIO, args.stable_audio, args.dtype, plan)
        texts = captions(images, args, plan)
        with devices.stable_audio_session(sa, plan, args.memory, node=NODE, advice=OOM_ADVICE) as (pipe, stage):
            options = {"stage": stage, "decode_chunk_frames": devices.decode_chunk_frames(plan, args.memory, pipe)}
            seconds = default_seconds(pipe, args.seconds)
            for path, caption in zip(images, texts):
                prompt, negative = build_prompt(caption, args.preset, args.extra)
                print(f"image:    {path}\ncaption:  {caption}\nprompt:   {prompt}\nnegative: {negative}")
                waveform, rate = sample(pipe, prompt, negative, seconds, options, args)
                waveform, loop = craft(waveform, rate, args)
                _save(waveform, rate, loop, args)
    finally:
        if tmp is not None:
            loading.unload()
            tmp.cleanup()
    return 0


def run_spatial_scene(args: argparse.Namespace) -> int:
    """``--spatial``: the chain of headless_spatial.py with the chosen engine (the plumbing engine's tiny random
    models built and removed around it)."""
    from .headless_spatial import preflight, run_spatial

    engine = _engine(args)
    demo = engine != "procedural" and _check_run_args(args)
    hrtf = preflight(args)  # existing output files, a bad --hrtf: refused before any work
    tmp = _build_demo(args) if demo else None
    try:
        return run_spatial(args, engine, DEMO_IMAGE, DEMO_CAPTION, PROCEDURAL_SECONDS, hrtf)
    finally:
        if tmp is not None:
            loading.unload()
            tmp.cleanup()


def _procedural_captions(images: list[str], args: argparse.Namespace) -> list[str]:
    """Captions for the procedural engine: --caption, BLIP's when --blip is given, the bundled picture's own."""
    if args.caption or args.blip:
        return captions(images, args, devices.standalone_plan())
    if images != [DEMO_IMAGE]:
        raise ValueError("the procedural engine reads the scene from words: pass --caption \"...\" (or --blip DIR "
                         "to caption these images).")
    return [DEMO_CAPTION]


def run_procedural(args: argparse.Namespace) -> int:
    """The model-free chain: caption -> scene plan -> procedural layers -> sound craft -> WAV (+ spectrogram)."""
    import numpy as np
    import torch

    from .audio.procedural import SAMPLE_RATE, render, stream_mix
    from .audio.procedural_scene import describe_plan, scene_plan

    images = image_files(args.images or [DEMO_IMAGE])
    seconds = args.minutes * 60 if args.minutes else (args.seconds or PROCEDURAL_SECONDS)
    print("PROCEDURAL ENGINE (no model): the audio is layered from the scene's words by DSP (rain, surf, wind, "
          "traffic, crickets...). It is a real, loopable bed, but it only knows a few dozen scene words; a Stable "
          "Audio model (--stable-audio DIR, and --blip DIR to caption your own pictures) makes a soundscape that "
          "follows the whole prompt.")
    for path, caption in zip(images, _procedural_captions(images, args)):
        plan = scene_plan(caption)
        print(f"image:    {path}\ncaption:  {caption}\nlayers:   {describe_plan(caption, plan)}")
        with as_flags(SAMPLING_FLAGS):
            clips = [render(stream_mix(plan, seconds, args.seed + k), round(seconds * SAMPLE_RATE),
                            progress("rendering", args.quiet)) for k in range(args.variations)]
        waveform = torch.from_numpy(np.stack(clips))
        waveform, loop = craft(waveform, SAMPLE_RATE, args)
        _save(waveform, SAMPLE_RATE, loop, args)
    return 0


# --------------------------------------------------------------------------------------------- convert-sa3
def _convert_parser(dtypes) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m nodes.cli convert-sa3",
        description="Convert an official Stable Audio 3 checkpoint (the single .safetensors file ComfyUI's native "
                    "nodes load) and a T5Gemma encoder folder into a diffusers StableAudio3Pipeline folder for Load "
                    "Stable Audio Model: Small (SFX, Music; its SAME-S autoencoder held exactly by the pack) or "
                    "Medium. Refuses what it cannot hold exactly and never overwrites.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="the official Stable Audio 3 .safetensors file")
    p.add_argument("out_dir", metavar="OUT_DIR", help="the pipeline folder to create (new or empty), e.g. "
                   "ComfyUI/models/diffusers/stable-audio-3-small-sfx")
    p.add_argument("--text-encoder", required=True, metavar="T5GEMMA_DIR",
                   help="the google/t5gemma-b-b-ul2 folder (transformers format, with its tokenizer)")
    p.add_argument("--model-config", metavar="JSON", help="the checkpoint's model_config.json (default: "
                   "model_config.json beside CHECKPOINT, if there)")
    p.add_argument("--dtype", choices=dtypes, default="fp16", help="weight precision of the folder (keep: the "
                   "checkpoint's own); rotary and duration frequencies stay fp32")
    return p


def _reported(job, interrupted: str):
    """``job()``'s result, or the exit code after printing why it stopped: 130 on Ctrl-C (``interrupted`` says what
    was left), 1 on a ValueError or OSError (its message is the whole report)."""
    try:
        return job()
    except KeyboardInterrupt:
        print(f"\ninterrupted: {interrupted}.", file=sys.stderr)
        return 130
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


def _count(n: int) -> str:
    return f"{n / 1e6:,.1f} M" if n >= 1e6 else f"{n:,}"


def convert_sa3_command(argv: list[str], out=None) -> int:
    """``convert-sa3``: run :func:`sa3_convert.convert_sa3` and print what was written and what to do next."""
    from .tools.sa3_convert import DTYPES

    args = _convert_parser(DTYPES).parse_args(argv)
    return _reported(lambda: _convert(args, out or sys.stdout), "nothing was written")


def _convert(args: argparse.Namespace, out) -> int:
    from .tools.sa3_convert import convert_sa3, describe_pipeline_folder

    notes: list[str] = []
    print(f"converting {args.checkpoint} (reads the whole checkpoint into memory; about a minute for Medium)...",
          file=out, flush=True)
    folder = convert_sa3(args.checkpoint, args.out_dir, args.text_encoder, model_config=args.model_config,
                         dtype=args.dtype, notes=notes)
    print(f"wrote {folder} ({args.dtype}):", file=out)
    for row in describe_pipeline_folder(folder):
        size = ""
        if row["dtypes"]:
            main_dtype = max(row["dtypes"], key=row["dtypes"].get)
            extra = ", ".join(f"{_count(n)} {d}" for d, n in row["dtypes"].items() if d != main_dtype)
            size = f"{_count(row['parameters']):>10} parameters  {main_dtype}" + (f" (+ {extra})" if extra else "")
        print(f"  {row['component']:<18} {row['class']:<32} {size}".rstrip(), file=out)
    for note in notes:
        print(f"  note: {note}", file=out)
    print(f"Next: put {folder} under ComfyUI/models/diffusers/ (if it is not there already) and pick it in Load "
          "Stable Audio Model.", file=out)
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["convert-sa3"]:
        return convert_sa3_command(argv[1:])
    if argv[:1] == ["batch"]:
        from .batch import batch_command

        return batch_command(argv[1:], _parser())
    parser = _parser()
    args = parser.parse_args(argv)
    if args.check:
        if args.images:
            parser.error("--check takes no images")
        return check_models(args.comfyui, args.blip, args.stable_audio)
    if args.comfyui:
        parser.error("--comfyui goes with --check")
    from .headless_spatial import check_spatial_flags

    check_spatial_flags(args, parser.error)
    return _reported(lambda: run(args), "no partial file was left behind")


if __name__ == "__main__":
    sys.exit(main())
