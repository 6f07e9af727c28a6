"""Rank Takes (CLAP): pick the best of several takes.

Make several variations with Stable Audio Sampler (its ``variations`` input), then let CLAP score each against the
prompt (and the image caption) and keep the best, or all of them best first. The work is
:func:`generate.clap.rank_audio`; Load CLAP Model is in ``loaders.py``. Stdlib-only at import.
"""
from __future__ import annotations

from ..models import devices, folders
from . import glue as comfy_glue
from .inputs import CATEGORY, audio_input
from .session import model_errors


def require_clap_model(node: str, clap_model) -> None:
    """A ``ValueError`` naming ``node`` when ``clap_model`` is not Load CLAP Model's output."""
    if getattr(clap_model, "kind", None) != folders.CLAP:
        raise ValueError(f'{node}: "clap_model" is {type(clap_model).__name__}, not a CLAP model. Connect Load '
                         "CLAP Model's output.")


class AmbientRankTakes:
    CATEGORY = CATEGORY
    DESCRIPTION = ("Score every take of an audio batch with CLAP against the prompt (and the image caption) and keep "
                   "the best one, or all of them best first. Make the takes with the sampler's variations.")
    RETURN_TYPES = ("AUDIO", "STRING", "FLOAT")
    RETURN_NAMES = ("audio", "scores", "best_score")
    OUTPUT_TOOLTIPS = (
        "The best take (output = best) or every take reordered best first (output = all), same rate and channels; "
        "connect to Save WAV or any audio node.",
        "A table, one line per take best first: rank, take number (1 = the first clip of the batch), score and, "
        "with a caption, the prompt and caption similarities. Show it with a text display node.",
        "The best take's score: CLAP cosine similarity with the text, -1..1, higher = closer. Compare takes of one "
        "prompt: absolute values differ between CLAP models and prompts.",
    )
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls):
        from ..generate.clap import DEFAULT_CAPTION_WEIGHT, OUTPUT_MODES

        return {"required": {
            "audio": audio_input("The takes to compare: a batch of clips, e.g. Stable Audio Sampler with variations "
                                 "above 1 (a single clip is scored too); takes longer than 10 s are scored on all of "
                                 "their length."),
            "clap_model": ("CLAP_MODEL", {"tooltip": "From Load CLAP Model."}),
            "prompt": ("STRING", {"forceInput": True, "tooltip": "The text the takes should match: connect the same "
                                                                 "prompt the sampler got (Build Ambient Prompt's "
                                                                 "prompt)."}),
            "output": (list(OUTPUT_MODES), {"default": OUTPUT_MODES[0],
                                            "tooltip": "best: only the best take (one clip). all (best first): "
                                                       "every take, reordered from best to worst."}),
        }, "optional": {
            "caption": ("STRING", {"forceInput": True, "tooltip": "Optional: what the image shows (Caption Image "
                                                                  "(BLIP)'s caption); also scored, weighted by "
                                                                  "caption_weight. Not connected: the prompt alone."}),
            "caption_weight": ("FLOAT", {"default": DEFAULT_CAPTION_WEIGHT, "min": 0.0, "max": 1.0, "step": 0.05,
                                         "tooltip": "The caption's share of the score when a caption is connected, "
                                                    "0..1; the prompt gets the rest. 0.25: mostly the prompt."}),
        }}

    @classmethod
    def VALIDATE_INPUTS(cls, output=None, caption_weight=None):
        from ..generate.clap import NODE, check_caption_weight, check_output_mode

        try:
            if output is not None:
                check_output_mode(output, NODE)
            if caption_weight is not None:
                check_caption_weight(caption_weight, NODE)
        except ValueError as err:
            return str(err)
        return True

    def execute(self, audio, clap_model, prompt, output, caption=None, caption_weight=None):
        from ..generate.clap import NODE, prepare_ranking, rank_audio

        job = prepare_ranking(audio, prompt, output, caption, caption_weight, NODE)
        require_clap_model(NODE, clap_model)
        with model_errors(NODE, "scoring the takes", 'connect clips of at least a second to "audio"'), \
                devices.on_device(clap_model, comfy_glue.device_plan(folders.CLAP)) as (model, processor):
            return rank_audio(model, processor, job, on_step=comfy_glue.progress(job.takes))
