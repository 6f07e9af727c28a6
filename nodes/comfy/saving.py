"""Save WAV: audio into ComfyUI's output folder, never overwriting, with a player on the node."""
from __future__ import annotations

from ..audio.contract import LOOP_KEY, META_KEY, check_audio
from . import glue as comfy_glue
from .inputs import CATEGORY, audio_input


def _with_explanation(ambient: dict | None, explanation: str | None) -> dict | None:
    """The audio's generation summary plus Build Ambient Prompt's explanation, when one is connected."""
    if not isinstance(explanation, str) or not explanation.strip():
        return ambient
    return {**(ambient if isinstance(ambient, dict) else {}), "explanation": explanation.strip()}


class AmbientSaveWav:
    CATEGORY = CATEGORY
    DESCRIPTION = ("Save audio as WAV files in ComfyUI's output folder (never overwriting) and play it on the node. "
                   "The files carry the workflow: drop one on the canvas to get the graph back.")
    RETURN_TYPES = ()
    OUTPUT_NODE = True
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls):
        from ..audio.wav import BIT_DEPTHS, DEFAULT_PREFIX, LOOP_POINTS

        return {"required": {
            "audio": audio_input("Each clip of a batch is one file."),
            "filename_prefix": ("STRING", {"default": DEFAULT_PREFIX,
                                           "tooltip": "File name start inside the output folder; 'sub/name' makes a "
                                                      "subfolder; %date:yyyy-MM-dd% (also hh, mm, ss) and %year%, "
                                                      "%month%, %day% are filled in. A counter is added: "
                                                      "name_00001_.wav, name_00002_.wav..."}),
            "bit_depth": (list(BIT_DEPTHS), {"default": "16", "tooltip": "16: CD quality, smallest files. 24: more "
                                             "headroom for editing. 32-float: exact, keeps peaks above full scale."}),
            "loop_points": (list(LOOP_POINTS), {"default": "auto", "tooltip": "Write loop points (a standard smpl "
                                                "chunk: start 0, end = last sample) that game engines and samplers "
                                                "read. auto: only for audio from Make Seamless Loop."}),
            "metadata": ("BOOLEAN", {"default": True, "tooltip": "On: embed the workflow, prompt, negative prompt, "
                                     "seed, steps, cfg and model in the file (a standard LIST/INFO chunk; drop the "
                                     "WAV on the canvas to restore the graph). Off, for privacy: nothing but the "
                                     "audio (and the loop points) goes into the file. ComfyUI's --disable-metadata "
                                     "turns it off too."}),
        }, "optional": {
            "audioUI": ("AUDIO_UI", {"tooltip": "Player for the saved audio (shown after a run)."}),
            "explanation": ("STRING", {"forceInput": True, "tooltip": "Optional: Build Ambient Prompt's explanation "
                                       "(how the caption was read), kept in the file's metadata when metadata is "
                                       "on."}),
        }, "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}}

    def execute(self, audio, filename_prefix, bit_depth, loop_points="auto", metadata=True, audioUI=None,
                explanation=None, prompt=None, extra_pnginfo=None):
        from ..audio.wav import NODE, generation_metadata, save_wav

        waveform, rate = check_audio(audio, NODE)
        loop = loop_points == "always" or (loop_points == "auto" and bool(audio.get(LOOP_KEY)))
        meta = None
        if metadata and not comfy_glue.metadata_disabled():
            meta = generation_metadata(prompt, extra_pnginfo, _with_explanation(audio.get(META_KEY), explanation))
        saved = save_wav(waveform, rate, comfy_glue.output_directory(), filename_prefix, bit_depth, loop, meta)
        return {"ui": {"audio": [{"filename": s.filename, "subfolder": s.subfolder, "type": "output"} for s in saved]}}
