"""The AUDIO contract (nodes/audio/contract.py) and the shared input checks (nodes/checks.py): shapes, the extra
AUDIO keys, and messages that name the calling node, the input and its value."""
import math

import numpy as np
import pytest
import torch

from conftest import pack_module

contract = pack_module("audio.contract")
checks = pack_module("checks")

NODE = "Some Node"


# --- as_batch ---------------------------------------------------------------------------------------------------

def test_as_batch_keeps_a_batch_and_makes_one_clip_of_a_two_d_waveform():
    batch = torch.zeros(3, 2, 10)
    assert contract.as_batch(batch, NODE) is batch
    clip = torch.arange(20.0).reshape(2, 10)
    one = contract.as_batch(clip, NODE)
    assert one.shape == (1, 2, 10) and torch.equal(one[0], clip)


@pytest.mark.parametrize("waveform,words", [
    (torch.zeros(10), ["(10,)", "[batch, channels, samples]"]),
    (torch.zeros(1, 1, 2, 10), ["(1, 1, 2, 10)", "[batch, channels, samples]"]),
    (torch.zeros(1, 2, 0), ["(1, 2, 0)", "at least one sample"]),
    (torch.zeros(2, 0), ["(2, 0)", "at least one sample"]),
    ([[0.0, 0.1]], ["list, not a tensor"]),
])
def test_as_batch_refuses_what_is_not_a_batch_of_sound(waveform, words):
    with pytest.raises(ValueError) as err:
        contract.as_batch(waveform, NODE)
    msg = str(err.value)
    assert msg.startswith(f'{NODE}: "audio" waveform ') and all(w in msg for w in words), msg
    with pytest.raises(ValueError, match=r'^Mix Audio Layers: "audio_2" \(layer 2\) waveform '):
        contract.as_batch(waveform, "Mix Audio Layers", '"audio_2" (layer 2)')


# --- check_clip -------------------------------------------------------------------------------------------------

def test_check_clip_gives_float32_batches_and_an_int_rate():
    waveform, rate = contract.check_clip(torch.ones(2, 5, dtype=torch.float64), np.int64(8000), NODE, "x")
    assert waveform.shape == (1, 2, 5) and waveform.dtype == torch.float32
    assert rate == 8000 and type(rate) is int


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_check_clip_refuses_nan_or_inf_saying_how_many_and_what_cannot_be_done(bad):
    x = torch.zeros(1, 2, 4)
    x[0, 1, 2] = bad
    with pytest.raises(ValueError) as err:
        contract.check_clip(x, 8000, NODE, "this node cannot loop them")
    msg = str(err.value)
    assert msg.startswith(f'{NODE}: "audio" contains NaN/inf samples (1 of 8); this node cannot loop them.')
    assert "upstream node" in msg


def test_check_clip_refuses_a_bad_rate_before_looking_at_the_samples():
    x = torch.full((1, 1, 4), math.nan)
    with pytest.raises(ValueError, match=rf'^{NODE}: "audio" sample_rate is 0 but must be a whole number of Hz'):
        contract.check_clip(x, 0, NODE, "x")


# --- check_audio ------------------------------------------------------------------------------------------------

def test_check_audio_returns_the_batch_and_the_rate():
    waveform = torch.rand(2, 1, 7)
    got, rate = contract.check_audio({"waveform": waveform, "sample_rate": 44100, "other": 1}, NODE)
    assert got is waveform and rate == 44100
    got, _ = contract.check_audio({"waveform": waveform[0], "sample_rate": 44100}, NODE)  # [C, T] is one clip
    assert got.shape == (1, 1, 7)


@pytest.mark.parametrize("audio,words", [
    ([torch.zeros(1, 2, 10), 44100], ['"audio" must be an AUDIO value', "got list"]),
    ({"waveform": torch.zeros(1, 2, 10)}, ['"audio" must be an AUDIO value', "got dict"]),
    ({"waveform": torch.zeros(1, 2, 10), "sample_rate": 44100.5}, ['"audio" sample_rate is 44100.5', "whole number"]),
    ({"waveform": torch.zeros(1, 2, 10), "sample_rate": True}, ['"audio" sample_rate is True']),
    ({"waveform": torch.zeros(1, 2, 0), "sample_rate": 44100}, ['"audio" waveform has shape (1, 2, 0)']),
])
def test_check_audio_names_the_node_the_input_and_the_value(audio, words):
    with pytest.raises(ValueError) as err:
        contract.check_audio(audio, NODE)
    msg = str(err.value)
    assert msg.startswith(f"{NODE}: ") and all(w in msg for w in words) and "Connect" in msg, msg


# --- make_audio -------------------------------------------------------------------------------------------------

def test_make_audio_sets_the_extra_keys_only_when_asked():
    waveform = torch.zeros(1, 2, 3)
    plain = contract.make_audio(waveform, np.int64(48000))
    assert plain == {"waveform": waveform, "sample_rate": 48000} and type(plain["sample_rate"]) is int
    looped = contract.make_audio(waveform, 48000, loop=True, meta={"seed": 4})
    assert looped[contract.LOOP_KEY] is True and looped[contract.META_KEY] == {"seed": 4}
    assert set(looped) == {"waveform", "sample_rate", contract.LOOP_KEY, contract.META_KEY}
    assert set(contract.make_audio(waveform, 48000, loop=False, meta={})) == {"waveform", "sample_rate"}
    assert contract.LOOP_KEY != contract.META_KEY and not {contract.LOOP_KEY, contract.META_KEY} & {"waveform",
                                                                                                      "sample_rate"}


def test_to_numpy_is_a_float64_copy_of_any_float_tensor():
    with torch.inference_mode():
        frozen = torch.tensor([[0.5, -0.25]], dtype=torch.bfloat16)
    data = contract.to_numpy(frozen)
    assert data.dtype == np.float64 and data.tolist() == [[0.5, -0.25]]
    source = torch.ones(2)
    copy = contract.to_numpy(source)
    copy[0] = 7.0
    assert source.tolist() == [1.0, 1.0]


# --- checks: seeds ----------------------------------------------------------------------------------------------

def test_seed_for_counts_up_from_the_seed_and_wraps_past_seed_max():
    assert checks.seed_for(2**64 - 1, 1) == 0  # ComfyUI's INT widgets hold 64 bits: the seeds' "max"
    assert [checks.seed_for(5, i) for i in range(3)] == [5, 6, 7]
    assert checks.seed_for(checks.SEED_MAX, 0) == checks.SEED_MAX
    assert checks.seed_for(checks.SEED_MAX, 1) == 0
    assert checks.seed_for(checks.SEED_MAX - 1, 3) == 1
    assert all(0 <= checks.seed_for(checks.SEED_MAX - 2, i) <= checks.SEED_MAX for i in range(8))


# --- checks: numbers --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [0, 3, -1.5, 1e300, np.float64(2.0)])
def test_is_number_accepts_finite_ints_and_floats(value):
    assert checks.is_number(value) is True


@pytest.mark.parametrize("value", [True, False, math.nan, math.inf, -math.inf, "1", None, [1.0]])
def test_is_number_refuses_bools_nan_inf_and_non_numbers(value):
    assert checks.is_number(value) is False


# --- checks: sample rates ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("rate", [1, 8000, 44100, checks.MAX_SAMPLE_RATE, np.int32(48000)])
def test_check_sample_rate_accepts_whole_hz_up_to_the_limit(rate):
    got = checks.check_sample_rate(NODE, rate)
    assert got == rate and type(got) is int


@pytest.mark.parametrize("rate", [0, -44100, checks.MAX_SAMPLE_RATE + 1, 44100.0, 44100.5, True, "44100", None])
def test_check_sample_rate_refuses_the_rest_naming_node_input_value_and_limit(rate):
    with pytest.raises(ValueError) as err:
        checks.check_sample_rate(NODE, rate, '"target_rate"')
    assert str(err.value) == (f'{NODE}: "target_rate" is {rate!r} but must be a whole number of Hz (1..768000). '
                              "Connect an AUDIO output from a node that sets its sample rate.")


# --- checks: seconds --------------------------------------------------------------------------------------------

def test_check_seconds_returns_floats_and_zero_only_when_not_positive():
    assert checks.check_seconds(NODE, "overlap_seconds", 2, positive=True) == 2.0
    assert type(checks.check_seconds(NODE, "overlap_seconds", 2, positive=True)) is float
    assert checks.check_seconds(NODE, "search_seconds", 0, positive=False) == 0.0
    with pytest.raises(ValueError) as err:
        checks.check_seconds(NODE, "overlap_seconds", 0, positive=True)
    assert str(err.value) == (f'{NODE}: "overlap_seconds" is 0 but must be a finite number of seconds, more than 0. '
                              "Set it to e.g. 2.")


@pytest.mark.parametrize("positive,need", [(True, "more than 0"), (False, "0 or more")])
@pytest.mark.parametrize("value", [-1.0, math.nan, math.inf, True, "2"])
def test_check_seconds_refuses_negative_nan_inf_and_non_numbers(value, positive, need):
    with pytest.raises(ValueError) as err:
        checks.check_seconds(NODE, "fade_in_seconds", value, positive=positive)
    msg = str(err.value)
    assert msg.startswith(f'{NODE}: "fade_in_seconds" is {value} but must be a finite number of seconds, {need}.')


def test_format_seconds():
    assert [checks.format_seconds(v) for v in (6, 1.0, 120.25, 0.0227, 0.5)] == ["6.0", "1.0", "120.2", "0.0227", "0.5"]
