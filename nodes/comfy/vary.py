"""ComfyUI nodes for what only Stable Audio 3 does: Vary Audio (audio to audio).

Stdlib-only at import, like the rest of the node layer; the work is :func:`vary.vary_audio`.
"""
from __future__ import annotations

import logging

from ..audio.contract import check_audio, make_audio
from ..checks import SEED_MAX
from ..models import devices, folders
from . import glue as comfy_glue
from .core import CATEGORY

log = logging.getLogger(__name__)


class AmbientVaryAudio:
    CATEGORY = CATEGORY
    DESCRIPTION = ("Make new takes of a clip that keep its structure, steered by a prompt (Stable Audio 3 audio to "
                   "audio): a field recording, a clip from Load Audio or a soundscape made earlier.")
    RETURN_TYPES = ("AUDIO",)
    RETURN_NAMES = ("audio",)
    OUTPUT_TOOLTIPS = ("Stereo audio at the model's rate (44.1 kHz), as long as the input (at most the model's "
                       "maximum), one clip per variation of each input clip; connects to Save WAV and any core audio "
                       "node.",)
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("STABLE_AUDIO_MODEL", {"tooltip": "A Stable Audio 3 model from Load Stable Audio Model "
                                                        "(Stable Audio Open cannot take audio in)."}),
            "audio": ("AUDIO", {"tooltip": "The clip to vary, from Load Audio, Stable Audio Sampler or any AUDIO "
                                           "output: any rate (resampled to 44.1 kHz) and channels (mono is doubled). "
                                           "Longer than the model's maximum (Medium 380 s, Small 120 s): its first "
                                           "maximum seconds are used, with a warning in the log."}),
            "prompt": ("STRING", {"default": "gentle rain on leaves, distant birds, high quality field recording",
                                  "multiline": True,
                                  "tooltip": "What to hear in the new take; connect Build Ambient Prompt's prompt "
                                             "or type one. Describing the input's own sounds keeps it closest."}),
            "strength": ("FLOAT", {"default": 0.6, "min": 0.05, "max": 1.0, "step": 0.05,
                                   "tooltip": "How much may change: the noise level sampling starts from. 0.05-0.3 "
                                              "keeps the input's structure and timing, 0.5-0.7 keeps its rough "
                                              "shape, 1 ignores the input (plain text to audio)."}),
            "steps": ("INT", {"default": 0, "min": 0, "max": 1000, "step": 1,
                              "tooltip": "Sampling steps; 0 = the model's own (8 for distilled Stable Audio 3)."}),
            "seed": ("INT", {"default": 0, "min": 0, "max": SEED_MAX, "control_after_generate": True,
                             "tooltip": "Same seed + same inputs = same audio. Clip b of an input batch uses "
                                        "seed + b."}),
            "variations": ("INT", {"default": 1, "min": 1, "max": 16, "step": 1,
                                   "tooltip": "Takes per input clip, each from its own noise (a batch)."}),
        }}

    def execute(self, model, audio, prompt, strength, steps, seed, variations):
        from ..generate.inputs import check_sampling, require_sa3_handle
        from ..generate.soundscape import resolve_defaults
        from ..generate.vary import NODE, vary_audio

        waveform, rate = check_audio(audio, NODE)
        require_sa3_handle(NODE, model)
        check_sampling(NODE, steps=steps, seed=seed, variations=variations)
        plan = comfy_glue.device_plan(folders.STABLE_AUDIO)
        with devices.stable_audio_session(model, plan, "balanced", node=NODE) as (pipe, stage):
            total = resolve_defaults(pipe, steps, 0.0)[0] * waveform.shape[0]
            out, out_rate, info = vary_audio(pipe, waveform, rate, prompt, strength, steps=steps, seed=seed,
                                             variations=variations, on_step=comfy_glue.progress(total), stage=stage,
                                             decode_chunk_frames=devices.decode_chunk_frames(plan, "balanced", pipe))
        meta = {"prompt": prompt, "seed": seed, "steps": info["steps"], "strength": strength, "model": model.name,
                "seconds": info["seconds"], "source": "vary"}
        return (make_audio(out, out_rate, meta=meta),)


NODE_CLASSES = {
    "AmbientVaryAudio": (AmbientVaryAudio, "Vary Audio (Stable Audio 3)"),
}
