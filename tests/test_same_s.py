"""SAME-S (Stable Audio 3 Small's autoencoder) equals Stability's own implementation.

Two ways, from the same random weights in a Stable Audio 3 checkpoint's layout, converted by the pack's converter:
- against the committed fixture (a tiny SAME-S built by Stability's code; tools/make_same_s_fixture.py): always;
- against Stability's source itself, at the published SAME-S size and the tiny one: where ``STABLE_AUDIO_3_SRC``
  points at a checkout of Stability-AI/stable-audio-3 that imports (skipped otherwise, with the reason).
Both compare whole decodes (even and odd lengths) and encodes (whole latents and a ragged length), and the pack's
chunked decode and encode (the sampler's memory-saving path) against the reference's whole-clip results.
"""
import json

import pytest

diffusers = pytest.importorskip("diffusers")
if not hasattr(diffusers, "AutoencoderSAME"):  # the older CI line (diffusers 0.39) has no Stable Audio 3
    pytest.skip("needs diffusers >= 0.42 (AutoencoderSAME)", allow_module_level=True)

import same_s_reference as ref  # noqa: E402
import torch  # noqa: E402

from conftest import pack_module  # noqa: E402

convert = pack_module("tools.sa3_convert")
gen = pack_module("generate.sa3")
same_s = pack_module("models.same_s")

TOLERANCE = 1e-5  # float32; the same torch computes them bit for bit (max difference 0.0 measured)


def _fixture():
    from safetensors import safe_open

    with safe_open(ref.FIXTURE, framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        metadata = f.metadata()
    weights = {k: v for k, v in tensors.items() if k.startswith("pretransform.model.")}
    inputs = {k[len("input."):]: v for k, v in tensors.items() if k.startswith("input.")}
    outputs = {k[len("output."):]: v for k, v in tensors.items() if k.startswith("output.")}
    return weights, json.loads(metadata["model_config"]), inputs, outputs


def _compare(ours, inputs: dict, expected: dict, chunk: tuple[int, int]) -> dict:
    """Max abs difference per case: whole decodes/encodes, and the pack's chunked ones against the reference's
    whole result (``chunk``: latents per piece and overlap)."""
    diffs = {}
    with torch.no_grad():
        for name, x in inputs.items():
            want = expected[name]
            got = ours.decode(x).sample if name.startswith("decode") else ours.encode(x).latents
            assert got.shape == want.shape, name
            diffs[name] = (got - want).abs().max().item()
        long = inputs["decode_long"]
        chunked = gen.decode(ours, long, *chunk)
        assert chunked.shape[-1] == long.shape[-1] * ours.downsampling_ratio
        diffs["decode_long chunked"] = (chunked - expected["decode_long"]).abs().max().item()
        chunked = gen.encode_audio(ours, inputs["encode"], *chunk)
        diffs["encode chunked"] = (chunked - expected["encode"]).abs().max().item()
    return diffs


def test_the_fixture_is_not_degenerate():
    """A decoder that ignored its latents would pass any equality test: the reference outputs must differ
    between inputs and be of audio size."""
    _, _, inputs, outputs = _fixture()
    even, long = outputs["decode_even"], outputs["decode_long"]
    assert (even - long[..., : even.shape[-1]]).abs().max() > 0.1
    assert 0.05 < even.abs().max() < 10 and outputs["encode"].std() > 0.01
    assert outputs["decode_odd"].shape[-1] == outputs["decode_even"].shape[-1]  # 5 latents decode padded to 6


def test_equals_the_reference_fixture():
    weights, config, inputs, outputs = _fixture()
    ours = convert.convert_autoencoder(weights, config, label="fixture")
    assert type(ours).__name__ == same_s.CLASS_NAME
    assert ours.config.chunk_size == 32 and ours.config.chunk_midpoint_shift and ours.config.decoder_conv_mapping
    diffs = _compare(ours, inputs, outputs, chunk=(8, 2))
    assert max(diffs.values()) <= TOLERANCE, diffs


def test_diffusers_own_class_is_not_exact():
    """Why the pack has its own class: the same weights in diffusers' AutoencoderSAME (band attention, kernel-1
    mappings; the decoder's kernel-3 mapping cut to its middle tap) decode audibly different audio."""
    weights, config, inputs, outputs = _fixture()
    ours = convert.convert_autoencoder(weights, config)
    band = diffusers.AutoencoderSAME(**{k: v for k, v in ours.config.items() if not k.startswith("_") and k not in (
        "chunk_size", "chunk_midpoint_shift", "encoder_conv_mapping", "decoder_conv_mapping")})
    state = ours.state_dict()
    for key in [k for k in state if k.endswith("mapping.weight_v") and state[k].shape[-1] == 3]:
        state[key] = state[key][..., 1:2].contiguous()
    band.load_state_dict(state)
    with torch.no_grad():
        wrong = band.decode(inputs["decode_even"]).sample
    assert (wrong - outputs["decode_even"]).abs().max() > 0.05


def test_odd_chunking_still_exact():
    """Pieces must start on even latents (SAME-S attends in pairs): odd chunk and overlap sizes are rounded up, so
    any setting gives the whole-clip result."""
    weights, config, inputs, outputs = _fixture()
    ours = convert.convert_autoencoder(weights, config)
    assert ours.latent_alignment == 2
    with torch.no_grad():
        for chunk, overlap in ((7, 1), (9, 3), (5, 1)):
            got = gen.decode(ours, inputs["decode_long"], chunk, overlap)
            assert (got - outputs["decode_long"]).abs().max() <= TOLERANCE, (chunk, overlap)


def test_a_saved_folder_loads_back_exactly(tmp_path):
    """save_pretrained / from_pretrained keep the class and its settings; plain diffusers refuses the folder
    rather than decoding it wrong."""
    weights, config, inputs, outputs = _fixture()
    ours = convert.convert_autoencoder(weights, config)
    ours.save_pretrained(str(tmp_path / "vae"), safe_serialization=True)
    saved = json.loads((tmp_path / "vae" / "config.json").read_text())
    assert saved["_class_name"] == "AutoencoderSAMEChunked" and saved["chunk_size"] == 32
    loaded = same_s.AutoencoderSAMEChunked.from_pretrained(str(tmp_path / "vae"), local_files_only=True).eval()
    with torch.no_grad():
        assert torch.equal(loaded.decode(inputs["decode_odd"]).sample, ours.decode(inputs["decode_odd"]).sample)
    with pytest.raises(Exception, match="size mismatch"):
        diffusers.AutoencoderSAME.from_pretrained(str(tmp_path / "vae"), local_files_only=True)


@pytest.mark.parametrize("size", ["tiny", "full"])
def test_equals_stabilitys_source(size):
    """Stability's code itself, built from the same random weights: the published SAME-S (108 M) and the tiny one."""
    create, reason = ref.import_reference()
    if create is None:
        pytest.skip(reason)
    model, weights = ref.build_reference(size, seed=3)
    ours = convert.convert_autoencoder(weights, ref.model_config(size), label=f"reference {size}")
    inputs = ref.cases(size, seed=5)
    diffs = _compare(ours, inputs, ref.reference_outputs(model, inputs), chunk=(8, 2))
    print(f"SAME-S {size}: max abs difference to Stability's code: "
          + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items()))
    assert max(diffs.values()) <= TOLERANCE, diffs


def test_small_pipeline_chunked_decode_equals_whole(tmp_path):
    """The sampler's memory-saving path on a whole (tiny) Stable Audio 3 Small: 3.1 s is 34 latents, decoded in
    pieces of 8 with 2 of context, equals the one-piece decode; a 33-latent clip (odd: padded by one zero latent, as
    the reference pads it) decodes the same in pieces and is cut to its length."""
    from diffusers import StableAudio3Pipeline

    demo = pack_module("tools.demo_models")
    loading = pack_module("models.loading")
    folder = demo.build_tiny_stable_audio3(str(tmp_path / "small"))
    pipe = loading.pipeline_from_folder(StableAudio3Pipeline, folder)
    assert type(pipe.vae).__name__ == same_s.CLASS_NAME
    latents = gen.generate(pipe, "rain on leaves", seconds=3.1, steps=2, seed=4, output="latents")
    assert latents.shape[-1] == 34
    with torch.no_grad():
        whole = gen.decode(pipe.vae, latents, 0)
        chunked = gen.decode(pipe.vae, latents, 8, 2)
        odd = gen.decode(pipe.vae, latents[..., :33], 8, 2)
        odd_whole = gen.decode(pipe.vae, latents[..., :33], 0)
    assert whole.shape[-1] == 34 * 4096 and (chunked - whole).abs().max() <= TOLERANCE
    assert odd.shape[-1] == odd_whole.shape[-1] == 33 * 4096 and (odd - odd_whole).abs().max() <= TOLERANCE
    assert whole.std() > 1e-3


def test_the_default_overlap_shrinks_to_the_context_and_stays_exact():
    """SAME-S needs 2 latents of context: the sampler's default overlap (32) is cut to that, and the result is still
    the whole clip's (pieces of 6 would be impossible with 32 on both sides)."""
    weights, config, inputs, outputs = _fixture()
    ours = convert.convert_autoencoder(weights, config)
    assert ours.context_latents == 2 and gen._aligned(ours, 256, 32) == (256, 2)
    with torch.no_grad():
        got = gen.decode(ours, inputs["decode_long"], 6)
        enc = gen.encode_audio(ours, inputs["encode"], 6)
    assert (got - outputs["decode_long"]).abs().max() <= TOLERANCE
    assert (enc - outputs["encode"]).abs().max() <= TOLERANCE
