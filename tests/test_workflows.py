"""Example workflows: UI format the frontend loads, consistent links, only our nodes and core nodes; with the
ComfyUI harness present, each is queued in a real ComfyUI on tiny models."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import pack

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / "workflows").glob("*.json"))
CORE = {"LoadImage", "MarkdownNote", "PreviewImage", "SaveImage", "Note", "PreviewAudio", "SaveAudio", "SaveAudioMP3", "SaveAudioOpus",
        "LoadAudio", "PrimitiveStringMultiline", "PrimitiveString"}
HARNESS = Path(os.environ.get("HARNESS_HOME", Path.home() / "comfy-harness"))
HARNESS_TOOLS = ROOT.parent / "shared" / "harness"


def test_the_example_workflows_exist_with_thumbnails():
    assert [p.name for p in WORKFLOWS] == ["image_to_ambient.json", "layered_scene.json", "seamless_loop.json",
                                           "text_to_ambient.json"]
    for p in WORKFLOWS:
        assert p.with_suffix(".jpg").is_file()


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_is_consistent_ui_format(path):
    wf = json.loads(path.read_text())
    assert {"nodes", "links", "groups", "version", "last_node_id", "last_link_id"} <= set(wf)
    ids = [n["id"] for n in wf["nodes"]]
    assert len(ids) == len(set(ids)) and max(ids) == wf["last_node_id"]
    assert sorted(ids) == list(range(1, len(ids) + 1))  # small integers in reading order
    types = {n["id"]: n["type"] for n in wf["nodes"]}
    for t in types.values():
        assert t in pack.NODE_CLASS_MAPPINGS or t in CORE, t
    nodes = {n["id"]: n for n in wf["nodes"]}
    for link_id, src, src_slot, dst, dst_slot, typ in wf["links"]:
        assert link_id <= wf["last_link_id"]
        assert nodes[src]["outputs"][src_slot]["type"] == typ and link_id in nodes[src]["outputs"][src_slot]["links"]
        assert nodes[dst]["inputs"][dst_slot]["link"] == link_id
    # every input of our nodes is either linked or a widget with a value, in INPUT_TYPES order
    for n in wf["nodes"]:
        if n["type"] not in pack.NODE_CLASS_MAPPINGS:
            continue
        spec = pack.NODE_CLASS_MAPPINGS[n["type"]].INPUT_TYPES()
        required = list(spec["required"])
        every = {**spec["required"], **spec.get("optional", {})}
        linked = {i["name"] for i in n["inputs"] if i.get("link") is not None}
        widgets = [name for name, (kind, opts) in every.items() if isinstance(kind, list)
                   or kind in ("STRING", "INT", "FLOAT", "BOOLEAN") and not opts.get("forceInput")]
        assert set(required) <= linked | set(widgets), n["type"]
        extra = 1 if n["type"] == "AmbientStableAudioSampler" else 0  # control_after_generate of the seed
        assert len(n.get("widgets_values", [])) == len(widgets) + extra, n["type"]
    # a note that says where models go
    notes = [n for n in wf["nodes"] if n["type"] == "MarkdownNote"]
    assert notes and "ComfyUI/models/" in notes[0]["widgets_values"][0]
    assert "null" not in json.dumps(wf["groups"])


def test_samplers_ship_a_fixed_seed():
    for path in WORKFLOWS:
        wf = json.loads(path.read_text())
        samplers = [n for n in wf["nodes"] if n["type"] == "AmbientStableAudioSampler"]
        assert samplers and all(s["widgets_values"][6] == "fixed" for s in samplers)


@pytest.mark.skipif(not (HARNESS / "ComfyUI" / "main.py").is_file() or not HARNESS_TOOLS.is_dir(),
                    reason="ComfyUI harness not set up (../shared/harness/setup.sh)")
def test_workflows_run_in_a_real_comfyui(tmp_path):
    models = tmp_path / "models_root"
    subprocess.run([sys.executable, str(ROOT / "tools" / "harness_models.py"), str(models)], check=True,
                   capture_output=True)
    out = tmp_path / "accept"
    run = subprocess.run([sys.executable, str(HARNESS_TOOLS / "comfy_harness.py"), "accept", "--pack", str(ROOT),
                          "--name", "image-to-ambient-audio", "--models-config",
                          str(models / "extra_model_paths.yaml"), "--input", str(ROOT / "assets" / "example_beach.jpg"),
                          "--out", str(out), "--require-tooltips"],
                         capture_output=True, text=True, timeout=600, env={**os.environ, "HARNESS_HOME": str(HARNESS)})
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    assert len(report["workflows"]) == len(WORKFLOWS)
    for w in report["workflows"]:
        assert w["result"] == "ok" and w["files"], w
        assert all(Path(f["copy"]).stat().st_size > 1000 for f in w["files"])
    assert report["passed"] is True
