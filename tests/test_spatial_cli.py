"""The command line's spatial soundscape: ``python -m nodes.cli --spatial panorama|wide --regions N --ambix OUT.wav
--binaural OUT.wav`` with the procedural engine (no model folders), checked on the written files."""
import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import pack_module

cli = pack_module("cli")
hs = pack_module("headless_spatial")
sp = pack_module("audio.spatial")
wav = pack_module("audio.wav")
ROOT = Path(__file__).resolve().parents[1]
RATE = 44100  # the procedural engine's rate
SEA, FOREST = (0.1, 0.3, 0.9), (0.1, 0.6, 0.1)


def run(argv, capsys):
    """``python -m nodes.cli ARGV`` in this process: (exit code, stdout, stderr); argparse errors exit 2."""
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as stop:
        code = stop.code
    out = capsys.readouterr()
    return code, out.out, out.err


def fmt_chunk(path) -> tuple[int, int, int]:
    """(format tag, channels, channel mask) of a WAV file's ``fmt `` chunk (mask 0 when not extensible)."""
    import struct

    data = Path(path).read_bytes()
    at = data.find(b"fmt ", 12)
    tag, channels = struct.unpack_from("<HH", data, at + 8)
    mask = struct.unpack_from("<I", data, at + 28)[0] if tag == 0xFFFE else 0
    return tag, channels, mask


def test_the_readme_command_writes_a_4_channel_ambix_and_a_binaural_file(tmp_path):
    """The README's command, as a user types it (a fresh interpreter, no model folder), 3 s long."""
    ambix, ears = tmp_path / "out.wav", tmp_path / "out_bin.wav"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    done = subprocess.run([sys.executable, "-m", "nodes.cli", "--spatial", "wide", "--regions", "3", "--ambix",
                           str(ambix), "--binaural", str(ears), "--seconds", "3", "--quiet"], cwd=ROOT,
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "bed (diffuse, all around)" in done.stdout and "region 3 at -40.0 deg" in done.stdout  # the plan table
    info = sf.info(str(ambix))
    assert (info.channels, info.samplerate, info.frames, info.subtype) == (4, RATE, 3 * RATE, "PCM_16")
    assert fmt_chunk(ambix) == (0xFFFE, 4, 0)  # WAVE_FORMAT_EXTENSIBLE, no speaker positions
    assert wav.read_metadata(str(ambix))["ambient"]["ambisonics"] == "AmbiX FOA ACN/SN3D"
    data, _ = sf.read(str(ambix), always_2d=True)
    w_rms = float(np.sqrt(np.mean(data[:, 0] ** 2)))
    assert 0.01 < w_rms and np.abs(data).max() < 1.0  # W audible, nothing clipped
    # the bundled picture's caption in every region: each source is seen in all three, so it sits at their mean,
    # in front (0 deg; its stereo take's channels at +-30 deg, and 3 s of a diffuse bed, pull it by some degrees)
    direction = sp.energy_directions(torch.from_numpy(data.T[None].astype(np.float32)), RATE, 3.0)[0, 0]
    assert abs(direction[0]) < 30.0 and direction[2] > 0.1
    binaural = sf.info(str(ears))
    assert (binaural.channels, binaural.samplerate, binaural.frames) == (2, RATE, 3 * RATE)
    assert fmt_chunk(ears)[:2] == (1, 2)
    left, right = sf.read(str(ears), always_2d=True)[0].T
    assert np.std(left - right) > 0.001 and np.sqrt(np.mean(left ** 2)) > 0.01  # two different, audible ears


def test_existing_files_are_never_overwritten(tmp_path, capsys):
    ambix, ears = tmp_path / "scene.wav", tmp_path / "ears.wav"
    ambix.write_bytes(b"keep me")
    code, out, err = run(["--spatial", "wide", "--regions", "3", "--ambix", ambix, "--binaural", ears,
                          "--seconds", "1", "--quiet"], capsys)
    assert code == 1 and "--ambix" in err and "already exists" in err and "never overwrites" in err
    assert ambix.read_bytes() == b"keep me" and not ears.exists()  # refused before any work: nothing written
    code, out, err = run(["--spatial", "panorama", "--binaural", ears, "--seconds", "1", "--quiet"], capsys)
    assert code == 0 and sf.info(str(ears)).channels == 2
    before = ears.read_bytes()
    code, out, err = run(["--spatial", "panorama", "--binaural", ears, "--seconds", "2", "--quiet"], capsys)
    assert code == 1 and "--binaural" in err and "already exists" in err and ears.read_bytes() == before


@pytest.mark.parametrize("argv,message", [
    (["--ambix", "x.wav"], "--ambix needs --spatial panorama|wide"),
    (["--binaural", "x.wav"], "--binaural needs --spatial panorama|wide"),
    (["--regions", "4"], "--regions needs --spatial"),
    (["--spatial", "fisheye", "--ambix", "x.wav"], "argument --spatial: invalid choice: 'fisheye'"),
    (["--spatial", "wide", "--regions", "9", "--ambix", "x.wav"],
     "--regions is 9 but must be a whole number from 3 to 8"),
    (["--spatial", "wide", "--regions", "2", "--ambix", "x.wav"], "--regions is 2"),
    (["--spatial", "wide"], "give at least one"),
    (["--spatial", "wide", "--ambix", "x.wav", "--hrtf", "head.sofa"], "--hrtf goes with --binaural"),
    (["--spatial", "wide", "--ambix", "x.wav", "--binaural", "x.wav"], "the same file"),
    (["--spatial", "wide", "--ambix", "x.wav", "--variations", "2"], "--variations"),
])
def test_bad_spatial_flags_exit_2_with_the_fix(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(argv, capsys)
    assert code == 2 and message in err, err
    assert list(tmp_path.iterdir()) == []


def test_loop_fades_and_loudness_work_on_the_4_channel_mix(tmp_path, capsys):
    import pyloudnorm

    ambix, ears = tmp_path / "a.wav", tmp_path / "b.wav"
    code, out, err = run(["--spatial", "wide", "--regions", "3", "--ambix", ambix, "--binaural", ears, "--seconds",
                          "5", "--loop", "1", "--loudness", "-23", "--quiet", "--bit-depth", "32-float"], capsys)
    assert code == 0, err
    data, rate = sf.read(str(ambix), always_2d=True)
    assert data.shape == (4 * RATE, 4)  # the loop's 1 s cross-fade made 5 s into 4 s, all four channels alike
    assert abs(pyloudnorm.Meter(rate).integrated_loudness(data[:, 0]) + 23.0) < 0.3  # measured on W
    assert "loudness:" in out and "-> -23.0 LUFS" in out
    assert b"smpl" in ambix.read_bytes()[:200] and b"smpl" in ears.read_bytes()[:200]  # loop points in both
    assert sf.info(str(ears)).frames == 4 * RATE


def panorama_with_sea_on_the_left(width=720, height=360):
    """Forest-green all around except the sector on the left (azimuth +90 deg: a quarter of the way across)."""
    image = torch.zeros(1, height, width, 3)
    image[...] = torch.tensor(FOREST)
    image[:, :, width // 8:3 * width // 8] = torch.tensor(SEA)
    return image


def colour_captions(batch, on_step=None):
    """A stand-in captioner that reads colour (never faked BLIP output): "the sea" where most pixels are blue."""
    blue = (batch[..., 2] > batch[..., 1]).float().mean(dim=(1, 2))
    return ["the sea" if b > 0.5 else "a forest" for b in blue]


def test_the_dominant_region_is_heard_from_its_azimuth():
    """The CLI's chain (plan, procedural takes, encode, mix) on a panorama whose sea is on the left: the sea's surf
    is the loudest source, so the scene's energy vector points left (+90 deg)."""
    args = argparse.Namespace(spatial="panorama", regions=4, preset="natural field recording", quiet=True, seed=0,
                              minutes=None)
    plan = hs.plan_spatial_scene(args, panorama_with_sea_on_the_left(), hs._Captioner(colour_captions))
    sea = [a for p, a in zip(plan.prompts, plan.azimuths) if "waves" in p]
    assert sea == [90.0]
    ambix, rate = hs.mix_scene(plan, hs.procedural_takes([plan.bed, *plan.prompts], 3.0, args))
    assert ambix.shape == (1, 4, 3 * RATE) and rate == RATE
    azimuth, _, strength, _ = sp.energy_directions(ambix, rate, 3.0)[0, 0]
    assert abs(azimuth - 90.0) < 15.0 and strength > 0.1


def test_hrtf_flag_reads_a_sofa_file(tmp_path, capsys):
    from test_spatial_hrtf import write_sofa

    sofa = write_sofa(tmp_path / "head.sofa", rate=44100)
    ears = tmp_path / "ears.wav"
    code, out, err = run(["--spatial", "wide", "--regions", "3", "--binaural", ears, "--hrtf", sofa, "--seconds",
                          "1", "--quiet"], capsys)
    assert code == 0, err
    assert sf.info(str(ears)).channels == 2
    assert wav.read_metadata(str(ears))["ambient"]["hrtf"] == "head.sofa"


def test_hrtf_flag_names_what_is_missing(tmp_path, capsys):
    ears = tmp_path / "ears.wav"
    code, out, err = run(["--spatial", "wide", "--binaural", ears, "--hrtf", tmp_path / "nope.sofa"], capsys)
    assert code == 1 and "--hrtf" in err and "no such file" in err and not ears.exists()


def test_model_engine_captions_each_region_and_samples_one_take_per_source(comfy_models, tmp_path, capsys):
    """With model folders (the tiny random BLIP and Stable Audio): BLIP captions each region and the whole picture,
    Stable Audio makes the bed and each source (the audio is noise from random weights: this checks the chain)."""
    ambix = tmp_path / "scene.wav"
    code, out, err = run(["--spatial", "panorama", "--regions", "3", "--ambix", ambix, "--blip", comfy_models["blip"],
                          "--stable-audio", comfy_models["stable_audio"], "--seconds", "0.5", "--steps", "2",
                          "--quiet"], capsys)
    assert code == 0, err
    assert "captions: BLIP" in out and out.count("region ") >= 3
    takes = [line for line in out.splitlines() if line.startswith("take ")]
    assert len(takes) >= 2 and takes[0].startswith(f"take 1/{len(takes)}")  # the bed and at least one source
    data, rate = sf.read(str(ambix), always_2d=True)
    assert data.shape[1] == 4 and data.shape[0] == round(0.5 * rate) and np.abs(data[:, 0]).max() > 0
