"""An error from inside a model reaches the user with the node, what it was doing and what to try (issue 13,
item 12), chained to the original; our own messages and ComfyUI's Cancel pass through as they are.

The model error is real: a Stable Audio folder whose projection model was saved with another conditioning width
than its transformer takes (every part loads; torch then fails inside the transformer, as a mismatched or
half-replaced download does).
"""
import shutil

import pytest

from conftest import pack, pack_module, run_node

folders = pack_module("models.folders")
loading = pack_module("models.loading")
session = pack_module("comfy.session")
N = pack.NODE_CLASS_MAPPINGS


@pytest.fixture(scope="module")
def mismatched_root(comfy_models, tmp_path_factory):
    from diffusers.pipelines.stable_audio import StableAudioProjectionModel

    root = tmp_path_factory.mktemp("mismatch") / "diffusers"
    folder = root / "stable-audio-mismatch"
    shutil.copytree(comfy_models["stable_audio"], folder)
    shutil.rmtree(folder / "projection_model")
    # the tiny transformer takes 8-wide conditioning (demo_models' "tiny"): 12 is what a wrong part would give
    StableAudioProjectionModel(text_encoder_dim=16, conditioning_dim=12, min_value=0,
                               max_value=512).save_pretrained(str(folder / "projection_model"))
    return root


@pytest.fixture
def mismatched(mismatched_root, monkeypatch):
    loader = N["AmbientStableAudioLoader"]
    monkeypatch.setattr(loader, "roots", classmethod(lambda c: [str(mismatched_root)]))
    (handle,) = run_node("AmbientStableAudioLoader", model="stable-audio-mismatch", dtype="fp32")
    yield handle
    loading.unload(folders.STABLE_AUDIO)


def test_extend_tells_a_model_error_with_node_step_and_fix(mismatched):
    with pytest.raises(session.ModelError) as caught:
        run_node("AmbientExtend", model=mismatched, prompt="rain", minutes=0.05, segment_seconds=2.0,
                 overlap_seconds=0.5, steps=2, tail_conditioning=True)
    msg = str(caught.value)
    assert msg.startswith("Extend Soundscape: generating the segments failed: RuntimeError: mat1 and mat2 shapes "
                          "cannot be multiplied")
    assert 'Try: turn "tail_conditioning" off, set "method" to auto and "segment_seconds" to 0; if it still fails' in msg
    assert "python -m nodes.cli --check" in msg
    assert isinstance(caught.value.__cause__, RuntimeError) and "mat1 and mat2" in str(caught.value.__cause__)
    assert loading.model_device(loading.load(mismatched)) == "cpu"


def test_sampler_tells_a_model_error_and_keeps_its_own_messages(mismatched):
    with pytest.raises(session.ModelError, match=r'^Stable Audio Sampler: sampling failed: RuntimeError: .*Try: set '
                                                 r'"steps" and "cfg" to 0'):
        run_node("AmbientStableAudioSampler", model=mismatched, prompt="rain", seconds=1.0, steps=2)
    # our own message (checked inside the run, once the model is loaded) is not rewrapped
    with pytest.raises(ValueError) as own:
        run_node("AmbientStableAudioSampler", model=mismatched, prompt="rain", seconds=60.0, steps=2)
    assert type(own.value) is ValueError and str(own.value).startswith('Stable Audio Sampler: "seconds" is 60')


def test_cancel_and_our_own_errors_pass_through_untouched():
    import comfy.model_management as mm

    cancel = mm.InterruptProcessingException()
    with pytest.raises(mm.InterruptProcessingException) as caught:
        with session.model_errors("Extend Soundscape", "generating the segments", "x"):
            raise cancel
    assert caught.value is cancel
    own = ValueError('Load Stable Audio Model: could not load "model" ...')
    with pytest.raises(ValueError) as caught:
        with session.model_errors("Extend Soundscape", "generating the segments", "x"):
            raise own
    assert caught.value is own
