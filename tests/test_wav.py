"""WAV writing: exact read-back, ComfyUI naming, no overwrite, no partial file, nothing outside the output folder."""
import os
import threading

import pytest
import soundfile as sf
import torch

from conftest import pack_module

wav = pack_module("wav")


def _clip(batch=1, channels=2, frames=4410, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, channels, frames, generator=g) * 1.6 - 0.8).float()


@pytest.mark.parametrize("bit_depth,subtype,tol", [("16", "PCM_16", 1 / 32767 + 1e-6), ("24", "PCM_24", 2e-7),
                                                   ("32-float", "FLOAT", 0.0)])
def test_round_trip_exact_frames_channels_rate_subtype(tmp_path, bit_depth, subtype, tol):
    w = _clip(frames=12345)
    saved = wav.save_wav(w, 22050, str(tmp_path), "ambient/soundscape", bit_depth)
    assert [s.filename for s in saved] == ["soundscape_00001_.wav"]
    assert saved[0].subfolder == "ambient"
    info = sf.info(saved[0].path)
    assert (info.frames, info.channels, info.samplerate, info.subtype) == (12345, 2, 22050, subtype)
    data, rate = sf.read(saved[0].path, always_2d=True, dtype="float32")
    assert rate == 22050 and data.shape == (12345, 2)
    assert abs(torch.from_numpy(data.T) - w[0]).max().item() <= tol


def test_mono_and_odd_rates_from_core_nodes(tmp_path):
    saved = wav.save_wav(_clip(channels=1, frames=800), 8000, str(tmp_path), "x")
    info = sf.info(saved[0].path)
    assert (info.channels, info.samplerate, info.frames) == (1, 8000, 800)


def test_batch_gives_one_file_per_clip_in_order(tmp_path):
    w = _clip(batch=3)
    saved = wav.save_wav(w, 44100, str(tmp_path), "a/b/name")
    assert [s.filename for s in saved] == [f"name_0000{i}_.wav" for i in (1, 2, 3)]
    for i, s in enumerate(saved):
        data, _ = sf.read(s.path, always_2d=True, dtype="float32")
        assert abs(torch.from_numpy(data.T) - w[i]).max() < 1e-4


def test_never_overwrites_and_continues_the_counter(tmp_path):
    (tmp_path / "ambient").mkdir()
    existing = tmp_path / "ambient" / "soundscape_00001_.wav"
    existing.write_bytes(b"user's precious file")
    (tmp_path / "ambient" / "soundscape_00007_.flac").write_bytes(b"other saver")  # counter shared across formats
    saved = wav.save_wav(_clip(), 44100, str(tmp_path), "ambient/soundscape")
    assert saved[0].filename == "soundscape_00008_.wav"
    assert existing.read_bytes() == b"user's precious file"


def test_clash_during_save_takes_next_counter(tmp_path, monkeypatch):
    """A file appearing between counting and creating (another process) is skipped, not overwritten."""
    real_next = wav._next_counter

    def racing_next(folder, name):
        n = real_next(folder, name)
        with open(os.path.join(folder, f"{name}_{n:05}_.wav"), "wb") as f:
            f.write(b"someone else")
        return n

    monkeypatch.setattr(wav, "_next_counter", racing_next)
    saved = wav.save_wav(_clip(), 44100, str(tmp_path), "race")
    assert saved[0].filename == "race_00002_.wav"
    assert (tmp_path / "race_00001_.wav").read_bytes() == b"someone else"


def test_concurrent_saves_give_distinct_files(tmp_path):
    results, errors = [], []

    def worker(i):
        try:
            results.extend(wav.save_wav(_clip(seed=i), 44100, str(tmp_path), "same/prefix"))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    names = sorted(s.filename for s in results)
    assert len(set(names)) == 8 == len(os.listdir(tmp_path / "same"))


@pytest.mark.parametrize("prefix", ["../escape", "/etc/passwd", "a/../../b", "C:/x", "", "   ", "a\x00b", "con",
                                    "x" * 300, "bad|name"])
def test_bad_prefix_is_refused_and_writes_nothing(tmp_path, prefix):
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ValueError) as e:
        wav.save_wav(_clip(), 44100, str(out), prefix)
    assert str(e.value).startswith('Save WAV: "filename_prefix"')
    assert list(out.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_symlink_out_of_output_folder_is_refused(tmp_path):
    out, outside = tmp_path / "out", tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    (out / "link").symlink_to(outside)
    with pytest.raises(ValueError, match="outside the output folder"):
        wav.save_wav(_clip(), 44100, str(out), "link/name")
    assert list(outside.iterdir()) == []


def test_failed_write_leaves_no_partial_file(tmp_path, monkeypatch):
    import builtins

    real_open = builtins.open

    class FullDisk:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *a):
            self.f.close()

        def write(self, data):
            self.f.write(data[: len(data) // 2])
            raise OSError(28, "No space left on device")

        def fileno(self):
            return self.f.fileno()

        def flush(self):
            self.f.flush()

    def fake_open(path, mode="r", *a, **k):
        f = real_open(path, mode, *a, **k)
        return FullDisk(f) if mode == "xb" else f

    monkeypatch.setattr(builtins, "open", fake_open)
    with pytest.raises(OSError, match="nothing was left behind"):
        wav.save_wav(_clip(), 44100, str(tmp_path), "full")
    assert list(tmp_path.iterdir()) == []


def test_unknown_bit_depth_and_bad_audio_messages(tmp_path):
    with pytest.raises(ValueError, match='Save WAV: "bit_depth" is \'8\''):
        wav.save_wav(_clip(), 44100, str(tmp_path), "x", "8")
    with pytest.raises(ValueError, match='"audio" waveform has shape'):
        wav.check_audio({"waveform": torch.zeros(1, 2, 0), "sample_rate": 44100})
    with pytest.raises(ValueError, match="sample_rate"):
        wav.check_audio({"waveform": torch.zeros(1, 2, 10), "sample_rate": 0})
    w, rate = wav.check_audio({"waveform": torch.zeros(2, 10), "sample_rate": 8000})  # [C, T] is one clip
    assert w.shape == (1, 2, 10) and rate == 8000
    assert list(tmp_path.iterdir()) == []


def test_integer_formats_saturate_instead_of_wrapping(tmp_path):
    w = torch.tensor([[[1.5, -1.5, float("nan"), 0.5]]])
    saved = wav.save_wav(w, 8000, str(tmp_path), "loud", "16")
    data, _ = sf.read(saved[0].path, dtype="int16", always_2d=True)
    assert data[:, 0].tolist() == [32767, -32768, 0, 16384]
