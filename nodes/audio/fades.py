"""Fade in / fade out with a choice of curve (plain functions, no ComfyUI)."""
from __future__ import annotations

import logging
import math
import numbers
from typing import TYPE_CHECKING

from ..checks import check_seconds
from .contract import cancel_blocks, check_clip

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

NODE = "Fade In / Out"
CURVES = ("linear", "equal-power", "exponential")
EXPONENTIAL_RANGE_DB = 60.0  # the exponential curve rises evenly in dB from -60 dB, then is rescaled to 0..1


def _check_curve(curve) -> str:
    if curve not in CURVES:
        raise ValueError(f'{NODE}: "curve" is {curve!r} but must be one of {", ".join(CURVES)}. Pick one of those.')
    return curve


def fade_curve(n: int, curve: str) -> "torch.Tensor":
    """A rising gain curve of ``n`` samples, from exactly 0.0 to exactly 1.0.

    With ``t = i / (n - 1)``: "linear" is ``t``; "equal-power" is ``sin(pi/2 t)``; "exponential" rises evenly in
    dB (perceptually even): ``(10**(-60 (1 - t) / 20) - 10**-3) / (1 - 10**-3)``.

    Args:
        n: number of samples, 0 or more. ``n = 1`` gives ``[0.0]`` (a one-sample fade mutes that sample).
        curve: one of :data:`CURVES`.

    Returns:
        ``float32 [n]``, non-decreasing; first value 0.0, last 1.0 (for ``n >= 2``).
    """
    import torch

    _check_curve(curve)
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise ValueError(f'{NODE}: fade length is {n!r} samples but must be a whole number, 0 or more.')
    n = int(n)
    if n <= 1:
        return torch.zeros(n, dtype=torch.float32)
    return _curve_at(torch.arange(n), n, curve)


def _curve_at(index: "torch.Tensor", n: int, curve: str) -> "torch.Tensor":
    """Values ``index`` (integers in ``0..n - 1``, ``n >= 2``) of :func:`fade_curve`'s curve, ``float32``."""
    import torch

    t = index.to(torch.float64) / (n - 1)
    if curve == "linear":
        g = t
    elif curve == "equal-power":
        g = torch.sin(t * (math.pi / 2))
    else:
        floor = 10.0 ** (-EXPONENTIAL_RANGE_DB / 20.0)
        g = (torch.pow(10.0, -EXPONENTIAL_RANGE_DB * (1.0 - t) / 20.0) - floor) / (1.0 - floor)
    g = g.clamp(0.0, 1.0)
    g[index == 0], g[index == n - 1] = 0.0, 1.0
    return g.float()


def _fade_samples(name: str, seconds, sample_rate: int, total: int) -> int:
    """Fade length in samples (0 = off, at least 1 when ``seconds`` > 0), or a ``ValueError`` naming ``name``."""
    seconds = check_seconds(NODE, name, seconds, positive=False)
    if seconds == 0:
        return 0
    n = max(1, round(seconds * sample_rate))
    if n > total:
        duration = total / sample_rate
        raise ValueError(f'{NODE}: "{name}" is {seconds:g} but the clip is only {duration:.3g} s long; a fade cannot be '
                         f'longer than the clip. Lower "{name}" to {duration:.3g} or less.')
    return n


def apply_fades(waveform: "torch.Tensor", sample_rate: int, fade_in_seconds: float = 0.0,
                fade_out_seconds: float = 0.0, curve: str = "equal-power", cancel=None) -> "torch.Tensor":
    """Fade the start of each clip in and its end out.

    The first ``round(fade_in_seconds * sample_rate)`` samples are multiplied by :func:`fade_curve`, the last
    ``round(fade_out_seconds * sample_rate)`` by the same curve reversed; a set fade (> 0 s) makes the first
    (resp. last) sample exactly 0.0. 0 s means no fade. A fade-in and a fade-out that together are longer than the
    clip overlap: the gains multiply where they do.

    Args:
        waveform: ``float [B, C, T]`` (a 2-D ``[C, T]`` is taken as one clip); not modified.
        sample_rate: Hz.
        fade_in_seconds: fade-in length in seconds, 0 to the clip length.
        fade_out_seconds: fade-out length in seconds, 0 to the clip length.
        curve: one of :data:`CURVES`: "linear", "equal-power" (``sin``) or "exponential" (even in dB over 60 dB).
        cancel: called between blocks of work (65,536 samples per channel each); raising from it stops (ComfyUI's
            Cancel).

    Returns:
        ``float32 [B, C, T]``, a new tensor on the input's device; bit-identical to a float32 input when both fades
        are 0.

    Raises:
        ValueError: starting with "Fade In / Out:", naming the input, its value and the fix.
    """
    import torch

    _check_curve(curve)
    x, sample_rate = check_clip(waveform, sample_rate, NODE, "fading cannot fix them", cancel)
    total = x.shape[-1]
    n_in = _fade_samples("fade_in_seconds", fade_in_seconds, sample_rate, total)
    n_out = _fade_samples("fade_out_seconds", fade_out_seconds, sample_rate, total)
    out = torch.empty(x.shape, dtype=torch.float32, device=x.device)  # x may be the input itself (or a view of it)
    for start, stop in cancel_blocks(total, cancel):
        out[..., start:stop] = x[..., start:stop]
    _fade(out, 0, n_in, curve, False, cancel)
    _fade(out, total - n_out, n_out, curve, True, cancel)
    return out


def _fade(out: "torch.Tensor", offset: int, n: int, curve: str, falling: bool, cancel) -> None:
    """``out[..., offset:offset + n] *=`` :func:`fade_curve` ``(n, curve)`` (reversed when ``falling``), in place,
    computed block by block with a Cancel point before each."""
    import torch

    if n == 1:
        out[..., offset] = 0.0
        return
    for start, stop in cancel_blocks(n, cancel):
        index = torch.arange(start, stop)
        gains = _curve_at(n - 1 - index if falling else index, n, curve)
        out[..., offset + start:offset + stop] *= gains.to(out.device)
