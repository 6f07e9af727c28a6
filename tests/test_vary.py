"""Vary Audio (Stable Audio 3): audio to audio on a tiny random Stable Audio 3 model, through the plain function and
the node: shapes and rate, a 48 kHz mono field recording, seeds, what strength does, progress, Cancel, bad inputs.

What strength is checked against. A random autoencoder does not reconstruct its input (the tiny one decodes a 0.23
RMS source to about 0.58 RMS of its own texture), so "the output sounds like the source" cannot be measured on
it: measured, the distance from the output to the source, or to the autoencoder's own reconstruction of it, does
not order with strength. What strength controls, and what can be measured exactly, is how much of the source
reaches the output: two different sources varied with the same seed give outputs that differ only through their
sources. That difference is largest at low strength, shrinks as strength rises, and is exactly zero at 1 (the
input is ignored). Measured (RMS of the output difference, 2 s clips, seed 0): 0.05 -> 3.0e-3, 0.3 -> 6.2e-4,
0.6 -> 5.2e-6, 1.0 -> 0; the seed-to-seed difference at strength 1 is 3.0e-2.
"""
import dataclasses
import logging
import math
import re

import pytest
import torch

from conftest import HAS_SA3, pack_module, run_node

pytestmark = pytest.mark.skipif(not HAS_SA3, reason="this diffusers has no StableAudio3Pipeline (0.42+)")

vary = pack_module("generate.vary")
devices = pack_module("models.devices")
families = pack_module("models.families")
folders = pack_module("models.folders")
loading = pack_module("models.loading")
mix = pack_module("audio.mix")
resampler = pack_module("audio.resample")
soundscape = pack_module("generate.soundscape")
mm = pytest.importorskip("comfy.model_management")

SR = 44100
PROMPT = "birdsong in a beech forest, light wind"
NODE = "Vary Audio (Stable Audio 3)"


def _source(seconds=2.0, rate=SR, channels=2, seed=0, hz=220.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    n = int(seconds * rate)
    t = torch.arange(n) / rate
    return (0.3 * torch.sin(2 * math.pi * hz * t) + 0.1 * torch.randn(channels, n, generator=g))[None].float()


def _handle(comfy_models, key="stable_audio3_name"):
    return folders.make_handle(folders.STABLE_AUDIO, comfy_models[key],
                              [str(comfy_models["base"] / "models" / "diffusers")], "fp32", devices.DevicePlan())


@pytest.fixture
def pipe(comfy_models):
    return loading.load(_handle(comfy_models))


def _rms(a) -> float:
    return float(a.double().pow(2).mean().sqrt())


def test_shape_rate_variations_and_seeds(pipe):
    x = _source()
    out, rate, info = vary.vary_audio(pipe, x, SR, PROMPT, 0.5, seed=3, variations=2)
    assert rate == SR and out.shape == (2, 2, 2 * SR) and out.dtype == torch.float32
    assert torch.isfinite(out).all() and out.abs().max() <= 1.0
    assert info == {"seconds": 2.0, "trimmed_seconds": 0.0, "steps": 8, "seeds": [3], "source_rate": SR}
    assert not torch.equal(out[0], out[1])  # two takes, each from its own noise
    again, _, _ = vary.vary_audio(pipe, x, SR, PROMPT, 0.5, seed=3, variations=2)
    assert torch.equal(again, out)  # same seed, same inputs: the same audio
    other, _, _ = vary.vary_audio(pipe, x, SR, PROMPT, 0.5, seed=4, variations=2)
    assert _rms(other - out) > 1e-3
    # a batch of two clips: clip b is varied with seed + b
    batch, _, info = vary.vary_audio(pipe, torch.cat([x, _source(seed=1)]), SR, PROMPT, 0.5, seed=3, variations=2)
    assert batch.shape == (4, 2, 2 * SR) and info["seeds"] == [3, 4] and torch.equal(batch[:2], out)
    second, _, _ = vary.vary_audio(pipe, _source(seed=1), SR, PROMPT, 0.5, seed=4, variations=2)
    assert torch.equal(batch[2:], second)


def test_a_48k_mono_recording_is_resampled_to_the_model(pipe):
    x48 = _source(1.5, 48000, 1, seed=5)
    out, rate, info = vary.vary_audio(pipe, x48, 48000, PROMPT, 0.3, seed=1)
    assert rate == SR and out.shape == (1, 2, round(1.5 * SR)) and info["source_rate"] == 48000
    # exactly what the model makes from the recording resampled to 44.1 kHz: the resampling is what feeds it
    same, _, _ = vary.vary_audio(pipe, resampler.resample(x48, 48000, SR), SR, PROMPT, 0.3, seed=1)
    assert torch.equal(out, same)
    stereo, _, _ = vary.vary_audio(pipe, resampler.resample(x48, 48000, SR).repeat(1, 2, 1), SR, PROMPT, 0.3, seed=1)
    assert torch.equal(out, stereo)  # mono is doubled, as the sampler fits a reference


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_low_strength_keeps_more_of_the_source_and_one_ignores_it(pipe, seed):
    """See the module docstring: same seed, two different sources; their outputs differ only through the sources."""
    a, b = _source(seed=10, hz=220.0), _source(seed=11, hz=330.0)
    spread = {}
    for strength in (0.05, 0.3, 0.6, 1.0):
        out_a = vary.vary_audio(pipe, a, SR, PROMPT, strength, seed=seed)[0]
        out_b = vary.vary_audio(pipe, b, SR, PROMPT, strength, seed=seed)[0]
        spread[strength] = _rms(out_a - out_b)
    assert spread[1.0] == 0.0  # strength 1 ignores the input
    assert spread[0.05] > 5e-4  # not vacuous: the source reaches the output
    assert spread[0.05] > 2 * spread[0.3] > 0 and spread[0.3] > 10 * spread[0.6] > 0
    seed_to_seed = _rms(vary.vary_audio(pipe, a, SR, PROMPT, 1.0, seed=seed)[0]
                        - vary.vary_audio(pipe, a, SR, PROMPT, 1.0, seed=seed + 1)[0])
    assert seed_to_seed > spread[0.05]  # the tiny model's noise dominates: the source only shows through


def test_longer_than_the_model_takes_its_first_maximum_seconds(pipe, monkeypatch, caplog):
    # the tiny model is Small-family: 120 s
    monkeypatch.setitem(families.FAMILIES, "sa3-small", dataclasses.replace(families.FAMILIES["sa3-small"], max_seconds=1.0))
    x = _source(1.5)
    with caplog.at_level(logging.WARNING):
        out, _, info = vary.vary_audio(pipe, x, SR, PROMPT, 0.4, seed=2)
    assert out.shape == (1, 2, SR) and info["trimmed_seconds"] == pytest.approx(0.5)
    assert "its first 1 s are varied" in caplog.text
    first, _, _ = vary.vary_audio(pipe, x[..., :SR], SR, PROMPT, 0.4, seed=2)
    assert torch.equal(out, first)


@pytest.mark.parametrize("kwargs,needle", [
    (dict(strength=0.0), '"strength" is 0.0 but must be above 0 and at most 1'),
    (dict(strength=1.5), '"strength" is 1.5 but'),
    (dict(strength=float("nan")), '"strength" is nan but'),
    (dict(steps=-1), '"steps" is -1 but'),
    (dict(seed=-1), '"seed" is -1 but'),
    (dict(variations=0), '"variations" is 0 but'),
    (dict(prompt=None), '"prompt" is NoneType, not text'),
    (dict(waveform=torch.full((1, 2, 100), float("nan"))), '"audio" contains NaN/inf samples'),
    (dict(waveform=torch.zeros(2)), '"audio" waveform has shape (2,)'),
    (dict(sample_rate=0), '"audio" sample_rate is 0'),
])
def test_bad_inputs_are_named(pipe, kwargs, needle):
    args = dict(waveform=_source(0.5), sample_rate=SR, prompt=PROMPT, strength=0.5)
    args.update(kwargs)
    with pytest.raises(ValueError) as err:
        vary.vary_audio(pipe, **args)
    assert str(err.value).startswith(f"{NODE}: ") and needle in str(err.value)


def test_an_open_model_is_refused_with_the_fix(comfy_models):
    with pytest.raises(ValueError) as err:
        vary.vary_audio(loading.load(_handle(comfy_models, "stable_audio_name")), _source(0.5), SR, PROMPT)
    assert str(err.value).startswith(f'{NODE}: "model" is a StableAudioPipeline (Stable Audio Open), which cannot')
    assert "Load a Stable Audio 3 folder" in str(err.value) and 'connect it to "model"' in str(err.value)


# ----------------------------------------------------------------------------------------------------- the node
def _node(model, **kwargs):
    args = dict(model=model, audio={"waveform": _source(), "sample_rate": SR}, prompt=PROMPT, strength=0.6, steps=0,
                seed=5, variations=1)
    args.update(kwargs)
    return run_node("AmbientVaryAudio", **args)[0]


def test_node_output_metadata_and_progress(comfy_models, interrupt_after):
    handle = _handle(comfy_models)
    ticks = interrupt_after(10**9)
    out = _node(handle, variations=2)
    assert out["sample_rate"] == SR and out["waveform"].shape == (2, 2, 2 * SR) and "ambient_loop" not in out
    assert out["ambient_meta"] == {"prompt": PROMPT, "seed": 5, "steps": 8, "strength": 0.6, "model": handle.name,
                                   "seconds": 2.0, "source": "vary"}
    assert [v for v, _ in ticks] == list(range(9)) and {t for _, t in ticks} == {8}  # one tick per step
    ref, _, _ = vary.vary_audio(loading.load(handle), _source(), SR, PROMPT, 0.6, seed=5, variations=2)
    assert torch.equal(out["waveform"], ref)
    ticks.clear()
    _node(handle, steps=3, audio={"waveform": torch.cat([_source(), _source(seed=1)]), "sample_rate": SR})
    assert ticks[-1] == (6, 6) and [v for v, _ in ticks] == sorted(v for v, _ in ticks)  # 3 steps x 2 clips


def test_node_cancel_stops_and_the_next_run_works(comfy_models, interrupt_after):
    handle = _handle(comfy_models)
    ticks = interrupt_after(3)
    with pytest.raises(mm.InterruptProcessingException):
        _node(handle)
    assert len(ticks) == 3
    interrupt_after(10**9)
    assert _node(handle, steps=2)["waveform"].shape == (1, 2, 2 * SR)


def test_node_refuses_an_open_model_before_loading_it(comfy_models):
    handle = _handle(comfy_models, "stable_audio_name")
    loading.unload(folders.STABLE_AUDIO)
    with pytest.raises(ValueError) as err:
        _node(handle)
    msg = str(err.value)
    assert msg.startswith(f'{NODE}: "model" is {handle.name} (StableAudioPipeline, Stable Audio Open), which cannot '
                          "take audio in; this needs a Stable Audio 3 model. Load a Stable Audio 3 folder")
    assert msg.endswith('connect it to "model".') and loading.cached_kinds() == []
    with pytest.raises(ValueError, match=re.escape(f'{NODE}: "steps" is -2 but')):
        _node(_handle(comfy_models), steps=-2)
    assert loading.cached_kinds() == []  # settings are checked before the model loads
