"""One Stable Audio run as every sampling node starts it: device plan, session, the model's default steps/cfg,
a progress bar, the decode chunk, and (Stable Audio Sampler) the compiled transformer.

Written once for Stable Audio Sampler, Extend Soundscape, Vary Audio and Make Seamless Loop's inpaint. The calling
node names itself and what to change on a GPU out-of-memory error, so a message never speaks for another node or
names an input the node does not have. Stdlib-only at import.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from ..models import devices, folders, loading
from . import glue as comfy_glue

# what every "failed inside the model" message ends with
MODEL_CHECK = ("if it still fails, the model folder may be damaged or its parts may not match: check it with "
               "`python -m nodes.cli --check` and download (or convert) it again. The full traceback is in the "
               "ComfyUI console")
_DETAIL_CHARS = 400


class ModelError(RuntimeError):
    """An error from inside a model (torch, transformers, diffusers), told as "<node>: <doing> failed: <original>.
    Try: <what to try>"; the original is chained (``__cause__``)."""


def _passes_through(err: BaseException) -> bool:
    """Our own messages (they start with a node's display name), a GPU out-of-memory error (ComfyUI frees memory
    on it) and ComfyUI's Cancel reach ComfyUI as they are."""
    from .. import NODE_DISPLAY_NAME_MAPPINGS

    if devices.is_oom(err) or comfy_glue.is_interrupt(err):
        return True
    text = str(err)
    return any(text.startswith(f"{name}:") for name in NODE_DISPLAY_NAME_MAPPINGS.values())


@contextlib.contextmanager
def model_errors(node: str, doing: str, fix: str):
    """Tell an error from inside a model with the node, what it was doing and what to try.

    Args:
        node: the node's display name.
        doing: what the node was doing, e.g. "generating segments".
        fix: what to try first, naming only this node's inputs; :data:`MODEL_CHECK` follows it.

    Raises:
        ModelError: from any other exception, chained to it.
    """
    try:
        yield
    except Exception as err:
        if _passes_through(err):
            raise
        detail = " ".join(str(err).split()) or "(no message)"
        detail = detail if len(detail) <= _DETAIL_CHARS else detail[:_DETAIL_CHARS] + "…"
        raise ModelError(f"{node}: {doing} failed: {type(err).__name__}: {detail.rstrip('.')}. "
                         f"Try: {fix}; {MODEL_CHECK}.") from err


# the models layer's own advice, appended to the node's: 'Lower "x", or close other models (...), then run again.'
CLOSE_OTHERS = "or " + devices.OOM_ADVICE[:1].lower() + devices.OOM_ADVICE[1:]


@dataclass
class SamplingRun:
    """What a sampling node passes to its plain function: the pipeline, the resolved steps and cfg, and
    ``options`` (``on_step``, ``stage``, ``decode_chunk_frames``) for every sampling function."""

    pipe: Any
    steps: int
    cfg: float
    options: dict = field(default_factory=dict)
    transformer: Any = None  # the compiled transformer, or None
    split_cfg: bool = False  # low-vram: the two guidance passes one after the other


@contextlib.contextmanager
def stable_audio_run(node: str, model, advice: str, *, steps: int = 0, cfg: float = 0.0, clips: int = 1,
                     memory: str = "balanced", compile: bool = False, doing: str = "sampling",
                     fix: str = "run again with this node's default settings"):
    """Yield a :class:`SamplingRun` for ``model`` (a Stable Audio handle) in ``memory`` mode.

    Args:
        node: the calling node's display name, the prefix of its messages.
        advice: what to change on a GPU out-of-memory error, naming only this node's inputs, e.g.
            'Lower "minutes"', completed with :data:`CLOSE_OTHERS`.
        steps, cfg: the node's inputs; 0 = the model's own.
        clips: clips sampled one after the other (the progress bar counts ``steps * clips``).
        memory: a memory mode (:data:`devices.MEMORY_MODES`).
        compile: compile the transformer (Stable Audio Open on CUDA only; implies memory=fast).
        doing, fix: what the node does and what to try first, for an error from inside the model
            (:func:`model_errors`).

    Raises:
        devices.OutOfMemory: the GPU ran out of memory (the model was released), prefixed with ``node``.
        ModelError: an error from inside the model (torch, diffusers), chained to the original.
    """
    from ..generate.soundscape import resolve_defaults

    plan = comfy_glue.device_plan(folders.STABLE_AUDIO)
    compiled = devices.use_compile(compile, plan, model)
    memory = "fast" if compiled else memory  # CUDA graphs need the weights to stay where they were captured
    session = devices.stable_audio_session(model, plan, memory, node=node, advice=f"{advice}, {CLOSE_OTHERS}")
    with model_errors(node, doing, fix), session as (pipe, stage):
        transformer = loading.compiled_transformer(model, pipe, comfy_glue.compile_cache_dir()) if compiled else None
        steps, cfg = resolve_defaults(pipe, steps, cfg)
        options = {"on_step": comfy_glue.progress(steps * clips), "stage": stage,
                   "decode_chunk_frames": devices.decode_chunk_frames(plan, memory, pipe)}
        yield SamplingRun(pipe, steps, cfg, options, transformer, devices.SPLIT_CFG[memory])
