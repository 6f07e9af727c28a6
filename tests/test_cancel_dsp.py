"""Cancel inside long DSP (issue 13, item 18): Normalize Loudness's limiter, Make Seamless Loop and Fade In / Out
check a ``cancel`` callback between blocks of at most 65,536 samples per channel, and raising from it stops them.

Measured before: Loudness + Loop on a 10-minute clip took 3.7 s to honour Cancel (no cancel point inside the
limiter, the loop or the fades); benchmarks/cancel_latency.py prints the largest gap between two checks."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from conftest import pack_module, run_node

contract = pack_module("audio.contract")
fades = pack_module("audio.fades")
loop = pack_module("audio.loop")
loudness = pack_module("audio.loudness")

RATE = 44100
FRAMES = RATE * 600  # 10 minutes
BLOCK = 1 << 16


class Cancelled(Exception):
    pass


def counting_cancel(stop_after: int | None = None, stop_in: tuple = ()):
    """``(cancel, calls)``: ``cancel`` records each call's caller and raises :class:`Cancelled` on call number
    ``stop_after``, or on the first call from a function named in ``stop_in``."""
    calls = []

    def cancel():
        frame = sys._getframe(1)
        while frame.f_code.co_name == "cancel_blocks":
            frame = frame.f_back
        calls.append(frame.f_code.co_name)
        if len(calls) == stop_after or calls[-1] in stop_in:
            raise Cancelled

    return cancel, calls


MINUTES = [1, pytest.param(10, marks=pytest.mark.slow)]  # the 10 minutes; 1 minute in the quick suite


@pytest.fixture(scope="module")
def noise():
    """10 minutes of stereo noise, ``float32 [1, 2, T]``, peak about 0.5."""
    g = np.random.default_rng(7)
    return torch.from_numpy((0.12 * g.standard_normal((1, 2, FRAMES))).astype(np.float32))


def test_limiter_checks_cancel_every_block():
    """Each of the limiter's four passes over the envelope (needed gain, running minimum, release, moving average)
    checks once per block; the result is the same with and without the callback."""
    g = np.random.default_rng(1)
    peak = np.abs(g.standard_normal(FRAMES // 4))
    cancel, calls = counting_cancel()
    gain = loudness.limiter_gain(peak, 0.8, RATE, cancel=cancel)
    blocks = -(-peak.size // BLOCK)
    assert len(calls) >= 4 * blocks, (len(calls), blocks)
    assert np.array_equal(gain, loudness.limiter_gain(peak, 0.8, RATE))
    assert np.all(gain * peak <= 0.8 * (1 + 1e-12))


@pytest.mark.parametrize("minutes", MINUTES)
def test_loudness_cancel_reaches_the_limiter(noise, minutes):
    """A 10-minute (and a 1-minute) clip normalised to -10 LUFS under -1 dBTP (so the limiter works): Cancel raised at the first
    check inside the limiter stops the run there; the limiter and its gain's application check every block."""
    cancel, calls = counting_cancel(stop_in=("_held",))
    clip = noise[..., :RATE * 60 * minutes]
    with pytest.raises(Cancelled):
        loudness.normalize_loudness(clip, RATE, -10.0, -1.0, cancel=cancel)
    assert calls[-1] == "_held"
    assert calls.count("limiter_gain") >= clip.shape[-1] / BLOCK  # the needed gain, before the running minimum


@pytest.mark.parametrize("minutes", MINUTES)
@pytest.mark.parametrize("case", ["loop", "fades"])
def test_cancel_stops_loop_and_fades_on_a_long_clip(noise, case, minutes):
    """A full run over a 10-minute (and a 1-minute) clip checks at least once per 65,536 samples of the clip; a
    Cancel raised on the middle check propagates and stops the work there."""
    clip, half = noise[..., :RATE * 60 * minutes], 30.0 * minutes
    if case == "loop":  # the quiet-end search over the whole clip, a cross-fade of half the clip, the copy
        work = lambda cancel: loop.make_seamless_loop(clip, RATE, half, 2 * half, cancel=cancel)  # noqa: E731
    else:
        work = lambda cancel: fades.apply_fades(clip, RATE, half, half, "equal-power", cancel=cancel)  # noqa: E731
    cancel, calls = counting_cancel()
    work(cancel)
    assert len(calls) >= clip.shape[-1] / BLOCK, len(calls)
    middle = len(calls) // 2
    cancel, calls = counting_cancel(stop_after=middle)
    with pytest.raises(Cancelled):
        work(cancel)
    assert len(calls) == middle


def test_fades_in_blocks_match_the_curve():
    """Blockwise fades give the same samples as multiplying by :func:`fade_curve` (long fades span many blocks)."""
    x = torch.ones(1, 2, 3 * BLOCK + 5)
    for curve in fades.CURVES:
        out = fades.apply_fades(x, RATE, (2 * BLOCK + 3) / RATE, (BLOCK + 7) / RATE, curve, cancel=lambda: None)
        expected = x.clone()
        expected[..., :2 * BLOCK + 3] *= fades.fade_curve(2 * BLOCK + 3, curve)
        expected[..., -(BLOCK + 7):] *= fades.fade_curve(BLOCK + 7, curve).flip(0)
        assert torch.allclose(out, expected, rtol=0, atol=1e-7), curve


@pytest.mark.parametrize("node", ["AmbientSeamlessLoop", "AmbientFade"])
def test_nodes_pass_comfy_cancel(node):
    """With ComfyUI's Cancel pressed, the nodes stop inside the DSP with ComfyUI's own interrupt."""
    import comfy.model_management as mm

    audio = {"waveform": torch.zeros(1, 2, RATE * 5), "sample_rate": RATE}
    inputs = {"overlap_seconds": 1.0, "search_seconds": 0.0} if node == "AmbientSeamlessLoop" else \
        {"fade_in_seconds": 1.0, "fade_out_seconds": 1.0, "curve": "linear"}
    mm.interrupt_current_processing(True)
    try:
        with pytest.raises(mm.InterruptProcessingException):
            run_node(node, audio=audio, **inputs)
    finally:
        mm.interrupt_current_processing(False)
