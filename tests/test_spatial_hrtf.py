"""Binaural from Ambisonics through a user's SOFA HRTF (optional, read with sofar): a synthetic SOFA file written by
sofar itself, whose ear impulse responses are delayed and attenuated impulses, so the decode's interaural time and
level differences are known. Without sofar those tests skip; the missing-reader message is tested in any case."""
import sys

import numpy as np
import pytest
import torch

from conftest import pack_module, run_node

sp = pack_module("audio.spatial")
hrtf_mod = pack_module("audio.hrtf")
comfy_glue = pack_module("comfy.glue")
RATE = 48000
ONSET = 8  # samples before the near ear's impulse
NEED_SOFAR = "the optional SOFA reader is not installed (pip install sofar); the SOFA HRTF decode is not tested"


def grid() -> np.ndarray:
    """Measured directions (azimuth, elevation, radius): the horizon every 15 deg, +-30 and +-60 deg every 30 deg,
    and the poles."""
    rows = [(az, 0.0) for az in range(0, 360, 15)]
    rows += [(az, el) for el in (-60.0, -30.0, 30.0, 60.0) for az in range(0, 360, 30)]
    rows += [(0.0, 90.0), (0.0, -90.0)]
    return np.array([(float(a), e, 1.5) for a, e in rows])


def write_sofa(path, rate=RATE, delay=20, ild_db=6.0, taps=64, swap_receivers=False):
    """A SimpleFreeFieldHRIR file: a source on the left (y > 0) reaches the left ear at ``ONSET`` with gain 1 and
    the right ear ``delay`` samples later, ``ild_db`` quieter; mirrored on the right; in the median plane both
    ears alike."""
    sofar = pytest.importorskip("sofar", reason=NEED_SOFAR)
    positions = grid()
    ir = np.zeros((len(positions), 2, taps))
    far = 10 ** (-ild_db / 20)
    for m, (az, el, _) in enumerate(positions):
        y = np.sin(np.radians(az)) * np.cos(np.radians(el))
        near, other = (0, 1) if y > 1e-9 else (1, 0)
        if abs(y) <= 1e-9:
            ir[m, :, ONSET] = 1.0
        else:
            ir[m, near, ONSET] = 1.0
            ir[m, other, ONSET + delay] = far
    sofa = sofar.Sofa("SimpleFreeFieldHRIR")
    sofa.Data_IR = ir[:, ::-1] if swap_receivers else ir
    if swap_receivers:
        sofa.ReceiverPosition = np.array([[[0.0], [-0.09], [0.0]], [[0.0], [0.09], [0.0]]])
    sofa.SourcePosition = positions
    sofa.Data_SamplingRate = float(rate)
    sofar.write_sofa(str(path), sofa)
    return path


def noise(seconds=0.5, seed=3):
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.standard_normal((1, 1, int(seconds * RATE))).astype(np.float32) * 0.1)


def lead_and_level(ears: np.ndarray) -> tuple[int, float]:
    """(samples by which the left ear leads the right, left/right level in dB) of a ``[2, T]`` decode."""
    from scipy.signal import correlate, correlation_lags

    left, right = ears[0].astype(np.float64), ears[1].astype(np.float64)
    xc = correlate(right, left, mode="full")
    lag = int(correlation_lags(len(right), len(left), mode="full")[np.argmax(np.abs(xc))])
    return lag, 20 * np.log10(np.sqrt(np.mean(left ** 2)) / np.sqrt(np.mean(right ** 2)))


@pytest.mark.parametrize("swap", [False, True])
def test_sofa_decode_has_the_files_itd_and_ild(tmp_path, swap):
    hrtf = hrtf_mod.read_sofa(str(write_sofa(tmp_path / "head.sofa", swap_receivers=swap)))
    assert hrtf.hrirs.shape == (len(grid()), 2, 64) and hrtf.sample_rate == RATE
    left_src = hrtf_mod.decode_binaural_hrtf(sp.encode_source(noise(), RATE, 90.0), RATE, hrtf)[0].numpy()
    lag, level_db = lead_and_level(left_src)
    assert lag == 20 and level_db > 3.0  # the left ear leads by the file's delay and is louder
    right_src = hrtf_mod.decode_binaural_hrtf(sp.encode_source(noise(), RATE, -90.0), RATE, hrtf)[0].numpy()
    lag, level_db = lead_and_level(right_src)
    assert lag == -20 and level_db < -3.0
    front = hrtf_mod.decode_binaural_hrtf(sp.encode_source(noise(), RATE, 0.0), RATE, hrtf)[0].numpy()
    assert np.abs(front[0] - front[1]).max() < 1e-5 * np.abs(front).max()  # both ears alike
    assert front.shape == (2, RATE // 2)


def test_sofa_at_another_rate_is_resampled_and_yaw_turns_the_head(tmp_path):
    hrtf = hrtf_mod.read_sofa(str(write_sofa(tmp_path / "head96.sofa", rate=96000, delay=40)))
    ears = hrtf_mod.decode_binaural_hrtf(sp.encode_source(noise(), RATE, 90.0), RATE, hrtf)[0].numpy()
    lag, level_db = lead_and_level(ears)
    assert abs(lag - 20) <= 1 and level_db > 3.0  # 40 samples at 96 kHz = 20 at 48 kHz
    # the head turned 90 deg to the left faces the source: both ears alike
    turned = hrtf_mod.decode_binaural_hrtf(sp.encode_source(noise(), RATE, 90.0), RATE, hrtf, yaw_deg=90.0)[0].numpy()
    assert abs(lead_and_level(turned)[1]) < 0.1


def test_binaural_node_takes_a_sofa_file_from_models_hrtf(tmp_path):
    folder_paths = pytest.importorskip("folder_paths")
    (tmp_path / "hrtf" / "mine").mkdir(parents=True)
    write_sofa(tmp_path / "hrtf" / "mine" / "head.sofa")
    folder_paths.add_model_folder_path("hrtf", str(tmp_path / "hrtf"))
    cls = pack_module("comfy.spatial").AmbientBinaural
    choices, options = cls.INPUT_TYPES()["optional"]["hrtf"]
    assert "mine/head.sofa" in choices and options["default"] == choices[0] == hrtf_mod.BUILTIN
    scene = {"waveform": sp.encode_source(noise(), RATE, 90.0), "sample_rate": RATE}
    (ears,) = run_node("AmbientBinaural", audio=scene, yaw=0.0, output="binaural", hrtf="mine/head.sofa")
    lag, level_db = lead_and_level(ears["waveform"][0].numpy())
    assert lag == 20 and level_db > 3.0 and ears["ambient_meta"]["hrtf"] == "mine/head.sofa"
    with pytest.raises(ValueError, match=r'Binaural from Ambisonics: "hrtf" is \'gone.sofa\'.*models/hrtf'):
        run_node("AmbientBinaural", audio=scene, yaw=0.0, output="binaural", hrtf="gone.sofa")


def test_default_hrtf_is_the_built_in_head_as_before():
    scene = {"waveform": sp.encode_source(noise(), RATE, 60.0), "sample_rate": RATE}
    (old,) = run_node("AmbientBinaural", audio=scene, yaw=0.0, output="binaural")
    (new,) = run_node("AmbientBinaural", audio=scene, yaw=0.0, output="binaural", hrtf=hrtf_mod.BUILTIN)
    assert torch.equal(old["waveform"], new["waveform"])
    assert torch.equal(old["waveform"], sp.decode_binaural(scene["waveform"], RATE))


def test_missing_sofar_says_pip_install_sofar(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "sofar", None)  # what Python does when sofar is not installed: ImportError
    with pytest.raises(ValueError, match=r"Binaural from Ambisonics: \"hrtf\" is 'head.sofa'.*`pip install sofar`"):
        hrtf_mod.read_sofa(str(tmp_path / "head.sofa"))


def test_a_file_that_is_not_sofa_is_refused_by_name(tmp_path):
    pytest.importorskip("sofar", reason=NEED_SOFAR)
    bad = tmp_path / "bad.sofa"
    bad.write_bytes(b"not a netCDF file")
    with pytest.raises(ValueError, match=r"\"hrtf\" file 'bad.sofa' could not be read as SOFA"):
        hrtf_mod.read_sofa(str(bad))
