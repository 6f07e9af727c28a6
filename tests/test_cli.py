"""The command line: the README's demo command end to end, real model folders, and exit codes."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

pytestmark = pytest.mark.slow  # each test runs the CLI in fresh interpreters (a minute or more each)
ROOT = Path(__file__).resolve().parents[1]
PLUMBING = ("--engine", "plumbing")  # the tiny random models (the default without --stable-audio is procedural)


def _cli(*args, cwd=ROOT):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    return subprocess.run([sys.executable, "-m", "nodes.cli", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=300)


def test_demo_command_writes_wav_and_spectrogram(tmp_path):
    run = _cli("--out", str(tmp_path), *PLUMBING, "--steps", "8", "--quiet")
    assert run.returncode == 0, run.stderr
    assert "PLUMBING DEMO" in run.stdout and "caption:" in run.stdout and "prompt:" in run.stdout
    wav = tmp_path / "ambient" / "soundscape_00001_.wav"
    info = sf.info(str(wav))
    assert (info.channels, info.samplerate, info.subtype) == (2, 44100, "PCM_16")
    assert abs(info.duration - 2.22) < 0.01  # the tiny model's maximum (2.23 s), rounded down
    png = tmp_path / "ambient" / "soundscape_00001_.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = _cli("--out", str(tmp_path), *PLUMBING, "--steps", "2", "--quiet", "--seconds", "0.5")
    assert again.returncode == 0 and (tmp_path / "ambient" / "soundscape_00002_.wav").is_file()
    assert sf.info(str(wav)).frames == info.frames  # the first file was not touched


@pytest.mark.skipif(not hasattr(__import__("diffusers"), "StableAudio3Pipeline"), reason="needs diffusers >= 0.42")
def test_demo_family_sa3_small_runs_the_small_chain(tmp_path):
    """Issue 14: the plumbing demo shows Stable Audio 3 Small too (a tiny random one with the exact SAME-S
    autoencoder), clearly labelled, sampled with its own 8 steps and loop-able by inpainting."""
    run = _cli("--out", str(tmp_path), *PLUMBING, "--demo-family", "sa3-small", "--seconds", "3", "--quiet",
               "--no-spectrogram")
    assert run.returncode == 0, run.stderr
    assert "PLUMBING DEMO" in run.stdout and "Stable Audio 3 Small (exact SAME-S autoencoder)" in run.stdout
    info = sf.info(str(tmp_path / "ambient" / "soundscape_00001_.wav"))
    assert (info.channels, info.samplerate) == (2, 44100) and info.duration == pytest.approx(3.0, abs=1e-3)
    assert " ".join(_cli("--help").stdout.split()).count("(random weights: noise)") == 1


def test_default_command_makes_a_procedural_bed_and_says_so(tmp_path):
    """Issue 19: with no model folder the README's first command writes an audible procedural bed of the bundled
    beach picture (surf + wind), loops it on request, and says what real models add."""
    import numpy as np

    run = _cli("--out", str(tmp_path), "--quiet", "--seconds", "12", "--loop", "2", "--loudness", "-23")
    assert run.returncode == 0, run.stderr
    assert "PROCEDURAL ENGINE" in run.stdout and "--stable-audio" in run.stdout and "surf 0 dB" in run.stdout
    data, rate = sf.read(str(tmp_path / "ambient" / "soundscape_00001_.wav"), always_2d=True)
    assert data.shape == (10 * 44100, 2) and rate == 44100
    assert 0.05 < np.abs(data).max() < 1.0 and np.std(data[:, 0] - data[:, 1]) > 0.01  # audible, stereo
    other = _cli(str(tmp_path / "ambient" / "soundscape_00001_.png"), "--out", str(tmp_path), "--quiet")
    assert other.returncode == 1 and "--caption" in other.stderr  # another picture needs words or --blip


def test_real_model_folders_and_a_folder_of_images(comfy_models, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    from PIL import Image

    for i, colour in enumerate(["red", "blue"]):
        Image.new("RGB", (40, 30), colour).save(images / f"{i}.png")
    run = _cli(str(images), "--blip", comfy_models["blip"], "--stable-audio", comfy_models["stable_audio"],
               "--out", str(tmp_path / "out"), "--seconds", "0.5", "--steps", "3", "--variations", "2",
               "--bit-depth", "24", "--no-spectrogram", "--quiet", "--preset", "cozy interior")
    assert run.returncode == 0, run.stderr
    files = sorted(p.name for p in (tmp_path / "out" / "ambient").iterdir())
    assert files == [f"soundscape_0000{i}_.wav" for i in range(1, 5)]  # 2 images x 2 variations
    assert sf.info(str(tmp_path / "out" / "ambient" / files[0])).subtype == "PCM_24"
    assert "cozy interior ambience" in run.stdout


def test_errors_exit_1_with_a_message_and_bad_flags_exit_2(comfy_models, tmp_path):
    run = _cli("--blip", str(tmp_path / "nope"), "--stable-audio", comfy_models["stable_audio"], "--out",
               str(tmp_path))
    assert run.returncode == 1 and run.stderr.startswith("error: ")
    assert "hf download" in run.stderr
    too_long = _cli("--out", str(tmp_path), "--engine", "plumbing", "--seconds", "60", "--steps", "2", "--quiet")
    assert too_long.returncode == 1 and "--seconds is 60" in too_long.stderr  # the CLI flag, not the node input
    assert list(tmp_path.iterdir()) == []
    assert _cli("--steps", "many").returncode == 2
    assert "usage:" in _cli("--help").stdout


def test_sound_craft_flags(tmp_path):
    import pyloudnorm

    from test_craft_nodes import read_smpl_loops

    run = _cli("--out", str(tmp_path), *PLUMBING, "--steps", "2", "--quiet", "--minutes", "0.1", "--overlap", "0.5",
               "--loop", "1", "--loudness", "-23", "--no-spectrogram")
    assert run.returncode == 0, run.stderr
    wav = tmp_path / "ambient" / "soundscape_00001_.wav"
    data, rate = sf.read(str(wav), always_2d=True)
    assert data.shape == (int(0.1 * 60 * 44100) - 44100, 2)  # 6 s, minus the 1 s loop overlap
    assert read_smpl_loops(str(wav)) == [(0, data.shape[0] - 1)]
    assert abs(pyloudnorm.Meter(rate).integrated_loudness(data) - (-23)) <= 0.5
    assert "-> -23.0 LUFS" in run.stdout
    faded = _cli("--out", str(tmp_path), *PLUMBING, "--steps", "2", "--quiet", "--seconds", "2", "--loop", "0.5", "--fade", "0.2",
                 "0.3", "--no-spectrogram")
    wav2 = tmp_path / "ambient" / "soundscape_00002_.wav"
    assert faded.returncode == 0 and read_smpl_loops(str(wav2)) is None  # a faded loop is no longer a loop


def test_demo_defaults_fit_the_demo_clip_and_errors_name_the_flags(tmp_path):
    """Issue 16: --minutes and --loop with their default cross-fades work on the demo's 2.2 s segments and clip;
    a cross-fade too long for them is refused naming --overlap or --loop, not the node input."""
    long = _cli("--out", str(tmp_path), *PLUMBING, "--steps", "2", "--quiet", "--no-spectrogram", "--minutes", "1")
    assert long.returncode == 0, long.stderr
    assert sf.info(str(tmp_path / "ambient" / "soundscape_00001_.wav")).duration == pytest.approx(60, abs=0.01)
    looped = _cli("--out", str(tmp_path), *PLUMBING, "--steps", "2", "--quiet", "--no-spectrogram", "--loop")
    assert looped.returncode == 0, looped.stderr
    assert sf.info(str(tmp_path / "ambient" / "soundscape_00002_.wav")).duration == pytest.approx(2.22 - 0.55, abs=0.01)
    bad = _cli("--out", str(tmp_path), *PLUMBING, "--steps", "2", "--quiet", "--minutes", "0.1", "--overlap", "2")
    assert bad.returncode == 1 and "--overlap is 2.0" in bad.stderr and "overlap_seconds" not in bad.stderr
    assert "Set e.g. 0.55" in bad.stderr  # a value that fits
    bad_loop = _cli("--out", str(tmp_path), *PLUMBING, "--steps", "2", "--quiet", "--loop", "1.5")
    assert bad_loop.returncode == 1 and "--loop is 1.5" in bad_loop.stderr and "overlap_seconds" not in bad_loop.stderr
