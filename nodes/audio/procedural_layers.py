"""The procedural layers: one class per sound, each rendering the next ``frames`` control hops of two channels.

A layer with ``stereo = False`` returns two independent sources of the same sound; the engine spreads them to the
requested stereo width (:func:`spread`). A layer with ``stereo = True`` places its own sources (crickets, passing cars,
a centred hum) and reads ``options["width"]`` itself. Levels here are relative: the engine calibrates each layer to
its documented loudness (``procedural.CALIBRATION_DB``).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from .procedural_dsp import (
    CONTROL_HZ,
    Events,
    Resonators,
    Slow,
    brown_filter,
    butter,
    chain,
    hop_of,
    impulses,
    pink_filter,
    resonator,
    upsample,
)

if TYPE_CHECKING:
    import numpy as np

RAIN = {"light": (60.0, 0.25), "steady": (350.0, 0.5), "heavy": (1800.0, 1.0)}  # drops/s per channel, hiss level
HUM = ((1, 1.0), (2, 0.5), (3, 0.3), (4, 0.12))  # room tone's mains-hum harmonics (number, relative amplitude)
CRICKETS = 5  # crickets in the chorus
PULSES, PULSE_HZ = 3, 30.0  # a chirp: three pulses at 30 a second (field-cricket-like), carrier 4.2-4.9 kHz


def chirps_per_second(temperature_c: float) -> float:
    """Dolbear's law (A. E. Dolbear, "The Cricket as a Thermometer", 1897): T_F = 40 + N15, where N15 is the
    number of chirps in 15 seconds and T_F the temperature in degrees Fahrenheit; so chirps/s = (T_F - 40) / 15
    (about 2.1/s at 22 degrees C). Crickets fall silent near 40 F; the caller keeps the temperature in 10-40 C."""
    t_f = temperature_c * 9.0 / 5.0 + 32.0
    return max(t_f - 40.0, 0.0) / 15.0


def spread(x: "np.ndarray", width: float) -> "np.ndarray":
    """Two independent equal-power sources ``[2, n]`` to a stereo pair of inter-channel correlation
    ``cos(width * pi / 2)``: width 0 is mono (both channels the first source), 1 fully decorrelated; power kept."""
    import numpy as np

    a = width * math.pi / 4
    c, s = math.cos(a), math.sin(a)
    return np.stack([c * x[0] + s * x[1], c * x[0] - s * x[1]])


class Layer:
    stereo = False

    def __init__(self, rng, sample_rate: int, options: dict):
        self.rng, self.rate, self.hop, self.options = rng, sample_rate, hop_of(sample_rate), options
        self.frame = 0  # control frames rendered so far
        self.last: dict = {}

    def noise(self, frames: int) -> "np.ndarray":
        return self.rng.standard_normal((2, frames * self.hop))

    def times(self, frames: int) -> "np.ndarray":
        """Control times (s) of the next ``frames`` hops."""
        import numpy as np

        return (self.frame + 1 + np.arange(frames)) / CONTROL_HZ

    def up(self, name: str, ctrl: "np.ndarray") -> "np.ndarray":
        """Control values ``[C, F]`` to samples, continuous with the previous call under ``name``."""
        import numpy as np

        out = upsample(ctrl, self.last.get(name, np.zeros(ctrl.shape[0])), self.hop)
        self.last[name] = ctrl[:, -1]
        return out

    def render(self, frames: int) -> "np.ndarray":
        out = self.make(frames)
        self.frame += frames
        return out

    def make(self, frames: int) -> "np.ndarray":
        raise NotImplementedError


class Noise(Layer):
    """White, pink (-3 dB/oct) or brown (-6 dB/oct) noise with a gentle drift: +-1.5 dB (one s.d.), 5 s time
    constant."""

    def __init__(self, rng, sample_rate, options):
        super().__init__(rng, sample_rate, options)
        colour = options["variant"]
        self.filter = {"pink": pink_filter, "brown": lambda: brown_filter(sample_rate)}.get(colour, lambda: None)()
        self.drift = Slow(rng, 5.0)

    def make(self, frames):
        x = self.noise(frames)
        if self.filter is not None:
            x = self.filter(x)
        return x * self.drift.samples(frames, self.hop, lambda u: 10 ** (1.5 * u / 20))


class Rain(Layer):
    """Rain: a broadband hiss (0.7-9 kHz) and Poisson drops through three resonances (1.8, 3.5, 6.5 kHz: leaves,
    roof, window), density by variant, a slow +-2 dB swell (5 s)."""

    def __init__(self, rng, sample_rate, options):
        super().__init__(rng, sample_rate, options)
        self.drops, self.hiss = RAIN[options["variant"]]
        self.hiss_filter = butter("bandpass", (700, 9000), sample_rate)
        self.drop_bank = Resonators([resonator(f, q, sample_rate) for f, q in ((1800, 2.5), (3500, 2.0), (6500, 1.5))],
                                    gain=8.0)
        self.swell = Slow(rng, 5.0)

    def make(self, frames):
        n = frames * self.hop
        x = self.hiss_filter(self.noise(frames)) * self.hiss
        x += self.drop_bank(self.rng, self.drops / 3, n, self.rate)
        return x * self.swell.samples(frames, self.hop, lambda u: 10 ** (2.0 * u / 20))


class Wind(Layer):
    """Wind: a low body (60-400 Hz) and a whistle band (350-1400 Hz) whose balance and level follow the gusts,
    with leaves rustling above 2.5 kHz. Gusts: exp(0.3 u), u the sum of two slow processes of 5 s and 1.5 s time
    constants (most modulation energy at 0.03-0.5 Hz, falling 20 dB/decade above: close to the -5/3 law of
    measured gust spectra)."""

    def __init__(self, rng, sample_rate, options):
        super().__init__(rng, sample_rate, options)
        self.slow, self.fast, self.flutter = Slow(rng, 5.0), Slow(rng, 1.5), Slow(rng, 0.15)
        self.low = butter("bandpass", (60, 400), sample_rate)
        self.high = butter("bandpass", (350, 1400), sample_rate)
        self.leaves = butter("highpass", 2500, sample_rate)
        self.last["gains"] = self.gains(self.slow.last, self.fast.last, self.flutter.last)[:, -1]

    @staticmethod
    def gains(slow, fast, flutter) -> "np.ndarray":
        """The body's, the whistle's and the leaves' gains ``[3, F]`` at the control rate from the three slow
        processes' values ``[1, F]`` (or ``[1]``)."""
        import numpy as np

        u = 0.75 * slow + 0.45 * fast
        gust = np.exp(0.3 * u)
        mix = np.clip(0.5 + 0.15 * u, 0.0, 1.0)
        leaves = 0.04 * gust ** 2 * (0.6 + 0.4 * np.tanh(flutter))
        return np.reshape([gust * (1.6 * (1 - mix)), gust * (0.9 * mix), leaves], (3, -1))

    def make(self, frames):
        g = self.up("gains", self.gains(self.slow.control(frames), self.fast.control(frames),
                                        self.flutter.control(frames)))
        x = self.noise(frames)  # one noise for the three bands: white noise in bands that do not overlap is independent
        return self.low(x) * g[0] + self.high(x) * g[1] + self.leaves(x) * g[2]


def _wave(rng, start: float) -> dict:
    rise, wash = rng.uniform(2.0, 4.0), rng.uniform(2.5, 5.0)
    return {"start": start, "crash": start + rise, "rise": rise, "wash": wash, "amp": rng.uniform(0.5, 1.0),
            "end": start + rise + 6 * wash}


class Surf(Layer):
    """Surf: waves every 6-13 s (uniform), each a 2-4 s swell in the low roar (brown noise, 40-600 Hz) that
    crashes into a 2.5-5 s wash of foam (0.9-9 kHz)."""

    def __init__(self, rng, sample_rate, options):
        super().__init__(rng, sample_rate, options)
        self.waves = Events(rng, lambda r: r.uniform(6.0, 13.0), _wave, first=rng.uniform(0.0, 3.0))
        self.low = chain(brown_filter(sample_rate), butter("bandpass", (40, 600), sample_rate))
        self.foam = butter("bandpass", (900, 9000), sample_rate)

    def envelopes(self, frames: int):
        import numpy as np

        t = self.times(frames)
        swell, wash = np.zeros(frames), np.zeros(frames)
        for w in self.waves.active(t[0] - 0.01, t[-1] + 0.01):
            rising = (t >= w["start"]) & (t < w["crash"])
            swell[rising] += w["amp"] * 0.5 * (1 - np.cos(np.pi * (t[rising] - w["start"]) / w["rise"]))
            after = t >= w["crash"]
            since = t[after] - w["crash"]
            swell[after] += w["amp"] * np.exp(-since / (0.7 * w["wash"]))
            wash[after] += w["amp"] * (1 - np.exp(-since / 0.25)) * np.exp(-since / w["wash"])
        return self.up("swell", swell[None])[0], self.up("wash", wash[None])[0]

    def make(self, frames):
        swell, wash = self.envelopes(frames)
        x = self.noise(frames)  # one noise: the roar (under 600 Hz) and the foam (over 900 Hz) barely overlap
        return self.low(x) * (0.35 + swell) + self.foam(x) * (0.06 + 0.8 * wash)


class Stream(Layer):
    """A stream: rushing water (250-2500 Hz noise with a fast 60 ms flutter) and bubbles (Poisson impulses through
    three resonances, Q 12, 380-1500 Hz), a slow +-1 dB swell (5 s)."""

    def __init__(self, rng, sample_rate, options):
        import numpy as np

        super().__init__(rng, sample_rate, options)
        self.water = butter("bandpass", (250, 2500), sample_rate)
        self.flow, self.swell = Slow(rng, 0.06, 2), Slow(rng, 5.0)
        self.bubbles = Resonators([resonator(f, 12.0, sample_rate) for f in np.geomspace(380, 1500, 3)], gain=3.0)

    def make(self, frames):
        import numpy as np

        n = frames * self.hop
        x = self.water(self.noise(frames)) * self.flow.samples(frames, self.hop, lambda u: np.exp(0.45 * u))
        x += self.bubbles(self.rng, 28.0, n, self.rate)
        return x * self.swell.samples(frames, self.hop, lambda u: 10 ** (u / 20))


class Fire(Layer):
    """A fire: a low roar (brown noise, 40-300 Hz, +-35 % flicker, 0.8 s) and crackles in bursts (Poisson snaps,
    heavy-tailed amplitudes, through 1.2 kHz high-pass and a 2.8 kHz resonance), a faint hiss above 3 kHz."""

    def __init__(self, rng, sample_rate, options):
        super().__init__(rng, sample_rate, options)
        self.low = chain(brown_filter(sample_rate), butter("bandpass", (40, 300), sample_rate))
        self.flicker, self.burst = Slow(rng, 0.8), Slow(rng, 0.5)
        self.crackle = chain(butter("highpass", 1200, sample_rate), resonator(2800, 1.2, sample_rate))
        self.crackle.sos[-1, :3] *= 1.2  # the crackles' level, folded into the filter
        self.hiss = butter("highpass", 3000, sample_rate)

    def make(self, frames):
        import numpy as np

        n = frames * self.hop
        x = self.noise(frames)  # one noise: the roar (under 300 Hz) and the hiss (over 3 kHz) do not overlap
        roar = self.low(x) * self.flicker.samples(frames, self.hop, lambda u: 1 + 0.35 * np.tanh(u))
        # the bursts gate the snaps one control hop at a time (a 10 ms step in a 0.5 s process)
        weight = np.clip(np.exp(1.2 * self.burst.control(frames)[0] - 1.0), 0.0, 1.0)
        snaps = impulses(self.rng, 45.0, n, self.rate, weight=weight, shape=1.6, hop=self.hop, cap=25.0)
        return roar + self.crackle(snaps) + self.hiss(x) * 0.03


def _tone_hz(hz: float, options: dict) -> float:
    """``hz``, or on a loop the nearest frequency with a whole number of cycles in the loop (so it wraps)."""
    loop = options.get("loop_seconds")
    return max(1, round(hz * loop)) / loop if loop else hz


class RoomTone(Layer):
    """Room tone: ventilation (pink noise, 90-1500 Hz, a slow +-5 % swell, 4 s) and a faint centred mains hum
    (``mains_hz``, 50 by default, with three harmonics) about 20 dB under it."""

    stereo = True

    def __init__(self, rng, sample_rate, options):
        super().__init__(rng, sample_rate, options)
        self.fan = chain(pink_filter(), butter("bandpass", (90, 1500), sample_rate))
        self.swell = Slow(rng, 4.0)
        mains = options.get("mains_hz", 50.0)
        self.hum = [(_tone_hz(k * mains, options), a, rng.uniform(0, 2 * math.pi)) for k, a in HUM]

    def hum_at(self, start: int, n: int) -> "np.ndarray":
        """The hum's samples ``start .. start + n``: sin(w (start + i) + phase) = sin(w start + phase) cos(w i) +
        cos(w start + phase) sin(w i), with the cos/sin tables of one block length computed once (no sine per
        sample per block)."""
        import numpy as np

        w = np.array([2 * np.pi * hz / self.rate for hz, _, _ in self.hum])
        if self.last.get("hum_n") != n:
            self.last["hum_n"], self.last["hum_tables"] = n, (np.cos(np.outer(w, np.arange(n))),
                                                            np.sin(np.outer(w, np.arange(n))))
        cos_i, sin_i = self.last["hum_tables"]
        phi = w * start + np.array([phase for _, _, phase in self.hum])
        a = np.array([amp for _, amp, _ in self.hum]) * 0.012
        return (a * np.sin(phi)) @ cos_i + (a * np.cos(phi)) @ sin_i

    def make(self, frames):
        fan = self.fan(self.noise(frames)) * (1 + 0.05 * self.swell.samples(frames, self.hop))
        return spread(fan, self.options["width"]) + self.hum_at(self.frame * self.hop, frames * self.hop)


def _car(rng, start: float) -> dict:
    sigma = rng.uniform(2.0, 5.0)
    return {"peak": start + 3 * sigma, "sigma": sigma, "amp": rng.uniform(0.25, 1.0), "dir": rng.choice((-1, 1)),
            "end": start + 6 * sigma}


class Traffic(Layer):
    """Distant traffic: a steady rumble (brown noise, 30-220 Hz, +-15 % over 5 s) and cars passing every 2-10 s
    (50-900 Hz pink noise, a 2-5 s Gaussian swell, panned across the stereo width as they pass)."""

    stereo = True

    def __init__(self, rng, sample_rate, options):
        super().__init__(rng, sample_rate, options)
        self.cars = Events(rng, lambda r: r.uniform(2.0, 10.0), _car)
        self.low, self.swell = chain(brown_filter(sample_rate), butter("bandpass", (30, 220), sample_rate)), Slow(rng, 5.0)
        self.band = chain(pink_filter(1), butter("bandpass", (50, 900), sample_rate, channels=1))

    def gains(self, frames: int):
        import numpy as np

        t = self.times(frames)
        g = np.zeros((2, frames))
        for car in self.cars.active(t[0] - 0.01, t[-1] + 0.01):
            x = (t - car["peak"]) / car["sigma"]
            level = car["amp"] * np.exp(-0.5 * x ** 2)
            angle = (car["dir"] * np.tanh(x) * self.options["width"] + 1) * math.pi / 4
            g += level * np.stack([np.cos(angle), np.sin(angle)])
        return self.up("cars", g)

    def make(self, frames):
        rumble = self.low(self.noise(frames)) * (1 + 0.15 * self.swell.samples(frames, self.hop))
        car = self.band(self.rng.standard_normal((1, frames * self.hop)))
        return spread(rumble * 0.6, self.options["width"]) + car * self.gains(frames) * 1.4


def _strike(rng, start: float) -> dict:
    rolls = [(start + rng.uniform(0, 4.0), rng.uniform(0.3, 1.0), rng.uniform(1.5, 4.5))
             for _ in range(int(rng.integers(3, 7)))]
    return {"start": start, "rolls": rolls, "crack": bool(rng.random() < 0.35), "end": start + 4.0 + 6 * 4.5}


class Thunder(Layer):
    """Thunder: a strike every 20-90 s (the first within 1.5-6 s), each 3-6 rolls (0.3-1.0, decaying over 1.5-4.5
    s) of brown noise at 25-350 Hz with a 0.25 s rumble flutter; a third open with a crack (high-passed 800 Hz)."""

    def __init__(self, rng, sample_rate, options):
        super().__init__(rng, sample_rate, options)
        self.strikes = Events(rng, lambda r: r.uniform(20.0, 90.0), _strike, first=rng.uniform(1.5, 6.0))
        self.low = chain(brown_filter(sample_rate), butter("bandpass", (25, 350), sample_rate))
        self.crack, self.flutter = butter("highpass", 800, sample_rate), Slow(rng, 0.25)

    def envelopes(self, frames: int):
        import numpy as np

        t = self.times(frames)
        rumble, crack = np.zeros(frames), np.zeros(frames)
        for s in self.strikes.active(t[0] - 0.01, t[-1] + 0.01):
            for at, amp, decay in s["rolls"]:
                since = np.maximum(t - at, 0.0)
                rumble += (t >= at) * amp * (1 - np.exp(-since / 0.2)) * np.exp(-since / decay)
            if s["crack"]:
                crack += (t >= s["start"]) * np.exp(-np.maximum(t - s["start"], 0.0) / 0.12)
        return self.up("rumble", rumble[None])[0], self.up("crack", crack[None])[0]

    def make(self, frames):
        import numpy as np

        rumble, crack = self.envelopes(frames)
        flutter = self.flutter.samples(frames, self.hop, lambda u: 1 + 0.5 * np.tanh(u))[0]
        x = self.noise(frames)  # one noise: the rumble (under 350 Hz) and the crack (over 800 Hz) barely overlap
        return self.low(x) * rumble * flutter + self.crack(x) * crack * 0.5


class Crickets(Layer):
    """A chorus of five crickets: chirps of three 30 Hz pulses on a 4.2-4.9 kHz carrier, at the rate Dolbear's law
    gives for ``temperature_c`` (each cricket within +-3 %), singing in bouts (a slow 4 s process gates each one,
    silent about 7 % of the time), placed across the stereo width."""

    stereo = True

    def __init__(self, rng, sample_rate, options):
        import numpy as np

        super().__init__(rng, sample_rate, options)
        rate = chirps_per_second(options.get("temperature_c", 22.0))
        t = np.arange(round(PULSES / PULSE_HZ * sample_rate)) / sample_rate
        pulse = t * PULSE_HZ
        env = np.sin(np.pi * np.minimum((pulse % 1.0) / 0.7, 1.0)) ** 2
        self.crickets = []
        for _ in range(CRICKETS):
            hz, amp, pan = _tone_hz(rng.uniform(4200, 4900), options), rng.uniform(0.3, 1.0), rng.uniform(-1, 1)
            angle = (pan * options["width"] + 1) * math.pi / 4
            self.crickets.append({"rate": rate * rng.uniform(0.97, 1.03), "phase": rng.random(),
                                  "chirp": amp * env * np.sin(2 * np.pi * hz * t),
                                  "gains": np.array([[math.cos(angle)], [math.sin(angle)]])})
        self.bouts = Slow(rng, 4.0, CRICKETS)

    def make(self, frames):
        import numpy as np

        n = frames * self.hop
        start = self.frame * self.hop
        gates = np.clip(1.5 + self.bouts.samples(frames, self.hop), 0.0, 1.0)
        # one extra chirp length of room: a chirp that begins near the block's end rings into the next block
        out = np.concatenate([self.last.get("ring", np.zeros((2, 0))), np.zeros((2, 0))], axis=1)
        out = np.pad(out, ((0, 0), (0, n + len(self.crickets[0]["chirp"]) - out.shape[1])))
        for c, gate in zip(self.crickets, gates):
            # chirp k begins at (k - phase) / rate seconds: those beginning in this block
            k0 = math.ceil(c["phase"] + c["rate"] * start / self.rate)
            k1 = math.ceil(c["phase"] + c["rate"] * (start + n) / self.rate)
            for k in range(k0, k1):
                at = round((k - c["phase"]) / c["rate"] * self.rate) - start
                if 0 <= at < n and gate[at] > 0:
                    out[:, at:at + c["chirp"].size] += c["gains"] * (gate[at] * c["chirp"])
        self.last["ring"] = out[:, n:]
        return out[:, :n]
