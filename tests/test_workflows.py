"""Example workflows: UI format the frontend loads, consistent links, only our nodes and core nodes; with the
ComfyUI harness present, each is queued in a real ComfyUI on tiny models and loaded in its real frontend.

``image_to_ambient_native.json`` runs on ComfyUI's own Stable Audio nodes, which need the single-file checkpoint: it
cannot run here, so in the real ComfyUI it must get past validation (every value and link accepted) and stop only
where the checkpoint loads, and it must load in the frontend with no missing node."""
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
        "PreviewAny",
        "LoadAudio", "PrimitiveStringMultiline", "PrimitiveString",
        # ComfyUI's own Stable Audio nodes (image_to_ambient_native.json)
        "CheckpointLoaderSimple", "CLIPLoader", "CLIPTextEncode", "ConditioningStableAudio", "EmptyLatentAudio",
        "KSampler", "VAEDecodeAudio"}
NATIVE = "image_to_ambient_native.json"
# The frontend draws no text below 8 px: node text is 14 px, so below a zoom of 8/14 (0.57) a graph looks empty.
TEXT_ZOOM = 8 / 14
READABLE = 0.75  # the least zoom a shipped workflow opens at
CANVAS = (1600, 1000)  # the harness's browser window; FitView zooms to 0.75 x (canvas / graph)


def _value_names(every: dict, widgets: list) -> list:
    """The names of a node's saved widget values, in order: the frontend adds a control_after_generate value after
    each seed (declared, or an INT named seed / noise_seed), saved as "<seed>.control" here, and its upload
    button's value after an ``image_upload`` combo, saved as "upload"."""
    names = []
    for name in widgets:
        names.append(name)
        kind, opts = every[name]
        if kind == "INT" and (opts.get("control_after_generate") or name in ("seed", "noise_seed")):
            names.append(name + ".control")
        if isinstance(opts, dict) and opts.get("image_upload"):
            names.append("upload")
    return names
HARNESS = Path(os.environ.get("HARNESS_HOME", Path.home() / "comfy-harness"))
HARNESS_TOOLS = ROOT.parent / "shared" / "harness"


def test_the_example_workflows_exist_with_thumbnails():
    assert [p.name for p in WORKFLOWS] == ["best_take_sa3.json", "image_to_ambient.json", NATIVE,
                                           "layered_scene.json", "panorama_to_ambix.json", "procedural_sleep_bed.json",
                                           "seamless_loop.json", "text_to_ambient.json"]
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
        values = _value_names(every, widgets)
        # every current input has its saved value (none left to the frontend's "no saved value" fallback)
        assert len(n.get("widgets_values") or []) == len(values), (path.name, n["id"], n["type"], values)
        for k, name in enumerate(values):
            if name.endswith(".control"):  # shipped workflows reproduce: every seed is fixed
                assert n["widgets_values"][k] == "fixed", (path.name, n["type"], name)
            if name == "upload":  # the frontend's upload button stores its kind
                assert n["widgets_values"][k] == "image", (path.name, n["type"])
                continue
            kind, opts = every[name.removesuffix(".control")]
            if name.endswith(".control") or n["widgets_values"][k] is None:
                continue
            if isinstance(kind, list) and not n["type"].endswith("Loader"):  # a loader lists the folders found
                assert n["widgets_values"][k] in kind, (path.name, n["type"], name, n["widgets_values"][k])
            elif kind in ("INT", "FLOAT"):
                assert opts.get("min", -1e30) <= n["widgets_values"][k] <= opts.get("max", 1e30), (path.name, name)
            elif kind == "BOOLEAN":
                assert isinstance(n["widgets_values"][k], bool), (path.name, n["type"], name)
    # a note that says where models go
    notes = [n for n in wf["nodes"] if n["type"] == "MarkdownNote"]
    assert notes and "ComfyUI/models/" in notes[0]["widgets_values"][0]
    assert "null" not in json.dumps(wf["groups"])


def _graph_bounds(wf: dict) -> tuple:
    """(left, top, right, bottom) of the nodes (with their 30 px title bars) and groups, in graph units."""
    boxes = [(n["pos"][0], n["pos"][1] - 30, n["pos"][0] + n["size"][0], n["pos"][1] + n["size"][1])
             for n in wf["nodes"]]
    boxes += [(x, y, x + w, y + h) for x, y, w, h in (g["bounding"] for g in wf["groups"])]
    return tuple(f(box[k] for box in boxes) for k, f in enumerate((min, min, max, max)))


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_opens_where_its_text_is_readable(path):
    wf = json.loads(path.read_text())
    scale, (ox, oy) = wf["extra"]["ds"]["scale"], wf["extra"]["ds"]["offset"]
    assert READABLE <= scale <= 1.25, (path.name, scale)
    left, top, right, bottom = _graph_bounds(wf)
    # the start of the graph (the note's top left) on screen, clear of the side bar (~65 px) and top bars (~90 px)
    assert 65 <= (left + ox) * scale <= 200 and 90 <= (top + oy) * scale <= 200, (path.name, left, top, ox, oy)
    # the whole graph fits the canvas at a zoom where text is still drawn ("fit view", the harness's screenshot)
    fit = 0.75 * min(CANVAS[0] / (right - left), CANVAS[1] / (bottom - top))
    assert fit >= TEXT_ZOOM + 0.02, (path.name, round(fit, 3), (left, top, right, bottom))
    # the note is drawn at the same zoom as the graph: big enough for its text, and it is the first thing seen
    note = next(n for n in wf["nodes"] if n["type"] == "MarkdownNote")
    assert note["pos"][0] == left and note["size"][0] >= 400 and note["size"][1] >= 400, path.name


def test_samplers_ship_a_fixed_seed():
    # where control_after_generate sits in widgets_values (the procedural nodes make audio without a model)
    control = {"AmbientStableAudioSampler": 6, "KSampler": 1, "AmbientProceduralScene": 3, "AmbientProceduralBed": 3}
    for path in WORKFLOWS:
        wf = json.loads(path.read_text())
        samplers = [n for n in wf["nodes"] if n["type"] in control]
        assert samplers and all(s["widgets_values"][control[s["type"]]] == "fixed" for s in samplers), path.name


def test_native_workflow_feeds_our_prompt_into_core_stable_audio():
    wf = json.loads((ROOT / "workflows" / NATIVE).read_text())
    nodes = {n["id"]: n for n in wf["nodes"]}
    by_type = {}
    for n in wf["nodes"]:
        by_type.setdefault(n["type"], []).append(n)
    links = {link[0]: link for link in wf["links"]}

    def source(node, input_name):
        link = next(i["link"] for i in node["inputs"] if i["name"] == input_name)
        return nodes[links[link][1]]["type"], links[link][2]

    ckpt = by_type["CheckpointLoaderSimple"][0]
    assert ckpt["widgets_values"] == ["stable-audio-open-1.0.safetensors"]
    assert ckpt["properties"]["models"][0]["directory"] == "checkpoints"
    assert by_type["CLIPLoader"][0]["widgets_values"][:2] == ["t5-base.safetensors", "stable_audio"]
    encoders = sorted(source(n, "text") for n in by_type["CLIPTextEncode"])
    assert encoders == [("AmbientPromptBuilder", 0), ("AmbientPromptBuilder", 1)]  # prompt and negative prompt
    assert source(by_type["AmbientPromptBuilder"][0], "caption") == ("AmbientBlipCaption", 0)
    seconds = by_type["EmptyLatentAudio"][0]["widgets_values"][0]
    assert by_type["ConditioningStableAudio"][0]["widgets_values"] == [0, seconds] and seconds <= 47
    assert source(by_type["VAEDecodeAudio"][0], "samples") == ("KSampler", 0)
    # then our sound craft and Save WAV, with the workflow embedded
    assert source(by_type["AmbientLoudness"][0], "audio") == ("VAEDecodeAudio", 0)
    assert source(by_type["AmbientSaveWav"][0], "audio") == ("AmbientFade", 0)
    assert by_type["AmbientSaveWav"][0]["widgets_values"][-1] is True
    note = by_type["MarkdownNote"][0]["widgets_values"][0]
    assert "checkpoints/" in note and "text_encoders/" in note and "hf download" in note


@pytest.mark.slow
@pytest.mark.skipif(not (HARNESS / "ComfyUI" / "main.py").is_file() or not HARNESS_TOOLS.is_dir(),
                    reason="ComfyUI harness not set up (../shared/harness/setup.sh)")
def test_workflows_run_in_a_real_comfyui(tmp_path):
    models = tmp_path / "models_root"
    subprocess.run([sys.executable, str(ROOT / "tools" / "harness_models.py"), str(models)], check=True,
                   capture_output=True)
    # The native workflow's model files, as empty stand-ins: ComfyUI then validates the whole graph (every value,
    # link and model name) and the run stops only where the real checkpoint would load.
    native = tmp_path / "native_models"
    for folder, name in (("checkpoints", "stable-audio-open-1.0.safetensors"), ("text_encoders", "t5-base.safetensors")):
        (native / folder).mkdir(parents=True)
        (native / folder / name).write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")  # a safetensors file, no tensors
    config = tmp_path / "extra_model_paths.yaml"
    config.write_text((models / "extra_model_paths.yaml").read_text() + f"native_stand_ins:\n    base_path: {native}\n"
                      "    checkpoints: checkpoints/\n    text_encoders: text_encoders/\n")
    out = tmp_path / "accept"
    run = subprocess.run([sys.executable, str(HARNESS_TOOLS / "comfy_harness.py"), "accept", "--pack", str(ROOT),
                          # no --input: the input folder starts empty, as on a fresh ComfyUI (the shipped workflows'
                          # Load Image (or Example) copies the bundled example_beach.jpg there on the first run)
                          "--name", "image-to-ambient-audio", "--models-config", str(config), "--out", str(out),
                          "--require-tooltips", "--browser"],
                         capture_output=True, text=True, timeout=1800, env={**os.environ, "HARNESS_HOME": str(HARNESS)})
    report = json.loads((out / "report.json").read_text())
    assert len(report["workflows"]) == len(WORKFLOWS), run.stdout[-4000:] + run.stderr[-2000:]
    for w in report["workflows"]:
        if w["file"].endswith(NATIVE):
            assert w["result"] == "execution error", w  # validation passed; no real checkpoint to load
            assert w["message"].startswith("node 5 (CheckpointLoaderSimple): RuntimeError"), w
            assert "Could not detect model type" in w["message"], w
            continue
        assert w["result"] == "ok" and w["files"], w
        assert all(Path(f["copy"]).stat().st_size > 1000 for f in w["files"])
    # every workflow loads in the real frontend: no missing node, no schema alert, no page error
    loaded = report["browser"]["workflows"]
    assert len(loaded) == len(WORKFLOWS)
    for row in loaded:
        assert not row["missing"] and not row["alerts"] and not row["page_errors"], row
    assert [f for f in report["failures"] if NATIVE not in f] == [], report["failures"]
