"""Saving holds when the world moves underneath it: a folder swapped for a symlink mid-save, a process killed
mid-write, a folder path that fails partway, names that display as something else (issue 13, items 1, 2, 4, 5, 7)."""
import errno
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from conftest import pack_module

wav = pack_module("audio.wav")
posix_only = pytest.mark.skipif(not getattr(wav, "_BY_HANDLE", True), reason="needs O_NOFOLLOW and dir_fd (POSIX)")


ROOT = Path(__file__).resolve().parents[1]
# a child process loads the pack as conftest does (under a package name, ComfyUI stood in), without pytest
_LOAD = f"""
import importlib.util, sys
sys.path.insert(0, {str(ROOT / "tests" / "comfy_stub")!r})
spec = importlib.util.spec_from_file_location("pack", {str(ROOT / "__init__.py")!r},
                                              submodule_search_locations=[{str(ROOT)!r}])
sys.modules["pack"] = module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
import torch
from pack.nodes.audio import wav
"""


def _clip(frames=4410):
    return (torch.rand(1, 2, frames, generator=torch.Generator().manual_seed(0)) * 1.6 - 0.8).float()


def _swap_forever(out: Path, outside: Path, stop: threading.Event) -> None:
    """Replace ``out/swap`` by a fresh folder, then by a symlink to ``outside``, over and over."""
    i = 0
    while not stop.is_set():
        try:
            os.rename(out / "swap", out / f"gone{i}")
        except OSError:
            pass
        try:
            if i % 2:
                os.symlink(outside, out / "swap", target_is_directory=True)
            else:
                os.mkdir(out / "swap")
        except FileExistsError:
            pass
        i += 1
        time.sleep(0.0002)


@posix_only
def test_a_folder_swapped_for_a_symlink_mid_save_never_lets_a_file_out(tmp_path):
    out, outside = tmp_path / "out", tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    (out / "swap").mkdir()
    stop, saved, refused = threading.Event(), [], []

    def saver():
        for _ in range(25):
            try:
                saved.extend(wav.save_wav(_clip(400), 8000, str(out), "swap/x"))
            except Exception as err:  # checked below: each one a clear refusal
                refused.append(err)

    swapper = threading.Thread(target=_swap_forever, args=(out, outside, stop))
    swapper.start()
    savers = [threading.Thread(target=saver) for _ in range(6)]
    try:
        for t in savers:
            t.start()
        for t in savers:
            t.join()
    finally:
        stop.set()
        swapper.join()
    assert list(outside.iterdir()) == []
    assert [e for e in refused if not str(e).startswith('Save WAV: "filename_prefix"')] == []
    assert len(saved) + len(refused) == 150 and saved  # most saves went through, inside the output folder
    inside = [p for p in out.rglob("*.wav")]
    assert len(inside) == len(saved)


_KILLED_SAVE = _LOAD + """
import os, time
def stall(fd):  # the kill lands here: all bytes written, not yet synced or published
    print("writing", flush=True)
    time.sleep(60)
os.fsync = stall
wav.save_wav(torch.full((1, 2, 480000), 0.25), 48000, {out!r}, "killed/x", "32-float")
"""


@posix_only
def test_a_save_killed_mid_write_leaves_no_file_under_a_final_name(tmp_path):
    code = _KILLED_SAVE.format(out=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
    finally:
        proc.kill()
        proc.wait(timeout=30)
        proc.stdout.close()
    assert proc.returncode == -9
    left = os.listdir(tmp_path / "killed")
    assert [f for f in left if f.endswith(".wav")] == []
    assert len(left) == 1 and left[0].startswith(".x.partial-")  # recognisable, hidden
    # and a crash leftover is neither listed as an output nor counted: the next save is x_00001_
    saved = wav.save_wav(_clip(), 44100, str(tmp_path), "killed/x")
    assert [s.filename for s in saved] == ["x_00001_.wav"]
    assert sorted(os.listdir(tmp_path / "killed")) == sorted(left + ["x_00001_.wav"])


def test_a_published_file_is_complete_and_no_temporary_stays(tmp_path):
    saved = wav.save_wav(_clip(4410), 44100, str(tmp_path), "done/x")
    assert os.listdir(tmp_path / "done") == ["x_00001_.wav"] == [s.filename for s in saved]
    assert os.path.getsize(saved[0].path) > 4 * 4410


@posix_only
def test_a_folder_path_failing_partway_removes_every_folder_it_made(tmp_path):
    out = tmp_path / "out"
    (out / "kept").mkdir(parents=True)
    too_long = "y" * 300  # over NAME_MAX (255 bytes): mkdir fails after n1 and n2 were made
    with pytest.raises(OSError) as e:
        wav._open_folder(str(out), f"kept/n1/n2/{too_long}/n3", "kept/n1/n2/long/x")
    assert e.value.errno == errno.ENAMETOOLONG and str(e.value).startswith('Save WAV: "filename_prefix"')
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == ["kept"]


def test_a_path_over_path_max_is_refused_before_any_folder_is_made(tmp_path):
    prefix = "/".join(["d" * 200] * 21) + "/x"  # 21 nested folders: over PATH_MAX (4096 bytes)
    with pytest.raises(ValueError, match=r'^Save WAV: "filename_prefix" .* bytes, over the 4095-byte limit'):
        wav.save_wav(_clip(), 44100, str(tmp_path), prefix)
    assert list(tmp_path.iterdir()) == []


@posix_only
def test_a_failed_write_in_new_folders_removes_them(tmp_path):
    """A real write failure (file size limit, EFBIG) after three new folders: none of them stays."""
    code = _LOAD + f"""
import resource, signal
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))
try:
    wav.save_wav(torch.zeros(1, 2, 44100), 44100, {str(tmp_path)!r}, "a/b/c/x")
except OSError as err:
    print(err)
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.stdout.startswith('Save WAV: "filename_prefix"'), run.stdout + run.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("char", ["\u202e", "\u202a", "\u2066", "\u2069", "\u200e", "\u200f"])
def test_bidirectional_control_characters_are_refused(tmp_path, char):
    with pytest.raises(ValueError, match=f'^Save WAV: "filename_prefix" .*U\\+{ord(char):04X}.*Retype the prefix'):
        wav.save_wav(_clip(), 44100, str(tmp_path), f"ambient/evil{char}vaw.exe")
    assert list(tmp_path.iterdir()) == []


def test_a_trailing_slash_names_the_file_as_comfyui_does(tmp_path):
    """ComfyUI's get_save_image_path takes ``normpath("rel/")`` = ``rel`` as the file name part: ``rel_00001_``
    in the output folder, not a file inside ``rel/``. We do the same, so a prefix means the same in both."""
    saved = wav.save_wav(_clip(), 44100, str(tmp_path), "rel/")
    assert (saved[0].subfolder, saved[0].filename) == ("", "rel_00001_.wav")


@posix_only
def test_without_hard_links_an_exclusive_placeholder_is_replaced_and_nothing_is_overwritten(tmp_path, monkeypatch):
    """File systems without links (FAT, some network shares) answer EPERM: publish by exclusive create + rename."""
    def no_links(*a, **k):
        raise OSError(errno.EPERM, os.strerror(errno.EPERM))

    (tmp_path / "fat").mkdir()
    (tmp_path / "fat" / "x_00001_.wav").write_bytes(b"user's file")
    monkeypatch.setattr(wav, "_next_counter", lambda folder, name: 1)  # counted before the user's file appeared
    monkeypatch.setattr(os, "link", no_links)
    saved = wav.save_wav(_clip(), 44100, str(tmp_path), "fat/x")
    assert [s.filename for s in saved] == ["x_00002_.wav"]
    assert (tmp_path / "fat" / "x_00001_.wav").read_bytes() == b"user's file"
    assert sorted(os.listdir(tmp_path / "fat")) == ["x_00001_.wav", "x_00002_.wav"]
    assert os.path.getsize(saved[0].path) > 4 * 4410
