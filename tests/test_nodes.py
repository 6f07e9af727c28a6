"""Every node through ComfyUI's calling convention, on tiny random models loaded from a ComfyUI-like folder."""
import os

import pytest
import soundfile as sf
import torch

from conftest import FAMILIES, pack, pack_module, run_node

N = pack.NODE_CLASS_MAPPINGS
mm = pytest.importorskip("comfy.model_management")


@pytest.fixture(params=FAMILIES)
def loaded(request, comfy_models):
    """BLIP and a Stable Audio model of each family (Open 1.0 and Stable Audio 3): the tests run on both."""
    (blip,) = run_node("AmbientBlipLoader", model=comfy_models["blip_name"], dtype="auto")
    name = comfy_models["stable_audio_name" if request.param == "open" else "stable_audio3_name"]
    (sa,) = run_node("AmbientStableAudioLoader", model=name, dtype="auto")
    return blip, sa


def _images(n=1, h=48, w=64, seed=0):
    return torch.rand(n, h, w, 3, generator=torch.Generator().manual_seed(seed))


def _sample(sa, prompt="waves breaking, distant gulls", **kw):
    args = dict(model=sa, prompt=prompt, negative_prompt="music, speech", seconds=1.5, steps=4, cfg=7.0, seed=42,
                variations=1)
    args.update(kw)
    return run_node("AmbientStableAudioSampler", **args)[0]


def test_loaders_list_the_user_folders(comfy_models):
    assert N["AmbientBlipLoader"].INPUT_TYPES()["required"]["model"][0] == [comfy_models["blip_name"]]
    names = [comfy_models["stable_audio_name"]] + ([comfy_models["stable_audio3_name"]]
                                                   if comfy_models["stable_audio3"] else [])
    assert N["AmbientStableAudioLoader"].INPUT_TYPES()["required"]["model"][0] == sorted(names)


def test_loader_validation_says_where_to_put_the_model(comfy_models):
    assert N["AmbientBlipLoader"].VALIDATE_INPUTS(model=comfy_models["blip_name"]) is True
    msg = N["AmbientStableAudioLoader"].VALIDATE_INPUTS(model="stable-audio-open-1.0")
    assert msg.startswith('Load Stable Audio Model: "model" is "stable-audio-open-1.0"')
    assert "hf download stabilityai/stable-audio-open-1.0" in msg


def test_full_chain_image_to_wav(loaded, output_dir):
    blip, sa = loaded
    (captions,) = run_node("AmbientBlipCaption", image=_images(), blip_model=blip, prefix="", max_tokens=12, beams=1)
    assert isinstance(captions, list) and len(captions) == 1 and isinstance(captions[0], str)
    prompt, negative, _ = run_node("AmbientPromptBuilder", caption=captions[0], preset="natural field recording", extra="")
    assert prompt and negative
    audio = _sample(sa, prompt, negative_prompt=negative)
    assert audio["sample_rate"] == 44100
    assert audio["waveform"].shape == (1, 2, int(1.5 * 44100))
    assert audio["waveform"].dtype == torch.float32 and audio["waveform"].device.type == "cpu"
    ui = run_node("AmbientSaveWav", audio=audio, filename_prefix="ambient/soundscape", bit_depth="16")
    (entry,) = ui["ui"]["audio"]
    assert entry == {"filename": "soundscape_00001_.wav", "subfolder": "ambient", "type": "output"}
    info = sf.info(os.path.join(output_dir, "ambient", entry["filename"]))
    assert (info.channels, info.samplerate, info.frames, info.subtype) == (2, 44100, 66150, "PCM_16")


@pytest.mark.slow
def test_batch_of_images_gives_a_caption_each_and_a_wav_each(loaded, output_dir):
    blip, sa = loaded
    (captions,) = run_node("AmbientBlipCaption", image=_images(3), blip_model=blip, prefix="a photography of",
                       max_tokens=8, beams=2)
    assert len(captions) == 3 and all(c.startswith("a photography of") for c in captions)
    files = []
    for caption in captions:  # ComfyUI maps the downstream nodes over the caption list
        prompt, negative, _ = run_node("AmbientPromptBuilder", caption=caption, preset="calm meditation bed", extra="")
        audio = _sample(sa, prompt, negative_prompt=negative, seconds=0.5)
        files += run_node("AmbientSaveWav", audio=audio, filename_prefix="batch/clip", bit_depth="24")["ui"]["audio"]
    assert [f["filename"] for f in files] == ["clip_00001_.wav", "clip_00002_.wav", "clip_00003_.wav"]
    assert sorted(os.listdir(output_dir / "batch")) == [f["filename"] for f in files]


def test_same_seed_same_audio_other_seed_other_audio(loaded):
    _, sa = loaded
    a, b, c = _sample(sa, seed=7), _sample(sa, seed=7), _sample(sa, seed=8)
    assert torch.equal(a["waveform"], b["waveform"])
    assert not torch.equal(a["waveform"], c["waveform"])


def test_variations_and_a_64_bit_seed(loaded):
    _, sa = loaded
    audio = _sample(sa, variations=3, seed=2**64 - 1, seconds=0.25)
    w = audio["waveform"]
    assert w.shape == (3, 2, int(0.25 * 44100))
    assert not torch.equal(w[0], w[1])


def test_progress_bar_ticks_once_per_step(loaded, interrupt_after):
    _, sa = loaded
    ticks = interrupt_after(10**9)  # never presses Cancel
    _sample(sa, steps=6)
    assert [v for v, _ in ticks] == [0, 1, 2, 3, 4, 5, 6] and {t for _, t in ticks} == {6}


def test_cancel_stops_within_one_step_and_next_run_works(loaded, interrupt_after, output_dir):
    _, sa = loaded
    ticks = interrupt_after(3)  # Cancel pressed at the 3rd tick (after step 2)
    with pytest.raises(mm.InterruptProcessingException):
        _sample(sa, steps=50)
    assert len(ticks) == 3
    assert list(output_dir.iterdir()) == []
    interrupt_after(10**9)
    assert _sample(sa, steps=2)["waveform"].shape[-1] == 66150


def test_cancel_during_caption(loaded, interrupt_after):
    blip, _ = loaded
    ticks = interrupt_after(2)
    with pytest.raises(mm.InterruptProcessingException):
        run_node("AmbientBlipCaption", image=_images(4), blip_model=blip, prefix="", max_tokens=20, beams=1)
    assert len(ticks) == 2


def test_too_long_names_the_maximum(loaded):
    _, sa = loaded
    sa3 = sa.family == "StableAudio3Pipeline"  # the tiny SA3 has the Small geometry: 120 s, as published
    with pytest.raises(ValueError) as e:
        _sample(sa, seconds=121.0 if sa3 else 3.0)
    assert str(e.value) == (
        'Stable Audio Sampler: "seconds" is 121 but this model makes at most 120.00 s in one pass. '
        'Set "seconds" to 120 or less.' if sa3 else
        'Stable Audio Sampler: "seconds" is 3 but this model makes at most 2.23 s in one pass. '
        'Set "seconds" to 2.22 or less.')


@pytest.mark.parametrize("field,value,needle", [("seconds", 0.0, '"seconds" is 0.0'), ("steps", -1, '"steps" is -1'),
                                                ("cfg", -1.0, '"cfg" is -1.0'), ("seed", -1, '"seed" is -1'),
                                                ("variations", 0, '"variations" is 0'),
                                                ("seconds", float("nan"), '"seconds" is nan')])
def test_bad_numbers_are_refused_before_sampling(loaded, field, value, needle):
    _, sa = loaded
    with pytest.raises(ValueError, match="^Stable Audio Sampler: " + needle.replace(".", r"\.")):
        _sample(sa, **{field: value})


def test_long_prompt_is_shortened_on_a_word_boundary(loaded, caplog):
    _, sa = loaded
    soundscape = pack_module("generate.soundscape")
    loading = pack_module("models.loading")
    pipe = loading.load(sa)
    long = ", ".join(["waves breaking on sand"] * 40)
    short = soundscape.fit_prompt(pipe, long)
    assert len(pipe.tokenizer(short)["input_ids"]) <= pipe.tokenizer.model_max_length
    assert long.startswith(short) and long[len(short)] in ", "
    with caplog.at_level("WARNING"):
        assert _sample(sa, long, seconds=0.25)["waveform"].shape[-1] == int(0.25 * 44100)
    assert "shortened" in caplog.text


def test_save_wav_accepts_core_audio_mono_any_rate(output_dir):
    audio = {"waveform": torch.zeros(1, 1, 16000), "sample_rate": 16000}  # what core Load Audio gives for a mono file
    ui = run_node("AmbientSaveWav", audio=audio, filename_prefix="core", bit_depth="32-float")
    info = sf.info(os.path.join(output_dir, ui["ui"]["audio"][0]["filename"]))
    assert (info.channels, info.samplerate, info.subtype) == (1, 16000, "FLOAT")


def test_caption_rejects_an_empty_batch(loaded):
    blip, _ = loaded
    with pytest.raises(ValueError, match=r'^Caption Image \(BLIP\): "image" is an empty batch'):
        run_node("AmbientBlipCaption", image=torch.zeros(0, 8, 8, 3), blip_model=blip, prefix="", max_tokens=5, beams=1)


@pytest.mark.parametrize("image", [torch.rand(1, 1, 1, 3), torch.rand(1, 40, 30, 4), torch.rand(1, 30, 40, 1),
                                   torch.full((1, 16, 16, 3), float("nan")), torch.rand(1, 16, 16, 3) * 5 - 2,
                                   torch.rand(1, 16, 16, 3).half()])
def test_caption_copes_with_odd_images(loaded, image):
    blip, _ = loaded
    (captions,) = run_node("AmbientBlipCaption", image=image, blip_model=blip, prefix="", max_tokens=5, beams=1)
    assert len(captions) == 1 and isinstance(captions[0], str)
