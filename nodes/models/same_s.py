"""SAME-S, the autoencoder of Stable Audio 3 Small, held exactly on top of diffusers' ``AutoencoderSAME``.

diffusers' ``AutoencoderSAME`` attends over a sliding-window band and maps channels with kernel-1 convolutions: that
is SAME-L (Stable Audio 3 Medium) exactly. Stability's SAME-S differs in two ways (``TransformerResamplingBlock`` in
``stable_audio_3/models/autoencoders.py`` of Stability-AI/stable-audio-3):

- **chunked attention**: each resampling block folds its token sequence into independent chunks of ``chunk_size``
  input frames plus their output tokens (34 tokens for SAME-S: 2 latents of 16 frames + 1 token each); with
  ``chunk_midpoint_shift`` the second half of its layers runs on chunks shifted by half a chunk, the sequence padded
  at both ends with copies of its first and last half-chunk (so every token sees across a chunk edge);
- **a kernel-3 mapping convolution** ("same" padding) where the decoder maps back to audio patches.

It also pads where the band version crops: an encoder's input to whole chunks of frames and a decoder's latents to
whole chunks (2 latents), and it crops neither, so an odd number of latents decodes to one latent more of audio.

:class:`AutoencoderSAMEChunked` is ``AutoencoderSAME`` with those settings in its config and each resampling block's
forward replaced; the parameters, their names and the transformer layers (diffusers' ``TransformerBlock``:
differential attention, DyT norms, partial rotary embeddings) are diffusers' own, so a folder's weights are
``AutoencoderSAME``'s layout with the decoder's mapping 3 wide. ``tests/test_same_s.py`` checks it against
Stability's code from the same weights. Imported only when a Stable Audio 3 folder loads (it needs diffusers >= 0.42).
"""
from __future__ import annotations

import json
import os

import torch
from diffusers import AutoencoderSAME
from diffusers.configuration_utils import register_to_config
from torch import nn
from torch.nn.utils import weight_norm

CLASS_NAME = "AutoencoderSAMEChunked"


def _pad_to_multiple(x: torch.Tensor, multiple: int, dim: int) -> torch.Tensor:
    """``x`` right-padded with zeros along ``dim`` to a multiple of ``multiple``."""
    pad = (multiple - x.shape[dim] % multiple) % multiple
    if not pad:
        return x
    shape = list(x.shape)
    shape[dim] = pad
    return torch.cat([x, x.new_zeros(shape)], dim=dim)


class ChunkedResamplingBlock(nn.Module):
    """One SAME resampling block attending in chunks (SAME-S); adopts a diffusers block's layers and tokens.

    Encoder (stride S): ``[B, C_in, T]`` frames -> ``[B, C_out, ceil(T / chunk_size) * chunk_size / S]`` latents.
    Decoder (stride S): ``[B, C_in, L]`` latents -> ``[B, C_out, ceil(L / (chunk_size / S)) * chunk_size]`` frames.
    """

    def __init__(self, block: nn.Module, chunk_size: int, midpoint_shift: bool, conv_mapping: bool):
        super().__init__()
        self.mode, self.stride = block.mode, int(block.stride)
        self.in_channels, self.out_channels = block.in_channels, block.out_channels
        if chunk_size <= 0 or chunk_size % self.stride:
            raise ValueError(f"SAME chunk_size {chunk_size} must be a positive multiple of the stride {self.stride}")
        self.chunk_size, self.midpoint_shift = int(chunk_size), bool(midpoint_shift)
        self.chunk_tokens = self.chunk_size + self.chunk_size // self.stride  # frames + one output token per latent
        if self.midpoint_shift and self.chunk_tokens % 2:
            raise ValueError(f"SAME chunk of {self.chunk_tokens} tokens cannot be shifted by half")
        if conv_mapping and self.in_channels != self.out_channels:
            self.mapping = weight_norm(nn.Conv1d(self.in_channels, self.out_channels, 3, padding="same"))
        else:
            self.mapping = block.mapping
        self.transformers = block.transformers
        self.new_tokens = block.new_tokens

    def _run(self, x: torch.Tensor, layers) -> torch.Tensor:
        batch, length, width = x.shape
        x = x.reshape(batch * (length // self.chunk_tokens), self.chunk_tokens, width)
        for layer in layers:
            x = layer(x)
        return x.reshape(batch, length, width)

    def _attend(self, x: torch.Tensor) -> torch.Tensor:
        layers = list(self.transformers)
        split = len(layers) // 2 if self.midpoint_shift else len(layers)
        x = self._run(x, layers[:split])
        if split < len(layers):
            half = self.chunk_tokens // 2
            x = torch.cat([x[:, :half], x, x[:, -half:]], dim=1)
            x = self._run(x, layers[split:])[:, half:-half]
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stride = self.stride
        if self.mode == "encoder":
            x = self.mapping(_pad_to_multiple(x, self.chunk_size, dim=-1))
            batch, width, frames = x.shape
            segments = frames // stride
            x = x.transpose(1, 2).reshape(batch * segments, stride, width)
            x = torch.cat([x, self.new_tokens.expand(batch * segments, 1, width)], dim=1)
            keep = 1
        else:
            x = _pad_to_multiple(x, self.chunk_size // stride, dim=-1)
            batch, width, segments = x.shape
            x = x.transpose(1, 2).reshape(batch * segments, 1, width)
            x = torch.cat([x, self.new_tokens.expand(batch * segments, stride, width)], dim=1)
            keep = stride
        x = self._attend(x.reshape(batch, segments * (stride + 1), width))
        x = x.reshape(batch * segments, stride + 1, width)[:, -keep:, :]
        x = x.reshape(batch, segments * keep, width).transpose(1, 2)
        return self.mapping(x) if self.mode == "decoder" else x


class AutoencoderSAMEChunked(AutoencoderSAME):
    r"""``AutoencoderSAME`` attending in chunks, with optional kernel-3 mapping convolutions: SAME-S exactly.

    The defaults are the published SAME-S (Stable Audio 3 Small): 2 x 256 patched inputs, one level of 768 channels
    (128 x 6), stride 16, 6 layers of differential attention with 64-wide heads, 256 latent channels, chunks of 32
    frames with the midpoint shift, a kernel-3 mapping on the decoder side only.

    Parameters (beyond ``AutoencoderSAME``'s, whose ``sliding_window`` is then unused):
        chunk_size: input frames per attention chunk (a multiple of each stride).
        chunk_midpoint_shift: the second half of each block's layers attends in chunks shifted by half a chunk.
        encoder_conv_mapping, decoder_conv_mapping: that side's channel mapping is a kernel-3 convolution.
    """

    @register_to_config
    def __init__(self, audio_channels: int = 2, patch_size: int = 256, encoder_channels: int = 128,
                 encoder_c_mults=(6,), encoder_strides=(16,), encoder_transformer_depths=(6,), latent_dim: int = 256,
                 use_differential_attention: bool = True, dim_heads: int = 64, ff_mult: int = 3,
                 sliding_window: int = 1, encoder_sinusoidal_blocks=(0,), decoder_sinusoidal_blocks=(0,),
                 sampling_rate: int = 44100, chunk_size: int = 32, chunk_midpoint_shift: bool = True,
                 encoder_conv_mapping: bool = False, decoder_conv_mapping: bool = True):
        super().__init__(audio_channels=audio_channels, patch_size=patch_size, encoder_channels=encoder_channels,
                         encoder_c_mults=encoder_c_mults, encoder_strides=encoder_strides,
                         encoder_transformer_depths=encoder_transformer_depths, latent_dim=latent_dim,
                         use_differential_attention=use_differential_attention, dim_heads=dim_heads, ff_mult=ff_mult,
                         sliding_window=sliding_window, encoder_sinusoidal_blocks=encoder_sinusoidal_blocks,
                         decoder_sinusoidal_blocks=decoder_sinusoidal_blocks, sampling_rate=sampling_rate)
        for stack, conv in ((self.encoder, encoder_conv_mapping), (self.decoder, decoder_conv_mapping)):
            stack.blocks = nn.ModuleList(ChunkedResamplingBlock(b, chunk_size, chunk_midpoint_shift, conv)
                                         for b in stack.blocks)

    @property
    def latent_alignment(self) -> int:
        """Latents per attention chunk: a chunked decode or encode must start its pieces on multiples of this to
        see the chunks the whole clip sees (2 for SAME-S)."""
        return max(int(self.config.chunk_size) // int(s) for s in self.config.encoder_strides)

    @property
    def context_latents(self) -> int:
        """Latents of context on each side that make a piece's kept part exact: attention reaches half a chunk past
        its own chunk (the shifted half) and a kernel-3 mapping one frame more, so one whole chunk suffices
        (``tests/test_same_s.py`` decodes with it and equals the whole clip). Single-level SAME only."""
        return self.latent_alignment if len(self.config.encoder_strides) == 1 else 32


def save_pipeline(pipe, folder: str) -> None:
    """``pipe.save_pretrained(folder)`` (safetensors) with ``model_index.json`` naming the autoencoder
    ``["diffusers", "AutoencoderSAME"]`` when it is chunked: diffusers would record this module's package there,
    which is no library. ``vae/config.json`` keeps ``"_class_name": "AutoencoderSAMEChunked"``, which this pack's
    loader reads; plain diffusers refuses such a folder (the decoder's kernel-3 mapping does not fit) rather than
    decoding it wrong."""
    pipe.save_pretrained(folder, safe_serialization=True)
    if isinstance(getattr(pipe, "vae", None), AutoencoderSAMEChunked):
        path = os.path.join(folder, "model_index.json")
        with open(path, encoding="utf-8") as f:
            index = json.load(f)
        index["vae"] = ["diffusers", "AutoencoderSAME"]
        with open(path, "w", encoding="utf-8") as f:
            json.dump(index, f, indent=2, sort_keys=True)
            f.write("\n")
