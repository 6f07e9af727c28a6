"""Stable Audio 3 sampling over a loaded ``StableAudio3Pipeline`` (plain functions, no ComfyUI).

One loop for the three things Stable Audio 3 does, each step for step what diffusers' pipeline does (the tests
check the latents are equal): text to audio (``StableAudio3Pipeline``), a variation of a reference clip
(``StableAudio3AudioToAudioPipeline``: the reference's latents mixed with noise, the schedule started at that noise
level) and inpainting (``StableAudio3InpaintPipeline``: the kept latents and the mask fed to the DiT as local
conditioning, the masked part generated). What differs from the pipelines: progress and Cancel after every step,
a stage hook so low-VRAM modes can move one part at a time, the two guidance halves optionally one after the other,
and the autoencoder run in overlapping chunks in both directions, so memory stays flat in length (the SAME
autoencoder's attention mask is dense: decoding 380 s at once needs tens of GiB).
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

NODE = "Stable Audio Sampler"
# what Stability's reference decoder uses: 128-latent chunks (11.9 s) with 32 latents of context on each side
CHUNK_FRAMES = 128
OVERLAP_FRAMES = 32
LOGSNR_MIN, LOGSNR_MAX = -6.2, 2.0  # the pipelines' defaults: the schedule the checkpoints were distilled with


def hop_of(vae) -> int:
    """Audio samples per latent frame (Oobleck: 2048; SAME: 4096)."""
    hop = getattr(vae, "hop_length", None) or getattr(vae, "downsampling_ratio", None)
    return int(hop)


def latent_frames(pipe, seconds: float) -> int:
    """Latent frames for ``seconds``, rounded up as the pipelines round them."""
    rate = int(pipe.vae.config.sampling_rate)
    return int(math.ceil(seconds * rate / hop_of(pipe.vae)))


def _aligned(vae, chunk: int, overlap: int) -> tuple[int, int]:
    """``chunk`` and ``overlap`` rounded up to the autoencoder's latent alignment (SAME-S attends in chunks of 2
    latents: pieces starting on even latents see the chunks the whole clip sees, so a chunked run equals a whole one);
    the overlap no longer than the context the autoencoder needs when it knows it (SAME-S: 2 latents, so a chunked
    decode costs about what a whole one does instead of 30 % more with 32)."""
    align = int(getattr(vae, "latent_alignment", 1) or 1)
    overlap = min(overlap, int(getattr(vae, "context_latents", overlap)))
    return -(-chunk // align) * align, -(-overlap // align) * align


def _chunks(length: int, chunk: int, overlap: int):
    """``(lo, hi, keep_from, keep_to)`` per chunk: decode ``[lo, hi)``, keep ``[keep_from, keep_to)`` of it
    (relative to ``lo``, in frames); the kept parts tile ``[0, length)`` exactly."""
    core = chunk - 2 * overlap
    if core <= 0:
        raise ValueError(f"chunk ({chunk}) must exceed twice the overlap ({overlap})")
    for start in range(0, length, core):
        lo, hi = max(0, start - overlap), min(length, start + core + overlap)
        yield lo, hi, start - lo, min(start + core, length) - lo


def encode_audio(vae, audio: "torch.Tensor", chunk_frames: int = 0, overlap_frames: int = OVERLAP_FRAMES):
    """SAME-encode ``audio [B, C, T]`` (T a multiple of the hop) to latents ``[B, D, T / hop]``, in overlapping
    chunks when ``chunk_frames`` > 0 and the clip is longer (memory flat in length)."""
    import torch

    hop = hop_of(vae)
    length = audio.shape[-1] // hop
    if not chunk_frames or length <= chunk_frames:
        return vae.encode(audio).latents[:, :, :length]
    chunk_frames, overlap_frames = _aligned(vae, chunk_frames, overlap_frames)
    pieces = []
    for lo, hi, keep_from, keep_to in _chunks(length, chunk_frames, overlap_frames):
        latents = vae.encode(audio[:, :, lo * hop: hi * hop]).latents
        pieces.append(latents[:, :, keep_from:keep_to])
    return torch.cat(pieces, dim=-1)


def fit_reference(pipe, audio: "torch.Tensor", frames: int) -> "torch.Tensor":
    """``audio [B, C, T]`` at the model's rate as the model's channel count, cut to at most ``frames`` latent
    frames of samples and zero-padded to a whole frame (the encoder takes whole frames)."""
    channels = int(pipe.vae.config.audio_channels)
    if audio.shape[1] == 1 and channels == 2:
        audio = audio.repeat(1, 2, 1)
    elif audio.shape[1] != channels:
        audio = audio.mean(1, keepdim=True).repeat(1, channels, 1)
    hop = hop_of(pipe.vae)
    n = min(audio.shape[-1], frames * hop)
    out = audio.new_zeros((audio.shape[0], channels, -(-n // hop) * hop))
    out[:, :, :n] = audio[:, :, :n]
    return out


def pad_latents(latents: "torch.Tensor", frames: int) -> "torch.Tensor":
    """``latents`` zero-padded or cut to ``frames`` (as the pipelines fit an encoded reference)."""
    import torch

    if latents.shape[-1] >= frames:
        return latents[:, :, :frames]
    return torch.cat([latents, latents.new_zeros(*latents.shape[:2], frames - latents.shape[-1])], dim=-1)


def inpaint_mask(pipe, frames: int, regions: Sequence[tuple[float, float]], device) -> "torch.Tensor":
    """``float [1, 1, frames]``: 1 = keep, 0 = generate, for ``regions`` of (start, end) seconds (the inpainting
    pipeline's ``mask_start_seconds`` / ``mask_end_seconds`` rounding)."""
    import torch

    rate, hop = int(pipe.vae.config.sampling_rate), hop_of(pipe.vae)
    mask = torch.ones(1, 1, frames, device=device)
    for start_s, end_s in regions:
        mask[:, :, int(start_s * rate / hop): min(int(end_s * rate / hop), frames)] = 0.0
    return mask


def generate(pipe, prompt: str, *, negative_prompt: str | None = None, seconds: float = 10.0, steps: int = 8,
             cfg: float = 1.0, seed: int = 0, variations: int = 1,
             on_step: Callable[[int, int], None] | None = None, stage=None, transformer=None,
             split_cfg: bool = False, decode_chunk_frames: int = CHUNK_FRAMES,
             reference: "torch.Tensor | None" = None, strength: float = 1.0,
             regenerate: Sequence[tuple[float, float]] = (), output: str = "audio") -> "torch.Tensor":
    """Sample ``variations`` clips of ``seconds`` with a Stable Audio 3 pipeline.

    Args:
        pipe: a loaded ``StableAudio3Pipeline`` (parts on their run device, or placed by ``stage``).
        prompt: what to hear (already fitted to the tokenizer).
        negative_prompt: used only when ``cfg`` > 1 ("" = unconditional, as the pipeline).
        seconds, steps, cfg, seed, variations: as the pipeline's duration, num_inference_steps, guidance_scale,
            generator seed and num_waveforms_per_prompt.
        on_step: ``on_step(done, total)`` after each step; raising from it stops sampling (Cancel).
        stage: ``stage(name)`` context factory ("encode", "encode_audio", "denoise", "decode").
        transformer: a stand-in for ``pipe.transformer`` (its compiled form).
        split_cfg: the two guidance halves one after the other (half the activations).
        decode_chunk_frames: latent frames per autoencoder chunk (0 = all at once, as the pipelines).
        reference: ``float [1, C, T]`` at the model's rate: with ``strength`` < 1 the clip is varied from it
            (audio to audio: ``strength`` is the pipeline's ``init_noise_level``, 1 = ignore the reference); with
            ``regenerate`` regions it is inpainted.
        regenerate: (start, end) seconds of ``reference`` to generate anew, the rest kept (inpainting).
        output: "audio" (float [variations, C, int(seconds * rate)] clamped to [-1, 1], on the CPU) or "latents".
    """
    import torch

    stage = stage or (lambda name: contextlib.nullcontext())
    inpainting = reference is not None and len(regenerate) > 0
    varying = reference is not None and not inpainting and strength < 1.0
    if not 0.0 < strength <= 1.0:
        raise ValueError(f'{NODE}: "strength" is {strength} but must be above 0 and at most 1.')
    generator = torch.Generator("cpu").manual_seed(int(seed))
    frames = latent_frames(pipe, seconds)
    if on_step is not None:
        on_step(0, int(steps))
    with torch.inference_mode():
        with stage("encode"):
            text = encode_text(pipe, prompt, negative_prompt, seconds, variations, guided=cfg > 1.0)
        ref_latents = None
        if reference is not None and (inpainting or varying):
            with stage("encode_audio"):
                param = next(pipe.vae.parameters())
                audio = fit_reference(pipe, reference, frames).to(param.device, param.dtype)
                ref_latents = pad_latents(encode_audio(pipe.vae, audio, decode_chunk_frames), frames)
        with stage("denoise"):
            cond = prepare_conditioning(pipe, *text, frames, variations, ref_latents if inpainting else None,
                                        regenerate)
            latents, sigma_max = initial_latents(pipe, frames, variations, generator,
                                                 ref_latents if varying else None, strength)
            latents = denoise(pipe, latents, cond, cfg=cfg, steps=int(steps), sigma_max=sigma_max,
                              generator=generator, transformer=transformer, split_cfg=split_cfg, on_step=on_step)
        if output == "latents":
            return latents
        with stage("decode"):
            param = next(pipe.vae.parameters())
            audio = decode(pipe.vae, latents.to(param.device, param.dtype), decode_chunk_frames)
    rate = int(pipe.vae.config.sampling_rate)
    return audio[:, :, : int(seconds * rate)].clamp(-1.0, 1.0).float().cpu().contiguous()


def encode_text(pipe, prompt: str, negative_prompt: str | None, seconds: float, variations: int, *, guided: bool):
    """``(embeds, mask, duration, negative)``: the prompt and the duration as cross-attention inputs (the
    pipeline's ``encode_prompt``, ``encode_duration``, ``prepare_cross_attention``); ``negative``: the same for
    ``negative_prompt`` (``None`` or "" = unconditional) when ``guided``, else ``None``."""
    device = next(pipe.text_encoder.parameters()).device
    embeds, mask = pipe.encode_prompt(prompt, device, variations)
    duration = pipe.encode_duration(seconds, device, variations, 1)
    embeds, mask = pipe.prepare_cross_attention(embeds, mask, duration)
    negative = None
    if guided:
        neg, neg_mask = pipe.encode_prompt([negative_prompt or ""], device, variations)
        negative = pipe.prepare_cross_attention(neg, neg_mask, duration)
    return embeds, mask, duration, negative


def prepare_conditioning(pipe, embeds, mask, duration, negative, frames: int, variations: int, ref_latents,
                         regenerate) -> dict:
    """The DiT's conditioning on its device, in its dtype (the pipelines use the text encoder's; they differ only
    under fp16), the negative half first under guidance; ``ref_latents`` (inpainting): the kept latents and the
    keep mask as local conditioning."""
    import torch

    device = next(pipe.transformer.parameters()).device
    dtype = pipe.transformer.dtype
    embeds, mask, duration = embeds.to(device, dtype), mask.to(device), duration.to(device)
    if negative is not None:
        embeds = torch.cat([negative[0].to(device, dtype), embeds])
        mask = torch.cat([negative[1].to(device), mask])
        duration = torch.cat([duration, duration])
    local = None
    if ref_latents is not None:
        keep_mask = inpaint_mask(pipe, frames, regenerate, device)
        kept = ref_latents.to(device, torch.float32) * keep_mask
        local = torch.cat([keep_mask, kept], dim=1).to(dtype).repeat_interleave(variations, dim=0)
        if negative is not None:
            local = torch.cat([local, local])
    return {"embeds": embeds, "mask": mask, "duration": duration, "local": local}


def initial_latents(pipe, frames: int, variations: int, generator, ref_latents, strength: float):
    """``(latents, sigma_max)``: the starting noise, mixed with ``ref_latents`` at ``strength`` when varying (the
    schedule then starts at that noise level)."""
    from diffusers.utils.torch_utils import randn_tensor

    device = next(pipe.transformer.parameters()).device
    dtype = pipe.transformer.dtype
    latent_dim = int(pipe.vae.config.latent_dim)
    latents = randn_tensor((variations, latent_dim, frames), generator=generator, device=device, dtype=dtype)
    if ref_latents is None:
        return latents, 1.0
    ref = ref_latents.to(device, dtype).repeat_interleave(variations, dim=0)
    return (1.0 - strength) * ref + strength * latents, strength


def denoise(pipe, latents, cond: dict, *, cfg: float, steps: int, sigma_max: float, generator, transformer,
            split_cfg: bool, on_step) -> "torch.Tensor":
    """The velocity sampling loop over the log-SNR schedule from ``sigma_max``, with guidance when ``cfg`` > 1
    (the two halves one after the other with ``split_cfg``); ``on_step(done, steps)`` after each step."""
    import torch
    from diffusers.pipelines.stable_audio_3.pipeline_stable_audio_3 import logsnr_sigma_schedule

    do_cfg = cfg > 1.0
    sigmas = logsnr_sigma_schedule(steps, LOGSNR_MIN, LOGSNR_MAX, sigma_max=sigma_max)
    pipe.scheduler.set_timesteps(sigmas=sigmas, device=latents.device)
    model = transformer if transformer is not None else pipe.transformer
    embeds, mask, duration, local = cond["embeds"], cond["mask"], cond["duration"], cond["local"]
    for i, t in enumerate(pipe.scheduler.timesteps):
        model_input = torch.cat([latents, latents]) if do_cfg else latents
        if transformer is not None:
            torch.compiler.cudagraph_mark_step_begin()
        halves = 2 if (split_cfg and do_cfg) else 1
        velocity = torch.cat([
            model(x, t.expand(x.shape[0]), encoder_hidden_states=e, global_hidden_states=g,
                  encoder_attention_mask=m, return_dict=False, **({"local_add_cond": lc} if lc is not None else {}))[0]
            for x, e, g, m, lc in zip(model_input.chunk(halves), embeds.chunk(halves), duration.chunk(halves),
                                      mask.chunk(halves), local.chunk(halves) if local is not None else [None] * halves)])
        if do_cfg:
            uncond, cond_v = velocity.chunk(2)
            velocity = uncond + cfg * (cond_v - uncond)
        latents = pipe.scheduler.step(velocity, t, latents, generator=generator).prev_sample
        if on_step is not None:
            on_step(i + 1, steps)
    return latents


def decode(vae, latents: "torch.Tensor", chunk_frames: int = CHUNK_FRAMES,
           overlap_frames: int = OVERLAP_FRAMES) -> "torch.Tensor":
    """SAME-decode ``latents [B, D, L]`` to ``[B, C, L * hop]``, in overlapping chunks when ``chunk_frames`` > 0
    (each chunk decoded with ``overlap_frames`` of context on both sides, which is dropped; both rounded up to the
    autoencoder's latent alignment). SAME-S decodes an odd number of latents padded by one: the extra is cut."""
    import torch

    length = latents.shape[-1]
    hop = hop_of(vae)
    if not chunk_frames or length <= chunk_frames:
        return vae.decode(latents).sample[:, :, : length * hop]
    chunk_frames, overlap_frames = _aligned(vae, chunk_frames, overlap_frames)
    pieces = []
    for lo, hi, keep_from, keep_to in _chunks(length, chunk_frames, overlap_frames):
        audio = vae.decode(latents[:, :, lo:hi]).sample
        pieces.append(audio[:, :, keep_from * hop: keep_to * hop])
    return torch.cat(pieces, dim=-1)
