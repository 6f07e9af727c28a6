"""Convert an official Stable Audio 3 checkpoint into a diffusers ``StableAudio3Pipeline`` folder.

Stability ships Stable Audio 3 as one stable-audio-tools ``.safetensors`` file (the file ComfyUI's native nodes load),
usually with a ``model_config.json`` beside it; the T5Gemma text encoder (google/t5gemma-b-b-ul2) is a separate
transformers folder. No diffusers-format folder is published, so this module maps the keys and writes one. The layout
follows diffusers' ``scripts/convert_stable_audio_3_to_diffusers.py``, checked against the installed model classes:

    checkpoint (stable-audio-tools)                          diffusers component
    model.model.*                                            transformer        StableAudio3DiTModel
    conditioner.conditioners.prompt.padding_embedding        transformer.prompt_padding_embedding
    conditioner.conditioners.seconds_total.embedder.*        duration_embedder  StableAudio3DurationEmbedder
    pretransform.model.*                                     vae                AutoencoderSAME
    (the --text-encoder folder)                              text_encoder       T5GemmaEncoderModel, + tokenizer

Strict by design: every checkpoint tensor is used, or skipped for a stated reason; every model tensor is filled, with
the shape it needs; anything else is an error naming the tensors, and nothing is written. An autoencoder diffusers
cannot hold exactly (the SAME-S of Stable Audio 3 Small: kernel-3 mapping convolution, chunked attention) is refused
rather than converted into something that would sound wrong. Top level: stdlib only.
"""
from __future__ import annotations

import importlib
import json
import logging
import math
import os
import re
import shutil
import struct
import uuid
from contextlib import contextmanager

log = logging.getLogger(__name__)

COMMAND = "convert-sa3"
DTYPES = ("fp16", "bf16", "fp32", "keep")
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pickle")

# Official (stable-audio-tools) prefixes.
DIT = "model.model."
AE = "pretransform.model."
PADDING_KEY = "conditioner.conditioners.prompt.padding_embedding"
PROMPT_MODEL = "conditioner.conditioners.prompt.model."
SECONDS = "conditioner.conditioners.seconds_total.embedder.embedding.1."  # [0] is the parameter-free Fourier features
SA3_MARKERS = (DIT + "transformer.layers.0.to_scale_shift_gate", AE + "encoder.layers.0.new_tokens")

# Renames, official -> diffusers, applied to the first matching prefix.
_FF = (("ff.ff.0.proj.", "ff.proj_in."), ("ff.ff.2.", "ff.proj_out."))  # GLU in-projection, out-projection
_DIT_TOP = (("transformer.project_in.", "proj_in."), ("transformer.project_out.", "proj_out."), ("transformer.", ""))
_SAME_LAYER = (("pre_norm.", "norm_attn."), ("self_attn.", "attn."), ("ff_norm.", "norm_ff."), *_FF)
_BOTTLENECK = {"scaling_factor": "scale", "bias": "bias", "running_std": "running_std"}
_KEEP_FP32 = {"transformer": ("rotary_pos_emb.inv_freq",), "duration_embedder": ("freqs",)}  # positions, durations
_TORCH_DTYPES = {"fp16": "float16", "bf16": "bfloat16", "fp32": "float32"}


def _fail(message: str) -> ValueError:
    return ValueError(f"{COMMAND}: {message}")


def _names(names, limit: int = 8) -> str:
    names = list(names)
    shown = ", ".join(f'"{n}"' for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _rename(name: str, renames) -> str:
    for old, new in renames:
        if name.startswith(old):
            return new + name[len(old):]
    return name


def _get(tree, *path):
    """``tree[path[0]][path[1]]...``, or ``None`` where a level is missing (model_config.json sections are optional)."""
    for key in path:
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree


def _whole(value: float):
    return int(value) if float(value).is_integer() else float(value)


def reference_qkv_to_diffusers(weight):
    """Reorder a fused differential self-attention projection: stable-audio-tools chunks its output rows as
    ``[q | k | v | q_diff | k_diff]`` (``Attention.forward``), diffusers as ``[q1 | q2 | k1 | k2 | v]``
    (``StableAudio3SelfAttnProcessor`` and ``SAMEAttnProcessor``). Cross-attention needs nothing: both sides use
    ``to_q = [q | q_diff]`` and ``to_kv = [k | k_diff | v]``."""
    import torch

    q, k, v, q_diff, k_diff = weight.chunk(5, dim=0)
    return torch.cat([q, q_diff, k, k_diff, v], dim=0)


# --------------------------------------------------------------------------------------------- the checkpoint
class _Checkpoint:
    """The checkpoint's tensor names and shapes (read from the header), its tensors once loaded, and which names the
    conversion used or skipped (with the reason)."""

    def __init__(self, path: str):
        self.path = path
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.dtypes: dict[str, str] = {}
        self.tensors: dict = {}
        self.used: set[str] = set()
        self.skipped: dict[str, list[str]] = {}

    def read_header(self) -> None:
        import safetensors
        from safetensors import safe_open

        bad_file = getattr(safetensors, "SafetensorError", OSError)
        try:
            with safe_open(self.path, framework="pt") as f:
                for name in f.keys():
                    part = f.get_slice(name)
                    self.shapes[name] = tuple(part.get_shape())
                    self.dtypes[name] = part.get_dtype()
        except (bad_file, OSError) as err:
            raise _fail(f'CHECKPOINT "{self.path}" is not a readable .safetensors file ({str(err).splitlines()[0]}). '
                        "Download the official Stable Audio 3 .safetensors file again; a renamed pickle file is "
                        "refused.") from err

    def load(self) -> None:
        from safetensors import safe_open

        with safe_open(self.path, framework="pt") as f:
            self.tensors = {name: f.get_tensor(name) for name in self.shapes}

    def shape(self, name: str) -> tuple[int, ...]:
        if name not in self.shapes:
            raise _fail(f'CHECKPOINT "{self.path}" has no tensor "{name}", which every Stable Audio 3 checkpoint has. '
                        "It is incomplete or of another model; nothing was written.")
        return self.shapes[name]

    def under(self, prefix: str) -> list[str]:
        return sorted(n for n in self.shapes if n.startswith(prefix))

    def skip(self, name: str, reason: str) -> None:
        self.skipped.setdefault(reason, []).append(name)

    def unaccounted(self) -> list[str]:
        done = self.used.union(*self.skipped.values())
        return sorted(set(self.shapes) - done)


def _layers(shapes, prefix: str) -> dict[int, list[str]]:
    """The numbered modules under ``prefix`` (e.g. ``model.model.transformer.layers.``): index -> local names."""
    found: dict[int, list[str]] = {}
    for name in shapes:
        if name.startswith(prefix):
            head, _, rest = name[len(prefix):].partition(".")
            if head.isdigit():
                found.setdefault(int(head), []).append(rest)
    return found


def _check_is_sa3(ck: _Checkpoint) -> None:
    missing = [m for m in SA3_MARKERS if m not in ck.shapes]
    if not missing:
        return
    if any(n.startswith("conditioner.conditioners.seconds_start.") for n in ck.shapes):
        hint = (" It looks like Stable Audio Open (seconds_start conditioning); that model needs no conversion: use "
                "its diffusers folder (stabilityai/stable-audio-open-1.0) directly.")
    elif not any(n.startswith(DIT) for n in ck.shapes):
        hint = f' It has no "{DIT}*" tensors at all, so it is not a stable-audio-tools diffusion checkpoint.'
    else:
        hint = ""
    raise _fail(f'CHECKPOINT "{ck.path}" is not a Stable Audio 3 checkpoint (no {_names(missing)} tensor).{hint} '
                "Pass the official Stable Audio 3 .safetensors file (the one ComfyUI's native nodes load).")


# --------------------------------------------------------------------------------------------- configs
def _agree(where: str, given: dict, inferred: dict, names) -> None:
    wrong = [f"{n} {given[n]!r} in the file, {inferred[n]!r} in the weights" for n in names
             if n in given and given[n] != inferred[n]]
    if wrong:
        raise _fail(f"model_config.json ({where}) does not match the checkpoint: {'; '.join(wrong)}. Pass the "
                    "model_config.json that came with this checkpoint (--model-config), or move a stray one away.")


def _dit_config(ck: _Checkpoint, given: dict) -> dict:
    """StableAudio3DiTModel arguments: all of them show in the weights; model_config.json only cross-checks."""
    embed_dim, timestep_dim = ck.shape(DIT + "to_timestep_embed.0.weight")
    blocks = _layers(ck.shapes, DIT + "transformer.layers.")
    if sorted(blocks) != list(range(len(blocks))):
        raise _fail(f'CHECKPOINT "{ck.path}": the DiT layers are numbered {sorted(blocks)}, not 0..N-1. It is '
                    "incomplete; nothing was written.")
    first = DIT + "transformer.layers.0."
    dim_heads = ck.shape(first + "self_attn.q_norm.gamma")[0]
    qkv_rows = ck.shape(first + "self_attn.to_qkv.weight")[0]
    if qkv_rows not in (3 * embed_dim, 5 * embed_dim) or embed_dim % dim_heads:
        raise _fail(f'CHECKPOINT "{ck.path}": "{first}self_attn.to_qkv.weight" has {qkv_rows} rows for width '
                    f"{embed_dim} and head size {dim_heads}; diffusers' StableAudio3DiTModel cannot hold that.")
    io_channels = ck.shape(DIT + "preprocess_conv.weight")[0]
    local = ck.shapes.get(first + "to_local_embed.0.weight")
    memory = ck.shapes.get(DIT + "transformer.memory_tokens")
    config = {
        "io_channels": io_channels,
        "patch_size": ck.shape(DIT + "transformer.project_in.weight")[1] // io_channels,
        "embed_dim": embed_dim,
        "depth": len(blocks),
        "num_heads": embed_dim // dim_heads,
        "cond_token_dim": ck.shape(DIT + "to_cond_embed.0.weight")[1],
        "global_cond_dim": ck.shape(DIT + "to_global_embed.0.weight")[1],
        "local_add_cond_dim": local[1] if local else int(given.get("local_add_cond_dim", io_channels + 1)),
        "timestep_features_dim": timestep_dim,
        "ff_mult": float(ck.shape(first + "ff.ff.0.proj.weight")[0] / (2 * embed_dim)),
        "num_memory_tokens": memory[0] if memory else 0,
        "use_differential_attention": qkv_rows == 5 * embed_dim,
    }
    _agree("model.diffusion.config", given, config, ("io_channels", "patch_size", "embed_dim", "depth", "num_heads",
                                                     "cond_token_dim", "global_cond_dim", "local_add_cond_dim",
                                                     "num_memory_tokens"))
    differential = _get(given, "attn_kwargs", "differential")
    if differential is not None:
        _agree("model.diffusion.config.attn_kwargs", {"differential": bool(differential)},
               {"differential": config["use_differential_attention"]}, ("differential",))
    return config


def _inexact_reasons(ck: _Checkpoint, prefixes: list[str], enc_cfg: dict, dec_cfg: dict) -> list[str]:
    """Why this autoencoder cannot be held exactly by ``AutoencoderSAME`` (band attention, SAME-L) or
    ``AutoencoderSAMEChunked`` (chunked attention, kernel-3 mappings: SAME-S); empty when one of them can."""
    reasons = []
    for prefix in prefixes:
        kernel = ck.shapes.get(prefix + "mapping.weight_v", (1,))[-1]
        if kernel not in (1, 3):
            reasons.append(f'"{prefix}mapping" is a kernel-{kernel} convolution where SAME has kernel 1 or 3')
        tokens = ck.shape(prefix + "new_tokens")[1]
        if tokens != 1:
            reasons.append(f'"{prefix}new_tokens" holds {tokens} output tokens per segment where SAME holds 1 '
                           "(variable stride)")
    windows = [cfg.get("sliding_window") for cfg in (enc_cfg, dec_cfg) if cfg]
    if len({w is None for w in windows}) > 1:
        reasons.append("the encoder and decoder attend differently (one in chunks, one over a sliding window)")
    chunking = {(cfg.get("chunk_size", 128), bool(cfg.get("chunk_midpoint_shift")))
                for cfg in (enc_cfg, dec_cfg) if cfg and cfg.get("sliding_window", 0) is None}
    if len(chunking) > 1:
        reasons.append(f"the encoder and decoder attend in different chunks ({sorted(chunking)})")
    for side, cfg in (("encoder", enc_cfg), ("decoder", dec_cfg)):
        window = cfg.get("sliding_window") if cfg else None
        if isinstance(window, (list, tuple)) and len(set(window)) > 1:
            reasons.append(f"the {side} sliding window {list(window)} is asymmetric where AutoencoderSAME's is "
                           "symmetric")
    noise = ck.shapes.get(AE + "bottleneck.noise_scaling_factor")
    if noise and math.prod(noise):
        reasons.append(f"the bottleneck adds {noise[1]} noise channels, which SAME has no place for")
    return sorted(set(reasons), key=reasons.index)


def _vae_blocks(ck: _Checkpoint) -> tuple[int, list[str], list[str]]:
    """The autoencoder's number of resampling levels and its encoder and decoder block prefixes, by level."""
    enc = _layers(ck.shapes, AE + "encoder.layers.")
    dec = _layers(ck.shapes, AE + "decoder.layers.")
    levels = 0
    while "new_tokens" in enc.get(levels, ()):
        levels += 1
    # stable-audio-tools: encoder [resampling blocks..., Transpose, Linear, Transpose],
    #                     decoder [Transpose, Linear, Transpose, resampling blocks (deepest level first)...]
    if not levels or set(enc) != {*range(levels), levels + 1} or set(dec) != {1, *range(3, 3 + levels)}:
        raise _fail(f'CHECKPOINT "{ck.path}": the autoencoder layers (encoder {sorted(enc)}, decoder {sorted(dec)}) '
                    "are not the SAME layout of Stable Audio 3 (encoder: N resampling blocks then a linear at N+1; "
                    "decoder: a linear at 1, then N resampling blocks from 3). Nothing was written.")
    enc_blocks = [f"{AE}encoder.layers.{i}." for i in range(levels)]
    dec_blocks = [f"{AE}decoder.layers.{3 + levels - 1 - i}." for i in range(levels)]  # by level, like enc_blocks
    return levels, enc_blocks, dec_blocks


def _refuse_inexact(ck: _Checkpoint, blocks: list[str], enc_cfg: dict, dec_cfg: dict) -> None:
    reasons = _inexact_reasons(ck, blocks, enc_cfg, dec_cfg)
    if reasons:
        raise _fail(f'CHECKPOINT "{ck.path}" has an autoencoder this converter cannot represent exactly: '
                    f"{'; '.join(reasons)}. Converting it anyway would produce wrong audio, so it was refused and "
                    "nothing was written. Convert an official Stable Audio 3 Small or Medium checkpoint with the "
                    "model_config.json that came with it.")


def _vae_shapes(ck: _Checkpoint, enc_blocks: list[str], dec_blocks: list[str]) -> dict:
    """What the autoencoder weights show: widths and transformer depths by level, the first layer's prefix, its
    fused q/k/v rows and the patched input channels."""
    widths = [ck.shape(p + "new_tokens")[-1] for p in enc_blocks]
    depths = [len(_layers(ck.shapes, p + "transformers.")) for p in enc_blocks]
    if depths != [len(_layers(ck.shapes, p + "transformers.")) for p in dec_blocks] or not all(depths):
        raise _fail(f'CHECKPOINT "{ck.path}": the autoencoder encoder and decoder have different transformer depths; '
                    "diffusers' AutoencoderSAME uses one list for both, so it cannot be converted exactly.")
    layer0 = enc_blocks[0] + "transformers.0."
    qkv_rows = ck.shape(layer0 + "self_attn.to_qkv.weight")[0]
    if qkv_rows not in (3 * widths[0], 5 * widths[0]):
        raise _fail(f'CHECKPOINT "{ck.path}": "{layer0}self_attn.to_qkv.weight" has {qkv_rows} rows for width '
                    f"{widths[0]}; diffusers' AutoencoderSAME cannot hold that.")
    mapping = ck.shapes.get(enc_blocks[0] + "mapping.weight_v")
    patched_in = mapping[1] if mapping else widths[0]
    return {"widths": widths, "depths": depths, "layer0": layer0, "qkv_rows": qkv_rows, "patched_in": patched_in}


def _setting(assumed: list[str], name: str, value, default):
    """``value``, or ``default`` noted in ``assumed`` when model_config.json does not give it."""
    if value is None:
        assumed.append(f"autoencoder {name} {default}")
        return default
    return value


def _vae_settings(ae_cfg: dict, enc_cfg: dict, dec_cfg: dict, levels: int, same_l: bool, assumed: list[str]) -> dict:
    """The settings the weights do not show: strides, sinusoidal layers, audio channels."""
    strides = _setting(assumed, "strides", enc_cfg.get("strides"), [16] * levels)
    enc_sin = (enc_cfg.get("sinusoidal_blocks") or [0] * levels) if enc_cfg else None
    dec_sin = (dec_cfg.get("sinusoidal_blocks") or [0] * levels) if dec_cfg else None
    enc_sin = _setting(assumed, "encoder sinusoidal_blocks", enc_sin, [0] * levels)
    dec_sin = _setting(assumed, "decoder sinusoidal_blocks", dec_sin, [8] if same_l else [0] * levels)
    audio_channels = _setting(assumed, "audio channels",
                              ae_cfg.get("io_channels") or _get(ae_cfg, "pretransform", "config", "channels"), 2)
    return {"strides": strides, "enc_sin": enc_sin, "dec_sin": dec_sin, "audio_channels": audio_channels}


def _attention(enc_cfg: dict, same_s: bool, assumed: list[str]) -> dict:
    """How the autoencoder attends, which the weights do not show: over a band of ``sliding_window`` latents each
    side (SAME-L) or in chunks (SAME-S: ``sliding_window`` null, ``chunk_size`` frames, the midpoint shift). Without
    model_config.json: the published setting of the geometry."""
    if enc_cfg:
        window = enc_cfg.get("sliding_window")
        if window is None:  # stable-audio-tools' default: chunks of 128 frames, no shift
            return {"chunk_size": int(enc_cfg.get("chunk_size", 128)),
                    "chunk_midpoint_shift": bool(enc_cfg.get("chunk_midpoint_shift", False))}
        return {"sliding_window": window[0] if isinstance(window, (list, tuple)) else window}
    if same_s:
        assumed.append("autoencoder attention in chunks of 32 frames with the midpoint shift (published SAME-S)")
        return {"chunk_size": 32, "chunk_midpoint_shift": True}
    assumed.append("autoencoder sliding_window 1")
    return {"sliding_window": 1}


def _mapping_kernels(ck: _Checkpoint, enc_blocks: list[str], dec_blocks: list[str]) -> dict:
    """Whether each side maps channels with a kernel-3 convolution (the weights show it: SAME-S's decoder does)."""
    def wide(blocks):
        return any(ck.shapes.get(p + "mapping.weight_v", (1,))[-1] == 3 for p in blocks)

    return {"encoder_conv_mapping": wide(enc_blocks), "decoder_conv_mapping": wide(dec_blocks)}


def _patch_size(ae_cfg: dict, strides, patched_in: int, audio_channels: int) -> int:
    patch_size = _get(ae_cfg, "pretransform", "config", "patch_size")
    if patch_size is None and ae_cfg.get("downsampling_ratio"):
        patch_size = ae_cfg["downsampling_ratio"] // math.prod(strides)
    patch_size = patch_size or patched_in // audio_channels
    if audio_channels * patch_size != patched_in:
        raise _fail(f"model_config.json: {audio_channels} audio channels x patch size {patch_size} is not the "
                    f"{patched_in} input channels of the checkpoint's autoencoder. Pass the model_config.json that "
                    "came with this checkpoint (--model-config).")
    return patch_size


def _vae_channels(enc_cfg: dict, widths: list[int]) -> tuple[int, list[int]]:
    """The encoder's base channels and per-level multipliers (from model_config.json, checked, else the widths)."""
    if "channels" in enc_cfg and "c_mults" in enc_cfg:
        channels, c_mults = enc_cfg["channels"], list(enc_cfg["c_mults"])
        _agree("pretransform encoder", {"widths": [c * channels for c in c_mults]}, {"widths": widths}, ("widths",))
    else:  # published SAME: one level of 6 x channels (128 for SAME-S, 256 for SAME-L)
        channels = widths[0] // 6 if all(w % 6 == 0 and w % (widths[0] // 6) == 0 for w in widths) else \
            math.gcd(*widths)
        c_mults = [w // channels for w in widths]
    return channels, c_mults


def _vae_config(ck: _Checkpoint, config: dict, assumed: list[str]) -> tuple[dict, int]:
    """The autoencoder's class name and arguments (``"class"`` in the dict), and its number of resampling levels.
    Strides, the attention pattern and the sinusoidal layers do not show in the weights: they come from
    model_config.json, else the published SAME-S / SAME-L values."""
    ae_cfg = _get(config, "model", "pretransform", "config") or {}
    enc_cfg = _get(ae_cfg, "encoder", "config") or {}
    dec_cfg = _get(ae_cfg, "decoder", "config") or {}
    levels, enc_blocks, dec_blocks = _vae_blocks(ck)
    _refuse_inexact(ck, enc_blocks + dec_blocks, enc_cfg, dec_cfg)
    shapes = _vae_shapes(ck, enc_blocks, dec_blocks)
    widths, layer0, qkv_rows = shapes["widths"], shapes["layer0"], shapes["qkv_rows"]
    same_l = widths == [1536] and shapes["depths"] == [12]  # published SAME-L: its decoder ends in 8 sinusoidal layers
    settings = _vae_settings(ae_cfg, enc_cfg, dec_cfg, levels, same_l, assumed)
    strides, audio_channels = settings["strides"], settings["audio_channels"]
    patch_size = _patch_size(ae_cfg, strides, shapes["patched_in"], audio_channels)
    channels, c_mults = _vae_channels(enc_cfg, widths)
    sample_rate = _setting(assumed, "sampling_rate", config.get("sample_rate"), 44100)
    kernels = _mapping_kernels(ck, enc_blocks, dec_blocks)
    # published SAME-S: 768 wide, 6 layers; only SAME-S maps with a kernel-3 convolution
    same_s = (widths == [768] and shapes["depths"] == [6]) or any(kernels.values())
    attention = _attention(enc_cfg, same_s, assumed)
    chunked = "chunk_size" in attention
    if any(kernels.values()) and not chunked:
        raise _fail(f'CHECKPOINT "{ck.path}": a kernel-3 mapping convolution with sliding-window attention is '
                    "neither SAME-S nor SAME-L, so it cannot be represented exactly; nothing was written. Pass the "
                    "model_config.json that came with the checkpoint (--model-config).")
    if chunked and any(attention["chunk_size"] % s for s in strides):
        raise _fail(f"model_config.json: the autoencoder's chunk_size {attention['chunk_size']} is not a multiple "
                    f"of its strides {list(strides)}; stable-audio-tools could not run it either.")
    vae = {
        "class": "AutoencoderSAMEChunked" if chunked else "AutoencoderSAME",
        "audio_channels": audio_channels,
        "patch_size": patch_size,
        "encoder_channels": channels,
        "encoder_c_mults": c_mults,
        "encoder_strides": list(strides),
        "encoder_transformer_depths": shapes["depths"],
        "latent_dim": ck.shape(AE + "bottleneck.scaling_factor")[1],
        "use_differential_attention": qkv_rows == 5 * widths[0],
        "dim_heads": enc_cfg.get("dim_heads", ck.shape(layer0 + "self_attn.q_norm.gamma")[0]),
        "ff_mult": _whole(ck.shape(layer0 + "ff.ff.0.proj.weight")[0] / (2 * widths[0])),
        "sliding_window": attention.get("sliding_window", 1),
        "encoder_sinusoidal_blocks": list(settings["enc_sin"]),
        "decoder_sinusoidal_blocks": list(settings["dec_sin"]),
        "sampling_rate": sample_rate,
    }
    if chunked:
        vae.update(chunk_size=attention["chunk_size"], chunk_midpoint_shift=attention["chunk_midpoint_shift"],
                   **kernels)
    return vae, levels


def _duration_config(ck: _Checkpoint, config: dict, assumed: list[str]) -> dict:
    output_dim, fourier_dim = ck.shape(SECONDS + "weight")
    seconds = next((c.get("config") or {} for c in _get(config, "model", "conditioning", "configs") or []
                    if isinstance(c, dict) and c.get("id") == "seconds_total"), {})
    if "min_val" not in seconds or "max_val" not in seconds:
        assumed.append("seconds_total range 0..384 s")
    return {"output_dim": output_dim, "fourier_dim": fourier_dim, "min_val": float(seconds.get("min_val", 0.0)),
            "max_val": float(seconds.get("max_val", 384.0))}


def _stochastic_sampling(config: dict, assumed: list[str]) -> bool:
    """Distilled checkpoints (``rf_denoiser``) sample with 8 ping-pong steps; base ones (``rectified_flow``) with
    deterministic Euler."""
    objective = _get(config, "model", "diffusion", "diffusion_objective")
    if objective is None:
        assumed.append("a distilled model (8-step ping-pong sampling)")
        return True
    if objective not in ("rf_denoiser", "rectified_flow"):
        raise _fail(f'model_config.json: diffusion_objective "{objective}" is neither "rf_denoiser" (distilled) nor '
                    '"rectified_flow" (base); diffusers\' StableAudio3Pipeline samples only those.')
    return objective == "rf_denoiser"


# --------------------------------------------------------------------------------------------- key maps
# Each map is diffusers name -> (checkpoint name, reorder fused qkv rows?).
def _map_dit(ck: _Checkpoint, differential: bool) -> dict:
    out = {}
    for name in ck.under(DIT):
        local = name[len(DIT):]
        block = re.fullmatch(r"transformer\.layers\.(\d+)\.(.+)", local)
        if block:
            rest = _rename(block.group(2), _FF)
            out[f"transformer_blocks.{block.group(1)}.{rest}"] = (name, differential and rest == "self_attn.to_qkv.weight")
        else:
            out[_rename(local, _DIT_TOP)] = (name, False)
    if PADDING_KEY in ck.shapes:  # the learned padding token lives on the conditioner upstream, on the DiT here
        out["prompt_padding_embedding"] = (PADDING_KEY, False)
    return out


def _map_same_block(ck: _Checkpoint, src: str, dst: str, differential: bool, out: dict, rope: list) -> None:
    for name in ck.under(src):
        local = name[len(src):]
        layer = re.fullmatch(r"transformers\.(\d+)\.(.+)", local)
        if not layer:  # mapping.{weight_g,weight_v,bias} (both sides weight-normed), new_tokens
            out[dst + local] = (name, False)
        elif layer.group(2) == "rope.inv_freq":  # a non-persistent buffer in diffusers: compared, then skipped
            rope.append((name, f"{dst}transformers.{layer.group(1)}.attn.rope.inv_freq"))
        else:
            rest = _rename(layer.group(2), _SAME_LAYER)
            out[f"{dst}transformers.{layer.group(1)}.{rest}"] = (name, differential and rest == "attn.to_qkv.weight")


def _map_vae(ck: _Checkpoint, levels: int, differential: bool, rope: list) -> dict:
    out: dict = {}
    for i in range(levels):  # diffusers' decoder.blocks run deepest level first, as the checkpoint's layers 3.. do
        _map_same_block(ck, f"{AE}encoder.layers.{i}.", f"encoder.blocks.{i}.", differential, out, rope)
        _map_same_block(ck, f"{AE}decoder.layers.{3 + i}.", f"decoder.blocks.{i}.", differential, out, rope)
    for src, dst in ((f"{AE}encoder.layers.{levels + 1}.", "encoder.proj."), (f"{AE}decoder.layers.1.", "decoder.proj.")):
        for name in ck.under(src):
            out[dst + name[len(src):]] = (name, False)
    for name in ck.under(AE + "bottleneck."):
        local = name[len(AE + "bottleneck."):]
        if local in _BOTTLENECK:
            out["bottleneck." + _BOTTLENECK[local]] = (name, False)
        elif local == "noise_scaling_factor":  # empty unless noise augmentation, refused in _same_s_reasons
            ck.skip(name, "the empty noise_scaling_factor (no noise augmentation)")
    return out


def _map_duration(ck: _Checkpoint) -> dict:
    return {"linear." + name[len(SECONDS):]: (name, False) for name in ck.under(SECONDS)}


def official_name(component: str, name: str, levels: int = 1) -> str:
    """The checkpoint name of a diffusers tensor name (for messages)."""
    if component == "transformer":
        if name == "prompt_padding_embedding":
            return PADDING_KEY
        block = re.fullmatch(r"transformer_blocks\.(\d+)\.(.+)", name)
        if block:
            return f"{DIT}transformer.layers.{block.group(1)}.{_rename(block.group(2), [(n, o) for o, n in _FF])}"
        if name.startswith(("proj_in.", "proj_out.")):
            return DIT + "transformer.project_" + name[len("proj_"):]
        if name.startswith(("memory_tokens", "rotary_pos_emb.", "global_cond_embedder.")):
            return DIT + "transformer." + name
        return DIT + name
    if component == "vae":
        block = re.fullmatch(r"(encoder|decoder)\.blocks\.(\d+)\.(.+)", name)
        if block:
            side, i, rest = block.groups()
            index = int(i) + (3 if side == "decoder" else 0)
            return f"{AE}{side}.layers.{index}.{_rename(rest, [(n, o) for o, n in _SAME_LAYER])}"
        if name.startswith("encoder.proj."):
            return f"{AE}encoder.layers.{levels + 1}.{name[len('encoder.proj.'):]}"
        if name.startswith("decoder.proj."):
            return f"{AE}decoder.layers.1.{name[len('decoder.proj.'):]}"
        if name.startswith("bottleneck."):
            local = name[len("bottleneck."):]
            return AE + "bottleneck." + {v: k for k, v in _BOTTLENECK.items()}.get(local, local)
    if component == "duration_embedder" and name.startswith("linear."):
        return SECONDS + name[len("linear."):]
    if component == "text_encoder":
        return PROMPT_MODEL + name
    return name


# --------------------------------------------------------------------------------------------- loading
def _load_strict(model, mapping: dict, ck: _Checkpoint, component: str, *, own=(), levels: int = 1) -> None:
    """Fill ``model`` from the checkpoint through ``mapping``: every model tensor filled (``own``: names the model keeps
    as built), none left over, shapes equal; else an error naming the tensors. Tensors are assigned, not copied."""
    expected = model.state_dict()
    missing = [official_name(component, k, levels) for k in expected if k not in mapping and k not in own]
    unexpected = [src for k, (src, _) in mapping.items() if k not in expected]
    wrong = [f'"{src}" is {list(ck.shapes[src])}, diffusers needs {list(expected[k].shape)}'
             for k, (src, _) in mapping.items() if k in expected and tuple(expected[k].shape) != ck.shapes[src]]
    problems = ([f"missing from the checkpoint: {_names(missing)}"] if missing else []) + \
        ([f"tensors with no place in {type(model).__name__}: {_names(unexpected)}"] if unexpected else []) + \
        ([f"shapes differ: {'; '.join(wrong[:6])}" + (f" and {len(wrong) - 6} more" if len(wrong) > 6 else "")]
         if wrong else [])
    if problems:
        raise _fail(f'CHECKPOINT "{ck.path}" does not fit diffusers\' {type(model).__name__} ({component}): '
                    f"{'; '.join(problems)}. Nothing was written. Use a complete, unmodified official Stable Audio 3 "
                    "checkpoint and the model_config.json that came with it.")
    state = {k: reference_qkv_to_diffusers(ck.tensors[src]) if reorder else ck.tensors[src]
             for k, (src, reorder) in mapping.items()}
    state.update({k: expected[k] for k in own})
    model.load_state_dict(state, strict=True, assign=True)
    ck.used.update(src for src, _ in mapping.values())


def _check_rope(vae, ck: _Checkpoint, rope: list) -> None:
    """The checkpoint's SAME rotary frequencies must be the ones diffusers computes (they are not stored there)."""
    import torch

    for src, path in rope:
        stored, computed = ck.tensors[src], vae.get_buffer(path)
        tolerance = 4 * torch.finfo(stored.dtype).eps if stored.is_floating_point() else 0.0
        if stored.shape != computed.shape or not torch.allclose(stored.float(), computed.to(stored.dtype).float(),
                                                                rtol=tolerance, atol=0.0):
            raise _fail(f'CHECKPOINT "{ck.path}": the rotary frequencies "{src}" differ from the ones diffusers\' '
                        "AutoencoderSAME computes (base 10000), so it cannot be represented exactly; nothing was "
                        "written.")
        ck.skip(src, "the SAME rotary frequencies (diffusers recomputes them; checked equal)")


def _load_text_encoder(folder: str, dtype: str, width: int, notes: list[str]):
    import torch
    from transformers import AutoTokenizer, T5GemmaEncoderModel

    fix = ("Pass the google/t5gemma-b-b-ul2 folder (transformers format with its tokenizer), e.g. "
           "`hf download google/t5gemma-b-b-ul2 --local-dir DIR`.")
    try:
        with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
            model_type = json.load(f).get("model_type")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as err:
        raise _fail(f'--text-encoder "{folder}": config.json is not readable ({err}). {fix}') from err
    if model_type != "t5gemma":
        raise _fail(f'--text-encoder "{folder}" holds a {model_type!r} model, not T5Gemma. {fix}')
    torch_dtype = "auto" if dtype == "keep" else getattr(torch, _TORCH_DTYPES[dtype])
    try:  # the encoder half only (is_encoder_decoder=False); never a pickle file
        model, info = T5GemmaEncoderModel.from_pretrained(folder, is_encoder_decoder=False, local_files_only=True,
                                                          use_safetensors=True, output_loading_info=True,
                                                          dtype=torch_dtype)
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise _fail(f'--text-encoder "{folder}" could not be loaded ({type(err).__name__}: '
                    f"{str(err).splitlines()[0] if str(err) else ''}). {fix}") from err
    if info.get("missing_keys") or info.get("mismatched_keys"):
        bad = list(info.get("missing_keys") or []) + [str(m[0]) for m in info.get("mismatched_keys") or []]
        raise _fail(f'--text-encoder "{folder}" lacks encoder weights ({_names(bad)}); they would be random. ' + fix)
    hidden = model.config.encoder.hidden_size
    if hidden != width:
        raise _fail(f'--text-encoder "{folder}" is {hidden} wide but the checkpoint expects {width} '
                    "(google/t5gemma-b-b-ul2 is 768). " + fix)
    unused = list(info.get("unexpected_keys") or [])
    if unused:
        notes.append(f"text encoder: {len(unused)} tensors of the folder not used (the pipeline needs only the "
                     "encoder; the decoder half is left out)")
    return model, tokenizer


def _apply_checkpoint_text_encoder(ck: _Checkpoint, model, notes: list[str]) -> bool:
    """Text-encoder weights inside the checkpoint (``conditioner.conditioners.prompt.model.*``), if any, win over the
    folder's: they are what the model was trained with."""
    names = ck.under(PROMPT_MODEL)
    if not names:
        return False
    expected = model.state_dict()
    mapping = {n[len(PROMPT_MODEL):]: (n, False) for n in names}
    if not set(mapping) & set(expected):  # held as a full encoder-decoder: model.encoder.*
        mapping = {k.removeprefix("model."): v for k, v in mapping.items()}
    for key in [k for k in mapping if k.startswith("decoder.")]:
        ck.skip(mapping.pop(key)[0], "the T5Gemma decoder half (the pipeline uses only the encoder)")
    _load_strict(model, mapping, ck, "text_encoder")
    notes.append(f"text encoder: {len(mapping)} tensors taken from the checkpoint (they replace the folder's)")
    return True


def _cast(modules: dict, dtype: str, ck: _Checkpoint, sources: dict) -> None:
    """Cast to ``dtype`` ("keep": the checkpoint's own, where a component has one); position and duration frequencies
    stay float32 (in half precision long-clip positions come out wrong)."""
    import torch

    for name, module in modules.items():
        kept = {b: module.get_buffer(b).detach().float() for b in _KEEP_FP32.get(name, ())}
        if dtype != "keep":
            module.to(getattr(torch, _TORCH_DTYPES[dtype]))
        else:
            found = {ck.dtypes[s] for s in sources.get(name, ())}
            if len(found) == 1:
                module.to({"F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32}.get(found.pop(),
                                                                                                  module.dtype))
        for buffer, value in kept.items():
            owner, _, leaf = buffer.rpartition(".")
            setattr(module.get_submodule(owner) if owner else module, leaf, value)


@contextmanager
def _quiet():
    """transformers' and diffusers' load reports and progress bars off for the conversion (we check loads ourselves)."""
    import warnings

    restore = []
    for lib in ("transformers", "diffusers"):
        try:
            logging_utils = importlib.import_module(lib).utils.logging
        except (ImportError, AttributeError):
            continue
        restore.append((logging_utils, logging_utils.get_verbosity(), logging_utils.is_progress_bar_enabled()))
        logging_utils.set_verbosity_error()
        logging_utils.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*weight_norm.*deprecated.*")
            yield
    finally:
        for logging_utils, level, bars in restore:
            logging_utils.set_verbosity(level)
            if bars:
                logging_utils.enable_progress_bar()


# --------------------------------------------------------------------------------------------- paths
def _check_paths(checkpoint: str, out_dir: str, text_encoder_dir: str) -> None:
    if checkpoint.lower().endswith(PICKLE_SUFFIXES) or not checkpoint.lower().endswith(".safetensors"):
        raise _fail(f'CHECKPOINT "{checkpoint}" is not a .safetensors file. Pickle checkpoints ({", ".join(PICKLE_SUFFIXES)}) '
                    "can run code when loaded and are refused; pass the official Stable Audio 3 .safetensors file.")
    if not os.path.isfile(checkpoint):
        raise _fail(f'CHECKPOINT "{checkpoint}" does not exist. Pass the path of the official Stable Audio 3 '
                    ".safetensors file.")
    _check_out_dir(out_dir)
    if not os.path.isfile(os.path.join(text_encoder_dir, "config.json")):
        raise _fail(f'--text-encoder "{text_encoder_dir}" is not a transformers model folder (no config.json). Pass the '
                    "google/t5gemma-b-b-ul2 folder, e.g. `hf download google/t5gemma-b-b-ul2 --local-dir DIR`.")


def _check_out_dir(out_dir: str) -> None:
    if os.path.lexists(out_dir):
        if not os.path.isdir(out_dir):
            raise _fail(f'OUT_DIR "{out_dir}" exists and is not a folder. Pass the name of a new folder.')
        if os.listdir(out_dir):
            raise _fail(f'OUT_DIR "{out_dir}" exists and is not empty; it is never overwritten. Pass the name of a new '
                        "folder, or move the old one away first.")
    if not os.path.isdir(os.path.dirname(out_dir)):
        raise _fail(f'the folder OUT_DIR "{out_dir}" goes in does not exist. Create it first (e.g. ComfyUI/models/'
                    "diffusers).")


def _read_model_config(checkpoint: str, given: str | None) -> tuple[str | None, dict]:
    if given:
        path = os.path.abspath(os.path.expanduser(given))
        if not os.path.isfile(path):
            raise _fail(f'--model-config "{given}" does not exist. Pass the model_config.json that came with the '
                        "checkpoint, or leave it out to read the one beside the checkpoint.")
    else:
        folder, stem = os.path.dirname(checkpoint), os.path.splitext(os.path.basename(checkpoint))[0]
        candidates = [os.path.join(folder, n) for n in ("model_config.json", f"{stem}.json", f"{stem}_config.json")]
        path = next((c for c in candidates if os.path.isfile(c)), None)
        if path is None:
            return None, {}
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _fail(f'model_config "{path}" is not readable JSON ({err}). Pass the model_config.json that came with '
                    "the checkpoint (--model-config).") from err
    if not isinstance(config, dict) or not isinstance(config.get("model"), dict):
        raise _fail(f'"{path}" is not a stable-audio-tools model_config.json (no "model" section). Pass the one that '
                    "came with the checkpoint (--model-config), or move the stray file away.")
    return path, config


# --------------------------------------------------------------------------------------------- the conversion
def convert_sa3(checkpoint: str, out_dir: str, text_encoder_dir: str, *, model_config: str | None = None,
                dtype: str = "fp16", notes: list[str] | None = None) -> str:
    """Convert an official Stable Audio 3 checkpoint into a diffusers ``StableAudio3Pipeline`` folder.

    Args:
        checkpoint: the stable-audio-tools ``.safetensors`` file (``model.model.*``, ``pretransform.model.*``,
            ``conditioner.conditioners.*``). Pickle files are refused.
        out_dir: the folder to create; it must not exist, or be empty. Written under a temporary sibling name and
            renamed at the end, so it never holds a half-written pipeline.
        text_encoder_dir: a transformers T5Gemma folder with its tokenizer (google/t5gemma-b-b-ul2); only the
            encoder is kept.
        model_config: the checkpoint's ``model_config.json``; default: ``model_config.json`` (or ``<name>.json``)
            beside the checkpoint. Without one, settings the weights do not show are assumed and listed in ``notes``.
        dtype: "fp16", "bf16", "fp32", or "keep" (the checkpoint's own). Rotary and duration frequencies stay fp32.
        notes: if given, receives one line per thing worth knowing (skipped tensors, assumptions).

    Returns:
        ``out_dir`` as an absolute path.

    Raises:
        ValueError: prefixed ``convert-sa3:``, naming the input and the fix, for anything that is not an exactly
            convertible Stable Audio 3 checkpoint (wrong file, missing/unexpected tensors, SAME-S autoencoder, ...).
    """
    notes = [] if notes is None else notes
    if dtype not in DTYPES:
        raise _fail(f'"dtype" is {dtype!r}; use one of {", ".join(DTYPES)}.')
    checkpoint, out_dir, text_encoder_dir = (os.path.abspath(os.path.expanduser(p))
                                             for p in (checkpoint, out_dir, text_encoder_dir))
    _check_paths(checkpoint, out_dir, text_encoder_dir)
    config_path, config = _read_model_config(checkpoint, model_config)
    classes = _diffusers_classes()

    # 1. Names and shapes only: everything that can be refused is refused before any tensor is read.
    ck = _Checkpoint(checkpoint)
    ck.read_header()
    plan = _plan(ck, config, config_path, notes)

    # 2. Build, fill strictly, cast, write.
    with _quiet():
        ck.load()
        log.info("converting %s (%d tensors)", checkpoint, len(ck.shapes))
        pipe = _build_pipeline(ck, plan, classes, text_encoder_dir, dtype, notes)
        log.info("writing %s with diffusers %s", out_dir, classes["version"])
        return _write(pipe, out_dir)


def _diffusers_classes() -> dict:
    """diffusers' Stable Audio 3 classes by role (and its version), or the error naming the diffusers needed."""
    try:
        import diffusers
        from diffusers import (
            AutoencoderSAME,
            FlowMatchEulerDiscreteScheduler,
            StableAudio3DiTModel,
            StableAudio3Pipeline,
        )
        from diffusers.pipelines.stable_audio_3.modeling_stable_audio_3 import StableAudio3DurationEmbedder
    except ImportError as err:
        raise _fail(f"needs diffusers >= 0.42 with StableAudio3Pipeline ({err}). Run: pip install -U diffusers "
                    "transformers") from err
    from ..models.same_s import AutoencoderSAMEChunked

    vaes = {cls.__name__: cls for cls in (AutoencoderSAME, AutoencoderSAMEChunked)}
    return {"transformer": StableAudio3DiTModel, "vaes": vaes, "duration_embedder": StableAudio3DurationEmbedder,
            "scheduler": FlowMatchEulerDiscreteScheduler, "pipeline": StableAudio3Pipeline,
            "version": diffusers.__version__}


def _plan(ck: _Checkpoint, config: dict, config_path: str | None, notes: list[str]) -> dict:
    """Step 1, from names and shapes only: each component's config and key mapping, every tensor accounted for;
    notes where the config came from, what was assumed and which scheduler fits."""
    _check_is_sa3(ck)
    assumed: list[str] = []
    dit_config = _dit_config(ck, _get(config, "model", "diffusion", "config") or {})
    vae_config, levels = _vae_config(ck, config, assumed)
    duration_config = _duration_config(ck, config, assumed)
    stochastic = _stochastic_sampling(config, assumed)
    if {duration_config["output_dim"], dit_config["global_cond_dim"]} != {dit_config["cond_token_dim"]}:
        raise _fail(f'CHECKPOINT "{ck.path}": the duration embedding ({duration_config["output_dim"]}), the DiT\'s '
                    f'global input ({dit_config["global_cond_dim"]}) and its text input ({dit_config["cond_token_dim"]})'
                    " differ in width; a Stable Audio 3 checkpoint has one width for all three.")
    rope: list = []
    maps = {"transformer": _map_dit(ck, dit_config["use_differential_attention"]),
            "vae": _map_vae(ck, levels, vae_config["use_differential_attention"], rope),
            "duration_embedder": _map_duration(ck)}
    mapped = {src for m in maps.values() for src, _ in m.values()} | {src for src, _ in rope} | set(ck.under(PROMPT_MODEL))
    left = sorted(set(ck.unaccounted()) - mapped)
    if left:
        raise _fail(f'CHECKPOINT "{ck.path}" holds {len(left)} tensors with no place in diffusers\' Stable Audio 3 '
                    f"pipeline: {_names(left)}. Nothing was written. Is it an official Stable Audio 3 checkpoint "
                    "(not a training checkpoint, LoRA or another model)?")
    notes.append(f"model_config: {config_path}" if config_path else
                 "model_config: none given or found beside the checkpoint; the tensor shapes set the architecture")
    if assumed:
        notes.append("assumed (model_config.json does not say): " + "; ".join(assumed))
    notes.append("scheduler: " + ("distilled, 8 ping-pong steps (stochastic_sampling)" if stochastic else
                                  "base model, deterministic Euler (100 steps by default)"))
    return {"transformer": dit_config, "vae": vae_config, "levels": levels, "duration_embedder": duration_config,
            "stochastic": stochastic, "maps": maps, "rope": rope}


def _build_transformer(ck: _Checkpoint, cls, config: dict, mapping: dict, notes: list[str]):
    """The DiT, filled strictly; a checkpoint without the inpainting embedder gets diffusers' set to zeros."""
    transformer = cls(**config)
    own = []
    if not any(".to_local_embed." in k for k in mapping):
        import torch

        own = [k for k in transformer.state_dict() if ".to_local_embed." in k]
        with torch.no_grad():
            for k in own:
                transformer.get_parameter(k).zero_()
        notes.append("filled: the checkpoint has no inpainting embedder (to_local_embed); diffusers' is set to "
                     "zeros, so text-to-audio is exact and inpainting would ignore its mask")
    _load_strict(transformer, mapping, ck, "transformer", own=own)
    return transformer


def _build_vae(ck: _Checkpoint, plan: dict, vaes: dict):
    """The autoencoder of ``plan["vae"]`` (its ``class``: AutoencoderSAME or AutoencoderSAMEChunked), filled strictly."""
    config = dict(plan["vae"])
    vae = vaes[config.pop("class")](**config)
    _load_strict(vae, plan["maps"]["vae"], ck, "vae", levels=plan["levels"])
    _check_rope(vae, ck, plan["rope"])
    return vae


def convert_autoencoder(tensors: dict, model_config: dict | None = None, *, label: str = "autoencoder"):
    """The SAME autoencoder of a Stable Audio 3 checkpoint as the model that holds it exactly.

    Args:
        tensors: the checkpoint's ``pretransform.model.*`` tensors (the rest is ignored).
        model_config: the checkpoint's model_config.json as a dict (``None``: the published settings of its
            geometry: SAME-S chunked, SAME-L banded).
        label: the name messages give the tensors' source.

    Returns:
        ``AutoencoderSAMEChunked`` (SAME-S) or ``AutoencoderSAME`` (SAME-L) in fp32, every tensor mapped strictly.
    """
    ck = _Checkpoint(label)
    ck.shapes = {k: tuple(v.shape) for k, v in tensors.items() if k.startswith(AE)}
    ck.tensors = {k: v for k, v in tensors.items() if k.startswith(AE)}
    vae_config, levels = _vae_config(ck, model_config or {}, [])
    rope: list = []
    maps = {"vae": _map_vae(ck, levels, vae_config["use_differential_attention"], rope)}
    vae = _build_vae(ck, {"vae": vae_config, "levels": levels, "maps": maps, "rope": rope},
                     _diffusers_classes()["vaes"])
    left = ck.unaccounted()
    if left:
        raise _fail(f'"{label}": autoencoder tensors with no place in {type(vae).__name__}: {_names(left)}.')
    return vae.float().eval()


def _build_pipeline(ck: _Checkpoint, plan: dict, classes: dict, text_encoder_dir: str, dtype: str, notes: list[str]):
    """Step 2: every component built from ``plan`` and filled strictly from the loaded checkpoint, then cast."""
    maps = plan["maps"]
    transformer = _build_transformer(ck, classes["transformer"], plan["transformer"], maps["transformer"], notes)
    vae = _build_vae(ck, plan, classes["vaes"])
    duration = classes["duration_embedder"](**plan["duration_embedder"])
    _load_strict(duration, maps["duration_embedder"], ck, "duration_embedder", own=("freqs",))
    text_encoder, tokenizer = _load_text_encoder(text_encoder_dir, dtype, plan["transformer"]["cond_token_dim"], notes)
    text_from_checkpoint = _apply_checkpoint_text_encoder(ck, text_encoder, notes)
    for reason, names in ck.skipped.items():
        notes.append(f"skipped {len(names)} tensor(s): {reason}")
    notes.append("computed: duration_embedder.freqs (fixed Fourier frequencies; checkpoints do not store them)")
    left = ck.unaccounted()
    if left:  # cannot happen after the checks above; kept so a mapping slip can never pass silently
        raise _fail(f'CHECKPOINT "{ck.path}": tensors not converted: {_names(left)}. Nothing was written.')
    sources = {name: [src for src, _ in m.values()] for name, m in maps.items()}
    ck.tensors.clear()
    _cast({"transformer": transformer, "vae": vae, "duration_embedder": duration}, dtype, ck, sources)
    if text_from_checkpoint and dtype != "keep":
        text_encoder.to(transformer.dtype)
    scheduler = classes["scheduler"](stochastic_sampling=plan["stochastic"], shift=1.0)
    return classes["pipeline"](vae=vae, text_encoder=text_encoder.eval(), tokenizer=tokenizer,
                               duration_embedder=duration, transformer=transformer, scheduler=scheduler)


def _write(pipe, out_dir: str) -> str:
    """``save_pretrained`` into a temporary sibling folder, then rename it to ``out_dir``; on any error (or Ctrl+C)
    the temporary folder is removed and ``out_dir`` is left as it was."""
    parent, name = os.path.split(out_dir)
    partial = os.path.join(parent, f".{name}.converting-{uuid.uuid4().hex[:8]}")
    os.mkdir(partial)
    try:
        from ..models.same_s import save_pipeline

        save_pipeline(pipe, partial)
        _check_out_dir(out_dir)  # nobody filled it meanwhile
        if os.path.isdir(out_dir):
            os.rmdir(out_dir)
        os.rename(partial, out_dir)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return out_dir


# --------------------------------------------------------------------------------------------- describing a folder
def _safetensors_header(path: str) -> dict:
    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(size))


def describe_pipeline_folder(folder: str) -> list[dict]:
    """What a written pipeline folder holds, read from ``model_index.json`` and the safetensors headers (no torch).

    Returns:
        One dict per component: ``component``, ``class``, ``parameters`` (tensor elements, buffers included) and
        ``dtypes`` (safetensors dtype name -> elements).
    """
    with open(os.path.join(folder, "model_index.json"), encoding="utf-8") as f:
        index = json.load(f)
    rows = []
    for component, spec in index.items():
        if component.startswith("_") or not isinstance(spec, list) or len(spec) != 2:
            continue
        sub = os.path.join(folder, component)
        parameters, dtypes = 0, {}
        for file in sorted(os.listdir(sub)) if os.path.isdir(sub) else []:
            if file.endswith(".safetensors"):
                for tensor, info in _safetensors_header(os.path.join(sub, file)).items():
                    if tensor != "__metadata__":
                        count = math.prod(info["shape"])
                        parameters += count
                        dtypes[info["dtype"]] = dtypes.get(info["dtype"], 0) + count
        rows.append({"component": component, "class": spec[1], "parameters": parameters, "dtypes": dtypes})
    return rows
