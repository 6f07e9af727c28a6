"""A model folder is checked part by part before it loads (issue 13, items 8-10).

Each test deletes one part from a copy of a tiny folder (built the way the real downloads are laid out) and asserts
that the loader node refuses it when queued and when run, naming the folder, the missing part and how to get it back;
the complete folder still loads.
"""
import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import HAS_SA3, needs_sa3, pack, pack_module, run_node

demo = pack_module("tools.demo_models")
folders = pack_module("models.folders")
loading = pack_module("models.loading")
N = pack.NODE_CLASS_MAPPINGS

LOADERS = {folders.BLIP: "AmbientBlipLoader", folders.STABLE_AUDIO: "AmbientStableAudioLoader",
           folders.CLAP: "AmbientClapLoader"}
OPEN_FIX = "hf download stabilityai/stable-audio-open-1.0 --local-dir {}"
SA3_FIX = "convert-sa3 stable-audio-3-medium.safetensors {} --text-encoder t5gemma-b-b-ul2"


@pytest.fixture(scope="module")
def sources(comfy_models, tmp_path_factory):
    """The tiny folders of every kind (CLAP built here: the session models have none)."""
    clap = tmp_path_factory.mktemp("clap_src") / "clap-htsat-unfused"
    demo.build_tiny_clap(str(clap))
    found = {"open": comfy_models["stable_audio"], "blip": comfy_models["blip"], "clap": str(clap)}
    if HAS_SA3:
        found["sa3"] = comfy_models["stable_audio3"]
    return found


def _loader_with_root(monkeypatch, kind, root):
    cls = N[LOADERS[kind]]
    monkeypatch.setattr(cls, "roots", classmethod(lambda c: [str(root)]))
    return cls


def _refused(monkeypatch, kind, root, name):
    """The loader's message for folder ``name`` under ``root``: the same when queued and when run."""
    loader = _loader_with_root(monkeypatch, kind, root)
    queued = loader.VALIDATE_INPUTS(model=name)
    assert isinstance(queued, str), f"{name} was accepted"
    with pytest.raises(ValueError) as run:
        run_node(LOADERS[kind], model=name, dtype="fp32")
    assert str(run.value) == queued
    return queued


# a part that transformers saves under different file names by version (transformers 5: tokenizer.json and
# processor_config.json; 4.x: vocabulary files and preprocessor_config.json): removing it removes every form present
FILE_GROUPS = {"<vocabulary>": ("tokenizer.json", "vocab.txt", "vocab.json", "merges.txt", "spiece.model",
                                "tokenizer.model"),
               "<processor config>": ("processor_config.json", "preprocessor_config.json")}


def _broken_copy(src, root, name, remove):
    dest = root / name
    shutil.copytree(src, dest)
    targets = [dest / f for f in FILE_GROUPS.get(remove, (remove,)) if (dest / f).exists()]
    assert targets, f"{src} has no {remove}"
    for target in targets:
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()
    return dest


OPEN_PARTS = ["transformer", "vae", "text_encoder", "tokenizer", "projection_model", "scheduler",
              "tokenizer/tokenizer_config.json", "tokenizer/tokenizer.json", "text_encoder/model.safetensors",
              "transformer/config.json", "scheduler/scheduler_config.json"]


@pytest.mark.parametrize("remove", OPEN_PARTS)
def test_stable_audio_open_folder_lacking_a_part_is_refused_naming_it(sources, tmp_path, monkeypatch, remove):
    folder = _broken_copy(sources["open"], tmp_path, "stable-audio-open-1.0", remove)
    msg = _refused(monkeypatch, folders.STABLE_AUDIO, tmp_path, "stable-audio-open-1.0")
    part, _, file = remove.partition("/")
    assert msg.startswith(f'Load Stable Audio Model: "model" folder {folder} is incomplete: it lacks {part}/')
    assert ("the .safetensors weights" if file.endswith(".safetensors") else file or "the whole folder") in msg
    assert OPEN_FIX.format(folder) in msg and "licence" in msg


@needs_sa3
@pytest.mark.parametrize("remove", ["tokenizer", "duration_embedder", "vae/diffusion_pytorch_model.safetensors",
                                    "scheduler", "text_encoder/config.json"])
def test_stable_audio_3_folder_lacking_a_part_points_at_convert_sa3(sources, tmp_path, monkeypatch, remove):
    folder = _broken_copy(sources["sa3"], tmp_path, "my-sa3", remove)
    msg = _refused(monkeypatch, folders.STABLE_AUDIO, tmp_path, "my-sa3")
    assert f"{folder} is incomplete: it lacks {remove.split('/')[0]}/" in msg
    assert SA3_FIX.format(folder) in msg and "hf download google/t5gemma-b-b-ul2" in msg
    assert "stable-audio-open-1.0" not in msg


def test_model_index_without_the_tokenizer_entry_is_refused(sources, tmp_path, monkeypatch):
    folder = tmp_path / "sa"
    shutil.copytree(sources["open"], folder)
    index = json.loads((folder / "model_index.json").read_text())
    del index["tokenizer"]
    (folder / "model_index.json").write_text(json.dumps(index))
    msg = _refused(monkeypatch, folders.STABLE_AUDIO, tmp_path, "sa")
    assert "it lacks tokenizer/ (the whole folder, and its entry in model_index.json)" in msg


def test_a_sharded_component_lacking_a_shard_is_refused(sources, tmp_path, monkeypatch):
    folder = tmp_path / "sa"
    shutil.copytree(sources["open"], folder)
    os.rename(folder / "text_encoder" / "model.safetensors", folder / "text_encoder" / "model-00001-of-00002.safetensors")
    (folder / "text_encoder" / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
        "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    msg = _refused(monkeypatch, folders.STABLE_AUDIO, tmp_path, "sa")
    assert "it lacks text_encoder/ (model-00002-of-00002.safetensors)" in msg


@pytest.mark.parametrize("kind,remove,named", [
    ("blip", "<vocabulary>", "tokenizer.json (or its vocabulary"),
    ("blip", "tokenizer_config.json", "tokenizer_config.json"),
    ("blip", "<processor config>", "preprocessor_config.json"),
    ("blip", "model.safetensors", "the .safetensors weights"),
    ("clap", "<vocabulary>", "tokenizer.json (or its vocabulary"),
    ("clap", "tokenizer_config.json", "tokenizer_config.json"),
    ("clap", "<processor config>", "preprocessor_config.json"),
])
def test_blip_and_clap_folders_lacking_a_file_are_refused_naming_it(sources, tmp_path, monkeypatch, kind, remove,
                                                                     named):
    name = "blip-image-captioning-base" if kind == "blip" else "clap-htsat-unfused"
    folder = _broken_copy(sources[kind], tmp_path, name, remove)
    msg = _refused(monkeypatch, kind, tmp_path, name)
    node = "Load BLIP Caption Model" if kind == "blip" else "Load CLAP Model"
    assert msg.startswith(f'{node}: "model" folder {folder} is incomplete: it lacks ') and named in msg
    repo = "Salesforce/blip-image-captioning-base" if kind == "blip" else "laion/clap-htsat-unfused"
    assert f"hf download {repo}" in msg and f"--local-dir {folder}" in msg


def test_vocabulary_files_stand_in_for_tokenizer_json(sources, tmp_path, monkeypatch):
    """A real BLIP download has vocab.txt beside tokenizer.json; either one is a tokenizer."""
    folder = _broken_copy(sources["blip"], tmp_path, "blip", "<vocabulary>")
    assert _loader_with_root(monkeypatch, folders.BLIP, tmp_path).VALIDATE_INPUTS(model="blip") is not True
    (folder / "vocab.txt").write_text("[PAD]\n[UNK]\n")
    assert _loader_with_root(monkeypatch, folders.BLIP, tmp_path).VALIDATE_INPUTS(model="blip") is True


@pytest.mark.parametrize("kind", ["open", "sa3", "blip", "clap"])
def test_complete_folders_still_load(sources, tmp_path, monkeypatch, kind):
    if kind not in sources:
        pytest.skip("this diffusers has no StableAudio3Pipeline")
    shutil.copytree(sources[kind], tmp_path / "whole")
    node_kind = {"open": folders.STABLE_AUDIO, "sa3": folders.STABLE_AUDIO}.get(kind, kind)
    assert _loader_with_root(monkeypatch, node_kind, tmp_path).VALIDATE_INPUTS(model="whole") is True
    (handle,) = run_node(LOADERS[node_kind], model="whole", dtype="fp32")
    assert loading.load(handle) is not None
    loading.unload(node_kind)


def test_missing_stable_audio_3_folder_says_how_to_convert_not_to_download_open(monkeypatch, tmp_path):
    """best_take_sa3.json names stable-audio-3-medium: its fix is the convert-sa3 steps into that folder."""
    loader = _loader_with_root(monkeypatch, folders.STABLE_AUDIO, tmp_path)
    msg = loader.VALIDATE_INPUTS(model="stable-audio-3-medium")
    assert msg.startswith('Load Stable Audio Model: "model" is "stable-audio-3-medium" but no such folder')
    assert SA3_FIX.format(tmp_path / "stable-audio-3-medium") in msg and "t5gemma-b-b-ul2" in msg
    assert "stable-audio-open-1.0" not in msg and "licence" not in msg
    open_msg = loader.VALIDATE_INPUTS(model="stable-audio-open-1.0")
    assert "hf download stabilityai/stable-audio-open-1.0" in open_msg and "convert-sa3" not in open_msg
    workflow = json.loads((Path(pack_module("tools.model_check").ROOT) / "workflows" / "best_take_sa3.json").read_text())
    names = [n["widgets_values"][0] for n in workflow["nodes"] if n["type"] == "AmbientStableAudioLoader"]
    assert names and all("convert-sa3" in loader.VALIDATE_INPUTS(model=name) for name in names)
