"""Binaural decoding of AmbiX through a measured HRTF: a user's SOFA file (optional; read with ``sofar``).

Parametric, as the built-in decode (:func:`~.spatial.decode_binaural`), with measured ears in place of the
spherical head: per time-frequency bin, the direct part is filtered by the head-related transfer function pair
measured nearest the bin's arrival direction; the diffuse part is decoded to the virtual loudspeakers of
:func:`~.spatial.speaker_directions` (8 around the horizon, up, down), each moved to the nearest direction the SOFA
file measured (duplicates dropped), with the max-rE mode-matching decoder of :func:`~.spatial.decoder_matrix` built
for those measured directions, each speaker through its measured ear pair. HRIRs measured at another rate are
resampled to the audio's rate (and scaled by the rate ratio, so their frequency response stays). Without a SOFA
file the pack's built-in spherical head is used.

``sofar`` is an optional dependency (``pip install sofar``, the pack's ``hrtf`` extra), imported only when a SOFA
file is read. Stdlib-only at import.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..checks import check_sample_rate
from .spatial import (
    BINAURAL,
    BLOCK_FRAMES,
    check_ambix,
    check_yaw,
    decoder_matrix,
    ears_to_wave,
    rotation_matrix,
    speaker_directions,
    stft_frames,
)

if TYPE_CHECKING:
    import numpy as np
    import torch

BUILTIN = "built-in (spherical head)"  # the hrtf choice that keeps the parametric spherical-head decode
SOFA_EXTS = (".sofa",)
INSTALL = "pip install sofar"


@dataclass(frozen=True)
class Hrtf:
    """A measured HRTF set: ``hrirs float64 [M, 2, N]`` (left, right ear) for the unit ``directions [M, 3]``
    (x front, y left, z up) at ``sample_rate`` Hz; ``name`` for messages."""

    hrirs: "np.ndarray"
    directions: "np.ndarray"
    sample_rate: int
    name: str


def _unit_vectors(position: "np.ndarray", kind: str) -> "np.ndarray":
    """SOFA source positions ``[M, 3]`` (spherical: azimuth deg, elevation deg, radius; or cartesian) as unit
    vectors in the SOFA frame, which is AmbiX's (x front, y left, z up; azimuth counter-clockwise from the front)."""
    import numpy as np

    if kind.lower().startswith("spherical"):
        az, el = np.radians(position[:, 0]), np.radians(position[:, 1])
        vec = np.stack([np.cos(az) * np.cos(el), np.sin(az) * np.cos(el), np.sin(el)], axis=1)
    else:
        vec = np.asarray(position[:, :3], dtype=np.float64)
    norm = np.linalg.norm(vec, axis=1, keepdims=True)
    return vec / np.where(norm > 0, norm, 1.0)


def read_sofa(path: str, node: str = BINAURAL) -> Hrtf:
    """The HRIRs of a SOFA file (``SimpleFreeFieldHRIR`` or any FIR convention with two receivers).

    Receivers are put in (left, right) order by their ``ReceiverPosition`` (left: larger y); a ``Data.Delay``
    is added to the impulse responses as leading zeros.

    Raises:
        ValueError: naming ``node``: ``sofar`` is not installed (``pip install sofar``), the file is missing or
            unreadable, or it is not a two-ear impulse-response set.
    """
    import numpy as np

    name = os.path.basename(path)
    try:
        import sofar
    except ImportError as err:
        raise ValueError(f'{node}: "hrtf" is {name!r}, a SOFA file, but the SOFA reader is not installed. Run '
                         f"`{INSTALL}` in this Python environment (it is optional), or use {BUILTIN!r}.") from err
    if not os.path.isfile(path):
        raise ValueError(f'{node}: "hrtf" file {path} does not exist. Put a .sofa file in ComfyUI/models/hrtf/ '
                         f"(or give its path), or use {BUILTIN!r}.")
    try:
        sofa = sofar.read_sofa(path, verify=False, verbose=False)
        data_type = str(getattr(sofa, "GLOBAL_DataType", "FIR"))
        ir = np.asarray(sofa.Data_IR, dtype=np.float64)
        rate = float(np.asarray(sofa.Data_SamplingRate).ravel()[0])
        position = np.atleast_2d(np.asarray(sofa.SourcePosition, dtype=np.float64))
        kind = str(sofa.SourcePosition_Type)
        receivers = np.asarray(sofa.ReceiverPosition, dtype=np.float64)
        delay = np.asarray(getattr(sofa, "Data_Delay", 0.0), dtype=np.float64)
    except Exception as err:  # sofar/netCDF raise many types for a bad file
        raise ValueError(f'{node}: "hrtf" file {name!r} could not be read as SOFA ({type(err).__name__}: {err}). '
                         f"Use a SOFA HRTF file (e.g. a SimpleFreeFieldHRIR set), or {BUILTIN!r}.") from err
    if not data_type.startswith("FIR") or ir.ndim != 3 or ir.shape[1] != 2:
        raise ValueError(f'{node}: "hrtf" file {name!r} holds {data_type} data of shape {ir.shape}, not impulse '
                         "responses for two ears [measurements, 2, samples]. Use a SimpleFreeFieldHRIR file.")
    if position.shape[0] == 1 and ir.shape[0] > 1:
        position = np.repeat(position, ir.shape[0], axis=0)
    if position.shape[0] != ir.shape[0] or not math.isfinite(rate) or rate <= 0 or not np.isfinite(ir).all():
        raise ValueError(f'{node}: "hrtf" file {name!r} has {position.shape[0]} source positions for {ir.shape[0]} '
                         f"measurements (sample rate {rate:g}) or non-finite samples. Use a consistent SOFA file.")
    try:
        delay = np.rint(np.broadcast_to(np.atleast_2d(delay), (ir.shape[0], 2))).astype(int)
    except ValueError:
        delay = np.zeros((ir.shape[0], 2), dtype=int)
    if delay.max() > 0:  # a broadcast onset delay in samples: put it into the impulse responses
        padded = np.zeros((ir.shape[0], 2, ir.shape[-1] + int(delay.max())))
        for m in range(ir.shape[0]):
            for ear in range(2):
                d = max(0, int(delay[m, ear]))
                padded[m, ear, d:d + ir.shape[-1]] = ir[m, ear]
        ir = padded
    flat = receivers.reshape(2, -1) if receivers.size >= 6 and receivers.shape[0] == 2 else None
    if flat is not None and flat[1, 1] > flat[0, 1]:
        ir = ir[:, ::-1]  # receiver 0 is the right ear in this file
    return Hrtf(np.ascontiguousarray(ir), _unit_vectors(position, kind), int(round(rate)), name)


def virtual_speakers(hrtf: Hrtf) -> "np.ndarray":
    """Indices into ``hrtf.directions`` of the virtual speakers: for each of :func:`speaker_directions` the nearest
    measured direction (largest dot product), in that order, each once."""
    import numpy as np

    nearest = np.argmax(speaker_directions() @ hrtf.directions.T, axis=1)
    _, first = np.unique(nearest, return_index=True)
    return nearest[np.sort(first)]


def hrtf_spectra(hrtf: Hrtf, sample_rate: int, size: int) -> "np.ndarray":
    """The HRTF's ear responses ``complex [M, 2, size // 2 + 1]`` at ``sample_rate`` on an FFT of ``size``: the
    HRIRs resampled (and scaled by the rate ratio, so their frequency response stays), cut to ``size`` taps."""
    import numpy as np

    from .resample import resample_array

    hrirs = resample_array(hrtf.hrirs, hrtf.sample_rate, sample_rate) * (hrtf.sample_rate / sample_rate)
    return np.fft.rfft(hrirs[..., :size], n=size, axis=-1)


def _hrtf_block(data: "np.ndarray", rate: int, spectra_hrtf: "np.ndarray", tree, speakers: "np.ndarray",
                decoder: "np.ndarray") -> "np.ndarray":
    """:func:`decode_binaural_hrtf`'s work on float64 AmbiX ``[B, 4, T]`` -> ``[B, 2, T]`` (whole, no blocks)."""
    import numpy as np
    from scipy.ndimage import uniform_filter1d
    from scipy.signal import stft

    size, hop = stft_frames(rate)
    _, _, spectra = stft(data, fs=rate, nperseg=size, noverlap=size - hop, axis=-1)  # [B, 4, F, N]
    w = spectra[:, 0]
    intensity = uniform_filter1d(np.real(np.conj(w)[:, None] * spectra[:, [3, 1, 2]]), 4, axis=-1)  # [B, 3, F, N]
    energy = uniform_filter1d(0.5 * (np.abs(spectra) ** 2).sum(axis=1), 4, axis=-1)
    norm = np.linalg.norm(intensity, axis=1)
    psi = np.clip(1.0 - norm / np.maximum(energy, 1e-30), 0.0, 1.0)
    unit = np.moveaxis(intensity / np.maximum(norm, 1e-30)[:, None], 1, -1)  # [B, F, N, 3]
    _, nearest = tree.query(unit.reshape(-1, 3))
    nearest = nearest.reshape(unit.shape[:-1])  # [B, F, N]: the measured direction of each bin
    bins = np.arange(spectra.shape[2])[None, :, None]
    direct = np.sqrt(1.0 - psi) * w
    out = np.stack([direct * spectra_hrtf[nearest, ear, bins] for ear in (0, 1)], axis=1)  # [B, 2, F, N]
    speaker_ears = np.einsum("lk,lef->ekf", decoder, spectra_hrtf[speakers])  # [2, 4, F]
    out += np.einsum("ekf,bkfn->befn", speaker_ears, spectra) * np.sqrt(psi)[:, None]
    return ears_to_wave(out, rate, data.shape[-1])


def decode_binaural_hrtf(ambix: "torch.Tensor", sample_rate: int, hrtf: Hrtf, yaw_deg: float = 0.0) -> "torch.Tensor":
    """Headphone audio ``float32 [B, 2, T]`` of AmbiX ``[B, 4, T]`` through a measured HRTF, the listener's head
    turned by ``yaw_deg`` (positive: to the left), as long as the input.

    As :func:`~.spatial.decode_binaural`, parametric in ~20 ms STFT frames (DirAC): per time-frequency bin the
    arrival direction (active intensity) and diffuseness ``psi`` are measured; the direct part ``sqrt(1 - psi) W``
    goes through the ear pair measured nearest that direction, so a single source keeps the file's own interaural
    time and level differences; the diffuse part ``sqrt(psi)`` goes through the virtual speakers of
    :func:`virtual_speakers` (max-rE decoder for the measured directions), each through its measured ear pair.
    (A plain virtual-speaker decode of first order spreads a source over several speakers: with a 6 dB ILD its
    cross-correlation peak fell at 0 samples instead of the file's 20.) HRIRs longer than a frame are cut to it.

    Raises:
        ValueError: naming Binaural from Ambisonics, for a bad clip, rate or yaw.
    """
    import numpy as np
    import torch
    from scipy.spatial import cKDTree

    rate = check_sample_rate(BINAURAL, sample_rate)
    yaw = check_yaw(BINAURAL, yaw_deg)
    data = np.einsum("ij,bjt->bit", rotation_matrix(-yaw), check_ambix(ambix, BINAURAL))
    size, hop = stft_frames(rate)
    spectra_hrtf = hrtf_spectra(hrtf, rate, size)
    speakers = virtual_speakers(hrtf)
    decoder = decoder_matrix(hrtf.directions[speakers])  # [L, 4]
    tree = cKDTree(hrtf.directions)
    frames = data.shape[-1]
    margin = 32 * hop
    out = np.zeros((data.shape[0], 2, frames))
    for start in range(0, frames, BLOCK_FRAMES):
        lo, hi = max(0, start - margin), min(frames, start + BLOCK_FRAMES + margin)
        block = _hrtf_block(data[..., lo:hi], rate, spectra_hrtf, tree, speakers, decoder)
        end = min(frames, start + BLOCK_FRAMES)
        out[..., start:end] = block[..., start - lo:end - lo]
    return torch.from_numpy(out.astype(np.float32))
