"""Stable Audio sampling over a loaded diffusers pipeline (plain functions, no ComfyUI)."""
from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

NODE = "Stable Audio Sampler"
SEED_MAX = 2**64 - 1


def sample_rate_of(pipe) -> int:
    """The pipeline's output sample rate in Hz (diffusers calls it ``sampling_rate``)."""
    return int(pipe.vae.config.sampling_rate)


def max_seconds_of(pipe) -> float:
    """Longest clip the model makes in one pass: transformer sample size x VAE hop / sample rate.

    Stable Audio Open 1.0: 1024 x 2048 / 44100 = 47.55 s.
    """
    return float(pipe.transformer.config.sample_size) * float(pipe.vae.hop_length) / sample_rate_of(pipe)


def prompt_token_limit(pipe) -> int:
    """The text encoder's token limit (Stable Audio Open: 128)."""
    return int(getattr(pipe.tokenizer, "model_max_length", 128) or 128)


def check_settings(*, seconds: float, steps: int, cfg: float, seed: int, variations: int,
                   max_seconds: float | None = None) -> None:
    """``ValueError`` naming the input, the value and the fix for settings no model could run."""
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f'{NODE}: "seconds" is {seconds} but must be a positive number of seconds. Set it to e.g. 10.')
    if max_seconds is not None and seconds > max_seconds + 1e-6:
        raise ValueError(f'{NODE}: "seconds" is {seconds:g} but this model makes at most {max_seconds:.2f} s in one pass. '
                         f'Set "seconds" to {math.floor(max_seconds * 100) / 100:g} or less.')
    if int(steps) != steps or steps < 1:
        raise ValueError(f'{NODE}: "steps" is {steps} but must be a whole number of at least 1. Set it to e.g. 100.')
    if not isinstance(cfg, (int, float)) or not math.isfinite(cfg) or cfg < 0:
        raise ValueError(f'{NODE}: "cfg" is {cfg} but must be 0 or more (1 turns guidance off). Set it to e.g. 7.')
    if int(seed) != seed or not 0 <= seed <= SEED_MAX:
        raise ValueError(f'{NODE}: "seed" is {seed} but must be a whole number from 0 to {SEED_MAX}. Pick a seed in that range.')
    if int(variations) != variations or variations < 1:
        raise ValueError(f'{NODE}: "variations" is {variations} but must be at least 1. Set it to 1 or more.')


def fit_prompt(pipe, text: str) -> str:
    """``text`` shortened on a word boundary until the pipeline's tokenizer takes it whole (the tokenizer itself
    would cut mid-word); logs a warning when it shortens."""
    from .prompt import shorten_to_limit

    limit = prompt_token_limit(pipe)
    tok = pipe.tokenizer

    def count(t: str) -> int:
        return len(tok(t, truncation=False, add_special_tokens=True, verbose=False)["input_ids"])

    if count(text) <= limit:
        return text
    short = shorten_to_limit(text, limit, count_tokens=count)
    log.warning("%s: the prompt is longer than the text encoder's %d tokens; shortened to %r", NODE, limit, short)
    return short


def generate_soundscape(pipe, prompt: str, *, negative_prompt: str = "", seconds: float = 10.0, steps: int = 100,
                        cfg: float = 7.0, seed: int = 0, variations: int = 1,
                        on_step: Callable[[int, int], None] | None = None,
                        initial_audio: "torch.Tensor | None" = None) -> tuple["torch.Tensor", int]:
    """Sample ``variations`` clips of ``seconds`` from a Stable Audio pipeline.

    Args:
        pipe: a loaded ``StableAudioPipeline`` on the device it should run on.
        prompt: what to hear.
        negative_prompt: what to avoid ("" = none); used only when ``cfg`` > 1.
        seconds: clip length, up to :func:`max_seconds_of`.
        steps: sampling steps.
        cfg: classifier-free guidance scale (1 = off).
        seed: the same seed and inputs give the same audio.
        variations: clips from one prompt, each from its own noise.
        on_step: ``on_step(done, total)`` after each step; raising from it stops sampling (Cancel).
        initial_audio: optional ``float [1, C, T]`` at the model's rate that the sampling starts from (diffusers'
            ``initial_audio_waveforms``).

    Returns:
        ``(waveform, sample_rate)``: ``waveform`` is ``float32 [variations, channels, int(seconds * rate)]`` on
        the CPU.
    """
    import torch

    check_settings(seconds=seconds, steps=steps, cfg=cfg, seed=seed, variations=variations,
                   max_seconds=max_seconds_of(pipe))
    prompt = fit_prompt(pipe, prompt)
    negative = fit_prompt(pipe, negative_prompt) if negative_prompt and negative_prompt.strip() and cfg > 1 else None
    generator = torch.Generator("cpu").manual_seed(int(seed))
    total = int(steps)

    def callback(step: int, timestep, latents) -> None:
        if on_step is not None:
            on_step(step + 1, total)

    extra = {}
    if initial_audio is not None:
        param = next(pipe.vae.parameters())
        extra = {"initial_audio_waveforms": initial_audio.to(param.device, param.dtype),
                 "initial_audio_sampling_rate": sample_rate_of(pipe)}
    if on_step is not None:
        on_step(0, total)
    # the pipeline warns that a short initial audio "will be padded": that is what we ask for
    pipeline_log = logging.getLogger(type(pipe).__module__)
    level = pipeline_log.level
    if initial_audio is not None:
        pipeline_log.setLevel(logging.ERROR)
    try:
        with torch.inference_mode(), warnings.catch_warnings():
            # torchsde's Brownian tree warns on float rounding at the interval ends on every run: harmless noise
            warnings.filterwarnings("ignore", module="torchsde")
            out = pipe(prompt, negative_prompt=negative, audio_end_in_s=float(seconds),
                       num_inference_steps=int(steps), guidance_scale=float(cfg),
                       num_waveforms_per_prompt=int(variations), generator=generator, callback=callback,
                       callback_steps=1, output_type="pt", **extra)
    finally:
        pipeline_log.setLevel(level)
    waveform = out.audios.detach().float().cpu().contiguous()
    rate = sample_rate_of(pipe)
    want = int(seconds * rate)  # the pipeline crops to int(audio_end_in_s * rate) too
    if waveform.shape[-1] > want:
        waveform = waveform[..., :want]
    if not torch.isfinite(waveform).all():
        raise ValueError(f"{NODE}: the model produced non-finite audio (NaN/inf) in this precision. "
                         'Load the model with "dtype" fp32 or bf16 and run again.')
    return waveform, rate
