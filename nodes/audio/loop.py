"""Seamless loops: cross-fade a clip's tail into its head so it repeats without a click or a level dip
(plain functions, no ComfyUI).

The cross-fade (:mod:`.crossfade`) keeps the expected power at 1 for the measured correlation of the two overlapping
regions: equal-power for uncorrelated ambience, correlation-adaptive otherwise. Drones whose ends are strongly in
anti-phase (correlation below -0.5) would cancel mid-fade whatever the gains, so there the cut is first moved earlier
by up to 50 ms (one period of 20 Hz) to where the ends are in phase ("phase-aligned").
"""
from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

from ..checks import check_seconds, format_seconds
from .contract import cancel_blocks, check_clip
from .crossfade import ALIGN_SECONDS, MIN_CORRELATION, align_cut, correlation, cross_fade, fade_method

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

NODE = "Make Seamless Loop"
WINDOW_SECONDS = 0.05  # short-term RMS window: cut-point search and the seam level
AROUND_SECONDS = 1.0  # span around the joint for loop_seam_metrics' reference level
_FLOOR_DB = -200.0  # level of digital silence


def _short_term_energy(mono: "torch.Tensor", centres: "torch.Tensor", half: int, cancel=None) -> "torch.Tensor":
    """Mean square of ``mono float64 [T]`` over ``[c - half, c + half)`` for each centre ``c``, clipped to the clip;
    in blocks (running sum carried), ``cancel()`` before each."""
    import torch

    total = mono.shape[-1]
    cs = mono.new_zeros(total + 1)
    for start, stop in cancel_blocks(total, cancel):
        cs[start + 1:stop + 1] = torch.cumsum(torch.cat([cs[start:start + 1], mono[start:stop]]), 0)[1:]
    levels = mono.new_empty(centres.shape[0])
    for start, stop in cancel_blocks(centres.shape[0], cancel):
        lo = (centres[start:stop] - half).clamp(0, total)
        hi = (centres[start:stop] + half).clamp(0, total)
        levels[start:stop] = (cs[hi] - cs[lo]) / (hi - lo).clamp(min=1)
    return levels


def find_quiet_end(waveform: "torch.Tensor", sample_rate: int, search_samples: int, min_end: int,
                   cancel=None) -> int:
    """The end position (exclusive sample index) in the last ``search_samples`` of the clip where the sound is
    quietest: the minimum short-term RMS over 50 ms windows centred on the candidate, computed on the channel mean
    (summed over the batch, so every clip is cut at the same point). Ties go to the latest candidate (least cut).

    Args:
        waveform: ``float32 [B, C, T]``.
        sample_rate: Hz.
        search_samples: how far back from the end to look, in samples.
        min_end: the earliest allowed end, in samples.
        cancel: called between blocks of work; raising from it stops (ComfyUI's Cancel).

    Returns:
        the new length ``T'`` with ``max(T - search_samples, min_end) <= T' <= T``.
    """
    import torch

    total = waveform.shape[-1]
    first = max(total - search_samples, min_end)
    if first >= total:
        return total
    half = max(1, round(WINDOW_SECONDS * sample_rate / 2))
    start = max(first - half, 0)  # only the searched end of the clip (plus half a window) is read
    energy = torch.empty(total - start, dtype=torch.float64, device=waveform.device)
    for lo, hi in cancel_blocks(total - start, cancel):
        mono = waveform[..., start + lo:start + hi].double().mean(dim=1)  # [B, hi - lo]
        energy[lo:hi] = (mono * mono).sum(dim=0)
    centres = torch.arange(first - start, total - start + 1, device=energy.device)
    levels = _short_term_energy(energy, centres, half, cancel)
    last_min = levels.numel() - 1 - int(torch.argmin(levels.flip(0)))
    return start + int(centres[last_min])


def _overlap_samples(total: int, sample_rate: int, overlap_seconds, search_seconds) -> tuple[int, float]:
    """``(N, search_seconds)``: the overlap in samples, at least 1 and at most half the clip of ``total`` samples,
    or a ``ValueError`` naming the input and the fix."""
    overlap = check_seconds(NODE, "overlap_seconds", overlap_seconds, positive=True)
    search = check_seconds(NODE, "search_seconds", search_seconds, positive=False)
    duration = total / sample_rate
    n = round(overlap * sample_rate)
    if n < 1:
        raise ValueError(f'{NODE}: "overlap_seconds" is {overlap_seconds} which is less than one sample at '
                         f'{sample_rate} Hz. Set it to e.g. 2.')
    if 2 * n > total:
        raise ValueError(f'{NODE}: "overlap_seconds" is {overlap_seconds:g} but the clip is only '
                         f'{format_seconds(duration)} s long; the overlap must be at most half the clip '
                         f'({format_seconds(duration / 2)} s). Lower "overlap_seconds" or use a longer clip.')
    return n, search


def make_seamless_loop(waveform: "torch.Tensor", sample_rate: int, overlap_seconds: float = 2.0,
                       search_seconds: float = 0.0, cancel=None) -> tuple["torch.Tensor", dict]:
    """Make a clip loop seamlessly by cross-fading its last ``overlap_seconds`` into its first.

    With ``T`` samples and an overlap of ``N = round(overlap_seconds * sample_rate)`` samples, the output has
    ``T - N`` samples: ``out[i] = x[i] g_in(t_i) + x[T - N + i] g_out(t_i)`` for ``i < N`` with
    ``t_i = (i + 0.5) / N`` (the tail fades out while the head fades in), then ``out[N:] = x[N:T - N]``. Played
    twice in a row, the last sample ``x[T - N - 1]`` is followed by about ``x[T - N]`` (``g_out`` is about 1
    there), which is what followed it in the source, so there is no click.

    For each clip the normalised correlation ``r`` of the two overlapping regions (all channels) is measured and
    the gains are scaled to ``g_in**2 + g_out**2 + 2 r g_in g_out = 1`` (correlation-adaptive: equal-gain at
    ``r = 1``; plain equal-power ``sin``/``cos`` when ``|r| < 0.1``, as for ambience). When a clip's ends are
    anti-correlated below -0.5 (a drone cut in anti-phase), no gains keep the level, so the cut is first moved
    earlier by up to 50 ms to where head and tail correlate best over the batch ("phase-aligned"; the moved
    samples count in ``trimmed_samples`` and ``aligned_samples``).

    Args:
        waveform: ``float [B, C, T]`` (a 2-D ``[C, T]`` is taken as one clip); not modified.
        sample_rate: Hz.
        overlap_seconds: cross-fade length in seconds, more than 0 and at most half the clip (after any trim).
        search_seconds: 0 = off. Otherwise, first trim the clip's end to the quietest point (minimum 50 ms RMS of
            the channel mean, over the whole batch) within its last ``search_seconds``, so the cut falls where the
            sound is quiet; the output is shorter by the trimmed amount too. Longer than the clip means the whole
            clip (never trimming below twice the overlap).
        cancel: called between blocks of work (the quiet-end search, the correlation, the cross-fade and the copy,
            65,536 samples per channel each); raising from it stops (ComfyUI's Cancel).

    Returns:
        ``(looped, info)``: ``looped`` is ``float32 [B, C, T - N - trimmed]`` on the input's device; ``info`` is
        ``{"overlap_samples": N, "trimmed_samples": k, "loop_start": 0, "loop_end": T_out - 1,
        "aligned_samples": a, "correlation": r, "method": "equal-power" | "correlation-adaptive" | "phase-aligned",
        "correlations": [r per clip], "methods": [method per clip]}``; ``correlation`` is the largest over the batch
        and ``method`` is "phase-aligned" if the cut moved, else "correlation-adaptive" if any clip used it.

    Raises:
        ValueError: starting with "Make Seamless Loop:", naming the input, its value and the fix.
    """
    x, sample_rate = check_clip(waveform, sample_rate, NODE, "this node cannot loop them", cancel)
    n, search = _overlap_samples(x.shape[-1], sample_rate, overlap_seconds, search_seconds)
    total = end = x.shape[-1]
    if search > 0:
        end = find_quiet_end(x, sample_rate, min(total, round(search * sample_rate)), 2 * n, cancel)
    aligned = 0
    if min(correlation(x[b, :, end - n:end], x[b, :, :n], cancel) for b in range(x.shape[0])) < MIN_CORRELATION:
        aligned = align_cut(x, end, n, min(round(ALIGN_SECONDS * sample_rate), end - 2 * n))
        end -= aligned
    joints = [cross_fade(x[b, :, end - n:end], x[b, :, :n], cancel) for b in range(x.shape[0])]
    correlations = [r for _, r in joints]
    methods = ["phase-aligned" if aligned else fade_method(r) for r in correlations]
    looped = _joined([mixed for mixed, _ in joints], x, n, end, cancel)
    log.debug("%s: overlap %d samples, trimmed %d, correlation %s", NODE, n, total - end, correlations)
    return looped, {
        "overlap_samples": n, "trimmed_samples": total - end, "aligned_samples": aligned, "loop_start": 0,
        "loop_end": looped.shape[-1] - 1, "correlation": max(correlations),
        "method": next((m for m in ("phase-aligned", "correlation-adaptive") if m in methods), "equal-power"),
        "correlations": correlations, "methods": methods,
    }


def _joined(faded: list, x: "torch.Tensor", n: int, end: int, cancel) -> "torch.Tensor":
    """The loop ``[B, C, end - n]``: each clip's cross-faded joint (``faded[b]``, ``[C, n]``), then
    ``x[..., n:end - n]``, copied block by block with a Cancel point before each."""
    import torch

    looped = torch.empty((*x.shape[:-1], end - n), dtype=x.dtype, device=x.device)
    for b, mixed in enumerate(faded):
        looped[b, :, :n] = mixed
    for start, stop in cancel_blocks(end - 2 * n, cancel):
        looped[..., n + start:n + stop] = x[..., n + start:n + stop]
    return looped


def _db(mean_square: float) -> float:
    return 10.0 * math.log10(mean_square) if mean_square > 0 else _FLOOR_DB


def loop_seam_metrics(waveform: "torch.Tensor", sample_rate: int) -> dict:
    """How well a clip loops: play it twice in a row and measure the joint.

    The clip is treated as circular, so clips shorter than the 1 s reference span work too.

    Args:
        waveform: ``float [B, C, T]`` or ``[C, T]``.
        sample_rate: Hz.

    Returns:
        ``{"seam_jump": |x[0] - x[T - 1]|, max over batch and channels,
        "median_jump": median |x[i + 1] - x[i]| inside the clip (all clips and channels),
        "level_db_at_seam": RMS level in dB (re full scale 1.0) of the 50 ms centred on the joint,
        "level_db_around": RMS level in dB of the 1 s centred on the joint, less those 50 ms}``;
        digital silence reads -200 dB.
    """
    import torch

    x, sample_rate = check_clip(waveform, sample_rate, NODE, "this node cannot loop them")
    total = x.shape[-1]
    seam_jump = float((x[..., 0].double() - x[..., -1].double()).abs().max())
    median_jump = float(x.diff(dim=-1).abs().median()) if total > 1 else 0.0
    half = max(1, round(WINDOW_SECONDS * sample_rate / 2))
    around = max(half + 1, round(AROUND_SECONDS * sample_rate / 2))
    offsets = torch.arange(-around, around, device=x.device)
    span = x[..., offsets % total].double() ** 2  # the clip played twice: index 0 of offsets is the first sample after the joint
    inner = (offsets >= -half) & (offsets < half)
    return {
        "seam_jump": seam_jump,
        "median_jump": median_jump,
        "level_db_at_seam": _db(float(span[..., inner].mean())),
        "level_db_around": _db(float(span[..., ~inner].mean())),
    }
