"""The family table and the policies read from it: "is this Stable Audio 3" for a handle and a pipeline, the compile
policy, the loop-method choice (no model loads: handles and the tiny pipelines' own classes)."""
import pytest

from conftest import pack_module

families = pack_module("models.families")
folders = pack_module("models.folders")
devices = pack_module("models.devices")
inpaint_loop = pack_module("generate.inpaint_loop")


def handle(family: str) -> object:
    return folders.ModelHandle(kind=folders.STABLE_AUDIO, path="/x", dtype="fp16", family=family, name="m")


OPEN, SA3 = handle("StableAudioPipeline"), handle("StableAudio3Pipeline")


def test_is_sa3_for_handles_and_pipelines():
    class Sa3Pipe:
        duration_embedder = object()

    class OpenPipe:
        projection_model = object()

    assert families.is_sa3(SA3) and families.is_sa3(Sa3Pipe())
    assert not families.is_sa3(OPEN) and not families.is_sa3(OpenPipe()) and not families.is_sa3(None)
    assert not families.is_sa3(handle("BlipForConditionalGeneration"))


def test_table_holds_each_family_once_and_the_loader_takes_their_classes():
    assert families.PIPELINES == ("StableAudioPipeline", "StableAudio3Pipeline")
    assert families.family_for_class("StableAudio3Pipeline").key == "sa3-medium"
    assert [f.key for f in families.FAMILIES.values() if f.refused] == ["sa3-small"]
    small = families.refused_family("StableAudio3Pipeline", {"encoder_channels": 128})
    assert small is not None and small.key == "sa3-small"
    assert families.refused_family("StableAudio3Pipeline", {"encoder_channels": 256}) is None


@pytest.mark.parametrize("compile,device,model,expected", [
    (True, "cuda", OPEN, True), (True, "cuda:0", OPEN, True), (False, "cuda", OPEN, False),
    (True, "cpu", OPEN, False), (True, "cuda", SA3, False)])
def test_compile_policy(compile, device, model, expected):
    assert devices.use_compile(compile, devices.DevicePlan(load_device=device), model) is expected


def test_loop_method_choice():
    choose = inpaint_loop.choose_loop_method
    assert choose("auto", None, None) == "crossfade"
    assert choose("auto", OPEN, "rain") == "crossfade"
    assert choose("auto", SA3, "rain") == "inpaint"
    assert choose("crossfade", SA3, "rain") == "crossfade"
    with pytest.raises(ValueError, match=r'^Make Seamless Loop: "method" is inpaint but no "model" is connected'):
        choose("inpaint", None, "rain")
    with pytest.raises(ValueError, match=r'^Make Seamless Loop: "model" is m \(StableAudioPipeline, Stable Audio Open'):
        choose("inpaint", OPEN, "rain")
    with pytest.raises(ValueError, match=r'^X: .*"prompt" is not connected'):
        choose("auto", SA3, None, node="X")
    with pytest.raises(ValueError, match=r'"method" is \'loop\' but must be one of auto, crossfade, inpaint'):
        choose("loop", SA3, "rain")
