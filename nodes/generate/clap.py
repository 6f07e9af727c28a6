"""Score takes against their text with CLAP, to keep the best of several variations.

CLAP (Contrastive Language-Audio Pretraining) embeds audio and text in one space; the cosine similarity of a take's
audio embedding and the prompt's text embedding says how well the take sounds like what was asked for (-1..1;
higher is better). With a prompt and a caption, the score is their weighted mean.

CLAP hears 10 s at a time (its feature extractor's ``max_length_s``, at 48 kHz). Longer takes are cut into windows
of exactly that length, spread evenly from start to end (they overlap a little unless the length is a multiple of
10 s), and a take's score is the mean over its windows, so a 60 s take is judged on all of it, not on its first
10 s. A take of 10 s or less is one window (CLAP repeats it to fill 10 s, as its feature extractor does).

Everything is deterministic: the feature extractor's random choices (its "fusion" mode marks one short clip as
"longer" at random) are overridden, and numpy's global random state is left as it was.

No ComfyUI import; torch, numpy, scipy and transformers are imported inside the functions.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..audio.contract import LOOP_KEY, META_KEY, check_audio, require_rate_and_finite
from ..audio.resample import resample_array

if TYPE_CHECKING:
    import numpy as np
    import torch

log = logging.getLogger(__name__)

NODE = "Rank Takes (CLAP)"
OUTPUT_MODES = ("best", "all (best first)")
DEFAULT_CAPTION_WEIGHT = 0.25
SILENCE_PEAK = 1e-4   # -80 dBFS: a take whose peak stays below this is silent
SILENT_SCORE = -1.0   # what a silent take scores: the lowest cosine similarity, so it ranks last
WINDOW_BATCH = 8      # windows per model call (bounds memory for long takes and large batches)


# ------------------------------------------------------------------------------------------------ node inputs
def check_output_mode(output, node: str = NODE) -> str:
    if output not in OUTPUT_MODES:
        raise ValueError(f'{node}: "output" is {output!r} but must be one of {", ".join(repr(m) for m in OUTPUT_MODES)}. '
                         "Pick one from the list.")
    return output


def check_caption_weight(caption_weight, node: str = NODE) -> float:
    if isinstance(caption_weight, bool) or not isinstance(caption_weight, (int, float)) \
            or not math.isfinite(caption_weight) or not 0.0 <= caption_weight <= 1.0:
        raise ValueError(f'{node}: "caption_weight" is {caption_weight!r} but must be a number from 0 to 1 (0: the '
                         "prompt alone decides, 1: the caption alone). Set it to e.g. "
                         f"{DEFAULT_CAPTION_WEIGHT}.")
    return float(caption_weight)


def texts_and_weights(prompt, caption=None, caption_weight: float = DEFAULT_CAPTION_WEIGHT, node: str = NODE
                      ) -> tuple[list[str], list[float], list[str]]:
    """The texts to score against, their weights and their labels, from the node's inputs.

    Args:
        prompt: the text the sampler got (required, not blank).
        caption: optional description of the image; blank or None: the prompt alone.
        caption_weight: the caption's share of the score, 0..1; the prompt gets the rest.
        node: the calling node's display name, the prefix of its messages.

    Returns:
        ``(texts, weights, labels)``: ``[prompt]``/``[1.0]``/``["prompt"]``, or with the caption second.

    Raises:
        ValueError: a blank prompt or a caption_weight outside 0..1, naming the input and the fix.
    """
    if not isinstance(prompt, str) or not prompt.strip():
        shown = prompt if not isinstance(prompt, str) else repr(prompt[:40])
        raise ValueError(f'{node}: "prompt" is empty ({shown}), so there is nothing to compare the takes with. '
                         "Connect the prompt the sampler got (Build Ambient Prompt's prompt output).")
    weight = check_caption_weight(caption_weight, node)
    if caption is None or not isinstance(caption, str) or not caption.strip():
        if caption is not None:
            log.warning('%s: "caption" is empty; ranking by the prompt alone.', node)
        return [prompt.strip()], [1.0], ["prompt"]
    return [prompt.strip(), caption.strip()], [1.0 - weight, weight], ["prompt", "caption"]


# ------------------------------------------------------------------------------------------------ audio prep
def window_starts(frames: int, window: int) -> list[int]:
    """Where each window of ``window`` samples starts so that they cover ``frames`` samples.

    One window (at 0) when ``frames <= window``; otherwise ``ceil(frames / window)`` full windows spread evenly
    from 0 to ``frames - window`` (the first starts at the start, the last ends at the end).
    """
    if frames <= window:
        return [0]
    n = math.ceil(frames / window)
    return [round(i * (frames - window) / (n - 1)) for i in range(n)]


def _pooled(out) -> torch.Tensor:
    """The embedding from ``get_text_features``/``get_audio_features``: a tensor in transformers 4.x, an output
    object whose ``pooler_output`` holds it in 5.x (or a tuple with it second)."""
    import torch

    if isinstance(out, torch.Tensor):
        return out
    pooled = getattr(out, "pooler_output", None)
    if pooled is None and isinstance(out, (tuple, list)) and len(out) > 1:
        pooled = out[1]
    if not isinstance(pooled, torch.Tensor):
        raise TypeError(f"unexpected CLAP output {type(out).__name__}")
    return pooled


def _device_dtype(model):
    p = next(model.parameters())
    return p.device, p.dtype


def text_embeddings(model, processor, texts: Sequence[str]) -> torch.Tensor:
    """Unit-length CLAP text embeddings, float32 ``[len(texts), D]`` on the CPU. Texts longer than the text
    encoder's limit (512 tokens for LAION CLAP) are cut there."""
    import torch
    import torch.nn.functional as F

    device, _ = _device_dtype(model)
    tok = processor.tokenizer
    limit = int(model.config.text_config.max_position_embeddings) - 2  # RoBERTa positions start after padding_idx
    max_len = min(int(tok.model_max_length or limit), limit)
    enc = tok(list(texts), padding=True, truncation=True, max_length=max_len, return_tensors="pt")
    with torch.inference_mode():
        out = model.get_text_features(input_ids=enc["input_ids"].to(device),
                                      attention_mask=enc["attention_mask"].to(device))
    return F.normalize(_pooled(out).float(), dim=-1).cpu()


def audio_embeddings(model, processor, windows: Sequence[np.ndarray]) -> torch.Tensor:
    """Unit-length CLAP audio embeddings, float32 ``[len(windows), D]`` on the CPU.

    Args:
        windows: mono float arrays at the feature extractor's sampling rate, each at most its window length.
    """
    import numpy as np
    import torch
    import torch.nn.functional as F

    fe = processor.feature_extractor
    state = np.random.get_state()  # the "fusion" feature extractor draws from numpy's global generator
    try:
        feats = fe(list(windows), sampling_rate=fe.sampling_rate, return_tensors="pt")
    finally:
        np.random.set_state(state)
    device, dtype = _device_dtype(model)
    features = feats["input_features"].to(device=device, dtype=dtype)
    # no window is longer than CLAP's input: say so for every one (the extractor marks one at random otherwise)
    is_longer = torch.zeros(len(windows), 1, dtype=torch.bool, device=device)
    with torch.inference_mode():
        out = model.get_audio_features(input_features=features, is_longer=is_longer)
    return F.normalize(_pooled(out).float(), dim=-1).cpu()


# ------------------------------------------------------------------------------------------------ scoring
def silent_takes(waveform: torch.Tensor) -> list[bool]:
    """For each take of ``waveform`` ``[B, C, T]``: True when its peak is below -80 dBFS (``SILENCE_PEAK``)."""
    peaks = waveform.detach().abs().amax(dim=(1, 2)).float().cpu()
    return [bool(p <= SILENCE_PEAK) for p in peaks]


def _check_takes(waveform: torch.Tensor, texts: Sequence[str], node: str) -> list[bool]:
    """Which takes of ``waveform [B, C, T]`` are silent; a ``ValueError`` naming ``node`` for a bad shape, no texts,
    or every take silent (a warning names the silent takes otherwise)."""
    import torch

    if not isinstance(waveform, torch.Tensor) or waveform.ndim != 3 or 0 in waveform.shape:
        shape = tuple(waveform.shape) if isinstance(waveform, torch.Tensor) else type(waveform).__name__
        raise ValueError(f'{node}: "audio" waveform is {shape} but must be [takes, channels, samples] with at least '
                         "one sample. Connect an AUDIO output.")
    if not texts:
        raise ValueError(f'{node}: no text to score against. Connect a "prompt".')
    silent = silent_takes(waveform)
    if all(silent):
        loudest = float(waveform.detach().abs().max())
        raise ValueError(f'{node}: "audio" is silent: all {len(silent)} take(s) peak below -80 dBFS (loudest sample '
                         f"{loudest:.1e}), so there is nothing to rank. Check the node that made the audio, "
                         "e.g. a sampler with too few steps or a muted mix.")
    if any(silent):
        log.warning("%s: take(s) %s are silent (peak below -80 dBFS); they score %s and rank last.", node,
                    ", ".join(str(i + 1) for i, s in enumerate(silent) if s), SILENT_SCORE)
    return silent


def _window_lengths(processor, sample_rate: int) -> tuple[int, int, int]:
    """``(CLAP's rate, window length at sample_rate, window length at CLAP's rate)``: a window at the input rate is
    never longer than CLAP's input once resampled."""
    fe = processor.feature_extractor
    rate = int(fe.sampling_rate)
    window_out = int(getattr(fe, "nb_max_samples", 0) or int(fe.max_length_s) * rate)
    return rate, max(1, (window_out * int(sample_rate)) // rate), window_out


def take_similarities(model, processor, waveform: torch.Tensor, sample_rate: int, texts: Sequence[str],
                      on_step: Callable[[int, int], None] | None = None,
                      batch_windows: int = WINDOW_BATCH, node: str = NODE) -> torch.Tensor:
    """Cosine similarity of every take with every text, averaged over each take's 10 s windows.

    Each take is mixed down to mono, cut into CLAP's windows (see :func:`window_starts`; lengths are measured at
    ``sample_rate``), each window is resampled to the feature extractor's rate (48 kHz for LAION CLAP) and
    embedded; a take's similarity with a text is the mean of its windows' cosine similarities.

    Args:
        model: a transformers ``ClapModel`` (on any device, any dtype).
        processor: its ``ClapProcessor``.
        waveform: float ``[B, C, T]``: B takes (variations), C channels.
        sample_rate: of ``waveform``, in Hz.
        texts: what the takes should sound like (e.g. the prompt, the caption).
        on_step: called as ``on_step(windows_done, windows_total)`` after each model call (progress and Cancel).
        batch_windows: windows per model call.
        node: the calling node's display name, the prefix of its messages.

    Returns:
        float32 ``[B, len(texts)]`` in -1..1. A silent take (peak below -80 dBFS) is not embedded and scores
        ``SILENT_SCORE`` (-1) for every text.

    Raises:
        ValueError: bad shapes, no texts, or every take silent.
    """
    import torch

    silent = _check_takes(waveform, texts, node)
    takes, _, frames = waveform.shape
    rate, window_in, window_out = _window_lengths(processor, sample_rate)

    text_emb = text_embeddings(model, processor, texts)
    mono = waveform.detach().float().mean(dim=1).cpu()  # [B, T]
    jobs = [(take, start) for take in range(takes) if not silent[take] for start in window_starts(frames, window_in)]
    sums = torch.zeros(takes, len(texts))
    counts = torch.zeros(takes)
    for first in range(0, len(jobs), batch_windows):
        chunk = jobs[first:first + batch_windows]
        windows = [resample_array(mono[take, start:start + window_in].double().numpy(), sample_rate, rate)
                   [:window_out] for take, start in chunk]
        cosine = audio_embeddings(model, processor, windows) @ text_emb.T  # [n, len(texts)]
        for (take, _), row in zip(chunk, cosine):
            sums[take] += row
            counts[take] += 1
        if on_step is not None:
            on_step(first + len(chunk), len(jobs))
    sims = torch.full((takes, len(texts)), SILENT_SCORE)
    scored = counts > 0
    sims[scored] = sums[scored] / counts[scored, None]
    return sims


def weighted_scores(similarities: torch.Tensor, weights: Sequence[float] | None = None, node: str = NODE
                    ) -> torch.Tensor:
    """The weighted mean over texts of ``similarities`` ``[B, N]`` -> float32 ``[B]``; equal weights by default.

    Raises:
        ValueError: weights of the wrong length, negative, not finite, or all zero.
    """
    import torch

    n = similarities.shape[1]
    w = torch.ones(n) if weights is None else torch.tensor([float(x) for x in weights])
    if w.numel() != n or not bool(torch.isfinite(w).all()) or bool((w < 0).any()) or float(w.sum()) <= 0:
        raise ValueError(f"{node}: text weights {list(map(float, w))} must be {n} finite numbers >= 0, not all 0.")
    return (similarities.float() @ (w / w.sum())).float()


def score_takes(model, processor, waveform: torch.Tensor, sample_rate: int, texts: Sequence[str],
                weights: Sequence[float] | None = None,
                on_step: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """How well each take matches ``texts``: float32 ``[B]``, -1..1, higher is better.

    The cosine similarity of CLAP's audio and text embeddings, averaged over 10 s windows that cover the whole
    take (so long takes are judged on all of their length), then the weighted mean over ``texts``
    (``weights``, default equal). See :func:`take_similarities` for the details and :func:`rank_takes` for the
    order.
    """
    return weighted_scores(take_similarities(model, processor, waveform, sample_rate, texts, on_step=on_step), weights)


def rank_takes(scores) -> list[int]:
    """Take indices (0-based) best first: by score, highest first; equal scores keep their input order, and a NaN
    score ranks last. Deterministic."""
    values = [float(s) for s in scores]
    return sorted(range(len(values)), key=lambda i: (-values[i] if not math.isnan(values[i]) else math.inf, i))


def score_table(order: Sequence[int], scores, similarities=None, labels: Sequence[str] = (),
                weights: Sequence[float] = (), silent: Sequence[bool] = ()) -> str:
    """A readable table, one line per take best first: rank, take (1 = the first clip of the batch), score and,
    with several texts, the similarity with each."""
    lines = []
    if len(labels) > 1:
        formula = " + ".join(f"{w:.2f} x {label}" for w, label in zip(weights, labels))
        lines.append(f"score = {formula} (CLAP cosine similarity, -1..1, higher matches better)")
    else:
        lines.append("score = CLAP cosine similarity with the prompt (-1..1, higher matches better)")
    header = f"{'rank':>4}  {'take':>4}  {'score':>7}"
    if len(labels) > 1:
        header += "".join(f"  {label:>7}" for label in labels)
    lines.append(header)
    for rank, take in enumerate(order, start=1):
        line = f"{rank:>4}  {take + 1:>4}  {float(scores[take]):+7.4f}"
        if len(labels) > 1 and similarities is not None:
            line += "".join(f"  {float(similarities[take][j]):+7.4f}" for j in range(len(labels)))
        if silent and silent[take]:
            line += "  (silent)"
        lines.append(line)
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ a whole ranking
@dataclass
class RankJob:
    """A checked ranking request: what :func:`rank_audio` needs, made by :func:`prepare_ranking`."""

    audio: dict                # the input AUDIO (its loop marker and generation summary carry over)
    waveform: torch.Tensor     # float [B, C, T]: the takes
    sample_rate: int
    texts: list[str]
    weights: list[float]
    labels: list[str]
    best_only: bool            # output "best": one clip; else every take best first
    node: str = NODE           # the calling node's display name, the prefix of its messages

    @property
    def takes(self) -> int:
        return int(self.waveform.shape[0])


def prepare_ranking(audio, prompt, output, caption=None, caption_weight=None, node: str = NODE) -> RankJob:
    """Check Rank Takes' inputs before any model moves: the output mode, the texts and their weights
    (``caption_weight`` None: :data:`DEFAULT_CAPTION_WEIGHT`), and the AUDIO (a whole number of Hz, finite).

    Raises:
        ValueError: naming ``node``, the input and the fix.
    """
    check_output_mode(output, node)
    weight = DEFAULT_CAPTION_WEIGHT if caption_weight is None else caption_weight
    texts, weights, labels = texts_and_weights(prompt, caption, weight, node)
    waveform, rate = check_audio(audio, node)
    rate = require_rate_and_finite(waveform, rate, node, "CLAP cannot score them")
    return RankJob(audio, waveform, rate, texts, weights, labels, output == "best", node)


def rank_audio(model, processor, job: RankJob, on_step: Callable[[int, int], None] | None = None
               ) -> tuple[dict, str, float]:
    """Score every take of ``job`` with CLAP, order them best first and build the outputs.

    Returns:
        ``(audio, table, best_score)``: the AUDIO of :func:`reordered_audio`, the :func:`score_table` text and
        the best take's score (-1..1).
    """
    sims = take_similarities(model, processor, job.waveform, job.sample_rate, job.texts, on_step=on_step,
                             node=job.node)
    scores = weighted_scores(sims, job.weights, job.node)
    order = rank_takes(scores)
    table = score_table(order, scores, sims, job.labels, job.weights, silent_takes(job.waveform))
    log.info("%s:\n%s", job.node, table)
    audio = reordered_audio(job.audio, job.waveform, job.sample_rate, order, scores, job.best_only)
    return audio, table, float(scores[order[0]])


def reordered_audio(audio: dict, waveform: torch.Tensor, sample_rate: int, order: Sequence[int], scores,
                    best_only: bool) -> dict:
    """The AUDIO output: the best take, or all takes best first. The loop marker (one flag for the whole batch)
    stays; the generation summary (one dict for the batch: prompt, seed, ...) gains which take(s) these are, so a
    saved file says which variation it was (``take``: 1 = the first clip of the input batch)."""
    picked = list(order[:1] if best_only else order)
    out = {"waveform": waveform[picked], "sample_rate": sample_rate}
    if audio.get(LOOP_KEY):
        out[LOOP_KEY] = True
    meta = dict(audio.get(META_KEY) or {})
    if best_only:
        meta.update(take=picked[0] + 1, takes=len(order), clap_score=round(float(scores[picked[0]]), 4))
    else:
        meta.update(take_order=[i + 1 for i in picked], clap_scores=[round(float(scores[i]), 4) for i in picked])
    out[META_KEY] = meta
    return out
