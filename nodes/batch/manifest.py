"""What a batch is made of: the items of a manifest (a folder of images, a ``.txt`` list, a ``.jsonl`` or ``.csv``
table), their stable ids, seeds, shards and WAV names. Stdlib only; no model, no torch.

An item is a dict: ``id``, ``image`` (a path), the optional overrides in :data:`OVERRIDES`, any other column of
the row (kept in the results), and ``error`` when the row itself is bad (it is then recorded as failed).
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import re

from ..checks import SEED_MAX
from ..headless import image_files

# per-item columns that override the command line's options (column -> option dest)
OVERRIDES = ("caption", "preset", "extra", "seconds", "seed", "loop", "loudness")
TABLES = (".jsonl", ".csv")


def stable_hash(text: str) -> int:
    """A 64-bit hash of ``text`` that is the same in every process, run and machine (SHA-256, not ``hash()``)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def seed_for_id(item_id: str, base_seed: int = 0) -> int:
    """The seed of an item that gives none: from its id (and ``--seed``), never from its position."""
    return stable_hash(f"{base_seed}\0{item_id}") % (SEED_MAX + 1)


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` (1 <= I <= N) -> ``(I, N)``."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise ValueError(f"--shard is {text!r} but must be I/N with 1 <= I <= N, e.g. --shard 1/4.")
    return int(match.group(1)), int(match.group(2))


def in_shard(item_id: str, shard: tuple[int, int]) -> bool:
    """Whether the item belongs to shard ``(I, N)``: a deterministic 1/N by the hash of its id."""
    index, count = shard
    return stable_hash(f"shard\0{item_id}") % count == index - 1


def wav_stem(item_id: str) -> str:
    """The WAV file name stem for an item: its id made file-name safe, plus a short hash of the exact id (so two
    ids that clean to the same text never share a file)."""
    clean = re.sub(r"[^A-Za-z0-9._-]+", "_", item_id).strip("._-")[:80] or "item"
    return f"{clean}-{stable_hash(item_id) % 16**8:08x}"


def read_items(manifest: str) -> list[dict]:
    """The items of ``manifest`` in its order: a folder (its images, id = the path inside the folder), a ``.txt``
    list (one image per line, ``#`` comments), or a ``.jsonl``/``.csv`` table (column ``image``, optional ``id``
    and the overrides). Relative image paths are relative to the manifest's folder. A bad row becomes an item with
    an ``error``; a manifest that cannot be read at all raises ``ValueError``."""
    if os.path.isdir(manifest):
        return [{"id": os.path.relpath(path, manifest), "image": path} for path in image_files([manifest])]
    if not os.path.isfile(manifest):
        raise ValueError(f"manifest {manifest!r} does not exist. Pass a folder of images, a .txt list of image "
                         "paths, or a .jsonl/.csv table with an image column.")
    base = os.path.dirname(os.path.abspath(manifest))
    with open(manifest, encoding="utf-8-sig", newline="") as f:
        if manifest.lower().endswith(".csv"):
            rows = [(n, row, None) for n, row in enumerate(csv.DictReader(f), start=2)]
        elif manifest.lower().endswith(".jsonl"):
            rows = [(n, *_json_row(line)) for n, line in enumerate(f, start=1) if line.strip()]
        else:
            rows = [(n, {"image": line.strip()}, None) for n, line in enumerate(f, start=1)
                    if line.strip() and not line.lstrip().startswith("#")]
    return _unique([_item(n, row, error, base) for n, row, error in rows])


def _json_row(line: str) -> tuple[dict, str | None]:
    try:
        row = json.loads(line)
    except ValueError as err:
        return {}, f"not a JSON object ({err})"
    return (row, None) if isinstance(row, dict) else ({}, "not a JSON object")


def _item(line: int, row: dict, error: str | None, base: str) -> dict:
    row = {str(k).strip(): v for k, v in row.items() if k is not None}
    row = {k: (v.strip() if isinstance(v, str) else v) for k, v in row.items() if v not in ("", None)}
    image = row.get("image")
    item_id = str(row.get("id") or image or f"line-{line}")
    item = {**row, "id": item_id, "image": image}
    if error is None and not isinstance(image, str):
        error = 'no "image" column (the image path)'
    if error is not None:
        item["error"] = f"manifest line {line}: {error}"
    elif not os.path.isabs(image):
        item["image"] = os.path.normpath(os.path.join(base, image))
    return item


def _unique(items: list[dict]) -> list[dict]:
    """Ids must be unique: a repeated id becomes a failed item ``<id>#<n>`` that says so."""
    seen: dict[str, int] = {}
    for item in items:
        n = seen.get(item["id"], 0) + 1
        seen[item["id"]] = n
        if n > 1:
            item["error"] = f"the id {item['id']!r} is used by an earlier row; give each row its own id"
            item["id"] = f"{item['id']}#{n}"
    return items
