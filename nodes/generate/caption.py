"""BLIP captioning over a loaded model and processor (plain functions, no ComfyUI)."""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

NODE = "Caption Image (BLIP)"


def check_images(images: "torch.Tensor") -> None:
    """Raise ``ValueError`` naming the node and input unless ``images`` is a ComfyUI IMAGE: float [B, H, W, C]."""
    import torch

    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f'{NODE}: "image" has shape {shape} but must be an IMAGE batch [B, H, W, C]. '
                         "Connect a Load Image node or any node that outputs IMAGE.")
    if images.shape[0] == 0:
        raise ValueError(f'{NODE}: "image" is an empty batch (0 images). Connect a node that outputs at least one image.')
    if images.shape[-1] not in (1, 3, 4):
        raise ValueError(f'{NODE}: "image" has {images.shape[-1]} channels but must have 1, 3 or 4. '
                         "Connect an IMAGE output (channels last).")


def to_pil(image: "torch.Tensor"):
    """One ComfyUI image ``float [H, W, C] in 0..1`` (C = 1, 3 or 4) to an RGB PIL image.

    Non-finite values become 0; values are clipped to 0..1; alpha is dropped (composited over black, as ComfyUI
    shows it); grayscale is repeated to RGB.
    """
    import numpy as np
    from PIL import Image

    arr = image.detach().float().cpu().numpy()
    arr = np.nan_to_num(arr, nan=0.0, posinf=1.0, neginf=0.0)
    if arr.shape[-1] == 4:
        arr = arr[..., :3] * arr[..., 3:4]
    elif arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    arr = (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(arr)


def prefix_token_limit(model, processor, max_new_tokens: int) -> int:
    """Most tokens the conditional-captioning ``prefix`` may take: the caption (prefix + new tokens) must fit the
    text decoder's positions, and the prefix the tokenizer's own limit."""
    positions = getattr(getattr(model.config, "text_config", None), "max_position_embeddings", None) or 512
    limit = int(positions) - int(max_new_tokens) - 1
    tok_max = getattr(processor.tokenizer, "model_max_length", None)
    if isinstance(tok_max, int) and 0 < tok_max < 10**6:
        limit = min(limit, tok_max)
    return max(limit, 2)


def fit_prefix(model, processor, prefix: str, max_new_tokens: int) -> str:
    """``prefix`` (stripped) shortened on a word boundary until BLIP's decoder takes it with ``max_new_tokens``
    more; logs a warning when it shortens (an over-long prefix would index past the decoder's positions)."""
    from .tokens import count_tokens, fit_to_tokens

    text = " ".join(str(prefix or "").split())
    if not text:
        return ""
    limit = prefix_token_limit(model, processor, max_new_tokens)
    short = fit_to_tokens(processor.tokenizer, text, limit)
    if short != text:
        log.warning('%s: "prefix" is %d tokens but BLIP takes at most %d before the caption; shortened to %r. '
                    "Use a shorter prefix.", NODE, count_tokens(processor.tokenizer, text), limit, short)
    return short


def _warn_non_finite(images: "torch.Tensor") -> None:
    import torch

    bad = int((~torch.isfinite(images)).sum())
    if bad:
        log.warning('%s: "image" has %d NaN/inf values (of %d); they were read as black (NaN, -inf) and white '
                    "(+inf). Check the node that made the image (e.g. a VAE decode in fp16).", NODE, bad,
                    images.numel())


def _special_token_ids(processor) -> list[list[int]]:
    tok = processor.tokenizer
    ids = {tok.pad_token_id, tok.unk_token_id, tok.mask_token_id, tok.cls_token_id}
    ids.update(tok.convert_tokens_to_ids(t) for t in getattr(tok, "additional_special_tokens", []) or [])
    return [[i] for i in sorted(i for i in ids if isinstance(i, int) and i >= 0)]


def _token_ticker(on_step, offset: int, start_len: int, max_new_tokens: int, total: int):
    """A transformers stopping criterion that never stops but reports each generated token to ``on_step`` (and
    lets it raise: Cancel)."""
    import torch
    from transformers import StoppingCriteria

    class Tick(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            if on_step is not None:
                made = min(max_new_tokens, max(0, input_ids.shape[-1] - start_len))
                on_step(offset + made, total)
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    return Tick()


def caption_images(model, processor, images: "torch.Tensor", *, prefix: str = "", max_new_tokens: int = 30,
                   num_beams: int = 3, on_step: Callable[[int, int], None] | None = None) -> list[str]:
    """Caption each image of a batch.

    Args:
        model: a ``BlipForConditionalGeneration`` on the device it should run on.
        processor: its ``BlipProcessor``.
        images: ``float32 [B, H, W, C] in 0..1`` (ComfyUI IMAGE).
        prefix: conditional captioning text the caption starts with (e.g. "a photography of"); "" = unconditional.
        max_new_tokens: longest caption, in tokens.
        num_beams: beam-search width (1 = greedy).
        on_step: ``on_step(done, total)``, called per generated token (total = B * max_new_tokens); raising from it
            stops generation (Cancel).

    Returns:
        B captions, in batch order, without the prefix's special tokens, stripped.
    """
    import numpy as np
    import torch
    from transformers import StoppingCriteriaList

    check_images(images)
    _warn_non_finite(images)
    prefix = fit_prefix(model, processor, prefix, max_new_tokens)
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    total = int(images.shape[0]) * max_new_tokens
    captions: list[str] = []

    for i in range(images.shape[0]):
        # uint8 [3, H, W] declared channels-first: unambiguous for every image-processor backend and size (a 1-px
        # or 3-px tall image is not misread; transformers 5.17's torchvision backend misreads PIL + channels_last)
        pixels = torch.from_numpy(np.array(to_pil(images[i]))).permute(2, 0, 1).contiguous()
        inputs = processor(images=pixels, text=prefix or None, return_tensors="pt", input_data_format="channels_first")
        inputs = {k: (v.to(device, dtype) if v.is_floating_point() else v.to(device)) for k, v in inputs.items()}
        inputs.pop("token_type_ids", None)
        start_len = inputs["input_ids"].shape[-1] if "input_ids" in inputs else 1

        tick = _token_ticker(on_step, i * max_new_tokens, start_len, max_new_tokens, total)
        with torch.inference_mode():
            out = model.generate(**inputs, max_new_tokens=max_new_tokens, num_beams=num_beams,
                                 bad_words_ids=_special_token_ids(processor) or None,
                                 stopping_criteria=StoppingCriteriaList([tick]))
        text = processor.decode(out[0], skip_special_tokens=True)
        captions.append(" ".join(text.split()))
        if on_step is not None:
            on_step((i + 1) * max_new_tokens, total)
    log.info("captions: %s", captions)
    return captions
