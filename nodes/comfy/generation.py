"""The generation nodes: Caption Image (BLIP), Stable Audio Sampler, Extend Soundscape, Vary Audio.

Each ``execute`` checks, runs one plain function inside a model session, and wraps the output. Stdlib-only at
import: the plain modules import torch/transformers/diffusers inside their functions.
"""
from __future__ import annotations

from ..audio.contract import check_audio, make_audio
from ..generate.inputs import check_sampling, require_sa3_handle
from ..models import devices, folders
from . import glue as comfy_glue
from .inputs import (
    CATEGORY,
    audio_input,
    cfg_input,
    compile_input,
    memory_input,
    negative_prompt_input,
    prompt_input,
    seed_input,
    stable_audio_model_input,
    steps_input,
    variations_input,
)
from .session import model_errors, stable_audio_run

STEREO_OUT = ("Stereo audio at the model's sample rate (44.1 kHz for Stable Audio Open and 3), one clip per "
              "variation; connects to Save WAV and any core audio node.",)


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
        from ..generate.caption import NODE, caption_images, check_images

        check_images(image)
        plan = comfy_glue.device_plan(folders.BLIP)
        with model_errors(NODE, "captioning", 'set "beams" to 1 and "prefix" empty'), \
                devices.on_device(blip_model, plan) as (model, processor):
            captions = caption_images(model, processor, image, prefix=prefix, max_new_tokens=max_tokens,
                                      num_beams=beams, on_step=comfy_glue.progress(image.shape[0] * max_tokens))
        return (captions,)


class AmbientStableAudioSampler:
    CATEGORY = CATEGORY
    DESCRIPTION = "Generate an ambient soundscape from a text prompt with a Stable Audio model."
    RETURN_TYPES = ("AUDIO",)
    RETURN_NAMES = ("audio",)
    OUTPUT_TOOLTIPS = STEREO_OUT
    FUNCTION = "execute"
    OOM_ADVICE = 'Set "memory" to low-vram, or lower "seconds" or "variations"'
    ERROR_FIX = {"doing": "sampling",  # an error from inside the model: what it was doing, what to try
                 "fix": 'set "steps" and "cfg" to 0 (the model\'s own), "memory" to balanced and "compile" off'}

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": stable_audio_model_input(),
            "prompt": prompt_input("gentle waves breaking on a sandy beach, distant seagulls, sea breeze, high "
                                   "quality field recording"),
            "negative_prompt": negative_prompt_input(),
            "seconds": ("FLOAT", {"default": 10.0, "min": 0.1, "max": 380.0, "step": 0.1,
                                  "tooltip": "Length of each clip in seconds, up to the model's maximum: Stable "
                                             "Audio Open 1.0 47.55 s, Stable Audio 3 Small 120 s, Medium 380 s. "
                                             "Longer clips take longer and need more memory."}),
            "steps": steps_input(),
            "cfg": cfg_input(),
            "seed": seed_input(),
            "variations": variations_input("Clips to make from this prompt"),
            "memory": memory_input(),
            "compile": compile_input(),
        }}

    def execute(self, model, prompt, negative_prompt, seconds, steps, cfg, seed, variations, memory="balanced",
                compile=False):
        from ..generate.soundscape import NODE, check_settings, generate_soundscape

        check_settings(seconds=seconds, steps=steps, cfg=cfg, seed=seed, variations=variations)
        with stable_audio_run(NODE, model, self.OOM_ADVICE, steps=steps, cfg=cfg, memory=memory, compile=compile,
                              **self.ERROR_FIX) as run:
            waveform, rate = generate_soundscape(run.pipe, prompt, negative_prompt=negative_prompt, seconds=seconds,
                                                 steps=run.steps, cfg=run.cfg, seed=seed, variations=variations,
                                                 transformer=run.transformer, split_cfg=run.split_cfg, **run.options)
        meta = {"prompt": prompt, "negative_prompt": negative_prompt, "seed": seed, "steps": run.steps,
                "cfg": run.cfg, "seconds": seconds, "model": model.name}
        return (make_audio(waveform, rate, meta=meta),)


class AmbientExtend:
    CATEGORY = CATEGORY
    DESCRIPTION = ("Make a soundscape of any length (minutes to an hour) with a Stable Audio model, one progress bar "
                   "for all segments. Stable Audio 3 continues each segment from the last seconds of the one before "
                   "(inpainting), so the texture carries on; Stable Audio Open joins independent segments with "
                   "equal-power cross-fades.")
    RETURN_TYPES = ("AUDIO",)
    RETURN_NAMES = ("audio",)
    OUTPUT_TOOLTIPS = ("The whole soundscape as one clip (21 MB of memory per stereo minute).",)
    FUNCTION = "execute"
    OOM_ADVICE = 'Lower "segment_seconds"'
    ERROR_FIX = {"doing": "generating the segments",
                 "fix": 'turn "tail_conditioning" off, set "method" to auto and "segment_seconds" to 0'}

    @classmethod
    def INPUT_TYPES(cls):
        from ..generate.extend import METHODS as EXTEND_METHODS

        return {"required": {
            "model": stable_audio_model_input(),
            "prompt": prompt_input("steady rain on a roof, distant thunder, soft wind, high quality field recording",
                                   "The same prompt drives every segment."),
            "negative_prompt": negative_prompt_input(),
            "minutes": ("FLOAT", {"default": 5.0, "min": 0.1, "max": 60.0, "step": 0.1,
                                  "tooltip": "Total length in minutes (up to 60). Time grows with length: about "
                                             "one segment's sampling per segment."}),
            "segment_seconds": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 380.0, "step": 0.5,
                                          "tooltip": "Length of each generated segment; 0 = the model's maximum "
                                                     "(Stable Audio Open 47.55 s, Stable Audio 3 Medium 380 s), the "
                                                     "fewest joints."}),
            "overlap_seconds": ("FLOAT", {"default": 3.0, "min": 0.1, "max": 60.0, "step": 0.1,
                                          "tooltip": "Cross-fade at each joint, in seconds (at most half a segment). "
                                                     "continue: the fade from the previous segment's tail into the "
                                                     "model's continuation of it (at most 10 s)."}),
            "steps": steps_input("Used for every segment."),
            "cfg": cfg_input(),
            "seed": seed_input("Segment k uses seed + k."),
            "tail_conditioning": ("BOOLEAN", {"default": False, "tooltip": "Start each segment from the previous "
                                              "segment's tail (diffusers' initial audio). With Stable Audio Open "
                                              "the effect is subtle: the sampler adds full-strength noise on top. "
                                              "Crossfade method only."}),
        }, "optional": {
            "method": (list(EXTEND_METHODS), {"default": "auto", "tooltip": "How segments join. auto: continue "
                                              "with Stable Audio 3, crossfade with Stable Audio Open. continue "
                                              "(Stable Audio 3): each segment is inpainted after the last 10 s of "
                                              "the one before, which the model hears, so the sound carries on. "
                                              "crossfade: independent segments, equal-power cross-fades."}),
        }}

    def execute(self, model, prompt, negative_prompt, minutes, segment_seconds, overlap_seconds, steps, cfg, seed,
                tail_conditioning, method="auto"):
        from ..generate.extend import NODE, extend_soundscape

        with stable_audio_run(NODE, model, self.OOM_ADVICE, steps=steps, cfg=cfg, **self.ERROR_FIX) as run:
            waveform, rate = extend_soundscape(run.pipe, prompt, negative_prompt=negative_prompt, minutes=minutes,
                                               segment_seconds=segment_seconds, overlap_seconds=overlap_seconds,
                                               steps=run.steps, cfg=run.cfg, seed=seed, method=method,
                                               tail_conditioning=tail_conditioning, **run.options)
        return (make_audio(waveform, rate),)


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
    OOM_ADVICE = 'Lower "variations" or connect a shorter "audio"'
    ERROR_FIX = {"doing": "varying the audio",
                 "fix": 'set "steps" to 0 (the model\'s own) or connect a shorter "audio"'}

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": stable_audio_model_input("A Stable Audio 3 model from Load Stable Audio Model (Stable Audio "
                                              "Open cannot take audio in)."),
            "audio": audio_input("The clip to vary: resampled to 44.1 kHz, mono doubled. Longer than the model's "
                                 "maximum (Medium 380 s): its first maximum seconds are used, with a warning in the "
                                 "log."),
            "prompt": prompt_input("gentle rain on leaves, distant birds, high quality field recording",
                                   "Describing the input's own sounds keeps the new take closest to it."),
            "strength": ("FLOAT", {"default": 0.6, "min": 0.05, "max": 1.0, "step": 0.05,
                                   "tooltip": "How much may change: the noise level sampling starts from. 0.05-0.3 "
                                              "keeps the input's structure and timing, 0.5-0.7 keeps its rough "
                                              "shape, 1 ignores the input (plain text to audio)."}),
            "steps": steps_input(),
            "seed": seed_input("Clip b of an input batch uses seed + b."),
            "variations": variations_input("Takes per input clip"),
        }}

    def execute(self, model, audio, prompt, strength, steps, seed, variations):
        from ..generate.vary import NODE, vary_audio

        waveform, rate = check_audio(audio, NODE)
        require_sa3_handle(NODE, model)
        check_sampling(NODE, steps=steps, seed=seed, variations=variations)
        with stable_audio_run(NODE, model, self.OOM_ADVICE, steps=steps, clips=waveform.shape[0], **self.ERROR_FIX) as run:
            out, out_rate, info = vary_audio(run.pipe, waveform, rate, prompt, strength, steps=steps, seed=seed,
                                             variations=variations, **run.options)
        meta = {"prompt": prompt, "seed": seed, "steps": info["steps"], "strength": strength, "model": model.name,
                "seconds": info["seconds"], "source": "vary"}
        return (make_audio(out, out_rate, meta=meta),)
