"""ComfyUI nodes for sound craft: loops, fades, loudness, long soundscapes, layering, pictures of audio.

Each node works on ComfyUI's native AUDIO (``{"waveform": float32 [B, C, T], "sample_rate": int}``), so it also
takes audio from core Load Audio or any other pack. Stdlib-only at import, like the rest of the node layer.
"""
from __future__ import annotations

import logging

from ..audio.contract import LOOP_KEY, META_KEY, check_audio, make_audio
from ..checks import SEED_MAX
from ..generate.extend import METHODS as EXTEND_METHODS
from ..models import devices, folders
from ..text.prompt import DEFAULT_PRESET, PRESET_NAMES
from . import glue as comfy_glue

log = logging.getLogger(__name__)

CATEGORY = "audio/ambient"
AUDIO_IN = "Audio from any node that outputs AUDIO (Stable Audio Sampler, Load Audio, ...), mono or stereo, any rate."
AUDIO_OUT = ("The processed audio (same rate), as AUDIO for Save WAV or any core audio node.",)


LOOP_METHODS = ("auto", "crossfade", "inpaint")


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
        # new inputs go last, in "optional": saved workflows map their widget values by position
        return {"required": {
            "audio": ("AUDIO", {"tooltip": AUDIO_IN}),
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
            "model": ("STABLE_AUDIO_MODEL", {"tooltip": "Optional: a Stable Audio 3 model from Load Stable Audio "
                                                        "Model, for inpaint (Stable Audio Open cannot inpaint: auto "
                                                        "then cross-fades)."}),
            "prompt": ("STRING", {"forceInput": True, "tooltip": "inpaint: what the regenerated joint should sound "
                                                                 "like; connect the prompt the clip was made with "
                                                                 "(e.g. Build Ambient Prompt's prompt)."}),
            # ComfyUI's frontend gives every "seed" input a control_after_generate widget; say it, so saved
            # workflows and the API agree on the widget values (seed, then its control)
            "seed": ("INT", {"default": 0, "min": 0, "max": SEED_MAX, "control_after_generate": True,
                             "tooltip": "inpaint: same seed + same inputs = same joint; change it for another take. "
                                        "Clip b of a batch uses seed + b."}),
            "joint_seconds": ("FLOAT", {"default": 4.0, "min": 0.5, "max": 30.0, "step": 0.1,
                                        "tooltip": "inpaint: length of the regenerated joint around the old seam, "
                                                   "in seconds (rounded up to the model's 93 ms frames), plus a "
                                                   "0.5 s cross-fade at each edge. The clip must be longer than "
                                                   "the joint, both fades and one frame."}),
        }}

    def execute(self, audio, overlap_seconds, search_seconds, method="auto", model=None, prompt=None, seed=0,
                joint_seconds=4.0):
        from ..audio.loop import NODE, make_seamless_loop

        waveform, rate = check_audio(audio, NODE)
        if _loop_method(method, model, prompt) == "inpaint":
            return (_inpaint_loop(audio, waveform, rate, model, prompt, seed, joint_seconds),)
        looped, info = make_seamless_loop(waveform, rate, overlap_seconds, search_seconds)
        log.info("%s: %s", NODE, info)
        return (make_audio(looped, rate, loop=True, meta=audio.get(META_KEY)),)


def _loop_method(method, model, prompt) -> str:
    """Which method Make Seamless Loop runs ("crossfade" or "inpaint"), or a ValueError saying what is missing."""
    from ..generate.inpaint_loop import INPAINT_FIX, NODE
    from ..generate.inputs import require_sa3_handle
    from ..models.families import is_sa3

    if method not in LOOP_METHODS:
        raise ValueError(f'{NODE}: "method" is {method!r} but must be one of {", ".join(LOOP_METHODS)}. Pick one.')
    if method == "crossfade" or (method == "auto" and not is_sa3(model)):
        return "crossfade"
    if model is None:
        raise ValueError(f'{NODE}: "method" is inpaint but no "model" is connected. Connect Load Stable Audio Model '
                         f'(a Stable Audio 3 folder) to "model"{INPAINT_FIX}.')
    require_sa3_handle(NODE, model, INPAINT_FIX)
    if not isinstance(prompt, str) or not prompt.strip():
        given = "not connected" if prompt is None else f"{prompt!r}"
        raise ValueError(f'{NODE}: "method" is {method} with a Stable Audio 3 model, so the joint is regenerated, '
                         f'but "prompt" is {given}. Connect the prompt the clip was made with (e.g. Build Ambient '
                         f'Prompt\'s prompt) to "prompt"{INPAINT_FIX}.')
    return "inpaint"


def _inpaint_loop(audio, waveform, rate, model, prompt, seed, joint_seconds):
    from ..generate.inpaint_loop import NODE, inpaint_loop
    from ..generate.soundscape import resolve_defaults

    plan = comfy_glue.device_plan(folders.STABLE_AUDIO)
    with devices.stable_audio_session(model, plan, "balanced", node=NODE) as (pipe, stage):
        steps = resolve_defaults(pipe, 0, 0.0)[0]
        looped, info = inpaint_loop(pipe, waveform, rate, prompt, joint_seconds=joint_seconds, seed=seed,
                                    on_step=comfy_glue.progress(steps * waveform.shape[0]), stage=stage,
                                    decode_chunk_frames=devices.decode_chunk_frames(plan, "balanced", pipe))
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
            "audio": ("AUDIO", {"tooltip": AUDIO_IN}),
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
        faded = apply_fades(waveform, rate, fade_in_seconds, fade_out_seconds, curve)
        # a faded loop no longer loops seamlessly: drop its loop marker
        return (make_audio(faded, rate, loop=bool(audio.get(LOOP_KEY)) and not (fade_in_seconds or fade_out_seconds),
                     meta=audio.get(META_KEY)),)


class AmbientLoudness:
    CATEGORY = CATEGORY
    DESCRIPTION = ("Normalize integrated loudness (ITU-R BS.1770-4) to a platform target in LUFS, with a true-peak "
                   "ceiling measured on 4x oversampled audio.")
    RETURN_TYPES = ("AUDIO",)
    RETURN_NAMES = ("audio",)
    OUTPUT_TOOLTIPS = AUDIO_OUT
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls):
        from ..audio.loudness import PRESETS

        names = list(PRESETS)
        return {"required": {
            "audio": ("AUDIO", {"tooltip": AUDIO_IN + " At least 0.4 s long."}),
            "target": (names, {"default": names[0], "tooltip": "-23 LUFS: broadcast (EBU R128) and calm beds; "
                               "-16: podcasts and mobile apps; -14: streaming platforms; custom: custom_lufs."}),
            "custom_lufs": ("FLOAT", {"default": -23.0, "min": -70.0, "max": 0.0, "step": 0.5,
                                      "tooltip": "Target loudness in LUFS, used when target is custom."}),
            "ceiling_dbtp": ("FLOAT", {"default": -1.0, "min": -20.0, "max": 0.0, "step": 0.1,
                                       "tooltip": "Highest allowed true peak in dBTP (-1 is the usual delivery spec); "
                                                  "a limiter holds peaks under it."}),
        }}

    def execute(self, audio, target, custom_lufs, ceiling_dbtp):
        from ..audio.loudness import NODE, PRESETS, normalize_loudness

        if target not in PRESETS:
            raise ValueError(f'{NODE}: "target" is {target!r} but must be one of {", ".join(PRESETS)}. Pick one.')
        waveform, rate = check_audio(audio, NODE)
        if PRESETS[target] is None and not (isinstance(custom_lufs, (int, float)) and -70 <= custom_lufs <= 0):
            raise ValueError(f'{NODE}: "custom_lufs" is {custom_lufs} but must be from -70 to 0 LUFS. '
                             "Set e.g. -23, or pick a preset target.")
        lufs = PRESETS[target] if PRESETS[target] is not None else custom_lufs
        out, info = normalize_loudness(waveform, rate, lufs, ceiling_dbtp)
        log.info("%s: %s", NODE, info)
        return (make_audio(out, rate, loop=bool(audio.get(LOOP_KEY)), meta=audio.get(META_KEY)),)


class AmbientExtend:
    CATEGORY = CATEGORY
    DESCRIPTION = ("Make a soundscape of any length (minutes to an hour) with a Stable Audio model, one progress bar "
                   "for all segments. Stable Audio 3 continues each segment from the last seconds of the one before "
                   "(inpainting), so the texture carries on; Stable Audio Open joins independent segments with "
                   "equal-power cross-fades.")
    RETURN_TYPES = ("AUDIO",)
    RETURN_NAMES = ("audio",)
    OUTPUT_TOOLTIPS = ("The whole soundscape as one clip (21 MB of memory per stereo minute).",)
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("STABLE_AUDIO_MODEL", {"tooltip": "From Load Stable Audio Model."}),
            "prompt": ("STRING", {"default": "steady rain on a roof, distant thunder, soft wind, high quality field "
                                  "recording", "multiline": True,
                                  "tooltip": "What to hear, for every segment. Connect Build Ambient Prompt's "
                                             "prompt, or type one."}),
            "negative_prompt": ("STRING", {"default": "music, melody, vocals, speech, distortion, low quality",
                                           "multiline": True, "tooltip": "What to avoid (used when cfg > 1)."}),
            "minutes": ("FLOAT", {"default": 5.0, "min": 0.1, "max": 60.0, "step": 0.1,
                                  "tooltip": "Total length in minutes (up to 60). Time grows with length: about "
                                             "one segment's sampling per segment."}),
            "segment_seconds": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 380.0, "step": 0.5,
                                          "tooltip": "Length of each generated segment; 0 = the model's maximum "
                                                     "(Stable Audio Open 47.55 s, Stable Audio 3 Medium 380 s), the "
                                                     "fewest joints."}),
            "overlap_seconds": ("FLOAT", {"default": 3.0, "min": 0.1, "max": 60.0, "step": 0.1,
                                          "tooltip": "Cross-fade at each joint, in seconds (at most half a segment). "
                                                     "continue: the fade from the previous segment's tail into the "
                                                     "model's continuation of it (at most 10 s)."}),
            "steps": ("INT", {"default": 0, "min": 0, "max": 1000,
                              "tooltip": "Sampling steps per segment; 0 = the model's own (Stable Audio Open 100, "
                                         "Stable Audio 3 8)."}),
            "cfg": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 25.0, "step": 0.1,
                              "tooltip": "Prompt guidance; 0 = the model's own (Stable Audio Open 7, distilled "
                                         "Stable Audio 3 1 = off); 1 or less turns it off."}),
            "seed": ("INT", {"default": 0, "min": 0, "max": SEED_MAX, "control_after_generate": True,
                             "tooltip": "Segment k uses seed + k: the same seed gives the same soundscape."}),
            "tail_conditioning": ("BOOLEAN", {"default": False, "tooltip": "Start each segment from the previous "
                                              "segment's tail (diffusers' initial audio). With Stable Audio Open "
                                              "the effect is subtle: the sampler adds full-strength noise on top. "
                                              "Crossfade method only."}),
        }, "optional": {
            "method": (list(EXTEND_METHODS), {"default": "auto", "tooltip": "How segments join. auto: continue "
                                              "with Stable Audio 3, crossfade with Stable Audio Open. continue "
                                              "(Stable Audio 3): each segment is inpainted after the last 10 s of "
                                              "the one before, which the model hears, so the sound carries on. "
                                              "crossfade: independent segments, equal-power cross-fades."}),
        }}

    def execute(self, model, prompt, negative_prompt, minutes, segment_seconds, overlap_seconds, steps, cfg, seed,
                tail_conditioning, method="auto"):
        from ..generate.extend import NODE, extend_soundscape
        from ..generate.soundscape import resolve_defaults

        plan = comfy_glue.device_plan(folders.STABLE_AUDIO)
        with devices.stable_audio_session(model, plan, "balanced", node=NODE) as (pipe, stage):
            steps, cfg = resolve_defaults(pipe, steps, cfg)
            waveform, rate = extend_soundscape(pipe, prompt, negative_prompt=negative_prompt, minutes=minutes,
                                               segment_seconds=segment_seconds, overlap_seconds=overlap_seconds,
                                               steps=steps, cfg=cfg, seed=seed, tail_conditioning=tail_conditioning,
                                               on_step=comfy_glue.progress(steps), stage=stage, method=method,
                                               decode_chunk_frames=devices.decode_chunk_frames(plan, "balanced", pipe))
        return (make_audio(waveform, rate),)


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

        layers = []
        for k in (1, 2, 3, 4):
            audio = inputs.get(f"audio_{k}")
            if audio is None:
                continue
            waveform, rate = check_audio(audio, NODE)
            layers.append({"waveform": waveform, "sample_rate": rate, "gain_db": inputs.get(f"gain_db_{k}", 0.0),
                           "pan": inputs.get(f"pan_{k}", 0.0)})
        waveform, rate, info = mix_layers(layers, length=length, fit=fit)
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
            "audio": ("AUDIO", {"tooltip": AUDIO_IN}),
            "width": ("INT", {"default": 1024, "min": 128, "max": 4096, "step": 8, "tooltip": "Image width (px)."}),
            "height": ("INT", {"default": 512, "min": 128, "max": 4096, "step": 8,
                               "tooltip": "Image height (px): a fifth is the waveform, the rest the spectrogram."}),
        }}

    def execute(self, audio, width, height):
        import numpy as np
        import torch

        from ..audio.spectrogram import render_spectrogram

        waveform, rate = check_audio(audio, "Audio Spectrogram")
        images = [np.asarray(render_spectrogram(clip, rate, width=width, height=height), dtype=np.float32) / 255.0
                  for clip in waveform]
        return (torch.from_numpy(np.stack(images)),)


class AmbientLayeredPromptBuilder:
    CATEGORY = CATEGORY
    DESCRIPTION = ("From one caption, a background bed prompt and up to three distinct source prompts, to generate "
                   "separately and mix with Mix Audio Layers.")
    RETURN_TYPES = ("STRING", "STRING", "STRING", "STRING", "STRING")
    RETURN_NAMES = ("bed", "source_1", "source_2", "source_3", "negative_prompt")
    OUTPUT_TOOLTIPS = ("A steady background texture prompt (the bed).",
                       "The first distinct source (e.g. gulls); a faint bed variant when the scene has none.",
                       "The second distinct source; a faint bed variant when the scene has none.",
                       "The third distinct source; a faint bed variant when the scene has none.",
                       "The shared negative prompt.")
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "caption": ("STRING", {"forceInput": True, "tooltip": "A description of the scene, e.g. from Caption "
                                                                  "Image (BLIP)."}),
            "preset": (PRESET_NAMES, {"default": DEFAULT_PRESET, "tooltip": "The character of the bed."}),
            "extra": ("STRING", {"default": "", "multiline": True, "tooltip": "Optional sounds or words to add to the "
                                 "bed, e.g. 'light rain'."}),
            "sources": ("INT", {"default": 2, "min": 0, "max": 3, "tooltip": "How many distinct sources to propose "
                                "(0-3); unused outputs repeat a faint bed variant."}),
        }}

    def execute(self, caption, preset, extra, sources):
        from ..text.prompt import build_layered_prompts

        layered = build_layered_prompts(caption, preset, extra, max_sources=sources)
        faint = f"{layered.bed.split(',')[0]}, distant, faint, quiet background"
        picked = list(layered.sources) + [faint] * (3 - len(layered.sources))
        log.info("layered prompts: bed=%r sources=%r", layered.bed, layered.sources)
        return (layered.bed, picked[0], picked[1], picked[2], layered.negative)


NODE_CLASSES = {
    "AmbientSeamlessLoop": (AmbientSeamlessLoop, "Make Seamless Loop"),
    "AmbientFade": (AmbientFade, "Fade In / Out"),
    "AmbientLoudness": (AmbientLoudness, "Normalize Loudness"),
    "AmbientExtend": (AmbientExtend, "Extend Soundscape"),
    "AmbientMix": (AmbientMix, "Mix Audio Layers"),
    "AmbientSpectrogram": (AmbientSpectrogram, "Audio Spectrogram"),
    "AmbientLayeredPromptBuilder": (AmbientLayeredPromptBuilder, "Build Layered Ambient Prompts"),
}
