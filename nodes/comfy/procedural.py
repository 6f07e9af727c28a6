"""The procedural nodes: Procedural Ambience (one layer) and Procedural Scene from Prompt (layers chosen from a
caption or prompt). No model: numpy/scipy DSP in ``audio/procedural.py``, any length, on any CPU.

Stdlib-only at import, like the rest of the node layer.
"""
from __future__ import annotations

import logging

from ..audio.contract import make_audio
from . import glue as comfy_glue
from .inputs import CATEGORY, seed_input

log = logging.getLogger(__name__)

SCENE = "Procedural Scene from Prompt"
PROCEDURAL_OUT = ("Stereo audio at 44.1 kHz (a seamless loop when loop is on: Save WAV writes loop points); connects "
                  "to Make Seamless Loop, Normalize Loudness, Mix Audio Layers, Save WAV or any core audio node.")


def _shared_inputs() -> dict:
    """seconds, seed, intensity, brightness, stereo_width, loop: the inputs both nodes take, in this order."""
    return {
        "seconds": ("FLOAT", {"default": 60.0, "min": 0.5, "max": 14400.0, "step": 0.5,
                              "tooltip": "Length in seconds (up to 4 h; the output is held in memory, 21 MB "
                                         "a stereo minute). For a long bed, a loop of a few minutes also works."}),
        "seed": seed_input("Which rain drops, gusts, waves... Same seed + same inputs = same audio."),
        "intensity": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01,
                                "tooltip": "Level: 1 = each layer at -23 LUFS (EBU R128); 0.5 = -6 dB. Normalize "
                                           "Loudness sets an exact target afterwards."}),
        "brightness": ("FLOAT", {"default": 0.85, "min": 0.0, "max": 1.0, "step": 0.01,
                                 "tooltip": "Distance/darkness: 1 = full band, close; lower = a low-pass (0.75: "
                                            "6.7 kHz, 0.5: 2.2 kHz, 0: 250 Hz), as far away or behind a window. "
                                            "Darker is also quieter."}),
        "stereo_width": ("FLOAT", {"default": 0.8, "min": 0.0, "max": 1.0, "step": 0.01,
                                   "tooltip": "0 = mono, 1 = fully decorrelated channels (widest); 0.6-0.9 suits "
                                              "headphones and speakers."}),
        "loop": ("BOOLEAN", {"default": False, "tooltip": "On: make a seamless loop by construction (a 3 s tail "
                             "cross-faded into the start; same length) and mark it for Save WAV's loop points. Off "
                             "for Make Seamless Loop or Fade In / Out afterwards."}),
    }


def procedural_audio(blocks, seconds: float, meta: dict, loop: bool) -> dict:
    """A block stream gathered into ComfyUI AUDIO ``[1, 2, T]`` at 44.1 kHz, with a progress bar (and a Cancel
    point) per block."""
    import torch

    from ..audio.procedural import SAMPLE_RATE, block_count, render

    total = round(seconds * SAMPLE_RATE)
    waveform = render(blocks, total, comfy_glue.progress(block_count(total)))
    return make_audio(torch.from_numpy(waveform)[None], SAMPLE_RATE, loop=loop, meta=meta)


class AmbientProceduralBed:
    CATEGORY = CATEGORY
    DESCRIPTION = ("Make an ambience bed without a model (noise colours, rain, wind, surf, a stream, a fire, room "
                   "tone, traffic, thunder, crickets): any length, on any CPU, the same for the same seed.")
    RETURN_TYPES = ("AUDIO",)
    RETURN_NAMES = ("audio",)
    OUTPUT_TOOLTIPS = (PROCEDURAL_OUT,)
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls):
        from ..audio.procedural import LAYER_NAMES, LAYERS

        kinds = "; ".join(f"{name}: {LAYERS[name][2]}" for name in LAYER_NAMES)
        return {"required": {
            "layer": (list(LAYER_NAMES), {"default": "rain (steady)", "tooltip": f"The sound. {kinds}."}),
            **_shared_inputs(),
        }, "optional": {
            "temperature_c": ("FLOAT", {"default": 22.0, "min": 10.0, "max": 40.0, "step": 0.5,
                                        "tooltip": "crickets only: air temperature in degrees C; they chirp faster "
                                                   "when warm (Dolbear's law: 22 C = 2.1 chirps/s)."}),
        }}

    def execute(self, layer, seconds, seed, intensity, brightness, stereo_width, loop, temperature_c=22.0):
        from ..audio.procedural import stream_layer

        blocks = stream_layer(layer, seconds, seed, intensity=intensity, brightness=brightness, width=stereo_width,
                              loop=loop, temperature_c=temperature_c)
        meta = {"model": "procedural", "prompt": layer, "seed": seed}
        return (procedural_audio(blocks, seconds, meta, loop),)


class AmbientProceduralScene:
    CATEGORY = CATEGORY
    DESCRIPTION = ("Read a caption or prompt and play the procedural layers it names, mixed at sensible levels "
                   "(beach: surf + wind; rainy street at night: rain + traffic; forest at night: wind + crickets; "
                   "office: room tone). No model; the plan is shown as text.")
    RETURN_TYPES = ("AUDIO", "STRING")
    RETURN_NAMES = ("audio", "plan")
    OUTPUT_TOOLTIPS = (PROCEDURAL_OUT, "The layers chosen and their levels in dB, e.g. for Preview Any.")
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "prompt": ("STRING", {"default": "a quiet beach at dusk, waves and a light breeze", "multiline": True,
                                  "tooltip": "A scene in words: type one or connect a caption (Caption Image) or "
                                             "a prompt (Build Ambient Prompt). Words such as beach, rain, street, "
                                             "forest, night, river, fire, office pick the layers."}),
            **_shared_inputs(),
        }}

    def execute(self, prompt, seconds, seed, intensity, brightness, stereo_width, loop):
        from ..audio.procedural import check_options, stream_mix
        from ..audio.procedural_scene import describe_plan, scene_plan

        check_options(SCENE, "pink", seconds, seed, intensity, brightness, stereo_width)
        plan = scene_plan(prompt)
        blocks = stream_mix(plan, seconds, seed, intensity=intensity, brightness=brightness, width=stereo_width,
                            loop=loop)
        text = describe_plan(prompt, plan)
        log.info("%s: %s", SCENE, text)
        return (procedural_audio(blocks, seconds, {"model": "procedural", "prompt": text, "seed": seed}, loop), text)
