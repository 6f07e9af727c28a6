"""The steps of the headless chain that the one-shot CLI (``python -m nodes.cli``) and the batch runner
(``python -m nodes.cli batch``) share: find and load images, caption, sample, sound craft. No comfy import."""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import time

from .generate.images import IMAGE_EXTS, load_image
from .models import devices, folders

OOM_ADVICE = "Pass --memory low-vram, or a lower --seconds or --variations, or close other programs on the GPU."
DEFAULT_OVERLAP = 3.0  # --minutes' cross-fade (s) when the model's segments are long enough
DEFAULT_LOOP = 2.0  # --loop's cross-fade (s) when the clip is long enough
AUTO = -1.0  # --loop without a value
FRACTION = 0.25  # on short segments or clips, the default cross-fade is this fraction of them
# node input names -> the CLI flags that set them, for the messages of the functions the CLI calls
SAMPLING_FLAGS = {"seconds": "--seconds", "steps": "--steps", "cfg": "--cfg", "seed": "--seed",
                  "variations": "--variations", "minutes": "--minutes", "overlap_seconds": "--overlap"}
CRAFT_FLAGS = {"overlap_seconds": "--loop", "target_lufs": "--loudness", "ceiling_dbtp": "--true-peak",
              "fade_in_seconds": "--fade", "fade_out_seconds": "--fade", "curve": "--fade-curve"}


def progress(label: str, quiet: bool):
    last = [-1.0, -1]  # time and value of the last line drawn

    def on_step(done: int, total: int) -> None:
        if quiet or not total or done == last[1]:
            return
        now = time.monotonic()
        if done < total and now - last[0] < 0.1:
            return
        last[0], last[1] = now, done
        filled = int(30 * done / total)
        sys.stderr.write(f"\r{label:<10} [{'#' * filled}{'.' * (30 - filled)}] {done}/{total}")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return on_step


def image_files(paths: list[str]) -> list[str]:
    files = []
    for path in paths:
        if os.path.isdir(path):
            files += sorted(os.path.join(path, f) for f in os.listdir(path) if f.lower().endswith(IMAGE_EXTS))
        elif os.path.isfile(path):
            files.append(path)
        else:
            raise ValueError(f"image {path!r} does not exist. Pass image files or folders of images.")
    if not files:
        raise ValueError(f"no images found in {', '.join(paths)} (looked for {', '.join(IMAGE_EXTS)}).")
    return files


def model_handle(kind: str, folder: str, dtype: str, plan: devices.DevicePlan) -> folders.ModelHandle:
    folder = os.path.abspath(folder)
    return folders.make_handle(kind, os.path.basename(folder), [os.path.dirname(folder)], dtype, plan)


@contextlib.contextmanager
def as_flags(flags: dict[str, str]):
    """Re-raise a ``ValueError`` from the functions the CLI calls with their quoted input names (``"seconds"``)
    replaced by the CLI flags that set them (``--seconds``), so the message says what to type."""
    try:
        yield
    except ValueError as err:
        text = str(err)
        for name, flag in flags.items():
            text = text.replace(f'"{name}"', flag)
        raise ValueError(text) from err


def short_default(default: float, seconds: float) -> float:
    """``default``, or :data:`FRACTION` of ``seconds`` (to 10 ms, at least 10 ms) when that is shorter."""
    return min(default, max(0.01, math.floor(seconds * FRACTION * 100) / 100))


def craft(waveform, rate: int, args: argparse.Namespace):
    """Loop, fades and loudness, as the nodes do them, in that order. Returns ``(waveform, is_loop)``."""
    with as_flags(CRAFT_FLAGS):
        return _craft_steps(waveform, rate, args)


def _craft_steps(waveform, rate: int, args: argparse.Namespace):
    loop = False
    if args.loop is not None:
        from .audio.loop import make_seamless_loop

        overlap = short_default(DEFAULT_LOOP, waveform.shape[-1] / rate) if args.loop == AUTO else args.loop
        waveform, _ = make_seamless_loop(waveform, rate, overlap)
        loop = True
    if args.fade:
        from .audio.fades import apply_fades

        waveform = apply_fades(waveform, rate, args.fade[0], args.fade[1], args.fade_curve)
        loop = loop and not any(args.fade)
    if args.loudness is not None:
        from .audio.loudness import normalize_loudness

        waveform, info = normalize_loudness(waveform, rate, args.loudness, args.true_peak)
        for clip in info:
            print(f"loudness: {clip['input_lufs']:.1f} -> {clip['output_lufs']:.1f} LUFS, true peak "
                  f"{clip['output_true_peak_dbtp']:.1f} dBTP")
    return waveform, loop


def captions(images: list[str], args: argparse.Namespace, plan: devices.DevicePlan) -> list[str]:
    """One caption per image: BLIP's, or ``--caption`` for every image."""
    from .generate.caption import caption_images

    if args.caption:
        return [args.caption for _ in images]
    blip = model_handle(folders.BLIP, args.blip, args.dtype, plan)
    texts = []
    for path in images:
        with devices.on_device(blip, plan) as (model, processor):
            texts += caption_images(model, processor, load_image(path), prefix=args.caption_prefix,
                                       max_new_tokens=args.max_tokens, num_beams=args.beams,
                                       on_step=progress("caption", args.quiet))
    return texts


def sample(pipe, prompt: str, negative: str, seconds: float, craft: dict, args: argparse.Namespace):
    """One clip (or ``--variations`` clips), or with ``--minutes`` a long soundscape: ``(waveform, rate)``."""
    from .generate.extend import extend_soundscape
    from .generate.soundscape import generate_soundscape, max_seconds_of

    with as_flags(SAMPLING_FLAGS):
        if args.minutes:
            overlap = args.overlap
            if overlap is None:  # segments are the model's longest clip
                overlap = short_default(DEFAULT_OVERLAP, max_seconds_of(pipe))
            return extend_soundscape(pipe, prompt, negative_prompt=negative, minutes=args.minutes, **craft,
                                     overlap_seconds=overlap, steps=args.steps, cfg=args.cfg,
                                     seed=args.seed, on_step=progress("sampling", args.quiet))
        return generate_soundscape(pipe, prompt, negative_prompt=negative, seconds=seconds, **craft,
                                   steps=args.steps, cfg=args.cfg, seed=args.seed, variations=args.variations,
                                   on_step=progress("sampling", args.quiet))


def default_seconds(pipe, seconds: float | None) -> float:
    """``--seconds``, or by default 10 s (the model's maximum if shorter, to 10 ms)."""
    from .generate.soundscape import max_seconds_of

    return seconds if seconds is not None else min(10.0, int(max_seconds_of(pipe) * 100) / 100)
