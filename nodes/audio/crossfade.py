"""The pack's one cross-fade: equal-power for uncorrelated material, correlation-adaptive for correlated material.

Equal-power (``sin``/``cos``) keeps the level steady for uncorrelated material such as ambience. For strongly
correlated material (the same tone at both ends) equal-power adds up to +3 dB in the middle of the fade, where
equal-gain would stay flat; above :data:`ADAPTIVE_ABOVE` the gains are scaled so that the expected power is exactly 1
for the measured correlation. Loops, Extend's joints, the inpainted loop's splices and Mix's layer repeats all use it.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

ADAPTIVE_ABOVE = 0.5  # correlation above which the cross-fade is correlation-adaptive rather than equal-power


def cross_fade_gains(n: int, r: float = 0.0) -> tuple["torch.Tensor", "torch.Tensor"]:
    """Fade-in and fade-out gains ``float64 [n]`` at ``t = (i + 0.5) / n`` for signals of correlation ``r``.

    Equal-power ``sin``/``cos`` scaled by ``1 / sqrt(1 + r sin(pi t))`` so that
    ``g_in**2 + g_out**2 + 2 r g_in g_out = 1``: ``r = 0`` is equal-power, ``r = 1`` is equal-gain
    (``g_in + g_out = 1``).
    """
    import torch

    t = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    g_in, g_out = torch.sin(t * math.pi / 2), torch.cos(t * math.pi / 2)
    if r:
        scale = 1.0 / torch.sqrt(1.0 + r * torch.sin(t * math.pi))
        g_in, g_out = g_in * scale, g_out * scale
    return g_in, g_out


def correlation(a: "torch.Tensor", b: "torch.Tensor") -> float:
    """Normalised correlation ``sum(a b) / sqrt(sum(a^2) sum(b^2))`` (no mean removal: it is what sets the power
    of ``a + b``); 0 when either is silent."""
    a, b = a.double(), b.double()
    denom = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    if denom == 0.0:
        return 0.0
    return max(-1.0, min(1.0, float((a * b).sum()) / denom))


def cross_fade(tail: "torch.Tensor", head: "torch.Tensor") -> tuple["torch.Tensor", float]:
    """Cross-fade ``tail`` out and ``head`` in (both ``[C, n]``): equal-power for uncorrelated material,
    correlation-adaptive above :data:`ADAPTIVE_ABOVE`, so the level through the joint stays steady either way.
    Returns ``(mixed [C, n] float32 on tail's device, correlation)``."""
    r = correlation(tail, head)
    g_in, g_out = (g.to(tail.device) for g in cross_fade_gains(tail.shape[-1], r if r > ADAPTIVE_ABOVE else 0.0))
    mixed = tail.double() * g_out + head.double() * g_in
    return mixed.float(), r
