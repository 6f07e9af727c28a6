"""Stability's own SAME-S, built from its source, for the equality tests of ``nodes/models/same_s.py``.

The source is never part of this repository: point ``STABLE_AUDIO_3_SRC`` at a checkout of
https://github.com/Stability-AI/stable-audio-3 (its Python needs ``einops`` and ``torchaudio``). Used by
``tests/test_same_s.py`` (skipped without it) and ``tools/make_same_s_fixture.py`` (which writes the committed
fixture that lets CI check equality without the source).
"""
from __future__ import annotations

import os
import sys

SOURCE_ENV = "STABLE_AUDIO_3_SRC"
FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "same_s_reference.safetensors")

# The published SAME-S (stabilityai/SAME-S, the autoencoder of Stable Audio 3 Small), in stable-audio-tools' config
# format, and a tiny variant with the same structure (one level, stride 16, chunks of 32 frames with the midpoint
# shift, a kernel-3 decoder mapping) for the committed fixture.
SIZES = {
    "full": dict(channels=128, c_mults=[6], depth=6, dim_heads=64, latent=256, patch=256, ff_mult=3),
    "tiny": dict(channels=16, c_mults=[2], depth=2, dim_heads=16, latent=8, patch=32, ff_mult=1),
}


def autoencoder_config(size: str = "full") -> dict:
    """The ``pretransform.config`` section of a Stable Audio 3 Small ``model_config.json`` for ``size``."""
    s = SIZES[size]
    same = dict(channels=s["channels"], c_mults=s["c_mults"], strides=[16], latent_dim=s["latent"],
                transformer_depths=[s["depth"]], differential=True, dyt=True, dim_heads=s["dim_heads"],
                variable_stride=True, sliding_window=None, chunk_size=32, chunk_midpoint_shift=True,
                ff_mult=s["ff_mult"])
    return {
        "encoder": {"type": "same", "config": {"in_channels": 2 * s["patch"], "conv_mapping": False, **same}},
        "decoder": {"type": "same", "config": {"out_channels": 2 * s["patch"], "conv_mapping": True,
                                               "sinusoidal_blocks": [0], **same}},
        "bottleneck": {"type": "softnorm", "config": {"dim": s["latent"], "noise_augment_dim": 0, "auto_scale": True}},
        "pretransform": {"type": "patched", "config": {"patch_size": s["patch"], "channels": 2}},
        "latent_dim": s["latent"], "downsampling_ratio": s["patch"] * 16, "io_channels": 2,
    }


def model_config(size: str = "full") -> dict:
    """A whole ``model_config.json`` around :func:`autoencoder_config` (what the converter reads)."""
    return {"model_type": "diffusion_cond", "sample_rate": 44100, "audio_channels": 2,
            "model": {"pretransform": {"type": "autoencoder", "config": autoencoder_config(size)}}}


def import_reference():
    """Stability's ``create_autoencoder_from_config``, or the reason it cannot be imported here."""
    source = os.environ.get(SOURCE_ENV)
    if not source or not os.path.isfile(os.path.join(source, "stable_audio_3", "models", "autoencoders.py")):
        return None, (f"the reference source is not here: set {SOURCE_ENV} to a checkout of "
                      "Stability-AI/stable-audio-3 to compare against Stability's own SAME-S")
    if source not in sys.path:
        sys.path.insert(0, source)
    try:
        from stable_audio_3.factory import create_autoencoder_from_config
    except Exception as err:  # noqa: BLE001 - its imports (einops, torchaudio, ...) decide whether it runs here
        return None, f"the reference source at {source} does not import here ({type(err).__name__}: {err})"
    return create_autoencoder_from_config, ""


def build_reference(size: str, seed: int = 0):
    """Stability's SAME-S autoencoder of ``size`` with random weights from ``seed``, "livened" as the pack's tiny
    models are (fresh SAME starts its residual branches at zero, so its output would ignore its input), and a
    running std that is not 1 (so the bottleneck's scaling is exercised). Returns ``(model, tensors)``: the tensors
    are its state dict under a Stable Audio 3 checkpoint's ``pretransform.model.`` prefix."""
    import torch

    create, reason = import_reference()
    if create is None:
        raise RuntimeError(reason)
    torch.manual_seed(seed)
    model = create(autoencoder_config(size), 44100).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "new_tokens" in name:
                param.normal_(0.0, 1.0)
            elif not param.any():
                param.normal_(0.0, 0.05)
        model.bottleneck.running_std.fill_(1.7)
    tensors = {"pretransform.model." + k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    return model, tensors


def cases(size: str = "tiny", seed: int = 1234) -> dict:
    """Inputs to compare on: latents of an even and an odd length (SAME-S pads odd ones), a longer run for chunked
    decoding, audio of whole latents for chunked encoding and a ragged length (the encoder pads to whole chunks)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    latent, hop = SIZES[size]["latent"], SIZES[size]["patch"] * 16
    return {"decode_even": torch.randn(1, latent, 6, generator=g),
            "decode_odd": torch.randn(1, latent, 5, generator=g),
            "decode_long": torch.randn(1, latent, 16, generator=g),
            "encode": 0.3 * torch.randn(1, 2, 16 * hop, generator=g),
            "encode_ragged": 0.3 * torch.randn(1, 2, 5 * hop + 100, generator=g)}


def reference_outputs(model, inputs: dict) -> dict:
    """Stability's whole-clip decode / encode of each case (its ``AudioAutoencoder.decode`` / ``.encode``)."""
    import torch

    with torch.no_grad():
        return {name: (model.decode(x) if name.startswith("decode") else model.encode(x)).contiguous()
                for name, x in inputs.items()}
