"""The pack's one resampler: polyphase ``scipy.signal.resample_poly`` (Kaiser-windowed low-pass), exact lengths."""
from __future__ import annotations

import logging
import math
from fractions import Fraction
from typing import TYPE_CHECKING

from ..checks import check_sample_rate
from .contract import to_numpy

if TYPE_CHECKING:
    import numpy as np
    import torch

log = logging.getLogger(__name__)


def resampled_length(frames: int, sample_rate: int, target_rate: int) -> int:
    """How many samples ``frames`` samples at ``sample_rate`` become at ``target_rate`` (exact rational rounding)."""
    return round(Fraction(frames * target_rate, sample_rate))


def resample_array(data: "np.ndarray", sample_rate: int, target_rate: int) -> "np.ndarray":
    """``data [..., T]`` from ``sample_rate`` to ``target_rate`` along the last axis, exactly
    :func:`resampled_length` samples long; ``data`` itself when the rates match.

    ``up``/``down`` are ``target_rate``/``sample_rate`` divided by their gcd (44100 -> 48000 is 160/147).
    """
    import numpy as np
    from scipy.signal import resample_poly

    if sample_rate == target_rate:
        return data
    g = math.gcd(sample_rate, target_rate)
    out = resample_poly(data, target_rate // g, sample_rate // g, axis=-1)
    want = resampled_length(data.shape[-1], sample_rate, target_rate)
    if out.shape[-1] >= want:
        return out[..., :want]
    return np.concatenate([out, np.zeros(out.shape[:-1] + (want - out.shape[-1],), out.dtype)], axis=-1)


def resample(waveform: "torch.Tensor", sample_rate: int, target_rate: int, node: str = "Resample") -> "torch.Tensor":
    """Resample a tensor along its last axis with :func:`resample_array`.

    Args:
        waveform: ``float [..., T]``, e.g. ``[B, C, T]``, on any device.
        sample_rate: its rate, Hz.
        target_rate: the rate wanted, Hz.
        node: the calling node's display name, for the message when a rate is not a whole number of Hz.

    Returns:
        a new ``float32 [..., round(T * target_rate / sample_rate)]`` tensor on ``waveform``'s device.
    """
    import numpy as np
    import torch

    check_sample_rate(node, sample_rate, '"sample_rate"')
    check_sample_rate(node, target_rate, '"target_rate"')
    if sample_rate == target_rate:
        return waveform.detach().float().clone()
    log.debug("%s: resampling %d Hz audio to %d Hz", node, sample_rate, target_rate)
    out = resample_array(to_numpy(waveform), sample_rate, target_rate)
    return torch.from_numpy(np.array(out, dtype=np.float32, copy=True)).to(waveform.device)
