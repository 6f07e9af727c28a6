"""The input specs several nodes share, written once: each returns ComfyUI's ``(type, options)`` pair.

Names, defaults and limits are part of the API (saved workflows store them; ``tests/test_api.py`` holds them).
Tooltips say what an input does and its trade-off; machine timings live in the README and benchmarks/RESULTS.md.
Stdlib only.
"""
from __future__ import annotations

from ..checks import SEED_MAX
from ..models.devices import MEMORY_MODES
from ..models.folders import DTYPES
from ..text.tables import DEFAULT_PRESET, PRESET_NAMES

CATEGORY = "audio/ambient"

AUDIO_IN = "Audio from any node that outputs AUDIO (Stable Audio Sampler, Load Audio, ...), mono or stereo, any rate."
AUDIO_OUT = ("The processed audio (same rate), as AUDIO for Save WAV or any core audio node.",)
DTYPE_TOOLTIP = ("Weight precision. auto: ComfyUI's choice for the device (fp16 on most GPUs, fp32 on the CPU); "
                 "fp32 is the most exact and uses twice the memory of fp16/bf16.")
MEMORY_TOOLTIP = (
    "balanced: the model moves to the GPU for the run and back after, VRAM free between runs. fast: it stays on "
    "the GPU between runs, no transfer, so repeated runs start sooner (ComfyUI still evicts it when another model "
    "needs room); required by compile. low-vram: one part at a time, and the two guidance passes one after the "
    "other: the lowest peak, a little slower, for 4-12 GB cards.")
COMPILE_TOOLTIP = (
    "Compile the transformer with CUDA graphs (torch.compile; NVIDIA GPUs; implies memory=fast): every run is "
    "faster, but the first run of each clip-length bucket waits for the compile (less in later ComfyUI starts: "
    "the kernels are cached in ComfyUI's user folder). Off: no wait. Stable Audio Open only: Stable Audio 3 runs "
    "8 steps, where compiling each new length would cost more than it saves, so it is ignored there.")
STEPS_TOOLTIP = ("Sampling steps; 0 = the model's own: 100 for Stable Audio Open (50 is a good draft), 8 for "
                 "distilled Stable Audio 3 (it is made for 8). More steps take proportionally longer.")
CFG_TOOLTIP = ("How closely to follow the prompt (classifier-free guidance); 0 = the model's own: 7 for Stable Audio "
               "Open, 1 (off) for distilled Stable Audio 3, whose guidance is distilled in. Up to 1 turns guidance "
               "and the negative prompt off; above 1 each step runs twice.")
NEGATIVE_TOOLTIP = ("What to avoid. Used only when guidance is on (cfg above 1: Open 1.0 by default; distilled Stable "
                    "Audio 3 runs without). Connect Build Ambient Prompt's negative_prompt, or type one.")
NEGATIVE_DEFAULT = "music, melody, vocals, speech, distortion, low quality"
PROMPT_TOOLTIP = ("What to hear: sound sources and textures. Connect Build Ambient Prompt's prompt, or type one. "
                  "Longer than the text encoder takes (Open 1.0: 128 tokens, Stable Audio 3: 256) is shortened on a "
                  "word boundary.")
SEED_TOOLTIP = "Same seed + same inputs = same audio; change it for another take."
CAPTION_TOOLTIP = "A description of the scene, e.g. from Caption Image (BLIP)."


def audio_input(note: str = "") -> tuple:
    """An AUDIO input; ``note`` adds what this node does with it."""
    return ("AUDIO", {"tooltip": f"{AUDIO_IN} {note}".strip()})


def dtype_input() -> tuple:
    return (list(DTYPES), {"default": "auto", "tooltip": DTYPE_TOOLTIP})


def stable_audio_model_input(tooltip: str = "From Load Stable Audio Model.") -> tuple:
    return ("STABLE_AUDIO_MODEL", {"tooltip": tooltip})


def prompt_input(default: str, note: str = "") -> tuple:
    """The text prompt of a Stable Audio node; ``default`` differs per node (saved workflows keep it)."""
    return ("STRING", {"default": default, "multiline": True, "tooltip": f"{PROMPT_TOOLTIP} {note}".strip()})


def negative_prompt_input() -> tuple:
    return ("STRING", {"default": NEGATIVE_DEFAULT, "multiline": True, "tooltip": NEGATIVE_TOOLTIP})


def steps_input(note: str = "") -> tuple:
    return ("INT", {"default": 0, "min": 0, "max": 1000, "step": 1, "tooltip": f"{STEPS_TOOLTIP} {note}".strip()})


def cfg_input() -> tuple:
    return ("FLOAT", {"default": 0.0, "min": 0.0, "max": 25.0, "step": 0.1, "tooltip": CFG_TOOLTIP})


def seed_input(note: str = "") -> tuple:
    """A seed (ComfyUI's frontend gives every "seed" input a control_after_generate widget; the spec says so, so
    saved workflows and the API agree on the widget values: seed, then its control)."""
    return ("INT", {"default": 0, "min": 0, "max": SEED_MAX, "control_after_generate": True,
                    "tooltip": f"{note} {SEED_TOOLTIP}".strip()})


def variations_input(what: str) -> tuple:
    """How many takes; ``what`` says of what, e.g. "Clips to make from this prompt"."""
    return ("INT", {"default": 1, "min": 1, "max": 16, "step": 1,
                    "tooltip": f"{what}, each from its own noise (one batch; time and memory grow with it)."})


def memory_input() -> tuple:
    return (list(MEMORY_MODES), {"default": "balanced", "tooltip": MEMORY_TOOLTIP})


def compile_input() -> tuple:
    return ("BOOLEAN", {"default": False, "tooltip": COMPILE_TOOLTIP})


def caption_input() -> tuple:
    return ("STRING", {"forceInput": True, "tooltip": CAPTION_TOOLTIP})


def preset_input(tooltip: str) -> tuple:
    return (PRESET_NAMES, {"default": DEFAULT_PRESET, "tooltip": tooltip})
