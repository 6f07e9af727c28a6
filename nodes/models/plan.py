"""Where a model runs and rests: the device plan the loaders, the model cache and the device layer share (stdlib
only; ComfyUI fills one in through ``comfy/glue.py``, the CLI and benchmarks take :func:`standalone_plan`)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class DevicePlan:
    """Where a model runs and rests. In ComfyUI it comes from ``comfy_glue.device_plan``; standalone from
    :func:`standalone_plan`."""

    load_device: str = "cpu"
    offload_device: str = "cpu"
    auto_dtype: str = "fp32"
    free_memory: Callable[[int], Any] | None = None
    after_offload: Callable[[], Any] | None = None
    # keep_resident(key, modules): hold these modules on load_device between runs in a way the host can evict
    # (ComfyUI: a ModelPatcher registered with its model management); None: just move them there
    keep_resident: Callable[[str, dict], Any] | None = None
    moves: list = field(default_factory=list)  # (what, device) log, read by tests and benchmarks


def standalone_plan() -> DevicePlan:
    """Device plan without ComfyUI: the first CUDA GPU if there is one (fp16), else the CPU (fp32)."""
    import torch

    if torch.cuda.is_available():
        return DevicePlan(load_device="cuda", offload_device="cpu", auto_dtype="fp16",
                          after_offload=torch.cuda.empty_cache)
    return DevicePlan()
