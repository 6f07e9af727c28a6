"""convert-sa3: an official-layout Stable Audio 3 checkpoint in, a diffusers StableAudio3Pipeline folder out.

A tiny random SA3 pipeline is written in the stable-audio-tools key layout (``official_checkpoint`` below, written
from the reference modules, not from the converter), converted back, and compared tensor for tensor and sample for
sample. Literal official key names pin the layout, so the test is not the mapping checked against its own inverse.
"""
import json
import os
import re

import pytest

diffusers = pytest.importorskip("diffusers")
if not hasattr(diffusers, "StableAudio3Pipeline"):  # the older CI line (diffusers 0.39) has no Stable Audio 3
    pytest.skip("needs diffusers >= 0.42 (StableAudio3Pipeline)", allow_module_level=True)
transformers = pytest.importorskip("transformers")
if not hasattr(transformers, "T5GemmaEncoderModel"):
    pytest.skip("needs transformers with T5Gemma", allow_module_level=True)

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from conftest import pack_module  # noqa: E402

sa3 = pack_module("tools.sa3_convert")
cli = pack_module("cli")


def load_pipeline(folder):
    """A Stable Audio 3 folder as the pack loads it (a SAME-S autoencoder through the pack's exact class)."""
    from diffusers import StableAudio3Pipeline

    return pack_module("models.loading").pipeline_from_folder(StableAudio3Pipeline, str(folder))

AE = "pretransform.model."
DIT = "model.model."


# --------------------------------------------------------------------------------------------- the official layout
def _reference_qkv(weight):
    """diffusers' fused self-attention rows [q1 | q2 | k1 | k2 | v] -> stable-audio-tools' [q | k | v | q_diff | k_diff]."""
    q, q_diff, k, k_diff, v = weight.chunk(5, dim=0)
    return torch.cat([q, k, v, q_diff, k_diff], dim=0)


def _same_block(sd, block, prefix, differential):
    for name, value in block.state_dict().items():
        layer = re.fullmatch(r"transformers\.(\d+)\.(.+)", name)
        if layer:
            j, rest = layer.groups()
            for ours, theirs in (("norm_attn.", "pre_norm."), ("attn.", "self_attn."), ("norm_ff.", "ff_norm."),
                                 ("ff.proj_in.", "ff.ff.0.proj."), ("ff.proj_out.", "ff.ff.2.")):
                if rest.startswith(ours):
                    rest = theirs + rest[len(ours):]
                    break
            if rest == "self_attn.to_qkv.weight" and differential:
                value = _reference_qkv(value)
            name = f"transformers.{j}.{rest}"
        sd[prefix + name] = value
    for j, layer in enumerate(block.transformers):  # stable-audio-tools keeps each layer's RoPE table in the file
        sd[f"{prefix}transformers.{j}.rope.inv_freq"] = layer.attn.rope.inv_freq


def official_checkpoint(pipe) -> dict:
    """The tiny pipeline's weights under stable-audio-tools names (``DiffusionTransformer`` under ``model.model``,
    SAME ``AudioAutoencoder`` under ``pretransform.model``, conditioners under ``conditioner.conditioners``)."""
    sd = {}
    dit = pipe.transformer
    for name, value in dit.state_dict().items():
        block = re.fullmatch(r"transformer_blocks\.(\d+)\.(.+)", name)
        if name == "prompt_padding_embedding":
            sd["conditioner.conditioners.prompt.padding_embedding"] = value
        elif block:
            i, rest = block.groups()
            rest = rest.replace("ff.proj_in.", "ff.ff.0.proj.").replace("ff.proj_out.", "ff.ff.2.")
            if rest == "self_attn.to_qkv.weight" and dit.config.use_differential_attention:
                value = _reference_qkv(value)
            sd[f"{DIT}transformer.layers.{i}.{rest}"] = value
        elif name.startswith("proj_"):
            sd[f"{DIT}transformer.project_{name[len('proj_'):]}"] = value
        elif name.startswith(("memory_tokens", "rotary_pos_emb.", "global_cond_embedder.")):
            sd[f"{DIT}transformer.{name}"] = value
        else:
            sd[DIT + name] = value
    duration = pipe.duration_embedder
    for suffix in ("weight", "bias"):
        sd[f"conditioner.conditioners.seconds_total.embedder.embedding.1.{suffix}"] = getattr(duration.linear, suffix)
    vae = pipe.vae
    levels, differential = len(vae.encoder.blocks), vae.config.use_differential_attention
    for i, block in enumerate(vae.encoder.blocks):  # encoder.layers: [blocks..., Transpose, Linear, Transpose]
        _same_block(sd, block, f"{AE}encoder.layers.{i}.", differential)
    for j, block in enumerate(vae.decoder.blocks):  # decoder.layers: [Transpose, Linear, Transpose, blocks...]
        _same_block(sd, block, f"{AE}decoder.layers.{3 + j}.", differential)
    for suffix in ("weight", "bias"):
        sd[f"{AE}encoder.layers.{levels + 1}.{suffix}"] = getattr(vae.encoder.proj, suffix)
        sd[f"{AE}decoder.layers.1.{suffix}"] = getattr(vae.decoder.proj, suffix)
    sd[f"{AE}bottleneck.scaling_factor"] = vae.bottleneck.scale
    sd[f"{AE}bottleneck.bias"] = vae.bottleneck.bias
    sd[f"{AE}bottleneck.running_std"] = vae.bottleneck.running_std
    sd[f"{AE}bottleneck.noise_scaling_factor"] = torch.ones(1, 0, 1)
    return {k: v.detach().clone().contiguous() for k, v in sd.items()}


def official_model_config(pipe) -> dict:
    """A model_config.json shaped like Stability's (stable-audio-tools ``diffusion_cond``) for the tiny pipeline."""
    v, d = pipe.vae.config, pipe.transformer.config
    same = {"channels": v.encoder_channels, "c_mults": list(v.encoder_c_mults), "strides": list(v.encoder_strides),
            "latent_dim": v.latent_dim, "transformer_depths": list(v.encoder_transformer_depths), "differential": True,
            "dyt": True, "dim_heads": v.dim_heads, "variable_stride": True, "ff_mult": v.ff_mult}
    if "chunk_size" in v:  # SAME-S: chunked attention (no sliding window), a kernel-3 decoder mapping
        same.update(sliding_window=None, chunk_size=v.chunk_size, chunk_midpoint_shift=v.chunk_midpoint_shift)
    else:
        same.update(sliding_window=[v.sliding_window, v.sliding_window])
    conv = {"encoder": bool(v.get("encoder_conv_mapping")), "decoder": bool(v.get("decoder_conv_mapping"))}
    return {
        "model_type": "diffusion_cond", "sample_rate": 44100, "audio_channels": 2,
        "model": {
            "pretransform": {"type": "autoencoder", "config": {
                "encoder": {"type": "same", "config": {"in_channels": 512, "conv_mapping": conv["encoder"], **same}},
                "decoder": {"type": "same", "config": {"out_channels": 512, "sinusoidal_blocks": [0],
                                                       "conv_mapping": conv["decoder"], **same}},
                "bottleneck": {"type": "softnorm", "config": {"dim": v.latent_dim, "noise_augment_dim": 0,
                                                              "auto_scale": True}},
                "pretransform": {"type": "patched", "config": {"patch_size": 256, "channels": 2}},
                "latent_dim": v.latent_dim, "downsampling_ratio": 4096, "io_channels": 2}},
            "conditioning": {"configs": [
                {"id": "prompt", "type": "t5gemma", "config": {"max_length": 256, "padding_mode": "learned"}},
                {"id": "seconds_total", "type": "number", "config": {"min_val": 0, "max_val": 384}}],
                "cond_dim": d.cond_token_dim},
            "diffusion": {"type": "dit", "diffusion_objective": "rf_denoiser",
                          "cross_attention_cond_ids": ["prompt", "seconds_total"],
                          "global_cond_ids": ["seconds_total"],
                          "local_add_cond_ids": ["inpaint_mask", "inpaint_masked_input"],
                          "config": {"io_channels": d.io_channels, "embed_dim": d.embed_dim, "depth": d.depth,
                                     "num_heads": d.num_heads, "cond_token_dim": d.cond_token_dim,
                                     "global_cond_dim": d.global_cond_dim,
                                     "local_add_cond_dim": d.local_add_cond_dim,
                                     "num_memory_tokens": d.num_memory_tokens, "timestep_features_type": "expo",
                                     "attn_kwargs": {"qk_norm": "rms",
                                                     "differential": d.use_differential_attention}}},
            "io_channels": d.io_channels}}


# --------------------------------------------------------------------------------------------- fixtures
def _official_files(root, size: str = "tiny") -> dict:
    """A tiny pipeline of ``size`` (diffusers folder), its official checkpoint + model_config.json, and a T5Gemma
    folder laid out like google/t5gemma-b-b-ul2 (a full encoder-decoder checkpoint with its tokenizer)."""
    from transformers import T5GemmaForConditionalGeneration

    loading = pack_module("models.loading")
    loading.quiet_libraries()
    original = pack_module("tools.demo_models").build_tiny_stable_audio3(str(root / "original"), size=size)
    pipe = load_pipeline(original)
    official = root / "official"
    official.mkdir()
    state = official_checkpoint(pipe)
    save_file(state, str(official / "model.safetensors"))
    (official / "model_config.json").write_text(json.dumps(official_model_config(pipe), indent=1))
    config = pipe.text_encoder.config.__class__.from_dict(pipe.text_encoder.config.to_dict())
    config.is_encoder_decoder = True
    t5gemma = T5GemmaForConditionalGeneration(config)
    t5gemma.model.encoder.load_state_dict(pipe.text_encoder.encoder.state_dict())
    t5gemma.save_pretrained(str(root / "t5gemma"))
    pipe.tokenizer.save_pretrained(str(root / "t5gemma"))
    return {"root": root, "pipe": pipe, "state": state, "checkpoint": str(official / "model.safetensors"),
            "config": official_model_config(pipe), "text_encoder": str(root / "t5gemma")}


@pytest.fixture(scope="module")
def sa3_files(tmp_path_factory):
    """Small in miniature: a SAME-S autoencoder (chunked, kernel-3 decoder mapping), a DiT without differential
    attention (as Small's)."""
    return _official_files(tmp_path_factory.mktemp("sa3"))


def _write_checkpoint(folder, state, config=None):
    folder.mkdir(parents=True, exist_ok=True)
    save_file(state, str(folder / "model.safetensors"))
    if config is not None:
        (folder / "model_config.json").write_text(json.dumps(config))
    return str(folder / "model.safetensors")


def _no_leftovers(parent):
    return [p.name for p in parent.iterdir() if p.name.startswith(".")] == []


# --------------------------------------------------------------------------------------------- the layout itself
def test_checkpoint_uses_the_official_key_names(sa3_files):
    names = set(sa3_files["state"])
    for name in (  # as listed in diffusers' convert_stable_audio_3_to_diffusers.py and its SA3 DiT structure test
            "model.model.to_timestep_embed.0.weight", "model.model.to_cond_embed.2.weight",
            "model.model.to_global_embed.0.weight", "model.model.preprocess_conv.weight",
            "model.model.transformer.project_in.weight", "model.model.transformer.project_out.weight",
            "model.model.transformer.memory_tokens", "model.model.transformer.rotary_pos_emb.inv_freq",
            "model.model.transformer.global_cond_embedder.2.bias",
            "model.model.transformer.layers.0.self_attn.to_qkv.weight",
            "model.model.transformer.layers.0.cross_attn.to_kv.weight",
            "model.model.transformer.layers.1.ff.ff.0.proj.weight", "model.model.transformer.layers.1.ff.ff.2.bias",
            "model.model.transformer.layers.0.to_scale_shift_gate",
            "model.model.transformer.layers.1.to_local_embed.2.weight",
            "conditioner.conditioners.prompt.padding_embedding",
            "conditioner.conditioners.seconds_total.embedder.embedding.1.weight",
            "pretransform.model.encoder.layers.0.new_tokens", "pretransform.model.encoder.layers.0.mapping.weight_g",
            "pretransform.model.encoder.layers.0.mapping.weight_v",
            "pretransform.model.encoder.layers.0.transformers.0.pre_norm.alpha",
            "pretransform.model.encoder.layers.0.transformers.0.self_attn.q_norm.gamma",
            "pretransform.model.encoder.layers.0.transformers.0.rope.inv_freq",
            "pretransform.model.encoder.layers.0.transformers.0.ff.ff.0.proj.weight",
            "pretransform.model.encoder.layers.2.weight",  # the Linear after [block, Transpose]
            "pretransform.model.decoder.layers.1.weight",  # the Linear after [Transpose]
            "pretransform.model.decoder.layers.3.transformers.0.ff_norm.beta",
            "pretransform.model.bottleneck.scaling_factor", "pretransform.model.bottleneck.running_std",
            "pretransform.model.bottleneck.noise_scaling_factor"):
        assert name in names, name
    assert not any(n.startswith(("transformer_blocks.", "encoder.blocks.", "vae.")) for n in names)


def test_differential_self_attention_rows_are_reordered_as_the_reference_chunks_them():
    rows = torch.arange(5.0).repeat_interleave(2)[:, None]  # official chunks q, k, v, q_diff, k_diff = 0..4
    assert sa3.reference_qkv_to_diffusers(rows)[::2, 0].tolist() == [0, 3, 1, 4, 2]  # diffusers q1, q2, k1, k2, v


# --------------------------------------------------------------------------------------------- conversion
def test_converts_exactly_and_sounds_the_same(sa3_files, tmp_path):

    notes = []
    out = sa3.convert_sa3(sa3_files["checkpoint"], str(tmp_path / "sa3"), sa3_files["text_encoder"], dtype="keep",
                          notes=notes)
    assert out == str(tmp_path / "sa3") and sorted(os.listdir(tmp_path)) == ["sa3"]
    converted = load_pipeline(out)
    original = sa3_files["pipe"]
    for component in ("transformer", "vae", "duration_embedder", "text_encoder"):
        ours, theirs = getattr(converted, component).state_dict(), getattr(original, component).state_dict()
        assert ours.keys() == theirs.keys(), component
        for name, tensor in theirs.items():
            assert ours[name].dtype == tensor.dtype and torch.equal(ours[name], tensor), f"{component}.{name}"
        if component != "text_encoder":  # diffusers configs: the architecture came through unchanged
            for key, value in getattr(original, component).config.items():
                if not key.startswith("_"):
                    assert getattr(converted, component).config[key] == value, f"{component}.{key}"
    assert dict(converted.scheduler.config) == dict(original.scheduler.config)
    assert converted.tokenizer("rain on a tin roof").input_ids == original.tokenizer("rain on a tin roof").input_ids
    kwargs = {"prompt": "rain on a tin roof", "duration": 1.0, "num_inference_steps": 2}
    a = converted(**kwargs, generator=torch.Generator().manual_seed(7)).audios
    b = original(**kwargs, generator=torch.Generator().manual_seed(7)).audios
    assert a.shape == (1, 2, 44100) and torch.equal(a, b)
    text = "\n".join(notes)
    assert "rotary frequencies" in text and "noise_scaling_factor" in text and "decoder half" in text
    assert "assumed" not in text  # model_config.json beside the checkpoint answered everything


def test_medium_converts_exactly_too(tmp_path):
    """Medium in miniature: SAME-L-style band attention (diffusers' own AutoencoderSAME) and a differential DiT,
    whose fused self-attention rows the converter reorders."""
    files = _official_files(tmp_path / "files", size="tiny-medium")
    out = sa3.convert_sa3(files["checkpoint"], str(tmp_path / "sa3"), files["text_encoder"], dtype="keep")
    converted, original = load_pipeline(out), files["pipe"]
    assert type(converted.vae).__name__ == "AutoencoderSAME" and converted.transformer.config.use_differential_attention
    for component in ("transformer", "vae", "duration_embedder"):
        theirs = getattr(original, component).state_dict()
        for name, tensor in getattr(converted, component).state_dict().items():
            assert torch.equal(tensor, theirs[name]), f"{component}.{name}"
    kwargs = {"prompt": "wind over a ridge", "duration": 1.0, "num_inference_steps": 2}
    assert torch.equal(converted(**kwargs, generator=torch.Generator().manual_seed(3)).audios,
                       original(**kwargs, generator=torch.Generator().manual_seed(3)).audios)


def test_without_model_config_the_shapes_suffice(sa3_files, tmp_path):

    checkpoint = _write_checkpoint(tmp_path / "bare", sa3_files["state"])
    notes = []
    out = sa3.convert_sa3(checkpoint, str(tmp_path / "sa3"), sa3_files["text_encoder"], dtype="fp16", notes=notes)
    converted = load_pipeline(out)
    for component in ("transformer", "vae", "duration_embedder"):
        theirs = getattr(sa3_files["pipe"], component).state_dict()
        for name, tensor in getattr(converted, component).state_dict().items():
            assert torch.equal(tensor.float(), theirs[name].half().float()) or name in ("rotary_pos_emb.inv_freq",
                                                                                        "freqs"), name
    header = sa3._safetensors_header(os.path.join(out, "transformer", "diffusion_pytorch_model.safetensors"))
    assert header["rotary_pos_emb.inv_freq"]["dtype"] == "F32" and header["proj_in.weight"]["dtype"] == "F16"
    assert torch.equal(converted.transformer.rotary_pos_emb.inv_freq, sa3_files["pipe"].transformer.rotary_pos_emb.inv_freq)
    assert any(n.startswith("assumed") and "strides [16]" in n for n in notes)


# --------------------------------------------------------------------------------------------- refusals
def test_refuses_a_pickle_file(sa3_files, tmp_path):
    pickle = tmp_path / "sa3.ckpt"
    torch.save(sa3_files["state"], str(pickle))
    with pytest.raises(ValueError, match=r'convert-sa3: CHECKPOINT ".*sa3\.ckpt" is not a \.safetensors file.*'
                                         r"[Pp]ickle"):
        sa3.convert_sa3(str(pickle), str(tmp_path / "out"), sa3_files["text_encoder"])
    renamed = tmp_path / "renamed.safetensors"
    renamed.write_bytes(pickle.read_bytes())
    with pytest.raises(ValueError, match="not a readable .safetensors file"):
        sa3.convert_sa3(str(renamed), str(tmp_path / "out"), sa3_files["text_encoder"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["renamed.safetensors", "sa3.ckpt"]


def test_refuses_a_checkpoint_that_is_not_stable_audio_3(sa3_files, tmp_path):
    other = {"model.model.transformer.layers.0.self_attn.to_qkv.weight": torch.zeros(3, 1),
             "conditioner.conditioners.seconds_start.embedder.embedding.1.weight": torch.zeros(1, 1)}
    checkpoint = _write_checkpoint(tmp_path / "sao", other)
    with pytest.raises(ValueError, match=r'CHECKPOINT ".*" is not a Stable Audio 3 checkpoint \(no '
                                         r'"model\.model\.transformer\.layers\.0\.to_scale_shift_gate".*'
                                         "Stable Audio Open"):
        sa3.convert_sa3(checkpoint, str(tmp_path / "out"), sa3_files["text_encoder"])
    assert not (tmp_path / "out").exists() and _no_leftovers(tmp_path)


def test_never_touches_an_existing_out_dir(sa3_files, tmp_path):
    out = tmp_path / "sa3"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    with pytest.raises(ValueError, match=r'OUT_DIR ".*sa3" exists and is not empty; it is never overwritten'):
        sa3.convert_sa3(sa3_files["checkpoint"], str(out), sa3_files["text_encoder"])
    assert [p.name for p in out.iterdir()] == ["mine.txt"] and (out / "mine.txt").read_text() == "keep me"
    assert _no_leftovers(tmp_path)


def test_the_tiny_checkpoint_is_same_s(sa3_files):
    """The fixture is a Stable Audio 3 Small in miniature: the converter must meet SAME-S's two differences."""
    ae = sa3_files["config"]["model"]["pretransform"]["config"]
    assert ae["decoder"]["config"]["sliding_window"] is None and ae["decoder"]["config"]["chunk_midpoint_shift"]
    assert sa3_files["state"][f"{AE}decoder.layers.3.mapping.weight_v"].shape[-1] == 3
    assert type(sa3_files["pipe"].vae).__name__ == "AutoencoderSAMEChunked"


@pytest.mark.parametrize("variant", ["kernel-3 mapping with a sliding window", "chunks differ", "asymmetric window",
                                     "several output tokens"])
def test_refuses_an_autoencoder_it_cannot_hold_exactly(sa3_files, tmp_path, variant):
    state, config = dict(sa3_files["state"]), json.loads(json.dumps(sa3_files["config"]))
    sides = {side: config["model"]["pretransform"]["config"][side]["config"] for side in ("encoder", "decoder")}
    if variant == "kernel-3 mapping with a sliding window":  # neither SAME-S (chunked) nor SAME-L (kernel 1)
        for ae in sides.values():
            ae.update(sliding_window=[1, 1])
        expected = r"a kernel-3 mapping convolution with sliding-window attention is neither SAME-S nor SAME-L"
    elif variant == "chunks differ":
        sides["decoder"]["chunk_size"] = 64
        expected = r"the encoder and decoder attend in different chunks"
    elif variant == "asymmetric window":
        sides["encoder"]["sliding_window"] = [1, 2]
        sides["decoder"]["sliding_window"] = [1, 2]
        expected = r"sliding window \[1, 2\] is asymmetric"
    else:
        key = f"{AE}decoder.layers.3.new_tokens"
        state[key] = state[key].repeat(1, 16, 1)
        expected = r'"pretransform\.model\.decoder\.layers\.3\.new_tokens" holds 16 output tokens'
    checkpoint = _write_checkpoint(tmp_path / "odd", state, config)
    with pytest.raises(ValueError, match=r"convert-sa3: .*" + expected + r".*nothing was written"):
        sa3.convert_sa3(checkpoint, str(tmp_path / "out"), sa3_files["text_encoder"])
    assert not (tmp_path / "out").exists() and _no_leftovers(tmp_path)


def test_missing_and_unknown_tensors_are_named(sa3_files, tmp_path):
    gone = f"{DIT}transformer.layers.1.cross_attn.to_kv.weight"
    state = {k: v for k, v in sa3_files["state"].items() if k != gone}
    checkpoint = _write_checkpoint(tmp_path / "missing", state, sa3_files["config"])
    with pytest.raises(ValueError, match=r"StableAudio3DiTModel \(transformer\): missing from the checkpoint: "
                                         + re.escape(f'"{gone}"')):
        sa3.convert_sa3(checkpoint, str(tmp_path / "out"), sa3_files["text_encoder"])
    extra = {**sa3_files["state"], "model_ema.model.transformer.layers.0.pre_norm.gamma": torch.ones(2)}
    checkpoint = _write_checkpoint(tmp_path / "extra", extra, sa3_files["config"])
    with pytest.raises(ValueError, match=r'1 tensors with no place .*"model_ema\.model\.transformer'):
        sa3.convert_sa3(checkpoint, str(tmp_path / "out"), sa3_files["text_encoder"])
    wrong = {**sa3_files["config"], "model": {**sa3_files["config"]["model"], "diffusion": {
        **sa3_files["config"]["model"]["diffusion"], "config": {"embed_dim": 1536}}}}
    checkpoint = _write_checkpoint(tmp_path / "wrong_config", sa3_files["state"], wrong)
    with pytest.raises(ValueError, match="embed_dim 1536 in the file, 16 in the weights"):
        sa3.convert_sa3(checkpoint, str(tmp_path / "out"), sa3_files["text_encoder"])
    assert not (tmp_path / "out").exists() and _no_leftovers(tmp_path)


def test_text_encoder_folder_errors(sa3_files, tmp_path):
    with pytest.raises(ValueError, match=r'--text-encoder ".*nowhere" is not a transformers model folder.*'
                                         "t5gemma-b-b-ul2"):
        sa3.convert_sa3(sa3_files["checkpoint"], str(tmp_path / "out"), str(tmp_path / "nowhere"))
    t5 = tmp_path / "t5"
    t5.mkdir()
    (t5 / "config.json").write_text(json.dumps({"model_type": "t5"}))
    with pytest.raises(ValueError, match=r"holds a 't5' model, not T5Gemma"):
        sa3.convert_sa3(sa3_files["checkpoint"], str(tmp_path / "out"), str(t5))
    assert not (tmp_path / "out").exists() and _no_leftovers(tmp_path)


def test_optional_parts_of_a_checkpoint(sa3_files, tmp_path):
    """No inpainting embedder: filled with zeros (text-to-audio unchanged). Text-encoder weights inside the
    checkpoint (conditioner.conditioners.prompt.model.*): they replace the folder's."""

    state = {k: v for k, v in sa3_files["state"].items() if ".to_local_embed." not in k}
    encoder = {k: v + 1 for k, v in sa3_files["pipe"].text_encoder.state_dict().items()}
    state.update({f"conditioner.conditioners.prompt.model.{k}": v.clone() for k, v in encoder.items()})
    checkpoint = _write_checkpoint(tmp_path / "parts", state, sa3_files["config"])
    notes = []
    out = sa3.convert_sa3(checkpoint, str(tmp_path / "sa3"), sa3_files["text_encoder"], dtype="keep", notes=notes)
    converted = load_pipeline(out)
    local = {k: v for k, v in converted.transformer.state_dict().items() if ".to_local_embed." in k}
    assert local and all(not v.any() for v in local.values())
    assert all(torch.equal(v, encoder[k]) for k, v in converted.text_encoder.state_dict().items())
    assert any("no inpainting embedder" in n for n in notes) and any("taken from the checkpoint" in n for n in notes)


def test_a_failed_write_leaves_nothing_behind(sa3_files, tmp_path, monkeypatch):
    from diffusers import StableAudio3Pipeline

    def fail_halfway(self, folder, **kwargs):
        os.makedirs(os.path.join(folder, "vae"))
        raise OSError("disk full")

    monkeypatch.setattr(StableAudio3Pipeline, "save_pretrained", fail_halfway)
    with pytest.raises(OSError, match="disk full"):
        sa3.convert_sa3(sa3_files["checkpoint"], str(tmp_path / "sa3"), sa3_files["text_encoder"])
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------- command line
def test_cli_convert_sa3(sa3_files, tmp_path, capsys):
    out = tmp_path / "stable-audio-3-tiny"
    assert cli.main(["convert-sa3", sa3_files["checkpoint"], str(out), "--text-encoder",
                     sa3_files["text_encoder"], "--dtype", "bf16"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out} (bf16)" in printed and "StableAudio3DiTModel" in printed and "BF16" in printed
    assert "ComfyUI/models/diffusers/" in printed and "Load Stable Audio Model" in printed
    assert json.loads((out / "model_index.json").read_text())["_class_name"] == "StableAudio3Pipeline"
    assert cli.main(["convert-sa3", sa3_files["checkpoint"], str(out), "--text-encoder",
                     sa3_files["text_encoder"]]) == 1
    assert "error: convert-sa3: OUT_DIR" in capsys.readouterr().err
    with pytest.raises(SystemExit) as bad:
        cli.main(["convert-sa3", sa3_files["checkpoint"], str(tmp_path / "x")])  # no --text-encoder
    assert bad.value.code == 2
