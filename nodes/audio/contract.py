"""The AUDIO contract: what every node that takes or makes audio agrees on (plain functions, no ComfyUI).

ComfyUI's native AUDIO is ``{"waveform": float [B, C, T], "sample_rate": int}``. This pack adds two optional keys
that ride along through every craft node and are read by Save WAV: :data:`LOOP_KEY` (the clips loop, so Save WAV
writes loop points) and :data:`META_KEY` (how the audio was generated, for the file's metadata).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..checks import check_sample_rate

if TYPE_CHECKING:
    import numpy as np
    import torch

LOOP_KEY = "ambient_loop"  # extra AUDIO key set by Make Seamless Loop: the clips loop (Save WAV adds loop points)
META_KEY = "ambient_meta"  # optional extra AUDIO key: {"prompt", "negative_prompt", "seed", "steps", "cfg", "model", ...}
AMBIX_FORMAT = "AmbiX FOA ACN/SN3D"  # 4-channel first-order ambisonics: W, Y, Z, X (ACN order), SN3D (audio/spatial.py)
AMBISONICS_META = "ambisonics"  # META_KEY entry the spatial nodes set to AMBIX_FORMAT (Save WAV writes it)


def as_batch(waveform, node: str, what: str = '"audio"') -> "torch.Tensor":
    """``waveform`` as ``[B, C, T]`` (a 2-D ``[C, T]`` is one clip), or a ``ValueError`` naming ``node`` and the
    input ``what`` when it is not a tensor of that shape with at least one sample."""
    import torch

    if not isinstance(waveform, torch.Tensor):
        raise ValueError(f"{node}: {what} waveform is {type(waveform).__name__}, not a tensor. Connect an AUDIO output.")
    batch = waveform.unsqueeze(0) if waveform.ndim == 2 else waveform  # [C, T] from a non-conforming node: one clip
    if batch.ndim != 3 or 0 in batch.shape:
        raise ValueError(f"{node}: {what} waveform has shape {tuple(waveform.shape)} but must be [batch, channels, "
                         "samples] with at least one sample. Connect an AUDIO output that holds sound.")
    return batch


def require_finite(waveform: "torch.Tensor", node: str, action: str, cancel=None) -> None:
    """A ``ValueError`` when ``waveform`` holds NaN/inf (``action`` says what the node cannot do with them);
    with ``cancel``, checked in blocks with ``cancel()`` before each."""
    import torch

    if cancel is not None and all(bool(torch.isfinite(waveform[..., start:stop]).all())
                                  for start, stop in cancel_blocks(waveform.shape[-1], cancel)):
        return
    finite = torch.isfinite(waveform)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        raise ValueError(f'{node}: "audio" contains NaN/inf samples ({bad} of {waveform.numel()}); {action}. '
                         "Check the upstream node that made the audio (e.g. run the model in fp32).")


def require_rate_and_finite(waveform: "torch.Tensor", sample_rate, node: str, action: str, cancel=None) -> int:
    """``sample_rate`` as an int, or a ``ValueError`` when it is not a whole number of Hz or ``waveform`` holds
    NaN/inf (``action`` says what the node cannot do with them)."""
    rate = check_sample_rate(node, sample_rate)
    require_finite(waveform, node, action, cancel)
    return rate


CANCEL_BLOCK = 1 << 16  # samples per channel of long DSP work between two Cancel checks


def cancel_blocks(total: int, cancel=None, size: int = CANCEL_BLOCK):
    """``(start, stop)`` over ``range(total)`` in steps of ``size``, calling ``cancel()`` (when given) before each:
    long DSP loops run block by block so that raising from it (ComfyUI's Cancel) stops them within a block."""
    for start in range(0, total, size):
        if cancel is not None:
            cancel()
        yield start, min(total, start + size)


def check_clip(waveform, sample_rate, node: str, action: str, cancel=None) -> tuple["torch.Tensor", int]:
    """``(waveform as float32 [B, C, T], sample_rate as int)`` for a plain function's waveform input (a 2-D
    ``[C, T]`` is one clip), or a ``ValueError`` naming ``node`` (``action``: what it cannot do with NaN/inf)."""
    waveform = as_batch(waveform, node).float()
    return waveform, require_rate_and_finite(waveform, sample_rate, node, action, cancel)


def check_audio(audio, node: str, what: str = '"audio"') -> tuple["torch.Tensor", int]:
    """The ``(waveform [B, C, T], sample_rate)`` of a ComfyUI AUDIO, or a ``ValueError`` naming ``node`` and the
    input ``what`` that says what is wrong."""
    if not isinstance(audio, dict) or "waveform" not in audio or "sample_rate" not in audio:
        raise ValueError(f'{node}: {what} must be an AUDIO value {{"waveform", "sample_rate"}}; '
                         f"got {type(audio).__name__}. Connect an AUDIO output.")
    return as_batch(audio["waveform"], node, what), check_sample_rate(node, audio["sample_rate"], f"{what} sample_rate")


def is_ambix(waveform: "torch.Tensor") -> bool:
    """Whether a ``[B, C, T]`` waveform is read as AmbiX: every 4-channel clip is (W, Y, Z, X), so loudness is
    measured and the spectrogram drawn on W, the omnidirectional channel."""
    return waveform.ndim == 3 and waveform.shape[1] == 4


def make_audio(waveform: "torch.Tensor", sample_rate: int, *, loop: bool = False, meta: dict | None = None) -> dict:
    """A ComfyUI AUDIO dict; ``loop`` sets :data:`LOOP_KEY`, ``meta`` (how it was made) :data:`META_KEY`."""
    audio = {"waveform": waveform, "sample_rate": int(sample_rate)}
    if loop:
        audio[LOOP_KEY] = True
    if meta:
        audio[META_KEY] = meta
    return audio


def to_numpy(waveform: "torch.Tensor") -> "np.ndarray":
    """A float64 ``ndarray`` copy of a tensor (any float dtype, any device; inference tensors too)."""
    import numpy as np
    import torch

    data = waveform.detach().cpu()
    if data.dtype not in (torch.float32, torch.float64):
        data = data.float()
    return np.array(data.numpy(), dtype=np.float64)
