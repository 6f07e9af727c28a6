"""Normalize Loudness: BS.1770 targets reached (measured here, independently), true peak under the ceiling,
the limiter exercised, silence/short/bad settings refused with clear errors, inputs untouched."""
import logging
import math

import numpy as np
import pyloudnorm
import pytest
import torch
from scipy.signal import resample_poly

from conftest import pack_module

loudness = pack_module("audio.loudness")
SECONDS = 5.0


# --- independent measurements (not the module's code) ---------------------------------------------------------

def measured_lufs(clip: torch.Tensor, rate: int) -> float:
    return float(pyloudnorm.Meter(rate).integrated_loudness(clip.numpy().astype(np.float64).T))


def measured_true_peak_db(clip: torch.Tensor) -> float:
    data = clip.numpy().astype(np.float64)
    up = resample_poly(data, 4, 1, axis=-1)
    return 20 * math.log10(max(np.abs(up).max(), np.abs(data).max()))


# --- synthetic signals ------------------------------------------------------------------------------------------

def pink(frames: int, seed: int) -> np.ndarray:
    """Seeded 1/f noise, peak 1."""
    rng = np.random.default_rng(seed)
    spec = np.fft.rfft(rng.standard_normal(frames))
    f = np.arange(spec.size, dtype=float)
    f[0] = 1.0
    y = np.fft.irfft(spec / np.sqrt(f), frames)
    return y / np.abs(y).max()


def transient(frames: int, rate: int, seed: int) -> tuple[np.ndarray, list[int]]:
    """A quiet bed (two sines and pink noise, peak < 0.3) with six sparse full-scale 3 ms clicks; returns the
    click positions too."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / rate
    y = 0.1 * np.sin(2 * np.pi * 220 * t) + 0.08 * np.sin(2 * np.pi * 331 * t + 1) + 0.1 * pink(frames, seed)
    burst = int(0.003 * rate)
    env = np.exp(-np.arange(burst) / (0.0005 * rate))
    starts = sorted(int(p) for p in rng.choice(np.arange(rate // 2, frames - rate // 2), 6, replace=False))
    for p in starts:
        y[p:p + burst] += env * np.sign(rng.standard_normal(burst))
    return y, starts


def make(kind: str, rate: int, channels: int) -> torch.Tensor:
    frames = int(SECONDS * rate)
    if kind == "pink":
        left = 0.5 * pink(frames, 1)
        right = 0.5 * pink(frames, 2)
    elif kind == "sine":
        t = np.arange(frames) / rate
        left = right = 0.5 * np.sin(2 * np.pi * 1000 * t)
    else:
        left, _ = transient(frames, rate, 3)
        right = np.roll(left, 7)
    data = np.stack([left, right][:channels])
    return torch.from_numpy(data[None].astype(np.float32))


CONFIGS = [(44100, 2), (48000, 1)]
CASES = [(kind, rate, ch, target) for kind in ("pink", "sine", "transient") for rate, ch in CONFIGS
         for target in (-23.0, -16.0, -14.0)] + [("transient", rate, ch, -10.0) for rate, ch in CONFIGS]


@pytest.mark.parametrize("kind,rate,channels,target", CASES,
                         ids=[f"{k}-{r}Hz-{c}ch-{t:g}LUFS" for k, r, c, t in CASES])
def test_reaches_target_under_ceiling(kind, rate, channels, target):
    w = make(kind, rate, channels)
    out, infos = loudness.normalize_loudness(w, rate, target, -1.0)
    assert out.shape == w.shape and out.dtype == torch.float32
    lufs = measured_lufs(out[0], rate)
    tp = measured_true_peak_db(out[0])
    assert abs(lufs - target) <= 0.5, (lufs, infos)
    assert tp <= -1.0 + 0.05, (tp, infos)
    info = infos[0]
    assert set(info) == {"input_lufs", "output_lufs", "gain_db", "dc_offset_dbfs", "input_true_peak_dbtp",
                         "output_true_peak_dbtp", "limited", "reached"}
    assert info["reached"] is True
    assert abs(info["output_lufs"] - lufs) < 0.01
    clean, _ = loudness.remove_dc(w[0].double().numpy(), rate)  # the input is measured without its DC
    assert abs(info["input_lufs"] - measured_lufs(torch.from_numpy(clean), rate)) < 1e-6
    assert abs(info["input_lufs"] - measured_lufs(w[0], rate)) < 0.01  # which changes no sound's loudness
    if kind == "transient":
        assert info["limited"] is True  # full-scale clicks pushed over the ceiling: the limiter path ran
    if kind == "sine":
        assert info["limited"] is False
        assert abs(info["gain_db"] - (target - info["input_lufs"])) < 1e-9  # one plain gain, nothing else
        assert np.allclose(out[0].numpy(), clean * 10 ** (info["gain_db"] / 20), atol=1e-6)


def test_limiter_only_touches_the_clicks():
    rate = 44100
    frames = int(SECONDS * rate)
    clip, starts = transient(frames, rate, 3)
    w = torch.from_numpy(clip[None, None].astype(np.float32))
    out, (info,) = loudness.normalize_loudness(w, rate, -23.0, -1.0)
    assert info["limited"] and info["reached"]
    far = np.ones(frames, bool)
    for p in starts:  # 80 ms release: 0.6 s later the gain is back within a small fraction of a dB
        far[max(0, p - rate // 100):p + int(0.6 * rate)] = False
    clean, _ = loudness.remove_dc(w[0].double().numpy(), rate)  # the limiter works on the input without its DC
    expected = clean[0] * 10 ** (info["gain_db"] / 20)
    got = out[0, 0].numpy().astype(np.float64)
    assert far.sum() > rate  # plenty of audio is checked
    assert np.allclose(got[far], expected[far], rtol=0.01, atol=1e-4)
    near = [np.abs(got[p:p + 200]).max() for p in starts]
    assert max(near) <= 10 ** (-1 / 20)  # and the clicks themselves came down under the ceiling


def test_unreachable_target_keeps_the_ceiling_and_warns(caplog):
    w = make("transient", 48000, 1)
    with caplog.at_level(logging.WARNING):
        out, (info,) = loudness.normalize_loudness(w, 48000, -5.0, -10.0)
    assert info["reached"] is False and info["limited"] is True
    assert measured_true_peak_db(out[0]) <= -10.0 + 0.05
    assert info["output_lufs"] < -5.5
    assert any("Normalize Loudness" in r.getMessage() and "ceiling" in r.getMessage() for r in caplog.records)


def test_full_scale_997_hz_sine_is_minus_3_01_lufs():
    rate = 48000
    t = np.arange(5 * rate) / rate
    clip = torch.from_numpy(np.sin(2 * np.pi * 997 * t)[None].astype(np.float32))
    assert abs(measured_lufs(clip, rate) - (-3.01)) < 0.1
    assert abs(loudness.integrated_loudness(clip, rate) - (-3.01)) < 0.1


def test_true_peak_sees_the_inter_sample_peak():
    # a sine at a quarter of the rate, 45 degrees off: every sample is +-0.707 (-3.01 dBFS), the wave peaks at 1.0
    n = np.arange(48000)
    fade = np.minimum(1.0, np.minimum(n, n[::-1]) / 2000)  # soft ends: no Gibbs overshoot from a hard start
    clip = torch.from_numpy((fade * np.sin(np.pi / 2 * n + np.pi / 4))[None].astype(np.float32))
    assert abs(20 * math.log10(clip.abs().max().item()) - (-3.01)) < 0.01
    assert abs(loudness.true_peak_dbtp(clip, 48000)) < 0.05
    assert loudness.true_peak_dbtp(torch.zeros(2, 1000), 48000) == -math.inf


def test_long_clips_are_oversampled_in_chunks_with_the_same_result(monkeypatch):
    data = make("transient", 8000, 2)[0].numpy().astype(np.float64)[:, :20000]
    whole = np.abs(resample_poly(data, 4, 1, axis=-1)).max(axis=0)
    monkeypatch.setattr(loudness, "CHUNK", 1500)
    chunked = loudness._oversampled_abs(data, 4)
    assert chunked.shape == whole.shape and np.allclose(chunked, whole, atol=1e-12)


def test_limiter_gain_never_lets_a_peak_through_and_looks_ahead():
    rng = np.random.default_rng(0)
    peak = np.abs(rng.standard_normal(20000)) * np.where(rng.random(20000) < 0.01, 8.0, 1.0)
    gain = loudness.limiter_gain(peak, 1.0, 8000)
    assert (gain * peak).max() <= 1.0 + 1e-12 and gain.max() <= 1.0 and gain.min() > 0
    spike = np.full(8000, 0.1)
    spike[4000] = 4.0
    gain = loudness.limiter_gain(spike, 1.0, 8000)  # 5 ms look-ahead = 40 samples
    assert gain[4000] <= 0.25 + 1e-12
    assert gain[3970] < 1.0 and gain[3900] == 1.0  # ramps down before the peak, not before the look-ahead
    assert 0.25 < gain[4400] < 1.0 and gain[7999] > 0.99  # released over ~80 ms (6 time constants later)


@pytest.mark.parametrize("level", [0.0, 1e-9])
def test_silence_is_refused_not_nan(level):
    w = torch.from_numpy((level * np.random.default_rng(0).standard_normal((1, 2, 48000))).astype(np.float32))
    with pytest.raises(ValueError, match=r"^Normalize Loudness: the audio is silent \(or below -70 LUFS\)") as err:
        loudness.normalize_loudness(w, 48000, -23.0)
    assert "upstream" in str(err.value)


def test_short_clip_is_refused_with_the_minimum_length():
    w = make("pink", 48000, 2)[..., : int(0.2 * 48000)]
    with pytest.raises(ValueError, match=r"^Normalize Loudness: .*at least 0\.4 s"):
        loudness.normalize_loudness(w, 48000, -23.0)


@pytest.mark.parametrize("target,ceiling,name", [(-80.0, -1.0, "target_lufs"), (1.0, -1.0, "target_lufs"),
                                                 (math.nan, -1.0, "target_lufs"), (-23.0, -25.0, "ceiling_dbtp"),
                                                 (-23.0, 0.5, "ceiling_dbtp"), (-23.0, math.inf, "ceiling_dbtp")])
def test_bad_settings_name_the_input(target, ceiling, name):
    with pytest.raises(ValueError, match=rf'^Normalize Loudness: "{name}" is '):
        loudness.normalize_loudness(make("sine", 48000, 1), 48000, target, ceiling)


@pytest.mark.parametrize("waveform,match", [
    (torch.zeros(1, 2, 0), "at least one sample"),
    (torch.zeros(48000), r"\[batch, channels, samples\]"),
    (torch.full((1, 2, 48000), math.nan), "NaN or inf.*upstream"),
    (torch.zeros(1, 6, 48000), "at most 5"),
])
def test_bad_audio_is_refused(waveform, match):
    with pytest.raises(ValueError, match=rf"^Normalize Loudness: .*{match}"):
        loudness.normalize_loudness(waveform, 48000, -23.0)


def test_input_untouched_inference_tensor_2d_and_batches():
    rate = 48000
    w = make("pink", rate, 2)[..., :rate]
    w = torch.cat([w, 0.1 * w.flip(-1)])  # two clips 20 dB apart
    with torch.inference_mode():
        frozen = w.clone()
    before = frozen.clone()
    out, infos = loudness.normalize_loudness(frozen, rate, -16.0)
    assert torch.equal(frozen, before) and out.data_ptr() != frozen.data_ptr()
    assert len(infos) == 2 and out.shape == (2, 2, rate)
    assert abs(infos[0]["input_lufs"] - infos[1]["input_lufs"] - 20) < 0.5
    for clip in out:
        assert abs(measured_lufs(clip, rate) - (-16.0)) <= 0.5
    single, infos = loudness.normalize_loudness(w[0], rate, -16.0)  # [C, T] is one clip
    assert single.shape == (1, 2, rate) and len(infos) == 1
    assert np.array_equal(single[0].numpy(), out[0].numpy())


def test_preset_labels_name_their_target_and_lie_in_range():
    """Each preset's label starts with its value (the dropdown shows the label, the node uses the value) and the
    value is a target normalize_loudness accepts; only "custom" has none."""
    lo, hi = loudness.TARGET_RANGE
    for label, value in loudness.PRESETS.items():
        if value is None:
            assert label == "custom"
            continue
        assert label.startswith(f"{value:g} LUFS"), (label, value)
        assert lo <= value <= hi


@pytest.mark.parametrize("call,match", [
    (lambda **kw: loudness.integrated_loudness(torch.zeros(2, 100), 48000, **kw), "at least 0.4 s"),
    (lambda **kw: loudness.integrated_loudness(torch.zeros(2, 48000), 44100.5, **kw), '"sample_rate" is 44100.5'),
    (lambda **kw: loudness.integrated_loudness(torch.zeros(1, 2, 3, 4), 48000, **kw), r"\[channels, samples\]"),
    (lambda **kw: loudness.true_peak_dbtp(torch.zeros(2, 100), 48000, 0, **kw), '"oversample" is 0'),
    (lambda **kw: loudness.true_peak_dbtp(torch.full((2, 100), math.nan), 48000, **kw), "NaN or inf"),
])
def test_the_measuring_functions_speak_for_the_node_that_calls_them(call, match):
    with pytest.raises(ValueError, match=rf"^Rank Takes: .*{match}"):
        call(node="Rank Takes")
    with pytest.raises(ValueError, match=rf"^Normalize Loudness: .*{match}"):  # by default: the node they serve
        call()
