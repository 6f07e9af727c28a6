"""One batch worker: loads the models once, then turns items into WAVs and result records with the same steps as
the one-shot CLI (:mod:`..headless`). Used in-process by ``--engine local`` and once per Ray worker by
``--engine ray``. No comfy import; torch and the model libraries are imported inside functions."""
from __future__ import annotations

import argparse
import contextlib
import glob
import io
import math
import os
import time

from ..headless import AUTO, OOM_ADVICE, captions, craft, default_seconds, model_handle, sample
from ..models import devices, folders, loading
from ..text.prompt import build_prompt
from .manifest import OVERRIDES, seed_for_id, wav_stem

WAV_DIR = "wav"  # inside --out
RESULT_FIELDS = ("id", "image", "wav", "caption", "prompt", "negative_prompt", "seed", "model", "steps", "cfg",
                 "seconds", "lufs", "true_peak_dbtp", "loop_points", "clap_score", "timings", "status", "error")


def _loop_value(value):
    if isinstance(value, bool) or str(value).strip().lower() in ("true", "yes", "auto", "false", "no", "off"):
        return AUTO if str(value).strip().lower() in ("true", "yes", "auto") else None
    return float(value)


CONVERT = {"seconds": float, "seed": int, "loudness": float, "loop": _loop_value}


def item_args(args: argparse.Namespace, item: dict) -> argparse.Namespace:
    """The command line's options with the item's overrides; the seed, when the item gives none, from its id."""
    a = argparse.Namespace(**vars(args))
    a.seed = seed_for_id(item["id"], args.seed)
    a.quiet = True  # no per-step bars under the batch's own progress bar
    for key in OVERRIDES:
        if item.get(key) is not None:
            try:
                setattr(a, key, CONVERT.get(key, str)(item[key]))
            except (TypeError, ValueError) as err:
                raise ValueError(f"column {key!r} is {item[key]!r}, which is not a valid {key} ({err})") from err
    return a


def remove_leftovers(out_dir: str, item_id: str) -> None:
    """Remove what an interrupted attempt at ``item_id`` may have left: a published WAV (and picture) whose result
    line was never written, and the hidden temporary of a WAV being written when the process was killed."""
    stem = os.path.join(out_dir, WAV_DIR, wav_stem(item_id))
    folder, name = os.path.split(stem)
    for path in glob.glob(glob.escape(stem) + "_*_.wav") + glob.glob(glob.escape(stem) + "_*_.png") + \
            glob.glob(os.path.join(glob.escape(folder), "." + glob.escape(name) + ".*")):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


class ItemRunner:
    """Models loaded once (``args.blip``, ``args.stable_audio``), then :meth:`process` per item."""

    def __init__(self, args: argparse.Namespace, out_dir: str, verbose: bool = False):
        from ..generate.soundscape import NODE

        loading.quiet_libraries()
        self.args, self.out_dir, self.verbose = args, out_dir, verbose
        self.plan = devices.standalone_plan()
        handle = model_handle(folders.STABLE_AUDIO, args.stable_audio, args.dtype, self.plan)
        self.stack = contextlib.ExitStack()
        self.pipe, stage = self.stack.enter_context(
            devices.stable_audio_session(handle, self.plan, args.memory, node=NODE, advice=OOM_ADVICE))
        self.options = {"stage": stage, "decode_chunk_frames": devices.decode_chunk_frames(self.plan, args.memory,
                                                                                            self.pipe)}
        self.model = os.path.basename(os.path.normpath(args.stable_audio))

    def close(self) -> None:
        self.stack.close()

    def process(self, item: dict) -> dict:
        """The result record of one item; a failure is recorded (``status: failed``, ``error``), never raised."""
        record = {key: None for key in RESULT_FIELDS}
        record.update({k: v for k, v in item.items() if k not in RESULT_FIELDS}, id=item["id"],
                      image=item.get("image"), status="failed")
        start = time.perf_counter()
        timings: dict[str, float] = {}
        try:
            if item.get("error"):
                raise ValueError(item["error"])
            out = io.StringIO()
            with contextlib.redirect_stdout(out):  # the craft steps' own prints
                self._run(item, record, timings)
            record["status"] = "done"
        except Exception as err:  # noqa: BLE001 - any failure of one item is recorded, the batch goes on
            record["error"] = str(err) if isinstance(err, (ValueError, OSError)) else f"{type(err).__name__}: {err}"
            remove_leftovers(self.out_dir, item["id"])
        timings["total_s"] = time.perf_counter() - start
        record["timings"] = {k: round(v, 3) for k, v in timings.items()}
        return record

    def _run(self, item: dict, record: dict, timings: dict) -> None:
        from ..generate.soundscape import resolve_defaults

        a = item_args(self.args, item)
        if not os.path.isfile(item["image"]):
            raise ValueError(f"image {item['image']!r} does not exist (or is not a file). Fix the manifest row.")
        if a.caption:  # BLIP would open it; with a caption, still refuse an unreadable image
            _check_image(item["image"])
        if not a.caption and not a.blip:
            raise ValueError("no caption: pass --blip to caption the images, or --caption, or a caption column.")
        t = time.perf_counter()
        caption = captions([item["image"]], a, self.plan)[0]
        timings["caption_s"] = time.perf_counter() - t
        prompt, negative = build_prompt(caption, a.preset, a.extra)
        seconds = default_seconds(self.pipe, a.seconds)
        steps, cfg = resolve_defaults(self.pipe, a.steps, a.cfg)
        record.update(caption=caption, prompt=prompt, negative_prompt=negative, seed=a.seed, model=self.model,
                      steps=steps, cfg=cfg)
        t = time.perf_counter()
        waveform, rate = sample(self.pipe, prompt, negative, seconds, self.options, a)
        timings["generate_s"] = time.perf_counter() - t
        t = time.perf_counter()
        waveform, loop = craft(waveform, rate, a)
        timings["craft_s"] = time.perf_counter() - t
        t = time.perf_counter()
        record.update(self._save(item["id"], waveform, rate, loop, a))
        timings["save_s"] = time.perf_counter() - t

    def _save(self, item_id: str, waveform, rate: int, loop: bool, a: argparse.Namespace) -> dict:
        """Each clip as ``wav/<stem>_<n>_.wav`` (atomic, as Save WAV writes) and its measurements."""
        from ..audio.loudness import integrated_loudness, true_peak_dbtp
        from ..audio.spectrogram import save_spectrogram_png
        from ..audio.wav import save_wav

        remove_leftovers(self.out_dir, item_id)  # a retry starts from a clean slate: the same file names
        saved = save_wav(waveform, rate, self.out_dir, f"{WAV_DIR}/{wav_stem(item_id)}", a.bit_depth,
                         loop_points=loop)
        if not a.no_spectrogram:
            for clip, file in zip(waveform, saved):
                save_spectrogram_png(clip, rate, file.path[:-4] + ".png", title=file.filename)
        frames = waveform.shape[-1]
        paths = [os.path.relpath(file.path, self.out_dir) for file in saved]
        found = {"wav": paths[0], "seconds": round(frames / rate, 6), "sample_rate": rate,
                 "lufs": _measured(integrated_loudness, waveform[0], rate),
                 "true_peak_dbtp": _measured(true_peak_dbtp, waveform[0], rate),
                 "loop_points": [0, frames - 1] if loop else None}
        if len(paths) > 1:
            found["wavs"] = paths
        return found


def _check_image(path: str) -> None:
    from PIL import Image

    with Image.open(path) as image:
        image.verify()


def _measured(measure, clip, rate: int):
    """``measure(clip, rate)`` to 1/1000, or None where it has no value (silence, a clip under 0.4 s)."""
    try:
        value = measure(clip, rate)
    except ValueError:
        return None
    return round(value, 3) if math.isfinite(value) else None


def run_local(items: list[dict], args: argparse.Namespace, out_dir: str, on_result, verbose: bool = False) -> None:
    """Process ``items`` one by one in this process; ``on_result(record)`` after each."""
    runner = ItemRunner(args, out_dir, verbose)
    try:
        for item in items:
            on_result(runner.process(item))
    finally:
        runner.close()
