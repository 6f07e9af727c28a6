"""Prompt length: a conservative T5 token estimate and shortening on word (preferably comma) boundaries.
Pure Python, standard library only, deterministic."""

from __future__ import annotations

import math
import re
from collections.abc import Callable


def estimate_tokens(text: str) -> int:
    """Conservative T5 token estimate.

    Args:
        text: Prompt text.

    Returns:
        About 1.5 tokens per word, one more per 8 letters of long words, one per
        punctuation mark or non-Latin character, plus the end-of-sequence token.
    """
    pieces = re.findall(r"[A-Za-z0-9]+|[^\sA-Za-z0-9]", text)
    words = [p for p in pieces if p[0].isascii() and p[0].isalnum()]
    other = len(pieces) - len(words)
    return math.ceil(1.5 * len(words)) + sum(len(w) // 8 for w in words) + other + 1


_TRAILING_CONNECTORS = frozenset("a an the and or with of in on at to for by from as".split())


def _tidy_cut(words: list[str]) -> str:
    ws = list(words)
    while len(ws) > 1 and ws[-1].rstrip(",;:-").lower() in _TRAILING_CONNECTORS:
        ws.pop()
    text = " ".join(ws)
    return text.rstrip(" ,;:-")


def shorten_to_limit(text: str, max_tokens: int, count_tokens: Callable[[str], int] | None = None) -> str:
    """Shorten text from the end on a word (preferably comma) boundary until it fits.

    Args:
        text: Text to shorten.
        max_tokens: Largest allowed ``count_tokens(result)``.
        count_tokens: Token counter (assumed to grow with length); defaults to
            :func:`estimate_tokens`.

    Returns:
        ``text`` unchanged if it fits, otherwise its longest fitting prefix that ends
        on a whole word, preferring one that ends at a comma; "" if no word fits.
    """
    count = count_tokens or estimate_tokens
    if count(text) <= max_tokens:
        return text
    words = text.split()
    best_word = ""
    best_word_n = 0
    best_comma = ""
    best_comma_n = 0
    for n in range(1, len(words) + 1):
        if count(" ".join(words[:n])) > max_tokens:
            break  # counters grow with length: longer prefixes cannot fit
        cand = _tidy_cut(words[:n])
        if cand and count(cand) <= max_tokens:
            best_word, best_word_n = cand, n
            if words[n - 1].endswith(","):
                best_comma, best_comma_n = cand, n
    if best_comma and best_comma_n * 2 >= best_word_n:
        return best_comma
    return best_word

