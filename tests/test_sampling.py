"""The pack's Stable Audio sampling loop against diffusers' own pipeline, window sizing, chunked decoding, memory
modes (what is on the run device at each stage), and out-of-memory handling."""
import pytest
import torch

from conftest import pack_module, run_node

devices = pack_module("models.devices")
families = pack_module("models.families")
folders = pack_module("models.folders")
loading = pack_module("models.loading")
soundscape = pack_module("generate.soundscape")


@pytest.fixture(scope="module")
def sa(tmp_path_factory):
    demo = pack_module("tools.demo_models")
    root = tmp_path_factory.mktemp("sampling") / "diffusers"
    demo.build_tiny_stable_audio(str(root / "sa"), sample_size=448)  # 20.8 s window, real hop and rate
    handle = folders.make_handle(folders.STABLE_AUDIO, "sa", [str(root)], "fp32", devices.DevicePlan())
    return handle, loading.load(handle)


@pytest.mark.parametrize("negative,cfg,variations", [("music", 7.0, 2), ("", 7.0, 1), ("music", 1.0, 1)])
def test_full_window_equals_diffusers_pipeline_exactly(sa, negative, cfg, variations):
    _, pipe = sa
    ours, rate = soundscape.generate_soundscape(pipe, "rain on a roof", negative_prompt=negative, seconds=5.0,
                                                steps=4, cfg=cfg, seed=3, variations=variations, window="full",
                                                decode_chunk_frames=0)
    with torch.inference_mode():
        ref = pipe("rain on a roof", negative_prompt=negative if negative and cfg > 1 else None, audio_end_in_s=5.0,
                   num_inference_steps=4, guidance_scale=cfg, num_waveforms_per_prompt=variations,
                   generator=torch.Generator("cpu").manual_seed(3)).audios
    assert ours.shape == ref.shape == (variations, 2, 5 * 44100)
    assert torch.equal(ours, ref.float())


def test_trimmed_window_is_sized_to_the_clip(sa):
    _, pipe = sa
    assert soundscape.window_frames(pipe, 5.0) == 128  # 5 s needs 108 frames: the 128 bucket
    assert soundscape.window_frames(pipe, 2.0) == 64
    assert soundscape.window_frames(pipe, 20.0) == 448  # capped at the model's window
    assert soundscape.window_frames(pipe, 5.0, "full") == 448
    w, rate = soundscape.generate_soundscape(pipe, "wind", seconds=5.0, steps=3, seed=1)
    assert w.shape == (1, 2, 5 * rate) and torch.isfinite(w).all() and w.abs().max() > 0


@pytest.mark.slow
def test_chunked_decode_matches_whole_decode(sa):
    _, pipe = sa
    latents = torch.randn(1, 4, 300, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        whole = soundscape.decode_latents(pipe.vae, latents, 0)
        chunked = soundscape.decode_latents(pipe.vae, latents, 96, 32)
    assert chunked.shape == whole.shape == (1, 2, 300 * 2048)
    assert (chunked - whole).abs().max() < 1e-4 * whole.abs().max()
    with pytest.raises(ValueError, match="must exceed twice"):
        soundscape.decode_latents(pipe.vae, latents, 64, 32)


def _moves_by_stage(plan):
    return [(tuple(sorted(names)), device) for names, device in plan.moves]


@pytest.mark.parametrize("memory", devices.MEMORY_MODES)
def test_memory_modes_place_parts_per_stage_and_release(sa, memory):
    handle, pipe = sa
    seen = {}
    # "cpu:0" stands in for the GPU: a distinct device name, so every move is made and logged
    plan = devices.DevicePlan(load_device="cpu:0", offload_device="cpu", free_memory=lambda n: None)

    def spy(done, total):
        seen.setdefault("denoise_moves", list(plan.moves))

    with devices.stable_audio_session(handle, plan, memory, node=soundscape.NODE) as (p, stage):
        soundscape.generate_soundscape(p, "rain", seconds=2.0, steps=2, seed=0, stage=stage, on_step=spy,
                                       decode_chunk_frames=families.FAMILIES["open"].decode_chunk_frames[memory])
    names_moved_in = [set(n) for n, d in plan.moves if d == "cpu:0"]
    if memory == "low-vram":
        assert names_moved_in == [{"text_encoder", "projection_model"}, {"transformer"}, {"vae"}]
    elif memory == "fast":  # everything moves in once and stays
        assert names_moved_in == [{"text_encoder", "projection_model", "transformer", "vae"}]
    else:
        assert names_moved_in[0] == {"projection_model", "transformer", "vae"}
        assert {"text_encoder"} in names_moved_in  # visits for the encode stage only
    if memory == "fast":
        assert plan.moves[-1][1] == "cpu:0" or plan.moves[-1] == (("text_encoder",), "cpu")  # stays resident
    else:
        assert plan.moves[-1] == (devices.sa_parts(pipe), "cpu")  # everything back on the offload device


def test_out_of_memory_becomes_a_clear_message_and_releases_the_model(sa):
    handle, pipe = sa
    plan = devices.DevicePlan(load_device="cpu:0", offload_device="cpu")

    def oom(done, total):
        if done == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    with pytest.raises(devices.OutOfMemory) as err:
        with devices.stable_audio_session(handle, plan, "fast", node=soundscape.NODE,
                                          advice='Set "memory" to low-vram') as (p, stage):
            soundscape.generate_soundscape(p, "rain", seconds=2.0, steps=3, seed=0, stage=stage, on_step=oom)
    assert str(err.value).startswith('Stable Audio Sampler: the GPU ran out of memory. Set "memory" to low-vram')
    assert plan.moves[-1] == (devices.sa_parts(pipe), "cpu")
    # and the next run works
    with devices.stable_audio_session(handle, plan, "balanced", node=soundscape.NODE) as (p, stage):
        w, _ = soundscape.generate_soundscape(p, "rain", seconds=1.0, steps=2, seed=0, stage=stage)
    assert w.shape == (1, 2, 44100)


def test_sampler_node_memory_input_and_unknown_mode(sa, comfy_models):
    handle, _ = sa
    args = dict(model=handle, prompt="rain", negative_prompt="music", seconds=1.0, steps=2, cfg=7.0, seed=0, variations=1)
    (audio,) = run_node("AmbientStableAudioSampler", **args, memory="low-vram", compile=True)
    assert audio["waveform"].shape == (1, 2, 44100)  # compile is ignored without CUDA
    with pytest.raises(ValueError, match='"memory" is \'turbo\''):
        run_node("AmbientStableAudioSampler", **args, memory="turbo", compile=False)


def test_split_guidance_gives_the_same_audio(sa):
    _, pipe = sa
    a, _ = soundscape.generate_soundscape(pipe, "rain", negative_prompt="music", seconds=2.0, steps=3, seed=4)
    b, _ = soundscape.generate_soundscape(pipe, "rain", negative_prompt="music", seconds=2.0, steps=3, seed=4,
                                          split_cfg=True)
    assert torch.allclose(a, b, atol=1e-5)
