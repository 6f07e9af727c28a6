"""WAV writing: exact read-back, ComfyUI naming, no overwrite, no partial file, nothing outside the output folder;
metadata (prompt, workflow, settings) in a standard LIST/INFO chunk, and the Save WAV node's metadata switch."""
import json
import os
import shutil
import struct
import subprocess
import threading
from pathlib import Path

import pytest
import soundfile as sf
import torch

from conftest import pack, pack_module, run_node

wav = pack_module("audio.wav")
contract = pack_module("audio.contract")


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


def test_unknown_bit_depth_and_bad_rate_messages_write_nothing(tmp_path):
    with pytest.raises(ValueError, match='^Save WAV: "bit_depth" is \'8\' but must be one of 16, 24, 32-float'):
        wav.save_wav(_clip(), 44100, str(tmp_path), "x", "8")
    with pytest.raises(ValueError, match=r'^Save WAV: "audio" sample_rate is 44100\.5 but must be a whole number'):
        wav.save_wav(_clip(), 44100.5, str(tmp_path), "x")
    assert list(tmp_path.iterdir()) == []


def test_integer_formats_saturate_instead_of_wrapping(tmp_path):
    w = torch.tensor([[[1.5, -1.5, float("nan"), 0.5]]])
    saved = wav.save_wav(w, 8000, str(tmp_path), "loud", "16")
    data, _ = sf.read(saved[0].path, dtype="int16", always_2d=True)
    assert data[:, 0].tolist() == [32767, -32768, 0, 16384]


# ------------------------------------------------------------------------------------------------ metadata (0.3.0)
comfy_glue = pack_module("comfy.glue")
SAVE_WAV = pack.NODE_CLASS_MAPPINGS["AmbientSaveWav"]
API_PROMPT = {
    "5": {"class_type": "AmbientStableAudioLoader", "inputs": {"model": "stable-audio-open-1.0", "dtype": "auto"}},
    "6": {"class_type": "AmbientStableAudioSampler", "inputs": {"model": ["5", 0], "prompt": ["4", 0], "seconds": 20.0,
                                                                "steps": 100, "cfg": 7.0, "seed": 42, "variations": 1}},
    "7": {"class_type": "AmbientSaveWav", "inputs": {"audio": ["6", 0], "filename_prefix": "ambient/soundscape"}},
}
WORKFLOW = json.loads((Path(__file__).resolve().parents[1] / "workflows" / "image_to_ambient.json").read_text())
AMBIENT = {"prompt": "gentle waves breaking on a sandy beach, distant seagulls — sea breeze", "negative_prompt":
           "music, speech", "seed": 42, "steps": 100, "cfg": 7.0, "model": "stable-audio-open-1.0",
           "caption": "a beach with palm trees"}


def _chunk_ids(path):
    with open(path, "rb") as f:
        return [cid for cid, _, _ in wav.iter_chunks(f)]


def test_metadata_round_trips_and_soundfile_still_reads_the_audio(tmp_path):
    w = _clip(frames=5000)
    meta = wav.generation_metadata(API_PROMPT, {"workflow": WORKFLOW}, AMBIENT)
    saved = wav.save_wav(w, 44100, str(tmp_path), "meta", "24", metadata=meta)
    path = saved[0].path
    data, rate = sf.read(path, always_2d=True, dtype="float32")
    assert rate == 44100 and data.shape == (5000, 2)
    assert abs(torch.from_numpy(data.T) - w[0]).max().item() <= 2e-7
    back = wav.read_metadata(path)
    assert back == json.loads(json.dumps(meta))
    assert list(back) == ["ambient", "workflow", "prompt"]  # the summary first: readers see it before the graphs
    assert back["ambient"]["seed"] == 42 and back["prompt"]["5"]["inputs"]["model"] == "stable-audio-open-1.0"
    assert back["workflow"]["nodes"] == WORKFLOW["nodes"]
    # a standard LIST/INFO chunk before the audio, and a RIFF size that covers exactly the whole file
    assert _chunk_ids(path) == ["fmt ", "LIST", "data"]
    raw = Path(path).read_bytes()
    assert struct.unpack("<I", raw[4:8])[0] == len(raw) - 8
    info = wav.read_info(raw)
    assert info["INAM"] == AMBIENT["prompt"] and info["ISFT"] == wav.SOFTWARE
    assert info["ICMT"].isascii()  # any INFO reader gets the JSON intact, whatever encoding it assumes
    # soundfile (libsndfile) shows the short fields; it skips INFO strings of about 2 KB or more (the JSON)
    with sf.SoundFile(path) as f:
        shown = f.copy_metadata()
    assert shown["title"] == AMBIENT["prompt"] and shown["software"] == wav.SOFTWARE
    assert "ICMT" in sf.info(path).extra_info


def test_short_metadata_is_shown_whole_by_soundfile(tmp_path):
    saved = wav.save_wav(_clip(), 44100, str(tmp_path), "short", metadata={"ambient": {"seed": 7, "steps": 50}})
    with sf.SoundFile(saved[0].path) as f:
        assert json.loads(f.copy_metadata()["comment"]) == {"ambient": {"seed": 7, "steps": 50}}


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffprobe (ffmpeg) not installed")
def test_ffprobe_shows_title_encoder_and_the_json_comment(tmp_path):
    meta = wav.generation_metadata(API_PROMPT, {"workflow": WORKFLOW}, AMBIENT)
    saved = wav.save_wav(_clip(), 44100, str(tmp_path), "probe", "16", loop_points=True, metadata=meta)
    out = subprocess.run(["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", saved[0].path],
                         capture_output=True, text=True, check=True)
    probe = json.loads(out.stdout)
    tags = probe["format"]["tags"]
    assert tags["title"] == AMBIENT["prompt"] and tags["encoder"] == wav.SOFTWARE
    assert json.loads(tags["comment"]) == json.loads(json.dumps(meta))
    assert probe["streams"][0]["sample_rate"] == "44100" and int(probe["streams"][0]["duration_ts"]) == 4410


def test_loop_points_and_metadata_together(tmp_path):
    saved = wav.save_wav(_clip(frames=1000), 8000, str(tmp_path), "both", loop_points=True,
                         metadata={"ambient": {"seed": 1}})
    assert _chunk_ids(saved[0].path) == ["fmt ", "smpl", "LIST", "data"]
    assert "Loop Count   : 1" in sf.info(saved[0].path).extra_info
    assert "End :   999" in sf.info(saved[0].path).extra_info
    assert wav.read_metadata(saved[0].path) == {"ambient": {"seed": 1}}


def test_no_metadata_means_nothing_but_audio(tmp_path):
    w = _clip()
    plain = wav.save_wav(w, 44100, str(tmp_path), "plain", metadata=None)[0].path
    empty = wav.save_wav(w, 44100, str(tmp_path), "plain", metadata={})[0].path
    assert _chunk_ids(plain) == ["fmt ", "data"]
    assert Path(plain).read_bytes() == Path(empty).read_bytes() == wav.encode_wav(w[0], 44100)
    assert wav.read_info(plain) == {} and wav.read_metadata(plain) is None
    assert wav.generation_metadata() is None and wav.generation_metadata({}, {}, {}) is None


def test_metadata_is_json_safe_and_the_title_stays_short():
    meta = wav.generation_metadata({"1": {"class_type": "X", "inputs": {"v": float("nan"), "t": (1, 2)}}},
                                   {"workflow": {"nodes": []}, "extra_key": object.__name__},
                                   {"prompt": "ü" * 3000, "cfg": float("inf")})
    assert meta["prompt"]["1"]["inputs"] == {"v": None, "t": [1, 2]} and meta["ambient"]["cfg"] is None
    assert meta["extra_key"] == "object"  # every extra_pnginfo key is kept, as core's savers keep them
    info = wav.read_info(wav.encode_wav(_clip()[0], 44100, metadata=meta))
    assert len(info["INAM"].encode("utf-8")) <= wav.INFO_TEXT_MAX and set(info["INAM"]) == {"ü"}
    assert json.loads(info["ICMT"])["ambient"]["prompt"] == "ü" * 3000  # the JSON keeps the whole prompt


def test_read_metadata_of_other_files():
    assert wav.read_metadata(wav.encode_wav(_clip()[0], 44100)) is None
    odd = wav.add_chunk(wav.encode_wav(_clip()[0], 44100), wav.info_chunk({"ICMT": "not json", "IART": "me"}))
    assert wav.read_metadata(odd) is None and wav.read_info(odd) == {"ICMT": "not json", "IART": "me"}
    assert wav.read_metadata(b"fLaC not a wav") is None
    with pytest.raises(ValueError):
        wav.info_chunk({"TOOLONG": "x"})


def test_an_encoding_error_with_metadata_writes_nothing(tmp_path, monkeypatch):
    def failing_encode(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(wav, "metadata_chunk", failing_encode)
    with pytest.raises(OSError):
        wav.save_wav(_clip(), 44100, str(tmp_path), "x", metadata={"a": 1})
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ the Save WAV node: hidden inputs, toggle, flag
def _run_node(tmp_path, monkeypatch, audio_extra=None, **kwargs):
    monkeypatch.setattr(comfy_glue, "output_directory", lambda: str(tmp_path))
    audio = {"waveform": _clip(batch=2, frames=2000), "sample_rate": 44100, **(audio_extra or {})}
    result = run_node("AmbientSaveWav", audio=audio, filename_prefix="ambient/take", bit_depth="16", loop_points="auto",
                      **kwargs)
    return [tmp_path / f["subfolder"] / f["filename"] for f in result["ui"]["audio"]]


def test_save_wav_node_embeds_prompt_workflow_and_the_samplers_summary(tmp_path, monkeypatch):
    spec = SAVE_WAV.INPUT_TYPES()
    assert spec["hidden"] == {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}
    assert list(spec["required"])[-1] == "metadata" and spec["required"]["metadata"][1]["default"] is True
    files = _run_node(tmp_path, monkeypatch, {contract.META_KEY: AMBIENT}, prompt=API_PROMPT,
                      extra_pnginfo={"workflow": WORKFLOW})
    assert len(files) == 2
    for path in files:
        meta = wav.read_metadata(str(path))
        assert meta["ambient"] == AMBIENT and meta["prompt"] == API_PROMPT and meta["workflow"] == WORKFLOW
        sampler = meta["prompt"]["6"]["inputs"]
        assert (sampler["seed"], sampler["steps"], sampler["cfg"]) == (42, 100, 7.0)


def test_save_wav_node_metadata_off_or_disabled_writes_only_audio(tmp_path, monkeypatch):
    off = _run_node(tmp_path / "off", monkeypatch, {contract.META_KEY: AMBIENT}, metadata=False, prompt=API_PROMPT,
                    extra_pnginfo={"workflow": WORKFLOW})
    monkeypatch.setattr(comfy_glue, "metadata_disabled", lambda: True)  # ComfyUI started with --disable-metadata
    flag = _run_node(tmp_path / "flag", monkeypatch, {contract.META_KEY: AMBIENT}, metadata=True, prompt=API_PROMPT,
                     extra_pnginfo={"workflow": WORKFLOW})
    for path in off + flag:
        assert _chunk_ids(str(path)) == ["fmt ", "data"]
        assert b"stable-audio-open" not in path.read_bytes() and b"LIST" not in path.read_bytes()


def test_save_wav_node_without_hidden_inputs_or_summary(tmp_path, monkeypatch):
    """Called outside ComfyUI (no PROMPT, no EXTRA_PNGINFO) and without a summary: a plain WAV."""
    files = _run_node(tmp_path, monkeypatch)
    assert _chunk_ids(str(files[0])) == ["fmt ", "data"]


def test_metadata_disabled_is_false_without_comfyui():
    try:
        import comfy.cli_args  # noqa: F401
    except ImportError:
        assert comfy_glue.metadata_disabled() is False
    else:  # pragma: no cover - the real ComfyUI: follows its --disable-metadata flag
        assert comfy_glue.metadata_disabled() is bool(comfy.cli_args.args.disable_metadata)
