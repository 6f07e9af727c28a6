"""Extend Soundscape: any length from a Stable Audio model, exact length, level-steady joints, one progress bar,
Cancel, determinism. Runs on a tiny random model with 20.8 s segments (448 latents)."""
import math

import pytest
import torch

from conftest import pack_module, run_node

extend = pack_module("generate.extend")
devices = pack_module("models.devices")
folders = pack_module("models.folders")
loading = pack_module("models.loading")
soundscape = pack_module("generate.soundscape")


@pytest.fixture(scope="module")
def long_model(tmp_path_factory):
    demo = pack_module("tools.demo_models")
    root = tmp_path_factory.mktemp("extend_models") / "diffusers"
    demo.build_tiny_stable_audio(str(root / "sa448"), sample_size=448)
    handle = folders.make_handle(folders.STABLE_AUDIO, "sa448", [str(root)], "fp32", devices.DevicePlan())
    return handle, loading.load(handle)


def _level_db(x):
    return 10 * math.log10(float((x.double() ** 2).mean()) + 1e-20)


@pytest.mark.slow
def test_ten_minutes_exact_length_and_steady_joints(long_model):
    _, pipe = long_model
    ticks = []
    w, rate = extend.extend_soundscape(pipe, "rain on a roof", minutes=10, overlap_seconds=2.0, steps=3, seed=11,
                                       on_step=lambda d, t: ticks.append((d, t)))
    assert rate == 44100 and w.shape == (1, 2, 10 * 60 * 44100) and w.dtype == torch.float32
    assert torch.isfinite(w).all()
    seg = int(20.77 * rate)  # the default segment: the model maximum rounded down to 10 ms
    ov = 2 * rate
    count = extend.plan_segments(w.shape[-1], seg, ov)
    assert count == 32
    # one progress bar for all segments: monotonic, ends at count x steps
    values = [d for d, _ in ticks]
    assert values == sorted(values) and ticks[-1] == (count * 3, count * 3)
    worst = 0.0
    for k in range(1, count):
        start = k * (seg - ov)  # where joint k's cross-fade starts in the output
        joint = w[0, :, start: start + ov]
        around = torch.cat([w[0, :, start - rate: start], w[0, :, start + ov: start + ov + rate]], dim=-1)
        worst = max(worst, _level_db(joint) - _level_db(around))
    assert worst <= 1.0, f"a joint is {worst:.2f} dB louder than its surroundings"


def test_first_segment_is_the_plain_clip_with_the_base_seed_and_runs_repeat(long_model):
    _, pipe = long_model
    a, rate = extend.extend_soundscape(pipe, "wind", minutes=0.5, overlap_seconds=1.0, steps=2, seed=5)
    b, _ = extend.extend_soundscape(pipe, "wind", minutes=0.5, overlap_seconds=1.0, steps=2, seed=5)
    assert torch.equal(a, b)
    clip, _ = soundscape.generate_soundscape(pipe, "wind", seconds=20.77, steps=2, seed=5)
    n = int(19.77 * rate)  # before the first cross-fade the output is segment 0 itself
    assert torch.allclose(a[..., :n], clip[..., :n], atol=1e-5)  # CPU kernels may differ in the last bits
    assert extend.segment_seed(5, 3) == 8 and extend.segment_seed(2**64 - 1, 1) == 0


@pytest.mark.slow
def test_short_request_is_one_segment_and_tail_conditioning_runs(long_model):
    _, pipe = long_model
    w, rate = extend.extend_soundscape(pipe, "wind", minutes=0.2, overlap_seconds=1.0, steps=2, seed=1)
    assert w.shape[-1] == int(0.2 * 60 * rate)
    w2, _ = extend.extend_soundscape(pipe, "wind", minutes=0.7, overlap_seconds=1.0, steps=2, seed=1,
                                     tail_conditioning=True)
    assert w2.shape[-1] == int(0.7 * 60 * rate) and torch.isfinite(w2).all()


@pytest.mark.parametrize("kwargs,needle", [({"minutes": 0}, '"minutes" is 0'), ({"minutes": 61}, '"minutes" is 61'),
                                           ({"minutes": float("nan")}, '"minutes" is nan'),
                                           ({"overlap_seconds": 0}, '"overlap_seconds" is 0'),
                                           ({"overlap_seconds": 15}, '"overlap_seconds" is 15'),
                                           ({"segment_seconds": 30}, '"segment_seconds" is 30')])
def test_bad_settings(long_model, kwargs, needle):
    _, pipe = long_model
    args = {"minutes": 1.0, "overlap_seconds": 2.0, "steps": 2, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match="^Extend Soundscape: " + needle):
        extend.extend_soundscape(pipe, "x", **args)


def test_node_cancel_mid_extend_stops_and_moves_model_back(long_model, interrupt_after):
    import comfy.model_management as mm

    handle, pipe = long_model
    ticks = interrupt_after(7)  # Cancel during the 3rd segment (3 steps + the 0 tick per segment)
    args = dict(model=handle, prompt="rain", negative_prompt="", segment_seconds=0.0, overlap_seconds=2.0, cfg=7.0,
                seed=0, tail_conditioning=False)
    with pytest.raises(mm.InterruptProcessingException):
        run_node("AmbientExtend", **args, minutes=5.0, steps=3)
    assert len(ticks) == 7
    assert loading.model_device(pipe) == "cpu"
    interrupt_after(10**9)
    (audio,) = run_node("AmbientExtend", **args, minutes=0.5, steps=2)
    assert audio["waveform"].shape == (1, 2, 30 * 44100)


# ------------------------------------------------------------------ Stable Audio 3: segments continued by inpainting
@pytest.fixture(scope="module")
def sa3_model(tmp_path_factory):
    from conftest import HAS_SA3

    if not HAS_SA3:
        pytest.skip("this diffusers has no StableAudio3Pipeline (0.42+)")
    demo = pack_module("tools.demo_models")
    root = tmp_path_factory.mktemp("extend_sa3") / "diffusers"
    demo.build_tiny_stable_audio3(str(root / "sa3"))
    handle = folders.make_handle(folders.STABLE_AUDIO, "sa3", [str(root)], "fp32", devices.DevicePlan())
    return handle, loading.load(handle)


def test_method_follows_the_model(long_model, sa3_model):
    assert extend.resolve_method(long_model[1], "auto") == "crossfade"
    assert extend.resolve_method(sa3_model[1], "auto") == "continue"
    assert extend.resolve_method(sa3_model[1], "crossfade") == "crossfade"
    with pytest.raises(ValueError, match='"method" is continue, which needs a Stable Audio 3 model'):
        extend.resolve_method(long_model[1], "continue")
    with pytest.raises(ValueError, match='"method" is \'glue\''):
        extend.resolve_method(sa3_model[1], "glue")


@pytest.mark.slow
def test_continued_segments_hear_the_previous_tail(sa3_model):
    _, pipe = sa3_model
    rate, seg_s, fade_s = 44100, 20.0, 1.0
    ticks = []
    w, r = extend.extend_soundscape(pipe, "rain on a roof", minutes=1.0, segment_seconds=seg_s,
                                    overlap_seconds=fade_s, seed=3, on_step=lambda d, t: ticks.append((d, t)))
    assert r == rate and w.shape == (1, 2, 60 * rate) and torch.isfinite(w).all()
    hop = 4096
    context = int(10.0 * rate) // hop * hop  # 10 s of whole latent frames
    count = 1 + math.ceil((60 * rate - int(seg_s * rate)) / (int(seg_s * rate) - context))
    assert count == 5 and ticks[-1] == (count * 8, count * 8)  # the model's own 8 steps per segment
    seg = int(seg_s * rate)
    fade = int(fade_s * rate)
    # up to the first fade, the output is segment 0 as the sampler makes it alone
    first, _ = soundscape.generate_soundscape(pipe, "rain on a roof", seconds=seg_s, seed=3)
    assert torch.equal(w[..., : seg - fade], first[..., : seg - fade])
    # segment 1 was inpainted after segment 0's last 10 s: the same call, made here, gives the next stretch
    held = first[0, :, seg - context:]
    cont, _ = soundscape.generate_soundscape(pipe, "rain on a roof", seconds=seg_s, seed=4, reference=held[None],
                                             regenerate=[(context / rate, 1e9)])
    # segment 1 sits at seg - context (its first `context` samples are the held tail, faded into the model's
    # version of it); its continuation runs until the next joint's fade
    assert torch.equal(w[..., seg: 2 * seg - context - fade], cont[..., context: seg - fade])
    # and the tail it heard matters: an independent segment with the same seed sounds different
    alone, _ = soundscape.generate_soundscape(pipe, "rain on a roof", seconds=seg_s, seed=4)
    assert not torch.allclose(cont[..., context:], alone[..., context:], atol=1e-3)
    again, _ = extend.extend_soundscape(pipe, "rain on a roof", minutes=1.0, segment_seconds=seg_s,
                                        overlap_seconds=fade_s, seed=3)
    assert torch.equal(w, again)
    worst = 0.0  # each joint's fade (held tail -> the model's version of it) keeps the level of its surroundings
    for k in range(count - 1):
        start = seg - fade + k * (seg - context)
        around = torch.cat([w[0, :, start - rate: start], w[0, :, start + fade: start + fade + rate]], dim=-1)
        worst = max(worst, abs(_level_db(w[0, :, start: start + fade]) - _level_db(around)))
    assert worst <= 1.0, f"a joint is {worst:.2f} dB off its surroundings"


@pytest.mark.slow
def test_extend_node_continues_with_sa3_and_crossfades_on_request(sa3_model, interrupt_after):
    handle, _ = sa3_model
    args = dict(model=handle, prompt="wind", negative_prompt="music", minutes=0.5, segment_seconds=15.0,
                overlap_seconds=1.0, steps=0, cfg=0.0, seed=1, tail_conditioning=False)
    ticks = interrupt_after(10**9)
    (audio,) = run_node("AmbientExtend", **args)  # method: auto
    assert audio["waveform"].shape == (1, 2, 30 * 44100)
    assert ticks[-1] == (3 * 8, 3 * 8)  # 15 s segments, 7.5 s context: 3 segments of 8 steps
    (xfade,) = run_node("AmbientExtend", **args, method="crossfade")
    assert xfade["waveform"].shape == audio["waveform"].shape
    assert not torch.equal(xfade["waveform"], audio["waveform"])


@pytest.mark.slow
def test_a_request_shorter_than_a_segment_is_one_clip_of_that_length(long_model, sa3_model):
    for _, pipe in (long_model, sa3_model):
        w, rate = extend.extend_soundscape(pipe, "wind", minutes=0.25, steps=2, seed=9)
        clip, _ = soundscape.generate_soundscape(pipe, "wind", seconds=15.0, steps=2, seed=9)
        assert w.shape == clip.shape == (1, 2, 15 * rate)
        assert torch.allclose(w, clip, atol=1e-5)  # the model made 15 s, not its maximum cut to 15 s
