"""Where models run and rest: Stable Audio's memory modes, the compile policy, and holding a model on the run
device for one run (:func:`on_device`, :func:`stable_audio_session`); no ComfyUI import.

Models rest on the offload device and move to the load device only while they run, after asking the host
(ComfyUI) to free that much room; the move back happens in ``finally`` so an error or a Cancel never leaves a model
on the GPU. We chose this over wrapping in ComfyUI's ``ModelPatcher`` for the foundation: it guarantees the caption
model is off the GPU before Stable Audio samples, needs no container modules around transformers/diffusers
objects, and works the same in ComfyUI and in the CLI.
"""
from __future__ import annotations

import contextlib

from . import families
from .folders import BLIP, CLAP, LLM, STABLE_AUDIO, ModelHandle
from .loading import load, model_bytes, move_to
from .plan import DevicePlan, standalone_plan  # noqa: F401  (the device layer's face: devices.DevicePlan)

# ------------------------------------------------------------------------------------- Stable Audio memory modes
MEMORY_MODES = ("balanced", "fast", "low-vram")
# the parts of both families (Open 1.0 has a projection model, Stable Audio 3 a duration embedder)
_SA_PARTS = ("text_encoder", "projection_model", "duration_embedder", "transformer", "vae")
# what each stage of generate_soundscape needs on the run device
_STAGE_NEEDS = {"encode": ("text_encoder", "projection_model", "duration_embedder"), "denoise": ("transformer",),
                "encode_audio": ("vae",), "decode": ("vae",)}
# what stays on the run device for the whole run (the rest visits for its stage)
_HELD = ("projection_model", "duration_embedder", "transformer", "vae")
_MODE_HELD = {"fast": ("text_encoder",) + _HELD, "balanced": _HELD, "low-vram": ()}
SPLIT_CFG = {"fast": False, "balanced": False, "low-vram": True}  # guidance halves one after the other


class OutOfMemory(ValueError):
    """The GPU ran out of memory; the model was released. The message says what to change."""


def is_oom(err: BaseException) -> bool:
    """True for torch's GPU out-of-memory error."""
    import torch

    oom = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    return isinstance(err, oom)


def sa_parts(pipe) -> tuple[str, ...]:
    """The pipeline's movable parts, in :data:`_SA_PARTS` order (each family has four of the five)."""
    return tuple(name for name in _SA_PARTS if getattr(pipe, name, None) is not None)


OOM_ADVICE = "Close other models (Manager > Unload Models), then run again."


def decode_chunk_frames(plan: DevicePlan, memory: str, pipe=None) -> int:
    """VAE decode chunk for ``memory`` mode on ``plan``'s device, from the family table
    (:data:`families.FAMILIES`). Stable Audio Open: chunked on a GPU (peak VRAM flat in length), whole on the CPU
    (RAM is plentiful there and whole decoding is about twice as fast). Stable Audio 3 (``pipe`` given): always
    chunked, as its SAME decoder's dense attention mask grows with the square of the length."""
    return families.decode_chunk_frames(pipe, memory, plan.load_device)


def use_compile(compile: bool, plan: DevicePlan, handle: ModelHandle) -> bool:
    """Whether to run the transformer compiled (CUDA graphs): asked for, on a CUDA device, and a family where it
    pays off (Stable Audio Open; Stable Audio 3 runs 8 steps, where compiling each new length costs more than it
    saves). A compiled run needs memory mode "fast" (CUDA graphs need the weights where they were captured)."""
    fam = families.family_for_class(getattr(handle, "family", None) or "")
    return bool(compile) and plan.load_device.startswith("cuda") and fam is not None and fam.compiles


def _stager(parts: dict, held: tuple, plan: DevicePlan, moving: bool):
    """``(place, stage)``: ``place(names, device)`` moves parts and logs it; ``stage(name)`` brings what a stage
    needs (and is not held) onto the run device for the ``with`` block."""
    def place(names, device):
        for name in names:
            parts[name].to(device)
        plan.moves.append((tuple(names), device))

    @contextlib.contextmanager
    def stage(name: str):
        visiting = [n for n in _STAGE_NEEDS[name] if n in parts and n not in held] if moving else []
        if visiting:
            place(visiting, plan.load_device)
        try:
            yield
        finally:
            if visiting:
                place(visiting, plan.offload_device)

    return place, stage


@contextlib.contextmanager
def stable_audio_session(handle: ModelHandle, plan: DevicePlan, memory: str = "balanced", *, node: str,
                         advice: str = OOM_ADVICE):
    """Load ``handle`` (cached) and place its parts for one run in ``memory`` mode.

    Yields ``(pipe, stage)`` for :func:`soundscape.generate_soundscape`: ``stage(name)`` brings what a stage
    needs onto the run device. Afterwards (also on error or Cancel) the parts go back to the offload device,
    except in "fast" mode, where the transformer, decoder and projection stay (evictable by the host). A GPU
    out-of-memory error releases everything and becomes an :class:`OutOfMemory`: "``node``: the GPU ran out of
    memory. ``advice``" (the calling node's display name, and fixes that name only its own inputs).
    """
    if memory not in MEMORY_MODES:
        raise ValueError(f'{node}: "memory" is {memory!r} but must be one of '
                         f'{", ".join(MEMORY_MODES)}. Pick one from the list.')
    pipe = load(handle, plan)
    parts = {name: getattr(pipe, name) for name in sa_parts(pipe)}
    moving = plan.load_device != plan.offload_device
    held = tuple(n for n in _MODE_HELD[memory] if n in parts)
    place, stage = _stager(parts, held, plan, moving)
    try:
        if moving:
            if plan.free_memory is not None:
                biggest = max(model_bytes(p) for p in parts.values())
                plan.free_memory(sum(model_bytes(parts[n]) for n in held) + biggest + _WORKING_BYTES[STABLE_AUDIO])
            if memory == "fast" and plan.keep_resident is not None:
                plan.keep_resident(f"{handle.path}|{handle.dtype}", {n: parts[n] for n in held})
                plan.moves.append((held, plan.load_device))
            elif held:
                place(held, plan.load_device)
        yield pipe, stage
    except Exception as err:
        if is_oom(err):
            if moving:
                place(tuple(parts), plan.offload_device)
            if plan.after_offload is not None:
                plan.after_offload()
            raise OutOfMemory(f"{node}: the GPU ran out of memory. {advice}") from err
        raise
    finally:
        if moving and memory != "fast":
            place(tuple(parts), plan.offload_device)
            if plan.after_offload is not None:
                plan.after_offload()


# Working memory beyond the weights while a model runs (activations, VAE decode); the request to ComfyUI.
_WORKING_BYTES = {BLIP: 1 << 30, STABLE_AUDIO: 3 << 29, CLAP: 1 << 30, LLM: 1 << 30}


@contextlib.contextmanager
def on_device(handle: ModelHandle, plan: DevicePlan):
    """Load ``handle`` (cached) and hold it on ``plan.load_device`` for the ``with`` block.

    Asks ComfyUI to free room first; moves the model back to the offload device in ``finally`` (also after an
    error or a Cancel) and empties the allocator cache.
    """
    obj = load(handle, plan)
    moved = plan.load_device != plan.offload_device
    if moved:
        if plan.free_memory is not None:
            plan.free_memory(model_bytes(obj) + _WORKING_BYTES[handle.kind])
        move_to(obj, plan.load_device)
        plan.moves.append((handle.kind, plan.load_device))
    try:
        yield obj
    finally:
        if moved:
            move_to(obj, plan.offload_device)
            plan.moves.append((handle.kind, plan.offload_device))
            if plan.after_offload is not None:
                plan.after_offload()
