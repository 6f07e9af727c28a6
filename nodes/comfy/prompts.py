"""The prompt nodes: Build Ambient Prompt and Build Layered Ambient Prompts (pure text, no model)."""
from __future__ import annotations

import logging

from . import glue as comfy_glue
from .inputs import CATEGORY, caption_input, preset_input

log = logging.getLogger(__name__)


class AmbientPromptBuilder:
    CATEGORY = CATEGORY
    DESCRIPTION = ("Turn a caption of what is seen into a Stable Audio prompt of what is heard (sound sources, "
                   "textures, a style preset) and a negative prompt that keeps the ambience clean.")
    RETURN_TYPES = ("STRING", "STRING", "STRING")
    RETURN_NAMES = ("prompt", "negative_prompt", "explanation")
    OUTPUT_TOOLTIPS = ("What to hear; connect to the sampler's prompt.",
                       "What to avoid (music, speech, distortion... unless the scene wants them); connect to the "
                       "sampler's negative_prompt.",
                       "How the caption was read: setting, place, time, season, weather, each sound and why, what "
                       "was left out. Connect to Preview Any to read it, or to Save WAV's explanation to keep it "
                       "in the file.")
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "caption": caption_input(),
            "preset": preset_input("The character of the soundscape: natural field recording, calm meditation bed, "
                                   "cinematic atmosphere, game background loop or cozy interior."),
            "extra": ("STRING", {"default": "", "multiline": True, "tooltip": "Optional sounds or words to add, "
                                 "e.g. 'light rain, distant thunder'. Mentioning music allows music."}),
        }, "optional": {
            "scenes_path": ("STRING", {"default": "", "tooltip": "Optional: a .json (or .toml) scene table, or a "
                                       "folder of them, merged over the built-in places and rules (after the ones "
                                       "in ComfyUI/user/default/ambient_scenes/). Format: nodes/text/scenes.json. "
                                       "Empty: built-in and user folder only."}),
        }}

    def execute(self, caption, preset, extra, scenes_path=""):
        from ..text.prompt import build_prompt_explained
        from ..text.scenetable import load_scene_table

        table = load_scene_table([scenes_path], optional=comfy_glue.scene_table_dirs())
        prompt, negative, explanation = build_prompt_explained(caption, preset, extra, table)
        log.info("ambient prompt: %s | negative: %s", prompt, negative)
        return (prompt, negative, explanation)


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
            "caption": caption_input(),
            "preset": preset_input("The character of the bed."),
            "extra": ("STRING", {"default": "", "multiline": True, "tooltip": "Optional sounds or words to add to the "
                                 "bed, e.g. 'light rain'."}),
            "sources": ("INT", {"default": 2, "min": 0, "max": 3, "tooltip": "How many distinct sources to propose "
                                "(0-3); unused outputs repeat a faint bed variant."}),
        }}

    def execute(self, caption, preset, extra, sources):
        from ..text.prompt import build_layered_prompts, source_prompts
        from ..text.scenetable import load_scene_table

        table = load_scene_table(optional=comfy_glue.scene_table_dirs())
        layered = build_layered_prompts(caption, preset, extra, max_sources=sources, table=table)
        picked = source_prompts(layered, slots=3)
        log.info("layered prompts: bed=%r sources=%r", layered.bed, layered.sources)
        return (layered.bed, picked[0], picked[1], picked[2], layered.negative)
