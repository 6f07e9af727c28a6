"""The optional LLM rewrite: Load Prompt LLM and Rewrite Ambient Prompt (LLM).

A local instruct model (a transformers causal LM folder in ComfyUI/models/LLM) rewrites Build Ambient Prompt's
prompt for the caption; the work is :func:`generate.rewrite.rewrite_prompt`. Stdlib-only at import.
"""
from __future__ import annotations

from ..models import devices, folders
from . import glue as comfy_glue
from .inputs import CATEGORY, caption_input, dtype_input
from .loaders import ModelLoader

LLM_TYPE = "AMBIENT_LLM"


class AmbientLlmLoader(ModelLoader):
    KIND = folders.LLM
    FOLDER = comfy_glue.LLM_FOLDER
    DESCRIPTION = ("Load a local instruct LLM (a transformers chat model folder in ComfyUI/models/LLM, local files "
                   "only, safetensors) for Rewrite Ambient Prompt (LLM). Optional: the prompt builder works without.")
    RETURN_TYPES = (LLM_TYPE,)
    RETURN_NAMES = ("llm",)
    OUTPUT_TOOLTIPS = ("The loaded language model; connect to Rewrite Ambient Prompt (LLM).",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": cls.model_input("A transformers instruct (chat) model folder in ComfyUI/models/LLM, e.g. "
                                     "Qwen2.5-1.5B-Instruct (better) or Qwen2.5-0.5B-Instruct (faster, 1 GB). See the "
                                     "README for the `hf download` command."),
            "dtype": dtype_input(),
        }}


def require_llm(node: str, llm) -> None:
    """A ``ValueError`` naming ``node`` when ``llm`` is not Load Prompt LLM's output."""
    if getattr(llm, "kind", None) != folders.LLM:
        raise ValueError(f'{node}: "llm" is {type(llm).__name__}, not a prompt LLM. Connect Load Prompt LLM\'s '
                         "output.")


def run_rewrite(llm, caption: str, prompt: str, max_new_tokens: int) -> tuple[str, str]:
    """Check the inputs, hold the model on ComfyUI's device for the run, rewrite; ``(prompt, note)``."""
    from ..generate.rewrite import NODE, check_texts, rewrite_prompt

    check_texts(caption, prompt, max_new_tokens)
    require_llm(NODE, llm)
    with devices.on_device(llm, comfy_glue.device_plan(folders.LLM)) as (model, tokenizer):
        result = rewrite_prompt(model, tokenizer, caption, prompt, max_new_tokens=max_new_tokens,
                                model_name=llm.name, on_step=comfy_glue.progress(max_new_tokens))
    return result.prompt, result.note


class AmbientPromptRewriter:
    CATEGORY = CATEGORY
    DESCRIPTION = ("Ask a local instruct LLM to rewrite Build Ambient Prompt's prompt for the caption: concrete "
                   "sound sources of the scene, nothing it contradicts, one line within the token limit. Greedy, "
                   "so the same inputs give the same prompt; an unusable answer keeps the rule prompt.")
    RETURN_TYPES = ("STRING", "STRING")
    RETURN_NAMES = ("prompt", "note")
    OUTPUT_TOOLTIPS = ("The rewritten prompt (or the rule prompt when the model's answer was unusable); connect to "
                       "the sampler's prompt.",
                       "What happened: rewritten by which model (and what the cleaning dropped or shortened), or "
                       "why the rule prompt was kept. Show it with a text display node.")
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls):
        from ..generate.rewrite import DEFAULT_MAX_NEW_TOKENS, MAX_NEW_TOKENS

        return {"required": {
            "llm": (LLM_TYPE, {"tooltip": "From Load Prompt LLM."}),
            "caption": caption_input(),
            "prompt": ("STRING", {"forceInput": True, "tooltip": "Build Ambient Prompt's prompt: the draft the model "
                                                                 "improves, and what is kept when its answer is "
                                                                 "unusable."}),
            "max_new_tokens": ("INT", {"default": DEFAULT_MAX_NEW_TOKENS, "min": 8, "max": MAX_NEW_TOKENS,
                                       "step": 8, "tooltip": "The most tokens the model may write (it stops after "
                                       "one line). 64-128 fits a 40-word prompt; fewer is faster."}),
        }}

    def execute(self, llm, caption, prompt, max_new_tokens):
        return run_rewrite(llm, caption, prompt, max_new_tokens)
