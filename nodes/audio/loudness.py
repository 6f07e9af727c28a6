"""Loudness normalisation to an ITU-R BS.1770-4 / EBU R128 target under a true-peak ceiling (plain functions)."""
from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

from ..checks import check_sample_rate, is_number
from .contract import as_batch, to_numpy
from .resample import resample_array

if TYPE_CHECKING:
    import numpy as np
    import torch

log = logging.getLogger(__name__)

NODE = "Normalize Loudness"  # the node normalize_loudness serves; the measuring functions take the caller's name
PRESETS = {
    "-23 LUFS (broadcast, EBU R128)": -23.0,
    "-16 LUFS (podcast, mobile)": -16.0,
    "-14 LUFS (streaming)": -14.0,
    "custom": None,
}
TARGET_RANGE = (-70.0, 0.0)  # LUFS; -70 is BS.1770's absolute gate
CEILING_RANGE = (-20.0, 0.0)  # dBTP
MIN_SECONDS = 0.4  # one BS.1770 gating block
MAX_CHANNELS = 5  # BS.1770 weights L, R, C, Ls, Rs
ABSOLUTE_GATE_LUFS = -70.0
TOLERANCE_LU = 0.5  # "reached" when within this of the target
AIM_LU = 0.1  # passes stop early when within this of the target
MAX_PASSES = 4
MAX_MAKEUP_DB = 12.0  # at most this much gain above the plain loudness gain is pushed into the limiter
OVERSAMPLE = 4
ATTACK_S = 0.005  # limiter look-ahead: the gain ramps down over this time before a peak
RELEASE_S = 0.08  # limiter release time constant (exponential in dB)
MARGIN_DB = 0.1  # the limiter aims this far below the ceiling
CHUNK = 1 << 18  # samples per channel oversampled at once
CONTEXT = 64  # samples either side of a chunk; resample_poly's 4x filter reaches 10


def _db_to_gain(db: float) -> float:
    return 10.0 ** (db / 20.0)


def _gain_to_db(gain: float) -> float:
    return 20.0 * math.log10(gain) if gain > 0 else -math.inf


def _as_clip(waveform_clip, node: str) -> "np.ndarray":
    """One clip (``torch.Tensor`` or array, ``[C, T]`` or ``[T]``) as a float64 ``ndarray [C, T]`` (a copy)."""
    import numpy as np

    if hasattr(waveform_clip, "detach"):
        data = to_numpy(waveform_clip)
    else:
        data = np.array(waveform_clip, dtype=np.float64)  # a copy
    if data.ndim == 1:
        data = data[None, :]
    if data.ndim != 2:
        raise ValueError(f'{node}: one clip must have shape [channels, samples]; got {tuple(data.shape)}. '
                         "Pass a single clip of the batch.")
    return data


def _check_clip(data: "np.ndarray", sample_rate: int, node: str) -> None:
    import numpy as np

    channels, frames = data.shape
    if channels == 0 or frames == 0:
        raise ValueError(f'{node}: "audio" has shape {tuple(data.shape)} (no samples). Connect an AUDIO output '
                         "that holds sound.")
    if channels > MAX_CHANNELS:
        raise ValueError(f'{node}: "audio" has {channels} channels but BS.1770 loudness is defined for at most '
                         f"{MAX_CHANNELS} (L, R, C, Ls, Rs). Mix down to stereo or mono first.")
    if not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).sum())
        raise ValueError(f'{node}: "audio" contains {bad} NaN or inf samples (of {data.size}), so its loudness '
                         "cannot be measured. Check the upstream node (try fp32 precision there).")
    if frames < MIN_SECONDS * sample_rate:
        raise ValueError(f'{node}: "audio" is {frames / sample_rate:.3f} s long ({frames} samples at {sample_rate} Hz) '
                         f"but must be at least {MIN_SECONDS} s (one 400 ms BS.1770 measuring block). "
                         "Use a longer clip.")


def _lufs(data: "np.ndarray", sample_rate: int) -> float:
    """Integrated loudness of a checked float64 ``[C, T]`` array; ``-inf`` when every block is below -70 LUFS.
    A 4-channel clip is AmbiX (W, Y, Z, X): it is measured on W, the omnidirectional channel, as mono."""
    import numpy as np
    import pyloudnorm

    data = data[:1] if data.shape[0] == 4 else data  # AmbiX FOA: loudness of W (audio/spatial.py)
    if not np.any(data):
        return -math.inf
    value = float(pyloudnorm.Meter(sample_rate).integrated_loudness(np.ascontiguousarray(data.T)))
    return value if math.isfinite(value) else -math.inf


def _oversampled_abs(data: "np.ndarray", oversample: int) -> "np.ndarray":
    """``max over channels |x|`` of the ``oversample``-times resampled signal, ``[oversample * T]``.

    Long clips are resampled in chunks (with enough context for the filter, so the result is the same) to keep
    memory near ``oversample * CHUNK`` samples per channel."""
    import numpy as np

    if oversample == 1:
        return np.abs(data).max(axis=0)
    frames = data.shape[-1]
    if frames <= CHUNK:
        return np.abs(resample_array(data, 1, oversample)).max(axis=0)
    out = np.empty(frames * oversample)
    for start in range(0, frames, CHUNK):
        stop = min(frames, start + CHUNK)
        lo, hi = max(0, start - CONTEXT), min(frames, stop + CONTEXT)
        up = np.abs(resample_array(data[:, lo:hi], 1, oversample)).max(axis=0)
        out[start * oversample:stop * oversample] = up[(start - lo) * oversample:(stop - lo) * oversample]
    return out


def _peak_envelope(data: "np.ndarray", oversample: int = OVERSAMPLE) -> "np.ndarray":
    """Per original sample ``n``: the largest oversampled ``|x|`` from sample ``n - 1`` to ``n + 1`` (so every
    inter-sample peak is seen by both its neighbours), and at least the sample peak ``|x[n]|``. ``[T]``."""
    import numpy as np

    frames = data.shape[-1]
    sample = np.abs(data).max(axis=0)
    if oversample == 1:
        return sample
    over = _oversampled_abs(data, oversample)[:frames * oversample]
    over = np.concatenate([over, np.zeros(frames * oversample - over.size)])
    ahead = over[0::oversample].copy()  # max of the oversampled points from n to just before n + 1
    for k in range(1, oversample):
        np.maximum(ahead, over[k::oversample], out=ahead)
    behind = np.concatenate([[0.0], ahead[:-1]])  # from n - 1 to just before n
    return np.maximum(np.maximum(ahead, behind), sample)


def integrated_loudness(waveform_clip: "torch.Tensor", sample_rate: int, *, node: str = NODE) -> float:
    """ITU-R BS.1770-4 integrated (gated) loudness of one clip, measured with pyloudnorm.

    Args:
        waveform_clip: ``float [C, T]`` (or ``[T]`` for mono), at most 5 channels, at least 0.4 s long.
        sample_rate: Hz.
        node: the calling node's display name, the prefix of every error message.

    Returns:
        loudness in LUFS; ``-inf`` for digital silence or when every 400 ms block is below the -70 LUFS gate.
    """
    sample_rate = check_sample_rate(node, sample_rate, '"sample_rate"')
    data = _as_clip(waveform_clip, node)
    _check_clip(data, sample_rate, node)
    return _lufs(data, sample_rate)


def true_peak_dbtp(waveform_clip: "torch.Tensor", sample_rate: int, oversample: int = OVERSAMPLE, *,
                   node: str = NODE) -> float:
    """True peak of one clip: ``max |x|`` of the ``oversample``-times oversampled signal (the pack's resampler,
    per channel), never below the sample peak.

    Args:
        waveform_clip: ``float [C, T]`` (or ``[T]``).
        sample_rate: Hz (the oversampling ratio does not depend on it).
        oversample: oversampling factor; BS.1770-4 asks for 4 at 48 kHz.
        node: the calling node's display name, the prefix of every error message.

    Returns:
        the true peak in dBTP (dB relative to full scale 1.0); ``-inf`` for silence.
    """
    import numpy as np

    check_sample_rate(node, sample_rate, '"sample_rate"')
    if isinstance(oversample, bool) or not isinstance(oversample, int) or oversample < 1:
        raise ValueError(f'{node}: "oversample" is {oversample!r} but must be a whole number of at least 1. Use 4.')
    data = _as_clip(waveform_clip, node)
    if data.size == 0:
        return -math.inf
    if not np.isfinite(data).all():
        raise ValueError(f'{node}: "audio" contains NaN or inf samples, so its true peak cannot be measured. '
                         "Check the upstream node (try fp32 precision there).")
    peak = max(float(_oversampled_abs(data, oversample).max()), float(np.abs(data).max()))
    return _gain_to_db(peak)


def limiter_gain(peak: "np.ndarray", threshold: float, sample_rate: int, attack_s: float = ATTACK_S,
                 release_s: float = RELEASE_S) -> "np.ndarray":
    """Gain envelope of a look-ahead peak limiter: ``gain[n] * peak[n] <= threshold`` for every ``n``.

    The needed gain ``min(1, threshold / peak)`` is held (running minimum) over the ``attack_s`` look-ahead,
    released exponentially in dB with time constant ``release_s``, then smoothed by a moving average as long as
    the look-ahead, so the gain ramps down over ``attack_s`` *before* each peak and never rises above the gain
    that peak needs.

    Args:
        peak: ``float [T]`` per-sample peak (e.g. the 4x-oversampled envelope), linear.
        threshold: the largest allowed ``gain * peak``, linear.
        sample_rate: Hz.

    Returns:
        ``float64 [T]`` gains in (0, 1].
    """
    import numpy as np
    from scipy.ndimage import minimum_filter1d

    frames = peak.shape[-1]
    half = max(1, int(round(attack_s * sample_rate / 2)))
    look = 2 * half + 1  # odd, so a centred running minimum is a forward one shifted by ``half``
    need = np.minimum(1.0, threshold / np.maximum(peak, 1e-30))
    pad = look  # ones either side, so the moving average never reaches outside
    ext = np.concatenate([np.ones(pad), need, np.ones(pad + half)])
    held = minimum_filter1d(ext, look, mode="constant", cval=1.0)[half:half + pad + frames + pad]
    # held[m] = min(ext[m : m + look]); release: depth_db[m] = max(held_db[m], depth_db[m - 1] * c), computed as
    # exp-decayed running maximum in the log domain (vectorised; no per-sample Python loop)
    depth = -20.0 * np.log10(held)  # >= 0 dB of reduction
    rate = 1.0 / max(release_s * sample_rate, 1e-9)  # -log(c) per sample
    index = np.arange(depth.size, dtype=np.float64)
    with np.errstate(divide="ignore"):
        log_depth = np.log(depth)  # -inf where no reduction
    decayed = np.exp(np.maximum.accumulate(log_depth + index * rate) - index * rate)
    released = 10.0 ** (-np.maximum(depth, decayed) / 20.0)
    # backward moving average over ``look`` samples: every value averaged at n was held over a window holding n
    csum = np.concatenate([[0.0], np.cumsum(released)])
    smooth = (csum[look:] - csum[:-look]) / look  # smooth[k] = mean(released[k : k + look])
    gain = smooth[pad - look + 1:pad - look + 1 + frames]
    return np.minimum(gain, need)  # guard against rounding in the running sums


def _check_settings(target_lufs, ceiling_dbtp) -> None:
    lo, hi = TARGET_RANGE
    if not is_number(target_lufs) or not lo <= target_lufs <= hi:
        raise ValueError(f'{NODE}: "target_lufs" is {target_lufs!r} but must be a number from {lo:g} to {hi:g} LUFS. '
                         "Pick a preset (-23, -16 or -14 LUFS) or a custom value in that range.")
    lo, hi = CEILING_RANGE
    if not is_number(ceiling_dbtp) or not lo <= ceiling_dbtp <= hi:
        raise ValueError(f'{NODE}: "ceiling_dbtp" is {ceiling_dbtp!r} but must be a number from {lo:g} to {hi:g} dBTP. '
                         "Use -1 dBTP (EBU R128) or -2 dBTP for lossy encoders.")


def _apply_gain(data: "np.ndarray", envelope: "np.ndarray", gain_db: float, ceiling: float, margin: float,
                sample_rate: int) -> tuple["np.ndarray", float, float, bool]:
    """``data`` with ``gain_db`` and, when its true peak (``envelope`` times the gain) then passes ``ceiling``, the
    limiter aiming ``margin`` dB under it. Returns ``(out, true peak dBTP, trim dB, limited)``; ``trim`` (<= 0) is
    the static gain that took off a rare overshoot the limiter left."""
    gain = _db_to_gain(gain_db)
    peak = envelope * gain
    out = data * gain
    out_tp = _gain_to_db(float(peak.max()))
    limited = out_tp > ceiling
    if limited:
        out = out * limiter_gain(peak, _db_to_gain(ceiling - margin), sample_rate)[None, :]
        out_tp = _gain_to_db(float(_peak_envelope(out).max()))
    trim = 0.0
    if out_tp > ceiling:  # the limiter works at the original rate: a rare overshoot is trimmed statically
        trim = ceiling - out_tp - 0.01
        out = out * _db_to_gain(trim)
        out_tp += trim
    return out, out_tp, trim, limited


def _normalize_clip(data: "np.ndarray", sample_rate: int, target: float, ceiling: float,
                    index: int) -> tuple["np.ndarray", dict]:
    import numpy as np

    input_lufs = _lufs(data, sample_rate)
    if not math.isfinite(input_lufs) or input_lufs < ABSOLUTE_GATE_LUFS:
        raise ValueError(f"{NODE}: the audio is silent (or below {ABSOLUTE_GATE_LUFS:g} LUFS), so its loudness "
                         f'cannot be measured or raised: "audio" clip {index + 1} of the batch measures '
                         f"{input_lufs:.1f} LUFS. Check the upstream node: that clip should hold sound.")
    envelope = _peak_envelope(data)  # a static gain scales it: measured once
    input_tp = _gain_to_db(float(envelope.max()))
    plain_gain = target - input_lufs
    gain_db = plain_gain
    margin = MARGIN_DB
    best = None
    previous = None  # (gain_db, output_lufs) of the pass before, for a secant step
    for _ in range(MAX_PASSES):
        out, out_tp, trim, limited = _apply_gain(data, envelope, gain_db, ceiling, margin, sample_rate)
        margin -= trim
        out_lufs = _lufs(out, sample_rate)
        error = out_lufs - target
        candidate = (abs(error), out, {"gain_db": gain_db + trim, "output_lufs": out_lufs,
                                       "output_true_peak_dbtp": out_tp, "limited": limited})
        if best is None or candidate[0] < best[0]:
            best = candidate
        if abs(error) <= AIM_LU or not math.isfinite(out_lufs):
            break
        slope = 1.0
        if previous is not None and abs(gain_db - previous[0]) > 1e-6:
            slope = (out_lufs - previous[1]) / (gain_db - previous[0])
        slope = min(1.0, max(0.2, slope))  # limiting makes loudness grow slower than the gain
        previous = (gain_db, out_lufs)
        step = -error / slope
        new_gain = min(gain_db + step, plain_gain + MAX_MAKEUP_DB)
        if abs(new_gain - gain_db) < 1e-3:  # capped: more gain cannot help
            break
        gain_db = new_gain
    _, out, info = best
    reached = abs(info["output_lufs"] - target) <= TOLERANCE_LU and info["output_true_peak_dbtp"] <= ceiling
    if not reached:
        log.warning("%s: clip %d reached %.2f LUFS instead of %.2f LUFS; the true-peak ceiling of %.2f dBTP comes "
                    "first. Lower the target or raise the ceiling.", NODE, index + 1, info["output_lufs"], target,
                    ceiling)
    info = {"input_lufs": input_lufs, "output_lufs": info["output_lufs"], "gain_db": info["gain_db"],
            "input_true_peak_dbtp": input_tp, "output_true_peak_dbtp": info["output_true_peak_dbtp"],
            "limited": bool(info["limited"]), "reached": bool(reached)}
    return np.asarray(out), info


def normalize_loudness(waveform: "torch.Tensor", sample_rate: int, target_lufs: float = -23.0,
                       ceiling_dbtp: float = -1.0) -> tuple["torch.Tensor", list[dict]]:
    """Bring each clip to ``target_lufs`` integrated loudness (ITU-R BS.1770-4) with its true peak at or under
    ``ceiling_dbtp``.

    Per clip: one static gain to the target; if the true peak (4x oversampled) then passes the ceiling, a
    look-ahead true-peak limiter (5 ms attack, 80 ms release, aiming 0.1 dB under the ceiling) pulls the peaks
    down, loudness is measured again and a make-up gain applied, for up to 4 passes, until the clip is within
    0.5 LU of the target and under the ceiling. When both cannot be had, the ceiling wins: the clip stays under
    it, a warning is logged and its info says ``"reached": False``.

    Args:
        waveform: ``float [B, C, T]`` (or ``[C, T]`` as one clip), at most 5 channels, at least 0.4 s long.
        sample_rate: Hz.
        target_lufs: integrated loudness to reach, -70..0 LUFS (see :data:`PRESETS`).
        ceiling_dbtp: highest true peak allowed, -20..0 dBTP.

    Returns:
        ``(waveform, infos)``: a new ``float32 [B, C, T]`` tensor, and per clip a dict with ``input_lufs``,
        ``output_lufs`` (LUFS), ``gain_db`` (the static gain, dB), ``input_true_peak_dbtp``,
        ``output_true_peak_dbtp`` (dBTP), ``limited`` (the limiter acted) and ``reached`` (both goals met).

    Raises:
        ValueError: for a bad input or setting, a silent clip (below -70 LUFS) or one shorter than 0.4 s.
    """
    import numpy as np
    import torch

    _check_settings(target_lufs, ceiling_dbtp)
    sample_rate = check_sample_rate(NODE, sample_rate, '"sample_rate"')
    batch = to_numpy(as_batch(waveform, NODE))
    for clip in batch:
        _check_clip(clip, sample_rate, NODE)
    outs, infos = [], []
    for index, clip in enumerate(batch):
        out, info = _normalize_clip(clip, sample_rate, float(target_lufs), float(ceiling_dbtp), index)
        outs.append(out)
        infos.append(info)
        log.info("%s: clip %d %.2f -> %.2f LUFS, true peak %.2f -> %.2f dBTP%s", NODE, index + 1,
                 info["input_lufs"], info["output_lufs"], info["input_true_peak_dbtp"],
                 info["output_true_peak_dbtp"], ", limited" if info["limited"] else "")
    return torch.from_numpy(np.stack(outs).astype(np.float32)), infos
