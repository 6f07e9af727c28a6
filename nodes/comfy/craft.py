"""The sound-craft nodes: Make Seamless Loop, Fade In / Out, Normalize Loudness, Mix Audio Layers, Audio
Spectrogram.

Each node works on ComfyUI's native AUDIO (``{"waveform": float32 [B, C, T], "sample_rate": int}``), so it also
takes audio from core Load Audio or any other pack. Stdlib-only at import, like the rest of the node layer.
"""
from __future__ import annotations

import logging

from ..audio.contract import LOOP_KEY, META_KEY, check_audio, make_audio
from ..checks import is_number
from . import glue as comfy_glue
from .inputs import AUDIO_OUT, CATEGORY, audio_input, seed_input, stable_audio_model_input
from .session import stable_audio_run

log = logging.getLogger(__name__)

SPECTROGRAM = "Audio Spectrogram"  # its display name (the DSP in audio/spectrogram.py names no node)



class AmbientSeamlessLoop:
    CATEGORY = CATEGORY
    DESCRIPTION = ("Make a clip loop without a click or a level dip, so it can repeat forever in a game, app or "
                   "sampler: cross-fade its tail into its head (equal-power), or, with a Stable Audio 3 model "
                   "connected, let the model regenerate the joint (inpainting) and keep the full length.")
    RETURN_TYPES = ("AUDIO",)
    RETURN_NAMES = ("audio",)
    OUTPUT_TOOLTIPS = ("The loop; Save WAV marks it with loop points (smpl chunk). crossfade: same rate, shorter than "
                       "the input by the overlap. inpaint: same length, at the model's rate (44.1 kHz).",)
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls):
        from ..generate.inpaint_loop import LOOP_METHODS

        # new inputs go last, in "optional": saved workflows map their widget values by position
        return {"required": {
            "audio": audio_input(),
            "overlap_seconds": ("FLOAT", {"default": 2.0, "min": 0.01, "max": 30.0, "step": 0.01,
                                          "tooltip": "crossfade: length of the cross-fade, in seconds (at most half "
                                                     "the clip). 1-3 s suits ambience; longer hides more, shortens "
                                                     "more. Not used by inpaint."}),
            "search_seconds": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 10.0, "step": 0.1,
                                         "tooltip": "crossfade: look this far back from the end for a quiet moment "
                                                    "and cut the loop there (0 = cut at the very end). Not used by "
                                                    "inpaint."}),
        }, "optional": {
            "method": (list(LOOP_METHODS), {"default": "auto", "tooltip": "auto: inpaint when a Stable Audio 3 "
                       "model is connected, else crossfade. crossfade: the tail is cross-faded into the head (no "
                       "model, instant, shorter output). inpaint: the clip is rotated by half its length so its wrap "
                       "is the source's own continuous middle, and the model regenerates joint_seconds around the "
                       "old end-to-start seam while hearing the audio around it (up to 60 s); same length out, one "
                       "sampling run per clip."}),
            "model": stable_audio_model_input("Optional: a Stable Audio 3 model from Load Stable Audio Model, for "
                                              "inpaint (Stable Audio Open cannot inpaint: auto then cross-fades)."),
            "prompt": ("STRING", {"forceInput": True, "tooltip": "inpaint: what the regenerated joint should sound "
                                                                 "like; connect the prompt the clip was made with "
                                                                 "(e.g. Build Ambient Prompt's prompt)."}),
            "seed": seed_input("inpaint only. Clip b of a batch uses seed + b."),
            "joint_seconds": ("FLOAT", {"default": 4.0, "min": 0.5, "max": 30.0, "step": 0.1,
                                        "tooltip": "inpaint: length of the regenerated joint around the old seam, "
                                                   "in seconds (rounded up to the model's 93 ms frames), plus a "
                                                   "0.5 s cross-fade at each edge. The clip must be longer than "
                                                   "the joint, both fades and one frame."}),
        }}

    def execute(self, audio, overlap_seconds, search_seconds, method="auto", model=None, prompt=None, seed=0,
                joint_seconds=4.0):
        from ..audio.loop import NODE, make_seamless_loop
        from ..generate.inpaint_loop import choose_loop_method

        waveform, rate = check_audio(audio, NODE)
        if choose_loop_method(method, model, prompt, NODE) == "inpaint":
            return (inpainted_loop_audio(audio, waveform, rate, model, prompt, seed, joint_seconds),)
        looped, info = make_seamless_loop(waveform, rate, overlap_seconds, search_seconds,
                                          cancel=comfy_glue.cancel_check())
        log.info("%s: %s", NODE, info)
        return (make_audio(looped, rate, loop=True, meta=audio.get(META_KEY)),)


def inpainted_loop_audio(audio, waveform, rate, model, prompt, seed, joint_seconds) -> dict:
    """Make Seamless Loop's inpaint method: the loop as AUDIO at the model's rate, its generation summary
    extended with how the joint was made."""
    from ..generate.inpaint_loop import NODE, inpaint_loop

    advice = 'Lower "joint_seconds" or connect a shorter "audio"'
    with stable_audio_run(NODE, model, advice, clips=waveform.shape[0], doing="inpainting the loop's joint",
                          fix='set "method" to crossfade (no model), or set "joint_seconds" to 4') as run:
        looped, info = inpaint_loop(run.pipe, waveform, rate, prompt, joint_seconds=joint_seconds, seed=seed,
                                    **run.options)
    log.info("%s: %s", NODE, info)
    meta = {**(audio.get(META_KEY) or {}), "loop_method": "inpaint", "loop_prompt": prompt, "loop_seed": seed,
            "loop_model": model.name}
    return make_audio(looped, info["sample_rate"], loop=True, meta=meta)


class AmbientFade:
    CATEGORY = CATEGORY
    DESCRIPTION = "Fade the start in and the end out (linear, equal-power or exponential curve)."
    RETURN_TYPES = ("AUDIO",)
    RETURN_NAMES = ("audio",)
    OUTPUT_TOOLTIPS = AUDIO_OUT
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls):
        from ..audio.fades import CURVES

        return {"required": {
            "audio": audio_input(),
            "fade_in_seconds": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 600.0, "step": 0.1,
                                          "tooltip": "Fade-in length in seconds (0 = none)."}),
            "fade_out_seconds": ("FLOAT", {"default": 3.0, "min": 0.0, "max": 600.0, "step": 0.1,
                                           "tooltip": "Fade-out length in seconds (0 = none)."}),
            "curve": (list(CURVES), {"default": "equal-power", "tooltip": "Shape: linear; equal-power (smooth, "
                                     "the usual choice); exponential (even in decibels, sounds most natural for "
                                     "long fades)."}),
        }}

    def execute(self, audio, fade_in_seconds, fade_out_seconds, curve):
        from ..audio.fades import NODE, apply_fades

        waveform, rate = check_audio(audio, NODE)
        faded = apply_fades(waveform, rate, fade_in_seconds, fade_out_seconds, curve, cancel=comfy_glue.cancel_check())
        # a faded loop no longer loops seamlessly: drop its loop marker
        return (make_audio(faded, rate, loop=bool(audio.get(LOOP_KEY)) and not (fade_in_seconds or fade_out_seconds),
                     meta=audio.get(META_KEY)),)


class AmbientLoudness:
    CATEGORY = CATEGORY
    DESCRIPTION = ("Normalize integrated loudness (ITU-R BS.1770-4) to a platform target in LUFS, with a true-peak "
                   "ceiling held by a limiter (peaks read 4x, near the ceiling 8x oversampled). DC is removed first "
                   "(mean, then a 10 Hz high-pass; logged, a warning when large); a clip that is only DC comes out "
                   "silent.")
    RETURN_TYPES = ("AUDIO",)
    RETURN_NAMES = ("audio",)
    OUTPUT_TOOLTIPS = AUDIO_OUT
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls):
        from ..audio.loudness import PRESETS

        names = list(PRESETS)
        return {"required": {
            "audio": audio_input("At least 0.4 s long."),
            "target": (names, {"default": names[0], "tooltip": "-23 LUFS: broadcast (EBU R128) and calm beds; "
                               "-16: podcasts and mobile apps; -14: streaming platforms; custom: custom_lufs."}),
            "custom_lufs": ("FLOAT", {"default": -23.0, "min": -70.0, "max": 0.0, "step": 0.5,
                                      "tooltip": "Target loudness in LUFS, used when target is custom."}),
            "ceiling_dbtp": ("FLOAT", {"default": -1.0, "min": -20.0, "max": 0.0, "step": 0.1,
                                       "tooltip": "Highest allowed true peak in dBTP (-1 is the usual delivery spec); "
                                                  "a limiter holds peaks under it."}),
        }}

    def execute(self, audio, target, custom_lufs, ceiling_dbtp):
        from ..audio.loudness import NODE, normalize_loudness

        check_target(NODE, target)
        waveform, rate = check_audio(audio, NODE)
        out, info = normalize_loudness(waveform, rate, target_lufs(NODE, target, custom_lufs), ceiling_dbtp,
                                       cancel=comfy_glue.cancel_check())
        log.info("%s: %s", NODE, info)
        return (make_audio(out, rate, loop=bool(audio.get(LOOP_KEY)), meta=audio.get(META_KEY)),)


def check_target(node: str, target) -> None:
    """A ``ValueError`` naming ``node`` when ``target`` is not one of Normalize Loudness' presets."""
    from ..audio.loudness import PRESETS

    if target not in PRESETS:
        raise ValueError(f'{node}: "target" is {target!r} but must be one of {", ".join(PRESETS)}. Pick one.')


def target_lufs(node: str, target: str, custom_lufs) -> float:
    """The loudness to reach: the preset's, or ``custom_lufs`` when ``target`` is custom; a ``ValueError`` naming
    ``node`` and "custom_lufs" (the node's input, not the plain function's ``target_lufs``) when it is not a
    number from -70 to 0."""
    from ..audio.loudness import PRESETS

    if PRESETS[target] is not None:
        return PRESETS[target]
    if not is_number(custom_lufs) or not -70 <= custom_lufs <= 0:
        raise ValueError(f'{node}: "custom_lufs" is {custom_lufs} but must be a number from -70 to 0 LUFS. '
                         "Pick a preset or a custom value in that range.")
    return float(custom_lufs)


def mix_layers_of(node: str, inputs: dict) -> list[dict]:
    """Mix Audio Layers' connected layers (``audio_k``, ``gain_db_k``, ``pan_k``) as :func:`mix_layers` takes them,
    each AUDIO checked (a message names ``node``)."""
    layers = []
    for k in (1, 2, 3, 4):
        audio = inputs.get(f"audio_{k}")
        if audio is None:
            continue
        waveform, rate = check_audio(audio, node)
        layers.append({"waveform": waveform, "sample_rate": rate, "gain_db": inputs.get(f"gain_db_{k}", 0.0),
                       "pan": inputs.get(f"pan_{k}", 0.0)})
    return layers


def _mix_inputs():
    spec = {}
    for k in (1, 2, 3, 4):
        spec[f"audio_{k}"] = ("AUDIO", {"tooltip": f"Layer {k}: " + ("the bed (background)." if k == 1 else
                                                                     "a source to lay over the bed.")
                                        + (" Optional." if k > 2 else "")})
        spec[f"gain_db_{k}"] = ("FLOAT", {"default": 0.0 if k == 1 else -6.0, "min": -60.0, "max": 12.0,
                                          "step": 0.5, "tooltip": f"Level of layer {k} in dB (0 = unchanged, "
                                                                  "-6 = half the amplitude)."})
        spec[f"pan_{k}"] = ("FLOAT", {"default": 0.0, "min": -1.0, "max": 1.0, "step": 0.05,
                                      "tooltip": f"Stereo position of layer {k}: -1 left, 0 centre, +1 right "
                                                 "(equal-power pan law: centre is -3 dB per side for mono)."})
    return spec


class AmbientMix:
    CATEGORY = CATEGORY
    DESCRIPTION = ("Mix 2-4 audio layers (a bed and sources) with gain and stereo pan; rates and lengths are "
                   "matched, and the result never clips (headroom scaling).")
    RETURN_TYPES = ("AUDIO",)
    RETURN_NAMES = ("audio",)
    OUTPUT_TOOLTIPS = ("The stereo mix at the highest input rate.",)
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls):
        from ..audio.mix import FITS, LENGTHS

        spec = _mix_inputs()
        required = {k: v for k, v in spec.items() if k[-1] in "12"}
        required["fit"] = (list(FITS), {"default": "loop", "tooltip": "Shorter layers: loop them (cross-faded "
                                        "wraps) or pad them with silence."})
        required["length"] = (list(LENGTHS), {"default": "first", "tooltip": "Output length: the first layer's "
                                              "(the bed) or the longest layer's."})
        return {"required": required, "optional": {k: v for k, v in spec.items() if k[-1] in "34"}}

    def execute(self, fit, length, **inputs):
        from ..audio.mix import NODE, mix_layers

        waveform, rate, info = mix_layers(mix_layers_of(NODE, inputs), length=length, fit=fit)
        log.info("%s: %s", NODE, info)
        return (make_audio(waveform, rate),)


class AmbientSpectrogram:
    CATEGORY = CATEGORY
    DESCRIPTION = "Picture audio: waveform over a log-frequency spectrogram, one image per clip."
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("image",)
    OUTPUT_TOOLTIPS = ("One image per clip; connect Preview Image or Save Image.",)
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "audio": audio_input(),
            "width": ("INT", {"default": 1024, "min": 128, "max": 4096, "step": 8, "tooltip": "Image width (px)."}),
            "height": ("INT", {"default": 512, "min": 128, "max": 4096, "step": 8,
                               "tooltip": "Image height (px): a fifth is the waveform, the rest the spectrogram."}),
        }}

    def execute(self, audio, width, height):
        waveform, rate = check_audio(audio, SPECTROGRAM)
        return (spectrogram_images(waveform, rate, width, height),)


def spectrogram_images(waveform, sample_rate: int, width: int, height: int):
    """One picture per clip of ``waveform`` ``[B, C, T]``, as ComfyUI's IMAGE: float32 ``[B, height, width, 3]``
    in 0..1."""
    import numpy as np
    import torch

    from ..audio.spectrogram import render_spectrogram

    images = [np.asarray(render_spectrogram(clip, sample_rate, width=width, height=height), dtype=np.float32) / 255.0
              for clip in waveform]
    return torch.from_numpy(np.stack(images))
