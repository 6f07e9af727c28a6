"""Drop a saved WAV on the ComfyUI canvas and get its workflow back (web/ambient_wav_drop.js).

- Always: the pack exports WEB_DIRECTORY and ships the extension; the extension's RIFF reader (run in Node.js when it
  is installed) finds the JSON that ``nodes/wav.py`` writes, in files of every shape Save WAV makes.
- With the ComfyUI harness (``../shared/harness``; skipped without it): a real ComfyUI 0.8.0 on port 8190 (a free
  port if that one is taken) and its real frontend in headless Chromium. The example workflow runs from the page on tiny models, Save WAV writes a WAV
  with the workflow in it, the canvas is emptied, and the WAV is dropped on it (a DataTransfer ``drop`` event, as a
  file dragged from the desktop makes) and opened with Workflow > Open's file input: the graph comes back with the
  values it ran with. A WAV without metadata leaves the graph alone and gets the frontend's own message.

Set ``AMBIENT_WEB_SHOTS=DIR`` to keep the screenshots.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import soundfile as sf
import tomllib
import torch

from conftest import pack, pack_module

ROOT = Path(__file__).resolve().parents[1]
JS = ROOT / "web" / "ambient_wav_drop.js"
HARNESS = Path(os.environ.get("HARNESS_HOME", Path.home() / "comfy-harness"))
HARNESS_TOOLS = ROOT.parent / "shared" / "harness"
HARNESS_PY = HARNESS / "venv" / "bin" / "python"
PORT = 8190  # not 8188: a developer's own ComfyUI may be there; a free port when another run holds 8190
# A custom_nodes name of its own (with the port): stopping this server removes only its own link, never one another
# server uses; and it shows the extension does not depend on the folder name (Registry and git installs differ).
PACK_NAME = "image-to-ambient-audio-droptest"
EXTENSION = "ImageToAmbientAudio.WavWorkflowDrop"

wav = pack_module("audio.wav")


def test_the_pack_ships_its_frontend_extension():
    assert pack.WEB_DIRECTORY == "./web" and "WEB_DIRECTORY" in pack.__all__
    assert (ROOT / pack.WEB_DIRECTORY / JS.name).is_file()
    text = JS.read_text()
    assert f'const EXTENSION = "{EXTENSION}"' in text and "app.registerExtension({" in text
    assert 'import { app } from "../../scripts/app.js"' in text
    assert "/extensions/" not in text.replace('"../../scripts/app.js"', "")  # never the install folder's name
    # WEB_DIRECTORY only: [tool.comfy].web as well would register the folder twice (the JS would load twice)
    assert "web" not in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["comfy"]


# ------------------------------------------------------------------------------ the JS RIFF reader, in Node.js
NODE_SCRIPT = """
import { readFileSync } from "node:fs";
import { readWavInfo, readWavWorkflow } from "./extensions/pack/ambient_wav_drop.js";
const out = {};
for (const path of process.argv.slice(2)) {
  const file = new File([readFileSync(path)], path.split("/").pop(), { type: "audio/wav" });
  out[path.split("/").pop()] = { info: await readWavInfo(file), found: await readWavWorkflow(file) };
}
console.log(JSON.stringify(out));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js not installed")
def test_the_extension_reads_what_save_wav_writes(tmp_path):
    root = tmp_path / "frontend"
    (root / "scripts").mkdir(parents=True)
    (root / "extensions" / "pack").mkdir(parents=True)
    (root / "package.json").write_text('{"type": "module"}')
    (root / "scripts" / "app.js").write_text("export const app = { registerExtension() {} };\n")
    shutil.copy(JS, root / "extensions" / "pack" / JS.name)
    (root / "run.js").write_text(NODE_SCRIPT)
    workflow = json.loads((ROOT / "workflows" / "image_to_ambient.json").read_text())
    api = {"1": {"class_type": "AmbientSaveWav", "inputs": {"filename_prefix": "x"}}}
    clip = torch.zeros(2, 3001)  # odd sizes: every chunk needs its pad byte
    files = {
        "full.wav": wav.encode_wav(clip, 44100, "24", (0, 3000),
                                   wav.generation_metadata(api, {"workflow": workflow}, {"prompt": "rain ü", "seed": 3})),
        "api_only.wav": wav.encode_wav(clip, 8000, "16", None, wav.generation_metadata(api)),
        "plain.wav": wav.encode_wav(clip, 44100, "32-float"),
        "other_comment.wav": wav.add_chunk(wav.encode_wav(clip, 44100), wav.info_chunk({"ICMT": "made in a DAW"})),
        "not_a_wav.wav": b"fLaC\x00\x00\x00\x22" + bytes(64),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    run = subprocess.run(["node", str(root / "run.js"), *(str(tmp_path / n) for n in files)], cwd=root,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    assert got["full.wav"]["info"]["INAM"] == "rain ü" and got["full.wav"]["info"]["ISFT"] == wav.SOFTWARE
    assert got["full.wav"]["found"] == {"workflow": workflow, "prompt": api}
    assert got["api_only.wav"]["found"] == {"workflow": None, "prompt": api}
    assert got["plain.wav"] == {"info": {}, "found": None}
    assert got["other_comment.wav"]["found"] is None
    assert got["not_a_wav.wav"] == {"info": None, "found": None}


# ------------------------------------------------------------------------- the real frontend, in Chromium
DRIVER = textwrap.dedent('''
    """Browser side of tests/test_web_drop.py; runs with the harness venv (Playwright + Debian chromium)."""
    import json, os, sys, time, urllib.request
    sys.path.insert(0, os.environ["HARNESS_TOOLS"])
    from comfy_browser import Browser

    url, workflow_path, shots, output_dir = sys.argv[1:5]
    EMPTY = {"nodes": [], "links": [], "groups": [], "version": 0.4, "last_node_id": 0, "last_link_id": 0}
    report = {}

    def graph(b):
        return b.page.evaluate("""() => window.app.graph.nodes.map(n => ({id: n.id, type: n.type,
            widgets: Object.fromEntries((n.widgets || []).filter(w => w.name).map(w => [w.name, w.value]))}))""")

    def until(b, pred, timeout=30):
        t = time.time()
        while time.time() - t < timeout:
            g = graph(b)
            if pred(g):
                return g
            time.sleep(0.25)
        return graph(b)

    def empty_canvas(b):
        b.page.evaluate("async (wf) => { await window.app.loadGraphData(wf, true, true, 'empty') }", EMPTY)
        return len(graph(b))

    def drop(b, subfolder, name, mime):
        """A file dragged from the desktop onto the canvas: fetched from the output folder, dropped as a File."""
        b.page.evaluate("""async ([sub, name, mime]) => {
            const url = `/api/view?filename=${encodeURIComponent(name)}&subfolder=${sub}&type=output`;
            let r = null;
            for (let i = 0; i < 10 && !(r && r.ok); i++) {  // the server may be busy for a moment: try again
                try { r = await fetch(url); } catch (e) { await new Promise(ok => setTimeout(ok, 500)); }
            }
            const file = new File([await r.blob()], name, {type: mime});
            const dt = new DataTransfer(); dt.items.add(file);
            const canvas = document.querySelector('#graph-canvas') || window.app.canvasEl;
            canvas.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
        }""", [subfolder, name, mime])

    def shot(b, name):
        b.fit()
        b.page.screenshot(path=os.path.join(shots, name))

    with Browser(url) as b:
        b.open_comfy()
        report["extension_loaded"] = b.page.evaluate(
            "() => window.app.extensions.some(e => e.name === 'ImageToAmbientAudio.WavWorkflowDrop')")
        report["missing"] = b.load(json.load(open(workflow_path)), "image_to_ambient")
        report["loaded"] = graph(b)
        # run it from the page (so the frontend sends the workflow), short and fixed: 1 s, 2 steps, seed 1234
        b.page.evaluate("""() => { for (const n of window.app.graph.nodes) if (n.type === 'AmbientStableAudioSampler')
            for (const w of n.widgets) { if (w.name === 'seconds') w.value = 1.0; if (w.name === 'steps') w.value = 2;
                                         if (w.name === 'seed') w.value = 1234; } }""")
        report["ran"] = graph(b)
        out = os.path.join(output_dir, "ambient")
        b.page.evaluate("() => window.app.queuePrompt(0, 1)")
        t, history = time.time(), {}
        while time.time() - t < 180 and not any(h.get("status", {}).get("completed") for h in history.values()):
            time.sleep(0.5)
            with urllib.request.urlopen(url + "/api/history", timeout=30) as r:
                history = json.loads(r.read())
        report["history_status"] = [h.get("status", {}).get("status_str") for h in history.values()]
        saved = sorted(a["filename"] for h in history.values() for o in h.get("outputs", {}).values()
                       for a in o.get("audio", []))
        time.sleep(1.0)  # let the page show the result
        report["saved"] = saved
        shot(b, "1_ran.png")
        if not saved:
            print(json.dumps(report)); sys.exit(0)
        # 1. drop the WAV on an empty canvas
        report["empty_before_drop"] = empty_canvas(b)
        drop(b, "ambient", saved[0], "audio/wav")
        report["dropped"] = until(b, lambda g: len(g) > 0)
        shot(b, "2_dropped.png")
        # 2. Workflow > Open with the same file (the frontend's own file input)
        report["empty_before_open"] = empty_canvas(b)
        b.page.set_input_files("#comfy-file-input", os.path.join(out, saved[0]))
        report["opened"] = until(b, lambda g: len(g) > 0)
        report["open_accepts_wav"] = b.page.evaluate("() => document.getElementById('comfy-file-input').accept")
        # 3. a WAV with only the API prompt (queued through the HTTP API, no workflow): rebuilt from the prompt
        empty_canvas(b)
        drop(b, "drop_test", "api_only.wav", "")  # no MIME type, as some systems send: known by its name
        report["api_only"] = until(b, lambda g: len(g) > 0)
        # 4. a WAV without metadata: the graph stays, the frontend says it found no workflow
        b.page.evaluate("async () => { await window.app.loadGraphData(null) }")  # the default graph
        before = graph(b)
        drop(b, "drop_test", "plain.wav", "audio/x-wav")
        message = b.page.locator("text=Unable to find workflow in plain.wav")
        try:
            message.first.wait_for(timeout=10000)
        except Exception:
            pass
        time.sleep(0.5)
        report["plain_unchanged"] = graph(b) == before and len(before) > 0
        report["plain_message"] = message.count()
        shot(b, "3_plain_wav.png")
        report["errors"] = [l for l in b.errors() if "plain.wav" not in l]
    print(json.dumps(report))
''')


def _harness_missing():
    if not (HARNESS / "ComfyUI" / "main.py").is_file() or not HARNESS_PY.is_file():
        return "ComfyUI harness not set up (../shared/harness/setup.sh)"
    if not (HARNESS_TOOLS / "comfy_browser.py").is_file():
        return "harness tools not found"
    if not (os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")):
        return "chromium not installed"
    return None


def _port() -> int:
    """8190, or a free port when something (another test run) already listens there."""
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", PORT)) != 0:
            return PORT
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _harness(*args, timeout=300):
    return subprocess.run([sys.executable, str(HARNESS_TOOLS / "comfy_harness.py"), *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "HARNESS_HOME": str(HARNESS)})


@pytest.mark.slow
@pytest.mark.skipif(_harness_missing() is not None, reason=str(_harness_missing()))
def test_dropping_a_saved_wav_on_the_canvas_restores_its_workflow(tmp_path):
    models = tmp_path / "models_root"
    subprocess.run([sys.executable, str(ROOT / "tools" / "harness_models.py"), str(models)], check=True,
                   capture_output=True)
    port = _port()
    start = _harness("start", "--pack", str(ROOT), "--name", f"{PACK_NAME}-{port}", "--port", str(port), "--isolate",
                     "--",  # no --input: the workflows' Load Image (or Example) brings its bundled picture
                     "--extra-model-paths-config", str(models / "extra_model_paths.yaml"))
    try:
        assert start.returncode == 0, start.stdout[-3000:] + start.stderr[-2000:]
        output_dir = Path(next(line.split("=", 1)[1] for line in start.stdout.splitlines()
                               if line.startswith("output_dir=")))
        # two more WAVs to drop: one with only the API prompt (as an API run writes), one without metadata
        api_prompt = {"1": {"class_type": "EmptyAudio", "inputs": {"duration": 1.0, "sample_rate": 8000,
                                                                   "channels": 1}},
                      "2": {"class_type": "AmbientSaveWav", "inputs": {"audio": ["1", 0], "filename_prefix": "x",
                                                                       "bit_depth": "16", "loop_points": "auto",
                                                                       "metadata": True}}}
        (output_dir / "drop_test").mkdir(parents=True)
        clip = torch.zeros(1, 800)
        (output_dir / "drop_test" / "api_only.wav").write_bytes(
            wav.encode_wav(clip, 8000, metadata=wav.generation_metadata(api_prompt)))
        (output_dir / "drop_test" / "plain.wav").write_bytes(wav.encode_wav(clip, 8000))
        shots = Path(os.environ.get("AMBIENT_WEB_SHOTS") or tmp_path / "shots")
        shots.mkdir(parents=True, exist_ok=True)
        driver = tmp_path / "driver.py"
        driver.write_text(DRIVER)
        run = subprocess.run([str(HARNESS_PY), str(driver), f"http://127.0.0.1:{port}",
                              str(ROOT / "workflows" / "image_to_ambient.json"), str(shots), str(output_dir)],
                             capture_output=True, text=True, timeout=420,
                             env={**os.environ, "HARNESS_HOME": str(HARNESS), "HARNESS_TOOLS": str(HARNESS_TOOLS)})
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        report = json.loads(run.stdout.strip().splitlines()[-1])
        log = _harness("log", "--port", str(port), "--tail", "60").stdout
    finally:
        _harness("stop", "--port", str(port))

    assert report["extension_loaded"] and report["missing"] == []
    # an older workflow (Save WAV saved before "metadata" existed) loads with metadata on
    save_wav = [n for n in report["loaded"] if n["type"] == "AmbientSaveWav"]
    assert save_wav and save_wav[0]["widgets"]["metadata"] is True
    assert report["history_status"] == ["success"] and report["saved"] == ["soundscape_00001_.wav"], log

    # the file: audio, plus the workflow as the page had it and the API prompt with the values it ran with
    path = output_dir / "ambient" / report["saved"][0]
    meta = wav.read_metadata(str(path))
    assert [(n["id"], n["type"]) for n in meta["workflow"]["nodes"]] == [(n["id"], n["type"]) for n in report["ran"]]
    sampler = next(v["inputs"] for v in meta["prompt"].values() if v["class_type"] == "AmbientStableAudioSampler")
    assert (sampler["seconds"], sampler["steps"], sampler["seed"], sampler["cfg"]) == (1.0, 2, 1234, 0.0)
    assert (meta["ambient"]["steps"], meta["ambient"]["cfg"]) == (2, 7.0)  # cfg 0 ran as Open 1.0's own 7
    loaders = {v["class_type"]: v["inputs"]["model"] for v in meta["prompt"].values() if "Loader" in v["class_type"]}
    assert loaders == {"AmbientBlipLoader": "blip-image-captioning-large",
                       "AmbientStableAudioLoader": "stable-audio-open-1.0"}
    assert sf.info(str(path)).frames == 44100  # 1 s at 44.1 kHz

    def summary(g):
        # the widgets' values, less the frontend-only ones (the audio player, LoadImage's preview once it loads)
        return [(n["id"], n["type"], {k: v for k, v in n["widgets"].items() if k != "audioUI" and not k.startswith("$$")})
                for n in g]

    # dropped on an empty canvas, and opened with Workflow > Open: the graph as it ran (2 steps, seed 1234)
    assert report["empty_before_drop"] == 0 and report["empty_before_open"] == 0
    assert summary(report["dropped"]) == summary(report["ran"])
    assert summary(report["opened"]) == summary(report["ran"])
    sampler_widgets = next(n["widgets"] for n in report["dropped"] if n["type"] == "AmbientStableAudioSampler")
    assert (sampler_widgets["steps"], sampler_widgets["seed"]) == (2, 1234)
    assert ".wav" in report["open_accepts_wav"]
    # only the API prompt: the nodes are rebuilt from it
    assert sorted(n["type"] for n in report["api_only"]) == ["AmbientSaveWav", "EmptyAudio"]
    # no metadata: nothing changes, and the frontend's own message names the file
    assert report["plain_unchanged"] and report["plain_message"] >= 1
    assert report["errors"] == []
