"""Mix Audio Layers: equal-power pan law, resampling to the highest rate, loop/pad fitting without clicks,
headroom normalisation, gains, batch broadcasting, and clear errors."""
import math

import numpy as np
import pytest
import torch

from conftest import pack_module

mix = pack_module("audio.mix")
resampler = pack_module("audio.resample")


def sine(freq: float, seconds: float, rate: int, amp: float = 0.5, channels: int = 1) -> torch.Tensor:
    t = np.arange(int(round(seconds * rate))) / rate
    y = amp * np.sin(2 * np.pi * freq * t)
    return torch.from_numpy(np.tile(y, (1, channels, 1)).astype(np.float32))


def noise(seconds: float, rate: int, amp: float = 0.1, channels: int = 2, batch: int = 1, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return amp * (torch.rand(batch, channels, int(round(seconds * rate)), generator=g) * 2 - 1)


def layer(waveform, rate, gain_db=0.0, pan=0.0):
    return {"waveform": waveform, "sample_rate": rate, "gain_db": gain_db, "pan": pan}


# --- pan law ----------------------------------------------------------------------------------------------------

def test_pan_law_is_equal_power():
    left, right = mix.pan_gains(0.0)
    assert left == pytest.approx(1 / math.sqrt(2), abs=1e-12) and right == pytest.approx(1 / math.sqrt(2), abs=1e-12)
    assert 20 * math.log10(left) == pytest.approx(-3.0103, abs=1e-4)
    for pan in np.linspace(-1, 1, 41):
        left, right = mix.pan_gains(float(pan))
        assert left ** 2 + right ** 2 == pytest.approx(1.0, abs=1e-12)
    assert mix.pan_gains(-1.0) == (1.0, 0.0)
    assert mix.pan_gains(1.0) == (0.0, 1.0)
    assert mix.pan_gains(-0.5)[0] > mix.pan_gains(-0.5)[1]


def test_stereo_balance_law():
    assert mix.balance_gains(0.0) == (1.0, 1.0)  # centre leaves a stereo layer unchanged
    assert mix.balance_gains(1.0) == (0.0, 1.0)  # hard right silences the left channel
    assert mix.balance_gains(-1.0) == (1.0, 0.0)
    left, right = mix.balance_gains(0.5)
    assert right == 1.0 and left == pytest.approx(math.sqrt(2) * math.cos(3 * math.pi / 8), abs=1e-12)


def test_mono_is_panned_and_stereo_is_balanced_in_the_mix():
    rate = 8000
    mono = sine(200, 0.5, rate)
    out, _, _ = mix.mix_layers([layer(mono, rate, pan=-1.0)], headroom_db=0.0)
    assert torch.equal(out[0, 0], mono[0, 0]) and not out[0, 1].any()
    out, _, _ = mix.mix_layers([layer(mono, rate)], headroom_db=0.0)
    assert torch.allclose(out[0, 0], mono[0, 0] / math.sqrt(2), atol=1e-7) and torch.equal(out[0, 0], out[0, 1])
    stereo = noise(0.5, rate, amp=0.5)
    out, _, _ = mix.mix_layers([layer(stereo, rate, pan=1.0)], headroom_db=0.0)
    assert not out[0, 0].any() and torch.equal(out[0, 1], stereo[0, 1])
    out, _, _ = mix.mix_layers([layer(stereo, rate)], headroom_db=0.0)
    assert torch.equal(out, stereo)


# --- rates and lengths ------------------------------------------------------------------------------------------

def test_mono_22k_sine_and_stereo_44k_noise_mix_at_44k_and_keep_440_hz():
    sine_layer = layer(sine(440, 2.0, 22050), 22050)
    noise_layer = layer(noise(3.0, 44100), 44100, gain_db=-10.0)
    out, rate, info = mix.mix_layers([sine_layer, noise_layer])
    assert rate == 44100 and info["sample_rate"] == 44100
    assert out.shape == (1, 2, 3 * 44100) and info["length"] == 3 * 44100 and out.dtype == torch.float32
    assert info["layers"][0]["resampled_from"] == 22050 and info["layers"][1]["resampled_from"] is None
    assert info["layers"][0]["fit"] == "loop" and info["layers"][1]["fit"] == "none"
    left = out[0, 0, : 2 * 44100].numpy().astype(np.float64)
    spectrum = np.abs(np.fft.rfft(left * np.hanning(left.size)))
    peak_hz = np.argmax(spectrum) * 44100 / left.size
    assert abs(peak_hz - 440.0) <= 0.5  # one FFT bin


def test_resample_length_and_identity():
    w = noise(1001 / 44100, 44100)
    assert w.shape[-1] == 1001
    up = resampler.resample(w, 44100, 48000)
    assert up.shape == (1, 2, round(1001 * 48000 / 44100)) == (1, 2, 1090) and up.dtype == torch.float32
    assert resampler.resample(w, 44100, 22050).shape[-1] == round(1001 / 2)
    same = resampler.resample(w, 44100, 44100)
    assert torch.equal(same, w) and same.data_ptr() != w.data_ptr()


def _wrap_ratio(y: np.ndarray, start: int, stop: int) -> float:
    """Largest sample-to-sample jump in ``[start, stop)`` over the median jump of the whole signal."""
    jumps = np.abs(np.diff(y))
    return jumps[start:stop].max() / np.median(jumps)


@pytest.mark.parametrize("fit", ["loop", "pad"])
def test_loop_and_pad_fitting(fit):
    rate = 44100
    bed = torch.zeros(1, 2, rate)  # 1 s of silence sets the length
    short = sine(105, 0.25, rate)  # 26.25 cycles: a hard cut at the wrap would click
    out, _, info = mix.mix_layers([layer(bed, rate), layer(short, rate)], fit=fit, headroom_db=0.0)
    assert out.shape == (1, 2, rate) and info["layers"][1]["fit"] == fit
    y = out[0, 0].numpy().astype(np.float64)
    n = short.shape[-1]
    assert np.allclose(y[: n - 441], short[0, 0, : n - 441].numpy() / math.sqrt(2), atol=1e-7)  # head untouched
    if fit == "pad":
        assert not y[n:].any()  # exactly zero
        return
    assert np.abs(y[n:]).max() > 0.3
    fade = round(0.010 * rate)
    wrap = n - fade  # the second copy starts here, cross-faded over 10 ms
    assert _wrap_ratio(y, wrap - 10, n + 10) < 2.0
    hard = np.tile(short[0, 0].numpy().astype(np.float64), 4)[:rate]
    assert _wrap_ratio(hard, n - 10, n + 10) > 2.0  # the measure does catch a click


def test_length_first_cuts_longer_layers():
    rate = 8000
    out, _, info = mix.mix_layers([layer(noise(0.5, rate), rate), layer(noise(1.0, rate, seed=1), rate)],
                                  length="first")
    assert out.shape[-1] == 4000 and info["length"] == 4000
    assert [entry["fit"] for entry in info["layers"]] == ["none", "cut"]


# --- levels -----------------------------------------------------------------------------------------------------

def test_two_full_scale_layers_are_scaled_under_the_headroom():
    rate = 8000
    full = sine(100, 1.0, rate, amp=1.0, channels=2)
    out, _, info = mix.mix_layers([layer(full, rate), layer(full, rate)], headroom_db=1.0)
    assert out.abs().max().item() <= 10 ** (-1 / 20) + 1e-6
    assert info["scaled_db"] < 0 and info["scaled_db"] == pytest.approx(20 * math.log10(10 ** (-1 / 20) / 2), abs=0.01)
    quiet, _, info = mix.mix_layers([layer(0.1 * full, rate)], headroom_db=1.0)
    assert info["scaled_db"] == 0.0 and torch.equal(quiet, 0.1 * full)


def test_minus_6_db_halves_the_amplitude():
    rate = 8000
    w = noise(0.5, rate, amp=0.5)
    ref, _, _ = mix.mix_layers([layer(w, rate)])
    half, _, _ = mix.mix_layers([layer(w, rate, gain_db=-6.0)])
    ratio = half.abs().max().item() / ref.abs().max().item()
    assert ratio == pytest.approx(0.5, rel=0.01)
    assert torch.allclose(half, ref * 10 ** (-6 / 20), atol=1e-7)


# --- batches ----------------------------------------------------------------------------------------------------

def test_batch_one_broadcasts():
    rate = 8000
    many = noise(0.5, rate, batch=3)
    one = sine(300, 0.5, rate, amp=0.2)
    out, _, info = mix.mix_layers([layer(many, rate), layer(one, rate)])
    assert out.shape == (3, 2, 4000) and info["scaled_db"] == 0.0
    for i in range(3):
        assert torch.allclose(out[i, 0], many[i, 0] + one[0, 0] / math.sqrt(2), atol=1e-6)
    assert [entry["batch"] for entry in info["layers"]] == [3, 1]


def test_mismatched_batches_are_refused():
    rate = 8000
    with pytest.raises(ValueError, match=r"^Mix Audio Layers: the layers' batch sizes differ \(layer 1: 2, layer 2: 3"):
        mix.mix_layers([layer(noise(0.5, rate, batch=2), rate), layer(noise(0.5, rate, batch=3), rate)])


def test_inputs_untouched_and_inference_tensors_accepted():
    rate = 8000
    with torch.inference_mode():
        a = noise(0.5, rate)
        b = sine(100, 0.3, 4000)
    a_before, b_before = a.clone(), b.clone()
    out, _, _ = mix.mix_layers([layer(a, rate, gain_db=3.0, pan=0.3), layer(b, 4000, pan=-0.7)])
    assert torch.equal(a, a_before) and torch.equal(b, b_before)
    assert out.shape == (1, 2, 4000)
    two_d, _, _ = mix.mix_layers([layer(a[0], rate)])  # [C, T] is one clip
    assert two_d.shape == (1, 2, 4000)


# --- errors -----------------------------------------------------------------------------------------------------

GOOD = {"waveform": torch.full((1, 1, 800), 0.1), "sample_rate": 8000}


@pytest.mark.parametrize("layers,kwargs,match", [
    ([], {}, "at least 1"),
    ([{**GOOD, "pan": 1.5}], {}, '"pan" is 1.5'),
    ([{**GOOD, "pan": math.nan}], {}, '"pan" is nan'),
    ([{**GOOD, "gain_db": math.inf}], {}, '"gain_db" is inf'),
    ([{**GOOD, "gain_db": math.nan}], {}, '"gain_db" is nan'),
    ([GOOD], {"fit": "stretch"}, '"fit" is \'stretch\''),
    ([GOOD], {"length": "shortest"}, '"length" is \'shortest\''),
    ([GOOD], {"headroom_db": -1.0}, '"headroom_db" is -1.0'),
    ([{**GOOD, "waveform": torch.zeros(1, 2, 0)}], {}, "at least one sample"),
    ([{**GOOD, "waveform": torch.zeros(800)}], {}, r"\[batch, channels, samples\]"),
    ([{**GOOD, "waveform": torch.zeros(1, 4, 800)}], {}, "mono or stereo"),
    ([{**GOOD, "waveform": torch.full((1, 2, 800), math.nan)}], {}, "NaN or inf.*upstream"),
    ([{**GOOD, "sample_rate": 0}], {}, r'"audio_1" \(layer 1\) sample_rate is 0'),
    ([{"waveform": GOOD["waveform"]}], {}, "AUDIO"),
])
def test_errors_name_the_input(layers, kwargs, match):
    with pytest.raises(ValueError, match=rf"^Mix Audio Layers: .*{match}"):
        mix.mix_layers(layers, **kwargs)


def test_pan_gains_refuses_out_of_range():
    with pytest.raises(ValueError, match=r'^Mix Audio Layers: "pan" is -2'):
        mix.pan_gains(-2.0)
