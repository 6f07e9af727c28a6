"""Loading never reaches the network, never runs code from a model folder, and loads safetensors only.

- At run time: the whole chain (both loaders, caption, prompt, sampler, Save WAV) through the node classes with
  every socket connection and every Hugging Face hub download made to fail and recorded; none may be attempted.
  Once in this process (the suite runs with HF_HUB_OFFLINE=1), and once in a fresh interpreter with the offline
  switches unset and an empty HF_HOME, so "no hub call" does not rest on those switches; nothing may be written to
  the hub cache either.
- Every ``from_pretrained`` call made during the chain is recorded: the pack's own calls pass
  ``local_files_only=True``; every call that loads weights passes ``use_safetensors=True``; none passes
  ``trust_remote_code``; every path is a local folder.
- In the source: no ``trust_remote_code=True``; every ``from_pretrained`` call passes ``local_files_only=True``, and
  ``use_safetensors=True`` unless it loads a tokenizer or processor (text files, no weights); no pickle loading
  (``torch.load``, ``pickle.load``).
"""
from __future__ import annotations

import ast
import inspect
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import ROOT, pack_module, run_node

SOURCES = sorted((ROOT / "nodes").rglob("*.py")) + [ROOT / "__init__.py"]
WEIGHTLESS = ("Processor", "Tokenizer", "TokenizerFast", "FeatureExtractor", "ImageProcessor")


def whole_chain(blip_name: str, sa_name: str) -> dict:
    """Image -> caption -> prompt -> audio -> WAV, through the node classes, loading both models from disk."""
    (blip,) = run_node("AmbientBlipLoader", model=blip_name, dtype="auto")
    (sa,) = run_node("AmbientStableAudioLoader", model=sa_name, dtype="auto")
    image = torch.rand(1, 24, 32, 3, generator=torch.Generator().manual_seed(0))
    (captions,) = run_node("AmbientBlipCaption", image=image, blip_model=blip, prefix="a photography of", max_tokens=6,
                      beams=2)
    prompt, negative, _ = run_node("AmbientPromptBuilder", caption=captions[0], preset="natural field recording", extra="")
    (audio,) = run_node("AmbientStableAudioSampler", model=sa, prompt=prompt, negative_prompt=negative, seconds=0.5,
                   steps=2, cfg=7.0, seed=1, variations=1)
    return run_node("AmbientSaveWav", audio=audio, filename_prefix="offline/chain", bit_depth="16")


# ------------------------------------------------------------------------------ guards shared with the child run
GUARD = r'''
import socket

ATTEMPTS = []


def _deny(name):
    def deny(*args, **kwargs):
        ATTEMPTS.append(f"{name}{args[1:2] if name.startswith('socket.socket') else args[:1]}")
        raise OSError(f"network access blocked by the test ({name})")
    return deny


def install_guards():
    socket.socket.connect = _deny("socket.socket.connect")
    socket.socket.connect_ex = _deny("socket.socket.connect_ex")
    socket.create_connection = _deny("socket.create_connection")
    socket.getaddrinfo = _deny("socket.getaddrinfo")
    import huggingface_hub
    import huggingface_hub.file_download as fd

    for mod in (huggingface_hub, fd):
        for name in ("hf_hub_download", "snapshot_download", "try_to_load_from_cache"):
            if hasattr(mod, name) and name != "try_to_load_from_cache":
                setattr(mod, name, _deny(f"huggingface_hub.{name}"))
    for name in ("model_info", "list_repo_files", "file_exists", "repo_info"):
        if hasattr(huggingface_hub.HfApi, name):
            setattr(huggingface_hub.HfApi, name, _deny(f"HfApi.{name}"))


CALLS = []


def spy_from_pretrained():
    from diffusers import DiffusionPipeline, ModelMixin
    from transformers.image_processing_base import ImageProcessingMixin
    from transformers.modeling_utils import PreTrainedModel
    from transformers.processing_utils import ProcessorMixin
    from transformers.tokenization_utils_base import PreTrainedTokenizerBase

    for base, weights in ((PreTrainedModel, True), (ModelMixin, True), (DiffusionPipeline, True),
                          (ProcessorMixin, False), (PreTrainedTokenizerBase, False), (ImageProcessingMixin, False)):
        original = base.__dict__["from_pretrained"].__func__

        def wrapper(cls, *args, __original=original, __weights=weights, **kwargs):
            CALLS.append({"class": cls.__name__, "path": str(args[0] if args else kwargs.get("pretrained_model_name_or_path")),
                          "weights": __weights, **{k: kwargs.get(k) for k in ("local_files_only", "use_safetensors",
                                                                                "trust_remote_code")}})
            return __original(cls, *args, **kwargs)

        base.from_pretrained = classmethod(wrapper)
'''


def _guards():
    namespace: dict = {}
    exec(compile(GUARD, "offline_guards", "exec"), namespace)  # noqa: S102 - our own constant code
    return namespace


def _check_calls(calls: list[dict], model_folders: list[str]) -> None:
    assert calls, "no from_pretrained call was recorded: the models were not loaded from disk"
    for call in calls:
        assert not call["trust_remote_code"], call
        assert os.path.isdir(call["path"]), f"not a local folder: {call}"
        assert any(os.path.realpath(call["path"]).startswith(os.path.realpath(f)) for f in model_folders), call
        if call["weights"]:
            assert call["use_safetensors"] is True, call
    # the pack's own calls (on the model folders themselves; diffusers then loads each component from its
    # subfolder, with the same use_safetensors)
    own = [c for c in calls if os.path.realpath(c["path"]) in {os.path.realpath(f) for f in model_folders}]
    assert {c["class"] for c in own} >= {"BlipProcessor", "BlipForConditionalGeneration", "StableAudioPipeline"}
    assert all(c["local_files_only"] is True for c in own), own


def test_whole_chain_makes_no_network_or_hub_call(comfy_models, output_dir, monkeypatch):
    loading = pack_module("models.loading")
    guards = _guards()
    for target, name in ((socket.socket, "connect"), (socket.socket, "connect_ex"), (socket, "create_connection"),
                         (socket, "getaddrinfo")):
        monkeypatch.setattr(target, name, getattr(target, name))  # restored after the test
    import huggingface_hub
    import huggingface_hub.file_download as fd
    from diffusers import DiffusionPipeline, ModelMixin
    from transformers.image_processing_base import ImageProcessingMixin
    from transformers.modeling_utils import PreTrainedModel
    from transformers.processing_utils import ProcessorMixin
    from transformers.tokenization_utils_base import PreTrainedTokenizerBase

    for mod in (huggingface_hub, fd):
        for name in ("hf_hub_download", "snapshot_download"):
            if hasattr(mod, name):
                monkeypatch.setattr(mod, name, getattr(mod, name))
    for name in ("model_info", "list_repo_files", "file_exists", "repo_info"):
        if hasattr(huggingface_hub.HfApi, name):
            monkeypatch.setattr(huggingface_hub.HfApi, name, getattr(huggingface_hub.HfApi, name))
    for base in (PreTrainedModel, ModelMixin, DiffusionPipeline, ProcessorMixin, PreTrainedTokenizerBase,
                 ImageProcessingMixin):
        monkeypatch.setattr(base, "from_pretrained", base.__dict__["from_pretrained"])
    guards["install_guards"]()
    guards["spy_from_pretrained"]()
    loading.unload()  # load from disk, not from the cache of an earlier test
    try:
        ui = whole_chain(comfy_models["blip_name"], comfy_models["stable_audio_name"])
    finally:
        loading.unload()  # the models loaded under the spies are not kept for later tests
    assert guards["ATTEMPTS"] == []
    assert (output_dir / "offline" / ui["ui"]["audio"][0]["filename"]).is_file()
    _check_calls(guards["CALLS"], [comfy_models["blip"], comfy_models["stable_audio"]])


CHILD = r'''
import importlib.util, json, os, sys
for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "DIFFUSERS_OFFLINE"):
    assert key not in os.environ, key
exec(compile({guard!r}, "offline_guards", "exec"))
install_guards()
spy_from_pretrained()
sys.path.insert(0, {stub!r})
spec = importlib.util.spec_from_file_location("ambient_pack_offline", {init!r}, submodule_search_locations=[{root!r}])
pack = importlib.util.module_from_spec(spec)
sys.modules["ambient_pack_offline"] = pack
spec.loader.exec_module(pack)
import folder_paths
folder_paths.set_base({base!r})
folder_paths.output_directory = {output!r}
import torch
exec(compile({chain!r}, "chain", "exec"))
ui = whole_chain({blip_name!r}, {sa_name!r})
print("RESULT " + json.dumps({{"attempts": ATTEMPTS, "calls": CALLS, "ui": ui["ui"]}}))
'''


@pytest.mark.slow
def test_no_hub_call_even_without_the_offline_switches(comfy_models, tmp_path):
    import folder_paths

    if not hasattr(folder_paths, "set_base"):
        pytest.skip("the child run uses the ComfyUI stand-in (tests/comfy_stub)")
    hf_home = tmp_path / "hf_home"
    hf_home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "DIFFUSERS_OFFLINE")}
    env.update(HF_HOME=str(hf_home), HF_HUB_CACHE=str(hf_home / "hub"), XDG_CACHE_HOME=str(tmp_path / "xdg"),
               HF_HUB_DISABLE_TELEMETRY="0", TOKENIZERS_PARALLELISM="false")
    chain = inspect.getsource(run_node) + "\n\n" + inspect.getsource(whole_chain)
    script = CHILD.format(guard=GUARD, stub=str(ROOT / "tests" / "comfy_stub"), chain=chain,
                          init=str(ROOT / "__init__.py"), root=str(ROOT), base=str(comfy_models["base"]),
                          output=str(tmp_path / "output"), blip_name=comfy_models["blip_name"],
                          sa_name=comfy_models["stable_audio_name"])
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300,
                          cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    result = json.loads(line[len("RESULT "):])
    assert result["attempts"] == [], result["attempts"]
    assert (tmp_path / "output" / "offline" / result["ui"]["audio"][0]["filename"]).is_file()
    _check_calls(result["calls"], [comfy_models["blip"], comfy_models["stable_audio"]])
    written = [str(p) for p in hf_home.rglob("*")] + [str(p) for p in (tmp_path / "xdg").rglob("*")]
    assert written == [], f"the hub cache was written: {written}"


# ------------------------------------------------------------------------------------------------ the source
def _calls(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def _receiver(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Attribute):
        return ast.unparse(func.value)
    return ""


def _kw(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def test_source_never_trusts_remote_code():
    for path in SOURCES:
        text = path.read_text(encoding="utf-8")
        assert "trust_remote_code=True" not in text.replace(" ", ""), path
        for call in _calls(path):
            value = _kw(call, "trust_remote_code")
            assert value is None or (isinstance(value, ast.Constant) and value.value is False), \
                f"{path}:{call.lineno} passes trust_remote_code"
            if _is_from_pretrained(call):
                for kw in call.keywords:
                    if kw.arg is None:  # **{...}: a literal dict (e.g. the dtype keyword) setting no guarded one
                        assert isinstance(kw.value, ast.Dict), f"{path}:{call.lineno}: **kwargs hides what it passes"
                        keys = {k.value for k in kw.value.keys if isinstance(k, ast.Constant)}
                        assert not keys & {"trust_remote_code", "local_files_only", "use_safetensors"}, \
                            f"{path}:{call.lineno}"


def _is_from_pretrained(call: ast.Call) -> bool:
    return isinstance(call.func, ast.Attribute) and call.func.attr == "from_pretrained"


def test_every_from_pretrained_is_local_and_safetensors():
    found = []
    for path in SOURCES:
        for call in _calls(path):
            if not _is_from_pretrained(call):
                continue
            where = f"{path.name}:{call.lineno} {ast.unparse(call.func)}"
            found.append(where)
            local = _kw(call, "local_files_only")
            assert isinstance(local, ast.Constant) and local.value is True, f"{where}: local_files_only=True"
            receiver = _receiver(call)
            if not receiver.endswith(WEIGHTLESS):  # tokenizers and processors read text/JSON files, no weights
                safe = _kw(call, "use_safetensors")
                assert isinstance(safe, ast.Constant) and safe.value is True, f"{where}: use_safetensors=True"
    # the pack loads BLIP (processor + model) and the Stable Audio pipeline; the demo builds a tokenizer
    assert len(found) >= 3, found


def test_source_never_unpickles():
    for path in SOURCES:
        for call in _calls(path):
            name = ast.unparse(call.func)
            assert name not in ("torch.load", "pickle.load", "pickle.loads", "joblib.load"), \
                f"{path}:{call.lineno} calls {name}"
