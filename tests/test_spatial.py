"""First-order ambisonics (AmbiX): encoding gains, decoded direction, rotation, the spherical-head binaural decode,
and 4-channel audio through the rest of the pack. Measured on the output signals."""
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import pack_module

sp = pack_module("audio.spatial")
RATE = 48000


def noise(seconds=1.0, channels=1, seed=1):
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.standard_normal((1, channels, int(seconds * RATE))).astype(np.float32))


def ratio(a, b):
    """Least-squares gain of signal a on signal b."""
    return float(np.dot(a, b) / np.dot(b, b))


@pytest.mark.parametrize("azimuth", [-170, -120, -90, -45, -10, 0, 20, 60, 90, 135, 180])
@pytest.mark.parametrize("elevation", [-60, -20, 0, 35, 80])
def test_encoded_source_has_the_sn3d_gains(azimuth, elevation):
    ambix = sp.encode_source(noise(0.1), RATE, azimuth, elevation)[0].numpy().astype(np.float64)
    w, y, z, x = ambix
    theta, phi = math.radians(azimuth), math.radians(elevation)
    assert ratio(y, w) == pytest.approx(math.sin(theta) * math.cos(phi), abs=1e-6)
    assert ratio(x, w) == pytest.approx(math.cos(theta) * math.cos(phi), abs=1e-6)
    assert ratio(z, w) == pytest.approx(math.sin(phi), abs=1e-6)


def angle_error(a, b):
    return abs((a - b + 180.0) % 360.0 - 180.0)


@pytest.mark.parametrize("azimuth", [0, 17, 45, 90, 100, 160, -30, -90, -135])
def test_energy_vector_of_the_decoded_scene_points_at_the_source(azimuth):
    directions = sp.energy_directions(sp.encode_source(noise(), RATE, azimuth, 0.0), RATE, 0.25)[0]
    assert max(angle_error(d, azimuth) for d in directions[:, 0]) < 2.0
    assert np.all(np.abs(directions[:, 1]) < 2.0)


@pytest.mark.parametrize("azimuth,yaw", [(0, 90), (30, -45), (-100, 170), (60, 30)])
def test_yaw_rotation_moves_the_decoded_direction_by_yaw(azimuth, yaw):
    turned = sp.rotate(sp.encode_source(noise(), RATE, azimuth, 10.0), yaw)
    directions = sp.energy_directions(turned, RATE, 0.25)[0]
    assert max(angle_error(d, azimuth + yaw) for d in directions[:, 0]) < 2.0


def test_width_narrows_the_image_and_360_is_all_around():
    point, wide, around = (sp.energy_directions(sp.encode_source(noise(), RATE, 60, 0, width_deg=w), RATE, 0.5)[0]
                           for w in (0, 120, 360))
    assert point[0, 2] > wide[0, 2] > around[0, 2]
    assert angle_error(wide[0, 0], 60) < 2.0
    assert around[0, 2] < 0.05  # no direction left


def test_stereo_channels_sit_at_plus_minus_half_the_spread():
    left_only = torch.cat([noise(), torch.zeros_like(noise())], dim=1)
    directions = sp.energy_directions(sp.encode_source(left_only, RATE, 10, 0, stereo_spread_deg=80), RATE, 0.5)
    assert angle_error(directions[0, 0, 0], 50) < 2.0


def test_distance_lowers_the_level_by_one_over_r_and_dulls_the_highs():
    from scipy.signal import welch

    near = sp.encode_source(noise(), RATE, 0, 0, distance_m=1.0)[0, 0].numpy()
    far = sp.encode_source(noise(), RATE, 0, 0, distance_m=100.0)[0, 0].numpy()
    f, p_near = welch(near, RATE, nperseg=2048)
    _, p_far = welch(far, RATE, nperseg=2048)
    low, high = (f > 100) & (f < 500), (f > 7000) & (f < 9000)
    assert 10 * np.log10(p_far[low].sum() / p_near[low].sum()) == pytest.approx(-40.0, abs=0.3)
    assert 10 * np.log10(p_far[high].sum() / p_near[high].sum()) < -45.0  # air absorption on top of 1/r


def test_diffuse_bed_is_uncorrelated_with_the_diffuse_field_energies():
    ambix = sp.encode_diffuse(noise(2.0, channels=2), RATE)[0].numpy().astype(np.float64)
    power = (ambix ** 2).mean(axis=1)
    assert power[0] == pytest.approx(1.0, rel=0.05)
    assert power[1:] == pytest.approx([1 / 3] * 3, rel=0.05)
    corr = np.corrcoef(ambix)
    assert np.abs(corr[np.triu_indices(4, 1)]).max() < 0.05
    directions = sp.energy_directions(torch.from_numpy(ambix[None]), RATE, 0.5)[0]
    assert directions[:, 2].max() < 0.15  # no direction


def cross_correlation_lag_ms(left, right, max_lag=200):
    """How much later right is than left, in ms (peak of the cross-correlation, parabolic sub-sample)."""
    n = len(left)
    xc = np.fft.irfft(np.fft.rfft(right, 2 * n) * np.conj(np.fft.rfft(left, 2 * n)))
    xc = np.concatenate([xc[-max_lag:], xc[:max_lag + 1]])
    i = int(np.argmax(xc))
    y0, y1, y2 = xc[i - 1], xc[i], xc[i + 1]
    return (i - max_lag + 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2)) / RATE * 1000.0


def high_band_level_db(left, right, above_hz=1500.0):
    from scipy.signal import welch

    f, p_left = welch(left, RATE, nperseg=2048)
    _, p_right = welch(right, RATE, nperseg=2048)
    band = f > above_hz
    return 10 * np.log10(p_left[band].sum() / p_right[band].sum())


def test_model_itd_is_woodworth():
    a_c = sp.HEAD_RADIUS_M / sp.SPEED_OF_SOUND
    itd = sp.ear_delay_seconds(np.array(math.pi)) - sp.ear_delay_seconds(np.array(0.0))
    assert float(itd) == pytest.approx(a_c * (math.sin(math.pi / 2) + math.pi / 2))
    assert float(itd) * 1000 == pytest.approx(0.656, abs=0.002)


@pytest.mark.parametrize("azimuth,sign", [(90, 1), (-90, -1)])
def test_binaural_side_source_leads_and_is_louder_at_the_near_ear(azimuth, sign):
    left, right = sp.decode_binaural(sp.encode_source(noise(2.0), RATE, azimuth, 0), RATE)[0].numpy()
    model_ms = 1000 * float(sp.ear_delay_seconds(np.array(math.pi)))
    assert cross_correlation_lag_ms(left, right) == pytest.approx(sign * model_ms, rel=0.10)
    assert sign * high_band_level_db(left, right) > 6.0


def test_binaural_front_source_is_equal_at_both_ears():
    left, right = sp.decode_binaural(sp.encode_source(noise(2.0), RATE, 0, 0), RATE)[0].numpy()
    assert abs(cross_correlation_lag_ms(left, right)) < 0.01
    assert abs(high_band_level_db(left, right)) < 0.1
    assert np.allclose(left, right, atol=1e-5)


def test_binaural_head_yaw_turns_the_scene():
    # a source at the front with the head turned 90 deg right (yaw -90) is heard at the left ear
    left, right = sp.decode_binaural(sp.encode_source(noise(2.0), RATE, 0, 0), RATE, yaw_deg=-90)[0].numpy()
    assert cross_correlation_lag_ms(left, right) > 0.55
    assert high_band_level_db(left, right) > 6.0


def test_stereo_speaker_decode_puts_a_left_source_left():
    left, right = sp.decode(sp.encode_source(noise(), RATE, 90, 0), RATE, 0, "stereo speakers")[0].numpy()
    assert 10 * np.log10((left ** 2).sum() / (right ** 2).sum()) > 7.0


def test_mix_in_space_sums_layers_and_turns_the_scene():
    a = sp.encode_source(noise(1.0, seed=2), RATE, 30, 0)
    b = sp.encode_source(noise(0.5, seed=3), RATE, 30, 0)  # shorter: looped to the first layer's length
    mixed, rate = sp.mix_ambix([(a, RATE, 0.0), (b, RATE, -6.0)], yaw_deg=45)
    assert rate == RATE and mixed.shape == a.shape
    directions = sp.energy_directions(mixed, RATE, 0.25)[0]
    assert max(angle_error(d, 75) for d in directions[:, 0]) < 2.0


def test_bad_inputs_name_the_node_and_the_input():
    with pytest.raises(ValueError, match=r'Spatial Encode \(AmbiX\): "azimuth"'):
        sp.encode_source(noise(0.1), RATE, float("nan"))
    with pytest.raises(ValueError, match=r"Binaural from Ambisonics: \"audio\" has 2 channels"):
        sp.decode_binaural(noise(0.1, channels=2), RATE)
    with pytest.raises(ValueError, match="already ambisonic"):
        sp.encode_source(noise(0.1, channels=4), RATE, 0)


# ------------------------------------------------------------------ 4-channel AmbiX through the rest of the pack
def ambix_scene(seconds=4.0):
    """A source at 60 deg plus a quieter diffuse bed: 4 channels, not proportional to each other."""
    source = sp.encode_source(noise(seconds, seed=4), RATE, 60, 0)
    return source + 0.3 * sp.encode_diffuse(noise(seconds, channels=2, seed=5), RATE)


def test_seamless_loop_cuts_and_fades_all_four_channels_identically():
    loop = pack_module("audio.loop")
    scene = ambix_scene()
    looped, _ = loop.make_seamless_loop(scene, RATE, 0.5, 0.5)
    assert looped.shape[:2] == (1, 4)
    # every channel gets the same cut and gains: permuting the channels permutes the loop, nothing else
    order = torch.tensor([3, 1, 0, 2])
    permuted, _ = loop.make_seamless_loop(scene[:, order], RATE, 0.5, 0.5)
    assert torch.equal(permuted, looped[:, order])
    # the source's direction survives the wrap: the energy vector across the seam still points at 60 deg
    wrapped = torch.cat([looped[..., -RATE // 4:], looped[..., :RATE // 4]], dim=-1)
    assert angle_error(sp.energy_directions(wrapped, RATE, 0.5)[0, 0, 0], 60) < 3.0
    metrics = loop.loop_seam_metrics(looped, RATE)
    assert metrics["seam_jump"] < 6 * metrics["median_jump"]


def test_seamless_loop_of_a_point_source_keeps_its_channel_ratios_exactly():
    loop = pack_module("audio.loop")
    source = sp.encode_source(noise(4.0, seed=6), RATE, -40, 20)
    looped, _ = loop.make_seamless_loop(source, RATE, 0.5, 0.5)
    gains = sp.direction_gains(-40, 20)
    for k in range(1, 4):
        assert torch.allclose(looped[0, k], looped[0, 0] * float(gains[k]), atol=1e-5)


def test_fades_scale_all_four_channels_alike():
    fades = pack_module("audio.fades")
    scene = ambix_scene(2.0)
    faded = fades.apply_fades(scene, RATE, 0.5, 0.5, "equal-power")
    curve = faded[0, 0] / scene[0, 0]
    for k in range(1, 4):
        ok = scene[0, k].abs() > 1e-3
        assert torch.allclose((faded[0, k] / scene[0, k])[ok], curve[ok], atol=1e-4)


def test_loudness_of_ambix_is_measured_on_w():
    loudness = pack_module("audio.loudness")
    scene = ambix_scene(3.0)
    assert loudness.integrated_loudness(scene[0], RATE) == pytest.approx(
        loudness.integrated_loudness(scene[0, :1], RATE), abs=1e-9)
    out, infos = loudness.normalize_loudness(scene, RATE, -23.0, -1.0)
    assert loudness.integrated_loudness(out[0, :1], RATE) == pytest.approx(-23.0, abs=0.5)
    if not infos[0]["limited"]:  # one gain for all four channels (after the same DC high-pass on each)
        clean, _ = loudness.remove_dc(scene[0].double().numpy(), RATE)
        gains = out[0].double().numpy() @ clean.T / (clean * clean).sum(axis=-1)  # least-squares gain per channel
        assert np.allclose(np.diag(gains), gains[0, 0], rtol=1e-4)


def test_spectrogram_of_ambix_draws_w():
    spectrogram = pack_module("audio.spectrogram")
    scene = ambix_scene(1.0)
    scene[0, 1:] = torch.sin(torch.arange(RATE) * 2 * math.pi * 3000 / RATE) * 5  # loud tones on Y, Z, X only
    image = np.asarray(spectrogram.render_spectrogram(scene[0], RATE, width=256, height=128))
    w_only = np.asarray(spectrogram.render_spectrogram(scene[0, :1], RATE, width=256, height=128))
    assert np.array_equal(image[128 // 5:], w_only[128 // 5:])


@pytest.mark.parametrize("bit_depth,tol", [("32-float", 0.0), ("24", 2e-7)])
def test_save_wav_round_trips_four_channels_as_ambisonic_wavex(tmp_path, bit_depth, tol):
    import struct

    import soundfile as sf

    wav = pack_module("audio.wav")
    scene = ambix_scene(0.5)
    scene = scene / scene.abs().max() * 0.9
    saved = wav.save_wav(scene, RATE, str(tmp_path), "ambix/scene", bit_depth)
    info = sf.info(saved[0].path)
    assert (info.channels, info.frames, info.format) == (4, scene.shape[-1], "WAVEX")
    data, rate = sf.read(saved[0].path, always_2d=True, dtype="float32")
    assert rate == RATE and np.abs(data.T - scene[0].numpy()).max() <= tol
    riff = Path(saved[0].path).read_bytes()
    at = riff.find(b"fmt ")
    assert struct.unpack_from("<IHH", riff, at + 4) == (40, 0xFFFE, 4)
    assert struct.unpack_from("<I", riff, at + 28)[0] == 0  # no speaker positions: not quad


def test_binaural_decode_in_blocks_equals_the_whole_clip(monkeypatch):
    scene = ambix_scene(1.5)
    whole = sp.decode_binaural(scene, RATE, 30.0)
    monkeypatch.setattr(sp, "BLOCK_FRAMES", 256 * 40)  # many blocks, each with its 32-frame context
    blocks = sp.decode_binaural(scene, RATE, 30.0)
    assert torch.allclose(blocks, whole, atol=1e-5)


def test_diffuse_bed_with_a_dc_offset_still_has_no_direction():
    # an all-pass passes DC unchanged: without care a bed's DC offset reaches Y, Z and X alike and gives it a
    # direction (measured in a real run: |rE| 0.39 at 45 deg)
    bed = noise(2.0, channels=2) * 0.1 + 0.5
    directions = sp.energy_directions(sp.encode_diffuse(bed, RATE), RATE, 0.5)[0]
    assert directions[:, 2].max() < 0.15
