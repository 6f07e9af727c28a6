"""What the Stable Audio 3 audio inputs share (Vary Audio, the inpainted loop): the refusal of models that cannot
take audio in, the sampling and prompt checks, and exact sample counts (plain functions, no ComfyUI).

Every message names the calling node (``node``, its display name), so shared code never speaks for a node it
does not know.
"""
from __future__ import annotations

import math

from ..models.families import is_sa3

SA3_FIX = ("Load a Stable Audio 3 folder (converted once with `python -m nodes.cli convert-sa3`, see the README) in "
           'Load Stable Audio Model and connect it to "model"')


def require_sa3_handle(node: str, model, instead: str = "") -> None:
    """``ValueError`` unless ``model`` (a loader's ``ModelHandle``) is a Stable Audio 3 folder; checked from the
    handle, before anything loads. ``instead``: another way out, appended to the fix (e.g. another method)."""
    if is_sa3(model):
        return
    family = getattr(model, "family", None)
    if family is None:
        raise ValueError(f'{node}: "model" is {type(model).__name__}, not a loaded Stable Audio model. {SA3_FIX}'
                         f"{instead}.")
    raise ValueError(f'{node}: "model" is {getattr(model, "name", "?")} ({family}, Stable Audio Open), which cannot '
                     f"take audio in; this needs a Stable Audio 3 model. {SA3_FIX}{instead}.")


def require_sa3_pipe(node: str, pipe, instead: str = "") -> None:
    """The same refusal for a loaded pipeline (plain-function callers)."""
    if not is_sa3(pipe):
        raise ValueError(f'{node}: "model" is a {type(pipe).__name__} (Stable Audio Open), which cannot take audio '
                         f"in; this needs a Stable Audio 3 model. {SA3_FIX}{instead}.")


def require_inpainting(node: str, pipe, instead: str) -> None:
    """A Stable Audio 3 pipeline that cannot inpaint (its checkpoint had no inpainting embedder) is refused with what
    to do instead (``instead``: e.g. 'Set "method" to crossfade')."""
    from ..models.families import can_inpaint

    if not can_inpaint(pipe):
        raise ValueError(f'{node}: "model" cannot inpaint: its checkpoint has no inpainting embedder (convert-sa3 '
                         "filled it with zeros, so the model would not hear the audio it should keep). "
                         f"{instead}, or load a Stable Audio 3 folder converted from a checkpoint with one (the "
                         "official Small and Medium checkpoints have it).")


def check_sampling(node: str, *, steps: int, seed: int, variations: int = 1) -> None:
    """The sampler's checks of ``steps``, ``seed`` and ``variations``, with ``node``'s name in the message."""
    from .soundscape import check_settings

    check_settings(seconds=1.0, steps=steps, cfg=0.0, seed=seed, variations=variations, node=node)


def check_prompt(node: str, prompt) -> str:
    """``prompt``, or a ``ValueError`` naming ``node`` when it is not text."""
    if not isinstance(prompt, str):
        raise ValueError(f'{node}: "prompt" is {type(prompt).__name__}, not text. Connect a STRING, e.g. Build '
                         "Ambient Prompt's prompt, or type one.")
    return prompt


def seconds_for(samples: int, sample_rate: int) -> float:
    """A duration in seconds that the samplers turn back into exactly ``samples`` (they keep
    ``int(seconds * rate)`` samples, which float rounding can make one short)."""
    seconds = samples / sample_rate
    while int(seconds * sample_rate) < samples:
        seconds = math.nextafter(seconds, math.inf)
    return seconds
