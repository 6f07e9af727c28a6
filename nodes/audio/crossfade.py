"""The pack's one cross-fade: power-preserving for the measured correlation of the two sides.

The expected power of ``g_in head + g_out tail`` is ``g_in**2 + g_out**2 + 2 r g_in g_out`` for sides of equal level
and normalised correlation ``r``. Equal-power (``sin``/``cos``) makes it 1 only at ``r = 0``: correlated ends (the
same tone in phase) swell by up to ``10 log10(1 + r)`` dB mid-fade (+1.8 dB at ``r = 0.5``), anti-correlated ends dip
(-24 dB measured for a drone at ``r = -1``). So the gains are scaled by ``1 / sqrt(1 + r sin(pi t))`` for every ``r``
(correlation-adaptive), which makes that power exactly 1. Below :data:`EQUAL_POWER_WITHIN` in magnitude the scale
differs from 1 by under 0.4 dB and plain equal-power is used (the method reported for ambience).

For strongly anti-correlated ends no gains can work: at ``r = -1`` the sides cancel where ``g_in = g_out`` and the
scale grows without bound. The correlation given to the gains is therefore floored at :data:`MIN_CORRELATION`
(at most +3 dB of gain mid-fade), and the loop, which may choose where it cuts, first moves its cut earlier by up to
one period of 20 Hz so the two ends are in phase (:func:`align_cut`; method "phase-aligned"). Extend's joints and
the inpainted loop's splices cannot move and keep the floored gains. Loops, Extend's joints, the inpainted loop's
splices and Mix's layer repeats all use this module.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from .contract import cancel_blocks

if TYPE_CHECKING:
    import torch

EQUAL_POWER_WITHIN = 0.1  # |correlation| below which the fade is plain equal-power (adaptive differs by < 0.4 dB)
MIN_CORRELATION = -0.5  # the gains' correlation floor: at most 1 / sqrt(1 - 0.5) = +3 dB of gain mid-fade
ALIGN_SECONDS = 0.05  # how far a loop may move its cut to bring anti-correlated ends in phase (a 20 Hz period)


def cross_fade_gains(n: int, r: float = 0.0) -> tuple["torch.Tensor", "torch.Tensor"]:
    """Fade-in and fade-out gains ``float64 [n]`` at ``t = (i + 0.5) / n`` for signals of correlation ``r``.

    Equal-power ``sin``/``cos`` scaled by ``1 / sqrt(1 + r sin(pi t))`` so that
    ``g_in**2 + g_out**2 + 2 r g_in g_out = 1``: ``r = 0`` is equal-power, ``r = 1`` is equal-gain
    (``g_in + g_out = 1``). ``r`` is floored at :data:`MIN_CORRELATION`.
    """
    import torch

    t = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    g_in, g_out = torch.sin(t * math.pi / 2), torch.cos(t * math.pi / 2)
    if r:
        scale = 1.0 / torch.sqrt(1.0 + max(r, MIN_CORRELATION) * torch.sin(t * math.pi))
        g_in, g_out = g_in * scale, g_out * scale
    return g_in, g_out


def fade_method(r: float) -> str:
    """"equal-power" when ``|r|`` is below :data:`EQUAL_POWER_WITHIN`, else "correlation-adaptive"."""
    return "equal-power" if abs(r) < EQUAL_POWER_WITHIN else "correlation-adaptive"


def correlation(a: "torch.Tensor", b: "torch.Tensor", cancel=None) -> float:
    """Normalised correlation ``sum(a b) / sqrt(sum(a^2) sum(b^2))`` (no mean removal: it is what sets the power
    of ``a + b``); 0 when either is silent. Summed in blocks along the last axis, ``cancel()`` before each."""
    ab = aa = bb = 0.0
    for start, stop in cancel_blocks(a.shape[-1], cancel):
        x, y = a[..., start:stop].double(), b[..., start:stop].double()
        ab, aa, bb = ab + float((x * y).sum()), aa + float((x * x).sum()), bb + float((y * y).sum())
    denom = math.sqrt(aa * bb)
    if denom == 0.0:
        return 0.0
    return max(-1.0, min(1.0, ab / denom))


def align_cut(x: "torch.Tensor", end: int, n: int, max_shift: int) -> int:
    """How many samples (``0..max_shift``) to move a loop's cut earlier so its tail ``x[..., end - k - n:end - k]``
    best correlates with its head ``x[..., :n]`` (``x``: ``[B, C, T]``, all clips and channels together, so the
    batch keeps one length). Cross-correlation by FFT; 0 when no shift raises the correlation."""
    import torch

    if max_shift < 1:
        return 0
    head = x[..., :n].double().reshape(-1, n)
    span = x[..., end - n - max_shift:end].double().reshape(head.shape[0], -1)  # [rows, n + max_shift]
    m = span.shape[-1]
    spectrum = torch.fft.rfft(span, m) * torch.fft.rfft(head, m).conj()
    dots = torch.fft.irfft(spectrum, m)[:, :max_shift + 1].sum(0)  # dots[j]: tail starting at j in span
    cs = torch.cat([span.new_zeros(1), torch.cumsum((span * span).sum(0), 0)])
    energy = cs[n:n + max_shift + 1] - cs[:max_shift + 1]
    r = dots / torch.sqrt(energy * float((head * head).sum())).clamp(min=1e-300)
    best = int(torch.argmax(r))  # start index in span; the shift is max_shift - start
    return max_shift - best if float(r[best]) > float(r[max_shift]) + 1e-9 else 0


def cross_fade(tail: "torch.Tensor", head: "torch.Tensor", cancel=None) -> tuple["torch.Tensor", float]:
    """Cross-fade ``tail`` out and ``head`` in (both ``[C, n]``) with gains that keep the expected power at 1 for
    their measured correlation (equal-power when it is near 0), so the level through the joint stays steady.
    Returns ``(mixed [C, n] float32 on tail's device, correlation)``. Long fades run in blocks, ``cancel()``
    before each (raising from it stops: ComfyUI's Cancel)."""
    import torch

    r = correlation(tail, head, cancel)
    gain_r = 0.0 if fade_method(r) == "equal-power" else r
    g_in, g_out = (g.to(tail.device) for g in cross_fade_gains(tail.shape[-1], gain_r))
    mixed = torch.empty(tail.shape, dtype=torch.float32, device=tail.device)
    for start, stop in cancel_blocks(tail.shape[-1], cancel):
        part = tail[..., start:stop].double() * g_out[start:stop] + head[..., start:stop].double() * g_in[start:stop]
        mixed[..., start:stop] = part
    return mixed, r
