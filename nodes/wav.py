"""WAV encoding and writing: ComfyUI-style names, inside the output folder only, never overwriting, never partial."""
from __future__ import annotations

import io
import logging
import os
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

NODE = "Save WAV"
BIT_DEPTHS = {"16": "PCM_16", "24": "PCM_24", "32-float": "FLOAT"}
DEFAULT_PREFIX = "ambient/soundscape"
LOOP_KEY = "ambient_loop"  # extra AUDIO key set by Make Seamless Loop: the clips loop (Save WAV adds loop points)
LOOP_POINTS = ("auto", "always", "never")
_MAX_NAME = 200  # characters of the file name part; most file systems allow 255 bytes
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}


@dataclass(frozen=True)
class SavedFile:
    """One written file: ``filename`` and ``subfolder`` relative to the output folder, ``path`` absolute."""

    filename: str
    subfolder: str
    path: str


def _expand(prefix: str) -> str:
    now = time.localtime()
    for key, value in (("%year%", now.tm_year), ("%month%", now.tm_mon), ("%day%", now.tm_mday),
                       ("%hour%", now.tm_hour), ("%minute%", now.tm_min), ("%second%", now.tm_sec)):
        prefix = prefix.replace(key, str(value).zfill(2))
    return prefix


def resolve_prefix(output_dir: str, filename_prefix: str) -> tuple[str, str, str]:
    """Check ``filename_prefix`` and split it into ``(folder, name, subfolder)`` inside ``output_dir``.

    Same rules as ComfyUI's ``get_save_image_path`` (``%year%``-style dates, ``sub/name``), plus: the folder,
    with symlinks resolved, must stay inside the output folder; names must be legal everywhere.

    Raises:
        ValueError: naming the input, the value and the fix.
    """
    bad = f'{NODE}: "filename_prefix" is {filename_prefix!r}'
    if not isinstance(filename_prefix, str) or not filename_prefix.strip():
        raise ValueError(f"{bad} but must name a file, e.g. {DEFAULT_PREFIX!r}. Type a prefix.")
    if any(ord(c) < 32 for c in filename_prefix) or any(c in filename_prefix for c in '<>:"|?*'):
        raise ValueError(f'{bad} and holds characters that file names cannot (control characters or <>:"|?*). '
                         "Use letters, digits, spaces, '-', '_' and '/' for subfolders.")
    prefix = _expand(filename_prefix.strip()).replace("\\", "/")
    if prefix.startswith("/") or re.match(r"^[A-Za-z]:", prefix) or ".." in prefix.split("/"):
        raise ValueError(f"{bad}, which points outside the output folder. Use a relative prefix such as "
                         f"{DEFAULT_PREFIX!r}; files are always saved inside {output_dir}.")
    parts = [p for p in prefix.split("/") if p not in ("", ".")]
    if not parts:
        raise ValueError(f"{bad} but must end in a file name, e.g. {DEFAULT_PREFIX!r}. Add a name after the last '/'.")
    for part in parts:
        if part.split(".")[0].strip().lower() in _RESERVED or part.endswith((" ", ".")):
            raise ValueError(f"{bad}: {part!r} is a reserved or invalid name on Windows. Pick another name.")
        if len(part.encode("utf-8")) > _MAX_NAME:
            raise ValueError(f"{bad}: a part is {len(part)} characters long; the limit is {_MAX_NAME}. Shorten it.")
    name = parts[-1]
    subfolder = "/".join(parts[:-1])
    out_real = os.path.realpath(output_dir)
    folder = os.path.join(out_real, *parts[:-1])
    real = os.path.realpath(folder)
    if os.path.commonpath([out_real, real]) != out_real:
        raise ValueError(f"{bad}: the folder {subfolder!r} leads outside the output folder (a symlink?). "
                         f"Saving outside {output_dir} is not allowed; pick another subfolder.")
    return folder, name, subfolder


def _next_counter(folder: str, name: str) -> int:
    """1 + the highest ``<name>_<digits>_`` counter in ``folder``, whatever the extension (as ComfyUI counts)."""
    best = 0
    pattern = re.compile(re.escape(name) + r"_(\d+)_", re.IGNORECASE)
    try:
        entries = os.listdir(folder)
    except FileNotFoundError:
        return 1
    for entry in entries:
        m = pattern.match(entry)
        if m:
            best = max(best, int(m.group(1)))
    return best + 1


def smpl_chunk(sample_rate: int, loop_start: int, loop_end: int) -> bytes:
    """A RIFF ``smpl`` chunk with one forward loop from ``loop_start`` to ``loop_end`` (sample frames, inclusive),
    played forever: the loop points game engines and samplers read (Godot, SDL_mixer, LOVE, Kontakt...)."""
    import struct

    header = struct.pack("<9I", 0, 0, round(1e9 / sample_rate), 60, 0, 0, 0, 1, 0)
    loop = struct.pack("<6I", 0, 0, loop_start, loop_end, 0, 0)
    body = header + loop
    return b"smpl" + struct.pack("<I", len(body)) + body


def add_chunk(riff: bytes, chunk: bytes) -> bytes:
    """Append ``chunk`` (id + size + body, even length) to a RIFF/WAVE file and fix the RIFF size."""
    import struct

    if riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE file")
    if len(chunk) % 2:
        chunk += b"\x00"
    out = riff + chunk
    return out[:4] + struct.pack("<I", len(out) - 8) + out[8:]


def encode_wav(waveform: "torch.Tensor", sample_rate: int, bit_depth: str = "16",
               loop: tuple[int, int] | None = None) -> bytes:
    """One clip ``float [C, T]`` to WAV bytes (``bit_depth``: "16", "24" or "32-float").

    Integer formats clip at full scale (soundfile saturates; nothing wraps around); 32-bit float keeps values
    above 1.0. ``loop=(start, end)`` adds a ``smpl`` chunk with those loop points (sample frames, inclusive).
    """
    import numpy as np
    import soundfile as sf

    data = waveform.detach().float().cpu().numpy()
    data = np.ascontiguousarray(np.nan_to_num(data, nan=0.0, posinf=1.0, neginf=-1.0).T)  # [T, C]
    buf = io.BytesIO()
    sf.write(buf, data, int(sample_rate), subtype=BIT_DEPTHS[bit_depth], format="WAV")
    if loop is None:
        return buf.getvalue()
    return add_chunk(buf.getvalue(), smpl_chunk(int(sample_rate), *loop))


def check_audio(audio, node: str = NODE) -> tuple["torch.Tensor", int]:
    """The ``(waveform [B, C, T], sample_rate)`` of a ComfyUI AUDIO, or a ``ValueError`` that says what is wrong."""
    import torch

    if not isinstance(audio, dict) or "waveform" not in audio or "sample_rate" not in audio:
        raise ValueError(f'{node}: "audio" must be an AUDIO value {{"waveform", "sample_rate"}}; '
                         f"got {type(audio).__name__}. Connect an AUDIO output.")
    waveform, rate = audio["waveform"], audio["sample_rate"]
    if not isinstance(waveform, torch.Tensor):
        raise ValueError(f'{node}: "audio" waveform is {type(waveform).__name__}, not a tensor. Connect an AUDIO output.')
    if waveform.ndim == 2:  # [C, T] from a non-conforming node: one clip
        waveform = waveform.unsqueeze(0)
    if waveform.ndim != 3 or waveform.shape[-1] == 0 or waveform.shape[0] == 0 or waveform.shape[1] == 0:
        raise ValueError(f'{node}: "audio" waveform has shape {tuple(waveform.shape)} but must be [batch, channels, '
                         "samples] with at least one sample. Connect an AUDIO output that holds sound.")
    if not isinstance(rate, int) or isinstance(rate, bool) or not 1 <= rate <= 768000:
        raise ValueError(f'{node}: "audio" sample_rate is {rate!r} but must be a whole number of Hz (1..768000). '
                         "Connect an AUDIO output from a node that sets its sample rate.")
    return waveform, rate


def save_wav(waveform: "torch.Tensor", sample_rate: int, output_dir: str, filename_prefix: str = DEFAULT_PREFIX,
             bit_depth: str = "16", loop_points: bool = False) -> list[SavedFile]:
    """Write each clip of ``waveform float [B, C, T]`` to ``<prefix>_<counter:05>_.wav`` inside ``output_dir``.

    ``loop_points``: mark each file as a whole-file loop (``smpl`` chunk, start 0, end = last frame).

    Each file is encoded in memory, then created with exclusive mode (``open(path, "xb")``), so an existing
    file is never touched: on a clash the next counter is taken. If writing fails, the file being written is
    removed and the error raised; files written before it stay (they are complete).

    Returns:
        the files written, in batch order.
    """
    if bit_depth not in BIT_DEPTHS:
        raise ValueError(f'{NODE}: "bit_depth" is {bit_depth!r} but must be one of {", ".join(BIT_DEPTHS)}. Pick one.')
    folder, name, subfolder = resolve_prefix(output_dir, filename_prefix)
    # encode all before touching disk
    blobs = [encode_wav(clip, sample_rate, bit_depth, (0, clip.shape[-1] - 1) if loop_points else None)
             for clip in waveform]
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as err:
        raise OSError(f"{NODE}: cannot create the folder {folder}: {err.strerror}. Check the output folder's "
                      "permissions and free space.") from err
    saved: list[SavedFile] = []
    counter = _next_counter(folder, name)
    for blob in blobs:
        while True:
            filename = f"{name}_{counter:05}_.wav"
            path = os.path.join(folder, filename)
            try:
                f = open(path, "xb")
            except FileExistsError:
                counter += 1
                continue
            except OSError as err:
                raise OSError(f"{NODE}: cannot create {path}: {err.strerror}. Check the output folder's permissions "
                              "and free space.") from err
            break
        try:
            with f:
                f.write(blob)
                f.flush()
                os.fsync(f.fileno())
        except BaseException as err:
            try:
                os.remove(path)
            except OSError:
                pass
            if isinstance(err, OSError):
                raise OSError(f"{NODE}: writing {path} failed ({err.strerror or err}); nothing was left behind. "
                              "Free some disk space or pick another output folder.") from err
            raise
        saved.append(SavedFile(filename=filename, subfolder=subfolder, path=path))
        counter += 1
        log.info("saved %s", path)
    return saved
