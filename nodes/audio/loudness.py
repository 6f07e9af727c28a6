"""Loudness normalisation to an ITU-R BS.1770-4 / EBU R128 target under a true-peak ceiling (plain functions)."""
from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..checks import check_sample_rate, is_number
from .contract import as_batch, cancel_blocks, to_numpy
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
CHUNK = 1 << 16  # samples per channel oversampled at once (a Cancel point between chunks)
CONTEXT = 64  # samples either side of a chunk; resample_poly's 4x filter reaches 10
STRICT_OVERSAMPLE = 8  # the verifying meter: 8x with a long Kaiser filter, on the blocks near the ceiling
STRICT_HALF_TAPS = 32  # its filter reaches this many original samples either side (8x: 513 taps)
STRICT_BETA = 10.0  # its Kaiser window (about -100 dB stop band)
STRICT_BLOCK = 4096  # samples per block it checks
HOT_DB = 1.0  # blocks whose 4x peak is within this of the ceiling are checked by it (4x reads at most 0.7 dB low)
STRICT_PASSES = 4  # limiter passes against the verifying meter before a static trim
TP_GUARD_DB = 0.3  # held under the ceiling by the verifying meter: ffmpeg's ebur128 reads abrupt clicks up to 0.25 dB
#                    above an ideal band-limited peak (its resampler rings), and the ceiling must hold by it too
DC_HIGHPASS_HZ = 10.0  # DC removal: the clip's mean, then a 2nd-order Butterworth high-pass at this frequency
DC_WARN_DBFS = -26.0  # a removed DC offset above this level is reported as a warning (always in the info)


Cancel = Callable[[], None] | None  # called between blocks of work; raising from it stops (ComfyUI's Cancel)


def _check(cancel: Cancel) -> None:
    if cancel is not None:
        cancel()


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


def _check_clip(data: "np.ndarray", sample_rate: int, node: str, cancel: Cancel = None) -> None:
    import numpy as np

    channels, frames = data.shape
    if channels == 0 or frames == 0:
        raise ValueError(f'{node}: "audio" has shape {tuple(data.shape)} (no samples). Connect an AUDIO output '
                         "that holds sound.")
    if channels > MAX_CHANNELS:
        raise ValueError(f'{node}: "audio" has {channels} channels but BS.1770 loudness is defined for at most '
                         f"{MAX_CHANNELS} (L, R, C, Ls, Rs). Mix down to stereo or mono first.")
    if not all(np.isfinite(data[:, start:stop]).all() for start, stop in cancel_blocks(frames, cancel)):
        bad = int((~np.isfinite(data)).sum())
        raise ValueError(f'{node}: "audio" contains {bad} NaN or inf samples (of {data.size}), so its loudness '
                         "cannot be measured. Check the upstream node (try fp32 precision there).")
    if frames < MIN_SECONDS * sample_rate:
        raise ValueError(f'{node}: "audio" is {frames / sample_rate:.3f} s long ({frames} samples at {sample_rate} Hz) '
                         f"but must be at least {MIN_SECONDS} s (one 400 ms BS.1770 measuring block). "
                         "Use a longer clip.")


def _k_weighted(data: "np.ndarray", sample_rate: int, cancel: Cancel) -> "np.ndarray":
    """``data [C, T]`` through pyloudnorm's K-weighting stages (its high shelf, then its 38 Hz high-pass), in blocks
    with the filter state carried, so the result is pyloudnorm's and every block is a Cancel point."""
    import numpy as np
    from pyloudnorm.iirfilter import IIRfilter
    from scipy.signal import lfilter

    stages = [IIRfilter(4.0, 1 / np.sqrt(2), 1500.0, sample_rate, "high_shelf"),
              IIRfilter(0.0, 0.5, 38.0, sample_rate, "high_pass")]
    states = [np.zeros((data.shape[0], max(len(f.a), len(f.b)) - 1)) for f in stages]
    out = np.empty_like(data, dtype=np.float64)
    for start in range(0, data.shape[-1], CHUNK):
        _check(cancel)
        block = data[:, start:start + CHUNK]
        for k, stage in enumerate(stages):
            block, states[k] = lfilter(stage.b, stage.a, block, axis=-1, zi=states[k])
            block = stage.passband_gain * block
        out[:, start:start + CHUNK] = block
    return out


def _lufs(data: "np.ndarray", sample_rate: int, cancel: Cancel = None) -> float:
    """Integrated loudness of a checked float64 ``[C, T]`` array; ``-inf`` when every block is below -70 LUFS.

    pyloudnorm's ``Meter.integrated_loudness`` (BS.1770-4: 400 ms blocks, 75 % overlap, -70 LUFS absolute and
    -10 LU relative gates), vectorised and in blocks so that long clips can be cancelled. A 4-channel clip is
    AmbiX (W, Y, Z, X): it is measured on W, the omnidirectional channel, as mono."""
    import numpy as np

    data = data[:1] if data.shape[0] == 4 else data  # AmbiX FOA: loudness of W (audio/spatial.py)
    if not np.any(data):
        return -math.inf
    weighted = _k_weighted(data, sample_rate, cancel)
    _check(cancel)
    channels, frames = data.shape
    count = int(np.round((frames / sample_rate - 0.4) / (0.4 * 0.25))) + 1
    j = np.arange(count, dtype=np.float64)
    lo = (0.4 * (j * 0.25) * sample_rate).astype(np.int64)
    hi = np.minimum((0.4 * (j * 0.25 + 1) * sample_rate).astype(np.int64), frames)
    sums = np.zeros((channels, frames + 1))  # running sums of squares, in blocks (same additions as one cumsum)
    for start, stop in cancel_blocks(frames, cancel):
        block = np.concatenate([sums[:, start:start + 1], weighted[:, start:stop] ** 2], axis=-1)
        sums[:, start + 1:stop + 1] = np.cumsum(block, axis=-1)[:, 1:]
    z = (sums[:, hi] - sums[:, lo]) / (0.4 * sample_rate)  # [C, blocks] mean squares
    weights = np.array([1.0, 1.0, 1.0, 1.41, 1.41])[:channels]
    with np.errstate(divide="ignore"):
        level = -0.691 + 10.0 * np.log10(weights @ z)
        gated = level >= ABSOLUTE_GATE_LUFS
        if not gated.any():
            return -math.inf
        relative = -0.691 + 10.0 * np.log10(weights @ z[:, gated].mean(axis=1)) - 10.0
        gated = (level > relative) & (level > ABSOLUTE_GATE_LUFS)
        if not gated.any():
            return -math.inf
        value = float(-0.691 + 10.0 * np.log10(weights @ z[:, gated].mean(axis=1)))
    return value if math.isfinite(value) else -math.inf


def _oversampled_abs(data: "np.ndarray", oversample: int, cancel: Cancel = None) -> "np.ndarray":
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
        _check(cancel)
        stop = min(frames, start + CHUNK)
        lo, hi = max(0, start - CONTEXT), min(frames, stop + CONTEXT)
        up = np.abs(resample_array(data[:, lo:hi], 1, oversample)).max(axis=0)
        out[start * oversample:stop * oversample] = up[(start - lo) * oversample:(stop - lo) * oversample]
    return out


def _peak_envelope(data: "np.ndarray", oversample: int = OVERSAMPLE, cancel: Cancel = None) -> "np.ndarray":
    """Per original sample ``n``: the largest oversampled ``|x|`` from sample ``n - 1`` to ``n + 1`` (so every
    inter-sample peak is seen by both its neighbours), and at least the sample peak ``|x[n]|``. ``[T]``; long
    clips in chunks (:func:`_oversampled_abs`'s, with its context), a Cancel point before each."""
    import numpy as np

    frames = data.shape[-1]
    if oversample == 1:
        return np.abs(data).max(axis=0)
    out = np.empty(frames)  # first: max of the oversampled points from n to just before n + 1
    for start, stop in cancel_blocks(frames, cancel):
        lo, hi = max(0, start - CONTEXT), min(frames, stop + CONTEXT)
        up = np.abs(resample_array(data[:, lo:hi], 1, oversample)).max(axis=0)
        out[start:stop] = up[(start - lo) * oversample:(stop - lo) * oversample].reshape(-1, oversample).max(axis=1)
    previous = 0.0
    for start, stop in cancel_blocks(frames, cancel):  # then with n - 1 to n, and the sample peak
        ahead = out[start:stop].copy()
        behind = np.concatenate([[previous], ahead[:-1]])
        previous = ahead[-1]
        out[start:stop] = np.maximum(np.maximum(ahead, behind), np.abs(data[:, start:stop]).max(axis=0))
    return out


def _strict_phases() -> "np.ndarray":
    """The verifying meter's filter as its :data:`STRICT_OVERSAMPLE` polyphase components ``[up, 2 h + 1]``
    (``h`` = :data:`STRICT_HALF_TAPS`): phase ``p`` at original sample ``j`` is ``sum_q g[p, q + h] x[j - q]``,
    which is ``resample_poly(x, up, 1, window=taps)[up j + p]``."""
    import numpy as np
    from scipy.signal import firwin

    up, half = STRICT_OVERSAMPLE, STRICT_HALF_TAPS
    taps = firwin(2 * half * up + 1, 1.0 / up, window=("kaiser", STRICT_BETA)) * up
    phases = np.zeros((up, 2 * half + 1))
    for p in range(up):
        for q in range(-half, half + 1):
            if 0 <= up * q + p + half * up < taps.size:
                phases[p, q + half] = taps[up * q + p + half * up]
    return phases


def _strict_ahead(data: "np.ndarray", lo: int, hi: int, spectra: dict) -> "np.ndarray":
    """Per sample ``j`` of ``data[:, lo:hi]``: the largest ``|x|`` of the 8x signal from ``j`` to just before
    ``j + 1`` (all channels), zeros outside the span. All phases at once by FFT convolution (the same sums as
    ``resample_poly``, several times faster than its direct form); ``spectra`` caches the filter's FFTs."""
    import numpy as np
    from scipy.fft import irfft, next_fast_len, rfft

    half, length = STRICT_HALF_TAPS, hi - lo
    size = next_fast_len(length + 2 * half, real=True)
    if size not in spectra:
        spectra[size] = rfft(spectra["phases"], size, axis=-1)  # [up, size // 2 + 1]
    conv = irfft(rfft(data[:, lo:hi], size, axis=-1)[:, None, :] * spectra[size], size, axis=-1)
    return np.abs(conv[..., half:half + length]).max(axis=(0, 1))


def strict_envelope(data: "np.ndarray", envelope: "np.ndarray", hot: float, cancel: Cancel = None) -> "np.ndarray":
    """``envelope`` (the 4x :func:`_peak_envelope` of ``data [C, T]``) raised, in every 4096-sample block whose
    peak reaches ``hot`` (linear), to the peaks of an 8x oversampler with a long Kaiser filter (513 taps,
    about -100 dB stop band), per sample over ``n - 1 .. n + 1`` as there. Independent meters (ffmpeg's
    ``ebur128``, long oversamplers) read up to 0.4 dB above a short 4x filter on clicks and crackle; the
    ceiling is held by this one. Runs of hot blocks are measured together, up to 65,536 samples at a time (a
    Cancel point before each). ``[T]``, a new array."""
    import numpy as np

    frames = data.shape[-1]
    out = np.empty(frames)
    for start, stop in cancel_blocks(frames, cancel):
        out[start:stop] = envelope[start:stop]
    context, spectra = STRICT_HALF_TAPS + 1, {"phases": _strict_phases()}
    starts = np.arange(0, frames, STRICT_BLOCK)
    hot_blocks = np.maximum.reduceat(envelope, starts) >= hot
    run = CHUNK // STRICT_BLOCK
    index = 0
    while index < starts.size:
        if not hot_blocks[index]:
            index += 1
            continue
        last = index
        while last + 1 < starts.size and last + 1 - index < run and hot_blocks[last + 1]:
            last += 1
        _check(cancel)
        start, stop = int(starts[index]), min(frames, int(starts[last]) + STRICT_BLOCK)
        lo, hi = max(0, start - context), min(frames, stop + context)
        ahead = _strict_ahead(data, lo, hi, spectra)
        local = np.maximum(ahead, np.concatenate([[0.0], ahead[:-1]]))[start - lo:stop - lo]
        np.maximum(out[start:stop], local, out=out[start:stop])
        index = last + 1
    return out


def remove_dc(data: "np.ndarray", sample_rate: int, cancel: Cancel = None) -> tuple["np.ndarray", float]:
    """``data [C, T]`` without its DC: each channel's mean subtracted (a constant offset goes exactly), then a
    2nd-order Butterworth high-pass at 10 Hz (causal, in blocks) for a drifting offset; below the audible band
    and below BS.1770's own 38 Hz weighting high-pass, so sound keeps its loudness. Returns ``(new array, the
    largest channel mean removed, dBFS)``; ``-inf`` when there was none."""
    import numpy as np
    from scipy.signal import butter, sosfilt

    mean = np.zeros((data.shape[0], 1))
    for start, stop in cancel_blocks(data.shape[-1], cancel):
        mean += data[:, start:stop].sum(axis=-1, keepdims=True)
    mean /= data.shape[-1]
    out = np.empty_like(data)
    sos = butter(2, DC_HIGHPASS_HZ, "highpass", fs=sample_rate, output="sos")
    state = np.zeros((sos.shape[0], out.shape[0], 2))
    for start, stop in cancel_blocks(out.shape[-1], cancel):
        out[:, start:stop], state = sosfilt(sos, data[:, start:stop] - mean, axis=-1, zi=state)
    return out, _gain_to_db(float(np.abs(mean).max()))


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


def _held(need: "np.ndarray", look: int, half: int, pad: int, cancel: Cancel) -> "np.ndarray":
    """``held[m] = min(ext[m : m + look])`` for ``ext = [1] * pad + need + [1] * (pad + half)``, ``[2 pad + T]``,
    computed in blocks (a running minimum only reads ``look`` samples around each one)."""
    import numpy as np
    from scipy.ndimage import minimum_filter1d

    ext = np.empty(2 * pad + half + need.size)  # not np.ones: that fills it all (212 MB for 10 min) between checks
    ext[:pad], ext[pad + need.size:] = 1.0, 1.0
    for start, stop in cancel_blocks(need.size, cancel):
        ext[pad + start:pad + stop] = need[start:stop]
    held = np.empty(2 * pad + need.size)
    for start, stop in cancel_blocks(held.size, cancel):
        lo, hi = max(0, start + half - look), min(ext.size, stop + half + look)
        window = minimum_filter1d(ext[lo:hi], look, mode="constant", cval=1.0)
        held[start:stop] = window[start + half - lo:stop + half - lo]
    return held


def _released(held: "np.ndarray", rate: float, cancel: Cancel) -> "np.ndarray":
    """Exponential release in dB: ``depth[m] = max(held_db[m], depth[m - 1] * exp(-rate))``, as linear gains.
    Computed as an exp-decayed running maximum in the log domain (vectorised), block by block with the running
    maximum carried."""
    import numpy as np

    out = np.empty_like(held)
    running = -np.inf
    for start, stop in cancel_blocks(held.size, cancel):
        depth = -20.0 * np.log10(held[start:stop])  # >= 0 dB of reduction
        index = np.arange(start, stop, dtype=np.float64) * rate
        with np.errstate(divide="ignore"):
            acc = np.maximum.accumulate(np.maximum(np.log(depth) + index, running))
        running = acc[-1]
        out[start:stop] = 10.0 ** (-np.maximum(depth, np.exp(acc - index)) / 20.0)
    return out


def limiter_gain(peak: "np.ndarray", threshold: float, sample_rate: int, attack_s: float = ATTACK_S,
                 release_s: float = RELEASE_S, cancel: Cancel = None) -> "np.ndarray":
    """Gain envelope of a look-ahead peak limiter: ``gain[n] * peak[n] <= threshold`` for every ``n``.

    The needed gain ``min(1, threshold / peak)`` is held (running minimum) over the ``attack_s`` look-ahead,
    released exponentially in dB with time constant ``release_s``, then smoothed by a moving average as long as
    the look-ahead, so the gain ramps down over ``attack_s`` *before* each peak and never rises above the gain
    that peak needs. Every step runs in blocks of :data:`CHUNK` samples with ``cancel`` called between them.

    Args:
        peak: ``float [T]`` per-sample peak (e.g. the 4x-oversampled envelope), linear.
        threshold: the largest allowed ``gain * peak``, linear.
        sample_rate: Hz.
        cancel: called between blocks; raising from it stops.

    Returns:
        ``float64 [T]`` gains in (0, 1].
    """
    import numpy as np

    frames = peak.shape[-1]
    half = max(1, int(round(attack_s * sample_rate / 2)))
    look = 2 * half + 1  # odd, so a centred running minimum is a forward one shifted by ``half``
    need = np.empty(frames)
    for start, stop in cancel_blocks(frames, cancel):
        need[start:stop] = np.minimum(1.0, threshold / np.maximum(peak[start:stop], 1e-30))
    pad = look  # ones either side, so the moving average never reaches outside
    released = _released(_held(need, look, half, pad, cancel), 1.0 / max(release_s * sample_rate, 1e-9), cancel)
    # backward moving average over ``look`` samples: every value averaged at n was held over a window holding n;
    # gain[n] = mean(released[k : k + look]) with k = n + pad - look + 1
    gain = np.empty(frames)
    for start, stop in cancel_blocks(frames, cancel):
        k = start + pad - look + 1
        csum = np.concatenate([[0.0], np.cumsum(released[k:k + stop - start + look - 1])])
        gain[start:stop] = np.minimum((csum[look:] - csum[:-look]) / look, need[start:stop])  # rounding guard
    return gain


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
                sample_rate: int, cancel: Cancel = None) -> tuple["np.ndarray", float, float, bool]:
    """``data`` with ``gain_db`` and, while its true peak by :func:`strict_envelope` passes ``ceiling`` less
    :data:`TP_GUARD_DB`, the limiter aiming ``margin`` dB under that (each pass limits what the one before left,
    measured again). Returns ``(out, true peak dBTP, trim dB, limited)``; ``trim`` (<= 0) is the static gain that
    took off a rare overshoot the passes left."""
    import numpy as np

    gain = _db_to_gain(gain_db)
    out, env = np.empty_like(data), np.empty_like(envelope)
    for start, stop in cancel_blocks(out.shape[-1], cancel):
        out[:, start:stop], env[start:stop] = data[:, start:stop] * gain, envelope[start:stop] * gain
    hot = _db_to_gain(ceiling - TP_GUARD_DB - HOT_DB)
    held = ceiling - TP_GUARD_DB
    limited = False
    for attempt in range(STRICT_PASSES + 1):
        env = strict_envelope(out, env, hot, cancel)
        out_tp = _gain_to_db(float(env.max()))
        if out_tp <= held or attempt == STRICT_PASSES:
            break
        gain_curve = limiter_gain(env, _db_to_gain(held - margin), sample_rate, cancel=cancel)
        for start, stop in cancel_blocks(out.shape[-1], cancel):
            out[:, start:stop] *= gain_curve[start:stop]
        limited = True
        env = _peak_envelope(out, cancel=cancel)
    trim = 0.0
    if out_tp > held:  # the limiter works at the original rate: a rare overshoot is trimmed statically
        trim = held - out_tp - 0.01
        for start, stop in cancel_blocks(out.shape[-1], cancel):
            out[:, start:stop] *= _db_to_gain(trim)
        out_tp += trim
    return out, out_tp, trim, limited


def _without_dc(data: "np.ndarray", sample_rate: int, index: int, cancel: Cancel) -> tuple["np.ndarray", float, float]:
    """``(data without DC, its loudness in LUFS, the DC offset removed in dBFS)``; a ``ValueError`` for a silent
    clip. A clip that is only a DC offset measures ``-inf`` LUFS here (it comes out silent, with a warning)."""
    import numpy as np

    clean, offset_db = remove_dc(data, sample_rate, cancel)
    if offset_db > DC_WARN_DBFS:
        log.warning("%s: clip %d had a DC offset of %.1f dBFS; it was removed (mean, then a %g Hz high-pass) before "
                    "measuring.", NODE, index + 1, offset_db, DC_HIGHPASS_HZ)
    input_lufs = _lufs(clean, sample_rate, cancel)
    if math.isfinite(input_lufs) and input_lufs >= ABSOLUTE_GATE_LUFS:
        return clean, input_lufs, offset_db
    if math.isfinite(offset_db) and not np.any(np.abs(clean) > 1e-9):
        log.warning("%s: clip %d is only a DC offset (%.1f dBFS) with no sound: the offset is removed and the clip "
                    "comes out silent. Check the upstream node.", NODE, index + 1, offset_db)
        return np.zeros_like(data), -math.inf, offset_db
    raise ValueError(f"{NODE}: the audio is silent (or below {ABSOLUTE_GATE_LUFS:g} LUFS), so its loudness "
                     f'cannot be measured or raised: "audio" clip {index + 1} of the batch measures '
                     f"{input_lufs:.1f} LUFS. Check the upstream node: that clip should hold sound.")


def _normalize_clip(data: "np.ndarray", sample_rate: int, target: float, ceiling: float,
                    index: int, cancel: Cancel = None) -> tuple["np.ndarray", dict]:
    import numpy as np

    data, input_lufs, offset_db = _without_dc(data, sample_rate, index, cancel)
    if not math.isfinite(input_lufs):  # only a DC offset: silence
        return data, {"input_lufs": input_lufs, "output_lufs": -math.inf, "gain_db": 0.0, "dc_offset_dbfs": offset_db,
                      "input_true_peak_dbtp": -math.inf, "output_true_peak_dbtp": -math.inf, "limited": False,
                      "reached": False}
    envelope = _peak_envelope(data, cancel=cancel)  # a static gain scales it: measured once
    input_tp = _gain_to_db(float(envelope.max()))
    plain_gain = target - input_lufs
    gain_db = plain_gain
    margin = MARGIN_DB
    best = None
    previous = None  # (gain_db, output_lufs) of the pass before, for a secant step
    for _ in range(MAX_PASSES):
        out, out_tp, trim, limited = _apply_gain(data, envelope, gain_db, ceiling, margin, sample_rate, cancel)
        margin -= trim
        out_lufs = _lufs(out, sample_rate, cancel)
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
            "dc_offset_dbfs": offset_db, "input_true_peak_dbtp": input_tp, "output_true_peak_dbtp": info["output_true_peak_dbtp"],
            "limited": bool(info["limited"]), "reached": bool(reached)}
    return np.asarray(out), info


def normalize_loudness(waveform: "torch.Tensor", sample_rate: int, target_lufs: float = -23.0,
                       ceiling_dbtp: float = -1.0, cancel: Cancel = None) -> tuple["torch.Tensor", list[dict]]:
    """Bring each clip to ``target_lufs`` integrated loudness (ITU-R BS.1770-4) with its true peak at or under
    ``ceiling_dbtp``.

    Per clip: first its DC goes (the mean, then a 10 Hz 2nd-order high-pass: :func:`remove_dc`; a clip that is
    only a DC offset comes out silent, with a warning); then one static gain to the target; if the true peak then
    passes the ceiling, a look-ahead true-peak limiter (5 ms attack, 80 ms release, aiming 0.1 dB under the
    ceiling) pulls the peaks down. The true peak is read 4x oversampled, and near the ceiling 8x with a long
    Kaiser filter (:func:`strict_envelope`); the limiter runs again on what it left until that meter reads at
    least 0.3 dB under the ceiling (:data:`TP_GUARD_DB`: ffmpeg's ``ebur128`` reads abrupt clicks that much higher). Then loudness is measured again and a make-up gain applied, for up to 4 passes, until the clip is within
    0.5 LU of the target and under the ceiling. When both cannot be had, the ceiling wins: the clip stays under
    it, a warning is logged and its info says ``"reached": False``.

    Args:
        waveform: ``float [B, C, T]`` (or ``[C, T]`` as one clip), at most 5 channels, at least 0.4 s long.
        sample_rate: Hz.
        target_lufs: integrated loudness to reach, -70..0 LUFS (see :data:`PRESETS`).
        ceiling_dbtp: highest true peak allowed, -20..0 dBTP.
        cancel: called between blocks of work (at most 65,536 samples per channel each); raising from it stops
            (ComfyUI's Cancel).

    Returns:
        ``(waveform, infos)``: a new ``float32 [B, C, T]`` tensor, and per clip a dict with ``input_lufs``,
        ``output_lufs`` (LUFS), ``gain_db`` (the static gain, dB), ``input_true_peak_dbtp``,
        ``output_true_peak_dbtp`` (dBTP), ``dc_offset_dbfs`` (the DC offset removed; ``-inf`` for none),
        ``limited`` (the limiter acted) and ``reached`` (both goals met).

    Raises:
        ValueError: for a bad input or setting, a silent clip (below -70 LUFS) or one shorter than 0.4 s.
    """
    import numpy as np
    import torch

    _check_settings(target_lufs, ceiling_dbtp)
    sample_rate = check_sample_rate(NODE, sample_rate, '"sample_rate"')
    batch = to_numpy(as_batch(waveform, NODE))
    for clip in batch:
        _check_clip(clip, sample_rate, NODE, cancel)
    outs, infos = [], []
    for index, clip in enumerate(batch):
        out, info = _normalize_clip(clip, sample_rate, float(target_lufs), float(ceiling_dbtp), index, cancel)
        outs.append(out)
        infos.append(info)
        log.info("%s: clip %d %.2f -> %.2f LUFS, true peak %.2f -> %.2f dBTP%s", NODE, index + 1,
                 info["input_lufs"], info["output_lufs"], info["input_true_peak_dbtp"],
                 info["output_true_peak_dbtp"], ", limited" if info["limited"] else "")
    result = np.empty((len(outs), *outs[0].shape), dtype=np.float32)
    for start, stop in cancel_blocks(result.shape[-1], cancel):
        for index, out in enumerate(outs):
            result[index, :, start:stop] = out[:, start:stop]
    return torch.from_numpy(result), infos
