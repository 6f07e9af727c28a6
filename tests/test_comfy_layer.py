"""The ComfyUI layer's own facts: shared input specs written once, one loader base, messages that speak for the
calling node (out-of-memory advice names only its inputs), tooltips without machine timings."""
import re

import pytest
import torch

from conftest import needs_sa3, pack, pack_module, run_node

N = pack.NODE_CLASS_MAPPINGS
glue = pack_module("comfy.glue")
loaders = pack_module("comfy.loaders")
prompt = pack_module("text.prompt")


def _inputs(node_id):
    spec = N[node_id].INPUT_TYPES()
    return {**spec.get("required", {}), **spec.get("optional", {})}


def _shared(name):
    """Every node's spec of input ``name``, tooltip left out (it may add what the node does with it)."""
    found = {}
    for node_id in N:
        spec = _inputs(node_id).get(name)
        if spec is not None:
            options = {k: v for k, v in spec[1].items() if k != "tooltip"}
            found[node_id] = (spec[0] if isinstance(spec[0], str) else tuple(spec[0]), options, spec[1]["tooltip"])
    return found


@pytest.mark.parametrize("name, nodes, common", [
    ("seed", 4, "Same seed + same inputs = same audio"),
    ("steps", 3, "0 = the model's own: 100 for Stable Audio Open"),
    ("cfg", 2, "7 for Stable Audio Open"),
    ("negative_prompt", 2, "Used only when guidance is on"),
    ("dtype", 3, "Weight precision"),
    ("variations", 2, "each from its own noise"),
])
def test_a_shared_input_has_one_spec_and_one_wording(name, nodes, common):
    found = _shared(name)
    assert len(found) >= nodes, found
    assert len({(t, repr(o)) for t, o, _ in found.values()}) == 1, found
    assert all(common in tooltip for _, _, tooltip in found.values()), found


def test_audio_inputs_share_one_wording():
    for node_id in N:
        for name, spec in _inputs(node_id).items():
            if spec[0] == "AUDIO" and not name.startswith("audio_"):  # Mix's layers say which layer
                assert spec[1]["tooltip"].startswith("Audio from any node that outputs AUDIO"), (node_id, name)


def test_tooltips_and_descriptions_carry_no_machine_timings():
    timing = re.compile(r"H100|H200|A100|RTX|\bCPU:|\bGPU:|\d s on |\bin \d+(\.\d+)? s\b|\d+(\.\d+)? ?min\b")
    for node_id, cls in N.items():
        texts = [cls.DESCRIPTION, *getattr(cls, "OUTPUT_TOOLTIPS", ())]
        texts += [spec[1].get("tooltip", "") for spec in _inputs(node_id).values()]
        for text in texts:
            assert not timing.search(text), (node_id, text)


def test_tooltips_say_stable_audio_3_small_runs():
    """Issue 14: Small loads now (its exact SAME-S autoencoder): the loader and the sampler's length say so."""
    loader = _inputs("AmbientStableAudioLoader")["model"][1]["tooltip"]
    seconds = _inputs("AmbientStableAudioSampler")["seconds"][1]["tooltip"]
    assert "Small (SFX or Music, up to 120 s" in loader and "not supported" not in loader
    assert "Stable Audio 3 Small 120 s, Medium 380 s" in seconds


def test_every_loader_is_one_base_over_its_own_folder_type():
    folders = {}
    for node_id in ("AmbientBlipLoader", "AmbientStableAudioLoader", "AmbientClapLoader"):
        cls = N[node_id]
        assert issubclass(cls, loaders.ModelLoader) and "execute" not in vars(cls)
        assert "VALIDATE_INPUTS" not in vars(cls)
        folders[node_id] = cls.FOLDER
    assert folders == {"AmbientBlipLoader": glue.BLIP_FOLDER, "AmbientStableAudioLoader": glue.DIFFUSERS_FOLDER,
                       "AmbientClapLoader": glue.CLAP_FOLDER}


def test_unused_layer_outputs_get_a_faint_bed():
    layered = prompt.LayeredPrompts(bed="soft rain on leaves, wet forest", sources=("distant thunder",),
                                    negative="music", source_names=("thunder",))
    assert prompt.source_prompts(layered) == ["distant thunder", "soft rain on leaves, distant, faint, quiet background",
                                              "soft rain on leaves, distant, faint, quiet background"]
    assert prompt.source_prompts(layered, slots=1) == ["distant thunder"]


def _oom_on_first_step(monkeypatch):
    def progress(total):
        def on_step(done, new_total):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return on_step

    monkeypatch.setattr(glue, "progress", progress)


def _clip(seconds=3.0):
    g = torch.Generator().manual_seed(0)
    return {"waveform": (torch.rand(1, 2, int(44100 * seconds), generator=g) * 2 - 1) * 0.3, "sample_rate": 44100}


def _sa(comfy_models, family):
    name = comfy_models["stable_audio_name" if family == "open" else "stable_audio3_name"]
    return run_node("AmbientStableAudioLoader", model=name, dtype="fp32")[0]


OOM_CASES = [
    ("AmbientStableAudioSampler", "open", lambda sa: dict(model=sa, prompt="rain", negative_prompt="", seconds=1.0,
                                                          steps=2, cfg=1.0, seed=0, variations=1),
     'Stable Audio Sampler: the GPU ran out of memory. Set "memory" to low-vram', ()),
    ("AmbientExtend", "open", lambda sa: dict(model=sa, prompt="rain", negative_prompt="", minutes=0.1,
                                              segment_seconds=0.0, overlap_seconds=1.0, steps=2, cfg=1.0, seed=0,
                                              tail_conditioning=False),
     'Extend Soundscape: the GPU ran out of memory. Lower "segment_seconds"', ('"memory"', '"seconds"')),
    pytest.param("AmbientVaryAudio", "sa3", lambda sa: dict(model=sa, audio=_clip(), prompt="rain", strength=0.5,
                                                            steps=2, seed=0, variations=1),
                 'Vary Audio (Stable Audio 3): the GPU ran out of memory. Lower "variations"', ('"memory"',),
                 marks=needs_sa3),
    pytest.param("AmbientSeamlessLoop", "sa3", lambda sa: dict(audio=_clip(), overlap_seconds=1.0, search_seconds=0.0,
                                                               method="inpaint", model=sa, prompt="rain", seed=0,
                                                               joint_seconds=0.5),
                 'Make Seamless Loop: the GPU ran out of memory. Lower "joint_seconds"', ('"memory"', '"variations"'),
                 marks=needs_sa3),
]


@pytest.mark.parametrize("node_id, family, inputs, starts, absent", OOM_CASES)
def test_out_of_memory_speaks_for_the_calling_node(node_id, family, inputs, starts, absent, comfy_models,
                                                   monkeypatch):
    devices = pack_module("models.devices")
    sa = _sa(comfy_models, family)
    _oom_on_first_step(monkeypatch)
    with pytest.raises(devices.OutOfMemory) as err:
        run_node(node_id, **inputs(sa))
    message = str(err.value)
    assert message.startswith(starts), message
    assert "close other models" in message and message.count(":") == 1, message
    assert not any(name in message for name in absent), message
    assert isinstance(err.value.__cause__, torch.OutOfMemoryError)
