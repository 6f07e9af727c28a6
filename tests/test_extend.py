"""Extend Soundscape: any length from a Stable Audio model, exact length, level-steady joints, one progress bar,
Cancel, determinism. Runs on a tiny random model with 20.8 s segments (448 latents)."""
import math

import pytest
import torch

from conftest import pack, pack_module

extend = pack_module("extend")
models = pack_module("models")
soundscape = pack_module("soundscape")


@pytest.fixture(scope="module")
def long_model(tmp_path_factory):
    demo = pack_module("demo_models")
    root = tmp_path_factory.mktemp("extend_models") / "diffusers"
    demo.build_tiny_stable_audio(str(root / "sa448"), sample_size=448)
    handle = models.make_handle(models.STABLE_AUDIO, "sa448", [str(root)], "fp32", models.DevicePlan())
    return handle, models.load(handle)


def _level_db(x):
    return 10 * math.log10(float((x.double() ** 2).mean()) + 1e-20)


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
    node = pack.NODE_CLASS_MAPPINGS["AmbientExtend"]()
    with pytest.raises(mm.InterruptProcessingException):
        node.execute(handle, "rain", "", minutes=5.0, segment_seconds=0.0, overlap_seconds=2.0, steps=3, cfg=7.0,
                     seed=0, tail_conditioning=False)
    assert len(ticks) == 7
    assert models.model_device(pipe) == "cpu"
    interrupt_after(10**9)
    (audio,) = node.execute(handle, "rain", "", minutes=0.5, segment_seconds=0.0, overlap_seconds=2.0, steps=2,
                            cfg=7.0, seed=0, tail_conditioning=False)
    assert audio["waveform"].shape == (1, 2, 30 * 44100)
