"""Images in: an image file as a ComfyUI IMAGE, and the pack's bundled example pictures.

The shipped workflows name ``example_beach.jpg``, which a fresh ComfyUI's input folder lacks. The pack's image
loader lists the bundled examples beside the input folder's pictures and, the first time one is asked for and the
input folder has no file of that name, copies it there (never over a user's file), so a workflow dragged in or
opened from Templates runs on its first Queue. Nothing happens at import time.
"""
from __future__ import annotations

import os
import shutil

ASSETS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "assets")
EXAMPLES = ("example_beach.jpg",)
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")


def load_image(path: str):
    """An image file as a ComfyUI IMAGE ``float32 [1, H, W, 3]`` in 0..1 (EXIF rotation applied, alpha dropped)."""
    import numpy as np
    import torch
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        rgb = ImageOps.exif_transpose(im).convert("RGB")
        return torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0)[None]


def image_choices(input_dir: str) -> list[str]:
    """The pictures in ``input_dir`` (top level, by extension) plus the bundled examples, sorted."""
    try:
        names = [f for f in os.listdir(input_dir) if os.path.isfile(os.path.join(input_dir, f))]
    except OSError:
        names = []
    pictures = {f for f in names if f.lower().endswith(IMAGE_EXTS)}
    return sorted(pictures | set(EXAMPLES))


def resolve_image(name: str, input_dir: str, node: str) -> str:
    """The file for ``name``: ``input_dir/name`` when it exists; a bundled example otherwise, first copied into
    ``input_dir`` (created if needed; a file that appears meanwhile is kept, never overwritten) so ComfyUI's
    preview shows it. Anything else is a clear error."""
    path = os.path.join(input_dir, name)
    if os.path.isfile(path):
        return path
    if name not in EXAMPLES:
        raise ValueError(f'{node}: image "{name}" is not in ComfyUI\'s input folder ({input_dir}). Upload it with '
                         "the node's upload button, or pick another picture.")
    source = os.path.join(ASSETS, name)
    try:
        os.makedirs(input_dir, exist_ok=True)
        with open(source, "rb") as src, open(path, "xb") as dst:
            shutil.copyfileobj(src, dst)
    except FileExistsError:
        pass
    except OSError:
        return source  # a read-only input folder: read the bundled copy in place
    return path
