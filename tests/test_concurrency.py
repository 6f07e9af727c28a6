"""Saves with the same prefix at the same time, through the Save WAV node: in threads of one process (ComfyUI
runs one prompt at a time, but other packs and API users save from threads), and in separate processes (two
ComfyUI instances sharing one output folder). Every save gets its own file, every file holds exactly the clip its
saver wrote, and files that were there before are never touched."""
from __future__ import annotations

import hashlib
import importlib.util
import multiprocessing
import os
import sys
import threading
from pathlib import Path

import pytest

from conftest import PACK_NAME, ROOT, pack

PREFIX = "same/prefix"
RATE = 8000


def _clip(seed: int, batch: int = 1):
    import torch

    g = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, 2, 2000, generator=g) * 1.6 - 0.8).float()


def _expected(seed: int, batch: int):
    """What each file of one save must hold: its clip as ``[T, C]``."""
    return [c.T.numpy() for c in _clip(seed, batch)]


def _save(node_cls, seed: int, batch: int) -> list[str]:
    ui = node_cls().execute(audio={"waveform": _clip(seed, batch), "sample_rate": RATE},
                            filename_prefix=PREFIX, bit_depth="16")
    return [f"{e['subfolder']}/{e['filename']}" for e in ui["ui"]["audio"]]


def _process_worker(output_dir: str, seed: int, batch: int, saves: int, barrier, results,
                    parent_pid: int) -> None:
    """Runs in a fresh interpreter ("spawn"): load the pack as ComfyUI (and conftest) does, then save at the
    barrier's signal."""
    try:
        os.environ["HF_HUB_OFFLINE"] = "1"
        if importlib.util.find_spec("folder_paths") is None:
            sys.path.insert(0, str(Path(ROOT) / "tests" / "comfy_stub"))
        module = sys.modules.get(PACK_NAME)  # already there when unpickling this function imported conftest
        if module is None:
            spec = importlib.util.spec_from_file_location(PACK_NAME, Path(ROOT) / "__init__.py",
                                                          submodule_search_locations=[str(ROOT)])
            module = importlib.util.module_from_spec(spec)
            sys.modules[PACK_NAME] = module
            spec.loader.exec_module(module)
        assert os.getpid() != parent_pid, "not a separate process"
        import folder_paths

        if hasattr(folder_paths, "set_base"):
            folder_paths.output_directory = output_dir
        else:  # the real ComfyUI
            folder_paths.set_output_directory(output_dir)
        node_cls = module.NODE_CLASS_MAPPINGS["AmbientSaveWav"]
        _clip(0)  # import torch and warm up before the start line, so the saves really overlap
        barrier.wait(timeout=120)
        names = []
        for k in range(saves):
            names.append((seed + k, _save(node_cls, seed + k, batch)))
        results.put(("ok", seed, names))
    except BaseException as err:  # pragma: no cover - reported by the parent
        results.put(("error", seed, f"{type(err).__name__}: {err}"))


def _existing(out: Path) -> dict[str, str]:
    """Files a user already has under the prefix: the savers must skip them, never overwrite them."""
    folder = out / "same"
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for name in ("prefix_00001_.wav", "prefix_00003_.wav", "prefix_00004_.flac"):
        data = f"user's own {name}".encode()
        (folder / name).write_bytes(data)
        files[name] = hashlib.sha1(data).hexdigest()
    return files


def _check(out: Path, saves: list[tuple[int, list[str]]], batch: int, existing: dict[str, str]) -> None:
    import numpy as np
    import soundfile as sf

    names = [n for _, ns in saves for n in ns]
    assert len(names) == len(set(names)), "two saves got the same file name"
    on_disk = sorted(p.name for p in (out / "same").iterdir())
    assert on_disk == sorted({n.split("/")[-1] for n in names} | set(existing)), "a file is missing or extra"
    for name, digest in existing.items():
        assert hashlib.sha1((out / "same" / name).read_bytes()).hexdigest() == digest, f"{name} was overwritten"
    for seed, files in saves:
        assert len(files) == batch
        for want, rel in zip(_expected(seed, batch), files):
            data, rate = sf.read(str(out / rel), dtype="float32", always_2d=True)
            assert rate == RATE and data.shape == want.shape
            # within 16-bit rounding (a few 1/32768 steps); another seed's clip differs by up to 1.6
            assert np.abs(data - want).max() < 1e-4, f"{rel} does not hold what its saver wrote"
    assert not [p for p in (out / "same").iterdir() if p.stat().st_size == 0], "an empty (partial) file"


def test_threads_saving_with_the_same_prefix_get_distinct_files(output_dir):
    existing = _existing(output_dir)
    node_cls = pack.NODE_CLASS_MAPPINGS["AmbientSaveWav"]
    threads, batch, per_thread = 8, 2, 3
    barrier = threading.Barrier(threads)
    saves, errors = [], []
    lock = threading.Lock()

    def worker(i):
        try:
            barrier.wait(timeout=60)
            for k in range(per_thread):
                seed = 100 * i + k
                files = _save(node_cls, seed, batch)
                with lock:
                    saves.append((seed, files))
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=120)
    assert not errors, errors
    assert len(saves) == threads * per_thread
    _check(output_dir, saves, batch, existing)


@pytest.mark.slow
def test_processes_saving_with_the_same_prefix_get_distinct_files(output_dir):
    existing = _existing(output_dir)
    batch = 2  # each save writes two files: the counter moves on inside one save too
    mp = multiprocessing.get_context("spawn")
    procs_n, per_proc = 3, 2
    barrier, results = mp.Barrier(procs_n), mp.Queue()
    procs = [mp.Process(target=_process_worker, args=(str(output_dir), 1000 * (i + 1), batch, per_proc, barrier,
                                                      results, os.getpid())) for i in range(procs_n)]
    for p in procs:
        p.start()
    try:
        reports = [results.get(timeout=240) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():  # pragma: no cover
                p.kill()
    errors = [r for r in reports if r[0] != "ok"]
    assert not errors, errors
    assert all(p.exitcode == 0 for p in procs)
    saves = [s for _, _, names in reports for s in names]
    assert len(saves) == procs_n * per_proc
    _check(output_dir, saves, batch, existing)
