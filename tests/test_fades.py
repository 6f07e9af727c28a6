"""Fade In / Out: exact zeros at the ends, curve shapes, no-op at 0 s, overlapping fades, and errors that name the
input."""
import math

import pytest
import torch

from conftest import pack_module

fades = pack_module("audio.fades")

SR = 8000


def _clip(batch=2, channels=2, frames=SR * 2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, channels, frames, generator=g) * 1.6 - 0.8).float()


@pytest.mark.parametrize("curve", fades.CURVES)
def test_curves_start_at_zero_end_at_one_and_never_fall(curve):
    c = fades.fade_curve(1001, curve)
    assert c.shape == (1001,) and c.dtype == torch.float32
    assert c[0].item() == 0.0 and c[-1].item() == 1.0
    assert bool((c.diff() >= 0).all())


@pytest.mark.parametrize("curve,mid", [
    ("linear", 0.5),
    ("equal-power", math.sin(math.pi / 4)),
    ("exponential", (10 ** (-30 / 20) - 1e-3) / (1 - 1e-3)),
])
def test_curve_midpoints(curve, mid):
    c = fades.fade_curve(1001, curve)
    assert c[500].item() == pytest.approx(mid, abs=1e-6)


def test_exponential_is_even_in_db():
    c = fades.fade_curve(1001, "exponential").double()
    db = 20 * torch.log10(c[1:] * (1 - 1e-3) + 1e-3)  # undo the rescale: the raw curve, -60 dB .. 0 dB
    assert torch.allclose(db.diff(), torch.full_like(db.diff(), 60 / 1000), atol=1e-4)


def test_tiny_curves():
    assert fades.fade_curve(0, "linear").shape == (0,)
    assert fades.fade_curve(1, "linear").tolist() == [0.0]
    assert fades.fade_curve(2, "exponential").tolist() == [0.0, 1.0]


@pytest.mark.parametrize("curve", fades.CURVES)
@pytest.mark.parametrize("channels", [1, 2])
def test_fades_make_the_ends_exactly_zero(curve, channels):
    x = _clip(channels=channels) + 0.5  # no sample is zero by chance
    out = fades.apply_fades(x, SR, 0.25, 0.5, curve)
    n_in, n_out = SR // 4, SR // 2
    assert out.shape == x.shape and out.dtype == torch.float32
    assert bool((out[..., 0] == 0).all()) and bool((out[..., -1] == 0).all())
    ramp = fades.fade_curve(n_in, curve)
    assert torch.equal(out[..., :n_in], x[..., :n_in] * ramp)
    assert torch.equal(out[..., -n_out:], x[..., -n_out:] * fades.fade_curve(n_out, curve).flip(0))
    assert torch.equal(out[..., n_in:-n_out], x[..., n_in:-n_out])  # untouched between the fades


def test_zero_seconds_leaves_the_audio_bit_identical_and_input_is_not_modified():
    x = _clip()
    keep = x.clone()
    out = fades.apply_fades(x, SR, 0.0, 0.0)
    assert torch.equal(out, x) and out.data_ptr() != x.data_ptr()
    fades.apply_fades(x, SR, 1.0, 1.0, "linear")
    assert torch.equal(x, keep)
    only_in = fades.apply_fades(x, SR, 0.5, 0.0)
    assert torch.equal(only_in[..., SR // 2:], x[..., SR // 2:]) and bool((only_in[..., 0] == 0).all())


def test_inference_tensor_and_two_d_input():
    with torch.inference_mode():
        x = _clip(batch=1)[0].clone()  # [C, T], an inference tensor
    out = fades.apply_fades(x, SR, 0.1, 0.1)
    assert out.shape == (1, 2, SR * 2) and out[0, :, 0].eq(0).all() and out[0, :, -1].eq(0).all()


def test_overlapping_fades_multiply():
    x = torch.ones(1, 1, SR)
    out = fades.apply_fades(x, SR, 0.75, 0.75, "linear")
    n = round(0.75 * SR)
    gain_in = torch.ones(SR)
    gain_in[:n] = fades.fade_curve(n, "linear")
    gain_out = torch.ones(SR)
    gain_out[SR - n:] = fades.fade_curve(n, "linear").flip(0)
    assert torch.allclose(out[0, 0], gain_in * gain_out, atol=0, rtol=1e-6)
    assert out[0, 0, 0].item() == 0.0 and out[0, 0, -1].item() == 0.0


def test_a_fade_of_the_whole_clip_is_allowed():
    out = fades.apply_fades(_clip(), SR, 2.0, 0.0, "equal-power")
    assert bool((out[..., 0] == 0).all())


@pytest.mark.parametrize("name", ["fade_in_seconds", "fade_out_seconds"])
def test_a_fade_longer_than_the_clip_says_how_to_fix_it(name):
    with pytest.raises(ValueError) as err:
        fades.apply_fades(_clip(), SR, **{name: 2.5})
    msg = str(err.value)
    assert msg.startswith(f'Fade In / Out: "{name}" is 2.5 but the clip is only 2 s long') and "Lower" in msg


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf")])
@pytest.mark.parametrize("name", ["fade_in_seconds", "fade_out_seconds"])
def test_bad_seconds_are_named(name, value):
    with pytest.raises(ValueError) as err:
        fades.apply_fades(_clip(), SR, **{name: value})
    assert str(err.value).startswith(f'Fade In / Out: "{name}" is {value}')


def test_unknown_curve_lists_the_choices():
    for call in (lambda: fades.apply_fades(_clip(), SR, 0.1, 0.1, "cosine"), lambda: fades.fade_curve(10, "cosine")):
        with pytest.raises(ValueError) as err:
            call()
        assert str(err.value) == ('Fade In / Out: "curve" is \'cosine\' but must be one of linear, equal-power, '
                                  "exponential. Pick one of those.")


@pytest.mark.parametrize("waveform,words", [
    (torch.zeros(1, 2, 0), ['"audio"', "at least one sample"]),
    (torch.zeros(100), ['"audio"', "[batch, channels, samples]"]),
])
def test_bad_waveforms_are_named(waveform, words):
    with pytest.raises(ValueError) as err:
        fades.apply_fades(waveform, SR, 0.0, 0.0)
    assert str(err.value).startswith("Fade In / Out: ") and all(w in str(err.value) for w in words)


def test_nan_samples_point_upstream():
    x = _clip()
    x[1, 0, 77] = float("nan")
    with pytest.raises(ValueError) as err:
        fades.apply_fades(x, SR, 0.1, 0.1)
    assert str(err.value).startswith('Fade In / Out: "audio" contains NaN/inf') and "upstream node" in str(err.value)
