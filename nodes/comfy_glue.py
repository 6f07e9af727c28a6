"""The only module that touches ComfyUI (``folder_paths``, ``comfy.*``).

Every import of ComfyUI happens inside a function, so the pack imports without ComfyUI (tests, the CLI) and
ComfyUI's start-up pays nothing for it. The plain modules never import this one; the node layer passes what it
returns (a device plan, an ``on_step`` callback, folders) into them.
"""
from __future__ import annotations

import os
from collections.abc import Callable

BLIP_FOLDER = "blip"          # pack-registered model folder type: ComfyUI/models/blip/
DIFFUSERS_FOLDER = "diffusers"  # ComfyUI's own folder type for diffusers pipelines: ComfyUI/models/diffusers/


def _register_blip_folder() -> None:
    import folder_paths

    default = os.path.join(folder_paths.models_dir, BLIP_FOLDER)
    if BLIP_FOLDER not in folder_paths.folder_names_and_paths or default not in folder_paths.get_folder_paths(BLIP_FOLDER):
        folder_paths.add_model_folder_path(BLIP_FOLDER, default)


def model_roots(folder_type: str) -> list[str]:
    """The folders ComfyUI searches for ``folder_type`` (``models/<type>`` plus extra_model_paths.yaml entries)."""
    import folder_paths

    if folder_type == BLIP_FOLDER:
        _register_blip_folder()
    try:
        return folder_paths.get_folder_paths(folder_type)
    except KeyError:
        return []


def output_directory() -> str:
    import folder_paths

    return folder_paths.get_output_directory()


def progress(total: int) -> Callable[[int, int], None]:
    """An ``on_step(done, total)`` that drives a ComfyUI progress bar and is a Cancel point.

    ComfyUI's progress hook already raises on Cancel; the explicit check makes every step a Cancel point even
    where no hook is installed.
    """
    import comfy.model_management as mm
    import comfy.utils

    bar = comfy.utils.ProgressBar(total)

    def on_step(done: int, new_total: int) -> None:
        mm.throw_exception_if_processing_interrupted()
        bar.update_absolute(done, new_total)

    return on_step


def check_interrupt() -> None:
    """Raise ComfyUI's InterruptProcessingException if the user pressed Cancel."""
    import comfy.model_management as mm

    mm.throw_exception_if_processing_interrupted()


def device_plan(kind: str):
    """Where a model of ``kind`` ("blip" or "stable_audio") runs and rests, from ComfyUI's model management."""
    import comfy.model_management as mm

    from .models import DevicePlan

    # Both models run on ComfyUI's torch device (BLIP is a vision model: the text-encoder device would keep it on the
    # CPU under normal VRAM) and rest on the offload device between runs.
    load = mm.get_torch_device()
    offload = mm.unet_offload_device() if kind == "stable_audio" else mm.text_encoder_offload_device()
    if mm.should_use_fp16(load, prioritize_performance=True):
        auto = "fp16"
    elif mm.should_use_bf16(load, prioritize_performance=True):
        auto = "bf16"
    else:
        auto = "fp32"
    return DevicePlan(
        load_device=str(load),
        offload_device=str(offload),
        auto_dtype=auto,
        free_memory=lambda n_bytes: mm.free_memory(n_bytes, load),
        after_offload=mm.soft_empty_cache,
    )
