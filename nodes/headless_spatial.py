"""The command line's spatial soundscape (``python -m nodes.cli --spatial panorama|wide``): the chain of the
workflow ``panorama_to_ambix.json`` over the plain functions its nodes call. No comfy import.

Layout and region captions (Spatial Scene from Image: :func:`caption_scene`), one take for the bed and one per
source with the chosen engine, the bed encoded diffuse and each source at its azimuth and width (Spatial Encode
(AmbiX)), mixed (Mix in Space (AmbiX)), sound craft on all four channels, then ``--ambix OUT.wav`` (4-channel AmbiX
WAV) and ``--binaural OUT.wav`` (Binaural from Ambisonics: the built-in spherical head, or ``--hrtf`` a SOFA file).
"""
from __future__ import annotations

import argparse
import os
from collections.abc import Callable

from .headless import SAMPLING_FLAGS, as_flags, craft, progress

LAYOUTS = {"panorama": "panorama 360", "wide": "wide picture"}  # --spatial value -> the node's layout
DEFAULT_REGIONS = 4  # the node's default
SCENE_FLAGS = {"regions": "--regions", "layout": "--spatial"}
# the levels and placement of workflows/panorama_to_ambix.json: bed diffuse at 1 m and -3 dB, sources at 2 m and
# 0 dB with their plan widths, a stereo take's channels 60 deg apart
BED_GAIN_DB = -3.0
SOURCE_GAIN_DB = 0.0
SOURCE_DISTANCE_M = 2.0
STEREO_SPREAD_DEG = 60.0
BUILTIN_NAMES = ("built-in", "builtin")  # --hrtf values that mean the built-in spherical head (besides its full name)


def check_spatial_flags(args: argparse.Namespace, error: Callable[[str], None]) -> None:
    """Refuse spatial flags that cannot work together (``error(message)`` exits, as ``parser.error`` does)."""
    from .generate.spatial_scene import check_layout

    given = [flag for flag, value in (("--ambix", args.ambix), ("--binaural", args.binaural),
                                      ("--regions", args.regions), ("--hrtf", args.hrtf)) if value is not None]
    if not args.spatial:
        if given:
            error(f"{given[0]} needs --spatial panorama|wide (a spatial scene from the picture).")
        return
    if not (args.ambix or args.binaural):
        error("--spatial writes --ambix OUT.wav (4-channel AmbiX) and/or --binaural OUT.wav (headphones): give at "
              "least one.")
    if args.hrtf is not None and not args.binaural:
        error("--hrtf goes with --binaural OUT.wav (it is the head the binaural file is heard through).")
    if args.ambix and args.binaural and os.path.abspath(args.ambix) == os.path.abspath(args.binaural):
        error("--ambix and --binaural name the same file; give two names.")
    if args.variations != 1:
        error("--variations makes several clips; with --spatial each file holds one scene. Leave it at 1.")
    if len(args.images) > 1:
        error("--spatial makes one scene from one picture: pass one image (or none for the bundled beach).")
    try:
        args.regions = check_layout(LAYOUTS[args.spatial], DEFAULT_REGIONS if args.regions is None else args.regions)
    except ValueError as err:
        text = str(err)
        for name, flag in SCENE_FLAGS.items():
            text = text.replace(f'"{name}"', flag)
        error(text)


def _free_target(path: str | None, flag: str) -> None:
    if path and os.path.lexists(path):
        raise ValueError(f"{flag} {path} already exists; the CLI never overwrites a file. Give a new name or remove "
                         "it.")


def resolve_hrtf(value: str | None):
    """``--hrtf``: None for the built-in spherical head, else the :class:`Hrtf` of a SOFA file path, or of a name in
    the models/hrtf folder of the ComfyUI this pack is installed in."""
    from .audio.hrtf import BUILTIN, read_sofa
    from .tools.model_check import installed_comfyui

    if value is None or value == BUILTIN or value.lower() in BUILTIN_NAMES:
        return None
    if os.path.isfile(value):
        return read_sofa(value, "--hrtf")
    comfy = installed_comfyui()
    looked = [value]
    if comfy is not None:
        path = os.path.join(comfy, "models", "hrtf", value)
        looked.append(path)
        if os.path.isfile(path):
            return read_sofa(path, "--hrtf")
    raise ValueError(f"--hrtf {value!r}: no such file (looked at {', '.join(looked)}). Give the path of a .sofa "
                     "HRTF file (or a file name in ComfyUI/models/hrtf when the pack is installed in ComfyUI), or "
                     "leave --hrtf out for the built-in spherical head.")


class _Captioner:
    """``caption(batch, on_step) -> captions`` for :func:`caption_scene` that remembers what it said (the last call
    is the whole picture's caption)."""

    def __init__(self, caption_batch: Callable):
        self.caption_batch = caption_batch
        self.said: list[list[str]] = []

    def __call__(self, batch, on_step=None) -> list[str]:
        texts = list(self.caption_batch(batch, on_step))
        self.said.append(texts)
        return texts


def region_captioner(args: argparse.Namespace, image_path: str, engine: str, demo_image: str,
                     demo_caption: str) -> tuple[_Captioner, str]:
    """How the regions are captioned, and a line that says so: ``--caption`` for every region; BLIP (``--blip``,
    or the plumbing engine's tiny random BLIP) on each crop; with the procedural engine and the bundled picture,
    its own caption for every region (as the one-shot procedural command uses it)."""
    from .generate.caption import caption_images
    from .headless import model_handle
    from .models import devices, folders

    if args.caption:
        return _Captioner(lambda batch, on_step: [args.caption] * batch.shape[0]), "--caption, for every region"
    if args.blip:
        plan = devices.standalone_plan()
        blip = model_handle(folders.BLIP, args.blip, args.dtype, plan)

        def blip_batch(batch, on_step):
            with devices.on_device(blip, plan) as (model, processor):
                return caption_images(model, processor, batch, prefix=args.caption_prefix,
                                      max_new_tokens=args.max_tokens, num_beams=args.beams, on_step=on_step)

        return _Captioner(blip_batch), f"BLIP ({args.blip}) on each region"
    if engine == "procedural" and os.path.abspath(image_path) == os.path.abspath(demo_image):
        return (_Captioner(lambda batch, on_step: [demo_caption] * batch.shape[0]),
                "the bundled picture's caption, for every region (--blip DIR captions each region)")
    raise ValueError("--spatial reads each region from words: pass --blip DIR to caption the regions, or --caption "
                     "\"...\" for all of them.")


def plan_spatial_scene(args: argparse.Namespace, image, captioner: _Captioner):
    """The scene plan of ``image float [1, H, W, C]`` (Spatial Scene from Image's :func:`caption_scene`)."""
    from .generate.spatial_scene import caption_scene

    with as_flags(SCENE_FLAGS):
        return caption_scene(captioner, image[0], LAYOUTS[args.spatial], args.regions, args.preset,
                             on_step=progress("caption", args.quiet))


def procedural_takes(prompts: list[str], seconds: float, args: argparse.Namespace) -> list[tuple]:
    """One procedural take ``(float32 [1, 2, T], 44100)`` per prompt (the bed first), seeds ``--seed + k``: each
    take its own noise, so the bed and a source with the same layers are not one signal."""
    import numpy as np
    import torch

    from .audio.procedural import SAMPLE_RATE, render, stream_mix
    from .audio.procedural_scene import describe_plan, scene_plan

    takes = []
    for k, prompt in enumerate(prompts):
        layers = scene_plan(prompt)
        print(f"take {k + 1}/{len(prompts)}: {describe_plan(prompt, layers)}")
        with as_flags(SAMPLING_FLAGS):
            clip = render(stream_mix(layers, seconds, args.seed + k), round(seconds * SAMPLE_RATE),
                          progress("rendering", args.quiet))
        takes.append((torch.from_numpy(np.ascontiguousarray(clip))[None], SAMPLE_RATE))
    return takes


def model_takes(pipe, prompts: list[str], negative: str, seconds: float, options: dict,
                args: argparse.Namespace) -> list[tuple]:
    """One Stable Audio take ``(waveform [1, C, T], rate)`` per prompt (the bed first), seeds ``--seed + k``."""
    from .headless import sample

    takes = []
    for k, prompt in enumerate(prompts):
        print(f"take {k + 1}/{len(prompts)}: {prompt}")
        one = argparse.Namespace(**{**vars(args), "seed": args.seed + k, "variations": 1})
        takes.append(sample(pipe, prompt, negative, seconds, options, one))
    return takes


def mix_scene(plan, takes: list[tuple]) -> tuple:
    """The bed take diffuse and each source take at its azimuth and width, mixed: ``(float32 [1, 4, T], rate)``
    AmbiX, as long as the bed."""
    from .audio.spatial import encode_diffuse, encode_source, mix_ambix

    (bed, bed_rate), sources = takes[0], takes[1:]
    layers = [(encode_diffuse(bed, bed_rate), bed_rate, BED_GAIN_DB)]
    for (waveform, rate), azimuth, width in zip(sources, plan.azimuths, plan.widths):
        layers.append((encode_source(waveform, rate, azimuth, 0.0, width_deg=width, distance_m=SOURCE_DISTANCE_M,
                                     stereo_spread_deg=STEREO_SPREAD_DEG), rate, SOURCE_GAIN_DB))
    return mix_ambix(layers)


def write_outputs(ambix, rate: int, loop: bool, args: argparse.Namespace, hrtf, summary: dict) -> None:
    """``--ambix``: the 4-channel AmbiX WAV; ``--binaural``: its headphone decode (2 channels). Both through the
    pack's WAV writer, never over a file; printing what was written."""
    from .audio.contract import AMBISONICS_META, AMBIX_FORMAT
    from .audio.hrtf import BUILTIN, decode_binaural_hrtf
    from .audio.spatial import decode_binaural
    from .audio.wav import generation_metadata, save_wav_file

    def save(waveform, path: str, flag: str, ambient: dict) -> None:
        try:
            save_wav_file(waveform, rate, path, args.bit_depth, loop, generation_metadata(ambient=ambient))
        except FileExistsError as err:
            raise ValueError(f"{flag} {path} already exists; the CLI never overwrites a file. Give a new name or "
                             "remove it.") from err
        print(f"{flag[2:]:<9} {path}  ({waveform.shape[-1] / rate:.2f} s, {rate} Hz, {waveform.shape[1]} ch)")

    if args.ambix:
        save(ambix, args.ambix, "--ambix", {**summary, AMBISONICS_META: AMBIX_FORMAT})
    if args.binaural:
        if hrtf is None:
            ears = decode_binaural(ambix, rate)
        else:
            ears = decode_binaural_hrtf(ambix, rate, hrtf)
        save(ears, args.binaural, "--binaural",
             {**summary, "decoded": "binaural", "hrtf": BUILTIN if hrtf is None else hrtf.name})


def preflight(args: argparse.Namespace):
    """What can fail before any work: an existing ``--ambix``/``--binaural`` file, a bad ``--hrtf``. Returns the
    :class:`Hrtf` (None: the built-in head)."""
    _free_target(args.ambix, "--ambix")
    _free_target(args.binaural, "--binaural")
    return resolve_hrtf(args.hrtf)


def run_spatial(args: argparse.Namespace, engine: str, demo_image: str, demo_caption: str,
                procedural_seconds: float, hrtf=None) -> int:
    """The whole spatial chain for ``--spatial`` (see the module text); ``hrtf`` from :func:`preflight`."""
    from .generate.images import load_image
    from .headless import image_files

    (path,) = image_files(args.images or [demo_image])
    layout = LAYOUTS[args.spatial]
    print(f"image:    {path}\nspatial:  {layout}, {args.regions} regions")
    if engine == "procedural":
        captioner, how = region_captioner(args, path, engine, demo_image, demo_caption)
        print(f"captions: {how}")
        plan = plan_spatial_scene(args, load_image(path), captioner)
        print(plan.table)
        seconds = args.minutes * 60 if args.minutes else (args.seconds or procedural_seconds)
        print("PROCEDURAL ENGINE (no model): each take is layered from its prompt's words by DSP; a Stable Audio "
              "model (--stable-audio DIR) makes takes that follow the whole prompt.")
        takes = procedural_takes([plan.bed, *plan.prompts], seconds, args)
        model = "procedural"
    else:
        takes, plan, model = _model_scene(args, path, engine, demo_image, demo_caption)
    ambix, rate = mix_scene(plan, takes)
    ambix, loop = craft(ambix, rate, args)
    summary = {"prompt": plan.bed, "source_prompts": list(plan.prompts), "azimuths": list(plan.azimuths),
               "widths": list(plan.widths), "layout": layout, "regions": args.regions, "seed": args.seed,
               "model": model}
    write_outputs(ambix, rate, loop, args, hrtf, summary)
    return 0


def _model_scene(args: argparse.Namespace, path: str, engine: str, demo_image: str, demo_caption: str):
    """Captions, plan and takes with a Stable Audio pipeline (``--stable-audio``, or the plumbing engine's tiny
    random models): ``(takes, plan, model name)``."""
    from .generate.images import load_image
    from .generate.soundscape import NODE
    from .headless import OOM_ADVICE, default_seconds, model_handle
    from .models import devices, folders
    from .text.prompt import build_layered_prompts

    plan_devices = devices.standalone_plan()
    captioner, how = region_captioner(args, path, engine, demo_image, demo_caption)
    print(f"captions: {how}")
    plan = plan_spatial_scene(args, load_image(path), captioner)
    print(plan.table)
    negative = build_layered_prompts(captioner.said[-1][0], args.preset, max_sources=0).negative
    sa = model_handle(folders.STABLE_AUDIO, args.stable_audio, args.dtype, plan_devices)
    with devices.stable_audio_session(sa, plan_devices, args.memory, node=NODE, advice=OOM_ADVICE) as (pipe, stage):
        options = {"stage": stage, "decode_chunk_frames": devices.decode_chunk_frames(plan_devices, args.memory, pipe)}
        seconds = default_seconds(pipe, args.seconds)
        takes = model_takes(pipe, [plan.bed, *plan.prompts], negative, seconds, options, args)
    return takes, plan, os.path.basename(os.path.abspath(args.stable_audio))
