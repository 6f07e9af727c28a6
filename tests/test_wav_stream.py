"""Save WAV, issue 13: saving streams in blocks (memory flat in length), loop points and metadata before the audio
(readers that mis-step over a pad byte still find them), and ComfyUI's %date:...% prefixes when a prompt comes in raw
(CLI, API) rather than through the frontend."""
import gc
import re
import shutil
import struct
import subprocess
import time
import tracemalloc

import pytest
import soundfile as sf
import torch

from conftest import pack_module

wav = pack_module("audio.wav")


def _clip(channels=2, frames=4410, seed=0):
    return (torch.rand(1, channels, frames, generator=torch.Generator().manual_seed(seed)) * 1.6 - 0.8).float()


# ------------------------------------------------------------------------------------------ memory (item 3)
def _peak_allocated_by_save(tmp_path, seconds, bit_depth="16"):
    """Peak bytes Python and numpy allocate (tracemalloc sees numpy's buffers) while one clip of ``seconds``
    (stereo, 44.1 kHz, float32, made before measuring) is saved."""
    clip = torch.empty(1, 2, int(seconds * 44100)).uniform_(-0.8, 0.8)
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        wav.save_wav(clip, 44100, str(tmp_path), f"mem{seconds}/x", bit_depth, loop_points=True,
                     metadata={"ambient": {"seed": 1}})
        return tracemalloc.get_traced_memory()[1] - base, clip.numel() * 4
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("bit_depth", ["16", "32-float"])
def test_saving_a_long_clip_adds_a_small_bounded_buffer_whatever_its_length(tmp_path, bit_depth):
    short, _ = _peak_allocated_by_save(tmp_path, 10, bit_depth)
    long, clip_bytes = _peak_allocated_by_save(tmp_path, 150, bit_depth)  # 2.5 min: a 52.9 MB float32 buffer
    # before: the whole clip was copied ~3.75x (float copy, transposed copy, encoded bytes, RIFF copies)
    assert long < 0.1 * clip_bytes, f"saving 2.5 min allocated {long / 2**20:.1f} MiB"
    assert long < short + 2**20, f"10 s: {short / 2**20:.2f} MiB, 2.5 min: {long / 2**20:.2f} MiB"


def test_streamed_file_is_the_same_audio_bit_for_bit(tmp_path):
    """Blocks join exactly: a clip longer than several blocks reads back as one encode of the whole would."""
    w = _clip(frames=3 * wav.BLOCK_FRAMES + 1234)
    for bit_depth, tol in (("16", 1 / 32767 + 1e-6), ("24", 2e-7), ("32-float", 0.0)):
        saved = wav.save_wav(w, 48000, str(tmp_path), f"blocks{bit_depth}", bit_depth)
        data, rate = sf.read(saved[0].path, always_2d=True, dtype="float32")
        assert rate == 48000 and data.shape == (w.shape[-1], 2)
        assert abs(torch.from_numpy(data.T) - w[0]).max().item() <= tol


def test_nan_and_inf_in_any_block_are_written_as_silence_and_full_scale(tmp_path, caplog):
    w = torch.zeros(1, 1, 2 * wav.BLOCK_FRAMES + 10)
    w[0, 0, 5], w[0, 0, wav.BLOCK_FRAMES + 3], w[0, 0, -1] = float("nan"), float("inf"), float("-inf")
    saved = wav.save_wav(w, 8000, str(tmp_path), "nan", "16")
    data, _ = sf.read(saved[0].path, dtype="int16", always_2d=True)
    assert (data[5, 0], data[wav.BLOCK_FRAMES + 3, 0], data[-1, 0]) == (0, 32767, -32768)
    assert "3 NaN/inf samples" in caplog.text


# ------------------------------------------------------------------------------- chunk order (item 17)
def _riff_walk(raw: bytes):
    """Independent RIFF reader: [(id, size)] of the top-level chunks, checking sizes and pad bytes as it goes."""
    assert raw[:4] == b"RIFF" and raw[8:12] == b"WAVE"
    assert struct.unpack("<I", raw[4:8])[0] == len(raw) - 8
    pos, chunks = 12, []
    while pos < len(raw):
        cid, size = raw[pos:pos + 4].decode("latin-1"), struct.unpack("<I", raw[pos + 4:pos + 8])[0]
        chunks.append((cid, size))
        pos += 8 + size
        if size % 2:
            assert raw[pos:pos + 1] == b"\x00", f"{cid}: odd size {size} without its pad byte"
            pos += 1
    assert pos == len(raw)
    return chunks


def _reads_like_sdl_mixer(raw: bytes):
    """The smpl loops a reader finds that walks chunks WITHOUT skipping pad bytes (SDL_mixer's mistake), stopping
    when it loses its way: a smpl after an odd-length data chunk is lost, one before it is found."""
    pos, loops = 12, None
    while pos + 8 <= len(raw):
        cid, size = raw[pos:pos + 4], struct.unpack("<I", raw[pos + 4:pos + 8])[0]
        if not re.fullmatch(rb"[ -~]{4}", cid):
            break
        if cid == b"smpl":
            loops = struct.unpack("<II", raw[pos + 8 + 44:pos + 8 + 52])
        pos += 8 + size  # no pad byte
    return loops


@pytest.mark.parametrize("bit_depth,channels,frames", [("24", 1, 1001), ("16", 2, 4410), ("32-float", 1, 777)])
def test_loop_points_and_metadata_come_before_the_audio(tmp_path, bit_depth, channels, frames):
    saved = wav.save_wav(_clip(channels, frames), 44100, str(tmp_path), "order", bit_depth, loop_points=True,
                         metadata={"ambient": {"seed": 3}})
    raw = open(saved[0].path, "rb").read()
    chunks = _riff_walk(raw)
    ids = [cid for cid, _ in chunks]
    assert ids[0] == "fmt " and ids[-1] == "data" and ids.index("smpl") < ids.index("LIST") < ids.index("data")
    assert dict(chunks)["data"] == frames * channels * {"16": 2, "24": 3, "32-float": 4}[bit_depth]
    assert _reads_like_sdl_mixer(raw) == (0, frames - 1)  # found even by a reader that skips no pad byte
    info = sf.info(saved[0].path)
    assert (info.frames, info.channels) == (frames, channels)
    assert re.findall(r"End\s*:\s*(\d+)", info.extra_info) == [str(frames - 1)]  # libsndfile reads the loop too
    assert wav.read_metadata(saved[0].path) == {"ambient": {"seed": 3}}
    if shutil.which("sox"):  # sox (/usr/bin/sox here) too: its frame count (-s: samples per channel) and channels
        for flag, expected in (("-s", frames), ("-c", channels)):
            out = subprocess.run(["sox", "--i", flag, saved[0].path], capture_output=True, text=True, check=True)
            assert int(out.stdout.strip()) == expected


# --------------------------------------------------------------------------------- %date:...% (item 6)
def test_comfyui_date_formats_are_filled_in_as_the_frontend_does(tmp_path, monkeypatch):
    now = time.struct_time((2026, 3, 7, 9, 5, 4, 5, 66, 0))
    monkeypatch.setattr(wav.time, "localtime", lambda *a: now)
    saved = wav.save_wav(_clip(), 44100, str(tmp_path), "%date:yyyy-MM-dd%/take_%date:hhmmss%")
    assert (saved[0].subfolder, saved[0].filename) == ("2026-03-07", "take_090504_00001_.wav")
    assert wav.resolve_prefix(str(tmp_path), "%date:yy.M.d h-m-s%")[1] == "26.3.7 9-5-4"
    assert wav.resolve_prefix(str(tmp_path), "%date:yyyyMMdd%_x_%date:yyy%")[1] == "20260307_x_yyy"
    assert wav.resolve_prefix(str(tmp_path), "%year%-%month%-%day%/a")[2] == "2026-03-07"


def test_a_date_format_that_makes_a_bad_name_is_refused_naming_what_works(tmp_path):
    with pytest.raises(ValueError) as e:
        wav.save_wav(_clip(), 44100, str(tmp_path), "%date:hh:mm%")
    message = str(e.value)
    assert message.startswith('Save WAV: "filename_prefix" is \'%date:hh:mm%\'') and "after filling in dates" in message
    assert "%date:yyyy-MM-dd%" in message and "%year%-%month%-%day%" in message
    with pytest.raises(ValueError, match=r"%date:yyyy-MM-dd%.*%year%-%month%-%day%"):
        wav.save_wav(_clip(), 44100, str(tmp_path), "bad|name")
    assert list(tmp_path.iterdir()) == []
