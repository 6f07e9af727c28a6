"""Make a clip loop by letting Stable Audio 3 regenerate its joint (inpainting); plain functions, no ComfyUI."""
from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

from ..audio.contract import check_clip
from ..audio.crossfade import cross_fade
from ..audio.loop import NODE
from ..audio.resample import resample
from ..checks import check_seconds, format_seconds, seed_for

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

INPAINT_CONTEXT_SECONDS = 60.0  # most audio around the joint the model hears (its maximum may be longer)
INPAINT_FIX = ' or set "method" to crossfade'


def inpaint_loop(pipe, waveform: "torch.Tensor", sample_rate: int, prompt: str, *, joint_seconds: float = 4.0,
                 fade_seconds: float = 0.5, steps: int = 0, seed: int = 0, on_step=None, stage=None,
                 decode_chunk_frames: int = 0) -> tuple["torch.Tensor", dict]:
    """Make a clip loop by letting a Stable Audio 3 model regenerate the joint (inpainting), same length out.

    The clip ``x`` (``T`` samples at the model's rate) is rotated by half its length: ``r = x[h:] + x[:h]`` with
    ``h = T // 2``. The wrap of ``r`` (its end into its start) is then ``x[h - 1] -> x[h]``, the source's own
    continuous middle, so the loop's wrap is seamless by construction; the source's end-to-start seam now sits inside
    ``r`` at ``T - h``. A window of ``r`` around that seam (the whole clip, or at most the model's maximum and
    :data:`INPAINT_CONTEXT_SECONDS`) goes to the model as the reference, and ``joint_seconds`` (rounded up to whole
    latent frames, about 93 ms) centred on the seam is generated anew while the model hears the rest. The new joint
    is spliced into ``r`` with ``fade_seconds`` cross-fades at both of its edges (equal-power, correlation-adaptive
    for correlated material: :func:`cross_fade`), placed in the kept audio just outside the joint, where the model's
    output is meant to match the source. Everything else is ``r`` exactly.

    Args:
        pipe: a loaded ``StableAudio3Pipeline`` (parts on their run device, or placed by ``stage``).
        waveform: ``float [B, C, T]`` (a 2-D ``[C, T]`` is one clip), any rate: resampled to the model's rate
            (``scipy.signal.resample_poly``); mono stays mono (the model's stereo joint is averaged), other channel
            counts than 1 or the model's are averaged to the model's.
        sample_rate: its rate, Hz.
        prompt: what the joint should sound like (the clip's own prompt suits).
        joint_seconds: length of the regenerated joint, centred on the old seam.
        fade_seconds: cross-fade length at each edge of the joint.
        steps: sampling steps; 0 = the model's own (8 for distilled Stable Audio 3).
        seed: clip ``b`` of the batch uses ``seed + b``.
        on_step: ``on_step(done, total)`` over all clips (``total = B x steps``); raising from it stops (Cancel).
        stage, decode_chunk_frames: as :func:`soundscape.generate_soundscape`.

    Returns:
        ``(looped, info)``: ``looped`` is ``float32 [B, C', T]`` at the model's rate (``T`` counted at that rate: the
        same length as the input); ``info``: ``{"method": "inpaint", "sample_rate", "rotation_samples": h,
        "joint_start", "joint_end"`` (samples of the output, end exclusive), ``"fade_samples", "window_start",
        "window_samples", "loop_start": 0, "loop_end": T - 1, "steps", "seeds", "correlations": [(fade in, fade
        out) per clip]}`` (the correlation of source and model output across each fade).

    Raises:
        ValueError: starting with "Make Seamless Loop:", naming the input, its value and the fix (a Stable Audio
        Open model, a clip too short for the joint and its fades, a joint longer than the model hears).
    """
    import torch

    from . import soundscape
    from .inputs import check_prompt, check_sampling, require_sa3_pipe, seconds_for
    from .sa3 import hop_of

    require_sa3_pipe(NODE, pipe, INPAINT_FIX)
    x, sample_rate = check_clip(waveform, sample_rate, NODE, "this node cannot loop them")
    joint = check_seconds(NODE, "joint_seconds", joint_seconds, positive=True)
    fade = check_seconds(NODE, "fade_seconds", fade_seconds, positive=True)
    check_prompt(NODE, prompt)
    check_sampling(NODE, steps=steps, seed=seed)
    rate = soundscape.sample_rate_of(pipe)
    x = resample(x, sample_rate, rate, NODE)
    channels = int(pipe.vae.config.audio_channels)
    if x.shape[1] not in (1, channels):
        x = x.mean(1, keepdim=True).repeat(1, channels, 1)
    total, hop = x.shape[-1], hop_of(pipe.vae)
    n_joint = max(2, math.ceil(joint * rate / hop)) * hop  # whole latent frames: the model regenerates frames
    n_fade = max(1, round(fade * rate))
    need = n_joint + 2 * n_fade + hop + 8  # the joint may sit up to half a frame off centre; 1 sample kept each end
    hears = math.floor(min(soundscape.max_seconds_of(pipe), INPAINT_CONTEXT_SECONDS) * rate)
    if need > hears:
        raise ValueError(f'{NODE}: "joint_seconds" is {joint_seconds:g} and the fades 2 x {fade_seconds:g} s, but the '
                         f"model hears at most {format_seconds(hears / rate)} s around the joint. Lower \"joint_seconds\" "
                         "(e.g. 4).")
    if total < need:
        raise ValueError(f'{NODE}: the clip is {format_seconds(total / rate)} s long but "method" inpaint needs at least '
                         f'{format_seconds(need / rate)} s for "joint_seconds" {joint_seconds:g} (rounded up to '
                         f"{format_seconds(n_joint / rate)} s of whole model frames) and two {fade_seconds:g} s fades. Lower "
                         f'"joint_seconds", use a longer clip{INPAINT_FIX}.')
    half = total // 2
    r = torch.cat([x[..., half:], x[..., :half]], dim=-1)
    seam = total - half  # r[seam - 1] = x[T - 1], r[seam] = x[0]: the source's own seam
    width = min(total, hears)
    w0 = min(max(seam - width // 2, 0), total - width)
    a_rel = round((seam - w0 - n_joint / 2) / hop) * hop  # a whole number of frames into the window
    b_rel = a_rel + n_joint
    a, b = w0 + a_rel, w0 + b_rel
    if a_rel - n_fade < 0 or a - n_fade < 1 or b_rel + n_fade > width or b + n_fade > total - 1:
        raise ValueError(f'{NODE}: the clip is {format_seconds(total / rate)} s long, too short for "joint_seconds" '
                         f'{joint_seconds:g} and its fades. Lower "joint_seconds" or use a longer clip.')
    frame = a_rel // hop
    regions = [((frame + 0.5) * hop / rate, (frame + n_joint // hop + 0.5) * hop / rate)]  # mask frame rounding
    seconds = seconds_for(width, rate)
    run_steps = soundscape.resolve_defaults(pipe, steps, 0.0)[0]
    clips = x.shape[0]
    seeds = [seed_for(seed, k) for k in range(clips)]
    out = r.clone()
    correlations = []
    for k in range(clips):
        step = None if on_step is None else (lambda done, n, k=k: on_step(k * n + done, clips * n))
        gen, _ = soundscape.generate_soundscape(pipe, prompt, seconds=seconds, steps=run_steps, cfg=0.0,
                                                seed=seeds[k], on_step=step, stage=stage,
                                                decode_chunk_frames=decode_chunk_frames,
                                                reference=r[k:k + 1, :, w0:w0 + width], regenerate=regions)
        gen = gen[0].to(out.device)
        if out.shape[1] == 1:
            gen = gen.mean(0, keepdim=True)
        fade_in, r_in = cross_fade(r[k, :, a - n_fade:a], gen[:, a_rel - n_fade:a_rel])
        fade_out, r_out = cross_fade(gen[:, b_rel:b_rel + n_fade], r[k, :, b:b + n_fade])
        out[k, :, a - n_fade:a] = fade_in
        out[k, :, a:b] = gen[:, a_rel:b_rel]
        out[k, :, b:b + n_fade] = fade_out
        correlations.append((r_in, r_out))
    info = {"method": "inpaint", "sample_rate": rate, "rotation_samples": half, "joint_start": a, "joint_end": b,
            "fade_samples": n_fade, "window_start": w0, "window_samples": width, "loop_start": 0,
            "loop_end": total - 1, "steps": run_steps, "seeds": seeds, "correlations": correlations}
    log.debug("%s: inpainted joint %d..%d of %d samples, fades %d, correlations %s", NODE, a, b, total, n_fade,
              correlations)
    return out.contiguous(), info
