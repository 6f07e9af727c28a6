"""First-order ambisonics in AmbiX (plain functions, numpy/scipy only): encode, rotate, mix and decode.

AmbiX is the ambisonics file convention of YouTube 360, Resonance Audio, Steam Audio, Wwise, FMOD and Unreal:
channels in ACN order **W, Y, Z, X**, SN3D normalisation. A plane wave ``s`` from azimuth ``theta`` (degrees,
0 = front, +90 = left) and elevation ``phi`` (+90 = up) is::

    W = s,  Y = s sin(theta) cos(phi),  Z = s sin(phi),  X = s cos(theta) cos(phi)

Decoding: a max-rE weighted mode-matching decoder to 10 virtual speakers (8 around the horizon, one up, one down)
gives the energy vector (direction) and the diffuse part of the binaural decode. Binaural is parametric, as DirAC:
per time-frequency bin the direction (active intensity) and diffuseness are measured; the direct part is rendered
from that direction through a parametric spherical head (Brown & Duda, "A structural model for binaural sound
synthesis", IEEE TSAP 1998: a one-pole/one-zero head-shadow filter per ear and per-ear delays whose difference is
Woodworth's ITD ``a/c (sin theta + theta)``), the diffuse part through the virtual speakers, each speaker rendered
with the same head. The stereo decode is two virtual cardioids at +-45 deg.

Shapes: ``waveform: float [B, C, T]``; AmbiX: ``[B, 4, T]``. Every function returns new float32 tensors.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ..checks import check_sample_rate, is_number
from .contract import AMBIX_FORMAT, as_batch, require_finite, to_numpy

if TYPE_CHECKING:
    import numpy as np
    import torch

ENCODE = "Spatial Encode (AmbiX)"
MIX = "Mix in Space (AmbiX)"
BINAURAL = "Binaural from Ambisonics"
CHANNELS = ("W", "Y", "Z", "X")  # ACN 0..3
HEAD_RADIUS_M = 0.0875  # a standard adult head (Brown & Duda; Woodworth ITD at 90 deg = 0.656 ms)
SPEED_OF_SOUND = 343.0  # m/s at 20 deg C
REFERENCE_DISTANCE_M = 1.0  # distance gain is 1 here (1/r law)
AIR_DB_PER_M_8K = 0.076  # air absorption at 8 kHz, 20 deg C, 50 % humidity (ISO 9613-1), dB per metre
SHADOW_ALPHA_MIN = 0.1  # Brown & Duda: the head shadow's deepest high-frequency cut (-20 dB) ...
SHADOW_THETA_MIN_DEG = 150.0  # ... at 150 deg from the ear
MAX_RE_GAIN = 1.0 / math.sqrt(3.0)  # first-order max-rE weight in 3-D (largest root of P2)
STEREO_ANGLE_DEG = 45.0  # the stereo decode's virtual cardioids point at +-45 deg
OUTPUTS = ("binaural", "stereo speakers")
DECORRELATION_SECONDS = 0.02  # length of the random-phase decorrelation filters of a diffuse bed


def speaker_directions() -> "np.ndarray":
    """The binaural decoder's virtual speakers as unit vectors ``[10, 3]`` (x front, y left, z up): 8 around the
    horizon every 45 deg from the front, then straight up and straight down."""
    import numpy as np

    az = np.radians(np.arange(8) * 45.0)
    horizon = np.stack([np.cos(az), np.sin(az), np.zeros(8)], axis=1)
    return np.concatenate([horizon, [[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]]])


def direction_gains(azimuth_deg: float, elevation_deg: float, width_deg: float = 0.0) -> "np.ndarray":
    """The AmbiX gains ``[W, Y, Z, X]`` (SN3D) of a source at ``azimuth_deg`` / ``elevation_deg``.

    ``width_deg`` spreads it over a horizontal arc of that width centred on the azimuth: the first-order gains of
    Y and X are the arc's average, ``sin(w/2) / (w/2)`` times the point source's (360 deg: all around, W only).
    """
    import numpy as np

    theta, phi, half = math.radians(azimuth_deg), math.radians(elevation_deg), math.radians(width_deg) / 2.0
    spread = math.sin(half) / half if half > 1e-9 else 1.0
    return np.array([1.0, spread * math.sin(theta) * math.cos(phi), math.sin(phi),
                     spread * math.cos(theta) * math.cos(phi)])


def distance_filter(data: "np.ndarray", sample_rate: int, distance_m: float) -> "np.ndarray":
    """``data [..., T]`` as heard from ``distance_m``: gain ``REFERENCE_DISTANCE_M / distance_m`` (1/r) and air
    absorption as a gentle one-pole low-pass whose loss at 8 kHz is ``AIR_DB_PER_M_8K`` per metre past the
    reference (none within it; 100 m: -7.5 dB at 8 kHz, corner near 3.7 kHz)."""
    from scipy.signal import butter, lfilter

    out = data * (REFERENCE_DISTANCE_M / distance_m)
    loss_db = AIR_DB_PER_M_8K * max(0.0, distance_m - REFERENCE_DISTANCE_M)
    if loss_db <= 0.0:
        return out
    corner = 8000.0 / math.sqrt(10.0 ** (loss_db / 10.0) - 1.0)
    if corner >= 0.45 * sample_rate:
        return out
    b, a = butter(1, corner, fs=sample_rate)
    return lfilter(b, a, out, axis=-1)


def _check_number(node: str, name: str, value, low: float, high: float, hint: str) -> float:
    if not is_number(value) or not low <= value <= high:
        raise ValueError(f'{node}: "{name}" is {value!r} but must be a number from {low:g} to {high:g}. {hint}')
    return float(value)


def _source(waveform, sample_rate, node: str) -> tuple["np.ndarray", int]:
    waveform = as_batch(waveform, node)
    require_finite(waveform, node, "it cannot be placed in space")
    if waveform.shape[1] > 2:
        raise ValueError(f'{node}: "audio" has {waveform.shape[1]} channels but must be mono or stereo. A 4-channel '
                         "clip is already ambisonic: connect it to Mix in Space (AmbiX) directly.")
    return to_numpy(waveform), check_sample_rate(node, sample_rate)


def encode_source(waveform: "torch.Tensor", sample_rate: int, azimuth_deg: float, elevation_deg: float = 0.0, *,
                  width_deg: float = 0.0, distance_m: float = REFERENCE_DISTANCE_M,
                  stereo_spread_deg: float = 60.0) -> "torch.Tensor":
    """Place a mono or stereo clip as a point (or arc) source in AmbiX.

    Args:
        waveform: ``float [B, C, T]`` (C = 1 or 2; ``[C, T]`` is one clip).
        sample_rate: Hz.
        azimuth_deg: -180..180, 0 = front, +90 = left (AmbiX).
        elevation_deg: -90..90, +90 = up.
        width_deg: 0..360, horizontal spread (see :func:`direction_gains`).
        distance_m: 0.1..1000 m: 1/r gain relative to 1 m and air absorption (:func:`distance_filter`).
        stereo_spread_deg: 0..360, a stereo clip's left channel sits at ``azimuth + spread/2``, its right at
            ``azimuth - spread/2``; each at ``1/sqrt(2)`` so decorrelated channels keep their summed power.

    Returns:
        ``float32 [B, 4, T]`` AmbiX (W, Y, Z, X; SN3D).

    Raises:
        ValueError: naming Spatial Encode (AmbiX) and the input, for a bad clip, rate or setting.
    """
    import numpy as np
    import torch

    data, rate = _source(waveform, sample_rate, ENCODE)
    az = _check_number(ENCODE, "azimuth", azimuth_deg, -360, 360, "0 is front, 90 left, -90 right.")
    el = _check_number(ENCODE, "elevation", elevation_deg, -90, 90, "0 is the horizon, 90 straight up.")
    width = _check_number(ENCODE, "width", width_deg, 0, 360, "0 is a point, 360 all around.")
    dist = _check_number(ENCODE, "distance", distance_m, 0.1, 1000, "1 m is the reference (gain 1).")
    spread = _check_number(ENCODE, "stereo_spread", stereo_spread_deg, 0, 360, "60 is a usual stereo width.")
    data = distance_filter(data, rate, dist)
    if data.shape[1] == 1:
        out = direction_gains(az, el, width)[None, :, None] * data
    else:
        left, right = direction_gains(az + spread / 2, el, width), direction_gains(az - spread / 2, el, width)
        out = (left[None, :, None] * data[:, :1] + right[None, :, None] * data[:, 1:2]) / math.sqrt(2.0)
    return torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32))


def encode(waveform: "torch.Tensor", sample_rate: int, azimuth_deg: float = 0.0, elevation_deg: float = 0.0,
           width_deg: float = 0.0, distance_m: float = REFERENCE_DISTANCE_M, stereo_spread_deg: float = 60.0,
           diffuse: bool = False) -> "torch.Tensor":
    """Spatial Encode (AmbiX): :func:`encode_diffuse` when ``diffuse`` (direction, width and spread unused), else
    :func:`encode_source`."""
    if diffuse:
        return encode_diffuse(waveform, sample_rate, distance_m=distance_m)
    return encode_source(waveform, sample_rate, azimuth_deg, elevation_deg, width_deg=width_deg,
                         distance_m=distance_m, stereo_spread_deg=stereo_spread_deg)


def decorrelation_filters(count: int, taps: int, seed: int = 0) -> "np.ndarray":
    """``count`` mutually decorrelating all-pass FIR filters ``[count, taps]``: flat magnitude, random phase
    (seeded: the same filters every run)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    bins = taps // 2 + 1
    phase = rng.uniform(-math.pi, math.pi, (count, bins))
    phase[:, 0] = 0.0
    phase[:, -1] = 0.0
    return np.fft.irfft(np.exp(1j * phase), n=taps, axis=-1)


def encode_diffuse(waveform: "torch.Tensor", sample_rate: int, *, distance_m: float = REFERENCE_DISTANCE_M,
                   seed: int = 0) -> "torch.Tensor":
    """Encode a bed as a diffuse field: all around, no direction.

    Each input channel goes through a different random-phase all-pass filter into each of W, Y, Z, X (so the four
    are mutually uncorrelated), with the diffuse-field energies of SN3D: W the clip's mean channel power, Y, Z and X
    a third of it each (the average of ``sin^2``/``cos^2`` over the sphere); DC goes to W only. Distance as
    :func:`encode_source`.

    Returns:
        ``float32 [B, 4, T]`` AmbiX, as long as the input.
    """
    import numpy as np
    import torch
    from scipy.signal import oaconvolve

    data, rate = _source(waveform, sample_rate, ENCODE)
    dist = _check_number(ENCODE, "distance", distance_m, 0.1, 1000, "1 m is the reference (gain 1).")
    data = distance_filter(data, rate, dist)
    channels, frames = data.shape[1], data.shape[-1]
    taps = 1 << max(4, math.ceil(math.log2(DECORRELATION_SECONDS * rate)))
    filters = decorrelation_filters(4 * channels, taps, seed).reshape(4, channels, taps)
    # an all-pass cannot decorrelate DC: it would reach Y, Z, X alike and point the bed at (45, 35) deg; a diffuse
    # field has no velocity at DC, so their filters drop it (only the DC bin: the taps' mean is removed)
    filters[1:] -= filters[1:].mean(axis=-1, keepdims=True)
    gains = np.array([1.0] + [1.0 / math.sqrt(3.0)] * 3) / math.sqrt(channels)
    out = np.zeros((data.shape[0], 4, frames))
    for k in range(4):
        for c in range(channels):
            out[:, k] += gains[k] * oaconvolve(data[:, c], filters[k, c][None], axes=-1)[:, :frames]
    return torch.from_numpy(out.astype(np.float32))


def rotation_matrix(yaw_deg: float) -> "np.ndarray":
    """The ``[4, 4]`` AmbiX matrix that turns a scene by ``yaw_deg`` about the vertical (positive: sources move
    to the left, a source at azimuth a ends at a + yaw). W and Z are unchanged."""
    import numpy as np

    c, s = math.cos(math.radians(yaw_deg)), math.sin(math.radians(yaw_deg))
    return np.array([[1, 0, 0, 0], [0, c, 0, s], [0, 0, 1, 0], [0, -s, 0, c]], dtype=np.float64)


def check_ambix(waveform, node: str, what: str = '"audio"') -> "np.ndarray":
    """``waveform`` as float64 ``[B, 4, T]``, or a ``ValueError`` naming ``node`` when it is not 4-channel."""
    batch = as_batch(waveform, node, what)
    if batch.shape[1] != 4:
        raise ValueError(f"{node}: {what} has {batch.shape[1]} channels but must be 4-channel AmbiX ({AMBIX_FORMAT}). "
                         "Connect Spatial Encode (AmbiX) or Mix in Space (AmbiX), or a 4-channel AmbiX file.")
    require_finite(batch, node, "it cannot be decoded")
    return to_numpy(batch)


def rotate(ambix: "torch.Tensor", yaw_deg: float, node: str = MIX) -> "torch.Tensor":
    """``ambix [B, 4, T]`` turned by ``yaw_deg`` (see :func:`rotation_matrix`)."""
    import numpy as np
    import torch

    data = check_ambix(ambix, node)
    yaw = _check_number(node, "yaw", yaw_deg, -360, 360, "0 leaves the scene as it is.")
    out = np.einsum("ij,bjt->bit", rotation_matrix(yaw), data)
    return torch.from_numpy(out.astype(np.float32))


def mix_ambix(layers: list[tuple["torch.Tensor", int, float]], yaw_deg: float = 0.0,
              headroom_db: float = 1.0) -> tuple["torch.Tensor", int]:
    """Sum AmbiX layers ``(waveform [B, 4, T], sample_rate, gain_db)`` and turn the scene by ``yaw_deg``.

    Layers are resampled to the highest rate and brought to the first layer's length (the bed): longer ones cut,
    shorter ones looped with a 10 ms cross-fade at each wrap. If the summed peak passes ``-headroom_db`` dBFS the
    whole mix is scaled down by one gain (every channel alike, so directions stay).

    Returns:
        ``(float32 [B, 4, T], sample_rate)``.
    """
    import numpy as np
    import torch

    from .mix import loop_to_length
    from .resample import resample_array

    if len(layers) < 2:
        raise ValueError(f"{MIX}: {len(layers)} layer(s) connected but it mixes at least 2. Connect audio_1 and audio_2.")
    checked = [(check_ambix(w, MIX, f'"audio_{i + 1}"'), check_sample_rate(MIX, r), g) for i, (w, r, g) in
               enumerate(layers)]
    rate = max(r for _, r, _ in checked)
    batch = max(d.shape[0] for d, _, _ in checked)
    frames = None
    mix = None
    for i, (data, src, gain_db) in enumerate(checked):
        if data.shape[0] not in (1, batch):
            raise ValueError(f'{MIX}: "audio_{i + 1}" has a batch of {data.shape[0]} but the others {batch}. '
                             "Connect clips of batch 1 or all of the same batch.")
        gain = 10.0 ** (_check_number(MIX, f"gain_db_{i + 1}", gain_db, -60, 24, "0 leaves it unchanged.") / 20.0)
        data = resample_array(data, src, rate) * gain
        frames = frames or data.shape[-1]
        data = loop_to_length(data, frames, max(1, round(0.01 * rate))) if data.shape[-1] < frames else data
        mix = data[..., :frames] + (0.0 if mix is None else mix)
    peak, ceiling = float(np.abs(mix).max()), 10.0 ** (-headroom_db / 20.0)
    mix = mix * (ceiling / peak) if peak > ceiling else mix
    return rotate(torch.from_numpy(mix.astype(np.float32)), yaw_deg), rate


def decoder_matrix(directions: "np.ndarray", max_re: bool = True) -> "np.ndarray":
    """A ``[L, 4]`` mode-matching decoder (pseudo-inverse of the speakers' SN3D encoding) for unit vectors
    ``directions [L, 3]``; ``max_re`` weights first order by ``1/sqrt(3)`` (max-rE: the narrowest energy image)."""
    import numpy as np

    encode = np.stack([np.ones(len(directions)), directions[:, 1], directions[:, 2], directions[:, 0]])  # [4, L]
    weights = np.array([1.0] + [MAX_RE_GAIN if max_re else 1.0] * 3)
    return np.linalg.pinv(encode) * weights[None, :]


def decode_speakers(ambix: "np.ndarray", directions: "np.ndarray") -> "np.ndarray":
    """Speaker feeds ``[B, L, T]`` of float64 AmbiX ``[B, 4, T]`` for the layout ``directions [L, 3]``."""
    import numpy as np

    return np.einsum("lk,bkt->blt", decoder_matrix(directions), ambix)


def energy_directions(ambix: "torch.Tensor", sample_rate: int, frame_seconds: float = 0.1) -> "np.ndarray":
    """The energy vector rE of the decoded scene per frame (Gerzon): ``sum(E_l u_l) / sum(E_l)`` over the
    virtual speakers of :func:`speaker_directions`, ``[B, frames, 4]`` as (azimuth deg, elevation deg, |rE|,
    energy); silent frames are NaN."""
    import numpy as np

    data = check_ambix(ambix, BINAURAL)
    dirs = speaker_directions()
    feeds = decode_speakers(data, dirs)
    hop = max(1, round(frame_seconds * sample_rate))
    n = max(1, feeds.shape[-1] // hop)
    energy = (feeds[..., :n * hop] ** 2).reshape(feeds.shape[0], feeds.shape[1], n, hop).sum(-1)  # [B, L, n]
    total = energy.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        vec = np.einsum("bln,lx->bnx", energy, dirs) / total[..., None]
    az = np.degrees(np.arctan2(vec[..., 1], vec[..., 0]))
    el = np.degrees(np.arctan2(vec[..., 2], np.hypot(vec[..., 0], vec[..., 1])))
    return np.stack([az, el, np.linalg.norm(vec, axis=-1), total], axis=-1)


def ear_delay_seconds(angle_to_ear: "np.ndarray") -> "np.ndarray":
    """Brown & Duda's per-ear delay for a source ``angle_to_ear`` radians from the ear's axis (0 = at the ear),
    plus ``a/c`` so it is never negative: ``a/c (1 - cos t)`` in front of the ear, ``a/c (1 + t - pi/2)`` behind
    it. The two ears' difference is Woodworth's ITD ``a/c (sin theta + theta)`` (0.656 ms at 90 deg)."""
    import numpy as np

    a_c = HEAD_RADIUS_M / SPEED_OF_SOUND
    return np.where(angle_to_ear < math.pi / 2, a_c * (1.0 - np.cos(angle_to_ear)),
                    a_c * (1.0 + angle_to_ear - math.pi / 2))


def head_shadow(freqs_hz: "np.ndarray", angle_to_ear) -> "np.ndarray":
    """Brown & Duda's one-pole/one-zero head-shadow response ``(1 + j a w/2w0) / (1 + j w/2w0)``, ``w0 = c/a``,
    ``a = (1 + amin/2) + (1 - amin/2) cos(t / tmin * 180 deg)``: +6 dB at high frequencies at the ear, -20 dB at
    150 deg from it, unchanged at low frequencies (``freqs_hz`` and ``angle_to_ear`` radians broadcast)."""
    import numpy as np

    alpha = (1 + SHADOW_ALPHA_MIN / 2) + (1 - SHADOW_ALPHA_MIN / 2) * np.cos(
        np.asarray(angle_to_ear) / math.radians(SHADOW_THETA_MIN_DEG) * math.pi)
    x = 1j * 2 * math.pi * np.asarray(freqs_hz) * HEAD_RADIUS_M / (2 * SPEED_OF_SOUND)
    return (1 + alpha * x) / (1 + x)


def ear_responses(freqs_hz: "np.ndarray", to_left: "np.ndarray") -> tuple["np.ndarray", "np.ndarray"]:
    """The spherical head's (left, right) frequency responses for sources whose direction has the component
    ``to_left`` (``u . y``, -1..1) towards the left ear: head shadow times the ear's delay (broadcast)."""
    import numpy as np

    out = []
    for side in (1.0, -1.0):
        angle = np.arccos(np.clip(side * to_left, -1.0, 1.0))
        out.append(head_shadow(freqs_hz, angle) * np.exp(-2j * math.pi * freqs_hz * ear_delay_seconds(angle)))
    return out[0], out[1]


def speaker_binaural_responses(freqs_hz: "np.ndarray") -> "np.ndarray":
    """``[2, 4, F]``: per ear (left, right) and AmbiX channel, the response of the virtual-speaker decode
    (:func:`decoder_matrix` to :func:`speaker_directions`) with each speaker rendered through the head model."""
    import numpy as np

    dirs = speaker_directions()
    left, right = ear_responses(freqs_hz[None, :], dirs[:, 1:2])  # [L, F] each
    decoder = decoder_matrix(dirs)  # [L, 4]
    return np.stack([np.einsum("lk,lf->kf", decoder, ear) for ear in (left, right)])


def stft_frames(rate: int) -> tuple[int, int]:
    size = 1 << max(6, round(math.log2(0.02 * rate)))  # ~20 ms STFT frames, 75 % overlap
    return size, size // 4


def _direction_and_diffuseness(spectra: "np.ndarray", smooth: int) -> tuple["np.ndarray", "np.ndarray"]:
    """Per STFT bin of AmbiX spectra ``[B, 4, F, N]``: the arrival direction's left component ``u . y`` and the
    diffuseness ``psi = 1 - |<I>| / <E>`` (DirAC), from the active intensity ``Re(W* [X, Y, Z])`` and the energy
    ``(|W|^2 + |X|^2 + |Y|^2 + |Z|^2) / 2`` averaged over ``smooth`` frames. A plane wave: psi 0; diffuse: near 1."""
    import numpy as np
    from scipy.ndimage import uniform_filter1d

    w = spectra[:, 0]
    intensity = uniform_filter1d(np.real(np.conj(w)[:, None] * spectra[:, [3, 1, 2]]), smooth, axis=-1)
    energy = uniform_filter1d(0.5 * (np.abs(spectra) ** 2).sum(axis=1), smooth, axis=-1)
    norm = np.linalg.norm(intensity, axis=1)
    tiny = 1e-30
    psi = np.clip(1.0 - norm / np.maximum(energy, tiny), 0.0, 1.0)
    return intensity[:, 1] / np.maximum(norm, tiny), psi


def check_yaw(node: str, yaw_deg) -> float:
    return _check_number(node, "yaw", yaw_deg, -360, 360, "0 faces the front of the scene; 90 turns the head left.")


BLOCK_FRAMES = 1 << 19  # binaural decode block (~12 s at 44.1 kHz): memory stays flat for hour-long clips


def ears_to_wave(out: "np.ndarray", rate: int, frames: int) -> "np.ndarray":
    """The two ears' spectra ``[B, 2, F, N]`` (the binaural decoders' STFT frames) back to ``[B, 2, frames]``
    samples, cut or zero-padded to the input's length."""
    import numpy as np
    from scipy.signal import istft

    size, hop = stft_frames(rate)
    _, wave = istft(out, fs=rate, nperseg=size, noverlap=size - hop, time_axis=-1, freq_axis=-2)
    wave = wave[..., :frames]
    if wave.shape[-1] < frames:
        wave = np.concatenate([wave, np.zeros(wave.shape[:-1] + (frames - wave.shape[-1],))], axis=-1)
    return wave


def _binaural_block(data: "np.ndarray", rate: int) -> "np.ndarray":
    """:func:`decode_binaural`'s work on float64 AmbiX ``[B, 4, T]`` -> ``[B, 2, T]`` (whole, no blocks)."""
    import numpy as np
    from scipy.signal import stft

    size, hop = stft_frames(rate)
    freqs, _, spectra = stft(data, fs=rate, nperseg=size, noverlap=size - hop, axis=-1)  # [B, 4, F, N]
    to_left, psi = _direction_and_diffuseness(spectra, smooth=4)
    direct = np.sqrt(1.0 - psi) * spectra[:, 0]
    diffuse = np.einsum("ekf,bkfn->befn", speaker_binaural_responses(freqs), spectra) * np.sqrt(psi)[:, None]
    ears = ear_responses(freqs[None, :, None], to_left)
    out = np.stack([direct * ear for ear in ears], axis=1) + diffuse
    return ears_to_wave(out, rate, data.shape[-1])


def decode_binaural(ambix: "torch.Tensor", sample_rate: int, yaw_deg: float = 0.0) -> "torch.Tensor":
    """Headphone audio ``float32 [B, 2, T]`` (left, right) of AmbiX ``[B, 4, T]``, the listener's head turned by
    ``yaw_deg`` (positive: to the left, so the scene turns right).

    Parametric, in ~20 ms STFT frames (as DirAC): each bin's direct part ``sqrt(1 - psi) W`` is rendered from its
    measured direction through the spherical head (:func:`ear_responses`: Woodworth ITD and Brown-Duda shadow), so
    a single source keeps the model's full ITD; the diffuse part ``sqrt(psi)`` goes through the virtual-speaker
    decode (:func:`speaker_binaural_responses`). See :func:`_direction_and_diffuseness`. Long clips are decoded
    in blocks of :data:`BLOCK_FRAMES` with 32 frames of context each side, aligned to the frame hop, so the
    result is the whole-clip result (up to rounding) in bounded memory.
    """
    import numpy as np
    import torch

    rate = check_sample_rate(BINAURAL, sample_rate)
    yaw = check_yaw(BINAURAL, yaw_deg)
    data = np.einsum("ij,bjt->bit", rotation_matrix(-yaw), check_ambix(ambix, BINAURAL))
    frames = data.shape[-1]
    margin = 32 * stft_frames(rate)[1]
    out = np.zeros((data.shape[0], 2, frames))
    for start in range(0, frames, BLOCK_FRAMES):
        lo, hi = max(0, start - margin), min(frames, start + BLOCK_FRAMES + margin)
        block = _binaural_block(data[..., lo:hi], rate)
        end = min(frames, start + BLOCK_FRAMES)
        out[..., start:end] = block[..., start - lo:end - lo]
    return torch.from_numpy(out.astype(np.float32))


def decode_stereo(ambix: "torch.Tensor", yaw_deg: float = 0.0,
                  angle_deg: float = STEREO_ANGLE_DEG) -> "torch.Tensor":
    """Loudspeaker stereo ``float32 [B, 2, T]``: two virtual cardioid microphones at ``+-angle_deg`` on the
    horizon (``(W + X cos a +- Y sin a) / 2``), the head turned by ``yaw_deg`` as in :func:`decode_binaural`."""
    import numpy as np
    import torch

    yaw = check_yaw(BINAURAL, yaw_deg)
    data = np.einsum("ij,bjt->bit", rotation_matrix(-yaw), check_ambix(ambix, BINAURAL))
    c, s = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    left = 0.5 * (data[:, 0] + c * data[:, 3] + s * data[:, 1])
    right = 0.5 * (data[:, 0] + c * data[:, 3] - s * data[:, 1])
    return torch.from_numpy(np.stack([left, right], axis=1).astype(np.float32))


def decode(ambix: "torch.Tensor", sample_rate: int, yaw_deg: float = 0.0, output: str = "binaural") -> "torch.Tensor":
    """:func:`decode_binaural` or :func:`decode_stereo` by ``output`` (one of :data:`OUTPUTS`)."""
    if output not in OUTPUTS:
        raise ValueError(f'{BINAURAL}: "output" is {output!r} but must be one of {", ".join(OUTPUTS)}. Pick one.')
    if output == "binaural":
        return decode_binaural(ambix, sample_rate, yaw_deg)
    return decode_stereo(ambix, yaw_deg)


def clear_channel_mask(riff: bytes) -> bytes:
    """A WAVE_FORMAT_EXTENSIBLE file's bytes with its channel mask set to 0 (no speaker positions), as ambisonic
    WAV files carry it: libsndfile writes 4 channels as quad (front/back left/right), which players would route
    to speakers. Other files come back unchanged."""
    import struct

    at = riff.find(b"fmt ", 12)
    if at < 0 or struct.unpack_from("<IH", riff, at + 4) != (40, 0xFFFE):
        return riff
    return riff[:at + 28] + b"\0\0\0\0" + riff[at + 32:]
