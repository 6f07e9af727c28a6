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
from ..models.families import is_sa3
from .inputs import (
    check_prompt,
    check_sampling,
    require_inpainting,
    require_sa3_handle,
    require_sa3_pipe,
    seconds_for,
)

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

INPAINT_CONTEXT_SECONDS = 60.0  # most audio around the joint the model hears (its maximum may be longer)
INPAINT_FIX = ' or set "method" to crossfade'
LOOP_METHODS = ("auto", "crossfade", "inpaint")  # Make Seamless Loop's "method"


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
    from . import soundscape

    x, joint, fade = _check_loop_inputs(pipe, waveform, sample_rate, prompt, joint_seconds, fade_seconds, steps, seed)
    rate = soundscape.sample_rate_of(pipe)
    g = _joint_plan(pipe, x.shape[-1], rate, joint, fade, joint_seconds, fade_seconds)
    run_steps = soundscape.resolve_defaults(pipe, steps, 0.0)[0]
    seeds = [seed_for(seed, k) for k in range(x.shape[0])]
    out, correlations = _inpaint_clips(pipe, x, g, prompt, run_steps, seeds, on_step, stage, decode_chunk_frames)
    a, b, total = g["w0"] + g["a_rel"], g["w0"] + g["b_rel"], g["total"]
    info = {"method": "inpaint", "sample_rate": rate, "rotation_samples": g["half"], "joint_start": a, "joint_end": b,
            "fade_samples": g["n_fade"], "window_start": g["w0"], "window_samples": g["width"], "loop_start": 0,
            "loop_end": total - 1, "steps": run_steps, "seeds": seeds, "correlations": correlations}
    log.debug("%s: inpainted joint %d..%d of %d samples, fades %d, correlations %s", NODE, a, b, total, g["n_fade"],
              correlations)
    return out.contiguous(), info


def _inpaint_clips(pipe, x, g: dict, prompt: str, steps: int, seeds: list, on_step, stage, decode_chunk_frames):
    """``(looped [B, C, T], correlations)``: each clip rotated by half, its joint regenerated and spliced in."""
    import torch

    from .soundscape import generate_soundscape

    half, w0, width = g["half"], g["w0"], g["width"]
    r = torch.cat([x[..., half:], x[..., :half]], dim=-1)
    seconds = seconds_for(width, int(pipe.vae.config.sampling_rate))
    out = r.clone()
    correlations = []
    clips = x.shape[0]
    for k in range(clips):
        step = None if on_step is None else (lambda done, n, k=k: on_step(k * n + done, clips * n))
        gen, _ = generate_soundscape(pipe, prompt, seconds=seconds, steps=steps, cfg=0.0, seed=seeds[k],
                                     on_step=step, stage=stage, decode_chunk_frames=decode_chunk_frames,
                                     reference=r[k:k + 1, :, w0:w0 + width], regenerate=g["regions"])
        correlations.append(_splice(out[k], r[k], gen[0].to(out.device), w0, g["a_rel"], g["b_rel"], g["n_fade"]))
    return out, correlations


def _check_loop_inputs(pipe, waveform, sample_rate, prompt, joint_seconds, fade_seconds, steps, seed):
    """``(x, joint seconds, fade seconds)``: the checked clip ``float [B, C, T]`` at the model's rate, as 1 or the model's
    channels; ``ValueError`` naming the input otherwise (a Stable Audio Open model first)."""
    from .soundscape import sample_rate_of

    require_sa3_pipe(NODE, pipe, INPAINT_FIX)
    require_inpainting(NODE, pipe, 'Set "method" to crossfade')
    x, sample_rate = check_clip(waveform, sample_rate, NODE, "this node cannot loop them")
    joint = check_seconds(NODE, "joint_seconds", joint_seconds, positive=True)
    fade = check_seconds(NODE, "fade_seconds", fade_seconds, positive=True)
    check_prompt(NODE, prompt)
    check_sampling(NODE, steps=steps, seed=seed)
    x = resample(x, sample_rate, sample_rate_of(pipe), NODE)
    channels = int(pipe.vae.config.audio_channels)
    if x.shape[1] not in (1, channels):
        x = x.mean(1, keepdim=True).repeat(1, channels, 1)
    return x, joint, fade


def _joint_plan(pipe, total: int, rate: int, joint: float, fade: float, joint_seconds, fade_seconds) -> dict:
    """Where the joint goes in the rotated clip: the window the model hears (``w0``, ``width``), the joint in it
    (``a_rel``..``b_rel``, whole latent frames), the fade length and the regenerated region in seconds; a
    ``ValueError`` when the clip or the model's hearing is too short for the joint and its fades."""
    from .sa3 import hop_of
    from .soundscape import max_seconds_of

    hop = hop_of(pipe.vae)
    n_joint = max(2, math.ceil(joint * rate / hop)) * hop  # whole latent frames: the model regenerates frames
    n_fade = max(1, round(fade * rate))
    need = n_joint + 2 * n_fade + hop + 8  # the joint may sit up to half a frame off centre; 1 sample kept each end
    hears = math.floor(min(max_seconds_of(pipe), INPAINT_CONTEXT_SECONDS) * rate)
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
    return {"total": total, "half": half, "w0": w0, "width": width, "a_rel": a_rel, "b_rel": b_rel,
            "n_fade": n_fade, "regions": regions}


def _splice(out, r, gen, w0: int, a_rel: int, b_rel: int, n_fade: int) -> tuple[float, float]:
    """Write the model's joint ``gen [C', width]`` (window from ``w0``) into ``out [C, T]`` (a copy of the rotated
    clip ``r``) with cross-fades at both edges; returns the two fades' correlations."""
    a, b = w0 + a_rel, w0 + b_rel
    if out.shape[0] == 1:
        gen = gen.mean(0, keepdim=True)
    fade_in, r_in = cross_fade(r[:, a - n_fade:a], gen[:, a_rel - n_fade:a_rel])
    fade_out, r_out = cross_fade(gen[:, b_rel:b_rel + n_fade], r[:, b:b + n_fade])
    out[:, a - n_fade:a] = fade_in
    out[:, a:b] = gen[:, a_rel:b_rel]
    out[:, b:b + n_fade] = fade_out
    return r_in, r_out


def choose_loop_method(method: str, handle, prompt, node: str = NODE) -> str:
    """Which method Make Seamless Loop runs: "crossfade" or "inpaint" ("auto": inpaint when ``handle`` is a Stable
    Audio 3 model), or a ``ValueError`` naming ``node`` and what is missing (a model, a Stable Audio 3 model, a
    prompt)."""
    if method not in LOOP_METHODS:
        raise ValueError(f'{node}: "method" is {method!r} but must be one of {", ".join(LOOP_METHODS)}. Pick one.')
    if method == "crossfade" or (method == "auto" and not is_sa3(handle)):
        return "crossfade"
    if handle is None:
        raise ValueError(f'{node}: "method" is inpaint but no "model" is connected. Connect Load Stable Audio Model '
                         f'(a Stable Audio 3 folder) to "model"{INPAINT_FIX}.')
    require_sa3_handle(node, handle, INPAINT_FIX)
    if not isinstance(prompt, str) or not prompt.strip():
        given = "not connected" if prompt is None else f"{prompt!r}"
        raise ValueError(f'{node}: "method" is {method} with a Stable Audio 3 model, so the joint is regenerated, '
                         f'but "prompt" is {given}. Connect the prompt the clip was made with (e.g. Build Ambient '
                         f'Prompt\'s prompt) to "prompt"{INPAINT_FIX}.')
    return "inpaint"
