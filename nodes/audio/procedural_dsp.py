"""Building blocks of the procedural engine (numpy + scipy, no model): filters that carry their state from block to
block, slow random processes at a control rate, Poisson impulse trains and scheduled events.

Every block the engine asks for is a whole number of control hops (:func:`hop_of`), so slow processes and events
line up exactly across blocks: the same seed gives the same samples whatever the block size in hops.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

CONTROL_HZ = 100  # control rate of envelopes and slow processes (one value per hop)


def hop_of(sample_rate: int) -> int:
    """Samples per control hop: ``sample_rate / 100`` rounded down (441 at 44.1 kHz)."""
    return max(1, sample_rate // CONTROL_HZ)


class Filter:
    """An IIR filter in second-order sections over ``channels`` channels whose state carries across calls."""

    def __init__(self, sos, channels: int = 2):
        import numpy as np

        self.sos = np.asarray(sos, dtype=np.float64)
        self.zi = np.zeros((self.sos.shape[0], channels, 2))

    def __call__(self, x: "np.ndarray") -> "np.ndarray":
        from scipy.signal import sosfilt

        y, self.zi = sosfilt(self.sos, x, axis=-1, zi=self.zi)
        return y


def butter(kind: str, hz, sample_rate: int, order: int = 2, channels: int = 2) -> Filter:
    """A Butterworth :class:`Filter` (``kind``: "lowpass", "highpass", "bandpass"; ``hz`` one edge or two), its
    edges clamped below Nyquist."""
    from scipy.signal import butter as design

    nyq = sample_rate / 2
    edges = [min(float(f), 0.45 * sample_rate) / nyq for f in (hz if isinstance(hz, (list, tuple)) else [hz])]
    return Filter(design(order, edges if len(edges) > 1 else edges[0], btype=kind, output="sos"), channels)


def chain(*filters: Filter) -> Filter:
    """Filters in cascade as one :class:`Filter` (one pass over the samples instead of one per filter); the filters
    must be fresh (zero state) and have the same channel count."""
    import numpy as np

    return Filter(np.concatenate([f.sos for f in filters]), filters[0].zi.shape[1])


def resonator(hz: float, q: float, sample_rate: int, channels: int = 2) -> Filter:
    """A two-pole band-pass resonance at ``hz`` with quality ``q`` (peak gain 1): a drop, a bubble, a snap."""
    from scipy.signal import iirpeak, tf2sos

    return Filter(tf2sos(*iirpeak(min(hz, 0.45 * sample_rate), q, fs=sample_rate)), channels)


def pink_filter(channels: int = 2) -> Filter:
    """Pink (-3 dB/octave) from white noise: J. O. Smith's 3-pole/3-zero fit (Spectral Audio Signal Processing,
    "Example: Synthesis of 1/F Noise"), within 0.3 dB of 1/f over 3 decades; gain set for unit power at 1 kHz,
    44.1 kHz."""
    from scipy.signal import tf2sos

    b = [0.049922035, -0.095993537, 0.050612699, -0.004408786]
    a = [1.0, -2.494956002, 2.017265875, -0.522189400]
    return Filter(tf2sos(b, a), channels)


def brown_filter(sample_rate: int, channels: int = 2) -> Filter:
    """Brown (-6 dB/octave) from white noise: a leaky integrator with its corner at 20 Hz (no inaudible sub-bass eating headroom),
    scaled to unit gain at 1 kHz."""
    p = math.exp(-2 * math.pi * 20.0 / sample_rate)
    gain = abs(1 - p * complex(math.cos(2 * math.pi * 1000 / sample_rate), -math.sin(2 * math.pi * 1000 / sample_rate)))
    return Filter([[gain, 0.0, 0.0, 1.0, -p, 0.0]], channels)


class Slow:
    """A slow random process at the control rate: white noise through two one-pole low-passes of time constant
    ``seconds`` (an Ornstein-Uhlenbeck-like process), scaled to unit variance, ``channels`` independent rows."""

    def __init__(self, rng, seconds: float, channels: int = 1):
        import numpy as np

        p = math.exp(-1.0 / (seconds * CONTROL_HZ))
        self.rng, self.channels = rng, channels
        self.filter = Filter([[1 - p, 0, 0, 1, -p, 0], [1 - p, 0, 0, 1, -p, 0]], channels)
        # unit variance: the impulse response's energy (a closed form would hide the same sum)
        n = int(20 * seconds * CONTROL_HZ) + 10
        h = Filter(self.filter.sos, 1)(np.r_[1.0, np.zeros(n - 1)][None])
        self.scale = 1.0 / math.sqrt(float((h ** 2).sum()))
        # start in the stationary state, not at zero: draw the warm-up once
        self.filter(self.rng.standard_normal((channels, n)))
        self.last = self.filter(self.rng.standard_normal((channels, 1)))[:, -1] * self.scale

    def control(self, frames: int) -> "np.ndarray":
        """The next ``frames`` control values ``[channels, frames]``."""
        return self.filter(self.rng.standard_normal((self.channels, frames))) * self.scale

    def samples(self, frames: int, hop: int, shape=None) -> "np.ndarray":
        """The next ``frames`` control values interpolated to ``frames * hop`` samples ``[channels, frames * hop]``,
        continuous across calls; ``shape`` (a function of an array, e.g. ``np.exp``) maps them first, at the control
        rate (a smooth map of a slow process is itself slow, so interpolating after it is as good and far cheaper)."""
        raw = self.control(frames)
        ctrl, last = (raw, self.last) if shape is None else (shape(raw), shape(self.last))
        self.last = raw[:, -1]
        return upsample(ctrl, last, hop)


def upsample(ctrl: "np.ndarray", last: "np.ndarray", hop: int) -> "np.ndarray":
    """Control values ``[C, F]`` (after ``last [C]``) linearly interpolated to ``[C, F * hop]`` samples (sample
    ``j * hop + i`` of hop ``j`` lies ``(i + 1) / hop`` of the way from knot ``j`` to knot ``j + 1``)."""
    import numpy as np

    channels, frames = ctrl.shape
    knots = np.concatenate([np.reshape(last, (channels, 1)), ctrl], axis=1)
    step = np.arange(1, hop + 1) / hop
    out = knots[:, :-1, None] + np.diff(knots, axis=1)[:, :, None] * step
    return out.reshape(channels, frames * hop)


def impulses(rng, rate_hz: float, n: int, sample_rate: int, channels: int = 2, weight=None,
             shape: float = 0.0, hop: int = 1, cap: float | None = None) -> "np.ndarray":
    """A Poisson impulse train ``[channels, n]`` of about ``rate_hz`` impulses a second per channel.

    Args:
        weight: optional ``[n // hop]`` in 0..1; an impulse at sample ``i`` is kept with probability
            ``weight[i // hop]`` (``hop`` 1: one weight a sample; a control hop: one a hop).
        shape: 0 for unit-exponential amplitudes; above 0 a Pareto tail of that index (rare loud ones).
        cap: optional ceiling of the (signed) amplitudes (the loudest snaps held at ``cap``).
    """
    import numpy as np

    out = np.zeros((channels, n))
    for c in range(channels):
        count = rng.poisson(rate_hz * n / sample_rate)
        pos = rng.integers(0, n, count)
        amp = rng.pareto(shape, count) if shape > 0 else rng.exponential(1.0, count)
        amp *= rng.choice((-1.0, 1.0), count)
        if weight is not None:
            amp *= rng.random(count) < weight[pos // hop]
        np.add.at(out[c], pos, amp if cap is None else np.minimum(amp, cap))
    return out


class Resonators:
    """Parallel two-pole resonances, each rung by its own sparse Poisson impulse train (unit-exponential amplitudes,
    random signs), in one filter pass: the same sound as one :func:`impulses` train through each :func:`resonator`
    summed, computed as sum_j K_j * i_j through 1 / (D_1 ... D_J), where D_j is resonance j's denominator and K_j
    its numerator times the other denominators, a short FIR laid at each impulse (the trains are sparse)."""

    def __init__(self, resonators: list, gain: float = 1.0, channels: int = 2):
        import numpy as np

        dens = [f.sos[0, 3:] for f in resonators]
        self.kernels = []
        for j, f in enumerate(resonators):
            k = f.sos[0, :3] * gain
            for i, d in enumerate(dens):
                if i != j:
                    k = np.convolve(k, d)
            self.kernels.append(k)
        self.poles = Filter([[1.0, 0.0, 0.0, *d] for d in dens], channels)
        self.spill = np.zeros((channels, self.kernels[0].size - 1))

    def __call__(self, rng, rate_hz: float, n: int, sample_rate: int) -> "np.ndarray":
        """The next ``n`` samples ``[channels, n]``, each resonance rung about ``rate_hz`` times a second a channel
        (the impulses drawn in :func:`impulses`' order: resonance by resonance, channel by channel)."""
        import numpy as np

        channels, taps = self.spill.shape[0], self.kernels[0].size
        e = np.zeros((channels, n + taps - 1))
        e[:, :taps - 1] = self.spill
        for kernel in self.kernels:
            for c in range(channels):
                count = rng.poisson(rate_hz * n / sample_rate)
                pos = rng.integers(0, n, count)
                amp = rng.exponential(1.0, count) * rng.choice((-1.0, 1.0), count)
                np.add.at(e[c], pos[:, None] + np.arange(taps), amp[:, None] * kernel)
        self.spill = e[:, n:].copy()
        return self.poles(e[:, :n])


class Events:
    """Events at random gaps (``gap(rng)`` seconds), each drawn by ``make(rng, start_seconds)`` as a dict with at
    least ``"end"`` (seconds); :meth:`active` lists those sounding in a window. ``first`` is the first start."""

    def __init__(self, rng, gap, make, first: float = 0.0):
        self.rng, self.gap, self.make = rng, gap, make
        self.next_start, self.live = first, []

    def active(self, t0: float, t1: float) -> list:
        """Events that overlap ``[t0, t1)`` seconds (drawing new ones as time passes; old ones are dropped)."""
        while self.next_start < t1:
            self.live.append(self.make(self.rng, self.next_start))
            self.next_start += self.gap(self.rng)
        self.live = [e for e in self.live if e["end"] > t0]
        return self.live


def soft_clip(x: "np.ndarray", knee: float = 0.9) -> "np.ndarray":
    """``x`` unchanged below ``knee``; above it bent smoothly towards 1.0 so no sample passes full scale."""
    import numpy as np

    if x.size == 0 or (x.max() <= knee and x.min() >= -knee):  # two reductions: no temporary array
        return x
    over = np.abs(x) > knee
    if over.any():
        head = 1.0 - knee
        x = x.copy()
        x[over] = np.sign(x[over]) * (knee + head * np.tanh((np.abs(x[over]) - knee) / head))
    return x
