"""ComfyUI nodes for picking the best take: Load CLAP Model and Rank Takes (CLAP).

Make several variations with Stable Audio Sampler (its ``variations`` input), then let CLAP score each against the
prompt (and the image caption) and keep the best, or all of them best first. Stdlib-only at import, like the rest
of the node layer.
"""
from __future__ import annotations

import logging

from ..audio.contract import LOOP_KEY, META_KEY
from ..models import devices, folders, loading
from . import glue as comfy_glue
from .core import CATEGORY, DTYPE_TOOLTIP, _ModelLoader

log = logging.getLogger(__name__)


def _clap_roots() -> list[str]:
    return comfy_glue.model_roots(comfy_glue.CLAP_FOLDER)


class AmbientClapLoader(_ModelLoader):
    """The shared loader behaviour, over ComfyUI/models/clap (the base class looks in blip/ or diffusers/)."""

    KIND = folders.CLAP
    CATEGORY = CATEGORY
    DESCRIPTION = ("Load a CLAP audio-text model from ComfyUI/models/clap (local files only, safetensors), to score "
                   "how well audio matches a text.")
    RETURN_TYPES = ("CLAP_MODEL",)
    RETURN_NAMES = ("clap_model",)
    OUTPUT_TOOLTIPS = ("The loaded scorer; connect to Rank Takes (CLAP).",)
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": (folders.list_model_folders(folders.CLAP, _clap_roots()), {
                "tooltip": "A transformers CLAP folder in ComfyUI/models/clap, e.g. larger_clap_general (general "
                           "sounds, ambience) or clap-htsat-unfused (smaller). See the README for the `hf download` "
                           "command."}),
            "dtype": (list(folders.DTYPES), {"default": "auto", "tooltip": DTYPE_TOOLTIP}),
        }}

    @classmethod
    def VALIDATE_INPUTS(cls, model):
        try:
            folders.resolve_model_folder(cls.KIND, model, _clap_roots())
        except ValueError as err:
            return str(err)
        return True

    def execute(self, model, dtype):
        plan = comfy_glue.device_plan(self.KIND)
        handle = folders.make_handle(self.KIND, model, _clap_roots(), dtype, plan)
        loading.load(handle, plan)
        return (handle,)


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
            "audio": ("AUDIO", {"tooltip": "The takes to compare: a batch of clips, e.g. Stable Audio Sampler with "
                                           "variations above 1. A single clip is scored too. Any rate, mono or "
                                           "stereo; takes longer than 10 s are scored on all of their length."}),
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
        from ..generate.clap import check_caption_weight, check_output_mode

        try:
            if output is not None:
                check_output_mode(output)
            if caption_weight is not None:
                check_caption_weight(caption_weight)
        except ValueError as err:
            return str(err)
        return True

    def execute(self, audio, clap_model, prompt, output, caption=None, caption_weight=None):
        from ..audio.contract import check_audio, require_rate_and_finite
        from ..generate.clap import (
            DEFAULT_CAPTION_WEIGHT,
            NODE,
            check_output_mode,
            rank_takes,
            score_table,
            silent_takes,
            take_similarities,
            texts_and_weights,
            weighted_scores,
        )

        check_output_mode(output)
        weight = DEFAULT_CAPTION_WEIGHT if caption_weight is None else caption_weight
        texts, weights, labels = texts_and_weights(prompt, caption, weight)
        waveform, rate = check_audio(audio, NODE)
        rate = require_rate_and_finite(waveform, rate, NODE, "CLAP cannot score them")
        if getattr(clap_model, "kind", None) != folders.CLAP:
            raise ValueError(f'{NODE}: "clap_model" is {type(clap_model).__name__}, not a CLAP model. Connect Load '
                             "CLAP Model's output.")
        plan = comfy_glue.device_plan(folders.CLAP)
        with devices.on_device(clap_model, plan) as (model, processor):
            sims = take_similarities(model, processor, waveform, rate, texts,
                                     on_step=comfy_glue.progress(waveform.shape[0]))
        scores = weighted_scores(sims, weights)
        order = rank_takes(scores)
        table = score_table(order, scores, sims, labels, weights, silent_takes(waveform))
        log.info("%s:\n%s", NODE, table)
        return (_reordered(audio, waveform, rate, order, scores, best_only=output == "best"), table,
                float(scores[order[0]]))


def _reordered(audio: dict, waveform, rate: int, order: list[int], scores, best_only: bool) -> dict:
    """The AUDIO output: the best take, or all takes best first. The loop marker (one flag for the whole batch)
    stays; the generation summary (one dict for the batch: prompt, seed, ...) gains which take(s) these are, so a
    saved file says which variation it was (``take``: 1 = the first clip of the input batch)."""
    picked = order[:1] if best_only else order
    out = {"waveform": waveform[picked], "sample_rate": rate}
    if audio.get(LOOP_KEY):
        out[LOOP_KEY] = True
    meta = dict(audio.get(META_KEY) or {})
    if best_only:
        meta.update(take=picked[0] + 1, takes=len(order), clap_score=round(float(scores[picked[0]]), 4))
    else:
        meta.update(take_order=[i + 1 for i in picked], clap_scores=[round(float(scores[i]), 4) for i in picked])
    out[META_KEY] = meta
    return out


NODE_CLASSES = {
    "AmbientClapLoader": (AmbientClapLoader, "Load CLAP Model"),
    "AmbientRankTakes": (AmbientRankTakes, "Rank Takes (CLAP)"),
}
