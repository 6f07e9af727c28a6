"""The only module that touches ComfyUI (``folder_paths``, ``comfy.*``).

Every import of ComfyUI happens inside a function, so the pack imports without ComfyUI (tests, the CLI) and
ComfyUI's start-up pays nothing for it. The plain modules never import this one; the node layer passes what it
returns (a device plan, an ``on_step`` callback, folders) into them.
"""
from __future__ import annotations

import os
from collections.abc import Callable

BLIP_FOLDER = "blip"          # pack-registered model folder type: ComfyUI/models/blip/
CLAP_FOLDER = "clap"          # pack-registered model folder type: ComfyUI/models/clap/
LLM_FOLDER = "LLM"            # pack-registered (core has none; other packs use the same): ComfyUI/models/LLM/
HRTF_FOLDER = "hrtf"          # pack-registered: ComfyUI/models/hrtf/ (optional SOFA HRTF files for Binaural)
DIFFUSERS_FOLDER = "diffusers"  # ComfyUI's own folder type for diffusers pipelines: ComfyUI/models/diffusers/


def _register_pack_folder(folder_type: str) -> None:
    import folder_paths

    default = os.path.join(folder_paths.models_dir, folder_type)
    if folder_type not in folder_paths.folder_names_and_paths or default not in folder_paths.get_folder_paths(folder_type):
        folder_paths.add_model_folder_path(folder_type, default)


def model_roots(folder_type: str) -> list[str]:
    """The folders ComfyUI searches for ``folder_type`` (``models/<type>`` plus extra_model_paths.yaml entries)."""
    import folder_paths

    if folder_type in (BLIP_FOLDER, CLAP_FOLDER, LLM_FOLDER, HRTF_FOLDER):
        _register_pack_folder(folder_type)
    try:
        return folder_paths.get_folder_paths(folder_type)
    except KeyError:
        return []


def hrtf_files(exts: tuple[str, ...] = (".sofa",)) -> list[str]:
    """The SOFA files in the ``hrtf`` model folders (``models/hrtf`` and extra_model_paths.yaml entries), as
    paths relative to their folder (``/``-separated, sorted); none when the folders are empty or absent."""
    names = set()
    for root in model_roots(HRTF_FOLDER):
        for folder, _, files in os.walk(root, followlinks=True):
            for f in files:
                if f.lower().endswith(exts):
                    names.add(os.path.relpath(os.path.join(folder, f), root).replace(os.sep, "/"))
    return sorted(names)


def hrtf_path(name: str) -> str | None:
    """The file of ``name`` (one of :func:`hrtf_files`) in the first ``hrtf`` folder that has it, else None."""
    for root in model_roots(HRTF_FOLDER):
        path = os.path.join(root, *name.split("/"))
        inside = os.path.commonpath([os.path.abspath(root), os.path.abspath(path)]) == os.path.abspath(root)
        if inside and os.path.isfile(path):
            return path
    return None


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


def is_interrupt(err: BaseException) -> bool:
    """True for ComfyUI's Cancel (``InterruptProcessingException``), which must reach ComfyUI untouched."""
    try:
        import comfy.model_management as mm
    except ImportError:
        return False
    return isinstance(err, mm.InterruptProcessingException)


def cancel_check() -> Callable[[], None]:
    """A ``cancel()`` for long DSP loops (called between blocks of work): raises ComfyUI's interrupt once Cancel
    was pressed."""
    import comfy.model_management as mm

    return mm.throw_exception_if_processing_interrupted


def device_plan(kind: str):
    """Where a model of ``kind`` ("blip", "clap" or "stable_audio") runs and rests, from ComfyUI's model
    management."""
    import comfy.model_management as mm

    from ..models.plan import DevicePlan

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
        keep_resident=lambda key, modules: _keep_resident(key, modules, load, offload),
    )


_RESIDENT: dict = {}  # key -> ModelPatcher; ComfyUI's registry holds only weak references


def _keep_resident(key: str, modules: dict, load_device, offload_device) -> None:
    """Hold ``modules`` on the GPU through ComfyUI's model management: wrapped in one plain ``nn.Module``
    container (transformers/diffusers modules have a read-only ``device``) inside a ``ModelPatcher``, loaded with
    ``load_models_gpu(force_full_load=True)``. ComfyUI evicts it like its own models when another needs room
    (and on /free); the next run loads it again."""
    import comfy.model_management as mm
    import comfy.model_patcher
    import torch

    patcher = _RESIDENT.get(key)
    if patcher is None or any(getattr(patcher.model, name, None) is not m for name, m in modules.items()):
        container = torch.nn.Module()
        for name, module in modules.items():
            container.add_module(name, module)
        patcher = comfy.model_patcher.ModelPatcher(container, load_device=load_device, offload_device=offload_device)
        _RESIDENT.clear()  # one resident Stable Audio model at a time
        _RESIDENT[key] = patcher
    mm.load_models_gpu([patcher], force_full_load=True)


def compile_cache_dir() -> str:
    """Where compiled kernels are cached across ComfyUI starts: ``<ComfyUI user dir>/image-to-ambient-audio/``."""
    import folder_paths

    return os.path.join(folder_paths.get_user_directory(), "image-to-ambient-audio", "inductor")


def metadata_disabled() -> bool:
    """True when ComfyUI runs with ``--disable-metadata`` (its savers then embed no prompt/workflow); False when
    ComfyUI is absent (tests, the CLI)."""
    try:
        from comfy.cli_args import args
    except ImportError:
        return False
    return bool(getattr(args, "disable_metadata", False))


def input_directory() -> str:
    import folder_paths

    return folder_paths.get_input_directory()


def scene_table_dirs() -> list[str]:
    """Folders of the user's own scene tables for Build Ambient Prompt: ``<ComfyUI user dir>/default/ambient_scenes``
    (files there are merged over the built-in nodes/text/scenes.json); none when ComfyUI is absent."""
    try:
        import folder_paths
    except ImportError:
        return []
    return [os.path.join(folder_paths.get_user_directory(), "default", "ambient_scenes")]
