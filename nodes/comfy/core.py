"""Every ComfyUI-facing class: each ``execute`` checks, calls one plain function, wraps the output.

Stdlib-only at import: the plain modules import torch/transformers/diffusers/soundfile/PIL inside their functions.
"""
from __future__ import annotations

import logging

from ..audio.contract import LOOP_KEY, META_KEY
from ..audio.wav import BIT_DEPTHS, DEFAULT_PREFIX, LOOP_POINTS
from ..checks import SEED_MAX
from ..models import devices, folders, loading
from ..text.prompt import DEFAULT_PRESET, PRESET_NAMES, build_prompt
from . import glue as comfy_glue

log = logging.getLogger(__name__)

CATEGORY = "audio/ambient"
COMPILE_HELP = ("Compile the transformer with CUDA graphs (torch.compile; NVIDIA GPUs; implies memory=fast). "
                "Measured on an H200, fp16: 47 s in 1.5 s instead of 3.5-4 s, 10 s in 0.7 s instead of 3.5-4 s. "
                "Cost: the first run of each clip-length bucket compiles for 28-38 s, and 7-11 s in later ComfyUI "
                "starts (kernels cached on disk in ComfyUI's user folder). Off: no wait. Stable Audio Open only: "
                "Stable Audio 3 runs 8 steps, where compiling each new length would cost more than it saves, so it "
                "is ignored there.")
DTYPE_TOOLTIP = ("Weight precision. auto: ComfyUI's choice for the device (fp16 on most GPUs, fp32 on the CPU); "
                 "fp32 is the most exact and uses twice the memory of fp16/bf16.")


def _roots(kind: str) -> list[str]:
    return comfy_glue.model_roots(comfy_glue.BLIP_FOLDER if kind == folders.BLIP else comfy_glue.DIFFUSERS_FOLDER)


def _folder_choices(kind: str) -> list[str]:
    return folders.list_model_folders(kind, _roots(kind))


class _ModelLoader:
    """Shared behaviour of the two loader nodes: check the folder when queued, load (cached) when run."""

    KIND = ""

    @classmethod
    def VALIDATE_INPUTS(cls, model):
        try:
            folders.resolve_model_folder(cls.KIND, model, _roots(cls.KIND))
        except ValueError as err:
            return str(err)
        return True

    def execute(self, model, dtype):
        plan = comfy_glue.device_plan(self.KIND)
        handle = folders.make_handle(self.KIND, model, _roots(self.KIND), dtype, plan)
        loading.load(handle, plan)
        return (handle,)


class AmbientBlipLoader(_ModelLoader):
    KIND = folders.BLIP
    CATEGORY = CATEGORY
    DESCRIPTION = "Load a BLIP image-captioning model from ComfyUI/models/blip (local files only, safetensors)."
    RETURN_TYPES = ("BLIP_MODEL",)
    RETURN_NAMES = ("blip_model",)
    OUTPUT_TOOLTIPS = ("The loaded captioner; connect to Caption Image (BLIP).",)
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": (_folder_choices(folders.BLIP), {
                "tooltip": "A transformers BLIP captioning folder in ComfyUI/models/blip, e.g. "
                           "blip-image-captioning-large (better) or -base (faster). See the README for the "
                           "`hf download` command."}),
            "dtype": (list(folders.DTYPES), {"default": "auto", "tooltip": DTYPE_TOOLTIP}),
        }}



class AmbientBlipCaption:
    CATEGORY = CATEGORY
    DESCRIPTION = ("Describe each image of a batch in words with BLIP. A batch of N images gives N captions, and "
                   "the nodes after it run once per caption.")
    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("caption",)
    OUTPUT_IS_LIST = (True,)
    OUTPUT_TOOLTIPS = ("One caption per image (a list); connect to Build Ambient Prompt.",)
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "image": ("IMAGE", {"tooltip": "The picture(s) to hear: from Load Image or any image-generation node. "
                                           "Every image of the batch gets its own caption."}),
            "blip_model": ("BLIP_MODEL", {"tooltip": "From Load BLIP Caption Model."}),
            "prefix": ("STRING", {"default": "", "tooltip": "Optional start of the caption that steers BLIP "
                                  "(conditional captioning), e.g. 'a photography of'. Empty: BLIP decides alone."}),
            "max_tokens": ("INT", {"default": 30, "min": 5, "max": 100, "step": 1,
                                   "tooltip": "Longest caption in tokens (about words). 20-40 describes a scene."}),
            "beams": ("INT", {"default": 3, "min": 1, "max": 10, "step": 1,
                              "tooltip": "Beam-search width: 1 is fastest (greedy); 3-5 gives steadier captions."}),
        }}

    def execute(self, image, blip_model, prefix, max_tokens, beams):
        from ..generate.caption import caption_images, check_images

        check_images(image)
        plan = comfy_glue.device_plan(folders.BLIP)
        with devices.on_device(blip_model, plan) as (model, processor):
            captions = caption_images(model, processor, image, prefix=prefix, max_new_tokens=max_tokens,
                                      num_beams=beams, on_step=comfy_glue.progress(image.shape[0] * max_tokens))
        return (captions,)


class AmbientPromptBuilder:
    CATEGORY = CATEGORY
    DESCRIPTION = ("Turn a caption of what is seen into a Stable Audio prompt of what is heard (sound sources, "
                   "textures, a style preset) and a negative prompt that keeps the ambience clean.")
    RETURN_TYPES = ("STRING", "STRING")
    RETURN_NAMES = ("prompt", "negative_prompt")
    OUTPUT_TOOLTIPS = ("What to hear; connect to the sampler's prompt.",
                       "What to avoid (music, speech, distortion... unless the scene wants them); connect to the "
                       "sampler's negative_prompt.")
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "caption": ("STRING", {"forceInput": True, "tooltip": "A description of the scene, e.g. from Caption "
                                                                  "Image (BLIP)."}),
            "preset": (PRESET_NAMES, {"default": DEFAULT_PRESET, "tooltip": "The character of the soundscape: "
                                      "natural field recording, calm meditation bed, cinematic atmosphere, game "
                                      "background loop or cozy interior."}),
            "extra": ("STRING", {"default": "", "multiline": True, "tooltip": "Optional sounds or words to add, "
                                 "e.g. 'light rain, distant thunder'. Mentioning music allows music."}),
        }}

    def execute(self, caption, preset, extra):
        prompt, negative = build_prompt(caption, preset, extra)
        log.info("ambient prompt: %s | negative: %s", prompt, negative)
        return (prompt, negative)


class AmbientStableAudioLoader(_ModelLoader):
    KIND = folders.STABLE_AUDIO
    CATEGORY = CATEGORY
    DESCRIPTION = ("Load a Stable Audio model (a diffusers pipeline folder: Stable Audio Open 1.0, or Stable Audio 3 "
                   "Medium converted with `python -m nodes.cli convert-sa3`) from ComfyUI/models/diffusers (local "
                   "files only, safetensors).")
    RETURN_TYPES = ("STABLE_AUDIO_MODEL",)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("The loaded model; connect to Stable Audio Sampler.",)
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": (_folder_choices(folders.STABLE_AUDIO), {
                "tooltip": "A diffusers Stable Audio folder (with model_index.json) in ComfyUI/models/diffusers: "
                           "stable-audio-open-1.0 (up to 47.55 s, 100 steps, cfg 7) or a Stable Audio 3 Medium "
                           "folder (up to 380 s, 8 steps, no cfg; needs diffusers 0.42+). The README shows how to "
                           "download or convert them."}),
            "dtype": (list(folders.DTYPES), {"default": "auto", "tooltip": DTYPE_TOOLTIP}),
        }}



class AmbientStableAudioSampler:
    CATEGORY = CATEGORY
    DESCRIPTION = "Generate an ambient soundscape from a text prompt with a Stable Audio model."
    RETURN_TYPES = ("AUDIO",)
    RETURN_NAMES = ("audio",)
    OUTPUT_TOOLTIPS = ("Stereo audio at the model's sample rate (44.1 kHz for Stable Audio Open and 3), one clip "
                       "per variation; connects to Save WAV and any core audio node.",)
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("STABLE_AUDIO_MODEL", {"tooltip": "From Load Stable Audio Model."}),
            "prompt": ("STRING", {"default": "gentle waves breaking on a sandy beach, distant seagulls, sea breeze, "
                                  "high quality field recording", "multiline": True,
                                  "tooltip": "What to hear: sound sources and textures. Connect Build Ambient "
                                             "Prompt's prompt, or type one. Longer than the text encoder takes "
                                             "(Open 1.0: 128 tokens, Stable Audio 3: 256) is shortened on a word "
                                             "boundary."}),
            "negative_prompt": ("STRING", {"default": "music, melody, vocals, speech, distortion, low quality",
                                           "multiline": True,
                                           "tooltip": "What to avoid. Used only when guidance is on (cfg above 1: "
                                                      "Open 1.0 by default; distilled Stable Audio 3 runs without). "
                                                      "Connect Build Ambient Prompt's negative_prompt, or type one."}),
            "seconds": ("FLOAT", {"default": 10.0, "min": 0.1, "max": 380.0, "step": 0.1,
                                  "tooltip": "Length of each clip in seconds, up to the model's maximum: Stable "
                                             "Audio Open 1.0 47.55 s, Stable Audio 3 Small 120 s, Medium 380 s."}),
            "steps": ("INT", {"default": 0, "min": 0, "max": 1000, "step": 1,
                              "tooltip": "Sampling steps; 0 = the model's own: 100 for Stable Audio Open (50 is a "
                                         "good draft), 8 for distilled Stable Audio 3 (it is made for 8)."}),
            "cfg": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 25.0, "step": 0.1,
                              "tooltip": "How closely to follow the prompt (classifier-free guidance); 0 = the "
                                         "model's own: 7 for Stable Audio Open, 1 (off) for distilled Stable Audio "
                                         "3, whose guidance is distilled in. Up to 1 turns guidance and the "
                                         "negative prompt off."}),
            "seed": ("INT", {"default": 0, "min": 0, "max": SEED_MAX, "control_after_generate": True,
                             "tooltip": "Same seed + same inputs = same audio. Change it for another take."}),
            "variations": ("INT", {"default": 1, "min": 1, "max": 16, "step": 1,
                                   "tooltip": "Clips to make from this prompt, each from its own noise (a batch)."}),
            "memory": (list(devices.MEMORY_MODES), {"default": "balanced", "tooltip": devices.MEMORY_HELP}),
            "compile": ("BOOLEAN", {"default": False, "tooltip": COMPILE_HELP}),
        }}

    def execute(self, model, prompt, negative_prompt, seconds, steps, cfg, seed, variations, memory="balanced",
                compile=False):
        from ..generate.soundscape import NODE, OOM_ADVICE, check_settings, generate_soundscape, resolve_defaults

        check_settings(seconds=seconds, steps=steps, cfg=cfg, seed=seed, variations=variations)
        plan = comfy_glue.device_plan(folders.STABLE_AUDIO)
        compiled = compile and plan.load_device.startswith("cuda") and model.family == "StableAudioPipeline"
        memory = "fast" if compiled else memory  # CUDA graphs need the weights to stay where they were captured
        with devices.stable_audio_session(model, plan, memory, node=NODE, advice=OOM_ADVICE) as (pipe, stage):
            transformer = loading.compiled_transformer(model, pipe, comfy_glue.compile_cache_dir()) if compiled else None
            steps, cfg = resolve_defaults(pipe, steps, cfg)
            waveform, rate = generate_soundscape(pipe, prompt, negative_prompt=negative_prompt, seconds=seconds,
                                                 steps=steps, cfg=cfg, seed=seed, variations=variations,
                                                 on_step=comfy_glue.progress(steps), stage=stage,
                                                 decode_chunk_frames=devices.decode_chunk_frames(plan, memory, pipe),
                                                 transformer=transformer, split_cfg=devices.SPLIT_CFG[memory])
        meta = {"prompt": prompt, "negative_prompt": negative_prompt, "seed": seed, "steps": steps, "cfg": cfg,
                "seconds": seconds, "model": model.name}
        return ({"waveform": waveform, "sample_rate": rate, META_KEY: meta},)


class AmbientSaveWav:
    CATEGORY = CATEGORY
    DESCRIPTION = ("Save audio as WAV files in ComfyUI's output folder (never overwriting) and play it on the node. "
                   "The files carry the workflow: drop one on the canvas to get the graph back.")
    RETURN_TYPES = ()
    OUTPUT_NODE = True
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "audio": ("AUDIO", {"tooltip": "Audio to save: from Stable Audio Sampler or any node that outputs AUDIO "
                                           "(mono or stereo, any sample rate). Each clip of a batch is one file."}),
            "filename_prefix": ("STRING", {"default": DEFAULT_PREFIX,
                                           "tooltip": "File name start inside the output folder; 'sub/name' makes a "
                                                      "subfolder; %year%, %month%, %day% are filled in. A counter is "
                                                      "added: name_00001_.wav, name_00002_.wav..."}),
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
        }, "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}}

    def execute(self, audio, filename_prefix, bit_depth, loop_points="auto", metadata=True, audioUI=None,
                prompt=None, extra_pnginfo=None):
        from ..audio.contract import check_audio
        from ..audio.wav import NODE, generation_metadata, save_wav

        waveform, rate = check_audio(audio, NODE)
        loop = loop_points == "always" or (loop_points == "auto" and bool(audio.get(LOOP_KEY)))
        meta = None
        if metadata and not comfy_glue.metadata_disabled():
            meta = generation_metadata(prompt, extra_pnginfo, audio.get(META_KEY))
        saved = save_wav(waveform, rate, comfy_glue.output_directory(), filename_prefix, bit_depth, loop, meta)
        return {"ui": {"audio": [{"filename": s.filename, "subfolder": s.subfolder, "type": "output"} for s in saved]}}


NODE_CLASSES = {
    "AmbientBlipLoader": (AmbientBlipLoader, "Load BLIP Caption Model"),
    "AmbientBlipCaption": (AmbientBlipCaption, "Caption Image (BLIP)"),
    "AmbientPromptBuilder": (AmbientPromptBuilder, "Build Ambient Prompt"),
    "AmbientStableAudioLoader": (AmbientStableAudioLoader, "Load Stable Audio Model"),
    "AmbientStableAudioSampler": (AmbientStableAudioSampler, "Stable Audio Sampler"),
    "AmbientSaveWav": (AmbientSaveWav, "Save WAV"),
}
