"""Audio to audio with Stable Audio 3: a new take that keeps the structure of a clip you give it (plain functions,
no ComfyUI).

A field recording from core Load Audio or a soundscape made earlier is resampled to the model's rate, encoded by
its autoencoder, mixed with noise at ``strength`` and sampled from that noise level on (diffusers'
``StableAudio3AudioToAudioPipeline``, through :func:`soundscape.generate_soundscape`).
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..audio.contract import check_clip
from ..audio.resample import resample
from ..checks import is_number, seed_for
from .inputs import check_prompt, check_sampling, require_sa3_pipe, seconds_for

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

NODE = "Vary Audio (Stable Audio 3)"


def _check_strength(strength) -> float:
    if not is_number(strength) or not 0.0 < strength <= 1.0:
        raise ValueError(f'{NODE}: "strength" is {strength} but must be above 0 and at most 1 (1 ignores the input '
                         "audio, 0.05 keeps it closest). Set it to e.g. 0.6.")
    return float(strength)


def _fit_to_model(pipe, x: "torch.Tensor", source_rate: int) -> tuple["torch.Tensor", int, int]:
    """``(x, rate, trimmed samples)``: ``x`` resampled to the model's rate and cut to its maximum length (with a
    warning)."""
    from .soundscape import max_seconds_of, sample_rate_of

    rate = sample_rate_of(pipe)
    x = resample(x, source_rate, rate, NODE)
    limit = math.floor(max_seconds_of(pipe) * rate)
    trimmed = max(0, x.shape[-1] - limit)
    if trimmed:
        log.warning("%s: the audio is %.1f s long; this model takes at most %.0f s, so its first %.0f s are varied",
                    NODE, x.shape[-1] / rate, limit / rate, limit / rate)
        x = x[..., :limit]
    return x, rate, trimmed


def vary_audio(pipe, waveform: "torch.Tensor", sample_rate: int, prompt: str, strength: float = 0.6, *,
               steps: int = 0, seed: int = 0, variations: int = 1,
               on_step: Callable[[int, int], None] | None = None, stage=None,
               decode_chunk_frames: int = 0) -> tuple["torch.Tensor", int, dict]:
    """New takes of each clip of ``waveform`` that keep its structure, steered by ``prompt``.

    Each clip is resampled to the model's rate (its channels are matched by the sampler: mono is doubled, more
    than the model's channels are averaged), cut to the model's maximum length if longer (the first
    :func:`soundscape.max_seconds_of` seconds are used, with a warning), then varied with
    :func:`soundscape.generate_soundscape` (``reference=``, ``strength=``).

    Args:
        pipe: a loaded ``StableAudio3Pipeline`` (parts on their run device, or placed by ``stage``).
        waveform: ``float [B, C, T]`` (a 2-D ``[C, T]`` is one clip), any rate and channel count.
        sample_rate: its rate, Hz.
        prompt: what to hear.
        strength: 0 < strength <= 1: the noise level the sampling starts from (the pipeline's
            ``init_noise_level``): 1 ignores the input, low values keep its structure.
        steps: sampling steps; 0 = the model's own (8 for distilled Stable Audio 3).
        seed: clip ``b`` of the batch uses ``seed + b``.
        variations: takes per clip, each from its own noise.
        on_step: ``on_step(done, total)`` over all clips (``total = B x steps``); raising from it stops (Cancel).
        stage, decode_chunk_frames: as :func:`soundscape.generate_soundscape`.

    Returns:
        ``(waveform, sample_rate, info)``: ``float32 [B x variations, model channels, T']`` on the CPU, clip ``b``'s
        takes at ``b x variations ...``; ``T'`` is the input's length at the model's rate (at most the model's
        maximum); ``info``: ``{"seconds", "trimmed_seconds", "steps", "seeds", "source_rate"}``.

    Raises:
        ValueError: starting with "Vary Audio (Stable Audio 3):", naming the input, its value and the fix.
    """
    import torch

    from . import soundscape

    x, source_rate = check_clip(waveform, sample_rate, NODE, "this node cannot vary them")
    strength = _check_strength(strength)
    check_prompt(NODE, prompt)
    check_sampling(NODE, steps=steps, seed=seed, variations=variations)
    require_sa3_pipe(NODE, pipe)
    x, rate, trimmed = _fit_to_model(pipe, x, source_rate)
    seconds = seconds_for(x.shape[-1], rate)
    run_steps = soundscape.resolve_defaults(pipe, steps, 0.0)[0]
    clips = x.shape[0]
    seeds = [seed_for(seed, b) for b in range(clips)]
    outs = []
    for b in range(clips):
        step = None if on_step is None else (lambda done, total, b=b: on_step(b * total + done, clips * total))
        out, _ = soundscape.generate_soundscape(pipe, prompt, seconds=seconds, steps=run_steps, cfg=0.0,
                                                seed=seeds[b], variations=variations, on_step=step, stage=stage,
                                                decode_chunk_frames=decode_chunk_frames, reference=x[b:b + 1],
                                                strength=strength)
        outs.append(out)
    info = {"seconds": x.shape[-1] / rate, "trimmed_seconds": trimmed / rate, "steps": run_steps, "seeds": seeds,
            "source_rate": source_rate}
    return torch.cat(outs), rate, info
