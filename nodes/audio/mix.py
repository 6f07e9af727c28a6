"""Mixing audio layers into one stereo bed: resample, pan, gain, loop or pad, headroom (plain functions)."""
from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

from ..checks import is_number
from .contract import check_audio, to_numpy
from .crossfade import cross_fade_gains
from .resample import resample_array

if TYPE_CHECKING:
    import numpy as np
    import torch

log = logging.getLogger(__name__)

NODE = "Mix Audio Layers"
FITS = ("loop", "pad")  # how shorter layers reach the output length
LENGTHS = ("longest", "first")  # output length: the longest layer, or the first layer's
CROSSFADE_S = 0.010  # equal-power cross-fade at each loop wrap
HEADROOM_RANGE = (0.0, 60.0)  # dB below full scale


def pan_gains(pan: float) -> tuple[float, float]:
    """Equal-power (sine/cosine) pan law for a mono source.

    ``left = cos(theta)``, ``right = sin(theta)`` with ``theta = (pan + 1) * pi / 4``, so ``left**2 + right**2 == 1``
    for every pan: hard left (-1) is ``(1, 0)``, centre (0) is ``1/sqrt(2)`` (-3.01 dB) each side, hard right (+1)
    is ``(0, 1)``.

    Args:
        pan: -1 (left) .. +1 (right).

    Returns:
        ``(left, right)`` linear gains.
    """
    if not is_number(pan) or not -1.0 <= pan <= 1.0:
        raise ValueError(f'{NODE}: "pan" is {pan!r} but must be a number from -1 (left) to 1 (right); 0 is centre. '
                         "Set it in that range.")
    theta = (float(pan) + 1.0) * math.pi / 4.0
    left, right = math.cos(theta), math.sin(theta)
    if pan == -1:
        right = 0.0
    if pan == 1:
        left = 0.0
    return left, right


def balance_gains(pan: float) -> tuple[float, float]:
    """Balance law for a stereo source: ``min(1, sqrt(2) * pan_gains(pan))`` per side.

    Centre leaves both channels unchanged (1, 1); panning turns the far side down along the equal-power curve
    and keeps the near side at 1: hard right is ``(0, 1)`` (the left channel is silenced, not moved right),
    pan 0.5 gives ``(0.541, 1)`` (-5.3 dB on the left).

    Returns:
        ``(left, right)`` linear gains for the left and right channels.
    """
    left, right = pan_gains(pan)
    return min(1.0, left * math.sqrt(2.0)), min(1.0, right * math.sqrt(2.0))


def loop_to_length(data: "np.ndarray", frames: int, crossfade: int) -> "np.ndarray":
    """Tile ``data [..., T]`` to ``frames`` samples; each repeat overlaps the one before by ``crossfade`` samples
    with an equal-power (sin/cos) cross-fade. The first ``T - crossfade`` samples are the layer untouched."""
    import numpy as np

    length = data.shape[-1]
    fade = min(crossfade, length // 2)
    period = length - fade
    # steady state: one period whose head is the layer's head faded in over its tail faded out
    cycle = data[..., :period].copy()
    if fade:
        g_in, g_out = (g.numpy() for g in cross_fade_gains(fade))
        cycle[..., :fade] = data[..., :fade] * g_in + data[..., period:] * g_out
    reps = -(-(frames - period) // period)
    return np.concatenate([data[..., :period], np.tile(cycle, (1,) * (data.ndim - 1) + (reps,))], axis=-1)[..., :frames]


def _layer_waveform(layer, index: int):
    """``(data float64 [B, C, T], sample_rate, gain_db, pan)`` of one checked layer."""
    import numpy as np

    where = f"layer {index + 1}"
    waveform, rate = check_audio(layer, NODE, f'"audio_{index + 1}" ({where})')
    if waveform.shape[1] > 2:
        raise ValueError(f'{NODE}: {where} has {waveform.shape[1]} channels but layers must be mono or stereo. '
                         "Mix it down to stereo first.")
    gain_db = layer.get("gain_db", 0.0)
    if not is_number(gain_db):
        raise ValueError(f'{NODE}: {where} "gain_db" is {gain_db!r} ("gain_db_{index + 1}" on the node) but must be '
                         "a finite number of dB. Set it to e.g. 0 (unchanged) or -6 (half amplitude).")
    pan = layer.get("pan", 0.0)
    if not is_number(pan) or not -1.0 <= pan <= 1.0:
        raise ValueError(f'{NODE}: {where} "pan" is {pan!r} ("pan_{index + 1}" on the node) but must be a number '
                         "from -1 (left) to 1 (right); 0 is centre. Set it in that range.")
    data = to_numpy(waveform)
    if not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).sum())
        raise ValueError(f'{NODE}: "audio_{index + 1}" ({where}) contains {bad} NaN or inf samples (of {data.size}). '
                         "Check the upstream node (try fp32 precision there).")
    return data, rate, float(gain_db), float(pan)


def _check_settings(layers, length: str, fit: str, headroom_db: float) -> None:
    if length not in LENGTHS:
        raise ValueError(f'{NODE}: "length" is {length!r} but must be one of {", ".join(LENGTHS)}. Pick one.')
    if fit not in FITS:
        raise ValueError(f'{NODE}: "fit" is {fit!r} but must be one of {", ".join(FITS)}. Pick one.')
    lo, hi = HEADROOM_RANGE
    if not is_number(headroom_db) or not lo <= headroom_db <= hi:
        raise ValueError(f'{NODE}: "headroom_db" is {headroom_db!r} but must be a number from {lo:g} to {hi:g} dB. '
                         "Set it to e.g. 1.")
    if not isinstance(layers, (list, tuple)) or len(layers) < 1:
        raise ValueError(f'{NODE}: "layers" holds {len(layers) if isinstance(layers, (list, tuple)) else 0} layers '
                         "but at least 1 is needed. Connect an AUDIO output.")


def _common_batch(checked: list) -> int:
    """The batch size of the mix: 1, or the one size B > 1 that every layer of batch > 1 shares."""
    batches = sorted({d.shape[0] for d, _, _, _ in checked if d.shape[0] != 1})
    if len(batches) > 1:
        sizes = ", ".join(f"layer {i + 1}: {d.shape[0]}" for i, (d, _, _, _) in enumerate(checked))
        raise ValueError(f"{NODE}: the layers' batch sizes differ ({sizes}). Layers must have batch 1 or the same "
                         "batch size; use one clip per layer or make the batches match.")
    return batches[0] if batches else 1


def _to_stereo(data: "np.ndarray", src: int, rate: int, gain_db: float, pan: float) -> tuple["np.ndarray", dict]:
    """One layer resampled to ``rate``, panned (mono) or balanced (stereo) to ``[B, 2, T]``, with its gain; and its
    info entry."""
    import numpy as np

    channels = data.shape[1]
    data = resample_array(data, src, rate)
    if channels == 1:
        left, right = pan_gains(pan)
        data = np.concatenate([data * left, data * right], axis=1)
    else:
        left, right = balance_gains(pan)
        data = data * np.array([left, right])[None, :, None]
    data = data * 10.0 ** (gain_db / 20.0)
    info = {"resampled_from": src if src != rate else None, "gain_db": gain_db, "pan": pan,
            "channels": channels, "batch": data.shape[0], "length": data.shape[-1]}
    return data, info


def _fit_length(data: "np.ndarray", frames: int, fit: str, crossfade: int) -> tuple["np.ndarray", str]:
    """``data`` brought to ``frames`` samples: cut, looped or padded (``fit``); and which of "cut", "loop", "pad",
    "none" was done."""
    import numpy as np

    have = data.shape[-1]
    if have > frames:
        return data[..., :frames], "cut"
    if have < frames and fit == "loop":
        return loop_to_length(data, frames, crossfade), "loop"
    if have < frames:
        return np.concatenate([data, np.zeros(data.shape[:-1] + (frames - have,))], axis=-1), "pad"
    return data, "none"


def _keep_headroom(mix: "np.ndarray", headroom_db: float) -> tuple["torch.Tensor", float]:
    """``mix`` as float32, scaled by one gain when its peak passes ``-headroom_db`` dBFS; and that gain in dB."""
    import numpy as np
    import torch

    ceiling = 10.0 ** (-headroom_db / 20.0)
    peak = float(np.abs(mix).max())
    scaled_db = 0.0
    if peak > ceiling:
        scale = ceiling / peak
        mix = mix * scale
        scaled_db = 20.0 * math.log10(scale)
        log.info("%s: the summed peak was %.2f dBFS; the mix was scaled by %.2f dB to keep %.1f dB of headroom",
                 NODE, 20.0 * math.log10(peak), scaled_db, headroom_db)
    out = torch.from_numpy(mix.astype(np.float32))
    if scaled_db:  # float32 rounding must not lift the peak over the ceiling
        over = float(out.abs().max())
        if over > ceiling:
            out = out * (ceiling / over)
    return out, scaled_db


def mix_layers(layers: list[dict], *, length: str = "longest", fit: str = "loop",
               headroom_db: float = 1.0) -> tuple["torch.Tensor", int, dict]:
    """Sum audio layers into one stereo mix.

    Steps, per layer: resample to the highest rate among the layers (``resample_poly``); make it stereo: a mono
    layer is panned with the equal-power law :func:`pan_gains` (centre -3.01 dB each side), a stereo layer is
    balanced with :func:`balance_gains` (centre leaves it unchanged, hard right silences its left channel); apply
    ``gain_db``; bring it to the output length: longer layers are cut, shorter ones looped (``fit="loop"``: tiled
    with a 10 ms equal-power cross-fade at each wrap, so no click) or zero-padded (``fit="pad"``). Batches: a
    layer of batch 1 is used for every clip; layers of batch B > 1 must all have the same B.

    Headroom normalisation, no limiter: if the summed sample peak (over the whole batch) passes
    ``10 ** (-headroom_db / 20)``, the whole mix is scaled down by one gain to exactly that peak, so the output
    never clips. (Inter-sample peaks can be slightly higher; use Normalize Loudness for a true-peak ceiling.)

    Args:
        layers: dicts ``{"waveform": float [B, C, T] (C = 1 or 2; [C, T] is one clip), "sample_rate": int Hz,
            "gain_db": float dB (default 0), "pan": float -1..1 (default 0)}``.
        length: ``"longest"`` (the longest layer) or ``"first"`` (the first layer's length), see :data:`LENGTHS`.
        fit: ``"loop"`` or ``"pad"``, how shorter layers fill the length, see :data:`FITS`.
        headroom_db: dB kept below full scale (0..60).

    Returns:
        ``(waveform, sample_rate, info)``: a new ``float32 [B, 2, T]`` tensor, its rate in Hz, and
        ``{"sample_rate", "length" (samples), "scaled_db" (headroom gain, dB, <= 0), "layers": [{"resampled_from"
        (original Hz, None when not resampled), "fit" ("loop", "pad", "cut" or "none"), "gain_db", "pan",
        "channels", "batch", "length" (samples at the output rate, before fitting)}]}``.

    Raises:
        ValueError: no layers, a bad waveform, rate, gain or pan, unknown ``fit``/``length``, mismatched batches.
    """
    import numpy as np

    _check_settings(layers, length, fit, headroom_db)
    checked = [_layer_waveform(layer, i) for i, layer in enumerate(layers)]
    rate = max(r for _, r, _, _ in checked)
    batch = _common_batch(checked)
    stereo, infos = zip(*(_to_stereo(data, src, rate, gain_db, pan) for data, src, gain_db, pan in checked))
    frames = max(d.shape[-1] for d in stereo) if length == "longest" else stereo[0].shape[-1]
    crossfade = max(1, round(CROSSFADE_S * rate))
    mix = np.zeros((batch, 2, frames))
    for data, info in zip(stereo, infos):
        data, info["fit"] = _fit_length(data, frames, fit, crossfade)
        mix += data  # batch 1 broadcasts
    out, scaled_db = _keep_headroom(mix, headroom_db)
    return out, rate, {"sample_rate": rate, "length": frames, "scaled_db": scaled_db, "layers": list(infos)}
