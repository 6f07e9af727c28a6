"""The spatial nodes as ComfyUI runs them, and the scene plan from region captions (no model: the captions come
from a stub that reads the synthetic picture's colours, never faked BLIP output)."""

import pytest
import torch

from conftest import pack_module, run_node

scene_mod = pack_module("generate.spatial_scene")
sp = pack_module("audio.spatial")
contract = pack_module("audio.contract")
wav = pack_module("audio.wav")
comfy_glue = pack_module("comfy.glue")
RATE = 44100

SEA, FOREST = (0.1, 0.3, 0.9), (0.1, 0.6, 0.1)


def panorama(width=720, height=360):
    """An equirectangular picture: its left half sea-blue, its right half forest-green."""
    image = torch.zeros(height, width, 3)
    image[:, : width // 2] = torch.tensor(SEA)
    image[:, width // 2:] = torch.tensor(FOREST)
    return image


def colour_captions(batch, on_step=None):
    """A stand-in captioner that reads colour: "the sea" where most pixels are blue, else "a forest"."""
    blue = (batch[..., 2] > batch[..., 1]).float().mean(dim=(1, 2))
    return ["the sea" if b > 0.5 else "a forest" for b in blue]


@pytest.mark.parametrize("regions", [3, 4, 6, 8])
def test_panorama_plan_puts_the_sea_on_the_left_and_the_forest_on_the_right(regions):
    plan = scene_mod.caption_scene(colour_captions, panorama(), "panorama 360", regions)
    sea = [a for p, a in zip(plan.prompts, plan.azimuths) if "waves" in p]
    forest = [a for p, a in zip(plan.prompts, plan.azimuths) if "leaves" in p]
    assert len(sea) == 1 and len(forest) == 1  # each texture once, however many regions show it
    assert 0 < sea[0] < 180 and -180 < forest[0] < 0  # AmbiX: positive azimuth = left
    assert "gulls" in plan.table and len(plan.prompts) == len(plan.azimuths)


def test_wide_picture_plan_spans_plus_minus_60_degrees():
    boxes = scene_mod.region_layout(900, 300, "wide picture", 3)
    assert [b.azimuth_deg for b in boxes] == pytest.approx([40.0, 0.0, -40.0])
    assert (boxes[0].left, boxes[-1].right) == (0, 900)
    plan = scene_mod.caption_scene(colour_captions, panorama(900, 300), "wide picture", 3)
    sea = next(a for p, a in zip(plan.prompts, plan.azimuths) if "waves" in p)
    assert sea > 0


def test_panorama_crops_wrap_around_and_keep_the_horizon_band():
    boxes = scene_mod.region_layout(720, 360, "panorama 360", 4)
    assert [b.azimuth_deg for b in boxes] == pytest.approx([0.0, -90.0, -180.0, 90.0])
    crops = scene_mod.crop_regions(panorama(), boxes)
    assert crops.shape == (4, 180, 180, 3)  # 90 deg wide, +-45 deg of latitude
    behind = crops[2]  # centred on the image's edges: right half of the crop is the picture's left edge (sea)
    assert torch.allclose(behind[0, -1], torch.tensor(SEA)) and torch.allclose(behind[0, 0], torch.tensor(FOREST))


def test_the_same_source_in_several_regions_is_placed_once_between_them():
    plan = scene_mod.plan_scene(["the sea", "a beach with the sea", "a forest"], [80.0, 20.0, -60.0], "")
    gulls = [a for p, a in zip(plan.prompts, plan.azimuths) if "seagulls" in p]
    assert gulls == [pytest.approx(50.0)]
    assert sum("waves" in p for p in plan.prompts) == 1


def test_scene_rejects_bad_layout_and_regions():
    with pytest.raises(ValueError, match=r'Spatial Scene from Image: "layout"'):
        scene_mod.region_layout(10, 10, "fisheye", 4)
    with pytest.raises(ValueError, match=r'Spatial Scene from Image: "regions" is 9'):
        scene_mod.region_layout(10, 10, "panorama 360", 9)


def test_scene_progress_reaches_the_end_and_cancel_stops_it():
    steps = []
    scene_mod.caption_scene(colour_captions_with_steps, panorama(), "panorama 360", 4,
                            on_step=lambda d, t: steps.append((d, t)))
    assert steps[-1] == (5, 5) and all(t == 5 for _, t in steps)

    def cancel(done, total):
        raise InterruptedError

    with pytest.raises(InterruptedError):
        scene_mod.caption_scene(colour_captions_with_steps, panorama(), "panorama 360", 4, on_step=cancel)


def colour_captions_with_steps(batch, on_step=None):
    for i in range(batch.shape[0]):
        if on_step is not None:
            on_step(i + 1, batch.shape[0])
    return colour_captions(batch)


# ------------------------------------------------------------------ the AUDIO nodes
def mono(seconds=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"waveform": torch.randn(1, 1, int(seconds * RATE), generator=g) * 0.1, "sample_rate": RATE}


def test_encode_mix_binaural_nodes_make_a_scene_and_save_it_as_ambix(tmp_path, monkeypatch):
    (bed,) = run_node("AmbientSpatialEncode", audio=mono(1.0, 1), diffuse=True)
    sources = [run_node("AmbientSpatialEncode", audio=mono(0.5, s), azimuth=a)[0] for s, a in ((2, 70), (3, -120))]
    (scene,) = run_node("AmbientSpatialMix", audio_1=[bed], gain_db_1=[-12.0], audio_2=sources, gain_db_2=[0.0],
                        yaw=[0.0])
    assert scene["waveform"].shape == (1, 4, RATE)
    assert scene[contract.META_KEY][contract.AMBISONICS_META] == "AmbiX FOA ACN/SN3D"
    (ears,) = run_node("AmbientBinaural", audio=scene, yaw=0.0, output="binaural")
    assert ears["waveform"].shape == (1, 2, RATE)
    assert contract.AMBISONICS_META not in ears[contract.META_KEY]
    monkeypatch.setattr(comfy_glue, "output_directory", lambda: str(tmp_path))
    result = run_node("AmbientSaveWav", audio=scene, filename_prefix="ambix/scene", bit_depth="32-float")
    saved = tmp_path / "ambix" / result["ui"]["audio"][0]["filename"]
    assert wav.read_metadata(saved.read_bytes())["ambient"]["ambisonics"] == "AmbiX FOA ACN/SN3D"


def test_mix_node_yaw_turns_the_scene():
    sources = [run_node("AmbientSpatialEncode", audio=mono(1.0, s), azimuth=30.0)[0] for s in (4, 5)]
    (scene,) = run_node("AmbientSpatialMix", audio_1=[sources[0]], gain_db_1=[0.0], audio_2=[sources[1]],
                        gain_db_2=[0.0], yaw=[90.0])
    directions = sp.energy_directions(scene["waveform"], RATE, 0.5)[0]
    assert all(abs(d - 120.0) < 2.0 for d in directions[:, 0])


def test_binaural_node_refuses_stereo_with_a_fix():
    with pytest.raises(ValueError, match=r"Binaural from Ambisonics: \"audio\" has 2 channels.*Spatial Encode"):
        run_node("AmbientBinaural", audio={"waveform": torch.zeros(1, 2, 100), "sample_rate": RATE})


def test_every_spatial_input_and_output_has_a_tooltip():
    from conftest import pack

    for node_id in ("AmbientSpatialScene", "AmbientSpatialEncode", "AmbientSpatialMix", "AmbientBinaural"):
        cls = pack.NODE_CLASS_MAPPINGS[node_id]
        spec = cls.INPUT_TYPES()
        for name, (_, *options) in {**spec["required"], **spec.get("optional", {})}.items():
            assert options and options[0].get("tooltip"), (node_id, name)
        assert len(cls.OUTPUT_TOOLTIPS) == len(cls.RETURN_TYPES) and cls.DESCRIPTION


def test_scene_node_captions_regions_with_the_tiny_blip(comfy_models):
    pytest.importorskip("comfy.model_management")
    loading = pack_module("models.loading")
    (blip,) = run_node("AmbientBlipLoader", model=comfy_models["blip_name"], dtype="auto")
    image = panorama(128, 64)[None]
    try:
        prompts, azimuths, plan, bed, widths = run_node("AmbientSpatialScene", image=image, blip_model=blip,
                                                        layout="panorama 360", regions=4)
    finally:
        loading.unload()  # later tests (test_vary) expect an empty model cache
    assert isinstance(prompts, list) and len(prompts) == len(azimuths) == len(widths) >= 1
    assert all(90.0 <= w <= 360.0 for w in widths)
    assert all(-180.0 <= a <= 180.0 for a in azimuths)
    assert plan.count("region ") == 4 and bed and "bed (diffuse" in plan
