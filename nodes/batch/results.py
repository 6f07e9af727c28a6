"""``results.jsonl``: one JSON line per finished item, appended atomically, read back on resume. Stdlib only.

Each line is written with one ``os.write`` on a descriptor opened with ``O_APPEND`` and synced, so concurrent shards
may share the file and a killed run leaves at most one torn last line, which :func:`read_results` ignores (and
:class:`ResultLog` ends with a newline before its first append so the next line starts clean).
"""
from __future__ import annotations

import json
import math
import os

RESULTS = "results.jsonl"
SUMMARY = "summary.json"


def read_results(path: str) -> dict[str, dict]:
    """The last complete record of each id in ``path`` (none when the file does not exist); lines that do not
    parse (a torn last line after a kill) are skipped."""
    records: dict[str, dict] = {}
    if not os.path.exists(path):
        return records
    with open(path, "rb") as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(record.get("id"), str):
                records[record["id"]] = record
    return records


def json_safe(value):
    """``value`` with non-finite floats as None, so every line is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


class ResultLog:
    """Appends records to ``results.jsonl`` one whole line at a time (``O_APPEND``, one write, ``fsync``)."""

    def __init__(self, path: str):
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        if os.fstat(self.fd).st_size and not _ends_with_newline(path):
            self._write(b"\n")  # close a torn last line so it stays one bad line

    def append(self, record: dict) -> None:
        line = json.dumps(json_safe(record), ensure_ascii=False, allow_nan=False, separators=(",", ":")) + "\n"
        self._write(line.encode("utf-8"))

    def _write(self, data: bytes) -> None:
        written = os.write(self.fd, data)
        if written != len(data):  # a regular file takes it whole unless the disk is full
            raise OSError(f"writing {self.path} stopped after {written} of {len(data)} bytes (disk full?)")
        os.fsync(self.fd)

    def close(self) -> None:
        os.close(self.fd)


def _ends_with_newline(path: str) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def write_json_atomic(path: str, data: dict) -> None:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace`` (readers see old or new, whole)."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(json_safe(data), f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
