"""WAV encoding and writing: ComfyUI-style names, inside the output folder only, never overwriting, never partial.

Saved files can carry how they were made (the graph, the workflow, the generation settings) in a standard RIFF
``LIST``/``INFO`` chunk, as ComfyUI's own savers embed prompt and workflow in PNG and FLAC files.
"""
from __future__ import annotations

import errno
import io
import json
import logging
import math
import os
import re
import secrets
import time
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, BinaryIO

from ..checks import check_sample_rate

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

NODE = "Save WAV"
BIT_DEPTHS = {"16": "PCM_16", "24": "PCM_24", "32-float": "FLOAT"}
_WIDTH = {"16": 2, "24": 3, "32-float": 4}  # bytes a sample
BLOCK_FRAMES = 1 << 16  # frames encoded at a time: saving holds at most this much audio in a second form
DEFAULT_PREFIX = "ambient/soundscape"
LOOP_POINTS = ("auto", "always", "never")
SOFTWARE = "ComfyUI Image to Ambient Audio"
INFO_TEXT_MAX = 2000  # bytes; libsndfile (soundfile) skips INFO strings of about 2 KB or more, so short fields stay under
_MAX_PATH = 4095  # bytes of a whole file path: Linux's PATH_MAX (4096) with its terminating NUL
_MAX_NAME = 200  # characters of the file name part; most file systems allow 255 bytes
_PARTIAL = ".partial-"  # a file being written is ".<name>.partial-<pid>-<random>" until it is complete
# Where the OS can open a folder without following links and create files relative to it (POSIX), the target folder
# is opened component by component with O_NOFOLLOW and every file is made inside that handle, so the folder that was
# checked is the one written to. Elsewhere (Windows: no O_NOFOLLOW, no dir_fd) the folder is checked with realpath
# and used by path, and each file is created under its final name in exclusive mode, as before.
_BY_HANDLE = (hasattr(os, "O_NOFOLLOW") and hasattr(os, "O_DIRECTORY") and hasattr(os, "link")
              and {os.open, os.mkdir, os.link, os.unlink, os.rename} <= os.supports_dir_fd)
_BIDI = {*map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A)), "\u200e", "\u200f"}
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}


@dataclass(frozen=True)
class SavedFile:
    """One written file: ``filename`` and ``subfolder`` relative to the output folder, ``path`` absolute."""

    filename: str
    subfolder: str
    path: str


_DATE_TOKEN = re.compile(r"dd?|MM?|hh?|mm?|ss?|yyy?y?")
_DATE_FORMAT = re.compile(r"%date:([^%]*)%")
DATE_HELP = "dates as %date:yyyy-MM-dd% (also hh, mm, ss) or %year%-%month%-%day%"


def _format_date(pattern: str, now: time.struct_time) -> str:
    """ComfyUI's ``%date:FORMAT%``, as its frontend fills it in: yyyy/yy year, MM/M month, dd/d day, hh/h hour
    (24 h), mm/m minute, ss/s second; doubled letters are zero-padded; anything else stays as written."""
    parts = {"d": now.tm_mday, "M": now.tm_mon, "h": now.tm_hour, "m": now.tm_min, "s": now.tm_sec}

    def one(match: re.Match) -> str:
        token = match.group(0)
        if token == "yy":
            return str(now.tm_year)[2:]
        if token == "yyyy":
            return str(now.tm_year)
        if token[0] in parts:
            return str(parts[token[0]]).zfill(len(token))
        return token

    return _DATE_TOKEN.sub(one, pattern)


def _expand(prefix: str) -> str:
    """``prefix`` with ComfyUI's date fields filled in: ``%date:yyyy-MM-dd%`` (which the frontend fills in before
    a prompt is queued, but CLI and API prompts send raw) and ``%year%``, ``%month%``... (which core's savers fill)."""
    now = time.localtime()
    prefix = _DATE_FORMAT.sub(lambda m: _format_date(m.group(1), now), prefix)
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
    expanded = _expand(filename_prefix.strip())
    if any(ord(c) < 32 for c in expanded) or any(c in expanded for c in '<>:"|?*'):
        dated = f", after filling in dates: {expanded!r}" if expanded != filename_prefix.strip() else ""
        raise ValueError(f'{bad} and holds characters that file names cannot (control characters or <>:"|?*{dated}). '
                         f"Use letters, digits, spaces, '-', '_', '/' for subfolders, and {DATE_HELP}.")
    bidi = sorted({f"U+{ord(c):04X}" for c in filename_prefix if c in _BIDI})
    if bidi:
        raise ValueError(f"{bad} and holds bidirectional control characters ({', '.join(bidi)}), which make a name "
                         "display differently from what it is. Retype the prefix without them.")
    prefix = expanded.replace("\\", "/")
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
            raise ValueError(f"{bad}: a part is {len(part)} characters ({len(part.encode('utf-8'))} bytes as UTF-8) "
                             f"long; the limit is {_MAX_NAME} bytes. Shorten it.")
    name = parts[-1]
    subfolder = "/".join(parts[:-1])
    out_real = os.path.realpath(output_dir)
    folder = os.path.join(out_real, *parts[:-1])
    try:
        real = os.path.realpath(folder)
    except OSError:  # the folder changed while being resolved: where the walk in _open_folder decides, let it
        if not _BY_HANDLE:
            raise
        real = folder
    path_bytes = len(os.fsencode(os.path.join(folder, f"{name}_00000_.wav")))
    if path_bytes > _MAX_PATH:
        raise ValueError(f"{bad}: the file's whole path would be {path_bytes} bytes, over the {_MAX_PATH}-byte "
                         "limit most systems put on a path. Use fewer or shorter subfolders.")
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
    played forever: the loop points samplers and some game engines read (SDL_mixer, Godot; not LÖVE). See the
    README's Save WAV section for Godot's off-by-one at the wrap."""
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


def _clip_utf8(text: str, limit: int = INFO_TEXT_MAX) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, on a character boundary."""
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore")


def info_chunk(fields: dict[str, str]) -> bytes:
    """A RIFF ``LIST``/``INFO`` chunk from ``{four-character id: text}``, e.g. ``{"INAM": title, "ICMT": comment}``.

    Each text is stored as UTF-8 with a terminating NUL, padded to an even length (the RIFF rule). ffprobe shows
    INAM/ISFT/ICMT as ``title``/``encoder``/``comment``; soundfile's ``copy_metadata()`` as ``title``/``software``/
    ``comment`` (libsndfile skips strings of about 2 KB or more).
    """
    import struct

    body = b"INFO"
    for key, text in fields.items():
        if len(key) != 4 or not key.isascii():
            raise ValueError(f"INFO ids are four ASCII characters, got {key!r}")
        data = text.replace("\x00", "").encode("utf-8") + b"\x00"
        body += key.encode("ascii") + struct.pack("<I", len(data)) + data + (b"\x00" if len(data) % 2 else b"")
    return b"LIST" + struct.pack("<I", len(body)) + body


def _json_safe(value):
    """``value`` with non-finite floats as None and unknown objects as strings, so any JSON reader (the browser's
    ``JSON.parse`` included) reads it back."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


def generation_metadata(prompt: dict | None = None, extra_pnginfo: dict | None = None,
                        ambient: dict | None = None) -> dict | None:
    """What a saved file carries about how it was made, or None when nothing is known.

    Args:
        prompt: ComfyUI's API-format graph (hidden input ``PROMPT``): every node's inputs, so the sampler's seed,
            steps and cfg and the loader's model folder.
        extra_pnginfo: ComfyUI's ``EXTRA_PNGINFO`` (``{"workflow": <UI-format graph>}`` from the frontend); each of
            its keys is kept, as core's savers keep them.
        ambient: a summary of the generation (the ``ambient_meta`` AUDIO key: prompt, negative_prompt, seed,
            steps, cfg, model, caption), first in the file so a reader sees it before the graphs.

    Returns:
        ``{"ambient": {...}, "prompt": {...}, "workflow": {...}}`` (the keys that are known), JSON-safe.
    """
    meta: dict = {}
    if isinstance(ambient, dict) and ambient:
        meta["ambient"] = ambient
    if isinstance(extra_pnginfo, dict):
        meta.update({k: v for k, v in extra_pnginfo.items() if k not in ("ambient", "prompt")})
    if isinstance(prompt, dict) and prompt:
        meta["prompt"] = prompt
    return _json_safe(meta) if meta else None


def metadata_chunk(metadata: dict) -> bytes:
    """The ``LIST``/``INFO`` chunk for ``metadata`` (see :func:`generation_metadata`).

    ICMT (comment) holds ``metadata`` as one JSON object (ASCII, compact): the drop handler in
    ``web/ambient_wav_drop.js`` restores the workflow from it, ffprobe shows it whole. INAM (title) is the sound
    prompt when known and ISFT (software) names the pack; both stay short enough for soundfile to show.
    """
    fields = {}
    title = (metadata.get("ambient") or {}).get("prompt") if isinstance(metadata.get("ambient"), dict) else None
    if isinstance(title, str) and title.strip():
        fields["INAM"] = _clip_utf8(title.strip())
    fields["ISFT"] = SOFTWARE
    fields["ICMT"] = json.dumps(_json_safe(metadata), ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    return info_chunk(fields)


def iter_chunks(f: BinaryIO):
    """``(id, offset, size)`` of each top-level chunk of a RIFF/WAVE file open in binary mode (``offset``: where
    the chunk's body starts). Seeks past bodies, so a long file's audio is never read.

    Raises:
        ValueError: the file is not RIFF/WAVE.
    """
    import struct

    f.seek(0)
    head = f.read(12)
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE file")
    pos = 12
    while True:
        f.seek(pos)
        header = f.read(8)
        if len(header) < 8:
            return
        size = struct.unpack("<I", header[4:])[0]
        yield header[:4].decode("latin-1"), pos + 8, size
        pos += 8 + size + (size % 2)


def read_info(source: str | bytes) -> dict[str, str]:
    """The ``LIST``/``INFO`` fields of a WAV file (a path, or the file's bytes): ``{four-character id: text}``,
    empty when there are none.

    Raises:
        ValueError: not a RIFF/WAVE file.
    """
    import struct

    fields: dict[str, str] = {}
    with (open(source, "rb") if isinstance(source, str) else io.BytesIO(source)) as f:
        for cid, offset, size in iter_chunks(f):
            if cid != "LIST":
                continue
            f.seek(offset)
            body = f.read(size)
            if body[:4] != b"INFO":
                continue
            pos = 4
            while pos + 8 <= len(body):
                key = body[pos:pos + 4].decode("latin-1")
                n = struct.unpack("<I", body[pos + 4:pos + 8])[0]
                fields[key] = body[pos + 8:pos + 8 + n].split(b"\x00", 1)[0].decode("utf-8", "replace")
                pos += 8 + n + (n % 2)
    return fields


def read_metadata(source: str | bytes) -> dict | None:
    """What a WAV saved with metadata carries (the JSON object in its ICMT comment), or None.

    Example: ``read_metadata("output/ambient/soundscape_00001_.wav")["ambient"]["seed"]``.
    """
    try:
        comment = read_info(source).get("ICMT")
        meta = json.loads(comment) if comment else None
    except ValueError:
        return None
    return meta if isinstance(meta, dict) else None


def wav_header(channels: int, frames: int, sample_rate: int, bit_depth: str = "16",
               loop: tuple[int, int] | None = None, metadata: dict | None = None) -> bytes:
    """The RIFF/WAVE bytes that come before the samples: ``fmt `` (and ``fact`` for float), then ``smpl`` (loop
    points) and ``LIST``/``INFO`` (metadata) when asked, then the ``data`` chunk's header, last.

    Loop points and metadata go before the audio, so readers that stop at ``data`` or mis-step over an odd-length
    ``data`` chunk's pad byte (SDL_mixer with 24-bit mono) still find them. ``fmt `` is what libsndfile writes
    (16 bytes, format 1 = PCM or 3 = IEEE float; 40 bytes, WAVE_FORMAT_EXTENSIBLE with channel mask 0, for a
    4-channel AmbiX clip).

    Raises:
        ValueError: the file would pass RIFF's 4 GiB limit.
    """
    import struct

    width = _WIDTH[bit_depth]
    data_size = frames * channels * width
    tag = 3 if bit_depth == "32-float" else 1
    fmt = struct.pack("<HHIIHH", tag, channels, sample_rate, sample_rate * channels * width, channels * width,
                      width * 8)
    if channels == 4:  # AmbiX FOA (audio/spatial.py): WAVE_FORMAT_EXTENSIBLE with no speaker positions (mask 0),
        # so players do not route W, Y, Z, X to quad speakers; the sub-format GUID carries PCM / IEEE float
        fmt = (struct.pack("<H", 0xFFFE) + fmt[2:] + struct.pack("<HHI", 22, width * 8, 0)
               + struct.pack("<I", tag) + bytes.fromhex("00001000800000aa00389b71"))
    body = b"fmt " + struct.pack("<I", len(fmt)) + fmt
    if bit_depth == "32-float":  # non-PCM formats carry a frame count (libsndfile writes it too)
        body += b"fact" + struct.pack("<II", 4, frames)
    for chunk in ([smpl_chunk(sample_rate, *loop)] if loop is not None else []) + (
            [metadata_chunk(metadata)] if metadata else []):
        body += chunk + (b"\x00" if len(chunk) % 2 else b"")
    riff_size = 4 + len(body) + 8 + data_size + data_size % 2
    if riff_size > 0xFFFFFFFF:
        raise ValueError(f'{NODE}: "audio" is {frames} frames x {channels} channels, {data_size / 2**30:.2f} GiB as '
                         f"{bit_depth}-bit samples: over the 4 GiB a WAV file can hold. Pick a smaller bit_depth or "
                         "save a shorter clip.")
    return b"RIFF" + struct.pack("<I", riff_size) + b"WAVE" + body + b"data" + struct.pack("<I", data_size)


def write_samples(f: BinaryIO, waveform: "torch.Tensor", sample_rate: int, bit_depth: str = "16") -> None:
    """Write one clip ``float [C, T]`` to ``f`` as the body of a ``data`` chunk (plus its pad byte when odd),
    :data:`BLOCK_FRAMES` frames at a time, so that saving holds one block in another form, never the whole clip.

    Each block goes through libsndfile (soundfile, headerless ``RAW`` of the WAV's subtype): integer formats clip at
    full scale (nothing wraps around); 32-bit float keeps values above 1.0; NaN is written as 0 and +-inf as full
    scale, with one warning for the clip.
    """
    import numpy as np
    import soundfile as sf

    channels, frames = waveform.shape
    source = waveform.detach()
    bad = 0
    for start in range(0, frames, BLOCK_FRAMES):
        block = source[:, start:start + BLOCK_FRAMES].float().cpu().numpy()
        finite = np.isfinite(block)
        if not finite.all():
            bad += block.size - int(np.count_nonzero(finite))
            block = np.nan_to_num(block, nan=0.0, posinf=1.0, neginf=-1.0)
        del finite
        buf = io.BytesIO()
        sf.write(buf, np.ascontiguousarray(block.T), sample_rate, subtype=BIT_DEPTHS[bit_depth], format="RAW",
                 endian="LITTLE")
        f.write(buf.getvalue())
    if frames * channels * _WIDTH[bit_depth] % 2:
        f.write(b"\x00")
    if bad:
        log.warning('%s: "audio" has %d NaN/inf samples (of %d); they are written as silence (NaN) and full scale '
                    "(inf). Check the node that made the audio (e.g. run the model in fp32).", NODE, bad,
                    channels * frames)


def encode_wav(waveform: "torch.Tensor", sample_rate: int, bit_depth: str = "16",
               loop: tuple[int, int] | None = None, metadata: dict | None = None) -> bytes:
    """One clip ``float [C, T]`` to WAV bytes (``bit_depth``: "16", "24" or "32-float"), in memory: what
    :func:`save_wav` writes to a file (see :func:`wav_header` and :func:`write_samples`).

    ``loop=(start, end)`` adds a ``smpl`` chunk with those loop points (sample frames, inclusive). ``metadata``
    (a JSON-able dict, see :func:`generation_metadata`) adds a ``LIST``/``INFO`` chunk; None or empty adds nothing.
    """
    buf = io.BytesIO()
    buf.write(wav_header(waveform.shape[0], waveform.shape[-1], int(sample_rate), bit_depth, loop, metadata))
    write_samples(buf, waveform, int(sample_rate), bit_depth)
    return buf.getvalue()


def _missing_dirs(folder: str) -> list[str]:
    """The folders ``os.makedirs(folder)`` would create, deepest first."""
    missing = []
    while folder and not os.path.isdir(folder):
        missing.append(folder)
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return missing


def _remove_empty(folders: list[str]) -> None:
    """Remove the folders a failed save created, deepest first, as long as they are empty (another saver's file
    keeps its folder)."""
    for folder in folders:
        try:
            os.rmdir(folder)
        except OSError:
            return


def _os_error(err: OSError, message: str) -> OSError:
    """An ``OSError`` whose text is ``message`` (our convention: it starts with the node) and whose ``errno`` is
    ``err``'s, so callers can still tell a full disk (ENOSPC) from a read-only folder (EACCES/EROFS)."""
    new = OSError(message)
    new.errno = err.errno
    return new


def _make_folder(folder: str, filename_prefix: str) -> list[str]:
    """Create ``folder``; returns the folders that were missing (for :func:`_remove_empty` if the save fails)."""
    created = _missing_dirs(folder)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as err:
        _remove_empty(created)
        raise _os_error(err, f'{NODE}: "filename_prefix" is {filename_prefix!r} but the folder {folder} cannot '
                             f"be created ({err.strerror or err}). Check the output folder's permissions and free "
                             'space, or pick another "filename_prefix".') from err
    return created


def _create_new(folder: str, name: str, counter: int, filename_prefix: str) -> tuple[BinaryIO, str, int]:
    """``(file open "xb", its name, its counter)`` for the first ``<name>_<counter:05>_.wav`` from ``counter`` on
    that does not exist yet."""
    while True:
        filename = f"{name}_{counter:05}_.wav"
        path = os.path.join(folder, filename)
        try:
            return open(path, "xb"), filename, counter
        except FileExistsError:
            counter += 1
        except OSError as err:
            raise _os_error(err, f'{NODE}: "filename_prefix" is {filename_prefix!r} but {path} cannot '
                                 f"be created ({err.strerror or err}). Check the output folder's "
                                 'permissions and free space, or pick another "filename_prefix".') from err


def _write_whole(f: BinaryIO, path: str, write, filename_prefix: str, dir_fd: int | None = None) -> None:
    """Fill the new file ``f`` with ``write(f)`` and sync it; on any failure remove ``path`` (relative to ``dir_fd``
    when given) and raise."""
    try:
        with f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
    except BaseException as err:
        try:
            os.remove(path, dir_fd=dir_fd)
        except OSError:
            pass
        if isinstance(err, OSError):
            raise _os_error(err, f'{NODE}: "filename_prefix" is {filename_prefix!r}: writing {path} '
                                 f"failed ({err.strerror or err}); nothing was left behind. Free some disk "
                                 "space or pick another output folder.") from err
        raise


def _folder_error(err: OSError, folder: str, filename_prefix: str) -> OSError:
    return _os_error(err, f'{NODE}: "filename_prefix" is {filename_prefix!r} but the folder {folder} cannot '
                          f"be created ({err.strerror or err}). Check the output folder's permissions and free "
                          'space, or pick another "filename_prefix".')


def _open_folder(output_dir: str, subfolder: str, filename_prefix: str) -> tuple[int, list[str]]:
    """Open ``output_dir/subfolder`` without following symlinks below the output folder, making missing folders
    (``mkdir`` relative to the parent's handle); returns ``(its descriptor, the folders made, deepest first)``.

    Raises:
        ValueError: a component is a symlink (swapped in after :func:`resolve_prefix` checked it) or a file.
        OSError: a folder cannot be made; the folders made so far are removed.
    """
    root = os.path.realpath(output_dir)
    created = _make_folder(root, filename_prefix)
    path, fd = root, os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in subfolder.split("/") if subfolder else []:
            path = os.path.join(path, part)
            try:
                child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except FileNotFoundError:
                try:
                    os.mkdir(part, dir_fd=fd)
                    created.insert(0, path)
                except FileExistsError:  # another saver made it meanwhile
                    pass
                child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = child
    except OSError as err:
        os.close(fd)
        _remove_empty(created)
        if err.errno in (errno.ELOOP, errno.ENOTDIR):
            raise ValueError(f'{NODE}: "filename_prefix" is {filename_prefix!r}: {path} is not a plain folder '
                             f"(a symlink or a file), so saving there could leave the output folder {output_dir}. "
                             "Pick another subfolder.") from err
        raise _folder_error(err, path, filename_prefix) from err
    return fd, created


def _publish(dir_fd: int, tmp: str, name: str, counter: int) -> tuple[str, int]:
    """Give the complete file ``tmp`` (in the folder ``dir_fd``) the first free name ``<name>_<counter:05>_.wav``
    from ``counter`` on, atomically and never replacing a file: a hard link (fails if the name exists), or, where
    the file system has no links, an exclusive empty placeholder that ``tmp`` is then renamed over."""
    while True:
        filename = f"{name}_{counter:05}_.wav"
        try:
            os.link(tmp, filename, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            return filename, counter
        except FileExistsError:
            counter += 1
            continue
        except OSError as err:
            if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS):
                raise
        try:
            os.close(os.open(filename, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666, dir_fd=dir_fd))
        except FileExistsError:
            counter += 1
            continue
        try:  # a crash between these two leaves an empty placeholder, never truncated audio
            os.replace(tmp, filename, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            os.unlink(filename, dir_fd=dir_fd)
            raise
        return filename, counter


def _save_in_folder(dir_fd: int, folder: str, name: str, counter: int, write,
                    filename_prefix: str) -> tuple[str, int]:
    """Fill (``write(f)``) ``.<name>.partial-<pid>-<random>`` in the folder ``dir_fd``, sync it, then publish it
    (:func:`_publish`); the temporary name is removed whatever happens. Returns ``(file name, counter)``."""
    tmp = f".{name}{_PARTIAL}{os.getpid()}-{secrets.token_hex(4)}"
    try:
        f = open(tmp, "xb", opener=lambda p, flags: os.open(p, flags | os.O_NOFOLLOW, 0o666, dir_fd=dir_fd))
        _write_whole(f, tmp, write, filename_prefix, dir_fd)
        return _publish(dir_fd, tmp, name, counter)
    except OSError as err:
        cause = err.__cause__ if isinstance(err.__cause__, OSError) else err
        target = os.path.join(folder, f"{name}_{counter:05}_.wav")
        raise _os_error(cause, f'{NODE}: "filename_prefix" is {filename_prefix!r}: writing {target} (as {tmp}) '
                               f"failed ({cause.strerror or cause}); nothing was left behind. Check the output folder's "
                               "permissions. Free some disk space or pick another output folder.") from cause
    finally:
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except OSError:
            pass


def _write_clip(f: BinaryIO, header: bytes, clip: "torch.Tensor", sample_rate: int, bit_depth: str) -> None:
    f.write(header)
    write_samples(f, clip, sample_rate, bit_depth)


def save_wav(waveform: "torch.Tensor", sample_rate: int, output_dir: str, filename_prefix: str = DEFAULT_PREFIX,
             bit_depth: str = "16", loop_points: bool = False, metadata: dict | None = None) -> list[SavedFile]:
    """Write each clip of ``waveform float [B, C, T]`` to ``<prefix>_<counter:05>_.wav`` inside ``output_dir``.

    ``loop_points``: mark each file as a whole-file loop (``smpl`` chunk, start 0, end = last frame).
    ``metadata``: embed it in every file (``LIST``/``INFO`` chunk, see :func:`metadata_chunk`); None: nothing
    but the audio (and the loop points).

    Each file is written in blocks of :data:`BLOCK_FRAMES` frames (saving adds a few MB, whatever the length)
    and synced under a temporary name in the target folder
    (``.<name>.partial-<pid>-<random>``, a hidden file the counter ignores), then published under the first free
    ``<name>_<counter>_.wav`` with a hard link, which never replaces an existing file, and the temporary name is
    removed: a crash mid-write leaves at most that hidden temporary, never a truncated file under a final name.
    The folder is opened without following symlinks below the output folder and the file made inside that handle
    (POSIX; elsewhere the file is created under its final name in exclusive mode). If writing fails, the file being
    written is removed and the error raised; files written before it stay (they are complete), and folders this save
    made are removed when nothing was saved.

    Returns:
        the files written, in batch order.
    """
    if bit_depth not in BIT_DEPTHS:
        raise ValueError(f'{NODE}: "bit_depth" is {bit_depth!r} but must be one of {", ".join(BIT_DEPTHS)}. Pick one.')
    sample_rate = check_sample_rate(NODE, sample_rate)
    folder, name, subfolder = resolve_prefix(output_dir, filename_prefix)
    # every header (loop points, metadata, size limit) before touching disk; the samples stream in blocks
    writers = [partial(_write_clip, header=wav_header(clip.shape[0], clip.shape[-1], sample_rate, bit_depth,
                                                      (0, clip.shape[-1] - 1) if loop_points else None, metadata),
                       clip=clip, sample_rate=sample_rate, bit_depth=bit_depth) for clip in waveform]
    if _BY_HANDLE:
        dir_fd, created = _open_folder(output_dir, subfolder, filename_prefix)
    else:
        dir_fd, created = None, _make_folder(folder, filename_prefix)
    saved: list[SavedFile] = []
    try:
        counter = _next_counter(folder, name)
        for write in writers:
            if dir_fd is not None:
                filename, counter = _save_in_folder(dir_fd, folder, name, counter, write, filename_prefix)
            else:
                f, filename, counter = _create_new(folder, name, counter, filename_prefix)
                _write_whole(f, os.path.join(folder, filename), write, filename_prefix)
            path = os.path.join(folder, filename)
            saved.append(SavedFile(filename=filename, subfolder=subfolder, path=path))
            counter += 1
            log.info("saved %s", path)
    except BaseException:
        if not saved:  # leave no empty folder behind either
            _remove_empty(created)
        raise
    finally:
        if dir_fd is not None:
            os.close(dir_fd)
    return saved


def save_wav_file(waveform: "torch.Tensor", sample_rate: int, path: str, bit_depth: str = "16",
                  loop_points: bool = False, metadata: dict | None = None) -> str:
    """Write one clip ``float [C, T]`` (or a batch of one, ``[1, C, T]``) to exactly ``path``, never over a file.

    For the command line's named outputs (``--ambix OUT.wav``). The file is encoded whole in memory first
    (:func:`encode_wav`: a 4-channel clip gets the AmbiX WAVE_FORMAT_EXTENSIBLE header), then ``path`` is created
    in exclusive mode (``open(path, "xb")``): an existing file is never touched. On any error while writing, the
    created file is removed.

    Returns:
        ``path``, absolute.

    Raises:
        FileExistsError: ``path`` exists (nothing was written).
        ValueError: a bad ``bit_depth``, a batch of more than one clip, or no such folder.
    """
    if bit_depth not in BIT_DEPTHS:
        raise ValueError(f'{NODE}: "bit_depth" is {bit_depth!r} but must be one of {", ".join(BIT_DEPTHS)}. Pick one.')
    clip = waveform[0] if waveform.ndim == 3 and waveform.shape[0] == 1 else waveform
    if clip.ndim != 2:
        raise ValueError(f"{NODE}: {path} takes one clip [channels, samples], got shape {tuple(waveform.shape)}.")
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise ValueError(f"{NODE}: the folder {folder} does not exist. Create it or pick another file name.")
    data = encode_wav(clip, sample_rate, bit_depth, (0, clip.shape[-1] - 1) if loop_points else None, metadata)
    with open(path, "xb") as f:  # FileExistsError when it exists: nothing touched
        try:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        except BaseException:
            f.close()
            os.unlink(path)
            raise
    log.info("saved %s", path)
    return path
