"""The loader nodes: Load BLIP Caption Model, Load Stable Audio Model, Load CLAP Model.

Each returns a light handle (folder, dtype, family), not the weights: the cache lives in ``models/loading.py``, so
one loaded model feeds many nodes. Stdlib-only at import.
"""
from __future__ import annotations

from ..models import folders, loading
from . import glue as comfy_glue
from .inputs import CATEGORY, dtype_input


class ModelLoader:
    """What every loader node shares: list the folders of its ComfyUI folder type, check the chosen one when
    queued, load it (cached) when run. A subclass sets ``KIND`` (the model kind in ``models/loading.py``) and
    ``FOLDER`` (the ComfyUI folder type it searches)."""

    KIND = ""
    FOLDER = ""
    CATEGORY = CATEGORY
    FUNCTION = "execute"

    @classmethod
    def roots(cls) -> list[str]:
        return comfy_glue.model_roots(cls.FOLDER)

    @classmethod
    def model_input(cls, tooltip: str) -> tuple:
        """The ``model`` input: the folder names found now (INPUT_TYPES runs on every page load: nothing loads)."""
        return (folders.list_model_folders(cls.KIND, cls.roots()), {"tooltip": tooltip})

    @classmethod
    def VALIDATE_INPUTS(cls, model):
        try:
            folders.resolve_model_folder(cls.KIND, model, cls.roots())
        except ValueError as err:
            return str(err)
        return True

    def execute(self, model, dtype):
        plan = comfy_glue.device_plan(self.KIND)
        handle = folders.make_handle(self.KIND, model, self.roots(), dtype, plan)
        loading.load(handle, plan)
        return (handle,)


class AmbientBlipLoader(ModelLoader):
    KIND = folders.BLIP
    FOLDER = comfy_glue.BLIP_FOLDER
    DESCRIPTION = "Load a BLIP image-captioning model from ComfyUI/models/blip (local files only, safetensors)."
    RETURN_TYPES = ("BLIP_MODEL",)
    RETURN_NAMES = ("blip_model",)
    OUTPUT_TOOLTIPS = ("The loaded captioner; connect to Caption Image (BLIP).",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": cls.model_input("A transformers BLIP captioning folder in ComfyUI/models/blip, e.g. "
                                     "blip-image-captioning-large (better) or -base (faster). See the README for the "
                                     "`hf download` command."),
            "dtype": dtype_input(),
        }}


class AmbientStableAudioLoader(ModelLoader):
    KIND = folders.STABLE_AUDIO
    FOLDER = comfy_glue.DIFFUSERS_FOLDER
    DESCRIPTION = ("Load a Stable Audio model (a diffusers pipeline folder: Stable Audio Open 1.0, or Stable Audio 3 "
                   "Medium converted with `python -m nodes.cli convert-sa3`) from ComfyUI/models/diffusers (local "
                   "files only, safetensors).")
    RETURN_TYPES = ("STABLE_AUDIO_MODEL",)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("The loaded model; connect to Stable Audio Sampler.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": cls.model_input("A diffusers Stable Audio folder (with model_index.json) in "
                                     "ComfyUI/models/diffusers: stable-audio-open-1.0 (up to 47.55 s, 100 steps, cfg "
                                     "7), or a converted Stable Audio 3 folder: Small (SFX or Music, up to 120 s, "
                                     "runs on a CPU) or Medium (up to 380 s); 8 steps, no cfg; needs diffusers "
                                     "0.42+. The README shows how to download or convert them."),
            "dtype": dtype_input(),
        }}


class AmbientClapLoader(ModelLoader):
    KIND = folders.CLAP
    FOLDER = comfy_glue.CLAP_FOLDER
    DESCRIPTION = ("Load a CLAP audio-text model from ComfyUI/models/clap (local files only, safetensors), to score "
                   "how well audio matches a text.")
    RETURN_TYPES = ("CLAP_MODEL",)
    RETURN_NAMES = ("clap_model",)
    OUTPUT_TOOLTIPS = ("The loaded scorer; connect to Rank Takes (CLAP).",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": cls.model_input("A transformers CLAP folder in ComfyUI/models/clap, e.g. larger_clap_general "
                                     "(general sounds, ambience) or clap-htsat-unfused (smaller). See the README for "
                                     "the `hf download` command."),
            "dtype": dtype_input(),
        }}
