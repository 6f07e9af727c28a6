"""`python -m nodes.cli batch`: manifests, stable seeds and shards, results.jsonl, resume after SIGKILL, Ray."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import pack_module

ROOT = Path(__file__).resolve().parents[1]
manifest = pack_module("batch.manifest")
results = pack_module("batch.results")
cli = pack_module("cli")
VOLATILE = ("timings", "image")  # differ between runs / folders; everything else must match


# ------------------------------------------------------------------------------------------------- no models
def test_manifests_folder_txt_jsonl_csv_and_bad_rows(tmp_path):
    (tmp_path / "imgs").mkdir()
    for name in ("b.png", "a.jpg", "notes.md"):
        (tmp_path / "imgs" / name).write_bytes(b"x")
    assert [i["id"] for i in manifest.read_items(str(tmp_path / "imgs"))] == ["a.jpg", "b.png"]
    (tmp_path / "list.txt").write_text("# comment\nimgs/a.jpg\n\n/abs/c.png\n")
    items = manifest.read_items(str(tmp_path / "list.txt"))
    assert [(i["id"], i["image"]) for i in items] == [("imgs/a.jpg", str(tmp_path / "imgs" / "a.jpg")),
                                                      ("/abs/c.png", "/abs/c.png")]
    (tmp_path / "t.jsonl").write_text('{"image": "imgs/a.jpg", "id": "x", "seed": 3, "mood": "calm"}\n'
                                      '{broken\n{"caption": "no image"}\n{"image": "imgs/b.png", "id": "x"}\n')
    items = manifest.read_items(str(tmp_path / "t.jsonl"))
    assert [i["id"] for i in items] == ["x", "line-2", "line-3", "x#2"]
    assert items[0]["mood"] == "calm" and "error" not in items[0]
    assert "not a JSON object" in items[1]["error"] and '"image"' in items[2]["error"]
    assert "used by an earlier row" in items[3]["error"]
    (tmp_path / "t.csv").write_text("image,id,preset,loudness\nimgs/a.jpg,one,,-16\n,two,,\n")
    items = manifest.read_items(str(tmp_path / "t.csv"))
    assert items[0] == {"image": str(tmp_path / "imgs" / "a.jpg"), "id": "one", "loudness": "-16"}
    assert items[1]["id"] == "two" and "line 3" in items[1]["error"]
    with pytest.raises(ValueError, match="does not exist"):
        manifest.read_items(str(tmp_path / "nope.jsonl"))


def test_seeds_shards_and_names_are_stable():
    # fixed values: a change here changes every batch's audio (SHA-256 of the id, not Python's salted hash())
    assert manifest.seed_for_id("imgs/0.png") == 11303594614702076758
    assert manifest.seed_for_id("imgs/0.png", 1) != manifest.seed_for_id("imgs/0.png")
    ids = [f"item-{i}" for i in range(1000)]
    parts = [[i for i in ids if manifest.in_shard(i, (k, 4))] for k in range(1, 5)]
    assert sorted(sum(parts, [])) == sorted(ids) and all(200 < len(p) < 300 for p in parts)
    assert manifest.wav_stem("a b/ü.png") == manifest.wav_stem("a b/ü.png") != manifest.wav_stem("a_b/ü.png")
    assert manifest.wav_stem("../x").startswith("x-")
    for bad in ("0/2", "3/2", "1", "a/b"):
        with pytest.raises(ValueError, match="--shard"):
            manifest.parse_shard(bad)


def test_result_log_closes_a_torn_line_and_reads_the_last_record(tmp_path):
    path = str(tmp_path / "results.jsonl")
    log = results.ResultLog(path)
    log.append({"id": "a", "status": "failed", "lufs": float("-inf")})
    log.close()
    with open(path, "ab") as f:
        f.write(b'{"id": "b", "sta')  # a kill mid-line (power loss)
    log = results.ResultLog(path)
    log.append({"id": "a", "status": "done"})
    log.close()
    lines = Path(path).read_bytes().split(b"\n")
    assert lines[-1] == b"" and lines[1] == b'{"id": "b", "sta'
    assert results.read_results(path) == {"a": {"id": "a", "status": "done"}}
    assert json.loads(lines[0])["lufs"] is None  # strict JSON, no -Infinity


# ------------------------------------------------------------------------------------------------- with models
@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """Tiny demo model folders and a manifest of 8 items: 5 good (one captioned by BLIP), 3 bad."""
    from PIL import Image

    demo = pack_module("tools.demo_models")
    base = tmp_path_factory.mktemp("batch")
    blip, sa = demo.build_demo_models(str(base / "models"))
    (base / "imgs").mkdir()
    for i, colour in enumerate(["red", "blue", "green", "white"]):
        Image.new("RGB", (32, 24), colour).save(base / "imgs" / f"{i}.png")
    (base / "imgs" / "bad.png").write_bytes(b"not an image")
    rows = [{"image": "imgs/0.png"}, {"image": "imgs/1.png", "id": "blue", "caption": "rain", "note": "kept"},
            {"image": "imgs/2.png", "caption": "a quiet forest", "seed": 7, "loop": "true"},
            {"image": "imgs/3.png", "caption": "city", "preset": "cozy interior", "loudness": -20},
            {"image": "imgs/3.png", "id": "again", "caption": "city"},
            {"image": "imgs/bad.png"}, {"image": "imgs/missing.png", "caption": "x"},
            {"image": "imgs/2.png", "id": "abc", "caption": "x", "seconds": "abc"}]
    (base / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    common = ["--blip", blip, "--stable-audio", sa, "--steps", "2", "--seconds", "0.5", "--no-spectrogram",
              "--quiet"]
    return {"base": base, "manifest": str(base / "items.jsonl"), "common": common}


def _batch(job, out, *extra):
    return cli.main(["batch", job["manifest"], "--out", str(out), *job["common"], *extra])


def _batch_process(job, out, *extra, **popen):
    """The batch in a fresh interpreter, as a user runs it (``python -m nodes.cli batch``)."""
    args = [sys.executable, "-m", "nodes.cli", "batch", job["manifest"], "--out", str(out), *job["common"], *extra]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **popen)


def _outcome(out: Path) -> dict:
    """id -> (the record without volatile fields, the WAV's bytes)."""
    found = {}
    for line in (out / "results.jsonl").read_text().splitlines():
        record = json.loads(line)
        wav = (out / record["wav"]).read_bytes() if record["wav"] else None
        found[record["id"]] = ({k: v for k, v in record.items() if k not in VOLATILE}, wav)
    return found


@pytest.mark.slow
def test_serial_and_shards_give_the_same_wavs_and_records(job, tmp_path):
    assert _batch(job, tmp_path / "serial") == 1  # some items failed
    serial = _outcome(tmp_path / "serial")
    assert len(serial) == 8 and sum(r["status"] == "done" for r, _ in serial.values()) == 5
    assert "cannot identify image file" in serial["imgs/bad.png"][0]["error"]
    assert "does not exist" in serial["imgs/missing.png"][0]["error"]
    assert "'seconds' is 'abc'" in serial["abc"][0]["error"]
    assert serial["blue"][0]["note"] == "kept" and serial["imgs/2.png"][0]["seed"] == 7
    assert serial["imgs/2.png"][0]["loop_points"] is not None
    assert serial["again"][1] != serial["imgs/3.png"][1]  # same image and caption, another id -> another seed
    for key in ("prompt", "negative_prompt", "model", "steps", "cfg", "seconds", "lufs", "true_peak_dbtp"):
        assert serial["blue"][0][key] is not None, key
    for i in (1, 2):
        _batch(job, tmp_path / "shards", "--shard", f"{i}/2")
    assert _outcome(tmp_path / "shards") == serial
    summary = json.loads((tmp_path / "shards" / "summary-2-of-2.json").read_text())
    assert 0 < summary["items"] < 8 and summary["skipped"] == 0
    # a rerun skips everything; --retry-failed reruns only the failed items
    assert _batch(job, tmp_path / "serial") == 0
    assert json.loads((tmp_path / "serial" / "summary.json").read_text())["skipped"] == 8
    _batch(job, tmp_path / "serial", "--retry-failed")
    assert json.loads((tmp_path / "serial" / "summary.json").read_text())["failed"] == 3


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_does_each_item_once(job, tmp_path):
    out = tmp_path / "killed"
    proc = _batch_process(job, out)
    results_file = out / "results.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if results_file.exists() and results_file.read_bytes().count(b"\n") >= 2:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the batch finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = len(results_file.read_text().splitlines())
    assert 2 <= before < 8
    assert _batch_process(job, out).wait(timeout=300) == 1
    records = [json.loads(line) for line in results_file.read_text().splitlines()]  # every line parses
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)) == 8  # each item exactly once
    done = sorted(r["wav"] for r in records if r["status"] == "done")
    assert len(done) == 5
    assert sorted(f"wav/{p.name}" for p in (out / "wav").iterdir()) == done  # no partial, hidden or orphan file
    import soundfile as sf

    for wav in done:
        assert sf.info(str(out / wav)).frames > 0


@pytest.mark.slow
def test_ray_engine_gives_the_same_wavs_as_local(job, tmp_path):
    pytest.importorskip("ray.data", reason='Ray is an optional extra: pip install "ray[data]"')
    assert _batch(job, tmp_path / "local") == 1
    ray = _batch_process(job, tmp_path / "ray", "--engine", "ray", "--workers", "2")  # workers import nodes.*
    assert ray.wait(timeout=300) == 1, ray.stderr.read().decode()
    assert _outcome(tmp_path / "ray") == _outcome(tmp_path / "local")


def test_ray_missing_is_a_clear_message(job, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    assert _batch(job, tmp_path / "out", "--engine", "ray") == 1
    assert 'pip install "ray[data]"' in capsys.readouterr().err
