"""Procedural Ambience and Procedural Scene from Prompt: the nodes, their plans, progress and Cancel, and the craft
chain they feed (issue 19)."""
import numpy as np
import pytest
import torch

from conftest import pack_module, run_node

scene = pack_module("audio.procedural_scene")
contract = pack_module("audio.contract")


@pytest.mark.parametrize("text,layers", [
    ("a sandy beach with waves under a blue sky", {"surf", "wind"}),
    ("a rainy street at night", {"rain (steady)", "traffic"}),
    ("a forest at night in summer", {"wind", "crickets"}),
    ("an office with desks and computers", {"room tone"}),
    ("a cozy fireplace in a cabin", {"fire", "room tone"}),
    ("thunderstorm over the mountains", {"rain (heavy)", "thunder", "wind"}),
    ("a purple abstract painting", {"brown"}),
])
def test_scene_plans_match_the_words(text, layers):
    plan = scene.scene_plan(text)
    assert {name for name, _ in plan} == layers
    assert plan[0][1] == max(g for _, g in plan)  # loudest first
    assert "->" in scene.describe_plan(text, plan)


def test_bed_node_makes_audio_of_the_asked_length_and_loops_when_asked():
    (audio,) = run_node("AmbientProceduralBed", layer="surf", seconds=6.0, seed=3)
    assert audio["waveform"].shape == (1, 2, 6 * 44100) and audio["sample_rate"] == 44100
    assert contract.LOOP_KEY not in audio and audio[contract.META_KEY]["model"] == "procedural"
    (looped,) = run_node("AmbientProceduralBed", layer="surf", seconds=6.0, seed=3, loop=True)
    assert looped[contract.LOOP_KEY] is True
    (again,) = run_node("AmbientProceduralBed", layer="surf", seconds=6.0, seed=3)
    assert torch.equal(audio["waveform"], again["waveform"])


def test_scene_node_feeds_the_craft_chain():
    audio, plan = run_node("AmbientProceduralScene", prompt="a beach at dusk", seconds=12.0, seed=1)
    assert plan.startswith("'a beach at dusk' -> surf")
    (looped,) = run_node("AmbientSeamlessLoop", audio=audio, overlap_seconds=2.0, search_seconds=0.0)
    (loud,) = run_node("AmbientLoudness", audio=looped, target="-23 LUFS (broadcast, EBU R128)")
    loudness = pack_module("audio.loudness")
    assert abs(loudness.integrated_loudness(loud["waveform"][0], 44100) + 23) < 0.5
    assert loud[contract.LOOP_KEY] is True and loud["waveform"].shape[-1] == 10 * 44100


def test_progress_ticks_once_a_second(interrupt_after):
    ticks = interrupt_after(10**6)
    run_node("AmbientProceduralBed", layer="pink", seconds=5.0, seed=0)
    assert ticks == [(k, 5) for k in range(1, 6)]


def test_cancel_stops_the_render(interrupt_after):
    ticks = interrupt_after(2)
    with pytest.raises(Exception) as err:
        run_node("AmbientProceduralBed", layer="pink", seconds=30.0, seed=0)
    assert "nterrupt" in type(err.value).__name__ and len(ticks) == 2


def test_bad_inputs_name_the_node_and_input():
    with pytest.raises(ValueError, match='Procedural Scene from Prompt: "stereo_width"'):
        run_node("AmbientProceduralScene", prompt="rain", seconds=5.0, seed=0, stereo_width=2.0)
    with pytest.raises(ValueError, match='Procedural Ambience: "layer"'):
        run_node("AmbientProceduralBed", layer="ocean", seconds=5.0, seed=0)
    assert np.isfinite(run_node("AmbientProceduralBed", layer="crickets", seconds=1.0, seed=0,
                                temperature_c=35.0)[0]["waveform"].numpy()).all()
