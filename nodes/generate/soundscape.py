"""Stable Audio sampling over a loaded diffusers pipeline (plain functions, no ComfyUI)."""
from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..checks import SEED_MAX, is_number
from ..models.families import is_sa3, max_seconds_of, model_defaults, prompt_token_limit

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

NODE = "Stable Audio Sampler"


def sample_rate_of(pipe) -> int:
    """The pipeline's output sample rate in Hz (diffusers calls it ``sampling_rate``)."""
    return int(pipe.vae.config.sampling_rate)


def resolve_defaults(pipe, steps: int, cfg: float) -> tuple[int, float]:
    """``steps`` 0 and ``cfg`` 0 mean "the model's own" (:func:`model_defaults`); other values are kept."""
    default_steps, default_cfg = model_defaults(pipe)
    return (int(steps) or default_steps), (float(cfg) or default_cfg)


def check_settings(*, seconds: float, steps: int, cfg: float, seed: int, variations: int,
                   max_seconds: float | None = None, node: str = NODE) -> None:
    """``ValueError`` naming ``node``, the input, the value and the fix for settings no model could run."""
    if not is_number(seconds) or seconds <= 0:
        raise ValueError(f'{node}: "seconds" is {seconds} but must be a positive number of seconds. Set it to e.g. 10.')
    if max_seconds is not None and seconds > max_seconds + 1e-6:
        raise ValueError(f'{node}: "seconds" is {seconds:g} but this model makes at most {max_seconds:.2f} s in one pass. '
                         f'Set "seconds" to {math.floor(max_seconds * 100) / 100:g} or less.')
    if int(steps) != steps or steps < 0:
        raise ValueError(f'{node}: "steps" is {steps} but must be a whole number of at least 1 (0 = the model\'s '
                         "own). Set it to 0.")
    if not is_number(cfg) or cfg < 0:
        raise ValueError(f'{node}: "cfg" is {cfg} but must be 0 or more (0 = the model\'s own, 1 turns guidance '
                         "off). Set it to 0.")
    if int(seed) != seed or not 0 <= seed <= SEED_MAX:
        raise ValueError(f'{node}: "seed" is {seed} but must be a whole number from 0 to {SEED_MAX}. Pick a seed in that range.')
    if int(variations) != variations or variations < 1:
        raise ValueError(f'{node}: "variations" is {variations} but must be at least 1. Set it to 1 or more.')


def fit_prompt(pipe, text: str) -> str:
    """``text`` shortened on a word boundary until the pipeline's tokenizer takes it whole (the tokenizer itself
    would cut mid-word); logs a warning when it shortens."""
    from .tokens import fit_to_tokens

    limit = prompt_token_limit(pipe)
    short = fit_to_tokens(pipe.tokenizer, text, limit)
    if short != text:
        log.warning("%s: the prompt is longer than the text encoder's %d tokens; shortened to %r", NODE, limit, short)
    return short


WINDOW_BUCKETS = (64, 128, 256, 512, 1024)  # latent frames; fixed shapes so compiled graphs are reused


def window_frames(pipe, seconds: float, window: str = "trimmed") -> int:
    """Latent frames to sample for ``seconds``: the full model window ("full", what diffusers always does), or the
    smallest bucket of :data:`WINDOW_BUCKETS` that holds the clip ("trimmed", as ComfyUI's native path sizes it)."""
    from .sa3 import latent_frames

    if is_sa3(pipe):  # no fixed window: the clip's own length, as the pipeline
        return latent_frames(pipe, seconds)
    full = int(pipe.transformer.config.sample_size)
    if window == "full":
        return full
    needed = math.ceil(seconds * sample_rate_of(pipe) / pipe.vae.hop_length)
    for bucket in WINDOW_BUCKETS:
        if bucket >= needed:
            return min(bucket, full)
    return full


def decode_latents(vae, latents: "torch.Tensor", chunk_frames: int = 0, overlap_frames: int = 32) -> "torch.Tensor":
    """VAE-decode ``latents [B, C, L]`` to audio ``[B, channels, L * hop]``, in overlapping chunks when
    ``chunk_frames`` > 0 (peak memory flat in length): each chunk is decoded with ``overlap_frames`` of context
    on both sides, which is then dropped, so the pieces butt together without a seam."""
    from .sa3 import decode

    return decode(vae, latents, chunk_frames, overlap_frames)


def generate_soundscape(pipe, prompt: str, *, negative_prompt: str = "", seconds: float = 10.0, steps: int = 0,
                        cfg: float = 0.0, seed: int = 0, variations: int = 1,
                        on_step: Callable[[int, int], None] | None = None,
                        initial_audio: "torch.Tensor | None" = None, window: str = "trimmed",
                        decode_chunk_frames: int = 0, stage=None, transformer=None,
                        split_cfg: bool = False, reference: "torch.Tensor | None" = None, strength: float = 1.0,
                        regenerate: tuple = ()) -> tuple["torch.Tensor", int]:
    """Sample ``variations`` clips of ``seconds`` from a Stable Audio pipeline's components: Stable Audio Open
    through :func:`generate_open` (diffusers' ``StableAudioPipeline`` as named steps), Stable Audio 3 through
    :func:`sa3.generate` (its own loop, equal to diffusers').

    Args:
        pipe: a loaded Stable Audio pipeline; its components on the device they should run on (or placed by
            ``stage``).
        prompt: what to hear.
        negative_prompt: what to avoid ("" = none); used only when ``cfg`` > 1.
        seconds: clip length, up to :func:`max_seconds_of`.
        steps: sampling steps (0 = the model's own: Open 1.0 100, distilled Stable Audio 3 8).
        cfg: classifier-free guidance scale (1 = off; 0 = the model's own: Open 1.0 7, distilled SA3 1).
        seed: the same seed and inputs give the same audio.
        variations: clips from one prompt, each from its own noise.
        on_step: ``on_step(done, total)`` after each step; raising from it stops sampling (Cancel).
        initial_audio: Stable Audio Open only: optional ``float [1, C, T]`` at the model's rate that the sampling
            starts from (diffusers' ``initial_audio_waveforms``).
        window: "trimmed" or "full" (see :func:`window_frames`).
        decode_chunk_frames: latent frames per VAE chunk (0 = decode at once).
        stage: optional ``stage(name)`` context manager factory ("encode", "denoise", "decode") that puts the
            components a stage needs on the run device (low-VRAM modes); ``None``: they already are.
        transformer: a stand-in for ``pipe.transformer`` with the same call (e.g. its ``torch.compile`` form).
        split_cfg: run the guided and unguided halves one after the other (low-VRAM: half the activations).
        reference, strength, regenerate: Stable Audio 3 only: vary ``reference`` (``strength`` < 1) or inpaint
            the ``regenerate`` regions of it (see :func:`sa3.generate`).

    Returns:
        ``(waveform, sample_rate)``: ``waveform`` is ``float32 [variations, channels, int(seconds * rate)]`` on
        the CPU.
    """
    import contextlib

    check_settings(seconds=seconds, steps=steps, cfg=cfg, seed=seed, variations=variations,
                   max_seconds=max_seconds_of(pipe))
    steps, cfg = resolve_defaults(pipe, steps, cfg)
    run = dict(seconds=seconds, steps=steps, cfg=cfg, seed=seed, variations=variations, on_step=on_step,
               stage=stage or (lambda name: contextlib.nullcontext()), transformer=transformer, split_cfg=split_cfg,
               decode_chunk_frames=decode_chunk_frames)
    if is_sa3(pipe):
        if initial_audio is not None:
            raise ValueError(f"{NODE}: initial audio is a Stable Audio Open option; with Stable Audio 3 pass it as "
                             "a reference (variation or inpainting).")
        return generate_sa3(pipe, prompt, negative_prompt, reference=reference, strength=strength,
                            regenerate=regenerate, **run)
    if reference is not None:
        raise ValueError(f"{NODE}: audio variation and inpainting need a Stable Audio 3 model; this is "
                         f"{type(pipe).__name__}. Load a Stable Audio 3 folder in Load Stable Audio Model.")
    return generate_open(pipe, prompt, negative_prompt, initial_audio=initial_audio, window=window, **run)


def generate_sa3(pipe, prompt: str, negative_prompt: str, *, cfg: float, decode_chunk_frames: int,
                 **run) -> tuple["torch.Tensor", int]:
    """Stable Audio 3: the prompts fitted to its tokenizer, then :func:`sa3.generate` (settings resolved)."""
    from . import sa3

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*was truncated because.*")
        waveform = sa3.generate(pipe, fit_prompt(pipe, prompt),
                                negative_prompt=fit_prompt(pipe, negative_prompt) if cfg > 1 else None, cfg=cfg,
                                decode_chunk_frames=max(decode_chunk_frames, sa3.CHUNK_FRAMES), **run)
    return _finite(waveform), sample_rate_of(pipe)


def generate_open(pipe, prompt: str, negative_prompt: str, *, seconds: float, steps: int, cfg: float, seed: int,
                  variations: int, on_step, stage, transformer, split_cfg: bool, decode_chunk_frames: int,
                  initial_audio, window: str) -> tuple["torch.Tensor", int]:
    """Stable Audio Open, settings resolved: the steps of diffusers' ``StableAudioPipeline.__call__`` (same prompt
    and duration encoding, scheduler and guidance: with ``window="full"`` and no chunking the audio equals the
    pipeline's), with three changes for speed and memory: the latent window is sized to the clip
    (``window="trimmed"``: a 10 s clip samples 256 frames, not 1024), the rotary embedding is built on the model's
    device (so CUDA graphs can capture the transformer), and the VAE decodes in overlapping chunks."""
    import torch

    prompt = fit_prompt(pipe, prompt)
    negative = fit_prompt(pipe, negative_prompt) if negative_prompt and negative_prompt.strip() and cfg > 1 else None
    generator = torch.Generator("cpu").manual_seed(int(seed))
    rate = sample_rate_of(pipe)
    frames = window_frames(pipe, seconds, window)
    if on_step is not None:
        on_step(0, int(steps))
    with torch.inference_mode(), warnings.catch_warnings():
        # torchsde's Brownian tree warns on float rounding at the interval ends on every run: harmless noise
        warnings.filterwarnings("ignore", module="torchsde")
        with stage("encode"):
            encoded = encode_prompt(pipe, prompt, negative, seconds, cfg > 1.0)
        with stage("denoise"):
            text_states, global_states = prepare_conditioning(pipe, *encoded, cfg > 1.0 and negative is None,
                                                              variations)
            latents = prepare_latents(pipe, frames, variations, int(steps), generator, initial_audio, stage)
            latents = denoise(pipe, latents, text_states, global_states, cfg=cfg, generator=generator,
                              transformer=transformer, split_cfg=split_cfg, on_step=on_step, total=int(steps))
        with stage("decode"):
            vae_param = next(pipe.vae.parameters())
            audio = decode_latents(pipe.vae, latents.to(vae_param.device, vae_param.dtype), decode_chunk_frames)
    return _finite(audio[:, :, : int(seconds * rate)].detach().float().cpu().contiguous()), rate


def encode_prompt(pipe, prompt: str, negative: str | None, seconds: float, do_cfg: bool):
    """``(prompt_embeds, start_states, end_states)``: the text and the duration encoded (the pipeline's own
    ``encode_prompt`` and ``encode_duration``)."""
    device = next(pipe.text_encoder.parameters()).device
    prompt_embeds = pipe.encode_prompt(prompt, device, do_cfg, negative)
    start_states, end_states = pipe.encode_duration(0.0, float(seconds), device, do_cfg and negative is not None, 1)
    return prompt_embeds, start_states, end_states


def prepare_conditioning(pipe, prompt_embeds, start_states, end_states, zeros_uncond: bool, variations: int):
    """``(text_states, global_states)`` on the transformer's device, one per variation (and per guidance half);
    ``zeros_uncond``: guidance without a negative prompt, whose unconditional half is zeros, as the pipeline's."""
    import torch

    device = next(pipe.transformer.parameters()).device
    text_states = torch.cat([prompt_embeds, start_states, end_states], dim=1).to(device)
    global_states = torch.cat([start_states, end_states], dim=2).to(device)
    if zeros_uncond:
        text_states = torch.cat([torch.zeros_like(text_states), text_states], dim=0)
        global_states = torch.cat([global_states, global_states], dim=0)
    b, seq, hidden = text_states.shape
    text_states = text_states.repeat(1, variations, 1).view(b * variations, seq, hidden)
    global_states = global_states.repeat(1, variations, 1).view(b * variations, -1, global_states.shape[-1])
    return text_states, global_states


def prepare_latents(pipe, frames: int, variations: int, steps: int, generator, initial_audio, stage):
    """The starting noise ``[variations, channels, frames]`` (plus the encoded ``initial_audio``), with the
    scheduler's timesteps set for ``steps``."""
    from diffusers.utils.torch_utils import randn_tensor

    device = next(pipe.transformer.parameters()).device
    pipe.scheduler.set_timesteps(steps, device=device)
    channels = pipe.transformer.config.in_channels
    latents = randn_tensor((variations, channels, frames), generator=generator, device=device,
                           dtype=pipe.transformer.dtype)
    latents = latents * pipe.scheduler.init_noise_sigma
    if initial_audio is not None:
        with stage("encode_audio"):
            latents = latents + _encode_initial_audio(pipe, initial_audio, frames, variations, generator, latents)
    return latents


def denoise(pipe, latents, text_states, global_states, *, cfg: float, generator, transformer, split_cfg: bool,
            on_step, total: int) -> "torch.Tensor":
    """The sampling loop over the scheduler's timesteps, with classifier-free guidance when ``cfg`` > 1 (the two
    halves one after the other with ``split_cfg``); ``on_step(done, total)`` after each step."""
    import torch
    from diffusers.models.embeddings import get_1d_rotary_pos_embed

    do_cfg, device = cfg > 1.0, latents.device
    step_kwargs = pipe.prepare_extra_step_kwargs(generator, 0.0)
    cos, sin = get_1d_rotary_pos_embed(pipe.rotary_embed_dim, latents.shape[-1] + global_states.shape[1],
                                       use_real=True, repeat_interleave_real=False)
    rotary = (cos.to(device), sin.to(device))
    model = transformer if transformer is not None else pipe.transformer
    for i, t in enumerate(pipe.scheduler.timesteps):
        model_input = pipe.scheduler.scale_model_input(torch.cat([latents] * 2) if do_cfg else latents, t)
        if transformer is not None:
            torch.compiler.cudagraph_mark_step_begin()
        halves = 2 if (split_cfg and do_cfg) else 1  # the two guidance halves one after the other: half the memory
        noise = torch.cat([model(part, t.unsqueeze(0), encoder_hidden_states=txt, global_hidden_states=glb,
                                 rotary_embedding=rotary, return_dict=False)[0]
                           for part, txt, glb in zip(model_input.chunk(halves), text_states.chunk(halves),
                                                     global_states.chunk(halves))])
        if do_cfg:
            uncond, cond = noise.chunk(2)
            noise = uncond + cfg * (cond - uncond)
        latents = pipe.scheduler.step(noise, t, latents, **step_kwargs).prev_sample
        if on_step is not None:
            on_step(i + 1, total)
    return latents


def _finite(waveform: "torch.Tensor") -> "torch.Tensor":
    import torch

    if not torch.isfinite(waveform).all():
        raise ValueError(f"{NODE}: the model produced non-finite audio (NaN/inf) in this precision. "
                         'Load the model with "dtype" fp32 or bf16 and run again.')
    return waveform


def _encode_initial_audio(pipe, initial_audio, frames: int, variations: int, generator, latents):
    """Latents of ``initial_audio [1, C, T]`` padded or cut to the window (the pipeline's ``prepare_latents``)."""
    param = next(pipe.vae.parameters())
    length = frames * pipe.vae.hop_length
    audio = initial_audio.to(param.device, param.dtype)
    channels = pipe.vae.config.audio_channels
    if audio.shape[1] == 1 and channels == 2:
        audio = audio.repeat(1, 2, 1)
    elif audio.shape[1] == 2 and channels == 1:
        audio = audio.mean(1, keepdim=True)
    padded = audio.new_zeros((1, channels, length))
    padded[:, :, : min(audio.shape[-1], length)] = audio[:, :, :length]
    encoded = pipe.vae.encode(padded).latent_dist.sample(generator)
    return encoded.repeat((variations, 1, 1)).to(latents.device, latents.dtype)
