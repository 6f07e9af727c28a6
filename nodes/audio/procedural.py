"""Procedural ambience: model-free beds (noise colours, rain, wind, surf, a stream, a fire, room tone, traffic,
thunder, crickets) from numpy/scipy, deterministic under a seed, streamed in blocks at flat memory for any length,
and seamlessly loopable by construction.

Loudness: at ``intensity`` 1, ``brightness`` 1 and ``width`` 1 each layer measures :data:`REFERENCE_LUFS` (-23
LUFS, ITU-R BS.1770-4 integrated, over a minute, within about 2 LU from seed to seed; calibrated per layer in
:data:`CALIBRATION_DB`); ``intensity`` scales the amplitude, so the level is ``-23 + 20 log10(intensity)`` LUFS
(intensity 0.5: -29 LUFS). Wind varies by +-3 LU from minute to minute with
its gusts. Thunder is sparse by design: its -23 LUFS is the gated loudness, which counts the strikes, not the silence between them. Lower
``brightness`` (a low-pass: farther away, behind a window) makes a layer darker and quieter.

Seamless loop (``loop=True``): the layer is rendered ``tail`` samples longer than asked and the extra tail is
cross-faded (equal-power) into the start, so the last sample runs on into the first; tones (room tone's hum, the
crickets' carriers) are tuned to a whole number of cycles in the loop.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from ..checks import SEED_MAX, format_seconds, is_number
from . import procedural_layers as layers
from .procedural_dsp import hop_of, soft_clip

if TYPE_CHECKING:
    import numpy as np

NODE = "Procedural Ambience"
SAMPLE_RATE = 44100
REFERENCE_LUFS = -23.0
BLOCK_SECONDS = 1.0
MAX_SECONDS = 4 * 3600.0  # a node's output is held in memory: 4 h of stereo float32 is 5 GB (streaming has no limit)
LOOP_TAIL_SECONDS = 3.0  # the loop's cross-fade (at most a quarter of the loop)
# layer name -> (class, variant, one-line description for tooltips and the README)
LAYERS = {
    "white": (layers.Noise, "white", "white noise (flat spectrum), gentle drift"),
    "pink": (layers.Noise, "pink", "pink noise (-3 dB/octave), gentle drift"),
    "brown": (layers.Noise, "brown", "brown noise (-6 dB/octave), gentle drift"),
    "rain (light)": (layers.Rain, "light", "light rain: sparse drops on leaves, roof and window"),
    "rain (steady)": (layers.Rain, "steady", "steady rain"),
    "rain (heavy)": (layers.Rain, "heavy", "heavy rain: dense drops and a loud hiss"),
    "wind": (layers.Wind, None, "wind in gusts, with leaves rustling"),
    "surf": (layers.Surf, None, "surf: waves every 6-13 s with wash and foam"),
    "stream": (layers.Stream, None, "a stream: rushing water and bubbles"),
    "fire": (layers.Fire, None, "a fire: low roar and crackles"),
    "room tone": (layers.RoomTone, None, "room tone: ventilation and a faint mains hum"),
    "traffic": (layers.Traffic, None, "distant traffic: rumble and passing cars"),
    "thunder": (layers.Thunder, None, "thunder: a strike every 20-90 s"),
    "crickets": (layers.Crickets, None, "crickets chirping at the temperature's rate (Dolbear's law)"),
}
LAYER_NAMES = tuple(LAYERS)
# dB that brings each layer to REFERENCE_LUFS at intensity 1, brightness 1, width 1 (benchmarks/procedural.py measures)
CALIBRATION_DB = {
    "white": -28.96, "pink": -5.61, "brown": -23.85, "rain (light)": -16.36, "rain (steady)": -22.72,
    "rain (heavy)": -29.72, "wind": -9.17, "surf": -21.65, "stream": -20.38, "fire": -22.81, "room tone": 0.37,
    "traffic": -18.71, "thunder": -25.75, "crickets": -13.47,
}


def check_options(node: str, layer: str, seconds, seed, intensity, brightness, width) -> None:
    """A ``ValueError`` naming ``node`` and the input when a setting is out of range."""
    if layer not in LAYERS:
        raise ValueError(f'{node}: "layer" is {layer!r} but must be one of {", ".join(LAYER_NAMES)}. Pick one.')
    if not is_number(seconds) or not 0.5 <= seconds <= MAX_SECONDS:
        raise ValueError(f'{node}: "seconds" is {seconds} but must be from 0.5 to {format_seconds(MAX_SECONDS)}. '
                         "Set a length in that range (for longer beds loop a shorter one; the plain function "
                         "stream_layer streams any length).")
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= SEED_MAX:
        raise ValueError(f'{node}: "seed" is {seed!r} but must be a whole number from 0 to {SEED_MAX}.')
    for name, value in (("intensity", intensity), ("brightness", brightness), ("stereo_width", width)):
        if not is_number(value) or not 0.0 <= value <= 1.0:
            raise ValueError(f'{node}: "{name}" is {value} but must be a number from 0 to 1. Set it in that range.')


def brightness_hz(brightness: float) -> float | None:
    """The low-pass corner for ``brightness``: 250 Hz x 80^brightness (0: 250 Hz, 0.5: 2.2 kHz, 0.75: 6.7 kHz);
    None (no filter) at 1."""
    return None if brightness >= 1.0 else 250.0 * 80.0 ** brightness


def loop_tail(total: int, sample_rate: int) -> int:
    """Samples of the loop's cross-fade: :data:`LOOP_TAIL_SECONDS`, at most a quarter of ``total``."""
    return max(1, min(round(LOOP_TAIL_SECONDS * sample_rate), total // 4))


def _raw_blocks(layer: str, total: int, seed: int, options: dict, sample_rate: int,
                block_seconds: float) -> Iterator["np.ndarray"]:
    """``total`` samples of one layer, float64 ``[2, n]`` blocks, at the layer's calibrated level."""
    import numpy as np

    from .procedural_dsp import butter

    cls, variant, _ = LAYERS[layer]
    rng = np.random.default_rng([seed, LAYER_NAMES.index(layer), 0x50524F43])
    source = cls(rng, sample_rate, {**options, "variant": variant})
    corner = brightness_hz(options["brightness"])
    darken = butter("lowpass", corner, sample_rate) if corner else None
    gain = options["intensity"] * 10 ** (CALIBRATION_DB[layer] / 20)
    hop = hop_of(sample_rate)
    frames = max(1, round(block_seconds * sample_rate / hop))
    done = 0
    while done < total:
        x = source.render(frames)
        if not source.stereo:
            x = layers.spread(x, options["width"])
        if darken is not None:
            x = darken(x)
        x = x[:, :total - done] * gain
        done += x.shape[1]
        yield x


def _looped(blocks: Iterator["np.ndarray"], total: int, tail: int) -> Iterator["np.ndarray"]:
    """The ``total + tail`` samples of ``blocks`` as a ``total``-sample loop: the first ``tail`` samples are held
    and cross-faded (equal-power) under the extra tail at the end, so the loop's end runs on into its start."""
    import numpy as np

    head, pos = [], 0
    for x in blocks:
        start, pos = pos, pos + x.shape[1]
        if start < tail:
            head.append(x[:, :tail - start])
            x, start = x[:, tail - start:], tail
        if x.shape[1] == 0:
            continue
        mid = x[:, :max(0, total - start)]
        if mid.shape[1]:
            yield mid
        rest, k0 = x[:, mid.shape[1]:], max(0, start - total)
        if rest.shape[1]:
            held = np.concatenate(head, axis=1)
            k = k0 + np.arange(rest.shape[1])
            w = np.pi * (k + 0.5) / (2 * tail)
            yield rest * np.cos(w) + held[:, k] * np.sin(w)


def stream_layer(layer: str, seconds: float, seed: int = 0, *, intensity: float = 1.0, brightness: float = 1.0,
                 width: float = 1.0, loop: bool = False, temperature_c: float = 22.0, mains_hz: float = 50.0,
                 sample_rate: int = SAMPLE_RATE, block_seconds: float = BLOCK_SECONDS) -> Iterator["np.ndarray"]:
    """One layer as float32 ``[2, n]`` blocks of about ``block_seconds`` (any length at flat memory).

    Args:
        layer: one of :data:`LAYER_NAMES`.
        seconds: length; the blocks add up to ``round(seconds * sample_rate)`` samples.
        seed: same seed and settings (``block_seconds`` included) give the same samples.
        intensity: 0..1 amplitude (1: :data:`REFERENCE_LUFS`).
        brightness: 0..1, 1 full band; lower darkens (:func:`brightness_hz`), as distance or a wall does.
        width: 0 mono .. 1 fully decorrelated channels.
        loop: cross-fade an extra tail into the start so the output loops seamlessly.
        temperature_c: crickets' temperature (Dolbear's law), 10-40 degrees C.
        mains_hz: room tone's hum (50 or 60).
    """
    check_options(NODE, layer, seconds, seed, intensity, brightness, width)
    total = round(seconds * sample_rate)
    tail = loop_tail(total, sample_rate) if loop else 0
    options = {"intensity": intensity, "brightness": brightness, "width": width, "mains_hz": mains_hz,
               "temperature_c": min(max(temperature_c, 10.0), 40.0), "loop_seconds": total / sample_rate if loop else None}
    blocks = _raw_blocks(layer, total + tail, seed, options, sample_rate, block_seconds)
    for x in (_looped(blocks, total, tail) if loop else blocks):
        yield soft_clip(x).astype("float32")


def stream_mix(plan: list[tuple[str, float]], seconds: float, seed: int = 0, **settings) -> Iterator["np.ndarray"]:
    """Several layers summed block by block: ``plan`` is ``[(layer, gain_db), ...]``; ``settings`` as
    :func:`stream_layer` takes them (each layer its own seeded stream, so a layer sounds the same in any plan)."""
    import numpy as np

    streams = [(stream_layer(name, seconds, seed, **settings), 10 ** (gain_db / 20)) for name, gain_db in plan]
    for blocks in zip(*(s for s, _ in streams)):
        mixed = sum(b.astype(np.float64) * g for b, (_, g) in zip(blocks, streams))
        yield soft_clip(mixed).astype("float32")


def block_count(total: int, sample_rate: int = SAMPLE_RATE, block_seconds: float = BLOCK_SECONDS) -> int:
    """How many blocks a stream of ``total`` samples comes in (the progress bar's length)."""
    block = round(block_seconds * sample_rate / hop_of(sample_rate)) * hop_of(sample_rate)
    return max(1, math.ceil(total / block))


def render(blocks: Iterator["np.ndarray"], total: int,
           on_step: Callable[[int, int], None] | None = None) -> "np.ndarray":
    """Gather a block stream of ``total`` samples into one float32 ``[2, total]`` array, calling
    ``on_step(done_blocks, all_blocks)`` after each block (a Cancel point in ComfyUI)."""
    import numpy as np

    out = np.empty((2, total), dtype=np.float32)
    count = block_count(total)
    pos = 0
    for k, x in enumerate(blocks, 1):
        out[:, pos:pos + x.shape[1]] = x
        pos += x.shape[1]
        if on_step is not None:
            on_step(min(k, count), count)
    return out[:, :pos]


def render_layer(layer: str, seconds: float, seed: int = 0, on_step=None, **settings) -> "np.ndarray":
    """:func:`stream_layer` gathered into one float32 ``[2, T]`` array (``T = round(seconds * sample_rate)``)."""
    rate = settings.get("sample_rate", SAMPLE_RATE)
    return render(stream_layer(layer, seconds, seed, **settings), round(seconds * rate), on_step)
