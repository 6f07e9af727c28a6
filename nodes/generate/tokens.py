"""Fitting text to a tokenizer's limit (plain functions, no ComfyUI)."""
from __future__ import annotations


def count_tokens(tokenizer, text: str) -> int:
    """Tokens of ``text`` with the special tokens, uncut."""
    return len(tokenizer(text, truncation=False, add_special_tokens=True, verbose=False)["input_ids"])


def fit_to_tokens(tokenizer, text: str, limit: int) -> str:
    """``text`` shortened on a word boundary until ``tokenizer`` takes it whole in ``limit`` tokens (a tokenizer
    itself would cut mid-word); ``text`` itself when it fits. The caller says when it shortened (``!= text``)."""
    from ..text.shorten import shorten_to_limit

    return shorten_to_limit(text, limit, count_tokens=lambda t: count_tokens(tokenizer, t))
