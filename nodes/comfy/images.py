"""Load Image (or Example): ComfyUI's image loader, plus the pack's bundled example pictures."""
from __future__ import annotations

from . import glue as comfy_glue
from .inputs import CATEGORY

NODE = "Load Image (or Example)"


class AmbientLoadImage:
    CATEGORY = CATEGORY
    DESCRIPTION = ("A picture from ComfyUI's input folder (upload your own with the button), or the pack's bundled "
                   "example_beach.jpg, which is copied into the input folder the first time it runs, so a shared "
                   "workflow runs on its first Queue. Any node that outputs IMAGE can take its place.")
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("image",)
    OUTPUT_TOOLTIPS = ("The picture as IMAGE [1, H, W, 3], EXIF rotation applied, alpha dropped.",)
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls):
        from ..generate.images import image_choices

        return {"required": {
            "image": (image_choices(comfy_glue.input_directory()),
                      {"image_upload": True, "tooltip": "A picture in ComfyUI's input folder (upload one with the "
                                                        "button below), or example_beach.jpg, bundled with the "
                                                        "pack."}),
        }}

    @classmethod
    def IS_CHANGED(cls, image):
        return f"{image}:{_stamp(image)}"

    def execute(self, image):
        from ..generate.images import load_image, resolve_image

        return (load_image(resolve_image(image, comfy_glue.input_directory(), NODE)),)


def _stamp(name: str) -> str:
    """Size and modification time of the input file (the node reruns when the picture changes)."""
    import os

    path = os.path.join(comfy_glue.input_directory(), name)
    try:
        stat = os.stat(path)
    except OSError:
        return "bundled"
    return f"{stat.st_size}:{stat.st_mtime_ns}"
