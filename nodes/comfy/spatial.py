"""The spatial nodes: Spatial Encode (AmbiX), Mix in Space (AmbiX), Binaural from Ambisonics, Spatial Scene from
Image.

AmbiX = 4-channel first-order ambisonics, ACN order W, Y, Z, X, SN3D (see audio/spatial.py); azimuths in degrees,
0 = front, +90 = left. Stdlib-only at import.
"""
from __future__ import annotations

import logging

from ..audio.contract import AMBISONICS_META, AMBIX_FORMAT, LOOP_KEY, META_KEY, check_audio, make_audio
from ..audio.hrtf import BUILTIN
from ..models import devices, folders
from . import glue as comfy_glue
from .inputs import CATEGORY, audio_input

log = logging.getLogger(__name__)

AMBIX_IN = f"4-channel AmbiX ({AMBIX_FORMAT}): from Spatial Encode (AmbiX), Mix in Space (AmbiX) or an AmbiX file."
AMBIX_OUT = (f"4-channel first-order ambisonics, AmbiX ({AMBIX_FORMAT}), same rate; Save WAV writes it as an "
             "ambisonic WAV; Binaural from Ambisonics lets you hear it on headphones.",)
MIX_LAYERS = 8


def ambix_meta(audio: dict) -> dict:
    """The generation summary of ``audio`` plus the AmbiX format (Save WAV writes it into the file's comment)."""
    return {**(audio.get(META_KEY) or {}), AMBISONICS_META: AMBIX_FORMAT}


def _degrees(default: float, low: float, high: float, tooltip: str) -> tuple:
    return ("FLOAT", {"default": default, "min": low, "max": high, "step": 1.0, "tooltip": tooltip})


class AmbientSpatialEncode:
    CATEGORY = CATEGORY
    DESCRIPTION = ("Place a mono or stereo sound in space around the listener: first-order ambisonics (AmbiX), "
                   "with direction, width, distance, or as a diffuse bed all around.")
    RETURN_TYPES = ("AUDIO",)
    RETURN_NAMES = ("audio",)
    OUTPUT_TOOLTIPS = AMBIX_OUT
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "audio": audio_input("Mono or stereo."),
            "azimuth": _degrees(0.0, -180.0, 180.0, "Direction around the listener in degrees (AmbiX): 0 front, "
                                "90 left, -90 right, 180 behind. Connect Spatial Scene from Image's azimuths."),
            "elevation": _degrees(0.0, -90.0, 90.0, "Height in degrees: 0 on the horizon, 90 straight up, -90 down."),
            "width": _degrees(0.0, 0.0, 360.0, "Spread over a horizontal arc, degrees: 0 a point, 90 a wide "
                              "source (a beach, a road), 360 all around (no direction left)."),
            "distance": ("FLOAT", {"default": 1.0, "min": 1.0, "max": 1000.0, "step": 0.5, "tooltip": "Metres: "
                                   "level falls as 1/r from 1 m (10 m = -20 dB), and air dulls the highs (100 m: "
                                   "-7.5 dB at 8 kHz on top)."}),
            "stereo_spread": _degrees(60.0, 0.0, 360.0, "Stereo input only: its left channel sits at azimuth + "
                                      "spread/2, its right at azimuth - spread/2 (degrees)."),
            "diffuse": ("BOOLEAN", {"default": False, "tooltip": "On: a bed all around, no direction (each channel "
                                    "decorrelated into W, Y, Z, X); azimuth, elevation, width and spread are unused. "
                                    "Use it for the background bed."}),
        }}

    def execute(self, audio, azimuth, elevation, width, distance, stereo_spread, diffuse):
        from ..audio.spatial import ENCODE, encode

        waveform, rate = check_audio(audio, ENCODE)
        out = encode(waveform, rate, azimuth, elevation, width, distance, stereo_spread, diffuse)
        return (make_audio(out, rate, meta=ambix_meta(audio)),)


def spatial_layers(inputs: dict) -> list[tuple]:
    """Mix in Space's connected layers as :func:`mix_ambix` takes them, ``(waveform, sample_rate, gain_db)``: every
    clip of each ``audio_k`` list (ComfyUI passes lists: INPUT_IS_LIST) with that layer's gain."""
    from ..audio.spatial import MIX

    layers = []
    for k in range(1, MIX_LAYERS + 1):
        gains = inputs.get(f"gain_db_{k}") or [0.0]
        for j, audio in enumerate(inputs.get(f"audio_{k}") or []):
            waveform, rate = check_audio(audio, MIX, f'"audio_{k}"')
            layers.append((waveform, rate, gains[min(j, len(gains) - 1)]))
    return layers


def _mix_inputs(first: int, last: int) -> dict:
    spec = {}
    for k in range(first, last + 1):
        role = "the bed (its length is the mix's length)" if k == 1 else "a source"
        spec[f"audio_{k}"] = ("AUDIO", {"tooltip": f"Layer {k}: {role}. {AMBIX_IN} A list (e.g. one clip per "
                                        "region of Spatial Scene from Image) mixes every clip of it."})
        spec[f"gain_db_{k}"] = ("FLOAT", {"default": 0.0 if k == 1 else -3.0, "min": -60.0, "max": 24.0,
                                          "step": 0.5, "tooltip": f"Level of layer {k} in dB (0 = unchanged)."})
    return spec


class AmbientSpatialMix:
    CATEGORY = CATEGORY
    DESCRIPTION = ("Mix 2-8 AmbiX layers (a diffuse bed and placed sources) into one ambisonic scene, and turn the "
                   "whole scene (yaw).")
    RETURN_TYPES = ("AUDIO",)
    RETURN_NAMES = ("audio",)
    OUTPUT_TOOLTIPS = ("The AmbiX scene at the highest input rate, as long as layer 1; it never clips (one gain "
                       "on all channels keeps 1 dB headroom, so directions stay).",)
    INPUT_IS_LIST = True
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls):
        required = _mix_inputs(1, 2)
        required["yaw"] = _degrees(0.0, -180.0, 180.0, "Turn the whole scene, degrees: positive turns it to the "
                                   "left (a source at 0 ends at +yaw), e.g. to put the picture's centre elsewhere.")
        return {"required": required, "optional": _mix_inputs(3, MIX_LAYERS)}

    def execute(self, yaw, **inputs):
        from ..audio.spatial import mix_ambix

        layers = spatial_layers(inputs)
        waveform, rate = mix_ambix(layers, yaw[0])
        meta = ambix_meta(inputs["audio_1"][0] if inputs.get("audio_1") else {})
        return (make_audio(waveform, rate, meta=meta),)


class AmbientBinaural:
    CATEGORY = CATEGORY
    DESCRIPTION = ("Hear an AmbiX scene: binaural for headphones through a built-in spherical-head model (no "
                   "download) or your own SOFA HRTF file from models/hrtf, or plain stereo for speakers.")
    RETURN_TYPES = ("AUDIO",)
    RETURN_NAMES = ("audio",)
    OUTPUT_TOOLTIPS = ("Stereo (left, right) at the same rate: binaural for headphones or stereo for speakers; "
                       "connect Save WAV, Normalize Loudness or any core audio node.",)
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls):
        from ..audio.spatial import OUTPUTS

        return {"required": {
            "audio": ("AUDIO", {"tooltip": f"Audio from any node that outputs AUDIO, with 4 channels: {AMBIX_IN}"}),
            "yaw": _degrees(0.0, -180.0, 180.0, "Where the listener's head points, degrees: 0 the scene's front, "
                            "90 turned left (front sounds then come from the right)."),
            "output": (list(OUTPUTS), {"default": OUTPUTS[0], "tooltip": "binaural: headphones (per direction, "
                       "interaural time difference up to 0.66 ms and head shadow, Woodworth / Brown-Duda head "
                       "model). stereo speakers: two virtual cardioid microphones at +-45 deg."}),
        }, "optional": {
            "hrtf": ([BUILTIN, *comfy_glue.hrtf_files()], {"default": BUILTIN, "tooltip": "binaural only: the head "
                     "to hear through. built-in (spherical head): no download. Or a SOFA HRTF file (.sofa, "
                     "SimpleFreeFieldHRIR) you put in ComfyUI/models/hrtf/ (press R after adding one): the scene is "
                     "decoded to 10 virtual speakers at the file's nearest measured directions, each convolved with "
                     "its measured ear pair. Needs `pip install sofar`."}),
        }}

    def execute(self, audio, yaw, output, hrtf=BUILTIN):
        from ..audio.spatial import BINAURAL, decode

        waveform, rate = check_audio(audio, BINAURAL)
        meta = {k: v for k, v in (audio.get(META_KEY) or {}).items() if k != AMBISONICS_META} | {"decoded": output}
        if output == "binaural" and hrtf != BUILTIN:
            decoded, meta["hrtf"] = _decode_with_hrtf(waveform, rate, yaw, hrtf), hrtf
        else:
            decoded = decode(waveform, rate, yaw, output)
        return (make_audio(decoded, rate, loop=bool(audio.get(LOOP_KEY)), meta=meta),)


def _decode_with_hrtf(waveform, rate: int, yaw: float, hrtf: str):
    """Binaural through the SOFA file ``hrtf`` of ComfyUI/models/hrtf (a clear error when it is not there)."""
    from ..audio.hrtf import decode_binaural_hrtf, read_sofa
    from ..audio.spatial import BINAURAL

    path = comfy_glue.hrtf_path(hrtf)
    if path is None:
        raise ValueError(f'{BINAURAL}: "hrtf" is {hrtf!r} but no such file is in ComfyUI/models/hrtf. Put the '
                         f".sofa file there and press R, or pick {BUILTIN!r}.")
    return decode_binaural_hrtf(waveform, rate, read_sofa(path), yaw)


class AmbientSpatialScene:
    CATEGORY = CATEGORY
    DESCRIPTION = ("Plan a spatial soundscape from a picture or a 360 deg panorama: caption each region with BLIP "
                   "and give each distinct sound a prompt and a direction, plus a diffuse bed for the whole.")
    RETURN_TYPES = ("STRING", "FLOAT", "STRING", "STRING", "FLOAT")
    RETURN_NAMES = ("prompts", "azimuths", "plan", "bed", "widths")
    OUTPUT_IS_LIST = (True, True, False, False, True)
    OUTPUT_TOOLTIPS = ("One source prompt per direction (a list: the sampler runs once per prompt), each sound "
                       "once even when seen in several regions.",
                       "Each prompt's azimuth in degrees (AmbiX: 0 front, +90 left), a list in the same order: "
                       "connect to Spatial Encode (AmbiX)'s azimuth.",
                       "A readable table: bed, each source with azimuth, width and regions, each region's caption.",
                       "The whole picture's background bed prompt: generate it and encode it with diffuse on.",
                       "Each prompt's width in degrees (the arc of the regions it was seen in; 360 = all around), "
                       "a list in the same order: connect to Spatial Encode (AmbiX)'s width.")
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls):
        from ..generate.spatial_scene import LAYOUTS

        return {"required": {
            "image": ("IMAGE", {"tooltip": "The picture (the first of a batch): an equirectangular 360 deg panorama "
                                           "(2:1) or an ordinary wide photo."}),
            "blip_model": ("BLIP_MODEL", {"tooltip": "From Load BLIP Caption Model."}),
            "layout": (list(LAYOUTS), {"default": LAYOUTS[0], "tooltip": "panorama 360: sectors all around, the "
                       "image centre in front, its left and right edges behind. wide picture: left to right "
                       "across +-60 deg in front."}),
            "regions": ("INT", {"default": 4, "min": 3, "max": 8, "step": 1, "tooltip": "How many regions to "
                                "caption (3-8): more gives finer directions and takes one BLIP caption each."}),
        }}

    def execute(self, image, blip_model, layout, regions):
        from ..generate.caption import caption_images, check_images
        from ..generate.spatial_scene import caption_scene, check_layout

        check_images(image)
        check_layout(layout, regions)
        with devices.on_device(blip_model, comfy_glue.device_plan(folders.BLIP)) as (model, processor):
            plan = caption_scene(lambda batch, on_step: caption_images(model, processor, batch, on_step=on_step),
                                 image[0], layout, regions, on_step=comfy_glue.progress(regions + 1))
        return (list(plan.prompts), list(plan.azimuths), plan.table, plan.bed, list(plan.widths))
