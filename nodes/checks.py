"""Input checks shared by every layer: numbers, seeds, sample rates (stdlib only, no ComfyUI).

Every message names the calling node (``node``, its display name), the input and the fix; the caller decides
the node, so shared code never speaks for a node it does not know.
"""
from __future__ import annotations

import math
import numbers

SEED_MAX = 2**64 - 1  # the seed inputs' maximum (ComfyUI's INT widgets hold 64 bits)
MAX_SAMPLE_RATE = 768_000  # Hz: the highest rate any node accepts (libsndfile's own WAV limit is higher)


def is_number(value) -> bool:
    """True for a finite int or float (``bool`` is not a number here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def seed_for(seed: int, index: int) -> int:
    """The seed of clip ``index`` in a batch that starts at ``seed``: ``seed + index``, wrapping past SEED_MAX."""
    return (int(seed) + index) % (SEED_MAX + 1)


def check_sample_rate(node: str, rate, what: str = '"audio" sample_rate') -> int:
    """``rate`` as an int, or a ``ValueError`` naming ``node`` and ``what`` when it is not a whole number of Hz
    from 1 to :data:`MAX_SAMPLE_RATE`."""
    if isinstance(rate, bool) or not isinstance(rate, numbers.Integral) or not 1 <= rate <= MAX_SAMPLE_RATE:
        raise ValueError(f"{node}: {what} is {rate!r} but must be a whole number of Hz (1..{MAX_SAMPLE_RATE}). "
                         "Connect an AUDIO output from a node that sets its sample rate.")
    return int(rate)


def format_seconds(value: float) -> str:
    """Seconds for a message: one decimal from 1 s up ("6.0"), three significant digits below ("0.0227")."""
    return f"{value:.1f}" if value >= 1 else f"{value:.3g}"


def check_seconds(node: str, name: str, value, *, positive: bool) -> float:
    """``value`` (seconds) as a float, or a ``ValueError`` naming ``node`` and the input ``name`` when it is not a
    finite number above 0 (``positive``) or at least 0."""
    if not is_number(value) or value < 0 or (positive and value == 0):
        need = "more than 0" if positive else "0 or more"
        example = "e.g. 2" if positive else "0 to turn it off"
        raise ValueError(f'{node}: "{name}" is {value} but must be a finite number of seconds, {need}. '
                         f'Set it to {example}.')
    return float(value)
