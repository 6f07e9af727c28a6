"""A table of bad inputs, each run through the node classes as ComfyUI runs them.

Every row states what must happen:

- an error row: the exception type; a message that starts with the node's display name and names the input (in
  double quotes), its value and the fix; no file created, changed or removed anywhere we watch (the output folder,
  the model folders, a folder "outside"); no model left on the run device (models rest on the offload device
  afterwards); and the next good run of the same node succeeds;
- a good-behaviour row (its id ends in ``-ok`` or says what happens instead, e.g. ``-shortened-with-warning``):
  inputs that are not errors by design (an RGBA image is converted, an 8 kHz mono clip is saved as it is, an empty
  caption gives a generic ambience) assert the documented behaviour instead, and that nothing outside the output
  folder changed.

"The run device" on this CPU machine: ComfyUI's device is made to read ``cpu:0`` (a distinct name, so the models
really move there and back), and every device plan the nodes asked for is recorded; after a failure each plan's
last move must be back to the offload device (``cpu``), and ``loading.model_device`` must read ``cpu``.
"""
from __future__ import annotations

import builtins
import errno
import hashlib
import json
import logging
import math
import os
import pickle
import shutil
import stat
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import soundfile as sf
import torch

from conftest import pack, pack_module, run_node

N = pack.NODE_CLASS_MAPPINGS
DISPLAY = pack.NODE_DISPLAY_NAME_MAPPINGS
loading = pack_module("models.loading")
glue = pack_module("comfy.glue")
mm = pytest.importorskip("comfy.model_management")

RUN_DEVICE = "cpu:0"  # stands in for the GPU: a distinct device name, so the moves happen and are logged


class MessageConvention(AssertionError):
    """The error's message does not follow the convention (node, "input", value, fix)."""


# ------------------------------------------------------------------------------------------------ the context
@dataclass
class Ctx:
    comfy_models: dict
    output: Path
    tmp: Path
    monkeypatch: pytest.MonkeyPatch
    plans: list
    blip_root: Path = field(init=False)
    sa_root: Path = field(init=False)
    outside: Path = field(init=False)
    data: dict = field(default_factory=dict)

    def __post_init__(self):
        self.outside = self.tmp / "outside"
        self.outside.mkdir()
        (self.outside / "precious.txt").write_text("the user's file outside the output folder")
        self.blip_root = self.tmp / "models" / "blip"
        self.sa_root = self.tmp / "models" / "diffusers"
        self.blip_root.mkdir(parents=True)
        self.sa_root.mkdir(parents=True)

    # models ------------------------------------------------------------------------------------------------
    @property
    def blip(self):
        return run_node("AmbientBlipLoader", model=self.comfy_models["blip_name"], dtype="auto")[0]

    @property
    def sa(self):
        return run_node("AmbientStableAudioLoader", model=self.comfy_models["stable_audio_name"], dtype="auto")[0]

    def blip_copy(self, name: str) -> Path:
        dst = self.blip_root / name
        shutil.copytree(self.comfy_models["blip"], dst)
        return dst

    def sa_copy(self, name: str) -> Path:
        dst = self.sa_root / name
        shutil.copytree(self.comfy_models["stable_audio"], dst)
        return dst

    def marker(self) -> Path:
        """A file that exists only if code from a model folder ran (a pickle was loaded, a module imported)."""
        return self.tmp / "CODE_FROM_THE_MODEL_FOLDER_RAN"


def clip(batch=1, channels=2, frames=22050, rate=44100, seed=0, scale=0.3):
    g = torch.Generator().manual_seed(seed)
    return {"waveform": (torch.rand(batch, channels, frames, generator=g) * 2 - 1) * scale, "sample_rate": rate}


def image(n=1, h=24, w=32, c=3, seed=0):
    return torch.rand(n, h, w, c, generator=torch.Generator().manual_seed(seed))


def evil_pickle(marker: Path) -> bytes:
    """Pickle bytes that create ``marker`` when unpickled (what a malicious .bin/.ckpt can do)."""

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    return pickle.dumps(Evil(), protocol=2)


def evil_module(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').write('ran')\n"


# ------------------------------------------------------------------------------------------ good runs per node
def good_inputs(ctx: Ctx, node_id: str) -> dict:
    """Inputs for a run of ``node_id`` that must succeed (the "next good run" after a failure)."""
    sampler = dict(model=ctx.sa if node_id in ("AmbientStableAudioSampler", "AmbientExtend") else None,
                   prompt="waves breaking, distant gulls", negative_prompt="music, speech", cfg=7.0, seed=3)
    return {
        "AmbientBlipLoader": lambda: dict(model=ctx.comfy_models["blip_name"], dtype="auto"),
        "AmbientStableAudioLoader": lambda: dict(model=ctx.comfy_models["stable_audio_name"], dtype="auto"),
        "AmbientBlipCaption": lambda: dict(image=image(), blip_model=ctx.blip, prefix="", max_tokens=5, beams=1),
        "AmbientPromptBuilder": lambda: dict(caption="a beach with waves", preset="natural field recording",
                                             extra=""),
        "AmbientLayeredPromptBuilder": lambda: dict(caption="a beach with waves", preset="natural field recording",
                                                    extra="", sources=2),
        "AmbientStableAudioSampler": lambda: dict(sampler, seconds=0.25, steps=2, variations=1),
        "AmbientExtend": lambda: dict(sampler, minutes=0.05, segment_seconds=2.0, overlap_seconds=0.5, steps=2,
                                      tail_conditioning=False),
        "AmbientSaveWav": lambda: dict(audio=clip(frames=4410), filename_prefix="next/good", bit_depth="16"),
        "AmbientSeamlessLoop": lambda: dict(audio=clip(), overlap_seconds=0.1, search_seconds=0.0),
        "AmbientFade": lambda: dict(audio=clip(), fade_in_seconds=0.1, fade_out_seconds=0.1, curve="linear"),
        "AmbientLoudness": lambda: dict(audio=clip(frames=44100), target="-23 LUFS (broadcast, EBU R128)",
                                        custom_lufs=-23.0, ceiling_dbtp=-1.0),
        "AmbientMix": lambda: dict(audio_1=clip(), gain_db_1=0.0, pan_1=0.0, audio_2=clip(seed=1), gain_db_2=-6.0,
                                   pan_2=0.5, fit="loop", length="first"),
        "AmbientSpectrogram": lambda: dict(audio=clip(), width=128, height=128),
    }[node_id]()


# ------------------------------------------------------------------------------------------------ the table
@dataclass
class Case:
    id: str
    node: str
    inputs: Callable[[Ctx], dict]
    error: type[BaseException] | None = None
    says: tuple[str, ...] = ()          # the message names each: '"input"', the value, the limit, the fix
    check: Callable[[Ctx, object], None] | None = None  # good-behaviour rows: the documented behaviour
    writes: bool = False                # good rows of Save WAV: new files in the output folder are expected
    keeps: tuple[str, ...] = ()         # error rows: complete files (relative to output) that may stay
    convention: bool = True             # error rows whose message is ours (False: e.g. a KeyboardInterrupt)
    setup: Callable[[Ctx], None] | None = None


def E(id, node, inputs, error, *says, **kw):  # noqa: N802 - a table row
    return Case(id, node, inputs, error=error, says=says, **kw)


def G(id, node, inputs, check, **kw):  # noqa: N802 - a table row
    return Case(id, node, inputs, check=check, **kw)


def _caption(ctx, img, **kw):
    return dict(dict(image=img, blip_model=ctx.blip, prefix="", max_tokens=5, beams=1), **kw)


def _one_caption(ctx, out):
    (captions,) = out
    assert isinstance(captions, list) and len(captions) == 1 and isinstance(captions[0], str)


def _prompt(caption, extra=""):
    return lambda ctx: dict(caption=caption, preset="natural field recording", extra=extra)


def _clean_prompt(ctx, out):
    prompt, negative = out[:2]  # the third output (0.4.0) is the explanation
    prompt_mod = pack_module("text.prompt")
    for text in (prompt, negative):
        assert text and text == text.strip()
        assert not any(unicodedata.category(ch)[0] == "C" for ch in text), repr(text)
        assert prompt_mod.estimate_tokens(text) <= prompt_mod.PROMPT_TOKEN_LIMIT
        assert len(text.split()) <= prompt_mod.MAX_PROMPT_WORDS
    return prompt


def _generic_ambience(ctx, out):
    prompt = _clean_prompt(ctx, out)
    assert prompt == _clean_prompt(ctx, run_node("AmbientPromptBuilder", caption="", preset="natural field recording",
                                            extra=""))
    assert "ambience" in prompt or "field recording" in prompt


def _sample(ctx, **kw):
    args = good_inputs(ctx, "AmbientStableAudioSampler")
    args.update(kw)
    return args


def _audio_ok(seconds=0.25, batch=1):
    def check(ctx, out):
        (audio,) = out
        w = audio["waveform"]
        assert w.shape == (batch, 2, int(seconds * audio["sample_rate"])) and torch.isfinite(w).all()
    return check


def _warned(needle):
    def check(ctx, out):
        assert needle in ctx.data["log"].text, ctx.data["log"].text
    return check


def _both(*checks):
    def check(ctx, out):
        for c in checks:
            c(ctx, out)
    return check


def _saved(frames, channels, rate, subtype="PCM_16", expect=None):
    """Save WAV wrote exactly one file with these properties (and, optionally, these samples)."""

    def check(ctx, out):
        (entry,) = out["ui"]["audio"]
        path = ctx.output / entry["subfolder"] / entry["filename"]
        info = sf.info(str(path))
        assert (info.frames, info.channels, info.samplerate, info.subtype) == (frames, channels, rate, subtype)
        if expect is not None:
            data, _ = sf.read(str(path), always_2d=True, dtype="float32")
            expect(torch.from_numpy(data.T))
    return check


def _save(audio, prefix="bad/case", bit_depth="16"):
    return lambda ctx: dict(audio=audio() if callable(audio) else audio, filename_prefix=prefix, bit_depth=bit_depth)


def _loader(node_id, name, dtype="auto"):
    return lambda ctx: dict(model=name, dtype=dtype)


# --- model-folder setups ----------------------------------------------------------------------------------
def _blip_type_t5(ctx):
    shutil.copytree(os.path.join(ctx.comfy_models["stable_audio"], "text_encoder"), ctx.blip_root / "a-t5-encoder")


def _sa_type_sd(ctx):
    d = ctx.sa_copy("a-stable-diffusion")
    index = json.loads((d / "model_index.json").read_text())
    index["_class_name"] = "StableDiffusionPipeline"
    (d / "model_index.json").write_text(json.dumps(index))


def _blip_corrupt_config(ctx):
    (ctx.blip_copy("corrupt-config") / "config.json").write_text('{"model_type": "blip", "text_config": {')


def _sa_corrupt_index(ctx):
    (ctx.sa_copy("corrupt-index") / "model_index.json").write_text('{"_class_name": "StableAudioPip')


def _sa_corrupt_component_config(ctx):
    (ctx.sa_copy("corrupt-component") / "transformer" / "config.json").write_text('{"_class_name": "StableAud')


def _truncate(path: Path, keep: float):
    data = path.read_bytes()
    path.write_bytes(data[: max(100, int(len(data) * keep))])


def _blip_truncated(ctx):
    _truncate(ctx.blip_copy("truncated") / "model.safetensors", 0.5)


def _sa_truncated(ctx):
    _truncate(ctx.sa_copy("truncated") / "transformer" / "diffusion_pytorch_model.safetensors", 0.5)


def _blip_pickle_only(ctx):
    d = ctx.blip_copy("pickle-only")
    os.remove(d / "model.safetensors")
    (d / "pytorch_model.bin").write_bytes(evil_pickle(ctx.marker()))


def _sa_pickle_only(ctx):
    d = ctx.sa_copy("ckpt-only")
    os.remove(d / "transformer" / "diffusion_pytorch_model.safetensors")
    (d / "transformer" / "diffusion_pytorch_model.ckpt").write_bytes(evil_pickle(ctx.marker()))
    (d / "transformer" / "diffusion_pytorch_model.bin").write_bytes(evil_pickle(ctx.marker()))


def _blip_pickle_beside_safetensors(ctx):
    (ctx.blip_copy("both-weights") / "pytorch_model.bin").write_bytes(evil_pickle(ctx.marker()))


def _blip_remote_code(ctx):
    d = ctx.blip_copy("remote-code")
    cfg = json.loads((d / "config.json").read_text())
    cfg["auto_map"] = {"AutoModel": "modeling_evil.EvilModel", "AutoProcessor": "modeling_evil.EvilProcessor"}
    (d / "config.json").write_text(json.dumps(cfg))
    (d / "modeling_evil.py").write_text(evil_module(ctx.marker()))


def _blip_trust_remote_code_key(ctx):
    d = ctx.blip_copy("trust-key")
    cfg = json.loads((d / "config.json").read_text())
    cfg["trust_remote_code"] = True
    (d / "config.json").write_text(json.dumps(cfg))


def _sa_text_encoder_auto_map(ctx):
    d = ctx.sa_copy("encoder-remote-code")
    cfg = json.loads((d / "text_encoder" / "config.json").read_text())
    cfg["auto_map"] = {"AutoModel": "modeling_evil.EvilEncoder"}
    (d / "text_encoder" / "config.json").write_text(json.dumps(cfg))
    (d / "text_encoder" / "modeling_evil.py").write_text(evil_module(ctx.marker()))


def _sa_custom_component(ctx):
    d = ctx.sa_copy("custom-component")
    index = json.loads((d / "model_index.json").read_text())
    index["transformer"] = ["my_transformer", "MyTransformer"]
    (d / "model_index.json").write_text(json.dumps(index))
    (d / "transformer" / "my_transformer.py").write_text(
        evil_module(ctx.marker()) + "from diffusers import StableAudioDiTModel as MyTransformer\n")


def _sa_custom_pipeline(ctx):
    d = ctx.sa_copy("custom-pipeline")
    index = json.loads((d / "model_index.json").read_text())
    index["_class_name"] = ["pipeline_evil", "StableAudioPipeline"]
    (d / "model_index.json").write_text(json.dumps(index))
    (d / "pipeline_evil.py").write_text(evil_module(ctx.marker()))


def _never_ran(ctx, out=None):
    assert not ctx.marker().exists(), "code from the model folder ran"


# --- file-system setups -----------------------------------------------------------------------------------
def _symlink_dir_outside(ctx):
    (ctx.output / "link").symlink_to(ctx.outside, target_is_directory=True)


def _symlink_at_next_name(ctx):
    """A symlink to a file outside appears at the very name the saver picks (a race): never followed."""
    (ctx.output / "race").mkdir()
    (ctx.output / "race" / "clip_00001_.wav").symlink_to(ctx.outside / "precious.txt")
    (ctx.output / "race" / "clip_00002_.wav").symlink_to(ctx.outside / "dangling-target.wav")  # dangling
    wav = pack_module("audio.wav")
    ctx.monkeypatch.setattr(wav, "_next_counter", lambda folder, name: 1)


def _symlinks_untouched(ctx, out):
    (entry,) = out["ui"]["audio"]
    assert entry["filename"] == "clip_00003_.wav"
    assert (ctx.outside / "precious.txt").read_text() == "the user's file outside the output folder"
    assert not (ctx.outside / "dangling-target.wav").exists()
    assert os.path.islink(ctx.output / "race" / "clip_00001_.wav")


def _read_only(ctx, existing_subfolder: bool):
    if existing_subfolder:
        (ctx.output / "ro").mkdir()
    os.chmod(ctx.output, 0o555)
    if existing_subfolder:
        os.chmod(ctx.output / "ro", 0o555)
    ctx.data["restore_modes"] = [ctx.output] + ([ctx.output / "ro"] if existing_subfolder else [])
    if os.geteuid() == 0:  # root writes anyway: make the file system say what a read-only folder says
        _fail_fs(ctx, errno.EACCES, makedirs=True, create=True)


def _fail_fs(ctx, code, *, makedirs=False, create=False, write=False, fsync=False, on_clip=1,
             exc: type[BaseException] = OSError):
    """Make file-system calls under the output folder fail as a full disk or a read-only folder does."""
    out = str(ctx.output)
    real_open, real_makedirs, real_mkdir, real_fsync = builtins.open, os.makedirs, os.mkdir, os.fsync
    count = {"xb": 0}

    def err():
        return exc() if exc is not OSError else OSError(code, os.strerror(code))

    class Failing:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *a):
            self.f.close()

        def write(self, data):
            self.f.write(data[: len(data) // 2])  # half a file reaches the disk, then the disk is full
            raise err()

        def flush(self):
            self.f.flush()

        def fileno(self):
            return self.f.fileno()

    def fake_open(path, mode="r", *a, **k):  # the saver opens its temporary relative to the folder (opener)
        if "x" in mode and (str(path).startswith(out) or k.get("opener")):
            count["xb"] += 1
            if count["xb"] >= on_clip:
                if create:
                    raise err()
                f = real_open(path, mode, *a, **k)
                return Failing(f) if write else f
        return real_open(path, mode, *a, **k)

    def fake_makedirs(path, *a, **k):
        if makedirs and str(path).startswith(out) and not os.path.isdir(path):
            raise err()
        return real_makedirs(path, *a, **k)

    def fake_mkdir(path, *a, dir_fd=None, **k):  # the saver makes subfolders relative to their parent's handle
        if makedirs and dir_fd is not None:
            raise err()
        return real_mkdir(path, *a, dir_fd=dir_fd, **k)

    def fake_fsync(fd):
        if fsync:
            raise err()
        return real_fsync(fd)

    ctx.monkeypatch.setattr(builtins, "open", fake_open)
    ctx.monkeypatch.setattr(os, "makedirs", fake_makedirs)
    ctx.monkeypatch.setattr(os, "mkdir", fake_mkdir)
    ctx.monkeypatch.setattr(os, "fsync", fake_fsync)


SAMPLER = "AmbientStableAudioSampler"
CAPTION = "AmbientBlipCaption"
PROMPT = "AmbientPromptBuilder"
SAVE = "AmbientSaveWav"
BLIP_LOADER = "AmbientBlipLoader"
SA_LOADER = "AmbientStableAudioLoader"


CASES: list[Case] = [
    # ----------------------------------------------------------------------------------------------- images
    E("image-empty-batch", CAPTION, lambda c: _caption(c, torch.zeros(0, 8, 8, 3)), ValueError,
      '"image"', "0 images", "Connect a node that outputs at least one image"),
    E("image-not-a-batch-3d", CAPTION, lambda c: _caption(c, torch.rand(8, 8, 3)), ValueError,
      '"image"', "(8, 8, 3)", "[B, H, W, C]", "Connect"),
    E("image-2-channels", CAPTION, lambda c: _caption(c, torch.rand(1, 8, 8, 2)), ValueError,
      '"image"', "2 channels", "1, 3 or 4", "Connect an IMAGE output"),
    E("image-channels-first", CAPTION, lambda c: _caption(c, torch.rand(1, 3, 16, 16)), ValueError,
      '"image"', "16 channels", "1, 3 or 4", "channels last"),
    G("image-1x1-px-ok", CAPTION, lambda c: _caption(c, image(h=1, w=1)), _one_caption),
    G("image-1x20000-px-ok", CAPTION, lambda c: _caption(c, image(h=1, w=20000)), _one_caption),
    G("image-20000x1-px-ok", CAPTION, lambda c: _caption(c, image(h=20000, w=1)), _one_caption),
    G("image-3x3-px-not-read-as-channels-first-ok", CAPTION, lambda c: _caption(c, image(h=3, w=3)), _one_caption),
    G("image-rgba-converted-ok", CAPTION, lambda c: _caption(c, image(c=4)), _one_caption),
    G("image-grayscale-converted-ok", CAPTION, lambda c: _caption(c, image(c=1)), _one_caption),
    G("image-nan-inf-pixels-read-as-black-white-with-warning", CAPTION,
      lambda c: _caption(c, torch.where(image() > 0.5, torch.tensor(float("nan")), torch.tensor(float("inf")))),
      _both(_one_caption, _warned('"image" has 2304 NaN/inf values'))),
    G("image-values-outside-0-1-clipped-ok", CAPTION, lambda c: _caption(c, image() * 50 - 25), _one_caption),
    G("image-fp16-ok", CAPTION, lambda c: _caption(c, image().half()), _one_caption),
    G("image-bf16-ok", CAPTION, lambda c: _caption(c, image().bfloat16()), _one_caption),
    G("caption-prefix-10000-chars-shortened-with-warning", CAPTION,
      lambda c: _caption(c, image(), prefix="a photography of a beach " * 400),
      _both(_one_caption, _warned('"prefix" is'), _warned("shortened to 'a photography of a beach"))),
    G("caption-prefix-control-chars-emoji-ok", CAPTION,
      lambda c: _caption(c, image(), prefix="a\x00 photo\x07 of 🌊 海辺"), _one_caption),
    # ------------------------------------------------------------------------------------------------- text
    G("caption-empty-gives-generic-ambience", PROMPT, _prompt(""), _generic_ambience),
    G("caption-whitespace-only-gives-generic-ambience", PROMPT, _prompt(" \t\n\u3000 \r\n "), _generic_ambience),
    G("caption-10000-chars-shortened-ok", PROMPT, _prompt(("a wide sandy beach with waves and gulls near the "
                                                           "old harbour at night, ") * 150), _clean_prompt),
    G("caption-non-latin-and-emoji-ok", PROMPT, _prompt("海辺の波 🌊🏖️ пляж и волны شاطئ البحر 🐦 waves"),
      lambda c, out: "wave" in _clean_prompt(c, out)),
    G("caption-emoji-only-gives-generic-ambience", PROMPT, _prompt("🌊🏖️🐦🔥"), _generic_ambience),
    G("caption-control-chars-stripped", PROMPT, _prompt("a beach\x00 with\x07 waves\x1b[31m\u200b and gulls\x7f"),
      lambda c, out: "waves" in _clean_prompt(c, out)),
    G("extra-control-chars-and-10000-chars-ok", PROMPT, _prompt("a forest", extra="rain\x00, wind\x1b, " * 800),
      _clean_prompt),
    E("preset-unknown", PROMPT, lambda c: dict(caption="a beach", preset="dubstep", extra=""), ValueError,
      '"preset"', '"dubstep"', "must be one of", "Pick one from the list"),
    G("layered-caption-empty-ok", "AmbientLayeredPromptBuilder",
      lambda c: dict(caption="", preset="natural field recording", extra="", sources=3),
      lambda c, out: all(isinstance(s, str) and s for s in out)),
    G("prompt-longer-than-encoder-limit-shortened-with-warning", SAMPLER,
      lambda c: _sample(c, prompt=", ".join(["waves breaking on sand"] * 60)),
      _both(_audio_ok(), _warned("shortened"))),
    G("negative-prompt-longer-than-encoder-limit-shortened-with-warning", SAMPLER,
      lambda c: _sample(c, negative_prompt=", ".join(["music and speech"] * 80)),
      _both(_audio_ok(), _warned("shortened"))),
    G("prompt-empty-ok", SAMPLER, lambda c: _sample(c, prompt="", negative_prompt=""), _audio_ok()),
    G("prompt-non-latin-emoji-control-chars-ok", SAMPLER,
      lambda c: _sample(c, prompt="海辺の波 🌊\x00\x07 волны", negative_prompt="🎵\x1b"), _audio_ok()),
    # ---------------------------------------------------------------------------------------------- numbers
    E("seconds-0", SAMPLER, lambda c: _sample(c, seconds=0.0), ValueError,
      '"seconds"', "is 0.0", "positive", "Set it to"),
    E("seconds-negative", SAMPLER, lambda c: _sample(c, seconds=-5.0), ValueError,
      '"seconds"', "is -5.0", "positive", "Set it to"),
    E("seconds-nan", SAMPLER, lambda c: _sample(c, seconds=math.nan), ValueError,
      '"seconds"', "is nan", "positive", "Set it to"),
    E("seconds-inf", SAMPLER, lambda c: _sample(c, seconds=math.inf), ValueError,
      '"seconds"', "is inf", "Set it to"),
    E("seconds-above-model-maximum", SAMPLER, lambda c: _sample(c, seconds=60.0), ValueError,
      '"seconds"', "is 60", "at most 2.23 s", 'Set "seconds" to 2.22 or less'),
    E("steps-fraction", SAMPLER, lambda c: _sample(c, steps=2.5), ValueError,
      '"steps"', "is 2.5", "whole number", "Set it to"),
    E("steps-negative", SAMPLER, lambda c: _sample(c, steps=-3), ValueError,
      '"steps"', "is -3", "at least 1", "Set it to"),
    E("cfg-negative", SAMPLER, lambda c: _sample(c, cfg=-1.0), ValueError,
      '"cfg"', "is -1.0", "0 or more", "Set it to"),
    E("cfg-nan", SAMPLER, lambda c: _sample(c, cfg=math.nan), ValueError,
      '"cfg"', "is nan", "0 or more", "Set it to"),
    E("seed-negative", SAMPLER, lambda c: _sample(c, seed=-1), ValueError,
      '"seed"', "is -1", str(2**64 - 1), "Pick a seed in that range"),
    E("seed-above-64-bit", SAMPLER, lambda c: _sample(c, seed=2**64), ValueError,
      '"seed"', f"is {2**64}", str(2**64 - 1), "Pick a seed in that range"),
    E("variations-0", SAMPLER, lambda c: _sample(c, variations=0), ValueError,
      '"variations"', "is 0", "at least 1", "Set it to 1 or more"),
    E("extend-minutes-0", "AmbientExtend", lambda c: dict(good_inputs(c, "AmbientExtend"), minutes=0.0), ValueError,
      '"minutes"', "is 0.0", "more than 0", "Set e.g. 5"),
    E("extend-segment-above-model-maximum", "AmbientExtend",
      lambda c: dict(good_inputs(c, "AmbientExtend"), segment_seconds=30.0), ValueError,
      '"segment_seconds"', "is 30.0", "2.23 s", "Set 0 for the model maximum"),
    E("extend-overlap-above-half-a-segment", "AmbientExtend",
      lambda c: dict(good_inputs(c, "AmbientExtend"), overlap_seconds=1.5), ValueError,
      '"overlap_seconds"', "is 1.5", "half a segment (1.00 s)", "Set e.g. 0.5"),  # an overlap that fits
    E("loop-overlap-above-half-the-clip", "AmbientSeamlessLoop",
      lambda c: dict(audio=clip(), overlap_seconds=0.4, search_seconds=0.0), ValueError,
      '"overlap_seconds"', "is 0.4", "at most half the clip (0.25 s)", 'Lower "overlap_seconds"'),
    E("fade-longer-than-clip", "AmbientFade",
      lambda c: dict(audio=clip(), fade_in_seconds=2.0, fade_out_seconds=0.0, curve="linear"), ValueError,
      '"fade_in_seconds"', "is 2", "only 0.5 s long", 'Lower "fade_in_seconds" to 0.5 or less'),
    E("fade-negative", "AmbientFade",
      lambda c: dict(audio=clip(), fade_in_seconds=-1.0, fade_out_seconds=0.0, curve="linear"), ValueError,
      '"fade_in_seconds"', "is -1.0", "0 or more", "Set it to"),
    E("loudness-custom-target-nan", "AmbientLoudness",
      lambda c: dict(good_inputs(c, "AmbientLoudness"), target="custom", custom_lufs=math.nan), ValueError,
      '"custom_lufs"', "is nan", "-70 to 0 LUFS", "Pick a preset"),
    E("mix-pan-out-of-range", "AmbientMix", lambda c: dict(good_inputs(c, "AmbientMix"), pan_2=3.0), ValueError,
      '"pan_2"', "is 3.0", "-1 (left) to 1 (right)", "Set it in that range"),
    # ------------------------------------------------------------------------------------------------ audio
    E("audio-empty-waveform", SAVE, _save({"waveform": torch.zeros(1, 2, 0), "sample_rate": 44100}), ValueError,
      '"audio"', "(1, 2, 0)", "at least one sample", "Connect an AUDIO output that holds sound"),
    E("audio-empty-batch", SAVE, _save({"waveform": torch.zeros(0, 2, 100), "sample_rate": 44100}), ValueError,
      '"audio"', "(0, 2, 100)", "at least one sample", "Connect"),
    E("audio-wrong-dims-4d", SAVE, _save({"waveform": torch.zeros(1, 1, 2, 100), "sample_rate": 44100}),
      ValueError, '"audio"', "(1, 1, 2, 100)", "[batch, channels, samples]", "Connect"),
    E("audio-wrong-dims-1d", SAVE, _save({"waveform": torch.zeros(100), "sample_rate": 44100}),
      ValueError, '"audio"', "(100,)", "[batch, channels, samples]", "Connect"),
    E("audio-not-an-audio-dict", SAVE, _save(torch.zeros(1, 2, 100)), ValueError,
      '"audio"', "Tensor", "AUDIO value", "Connect an AUDIO output"),
    E("audio-sample-rate-0", SAVE, _save({"waveform": torch.zeros(1, 2, 100), "sample_rate": 0}), ValueError,
      '"audio" sample_rate', "is 0", "1..768000", "Connect"),
    E("audio-sample-rate-float", "AmbientFade",
      lambda c: dict(audio={"waveform": torch.zeros(1, 2, 100), "sample_rate": 44100.5}, fade_in_seconds=0.0,
                     fade_out_seconds=0.0, curve="linear"), ValueError,
      '"audio" sample_rate', "is 44100.5", "whole number of Hz", "Connect"),
    G("audio-nan-inf-samples-saved-as-silence-with-warning", SAVE,
      _save(lambda: {"waveform": torch.tensor([[[math.nan, math.inf, -math.inf, 0.5] * 100]]),
                     "sample_rate": 8000}),
      _both(_saved(400, 1, 8000, expect=lambda d: (torch.isfinite(d).all() and d[0, 0] == 0 and d[0, 1] > 0.99
                                                    and d[0, 2] < -0.99) or pytest.fail(str(d[:, :4])),
                   ),
            _warned('"audio" has 300 NaN/inf samples')), writes=True),
    E("audio-nan-samples-loop", "AmbientSeamlessLoop",
      lambda c: dict(audio={"waveform": torch.full((1, 2, 22050), math.nan), "sample_rate": 44100},
                     overlap_seconds=0.1, search_seconds=0.0), ValueError,
      '"audio"', "NaN/inf samples (44100 of 44100)", "Check the upstream node"),
    E("audio-inf-samples-fade", "AmbientFade",
      lambda c: dict(audio={"waveform": torch.full((1, 2, 22050), math.inf), "sample_rate": 44100},
                     fade_in_seconds=0.1, fade_out_seconds=0.1, curve="linear"), ValueError,
      '"audio"', "NaN/inf samples (44100 of 44100)", "Check the upstream node"),
    E("audio-nan-samples-loudness", "AmbientLoudness",
      lambda c: dict(good_inputs(c, "AmbientLoudness"),
                     audio={"waveform": torch.full((1, 2, 44100), math.nan), "sample_rate": 44100}), ValueError,
      '"audio"', "88200 NaN or inf samples", "Check the upstream node"),
    E("audio-nan-samples-mix-layer-2", "AmbientMix",
      lambda c: dict(good_inputs(c, "AmbientMix"),
                     audio_2={"waveform": torch.full((1, 2, 100), math.nan), "sample_rate": 44100}), ValueError,
      '"audio_2"', "200 NaN or inf samples", "Check the upstream node"),
    G("audio-mono-saved-ok", SAVE, _save(lambda: clip(channels=1, frames=1000)), _saved(1000, 1, 44100),
      writes=True),
    G("audio-8-khz-saved-ok", SAVE, _save(lambda: clip(channels=1, frames=800, rate=8000)), _saved(800, 1, 8000),
      writes=True),
    G("audio-192-khz-saved-ok", SAVE, _save(lambda: clip(frames=19200, rate=192000), bit_depth="24"),
      _saved(19200, 2, 192000, "PCM_24"), writes=True),
    G("audio-8-khz-and-192-khz-mixed-ok", "AmbientMix",
      lambda c: dict(good_inputs(c, "AmbientMix"), audio_1=clip(channels=1, frames=8000, rate=8000),
                     audio_2=clip(frames=19200, rate=192000)),
      lambda c, out: (out[0]["sample_rate"] == 192000 and out[0]["waveform"].shape == (1, 2, 192000)
                      and out[0]["waveform"].abs().max() <= 1.0) or pytest.fail(str(out[0]["waveform"].shape))),
    G("audio-extremely-loud-saturates-not-wraps", SAVE,
      _save(lambda: {"waveform": torch.tensor([[[1000.0, -1000.0, 1e30, -1e30] * 50]]), "sample_rate": 44100}),
      _saved(200, 1, 44100, expect=lambda d: (d[0, 0] > 0.999 and d[0, 1] == -1.0 and d[0, 2] > 0.999
                                              and d[0, 3] == -1.0) or pytest.fail(str(d[:, :4]))), writes=True),
    G("audio-extremely-loud-loudness-limited-ok", "AmbientLoudness",
      lambda c: dict(good_inputs(c, "AmbientLoudness"), audio=clip(frames=44100, scale=400.0)),
      lambda c, out: pack_module("audio.loudness").true_peak_dbtp(out[0]["waveform"][0], 44100) <= -1.0 + 1e-3
      or pytest.fail("true peak above the ceiling")),
    E("audio-silent-loudness", "AmbientLoudness",
      lambda c: dict(good_inputs(c, "AmbientLoudness"), audio={"waveform": torch.zeros(1, 2, 44100),
                                                              "sample_rate": 44100}), ValueError,
      '"audio"', "-inf LUFS", "silent (or below -70 LUFS)", "Check the upstream node"),
    E("audio-too-short-for-loudness", "AmbientLoudness",
      lambda c: dict(good_inputs(c, "AmbientLoudness"), audio=clip(frames=4410)), ValueError,
      '"audio"', "0.100 s long", "at least 0.4 s", "Use a longer clip"),
    G("audio-silent-spectrogram-ok", "AmbientSpectrogram",
      lambda c: dict(audio={"waveform": torch.zeros(1, 2, 4410), "sample_rate": 44100}, width=128, height=128),
      lambda c, out: (out[0].shape == (1, 128, 128, 3) and torch.isfinite(out[0]).all()) or pytest.fail("bad")),
    # ----------------------------------------------------------------------------------------------- models
    E("blip-folder-missing", BLIP_LOADER, _loader(BLIP_LOADER, "blip-image-captioning-large"), ValueError,
      '"model"', '"blip-image-captioning-large"', "no such folder", "hf download Salesforce"),
    E("stable-audio-folder-missing", SA_LOADER, _loader(SA_LOADER, "stable-audio-open-1.0"), ValueError,
      '"model"', '"stable-audio-open-1.0"', "no such folder", "hf download stabilityai/stable-audio-open-1.0"),
    E("blip-folder-empty", BLIP_LOADER, _loader(BLIP_LOADER, "empty"), ValueError,
      '"model"', "empty", "no config.json", "hf download", setup=lambda c: (c.blip_root / "empty").mkdir()),
    E("stable-audio-folder-empty", SA_LOADER, _loader(SA_LOADER, "empty"), ValueError,
      '"model"', "empty", "no readable model_index.json", "hf download",
      setup=lambda c: (c.sa_root / "empty").mkdir()),
    E("blip-folder-of-wrong-model-type", BLIP_LOADER, _loader(BLIP_LOADER, "a-t5-encoder"), ValueError,
      '"model"', "a-t5-encoder", '"t5" model, not BLIP', "Pick a BLIP captioning folder", setup=_blip_type_t5),
    E("stable-audio-folder-of-wrong-pipeline", SA_LOADER, _loader(SA_LOADER, "a-stable-diffusion"), ValueError,
      '"model"', "a-stable-diffusion", "StableDiffusionPipeline", "Pick a Stable Audio folder", setup=_sa_type_sd),
    E("blip-corrupt-config-json", BLIP_LOADER, _loader(BLIP_LOADER, "corrupt-config"), ValueError,
      '"model"', "corrupt-config", "not valid JSON", "Download the folder again", setup=_blip_corrupt_config),
    E("stable-audio-corrupt-model-index-json", SA_LOADER, _loader(SA_LOADER, "corrupt-index"), ValueError,
      '"model"', "corrupt-index", "model_index.json", "hf download", setup=_sa_corrupt_index),
    E("stable-audio-corrupt-component-config", SA_LOADER, _loader(SA_LOADER, "corrupt-component"), ValueError,
      '"model"', "corrupt-component", "download it again", setup=_sa_corrupt_component_config,
      ),
    E("blip-truncated-safetensors", BLIP_LOADER, _loader(BLIP_LOADER, "truncated"), ValueError,
      '"model"', "truncated", "download it again", setup=_blip_truncated),
    E("stable-audio-truncated-safetensors", SA_LOADER, _loader(SA_LOADER, "truncated"), ValueError,
      '"model"', "truncated", "download it again", setup=_sa_truncated),
    E("blip-pickle-only-refused-never-unpickled", BLIP_LOADER, _loader(BLIP_LOADER, "pickle-only"), ValueError,
      '"model"', "pickle-only", "only pickle weights", "Download the .safetensors weights",
      setup=_blip_pickle_only),
    E("stable-audio-ckpt-bin-only-refused-never-unpickled", SA_LOADER, _loader(SA_LOADER, "ckpt-only"), ValueError,
      '"model"', "ckpt-only", "only pickle weights", "Download the .safetensors weights",
      setup=_sa_pickle_only),
    G("blip-pickle-beside-safetensors-never-unpickled-ok", BLIP_LOADER, _loader(BLIP_LOADER, "both-weights"),
      lambda c, out: _never_ran(c) or loading.model_device(loading.load(out[0])) == "cpu" or pytest.fail("device"),
      setup=_blip_pickle_beside_safetensors),
    E("blip-config-asks-for-remote-code-never-executed", BLIP_LOADER, _loader(BLIP_LOADER, "remote-code"),
      ValueError, '"model"', "remote-code", "auto_map", "Use the official folder", setup=_blip_remote_code),
    E("blip-config-trust-remote-code-key-refused", BLIP_LOADER, _loader(BLIP_LOADER, "trust-key"),
      ValueError, '"model"', "trust-key", "never runs code", "Use the official folder",
      setup=_blip_trust_remote_code_key),
    E("stable-audio-encoder-asks-for-remote-code-never-executed", SA_LOADER,
      _loader(SA_LOADER, "encoder-remote-code"), ValueError, '"model"', "encoder-remote-code", "never runs code",
      "Use the official folder", setup=_sa_text_encoder_auto_map),
    E("stable-audio-custom-component-code-never-executed", SA_LOADER, _loader(SA_LOADER, "custom-component"),
      ValueError, '"model"', "custom-component", "never runs code", "Use the official folder",
      setup=_sa_custom_component),
    E("stable-audio-custom-pipeline-class-never-executed", SA_LOADER, _loader(SA_LOADER, "custom-pipeline"),
      ValueError, '"model"', "custom-pipeline", "never runs code", "Use the official folder",
      setup=_sa_custom_pipeline),
    E("model-name-escapes-the-models-folder", BLIP_LOADER, _loader(BLIP_LOADER, "../../outside"), ValueError,
      '"model"', "'../../outside'", "not a folder name inside", "Pick a folder from the list"),
    E("model-name-absolute-path", SA_LOADER, _loader(SA_LOADER, "/etc"), ValueError,
      '"model"', "'/etc'", "not a folder name inside", "Pick a folder from the list"),
    E("model-dtype-unknown", SA_LOADER, lambda c: dict(model=c.comfy_models["stable_audio_name"], dtype="fp8"),
      ValueError, '"dtype"', "'fp8'", "auto, fp32, fp16, bf16", "Pick one from the list"),
    # ------------------------------------------------------------------------------------------------ files
    E("prefix-dotdot", SAVE, _save(lambda: clip(), prefix="../escape"), ValueError,
      '"filename_prefix"', "'../escape'", "outside the output folder", "Use a relative prefix"),
    E("prefix-dotdot-inside-path", SAVE, _save(lambda: clip(), prefix="a/../../b"), ValueError,
      '"filename_prefix"', "'a/../../b'", "outside the output folder", "Use a relative prefix"),
    E("prefix-dotdot-backslash", SAVE, _save(lambda: clip(), prefix="..\\..\\escape"), ValueError,
      '"filename_prefix"', "escape", "outside the output folder", "Use a relative prefix"),
    E("prefix-absolute-path", SAVE, _save(lambda: clip(), prefix="/tmp/escape"), ValueError,
      '"filename_prefix"', "'/tmp/escape'", "outside the output folder", "Use a relative prefix"),
    E("prefix-windows-drive", SAVE, _save(lambda: clip(), prefix="C:/escape"), ValueError,
      '"filename_prefix"', "'C:/escape'", "Use letters, digits"),
    E("prefix-symlinked-folder-pointing-outside", SAVE, _save(lambda: clip(), prefix="link/name"), ValueError,
      '"filename_prefix"', "'link/name'", "leads outside the output folder", "pick another subfolder",
      setup=_symlink_dir_outside),
    G("prefix-symlink-planted-at-next-name-never-followed", SAVE, _save(lambda: clip(), prefix="race/clip"),
      _symlinks_untouched, writes=True, setup=_symlink_at_next_name),
    E("prefix-reserved-name-con", SAVE, _save(lambda: clip(), prefix="con"), ValueError,
      '"filename_prefix"', "'con'", "reserved", "Pick another name"),
    E("prefix-reserved-name-in-subfolder", SAVE, _save(lambda: clip(), prefix="ambient/NUL.take"), ValueError,
      '"filename_prefix"', "'ambient/NUL.take'", "reserved", "Pick another name"),
    E("prefix-reserved-name-as-subfolder", SAVE, _save(lambda: clip(), prefix="LPT1/clip"), ValueError,
      '"filename_prefix"', "'LPT1/clip'", "reserved", "Pick another name"),
    E("prefix-trailing-dot", SAVE, _save(lambda: clip(), prefix="name."), ValueError,
      '"filename_prefix"', "'name.'", "invalid name on Windows", "Pick another name"),
    E("prefix-300-characters", SAVE, _save(lambda: clip(), prefix="x" * 300), ValueError,
      '"filename_prefix"', "300 characters", "the limit is 200", "Shorten it"),
    E("prefix-300-bytes-of-utf8", SAVE, _save(lambda: clip(), prefix="é" * 120), ValueError,
      '"filename_prefix"', "240 bytes", "the limit is 200 bytes", "Shorten it"),
    E("prefix-empty", SAVE, _save(lambda: clip(), prefix=""), ValueError,
      '"filename_prefix"', "''", "must name a file", "Type a prefix"),
    E("prefix-only-slashes", SAVE, _save(lambda: clip(), prefix="//./"), ValueError,
      '"filename_prefix"', "'//./'", "outside the output folder", "Use a relative prefix"),
    E("prefix-control-character", SAVE, _save(lambda: clip(), prefix="a\x00b"), ValueError,
      '"filename_prefix"', "'a\\x00b'", "control characters", "Use letters, digits"),
    E("bit-depth-unknown", SAVE, _save(lambda: clip(), bit_depth="8"), ValueError,
      '"bit_depth"', "'8'", "16, 24, 32-float", "Pick one"),
    E("output-folder-read-only", SAVE, _save(lambda: clip(), prefix="ro/clip"), OSError,
      '"filename_prefix"', "'ro/clip'", "ro/clip_00001_.wav", "Check the output folder's permissions",
      setup=lambda c: _read_only(c, existing_subfolder=True)),
    E("output-folder-read-only-new-subfolder", SAVE, _save(lambda: clip(), prefix="new/clip"), OSError,
      '"filename_prefix"', "'new/clip'", "cannot be created", "Check the output folder's permissions",
      setup=lambda c: _read_only(c, existing_subfolder=False)),
    E("disk-full-during-write-no-partial-file", SAVE, _save(lambda: clip(), prefix="full/clip"), OSError,
      '"filename_prefix"', "'full/clip'", "No space left on device", "nothing was left behind",
      "Free some disk space", setup=lambda c: _fail_fs(c, errno.ENOSPC, write=True)),
    E("disk-full-at-fsync-no-partial-file", SAVE, _save(lambda: clip(), prefix="full/clip"), OSError,
      '"filename_prefix"', "'full/clip'", "No space left on device", "nothing was left behind",
      "Free some disk space", setup=lambda c: _fail_fs(c, errno.ENOSPC, fsync=True)),
    E("disk-full-creating-subfolder", SAVE, _save(lambda: clip(), prefix="deep/er/clip"), OSError,
      '"filename_prefix"', "'deep/er/clip'", "No space left on device", "free space",
      setup=lambda c: _fail_fs(c, errno.ENOSPC, makedirs=True)),
    E("disk-full-on-2nd-clip-keeps-complete-1st-no-partial-2nd", SAVE,
      _save(lambda: clip(batch=2), prefix="full/clip"), OSError,
      '"filename_prefix"', "'full/clip'", "clip_00002_.wav", "nothing was left behind", "Free some disk space",
      keeps=("full/clip_00001_.wav",), setup=lambda c: _fail_fs(c, errno.ENOSPC, write=True, on_clip=2)),
    E("cancel-during-write-no-partial-file", SAVE, _save(lambda: clip(), prefix="cancel/clip"), KeyboardInterrupt,
      convention=False, setup=lambda c: _fail_fs(c, 0, write=True, exc=KeyboardInterrupt)),
]


# ------------------------------------------------------------------------------------------------ the runner
def _snapshot(*roots: Path) -> dict:
    """Every entry under ``roots`` (symlinks not followed): kind, size, mtime and a content hash."""
    state = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                p = os.path.join(dirpath, name)
                st = os.lstat(p)
                digest = None
                if stat.S_ISREG(st.st_mode):
                    with open(p, "rb") as f:
                        digest = hashlib.sha1(f.read()).hexdigest()
                elif stat.S_ISLNK(st.st_mode):
                    digest = os.readlink(p)
                state[p] = (stat.S_IFMT(st.st_mode), st.st_size if not stat.S_ISDIR(st.st_mode) else 0,
                            st.st_mtime_ns if not stat.S_ISDIR(st.st_mode) else 0, digest)
    return state


def _diff(before: dict, after: dict) -> dict:
    return {"created": sorted(set(after) - set(before)), "removed": sorted(set(before) - set(after)),
            "changed": sorted(p for p in set(before) & set(after) if before[p] != after[p])}


def _check_message(case: Case, err: BaseException) -> None:
    msg = str(err)
    display = DISPLAY[case.node]
    problems = []
    if not msg.startswith(f"{display}:"):
        problems.append(f"does not start with {display!r}")
    problems += [f"does not name {s!r}" for s in case.says if s not in msg]
    if problems:
        raise MessageConvention(f"{case.id}: the message {msg!r} " + "; ".join(problems))


def _plans_back_on_offload(ctx: Ctx) -> None:
    for plan in ctx.plans:
        if plan.moves:
            assert plan.moves[-1][1] == plan.offload_device, f"left on {plan.moves[-1][1]}: {plan.moves}"
    for kind in loading.cached_kinds():
        obj = loading._CACHE[kind][1]
        assert loading.model_device(obj) == "cpu"
        for m in loading.modules_of(obj):
            assert all(p.device.type == "cpu" for p in m.parameters())


@pytest.fixture
def ctx(comfy_models, output_dir, tmp_path, monkeypatch, caplog, plans):
    glue.model_roots(glue.BLIP_FOLDER)  # registers the blip folder type
    (tmp_path / "case").mkdir()
    c = Ctx(comfy_models, output_dir, tmp_path / "case", monkeypatch, plans)
    import folder_paths

    for folder, root in ((glue.BLIP_FOLDER, c.blip_root), (glue.DIFFUSERS_FOLDER, c.sa_root)):
        paths, exts = folder_paths.folder_names_and_paths[folder]
        monkeypatch.setitem(folder_paths.folder_names_and_paths, folder, (list(paths) + [str(root)], exts))
    caplog.set_level(logging.WARNING)
    c.data["log"] = caplog
    yield c
    for p in c.data.get("restore_modes", []):
        os.chmod(p, 0o755)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_bad_input(case: Case, ctx: Ctx):
    if case.setup:
        case.setup(ctx)
    inputs = case.inputs(ctx)  # loads the good models first: their (cached) load is not under test here
    ctx.plans.clear()
    watched = (ctx.output, ctx.tmp, Path(ctx.comfy_models["base"]) / "models")
    before = _snapshot(*watched)
    t0 = time.perf_counter()

    if case.error is None:
        out = run_node(case.node, **inputs)
        case.check(ctx, out)
        change = _diff(before, _snapshot(*watched))
        allowed = [p for p in change["created"] if p.startswith(str(ctx.output))] if case.writes else []
        assert change == {"created": allowed, "removed": [], "changed": []}, change
        _never_ran(ctx)
        _plans_back_on_offload(ctx)
        if case.node in (CAPTION, SAMPLER, "AmbientExtend"):  # the model did go to the run device and back
            assert any(p.moves and p.moves[0][1] == RUN_DEVICE for p in ctx.plans), [p.moves for p in ctx.plans]
    else:
        try:
            run_node(case.node, **inputs)
        except case.error as err:
            caught = err
        else:
            pytest.fail(f"{case.id}: no {case.error.__name__} was raised")
        assert type(caught).__name__ != "InterruptProcessingException"
        # nothing created, changed or removed (but complete files a batch wrote before a failure)
        change = _diff(before, _snapshot(*watched))
        kept = [str(ctx.output / k) for k in case.keeps]
        folders = {str(p) for k in kept for p in Path(k).parents if str(p).startswith(str(ctx.output) + os.sep)}
        assert change == {"created": sorted(folders | set(kept)), "removed": [], "changed": []}, change
        for k in kept:
            data, _ = sf.read(k, always_2d=True)
            assert data.shape[0] == inputs["audio"]["waveform"].shape[-1]
        _never_ran(ctx)
        _plans_back_on_offload(ctx)
        # the next good run of the same node succeeds
        for p in ctx.data.get("restore_modes", []):
            os.chmod(p, 0o755)
        ctx.monkeypatch.undo()  # file-system fakes, the device-plan recorder and the extra model roots go away
        good = run_node(case.node, **good_inputs(ctx, case.node))
        assert good is not None
        if case.convention:
            _check_message(case, caught)
    assert time.perf_counter() - t0 < 60, "one bad input took over a minute"


def test_the_table_is_big_enough_and_ids_are_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 40
    for c in CASES:
        assert (c.error is None) != (c.check is None), c.id
        if c.error is not None and c.convention:
            assert any(s.startswith('"') for s in c.says), f"{c.id}: name the input"
            assert len(c.says) >= 3 or c.id.startswith(("image-", "audio-")), f"{c.id}: name value and fix"


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES
                                  if c.node in (BLIP_LOADER, SA_LOADER) and c.error])
def test_loader_check_when_queued_agrees_with_the_run(case: Case, ctx: Ctx):
    """ComfyUI calls VALIDATE_INPUTS when the prompt is queued: a folder that cannot work is reported there, with
    the same message the run would raise; what only loading can find (corrupt weights) passes it."""
    if case.setup:
        case.setup(ctx)
    inputs = case.inputs(ctx)
    verdict = N[case.node].VALIDATE_INPUTS(model=inputs["model"])
    with pytest.raises(case.error) as err:
        run_node(case.node, **inputs)
    if verdict is not True:
        assert verdict == str(err.value)
    else:
        assert "could not load" in str(err.value) or '"dtype"' in str(err.value)
    _never_ran(ctx)


def test_loader_list_survives_a_custom_pipeline_folder(ctx: Ctx):
    """A folder with a custom pipeline class in models/diffusers must not break the loader's list (ComfyUI calls
    INPUT_TYPES on every page load) nor its check when queued."""
    _sa_custom_pipeline(ctx)
    names = N[SA_LOADER].INPUT_TYPES()["required"]["model"][0]
    assert ctx.comfy_models["stable_audio_name"] in names and "custom-pipeline" not in names
    verdict = N[SA_LOADER].VALIDATE_INPUTS(model="custom-pipeline")
    assert isinstance(verdict, str) and verdict.startswith("Load Stable Audio Model:")
    _never_ran(ctx)
