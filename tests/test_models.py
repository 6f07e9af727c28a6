"""Model folders: listing, checking, loading through the real from_pretrained, caching, device moves."""
import dataclasses
import json
import os
import shutil

import pytest
import torch

from conftest import pack_module

devices = pack_module("models.devices")
families = pack_module("models.families")
folders = pack_module("models.folders")
loading = pack_module("models.loading")


def test_lists_only_folders_of_the_right_kind(comfy_models, tmp_path):
    root = tmp_path / "diffusers"
    shutil.copytree(comfy_models["stable_audio"], root / "sub" / "my-sa")
    (root / "sd15").mkdir()
    (root / "sd15" / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    assert folders.list_model_folders(folders.STABLE_AUDIO, [str(root)]) == ["sub/my-sa"]
    blip_root = os.path.dirname(comfy_models["blip"])
    assert folders.list_model_folders(folders.BLIP, [blip_root, str(tmp_path / "missing")]) == [comfy_models["blip_name"]]
    assert folders.list_model_folders(folders.BLIP, [str(root)]) == []


def test_missing_folder_message_names_node_folder_and_fix(comfy_models):
    roots = [os.path.dirname(comfy_models["blip"])]
    with pytest.raises(ValueError) as e:
        folders.resolve_model_folder(folders.BLIP, "blip-image-captioning-large", roots)
    msg = str(e.value)
    assert msg.startswith('Load BLIP Caption Model: "model" is "blip-image-captioning-large"')
    assert roots[0] in msg and "hf download Salesforce/blip-image-captioning-large" in msg
    with pytest.raises(ValueError, match="stable-audio-open-1.0.*licence|licence.*stable-audio-open-1.0"):
        folders.resolve_model_folder(folders.STABLE_AUDIO, "nope", [os.path.dirname(comfy_models["stable_audio"])])


@pytest.mark.parametrize("name", ["../etc", "/abs/path", "", None])
def test_folder_names_cannot_escape_the_model_folder(comfy_models, name):
    with pytest.raises(ValueError, match="not a folder name inside"):
        folders.resolve_model_folder(folders.BLIP, name, [os.path.dirname(comfy_models["blip"])])


def test_wrong_type_corrupt_pickle_and_remote_code_are_refused(comfy_models, tmp_path):
    blip_src, sa_src = comfy_models["blip"], comfy_models["stable_audio"]
    root = tmp_path / "blip"
    # a Stable Audio folder where BLIP is expected
    shutil.copytree(os.path.join(sa_src, "text_encoder"), root / "t5")
    with pytest.raises(ValueError, match='holds a "t5" model, not BLIP'):
        folders.resolve_model_folder(folders.BLIP, "t5", [str(root)])
    # corrupt config.json
    shutil.copytree(blip_src, root / "corrupt")
    (root / "corrupt" / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        folders.resolve_model_folder(folders.BLIP, "corrupt", [str(root)])
    # pickle-only weights: refused before anything is unpickled
    shutil.copytree(blip_src, root / "pickle")
    os.remove(root / "pickle" / "model.safetensors")
    (root / "pickle" / "pytorch_model.bin").write_bytes(b"\x80\x04 would run code")
    with pytest.raises(ValueError, match="only pickle weights"):
        folders.resolve_model_folder(folders.BLIP, "pickle", [str(root)])
    # remote code
    shutil.copytree(blip_src, root / "remote")
    cfg = json.loads((root / "remote" / "config.json").read_text())
    cfg["auto_map"] = {"AutoModel": "evil.Model"}
    (root / "remote" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="never runs code from model folders"):
        folders.resolve_model_folder(folders.BLIP, "remote", [str(root)])


def test_truncated_weights_give_a_clear_load_error(comfy_models, tmp_path):
    root = tmp_path / "diffusers"
    shutil.copytree(comfy_models["stable_audio"], root / "broken")
    weights = root / "broken" / "transformer" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    handle = folders.make_handle(folders.STABLE_AUDIO, "broken", [str(root)], "fp32", devices.DevicePlan())
    with pytest.raises(ValueError, match="Load Stable Audio Model: could not load .*download it again"):
        loading.load(handle)
    assert folders.STABLE_AUDIO not in loading.cached_kinds()


def test_loads_once_per_folder_and_dtype_and_keeps_one_per_kind(comfy_models):
    roots = [os.path.dirname(comfy_models["stable_audio"])]
    plan = devices.DevicePlan()
    h32 = folders.make_handle(folders.STABLE_AUDIO, comfy_models["stable_audio_name"], roots, "auto", plan)
    assert h32.dtype == "fp32" and h32.family == "StableAudioPipeline"  # auto on the CPU is fp32
    a = loading.load(h32)
    assert loading.load(h32) is a
    h16 = folders.make_handle(folders.STABLE_AUDIO, comfy_models["stable_audio_name"], roots, "bf16", plan)
    b = loading.load(h16)
    assert b is not a and b.transformer.dtype == torch.bfloat16
    assert loading.load(h32) is not a  # one per kind: the fp32 copy was released
    with pytest.raises(ValueError, match='"dtype" is \'fp8\''):
        folders.make_handle(folders.STABLE_AUDIO, comfy_models["stable_audio_name"], roots, "fp8", plan)


def test_on_device_asks_for_room_and_moves_back_even_on_error(comfy_models):
    roots = [os.path.dirname(comfy_models["blip"])]
    freed = []
    # "cpu:0" stands in for an accelerator here (a distinct device name, so the move happens); the GPU
    # benchmark checks real moves
    emptied = []
    plan = devices.DevicePlan(load_device="cpu:0", offload_device="cpu", free_memory=freed.append,
                             after_offload=lambda: emptied.append(1))
    handle = folders.make_handle(folders.BLIP, comfy_models["blip_name"], roots, "fp32", plan)
    with pytest.raises(RuntimeError, match="boom"):
        with devices.on_device(handle, plan) as (model, _):
            assert plan.moves == [("blip", "cpu:0")]
            raise RuntimeError("boom")
    model, _ = loading.load(handle)
    assert loading.model_device(model) == "cpu"
    assert plan.moves == [("blip", "cpu:0"), ("blip", "cpu")] and emptied == [1]
    assert freed and freed[0] >= loading.model_bytes(model)


def test_standalone_plan_on_this_machine():
    plan = devices.standalone_plan()
    if torch.cuda.is_available():
        assert (plan.load_device, plan.auto_dtype) == ("cuda", "fp16")
    else:
        assert (plan.load_device, plan.offload_device, plan.auto_dtype) == ("cpu", "cpu", "fp32")


def test_a_stable_audio_3_folder_on_a_diffusers_without_it_says_what_to_install(tmp_path, monkeypatch):
    """On diffusers < 0.42 (CI's 4.x line) this is the real message; on newer ones the requirement is raised to a
    version not yet out, so the same code path runs."""
    from importlib.metadata import version

    from conftest import HAS_SA3

    folder = tmp_path / "diffusers" / "stable-audio-3-medium"
    for part in ("transformer", "vae", "text_encoder", "duration_embedder"):
        (folder / part).mkdir(parents=True)
        (folder / part / "diffusion_pytorch_model.safetensors").write_bytes(b"")
    (folder / "model_index.json").write_text(json.dumps({
        "_class_name": "StableAudio3Pipeline", "transformer": ["diffusers", "StableAudio3DiTModel"],
        "vae": ["diffusers", "AutoencoderSAME"], "text_encoder": ["transformers", "T5GemmaEncoderModel"],
        "duration_embedder": ["stable_audio_3", "StableAudio3DurationEmbedder"]}))
    (folder / "vae" / "config.json").write_text(json.dumps({"encoder_channels": 256}))
    needed = "0.42.0"
    if HAS_SA3:
        needed = "99.0.0"
        monkeypatch.setitem(families.FAMILIES, "sa3-medium",
                        dataclasses.replace(families.FAMILIES["sa3-medium"], min_diffusers=needed))
    assert folders.list_model_folders(folders.STABLE_AUDIO, [str(tmp_path / "diffusers")]) == ["stable-audio-3-medium"]
    with pytest.raises(ValueError) as err:
        folders.make_handle(folders.STABLE_AUDIO, "stable-audio-3-medium", [str(tmp_path / "diffusers")], "fp32",
                           devices.DevicePlan())
    assert str(err.value) == (
        f'Load Stable Audio Model: "model" folder {folder} is a Stable Audio 3 model (StableAudio3Pipeline), which '
        f'needs diffusers {needed} or newer; this Python has diffusers {version("diffusers")}. Run `pip install -U '
        f'"diffusers>={needed}"` in ComfyUI\'s Python, restart ComfyUI and run again.')
