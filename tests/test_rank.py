"""Rank Takes (CLAP): a tiny random CLAP saved into a ComfyUI-like models/clap folder and loaded through the loader
node; scores checked against an independent cosine computation, under permutation, over long takes (every window
counts), with silence, ties and bad inputs; the node's two output modes; Cancel; the model back off the run device.

The tiny model's scores are random numbers (it was never trained), so nothing here asserts that a take "sounds
right": only that the pack computes CLAP's similarity correctly, deterministically, and over the whole take.
"""
from __future__ import annotations

import math
import shutil
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import pack, pack_module, run_node

N = pack.NODE_CLASS_MAPPINGS
loading = pack_module("models.loading")
clap = pack_module("generate.clap")
glue = pack_module("comfy.glue")
demo = pack_module("tools.demo_models")
mm = pytest.importorskip("comfy.model_management")

NAME = demo.CLAP_NAME
FUSED = "tiny-random-clap-fused"
NODE = "Rank Takes (CLAP)"
RUN_DEVICE = "cpu:0"  # stands in for the GPU: a distinct device name, so the moves happen and are logged
PROMPT = "gentle waves on a beach at night, distant gulls, field recording"
CAPTION = "a beach at night with the sea"


@pytest.fixture(scope="module")
def clap_root(comfy_models, tmp_path_factory):
    """A models/clap folder holding the tiny CLAP (and its fusion variant), registered as ComfyUI would see an
    extra_model_paths.yaml entry."""
    import folder_paths

    root = tmp_path_factory.mktemp("models") / "clap"
    demo.build_tiny_clap(str(root / NAME), seed=0)
    demo.build_tiny_clap(str(root / FUSED), seed=1, fusion=True)
    glue.model_roots(glue.CLAP_FOLDER)  # registers the pack's folder type (models/clap)
    folder_paths.add_model_folder_path(glue.CLAP_FOLDER, str(root))
    return root


@pytest.fixture
def handle(clap_root):
    return run_node("AmbientClapLoader", model=NAME, dtype="fp32")[0]


@pytest.fixture
def loaded(handle):
    return loading.load(handle)


def noise(batch=3, channels=2, seconds=2.0, rate=48000, seed=0, scale=0.1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, channels, int(seconds * rate), generator=g) * scale


def tone(freq, seconds, rate, channels=2):
    t = torch.arange(int(seconds * rate), dtype=torch.float64) / rate
    return (0.3 * torch.sin(2 * math.pi * freq * t)).float()[None, None].repeat(1, channels, 1)


def chirp(seconds, rate):
    """A 200 Hz -> 8 kHz sweep with a gated 440 Hz tone: one signal, generated at any rate."""
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * 200 * seconds / np.log(40) * (40 ** (t / seconds) - 1)
    x = 0.3 * np.sin(phase) + 0.2 * np.sin(2 * np.pi * 440 * t) * ((t % 1) < 0.5)
    return torch.tensor(x, dtype=torch.float32)[None, None].repeat(1, 2, 1)


def pooled(out):
    """An embedding from transformers' get_*_features, whichever line (4.x: tensor, 5.x: output object)."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def independent_similarity(model, processor, mono_48k: np.ndarray, text: str) -> float:
    """CLAP's cosine similarity for one clip of at most 10 s at 48 kHz, straight from transformers."""
    fe = processor.feature_extractor
    feats = fe([mono_48k.astype(np.float64)], sampling_rate=48000, return_tensors="pt")
    enc = processor.tokenizer([text], return_tensors="pt")
    with torch.inference_mode():
        a = pooled(model.get_audio_features(input_features=feats["input_features"].float(),
                                            is_longer=torch.zeros(1, 1, dtype=torch.bool)))
        t = pooled(model.get_text_features(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]))
    return float(F.cosine_similarity(a, t)[0])


class RecordingExtractor:
    """Forwards to the real feature extractor and keeps every clip the pack hands it."""

    def __init__(self, fe):
        self.fe, self.clips, self.rates = fe, [], []

    def __getattr__(self, name):
        return getattr(self.fe, name)

    def __call__(self, clips, sampling_rate=None, **kw):
        self.clips += [np.asarray(c) for c in clips]
        self.rates.append(sampling_rate)
        return self.fe(clips, sampling_rate=sampling_rate, **kw)


def recording(processor):
    return types.SimpleNamespace(feature_extractor=RecordingExtractor(processor.feature_extractor),
                                 tokenizer=processor.tokenizer)


def assert_offloaded(plans):
    for plan in plans:
        if plan.moves:
            assert plan.moves[-1][1] == plan.offload_device, plan.moves
    for kind in loading.cached_kinds():
        for m in loading.modules_of(loading._CACHE[kind][1]):
            assert all(p.device.type == "cpu" and str(p.device) == "cpu" for p in m.parameters())


# ------------------------------------------------------------------------------------------------- loading
def test_loader_lists_checks_and_loads_the_clap_folder(clap_root, comfy_models, tmp_path, monkeypatch):
    import folder_paths
    from transformers import ClapModel, ClapProcessor

    loader = N["AmbientClapLoader"]
    assert loader.INPUT_TYPES()["required"]["model"][0] == sorted([NAME, FUSED])
    assert loader.VALIDATE_INPUTS(model=NAME) is True
    (h,) = run_node("AmbientClapLoader", model=NAME, dtype="auto")
    assert (h.kind, h.family, h.name, h.dtype) == ("clap", "ClapModel", NAME, "fp32")
    assert h.path == str(clap_root / NAME)
    model, processor = loading.load(h)
    assert isinstance(model, ClapModel) and isinstance(processor, ClapProcessor) and not model.training
    assert processor.feature_extractor.sampling_rate == 48000 and processor.feature_extractor.max_length_s == 10
    assert loading.load(h)[0] is model  # cached
    # a BLIP folder in models/clap: not listed, refused when queued with the run's own message
    extra = tmp_path / "clap"
    shutil.copytree(comfy_models["blip"], extra / "a-blip")
    paths, exts = folder_paths.folder_names_and_paths[glue.CLAP_FOLDER]
    monkeypatch.setitem(folder_paths.folder_names_and_paths, glue.CLAP_FOLDER, (list(paths) + [str(extra)], exts))
    assert "a-blip" not in loader.INPUT_TYPES()["required"]["model"][0]
    verdict = loader.VALIDATE_INPUTS(model="a-blip")
    assert verdict.startswith('Load CLAP Model: "model" folder') and 'holds a "blip" model, not CLAP' in verdict
    with pytest.raises(ValueError) as err:
        run_node("AmbientClapLoader", model="a-blip", dtype="auto")
    assert str(err.value) == verdict
    # and the BLIP loader does not list the CLAP folder
    assert NAME not in N["AmbientBlipLoader"].INPUT_TYPES()["required"]["model"][0]


def test_loader_bad_inputs_name_the_input_and_the_fix(clap_root, tmp_path, monkeypatch):
    import folder_paths

    extra = tmp_path / "clap"
    pickled = extra / "pickle-only"
    shutil.copytree(clap_root / NAME, pickled)
    (pickled / "model.safetensors").unlink()
    (pickled / "pytorch_model.bin").write_bytes(b"not unpickled")
    paths, exts = folder_paths.folder_names_and_paths[glue.CLAP_FOLDER]
    monkeypatch.setitem(folder_paths.folder_names_and_paths, glue.CLAP_FOLDER, (list(paths) + [str(extra)], exts))
    cases = [(dict(model="larger_clap_general", dtype="auto"), ('"model"', "larger_clap_general", "hf download")),
             (dict(model="pickle-only", dtype="auto"), ("pickle weights", ".safetensors")),
             (dict(model=NAME, dtype="fp8"), ('"dtype"', "fp8", "Pick one"))]
    for inputs, says in cases:
        with pytest.raises(ValueError) as err:
            run_node("AmbientClapLoader", **inputs)
        msg = str(err.value)
        assert msg.startswith("Load CLAP Model: ") and all(s in msg for s in says), msg


# ------------------------------------------------------------------------------------------------- scoring
def test_scores_are_clap_cosine_similarity_computed_independently(loaded):
    model, processor = loaded
    takes = torch.cat([noise(1, seconds=3.0, seed=1), tone(440, 3.0, 48000), chirp(3.0, 48000)])
    takes[1, 1] *= 0.5  # channels differ: the pack must mix down to mono (the mean)
    texts = [PROMPT, CAPTION]
    sims = clap.take_similarities(model, processor, takes, 48000, texts)
    expected = torch.tensor([[independent_similarity(model, processor, takes[i].mean(0).numpy(), t) for t in texts]
                             for i in range(3)])
    assert torch.allclose(sims, expected, atol=1e-5), (sims, expected)
    scores = clap.score_takes(model, processor, takes, 48000, texts, weights=[0.7, 0.3])
    assert torch.allclose(scores, 0.7 * expected[:, 0] + 0.3 * expected[:, 1], atol=1e-5)
    assert torch.allclose(clap.score_takes(model, processor, takes, 48000, texts), expected.mean(1), atol=1e-5)
    assert clap.rank_takes(scores) == sorted(range(3), key=lambda i: -float(scores[i]))


def test_takes_are_mixed_down_resampled_to_48k_and_never_longer_than_10s(loaded):
    model, processor = loaded
    rec = recording(processor)
    at_48k = chirp(5.0, 48000)[0].mean(0).numpy()
    clap.take_similarities(model, rec, chirp(5.0, 44100), 44100, [PROMPT])
    (clip,) = rec.feature_extractor.clips
    assert rec.feature_extractor.rates == [48000] and len(clip) == len(at_48k) == 240000
    inner = slice(480, -480)  # away from the edges, where any resampler sees the signal begin and end
    assert np.abs(clip[inner] - at_48k[inner]).max() < 2e-3  # the same sound, now at 48 kHz
    # a 44.1 kHz clip read as 48 kHz would be 8.8 % shorter and higher: not what the model must get
    assert len(chirp(5.0, 44100)[0, 0]) != len(clip)
    # 16 kHz mono and 96 kHz in: every window at 48 kHz and at most 480000 samples
    for rate, seconds in ((16000, 12.5), (96000, 10.0), (44100, 30.0)):
        rec = recording(processor)
        clap.take_similarities(model, rec, noise(1, 1, seconds, rate), rate, [PROMPT])
        lengths = [len(c) for c in rec.feature_extractor.clips]
        assert all(n <= 480000 for n in lengths) and sum(lengths) >= seconds * 48000 - 48, (rate, lengths)


def test_long_takes_are_scored_on_every_window(loaded):
    """A 20 s take = two 10 s windows: its score is the mean of its halves' scores, so takes that share only their
    first 10 s score differently (a scorer that looks at the first 10 s would give them the same score)."""
    model, processor = loaded
    first, second, other = noise(1, seconds=10.0, seed=1), chirp(10.0, 48000), tone(1000, 10.0, 48000)
    takes = torch.cat([torch.cat([first, second], -1), torch.cat([first, other], -1)])
    ticks = []
    scores = clap.score_takes(model, processor, takes, 48000, [PROMPT], on_step=lambda d, t: ticks.append((d, t)))
    halves = clap.score_takes(model, processor, torch.cat([first, second, other]), 48000, [PROMPT])
    assert torch.allclose(scores, torch.stack([(halves[0] + halves[1]) / 2, (halves[0] + halves[2]) / 2]),
                          atol=1e-5)
    assert abs(float(scores[0] - scores[1])) > 1e-4
    assert abs(float(scores[0] - halves[0])) > 1e-4  # not just the first window
    assert ticks[-1] == (4, 4)
    # 65 s at 44.1 kHz: 7 windows of exactly 10 s, the first at the start, the last ending at the end
    rec = recording(processor)
    ticks.clear()
    clap.take_similarities(model, rec, noise(1, 2, 65.0, 44100), 44100, [PROMPT],
                           on_step=lambda d, t: ticks.append((d, t)))
    assert [len(c) for c in rec.feature_extractor.clips] == [480000] * 7 and ticks == [(7, 7)]
    starts = clap.window_starts(65 * 44100, 441000)
    assert starts[0] == 0 and starts[-1] + 441000 == 65 * 44100 and len(starts) == 7
    assert all(b - a <= 441000 for a, b in zip(starts, starts[1:]))  # no gap: every sample is heard


def test_window_starts_cover_the_take():
    assert clap.window_starts(100, 100) == [0] and clap.window_starts(30, 100) == [0]
    assert clap.window_starts(200, 100) == [0, 100]
    for frames in (101, 250, 999, 1000, 12345):
        starts = clap.window_starts(frames, 100)
        assert len(starts) == math.ceil(frames / 100) and starts[0] == 0 and starts[-1] == frames - 100
        assert all(0 < b - a <= 100 for a, b in zip(starts, starts[1:]))


def test_permuting_the_takes_permutes_the_scores_and_the_ranking(loaded):
    model, processor = loaded
    takes = noise(6, seconds=1.5, seed=3) * torch.linspace(0.2, 1.0, 6)[:, None, None]
    scores = clap.score_takes(model, processor, takes, 48000, [PROMPT, CAPTION], weights=[0.75, 0.25])
    assert min(abs(float(a - b)) for i, a in enumerate(scores) for b in scores[i + 1:]) > 1e-6  # distinct
    perm = [4, 2, 5, 0, 3, 1]
    permuted = clap.score_takes(model, processor, takes[perm], 48000, [PROMPT, CAPTION], weights=[0.75, 0.25])
    assert torch.allclose(permuted, scores[perm], atol=1e-6)
    assert [perm[i] for i in clap.rank_takes(permuted)] == clap.rank_takes(scores)


def test_ranking_is_deterministic_and_ties_keep_the_input_order(loaded):
    model, processor = loaded
    a, b = noise(1, seconds=1.0, seed=5), noise(1, seconds=1.0, seed=6)
    takes = torch.cat([b, a, b, a])
    s1 = clap.score_takes(model, processor, takes, 48000, [PROMPT])
    s2 = clap.score_takes(model, processor, takes, 48000, [PROMPT])
    assert torch.equal(s1, s2) and s1[0] == s1[2] and s1[1] == s1[3] and s1[0] != s1[1]
    better = 1 if s1[1] > s1[0] else 0
    assert clap.rank_takes(s1) == [better, better + 2, 1 - better, 3 - better]
    assert clap.rank_takes([0.5, 0.7, 0.5, float("nan"), 0.7]) == [1, 4, 0, 2, 3]
    assert clap.rank_takes(torch.tensor([0.1])) == [0]


def test_fusion_models_are_deterministic_and_leave_numpy_random_alone(clap_root):
    """The "fusion" feature extractor marks one short clip as "longer" at random (numpy's global generator), which
    changes that clip's embedding in a fusion model: the pack overrides it and restores numpy's state."""
    (h,) = run_node("AmbientClapLoader", model=FUSED, dtype="fp32")
    model, processor = loading.load(h)
    assert model.config.audio_config.enable_fusion and processor.feature_extractor.truncation == "fusion"
    takes = noise(3, seconds=2.0, seed=7)
    np.random.seed(0)
    state = np.random.get_state()
    s1 = clap.score_takes(model, processor, takes, 48000, [PROMPT])
    after = np.random.get_state()
    assert after[0] == state[0] and np.array_equal(after[1], state[1]) and after[2:] == state[2:]
    np.random.seed(1)
    s2 = clap.score_takes(model, processor, takes, 48000, [PROMPT])
    assert torch.equal(s1, s2)
    expected = [independent_similarity(model, processor, takes[i].mean(0).numpy(), PROMPT) for i in range(3)]
    assert torch.allclose(s1, torch.tensor(expected), atol=1e-5)


def test_silent_takes_rank_last_and_all_silent_is_an_error(loaded):
    model, processor = loaded
    takes = noise(3, seconds=1.0)
    takes[1] = 0.0
    sims = clap.take_similarities(model, processor, takes, 48000, [PROMPT, CAPTION])
    assert sims[1].tolist() == [clap.SILENT_SCORE] * 2 and bool((sims[[0, 2]] > -1).all())
    assert clap.rank_takes(clap.weighted_scores(sims))[-1] == 1
    assert clap.silent_takes(takes) == [False, True, False]
    with pytest.raises(ValueError, match=r'^Rank Takes \(CLAP\): "audio" is silent: all 2 take\(s\)'):
        clap.take_similarities(model, processor, torch.zeros(2, 2, 4800), 48000, [PROMPT])


# ------------------------------------------------------------------------------------------------- the node
def _parse(table: str):
    rows = []
    for line in table.splitlines()[2:]:
        parts = line.split()
        rows.append((int(parts[0]), int(parts[1]), float(parts[2]), [float(p) for p in parts[3:] if p[0] in "+-"]))
    return rows


def test_node_best_and_all_outputs(handle, loaded, plans):
    model, processor = loaded
    waveform = noise(4, seconds=2.0, rate=44100, seed=11) * torch.tensor([0.3, 1.0, 0.6, 0.8])[:, None, None]
    meta = {"prompt": PROMPT, "seed": 5, "model": "sa"}
    audio = {"waveform": waveform, "sample_rate": 44100, "ambient_meta": meta, "ambient_loop": True}
    expected = clap.score_takes(model, processor, waveform, 44100, [PROMPT, CAPTION], weights=[0.75, 0.25])
    order = clap.rank_takes(expected)

    best, table, best_score = run_node("AmbientRankTakes", audio=audio, clap_model=handle, prompt=PROMPT,
                                  output="best", caption=CAPTION, caption_weight=0.25)
    assert best["waveform"].shape == (1, 2, waveform.shape[-1]) and best["sample_rate"] == 44100
    assert torch.equal(best["waveform"][0], waveform[order[0]])
    assert best_score == pytest.approx(float(expected.max()), abs=1e-6)
    assert best["ambient_loop"] is True
    assert best["ambient_meta"] == dict(meta, take=order[0] + 1, takes=4, clap_score=round(best_score, 4))
    assert meta == {"prompt": PROMPT, "seed": 5, "model": "sa"}  # the input's summary is not changed
    rows = _parse(table)
    assert "0.75 x prompt + 0.25 x caption" in table.splitlines()[0]
    assert [r[0] for r in rows] == [1, 2, 3, 4] and [r[1] - 1 for r in rows] == order
    assert [r[2] for r in rows] == sorted((r[2] for r in rows), reverse=True)
    for _, take, score, (p, c) in rows:
        assert score == pytest.approx(float(expected[take - 1]), abs=1e-4)
        assert score == pytest.approx(0.75 * p + 0.25 * c, abs=2e-4)

    every, table_all, score_all = run_node("AmbientRankTakes", audio=audio, clap_model=handle, prompt=PROMPT,
                                      output="all (best first)", caption=CAPTION, caption_weight=0.25)
    assert torch.equal(every["waveform"], waveform[order]) and table_all == table and score_all == best_score
    assert every["ambient_meta"]["take_order"] == [i + 1 for i in order]
    assert every["ambient_meta"]["clap_scores"] == [round(float(expected[i]), 4) for i in order]
    # the model went to the run device for each run and came back
    assert [p.moves for p in plans if p.moves] == [[("clap", RUN_DEVICE), ("clap", "cpu")]] * 2
    assert_offloaded(plans)


def test_node_prompt_only_single_take_mono_and_optional_inputs_left_out(handle, loaded):
    model, processor = loaded
    one = noise(1, channels=1, seconds=1.0, rate=22050)
    out, table, score = run_node("AmbientRankTakes", audio={"waveform": one, "sample_rate": 22050}, clap_model=handle,
                            prompt=PROMPT, output="best")
    assert torch.equal(out["waveform"], one) and "ambient_loop" not in out
    assert out["ambient_meta"] == {"take": 1, "takes": 1, "clap_score": round(score, 4)}
    assert score == pytest.approx(float(clap.score_takes(model, processor, one, 22050, [PROMPT])[0]), abs=1e-6)
    assert "with the prompt" in table and len(_parse(table)) == 1
    # a caption with weight 0 changes nothing in the order; an empty caption is ignored
    _, t2, s2 = run_node("AmbientRankTakes", audio={"waveform": one, "sample_rate": 22050}, clap_model=handle,
                    prompt=PROMPT, output="best", caption="  ", caption_weight=0.5)
    assert s2 == score and t2 == table


def test_node_progress_ticks_and_cancel_leaves_the_model_offloaded(handle, plans, interrupt_after):
    audio = {"waveform": noise(10, seconds=0.5), "sample_rate": 48000}
    ticks = interrupt_after(1)  # Cancel pressed at the first tick, after the first 8 windows
    with pytest.raises(mm.InterruptProcessingException):
        run_node("AmbientRankTakes", audio=audio, clap_model=handle, prompt=PROMPT, output="best")
    assert ticks == [(8, 10)]
    assert_offloaded(plans)
    interrupt_after(10**9)
    assert run_node("AmbientRankTakes", audio=audio, clap_model=handle, prompt=PROMPT, output="best")[0] is not None
    assert ticks == [(8, 10), (8, 10), (10, 10)]  # the next run: a tick per model call of up to 8 windows


BAD = [
    ("prompt-empty", dict(prompt=""), ('"prompt"', "empty", "Connect")),
    ("prompt-whitespace", dict(prompt=" \n\t "), ('"prompt"', "empty", "Build Ambient Prompt")),
    ("prompt-none", dict(prompt=None), ('"prompt"', "None", "Connect")),
    ("caption-weight-above-1", dict(caption=CAPTION, caption_weight=1.5), ('"caption_weight"', "1.5", "from 0 to 1")),
    ("caption-weight-negative", dict(caption=CAPTION, caption_weight=-0.1), ('"caption_weight"', "-0.1", "Set it")),
    ("caption-weight-nan", dict(caption=CAPTION, caption_weight=float("nan")), ('"caption_weight"', "nan", "Set it")),
    ("output-unknown", dict(output="worst"), ('"output"', "'worst'", "Pick one")),
    ("audio-not-audio", dict(audio=torch.zeros(1, 2, 100)), ('"audio"', "Tensor", "Connect an AUDIO output")),
    ("audio-no-samples", dict(audio={"waveform": torch.zeros(2, 2, 0), "sample_rate": 48000}),
     ('"audio"', "(2, 2, 0)", "Connect an AUDIO output")),
    ("audio-rate-0", dict(audio={"waveform": noise(1, seconds=0.1), "sample_rate": 0}),
     ('"audio"', "sample_rate is 0", "Connect")),
    ("audio-nan", dict(audio={"waveform": noise(2, seconds=0.1).index_fill_(2, torch.tensor([3]), float("nan")),
                              "sample_rate": 48000}), ('"audio"', "NaN/inf samples (4 of", "Check the upstream node")),
    ("audio-all-silent", dict(audio={"waveform": torch.zeros(3, 2, 4800), "sample_rate": 48000}),
     ('"audio"', "silent", "all 3 take(s)", "Check the node that made the audio")),
    ("clap-model-is-a-blip", dict(clap_model="BLIP"), ('"clap_model"', "not a CLAP model", "Load CLAP Model")),
]


@pytest.mark.parametrize("inputs,says", [pytest.param(i, s, id=c) for c, i, s in BAD])
def test_node_bad_inputs_say_what_to_do_and_leave_nothing_behind(inputs, says, handle, plans, comfy_models):
    good = dict(audio={"waveform": noise(2, seconds=0.5), "sample_rate": 48000}, clap_model=handle, prompt=PROMPT,
                output="best")
    args = dict(good, **inputs)
    if args["clap_model"] == "BLIP":
        args["clap_model"] = run_node("AmbientBlipLoader", model=comfy_models["blip_name"], dtype="auto")[0]
    with pytest.raises(ValueError) as err:
        run_node("AmbientRankTakes", **args)
    msg = str(err.value)
    assert msg.startswith(f"{NODE}: ") and all(s in msg for s in says), msg
    assert_offloaded(plans)
    # checks that need no model are made when queued too, with the same words
    named = {k: v for k, v in inputs.items() if k in ("output", "caption_weight")}
    if named:
        assert N["AmbientRankTakes"].VALIDATE_INPUTS(**named) == msg
    assert run_node("AmbientRankTakes", **good)[0]["waveform"].shape[0] == 1  # the next good run works
