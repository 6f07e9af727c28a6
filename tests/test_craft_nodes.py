"""Sound-craft nodes through ComfyUI's calling convention, on synthetic AUDIO and on tiny-model output; loop points
read back from the saved file by an independent parser."""
import os
import struct

import pytest
import soundfile as sf
import torch

from conftest import run_node


def _noise(seconds=6.0, rate=44100, channels=2, seed=0, batch=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, channels, int(seconds * rate), generator=g) * 0.1
    return {"waveform": x, "sample_rate": rate}


def read_smpl_loops(path):
    """Independent RIFF walk: the (start, end) of every loop in the file's smpl chunk."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8
    pos, loops = 12, None
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if cid == b"smpl":
            body = data[pos + 8: pos + 8 + size]
            count = struct.unpack("<I", body[28:32])[0]
            loops = [struct.unpack("<II", body[36 + 24 * i + 8: 36 + 24 * i + 16]) for i in range(count)]
        pos += 8 + size + (size & 1)
    return loops


def test_loop_then_save_writes_loop_points(output_dir):
    (loop,) = run_node("AmbientSeamlessLoop", audio=_noise(), overlap_seconds=2.0, search_seconds=0.0)
    frames = loop["waveform"].shape[-1]
    assert frames == int(6.0 * 44100) - 2 * 44100 and loop["ambient_loop"] is True
    ui = run_node("AmbientSaveWav", audio=loop, filename_prefix="loops/bed", bit_depth="16", loop_points="auto")
    path = os.path.join(output_dir, "loops", ui["ui"]["audio"][0]["filename"])
    assert read_smpl_loops(path) == [(0, frames - 1)]
    data, rate = sf.read(path, always_2d=True)  # still a valid WAV for other readers
    assert data.shape == (frames, 2) and rate == 44100
    # plain audio: no smpl unless asked
    ui = run_node("AmbientSaveWav", audio=_noise(), filename_prefix="loops/plain", bit_depth="24", loop_points="auto")
    assert read_smpl_loops(os.path.join(output_dir, "loops", ui["ui"]["audio"][0]["filename"])) is None
    ui = run_node("AmbientSaveWav", audio=_noise(1.0), filename_prefix="loops/forced", bit_depth="32-float",
              loop_points="always")
    assert read_smpl_loops(os.path.join(output_dir, "loops", ui["ui"]["audio"][0]["filename"])) == [(0, 44099)]


def test_fade_drops_the_loop_marker_and_zeroes_the_ends():
    (loop,) = run_node("AmbientSeamlessLoop", audio=_noise(), overlap_seconds=1.0, search_seconds=0.0)
    (faded,) = run_node("AmbientFade", audio=loop, fade_in_seconds=0.5, fade_out_seconds=1.0, curve="exponential")
    w = faded["waveform"]
    assert "ambient_loop" not in faded and w[..., 0].abs().max() == 0 and w[..., -1].abs().max() == 0
    (same,) = run_node("AmbientFade", audio=loop, fade_in_seconds=0.0, fade_out_seconds=0.0, curve="linear")
    assert same["ambient_loop"] is True and torch.equal(same["waveform"], loop["waveform"])


@pytest.mark.parametrize("target,lufs", [("-23 LUFS (broadcast, EBU R128)", -23.0), ("custom", -18.0)])
def test_loudness_node_hits_target_independently_measured(target, lufs):
    import pyloudnorm

    (out,) = run_node("AmbientLoudness", audio=_noise(), target=target, custom_lufs=-18.0, ceiling_dbtp=-1.0)
    w = out["waveform"][0].double().numpy().T
    measured = pyloudnorm.Meter(44100).integrated_loudness(w)
    assert abs(measured - lufs) <= 0.5


def test_loudness_of_silence_is_a_clear_message():
    with pytest.raises(ValueError, match="^Normalize Loudness: .*silent"):
        run_node("AmbientLoudness", audio={"waveform": torch.zeros(1, 2, 44100), "sample_rate": 44100},
             target="custom", custom_lufs=-23.0, ceiling_dbtp=-1.0)


def test_mix_two_to_four_layers_of_mixed_rates_and_channels():
    bed = _noise(4.0, 44100, 2, seed=1)
    mono = _noise(2.0, 22050, 1, seed=2)
    (out,) = run_node("AmbientMix", audio_1=bed, gain_db_1=0.0, pan_1=0.0, audio_2=mono, gain_db_2=-6.0, pan_2=-0.5,
                  fit="loop", length="first")
    assert out["sample_rate"] == 44100 and out["waveform"].shape == (1, 2, 4 * 44100)
    assert out["waveform"].abs().max() <= 1.0
    (four,) = run_node("AmbientMix", audio_1=bed, gain_db_1=0.0, pan_1=0.0, audio_2=mono, gain_db_2=0.0, pan_2=1.0,
                   audio_3=_noise(1.0, 48000, 2, seed=3), gain_db_3=6.0, pan_3=0.0,
                   audio_4=_noise(3.0, 16000, 1, seed=4), gain_db_4=0.0, pan_4=-1.0, fit="pad", length="longest")
    assert four["sample_rate"] == 48000 and four["waveform"].shape[1] == 2 and four["waveform"].abs().max() <= 1.0


def test_spectrogram_node_gives_an_image_per_clip():
    (img,) = run_node("AmbientSpectrogram", audio=_noise(1.0, batch=2), width=256, height=128)
    assert img.shape == (2, 128, 256, 3) and img.dtype == torch.float32 and 0 <= img.min() and img.max() <= 1


def test_layered_prompt_node_always_fills_three_sources():
    bed, s1, s2, s3, negative = run_node("AmbientLayeredPromptBuilder",
                                     caption="a picture of a sandy beach with blue water and palm trees",
                                     preset="natural field recording", extra="", sources=2)
    assert "waves" in bed and "gull" not in bed and any("gull" in s for s in (s1, s2))
    assert s3.startswith("waves breaking, distant, faint") and negative  # the unused third slot: a faint bed
    assert all(isinstance(s, str) and s for s in (bed, s1, s2, s3))
