"""Stable Audio 3 through the pack: its own loop against diffusers' three SA3 pipelines (text, audio-to-audio,
inpainting), chunked autoencoding, the family's limits and defaults, the loader's refusals (diffusers too old,
SA3 Small's SAME-S), exact rotary frequencies under half precision, and the sampler node on a SA3 folder."""
import dataclasses
import json
import math
import shutil

import pytest
import torch

from conftest import HAS_SA3, pack_module, run_node

devices = pack_module("models.devices")
families = pack_module("models.families")
folders = pack_module("models.folders")
loading = pack_module("models.loading")
soundscape = pack_module("generate.soundscape")
demo = pack_module("tools.demo_models")
sa3 = pack_module("generate.sa3")

pytestmark = pytest.mark.skipif(not HAS_SA3, reason="this diffusers has no StableAudio3Pipeline (0.42+)")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("sa3") / "diffusers"
    demo.build_tiny_stable_audio3(str(root / "small"))
    demo.build_tiny_stable_audio3(str(root / "medium"), size="tiny-medium")
    return root


def _load(root, name="small", dtype="fp32"):
    handle = folders.make_handle(folders.STABLE_AUDIO, name, [str(root)], dtype, devices.DevicePlan())
    return handle, loading.load(handle)


@pytest.fixture(scope="module")
def pipe(root):
    return _load(root)[1]


def _gen():
    return torch.Generator().manual_seed(5)


@pytest.mark.parametrize("cfg,negative,variations", [(1.0, None, 1), (3.0, "music", 2)])
def test_text_to_audio_equals_the_diffusers_pipeline(pipe, cfg, negative, variations):
    ref = pipe("rain on a roof", duration=3.0, num_inference_steps=8, guidance_scale=cfg, negative_prompt=negative,
               num_waveforms_per_prompt=variations, generator=_gen(), output_type="latent").audios
    ours = sa3.generate(pipe, "rain on a roof", negative_prompt=negative, seconds=3.0, steps=8, cfg=cfg, seed=5,
                        variations=variations, output="latents")
    assert ours.shape == (variations, 8, math.ceil(3.0 * 44100 / 4096))
    if cfg > 1:  # batched halves: the same as the pipeline up to float rounding in the batched matmuls
        assert torch.allclose(ref, ours, atol=1e-5)
    else:
        assert torch.equal(ref, ours)
    split = sa3.generate(pipe, "rain on a roof", negative_prompt=negative, seconds=3.0, steps=8, cfg=cfg, seed=5,
                         variations=variations, output="latents", split_cfg=True)
    assert torch.allclose(split, ref, atol=1e-5)


def test_audio_to_audio_and_inpainting_equal_the_diffusers_pipelines(pipe):
    from diffusers import StableAudio3AudioToAudioPipeline, StableAudio3InpaintPipeline

    audio = torch.randn(1, 2, 44100 * 3, generator=torch.Generator().manual_seed(0)) * 0.1
    a2a = StableAudio3AudioToAudioPipeline(**pipe.components)
    ref = a2a("wind", duration=3.0, audio=audio, init_noise_level=0.6, num_inference_steps=8, generator=_gen(),
              output_type="latent").audios
    ours = sa3.generate(pipe, "wind", seconds=3.0, steps=8, seed=5, reference=audio, strength=0.6,
                        output="latents", decode_chunk_frames=0)
    assert torch.equal(ref, ours)
    inpaint = StableAudio3InpaintPipeline(**pipe.components)
    ref = inpaint("wind", duration=3.0, audio=audio, mask_start_seconds=1.0, mask_end_seconds=2.5,
                  num_inference_steps=8, generator=_gen(), output_type="latent").audios
    ours = sa3.generate(pipe, "wind", seconds=3.0, steps=8, seed=5, reference=audio, regenerate=[(1.0, 2.5)],
                        output="latents", decode_chunk_frames=0)
    assert torch.equal(ref, ours)
    plain = sa3.generate(pipe, "wind", seconds=3.0, steps=8, seed=5, output="latents")
    assert not torch.equal(ours, plain)  # the kept audio conditions the result


def test_chunked_autoencoding_matches_whole(pipe):
    latents = torch.randn(1, 8, 300, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        whole = sa3.decode(pipe.vae, latents, 0)
        chunked = sa3.decode(pipe.vae, latents, 128, 32)
        assert chunked.shape == whole.shape == (1, 2, 300 * 4096)
        assert (chunked - whole).abs().max() < 1e-4 * whole.abs().max()
        audio = whole[:, :, : 250 * 4096]
        enc_whole = sa3.encode_audio(pipe.vae, audio, 0)
        enc_chunked = sa3.encode_audio(pipe.vae, audio, 128, 32)
    assert enc_chunked.shape == enc_whole.shape == (1, 8, 250)
    assert (enc_chunked - enc_whole).abs().max() < 1e-4 * enc_whole.abs().max()


def test_family_limits_and_defaults(root, pipe):
    _, medium = _load(root, "medium")
    assert families.family_of(pipe).key == "sa3-small" and soundscape.max_seconds_of(pipe) == 120.0
    assert families.family_of(medium).key == "sa3-medium" and soundscape.max_seconds_of(medium) == 380.0
    assert families.model_defaults(pipe) == (8, 1.0)
    assert soundscape.resolve_defaults(pipe, 0, 0.0) == (8, 1.0)
    assert soundscape.resolve_defaults(pipe, 12, 3.0) == (12, 3.0)
    assert families.prompt_token_limit(pipe) == 256
    # the undistilled base checkpoint samples deterministically: 100 steps with guidance
    base = type(pipe)(**{**pipe.components, "scheduler": type(pipe.scheduler).from_config(
        pipe.scheduler.config, stochastic_sampling=False)})
    assert families.model_defaults(base) == (100, 7.0)
    with pytest.raises(ValueError, match=r'"seconds" is 381 but this model makes at most 380\.00 s'):
        soundscape.generate_soundscape(medium, "rain", seconds=381.0, steps=1)


@pytest.mark.slow
def test_medium_makes_long_audio_with_flat_decode(root):
    _, medium = _load(root, "medium")
    ticks = []
    w, rate = soundscape.generate_soundscape(medium, "rain", seconds=40.0, steps=0, cfg=0.0, seed=1,
                                             on_step=lambda d, t: ticks.append((d, t)))
    assert rate == 44100 and w.shape == (1, 2, 40 * 44100)
    assert ticks == [(i, 8) for i in range(9)]  # the model's own 8 steps
    assert torch.isfinite(w).all() and w.abs().max() <= 1.0 and w.std() > 1e-3


def test_sa3_options_are_refused_for_open_models(comfy_models):
    handle = folders.make_handle(folders.STABLE_AUDIO, comfy_models["stable_audio_name"],
                                [str(comfy_models["base"] / "models" / "diffusers")], "fp32", devices.DevicePlan())
    with pytest.raises(ValueError, match="need a Stable Audio 3 model"):
        soundscape.generate_soundscape(loading.load(handle), "rain", seconds=1.0, steps=1,
                                       reference=torch.zeros(1, 2, 44100), strength=0.5)


def test_loader_says_which_diffusers_the_folder_needs(root, monkeypatch):
    monkeypatch.setitem(families.FAMILIES, "sa3-medium",
                        dataclasses.replace(families.FAMILIES["sa3-medium"], min_diffusers="99.0.0"))
    with pytest.raises(ValueError) as err:
        folders.make_handle(folders.STABLE_AUDIO, "small", [str(root)], "fp32", devices.DevicePlan())
    msg = str(err.value)
    assert msg.startswith('Load Stable Audio Model: "model" folder ')
    assert "is a Stable Audio 3 model (StableAudio3Pipeline), which needs diffusers 99.0.0 or newer" in msg
    assert 'pip install -U "diffusers>=99.0.0"' in msg


def test_loader_refuses_same_s_held_by_diffusers_own_class(root, tmp_path):
    """A Small folder whose SAME-S is diffusers' AutoencoderSAME (what diffusers' conversion script writes) would
    decode wrong audio: refused, pointing at convert-sa3. The pack's own exact class loads (the "small" fixture)."""
    folder = tmp_path / "diffusers" / "sa3-small"
    shutil.copytree(root / "small", folder)
    cfg_path = folder / "vae" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    assert cfg["_class_name"] == "AutoencoderSAMEChunked"
    folders.make_handle(folders.STABLE_AUDIO, "sa3-small", [str(tmp_path / "diffusers")], "fp32", devices.DevicePlan())
    for key in ("encoder_channels", "latent_dim", "encoder_transformer_depths", "chunk_size", "chunk_midpoint_shift",
                "encoder_conv_mapping", "decoder_conv_mapping"):
        cfg.pop(key)  # AutoencoderSAME's defaults: the SAME-S geometry
    cfg["_class_name"] = "AutoencoderSAME"
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ValueError) as err:
        folders.make_handle(folders.STABLE_AUDIO, "sa3-small", [str(tmp_path / "diffusers")], "fp32",
                           devices.DevicePlan())
    assert "holds the SAME-S autoencoder of Stable Audio 3 Small as diffusers' AutoencoderSAME" in str(err.value)
    assert "would make wrong audio" in str(err.value) and "convert-sa3" in str(err.value)


def test_half_precision_keeps_rotary_positions_exact(root):
    loading.unload()
    handle, pipe = _load(root, "medium", "bf16")
    assert pipe.transformer.dtype == torch.bfloat16
    rope = pipe.transformer.rotary_pos_emb
    assert rope.inv_freq.dtype == torch.float32
    dim = 2 * rope.inv_freq.numel()
    assert torch.equal(rope.inv_freq, 1.0 / (10000 ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim)))
    # 380 s: 4091 latents + memory tokens; position 4150 must be 4150, not a bf16 neighbour
    assert rope(4151, "cpu")[4150, 0].item() == 4150.0
    assert torch.tensor(4150.0, dtype=torch.bfloat16).item() != 4150.0  # what the cast would have given
    vae_ropes = [m for m in pipe.vae.modules() if hasattr(m, "inv_freq")]
    assert vae_ropes and all(m.inv_freq.dtype == torch.float32 for m in vae_ropes)
    w, _ = soundscape.generate_soundscape(pipe, "rain", seconds=2.0, steps=2, seed=0)
    assert torch.isfinite(w).all()
    loading.unload()


def test_fp16_keeps_the_gemma_text_encoder_in_bf16(root):
    loading.unload()
    handle, pipe = _load(root, "small", "fp16")
    assert pipe.text_encoder.dtype == torch.bfloat16  # Gemma activations overflow fp16
    assert pipe.transformer.dtype == torch.float16 and pipe.vae.dtype == torch.float16
    loading.unload()


def test_sampler_node_on_sa3_uses_the_model_defaults(comfy_models):
    (handle,) = run_node("AmbientStableAudioLoader", model=comfy_models["stable_audio3_name"], dtype="auto")
    args = dict(model=handle, prompt="waves on a beach", negative_prompt="music", seconds=12.5, seed=3, variations=2)
    (audio,) = run_node("AmbientStableAudioSampler", **args, steps=0, cfg=0.0)
    assert audio["sample_rate"] == 44100 and audio["waveform"].shape == (2, 2, int(12.5 * 44100))
    meta = audio["ambient_meta"]
    assert (meta["steps"], meta["cfg"]) == (8, 1.0)
    again = run_node("AmbientStableAudioSampler", **args, steps=8, cfg=1.0)[0]
    assert torch.equal(again["waveform"], audio["waveform"])  # 0/0 is exactly the model's 8 steps, no guidance
