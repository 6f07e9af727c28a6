"""The pack's public API: node ids, display names, categories, inputs (names and order), tooltips everywhere.

Node ids and input names are stored in users' saved workflows: a change here breaks them. Change this list only
on purpose, and say so in the change log.
"""
import inspect

import pytest

from conftest import pack

API = {
    "AmbientBlipLoader": ("Load BLIP Caption Model", ["model", "dtype"], ["BLIP_MODEL"]),
    "AmbientBlipCaption": ("Caption Image (BLIP)", ["image", "blip_model", "prefix", "max_tokens", "beams"],
                           ["STRING"]),
    "AmbientPromptBuilder": ("Build Ambient Prompt", ["caption", "preset", "extra", "scenes_path"],
                             ["STRING", "STRING", "STRING"]),  # scenes_path, explanation: 0.4.0
    "AmbientStableAudioLoader": ("Load Stable Audio Model", ["model", "dtype"], ["STABLE_AUDIO_MODEL"]),
    "AmbientStableAudioSampler": ("Stable Audio Sampler", ["model", "prompt", "negative_prompt", "seconds", "steps",
                                                           "cfg", "seed", "variations", "memory", "compile"], ["AUDIO"]),
    "AmbientSaveWav": ("Save WAV", ["audio", "filename_prefix", "bit_depth", "loop_points", "metadata", "audioUI",
                                    "explanation"], []),  # metadata: 0.3.0; explanation: 0.4.0
    # sound craft (0.2.0)
    "AmbientSeamlessLoop": ("Make Seamless Loop", ["audio", "overlap_seconds", "search_seconds", "method", "model",
                                                   "prompt", "seed", "joint_seconds"], ["AUDIO"]),  # method...joint_seconds: 0.3.0
    "AmbientFade": ("Fade In / Out", ["audio", "fade_in_seconds", "fade_out_seconds", "curve"], ["AUDIO"]),
    "AmbientLoudness": ("Normalize Loudness", ["audio", "target", "custom_lufs", "ceiling_dbtp"], ["AUDIO"]),
    "AmbientExtend": ("Extend Soundscape", ["model", "prompt", "negative_prompt", "minutes", "segment_seconds",
                                            "overlap_seconds", "steps", "cfg", "seed", "tail_conditioning",
                                            "method"], ["AUDIO"]),  # method: 0.3.0 (optional, appended)
    "AmbientMix": ("Mix Audio Layers", ["audio_1", "gain_db_1", "pan_1", "audio_2", "gain_db_2", "pan_2", "fit",
                                        "length", "audio_3", "gain_db_3", "pan_3", "audio_4", "gain_db_4", "pan_4"],
                   ["AUDIO"]),
    "AmbientSpectrogram": ("Audio Spectrogram", ["audio", "width", "height"], ["IMAGE"]),
    "AmbientLayeredPromptBuilder": ("Build Layered Ambient Prompts", ["caption", "preset", "extra", "sources"],
                                    ["STRING"] * 5),
    # the best take
    "AmbientClapLoader": ("Load CLAP Model", ["model", "dtype"], ["CLAP_MODEL"]),
    "AmbientRankTakes": ("Rank Takes (CLAP)", ["audio", "clap_model", "prompt", "output", "caption",
                                               "caption_weight"], ["AUDIO", "STRING", "FLOAT"]),
    # Stable Audio 3 only
    "AmbientVaryAudio": ("Vary Audio (Stable Audio 3)", ["model", "audio", "prompt", "strength", "steps", "seed",
                                                         "variations"], ["AUDIO"]),
    # 0.4.0: the shipped workflows' picture loader (its bundled example runs on a fresh ComfyUI)
    "AmbientLoadImage": ("Load Image (or Example)", ["image"], ["IMAGE"]),
    # the optional LLM rewrite (0.4.0)
    "AmbientLlmLoader": ("Load Prompt LLM", ["model", "dtype"], ["AMBIENT_LLM"]),
    "AmbientPromptRewriter": ("Rewrite Ambient Prompt (LLM)", ["llm", "caption", "prompt", "max_new_tokens"],
                              ["STRING", "STRING"]),
    # procedural engine, no model (0.4.0)
    "AmbientProceduralBed": ("Procedural Ambience", ["layer", "seconds", "seed", "intensity", "brightness",
                                                     "stereo_width", "loop", "temperature_c"], ["AUDIO"]),
    "AmbientProceduralScene": ("Procedural Scene from Prompt", ["prompt", "seconds", "seed", "intensity",
                                                                "brightness", "stereo_width", "loop"],
                               ["AUDIO", "STRING"]),
    # spatial audio (0.4.0): AmbiX first-order ambisonics
    "AmbientSpatialScene": ("Spatial Scene from Image", ["image", "blip_model", "layout", "regions"],
                            ["STRING", "FLOAT", "STRING", "STRING", "FLOAT"]),
    "AmbientSpatialEncode": ("Spatial Encode (AmbiX)", ["audio", "azimuth", "elevation", "width", "distance",
                                                        "stereo_spread", "diffuse"], ["AUDIO"]),
    "AmbientSpatialMix": ("Mix in Space (AmbiX)", ["audio_1", "gain_db_1", "audio_2", "gain_db_2", "yaw"]
                          + [f"{name}_{k}" for k in range(3, 9) for name in ("audio", "gain_db")], ["AUDIO"]),
    "AmbientBinaural": ("Binaural from Ambisonics", ["audio", "yaw", "output", "hrtf"], ["AUDIO"]),  # hrtf: optional, appended
}


def _inputs(cls):
    spec = cls.INPUT_TYPES()
    return {**spec.get("required", {}), **spec.get("optional", {})}


def test_node_ids_names_inputs_outputs_are_stable():
    assert list(pack.NODE_CLASS_MAPPINGS) == list(API)
    for node_id, (display, inputs, outputs) in API.items():
        cls = pack.NODE_CLASS_MAPPINGS[node_id]
        assert pack.NODE_DISPLAY_NAME_MAPPINGS[node_id] == display
        assert list(_inputs(cls)) == inputs, node_id
        assert list(cls.RETURN_TYPES) == outputs, node_id
        assert cls.CATEGORY == "audio/ambient" and cls.FUNCTION == "execute"


@pytest.mark.parametrize("node_id", list(API))
def test_the_function_takes_the_inputs_comfyui_passes(node_id):
    """ComfyUI calls FUNCTION with every required and hidden input by name, and an optional one only when it is
    connected or set: both calls must bind, so no input is renamed on one side only and no parameter lacks a
    value."""
    cls = pack.NODE_CLASS_MAPPINGS[node_id]
    spec = cls.INPUT_TYPES()
    always = [*spec.get("required", {}), *spec.get("hidden", {})]
    signature = inspect.signature(getattr(cls, cls.FUNCTION))
    signature.bind(cls(), **dict.fromkeys(always))
    signature.bind(cls(), **dict.fromkeys([*always, *spec.get("optional", {})]))


@pytest.mark.parametrize("node_id", list(API))
def test_every_input_and_output_has_a_tooltip_and_the_node_a_description(node_id):
    cls = pack.NODE_CLASS_MAPPINGS[node_id]
    assert len(cls.DESCRIPTION) > 20
    for name, spec in _inputs(cls).items():
        assert len(spec) == 2 and len(spec[1].get("tooltip", "")) > 10, f"{node_id}.{name} has no tooltip"
    if cls.RETURN_TYPES:
        assert len(cls.OUTPUT_TOOLTIPS) == len(cls.RETURN_TYPES)
        assert all(len(t) > 10 for t in cls.OUTPUT_TOOLTIPS)


def test_sampler_defaults_follow_the_model():
    req = pack.NODE_CLASS_MAPPINGS["AmbientStableAudioSampler"].INPUT_TYPES()["required"]
    # 0 = the model's own (Open 1.0: 100 steps, cfg 7; distilled Stable Audio 3: 8 steps, no guidance)
    assert req["steps"][1]["default"] == 0 and req["cfg"][1]["default"] == 0.0
    assert "100 for Stable Audio Open" in req["steps"][1]["tooltip"] and "8 for" in req["steps"][1]["tooltip"]
    assert "7 for Stable Audio Open" in req["cfg"][1]["tooltip"]
    assert req["seed"][1]["max"] == 2**64 - 1 and req["seed"][1]["control_after_generate"] is True


def test_output_node_previews_audio():
    cls = pack.NODE_CLASS_MAPPINGS["AmbientSaveWav"]
    assert cls.OUTPUT_NODE is True
    assert cls.INPUT_TYPES()["optional"]["audioUI"][0] == "AUDIO_UI"
