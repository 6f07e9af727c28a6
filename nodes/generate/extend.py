"""Soundscapes of any length from a Stable Audio model: successive segments, each with its own seed, joined as
they come (plain functions, no ComfyUI).

Two ways to join (``method``): "continue" (Stable Audio 3): each segment is inpainted after the tail of the
previous one, which the model hears as context, so the texture carries on across the joint; "crossfade" (any
model, the only way for Stable Audio Open): independent segments joined by equal-power cross-fades.

Memory: one segment at a time is on the model's device; finished audio is written into one pre-allocated CPU
buffer of the final size (``float32``, 21 MB per stereo minute at 44.1 kHz), so peak memory is that buffer plus
one segment, whatever the length.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from ..checks import is_number, seed_for
from ..models.families import can_inpaint, is_sa3
from .inputs import require_inpainting

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

NODE = "Extend Soundscape"
MAX_MINUTES = 60.0
METHODS = ("auto", "continue", "crossfade")
CONTEXT_SECONDS = 10.0  # how much of the previous segment a continued segment hears (at most half a segment)


def resolve_method(pipe, method: str) -> str:
    """"auto" -> "continue" where the model can inpaint, else "crossfade"; "continue" on a model that cannot is
    refused with what to do."""
    if method not in METHODS:
        raise ValueError(f'{NODE}: "method" is {method!r} but must be one of {", ".join(METHODS)}. Pick one.')
    if method == "auto":
        return "continue" if can_inpaint(pipe) else "crossfade"
    if method == "continue" and is_sa3(pipe):
        require_inpainting(NODE, pipe, 'Set "method" to auto or crossfade')
    if method == "continue" and not can_inpaint(pipe):
        raise ValueError(f'{NODE}: "method" is continue, which needs a Stable Audio 3 model (it inpaints each '
                         f'segment after the last); this is {type(pipe).__name__}. Set "method" to auto or '
                         "crossfade, or load a Stable Audio 3 model.")
    return method


def segment_seed(seed: int, index: int) -> int:
    """The seed of segment ``index``: ``seed + index`` (wrapping past SEED_MAX), so a run is reproducible and every
    segment differs."""
    return seed_for(seed, int(index))


def plan_segments(total_samples: int, segment_samples: int, overlap_samples: int) -> int:
    """How many segments of ``segment_samples`` joined with ``overlap_samples`` cover ``total_samples``."""
    if total_samples <= segment_samples:
        return 1
    return math.ceil((total_samples - overlap_samples) / (segment_samples - overlap_samples))


def check_extend_settings(*, minutes: float, segment_seconds: float, overlap_seconds: float,
                          max_seconds: float) -> None:
    """``ValueError`` naming the input, the value and the fix."""
    if not is_number(minutes) or not 0 < minutes <= MAX_MINUTES:
        raise ValueError(f'{NODE}: "minutes" is {minutes} but must be more than 0 and at most {MAX_MINUTES:g}. '
                         'Set e.g. 5 for five minutes.')
    if not is_number(segment_seconds) or segment_seconds < 0 or segment_seconds > max_seconds + 1e-6:
        raise ValueError(f'{NODE}: "segment_seconds" is {segment_seconds} but this model makes 0 < segments <= '
                         f'{max_seconds:.2f} s. Set 0 for the model maximum.')
    seg = segment_seconds or max_seconds
    if not is_number(overlap_seconds) or overlap_seconds <= 0 or overlap_seconds > seg / 2:
        raise ValueError(f'{NODE}: "overlap_seconds" is {overlap_seconds} but must be more than 0 and at most half a '
                         f'segment ({seg / 2:.2f} s). Set e.g. {min(2.0, math.floor(seg * 25) / 100):g}.')


def iter_soundscape(pipe, prompt: str, *, negative_prompt: str = "", minutes: float = 5.0,
                    segment_seconds: float = 0.0, overlap_seconds: float = 2.0, steps: int = 0, cfg: float = 0.0,
                    seed: int = 0, tail_conditioning: bool = False,
                    on_step: Callable[[int, int], None] | None = None, stage=None,
                    decode_chunk_frames: int = 0, method: str = "auto") -> Iterator["torch.Tensor"]:
    """Yield the soundscape in finished pieces ``float32 [C, n]`` (CPU), in order, exactly
    ``int(minutes * 60 * rate)`` samples in all.

    Args:
        pipe: a loaded Stable Audio pipeline on its run device.
        prompt, negative_prompt, steps, cfg: as for one clip (0 = the model's own).
        minutes: total length.
        segment_seconds: length of each generated segment (0 = the model's maximum).
        overlap_seconds: cross-fade between segments (equal-power, or correlation-adaptive where the two sides are
            correlated either way, so the level stays steady through each joint; see :mod:`..audio.crossfade`).
        seed: segment k uses ``seed + k``.
        tail_conditioning: pass the previous segment's tail to the pipeline as ``initial_audio_waveforms`` so the
            next segment starts from it (with Stable Audio Open the pipeline adds full-strength noise on top, so
            the effect is subtle).
        on_step: ``on_step(done, total)`` over all segments' steps (one progress bar); raising stops (Cancel).
        stage, decode_chunk_frames: as for :func:`soundscape.generate_soundscape` (memory modes).
        method: "continue" (Stable Audio 3: segment k >= 1 is inpainted after the last ``CONTEXT_SECONDS`` of
            segment k - 1, then cross-faded over ``overlap_seconds`` from the old tail into its regenerated
            version, which the model made to match), "crossfade" (independent segments), "auto" (continue where
            the model can).
    """
    from .soundscape import max_seconds_of, resolve_defaults

    max_seconds = max_seconds_of(pipe)
    check_extend_settings(minutes=minutes, segment_seconds=segment_seconds, overlap_seconds=overlap_seconds,
                          max_seconds=max_seconds)
    steps, cfg = resolve_defaults(pipe, steps, cfg)
    kwargs = dict(negative_prompt=negative_prompt, minutes=minutes, segment_seconds=segment_seconds,
                  overlap_seconds=overlap_seconds, steps=steps, cfg=cfg, seed=seed, on_step=on_step, stage=stage,
                  decode_chunk_frames=decode_chunk_frames)
    if resolve_method(pipe, method) == "continue":
        yield from _iter_continued(pipe, prompt, **kwargs)
    else:
        yield from _iter_crossfaded(pipe, prompt, tail_conditioning=tail_conditioning, **kwargs)


def _segment_plan(pipe, minutes: float, segment_seconds: float) -> tuple[int, float, int, int]:
    """``(rate, segment seconds, total samples, segment samples)``: segments of ``segment_seconds`` (0 = the
    model's maximum, rounded down to 10 ms), or one clip of the whole length when that is shorter."""
    from .soundscape import max_seconds_of, sample_rate_of

    rate = sample_rate_of(pipe)
    seg_seconds = min(segment_seconds or math.floor(max_seconds_of(pipe) * 100) / 100, minutes * 60)
    return rate, seg_seconds, int(minutes * 60 * rate), int(seg_seconds * rate)


def _iter_crossfaded(pipe, prompt: str, *, negative_prompt, minutes, segment_seconds, overlap_seconds, steps, cfg,
                     seed, tail_conditioning, on_step, stage, decode_chunk_frames) -> Iterator["torch.Tensor"]:
    from ..audio.crossfade import cross_fade
    from .soundscape import generate_soundscape

    rate, seg_seconds, total, seg = _segment_plan(pipe, minutes, segment_seconds)
    overlap = int(round(overlap_seconds * rate))
    count = plan_segments(total, seg, overlap)
    log.info("%s: %d segments of %.2f s, %.2f s cross-fades, %d samples", NODE, count, seg_seconds,
             overlap_seconds, total)

    emitted = 0
    tail = None
    for k in range(count):
        def segment_step(done: int, _total: int, k=k) -> None:
            if on_step is not None:
                on_step(k * steps + done, count * steps)

        init = None
        if tail_conditioning and tail is not None:
            init = tail.unsqueeze(0)
        waveform, _ = generate_soundscape(pipe, prompt, negative_prompt=negative_prompt, seconds=seg_seconds,
                                          steps=steps, cfg=cfg, seed=segment_seed(seed, k), on_step=segment_step,
                                          initial_audio=init, stage=stage, decode_chunk_frames=decode_chunk_frames)
        clip = waveform[0]  # [C, seg]
        if tail is not None:
            clip = clip.clone()
            clip[:, :overlap], _ = cross_fade(tail, clip[:, :overlap])
        last = k == count - 1
        body = clip if last else clip[:, : seg - overlap]
        tail = None if last else clip[:, seg - overlap:]
        piece = body[:, : total - emitted]
        emitted += piece.shape[-1]
        yield piece
        if emitted >= total:
            return
    if emitted < total:  # cannot happen with plan_segments; keep the length promise explicit
        raise RuntimeError(f"{NODE}: produced {emitted} of {total} samples")


def _iter_continued(pipe, prompt: str, *, negative_prompt, minutes, segment_seconds, overlap_seconds, steps, cfg,
                    seed, on_step, stage, decode_chunk_frames) -> Iterator["torch.Tensor"]:
    """Segments continued by inpainting (Stable Audio 3): see :func:`iter_soundscape`."""
    import torch

    from ..audio.crossfade import cross_fade
    from .sa3 import hop_of
    from .soundscape import generate_soundscape

    rate, seg_seconds, total, seg = _segment_plan(pipe, minutes, segment_seconds)
    hop = hop_of(pipe.vae)
    # the context is whole latent frames, so the kept part of the mask ends exactly where the audio does
    context = max(1, int(min(CONTEXT_SECONDS, seg_seconds / 2) * rate) // hop) * hop
    fade = min(int(round(overlap_seconds * rate)), context)
    new_per_segment = seg - context
    count = 1 if total <= seg else 1 + math.ceil((total - seg) / new_per_segment)
    log.info("%s: %d segments of %.2f s, each continuing the last %.2f s of the one before (%.2f s fade)", NODE,
             count, seg_seconds, context / rate, fade / rate)
    emitted = 0
    held = None  # the last `context` samples of the previous segment, not yet emitted
    for k in range(count):
        def segment_step(done: int, _total: int, k=k) -> None:
            if on_step is not None:
                on_step(k * steps + done, count * steps)

        common = dict(negative_prompt=negative_prompt, seconds=seg_seconds, steps=steps, cfg=cfg,
                      seed=segment_seed(seed, k), on_step=segment_step, stage=stage,
                      decode_chunk_frames=decode_chunk_frames)
        if held is None:
            waveform, _ = generate_soundscape(pipe, prompt, **common)
            clip = waveform[0]
        else:
            waveform, _ = generate_soundscape(pipe, prompt, reference=held.unsqueeze(0),
                                              regenerate=[(context / rate, 1e9)], **common)
            clip = waveform[0].clone()
            # the held context is emitted as it was, up to its last `fade` samples, which cross-fade into the
            # model's version of them: from there on the audio is the continuation
            clip[:, context - fade: context], _ = cross_fade(held[:, context - fade:], clip[:, context - fade: context])
            clip = torch.cat([held[:, : context - fade], clip[:, context - fade:]], dim=-1)
        last = k == count - 1 or emitted + clip.shape[-1] >= total
        body = clip if last else clip[:, : clip.shape[-1] - context]
        held = None if last else clip[:, clip.shape[-1] - context:]
        piece = body[:, : total - emitted]
        emitted += piece.shape[-1]
        yield piece
        if emitted >= total:
            return
    if emitted < total:
        raise RuntimeError(f"{NODE}: produced {emitted} of {total} samples")


def extend_soundscape(pipe, prompt: str, **kwargs) -> tuple["torch.Tensor", int]:
    """The whole soundscape as ``(waveform float32 [1, C, T], sample_rate)`` on the CPU; see :func:`iter_soundscape`.

    Pieces are copied into one pre-allocated buffer as they come, so memory is the output plus one segment.
    """
    import torch

    from .soundscape import max_seconds_of, sample_rate_of

    check_extend_settings(minutes=kwargs.get("minutes", 5.0), segment_seconds=kwargs.get("segment_seconds", 0.0),
                          overlap_seconds=kwargs.get("overlap_seconds", 2.0), max_seconds=max_seconds_of(pipe))
    rate = sample_rate_of(pipe)
    total = int(kwargs.get("minutes", 5.0) * 60 * rate)
    out = None
    pos = 0
    for piece in iter_soundscape(pipe, prompt, **kwargs):
        if out is None:
            out = torch.empty(1, piece.shape[0], total, dtype=torch.float32)
        out[0, :, pos: pos + piece.shape[-1]] = piece
        pos += piece.shape[-1]
    return out, rate
