"""Rewriting the rule prompt with a local instruct LLM (plain functions, no ComfyUI).

The rule builder's prompt and the caption go to a causal LM with a system prompt written for ambient sound design;
its answer is cleaned (first usable line, labels and quotes stripped, music or speech the scene lacks dropped,
shortened to the Stable Audio token budget) and checked. Decoding is greedy and seeded, so the same inputs give the
same prompt. An empty or malformed answer (no letters, too short, a refusal, repeated junk) gives back the rule
prompt, and the note says why.
"""
from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from ..text.clean import clean_caption
from ..text.prompt import PROMPT_TOKEN_LIMIT
from ..text.shorten import estimate_tokens, shorten_to_limit

log = logging.getLogger(__name__)

NODE = "Rewrite Ambient Prompt (LLM)"
DEFAULT_MAX_NEW_TOKENS = 96
MAX_NEW_TOKENS = 256
SEED = 0
PROMPT_WORDS = 40  # what the system prompt asks for; well inside PROMPT_TOKEN_LIMIT estimated T5 tokens
_CAPTION_WORDS = 80  # a longer caption is cut before it reaches the model

SYSTEM_PROMPT = (
    "You are a sound designer. You write one prompt for a text-to-audio model that generates the ambient "
    "soundscape of a picture. Rules: name concrete sound sources and textures that are present in the scene "
    "(e.g. 'waves breaking on pebbles, gulls calling, wind gusts'); never add a sound the picture contradicts "
    "(no insects in snow, no birds in space, no traffic indoors); no music, singing or speech unless the scene "
    "has them; keep the style words of the draft (such as 'field recording'). Answer with the prompt only: one "
    f"line, comma-separated, at most {PROMPT_WORDS} words, no quotes, no explanation."
)

# words of a sound the scene must mention before the rewrite may add it
_UNASKED = {
    "music": ("music", "musical", "melody", "melodic", "song", "songs", "singing", "sings", "singer", "choir",
              "piano", "guitar", "violin", "drum", "drums", "band", "concert", "orchestra", "orchestral"),
    "speech": ("speech", "speaking", "talking", "talk", "voice", "voices", "vocal", "vocals", "narration",
               "narrator", "conversation", "chatter", "dialogue"),
}
_LABEL = re.compile(r"^\s*(?:[-*•>#]+|\d+[.)])?\s*(?:\*\*)?\s*(?:(?:here is|here's|sure|okay|ok)\b[^:]{0,60}:|"
                    r"(?:(?:ambient|ambience|audio|sound|rewritten|final|new|improved|stable audio)\s+)*"
                    r"(?:prompt|output|answer|result|response|soundscape)\s*:)\s*", re.IGNORECASE)
_BULLET = re.compile(r"^\s*(?:[-*•>#]+|\d+[.)])\s+")
_QUOTES = "\"'`“”‘’«»*_ "
_REFUSAL = re.compile(r"\b(?:i'?m sorry|i am sorry|i cannot|i can'?t|i can not|i am unable|i'?m unable|"
                      r"as an ai|language model|i won'?t|cannot help|can'?t help|not able to)\b", re.IGNORECASE)
_FILLERS = frozenset("the and with of in on at from far away close distant soft".split())
_THINK = re.compile(r"<think>.*?(?:</think>|$)", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Rewrite:
    """What :func:`rewrite_prompt` returns.

    Attributes:
        prompt: the cleaned model prompt, or the rule prompt when the model's answer was not usable.
        note: one or two sentences: what was used and why (shown in the node, for the workflow's notes).
        used_model: True when ``prompt`` is the model's.
        raw: the model's answer as decoded, before cleaning.
    """

    prompt: str
    note: str
    used_model: bool
    raw: str


def check_texts(caption: str, rule_prompt: str, max_new_tokens: int) -> None:
    """``ValueError`` naming the node and input for an empty rule prompt or a ``max_new_tokens`` out of range."""
    if not isinstance(rule_prompt, str) or not rule_prompt.strip():
        raise ValueError(f'{NODE}: "prompt" is empty. Connect Build Ambient Prompt\'s prompt output (the rewrite '
                         "falls back to it when the model's answer is unusable).")
    if caption is not None and not isinstance(caption, str):
        raise ValueError(f'{NODE}: "caption" is a {type(caption).__name__}, not text. Connect Caption Image '
                         "(BLIP)'s caption.")
    whole = isinstance(max_new_tokens, int) and not isinstance(max_new_tokens, bool)
    if not whole or not 8 <= max_new_tokens <= MAX_NEW_TOKENS:
        raise ValueError(f'{NODE}: "max_new_tokens" is {max_new_tokens!r} but must be a whole number from 8 to '
                         f"{MAX_NEW_TOKENS}. {DEFAULT_MAX_NEW_TOKENS} is enough for a {PROMPT_WORDS}-word prompt.")


def build_messages(caption: str, rule_prompt: str) -> list[dict]:
    """The chat: the system prompt, then the caption (without BLIP's artefacts and lead-ins, at most 80 words) and
    the rule builder's draft as the user's turn."""
    words = (clean_caption(caption or "") or " ".join(str(caption or "").split())).split(" ")
    scene = " ".join(words[:_CAPTION_WORDS]).strip() or "(no caption)"
    draft = " ".join(rule_prompt.split())
    user = (f"Scene (an image caption): {scene}\nDraft prompt from a rule-based builder: {draft}\n"
            "Write the improved ambience prompt.")
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def render_chat(tokenizer, messages: list[dict]) -> str:
    """The model's input text: its chat template when the tokenizer has one (thinking off where the template
    knows that switch), else a plain instruction prompt ending in "Prompt:"."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False,
                                             enable_thinking=False)
    system, user = messages[0]["content"], messages[1]["content"]
    return f"{system}\n\n{user}\nPrompt:"


def _strip_line(line: str) -> str:
    text = line.strip()
    for _ in range(3):  # "1. **Prompt:** "...""
        text = _LABEL.sub("", text, count=1)
        text = _BULLET.sub("", text, count=1).strip().strip(_QUOTES).strip()
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\s*,(?:\s*,)+", ",", text)
    return text.strip(" ,;:-").rstrip(".!").strip(_QUOTES).strip(" ,;:-")


def first_line(raw: str) -> str:
    """The first usable line of ``raw`` (see :func:`problem_with`), stripped of labels, bullets, quotes and a final
    period; else its first line with any content ("Sure!"), for the note; "" when none has any."""
    lines = [cleaned for line in _THINK.sub("", raw or "").splitlines() if (cleaned := _strip_line(line))]
    return next((line for line in lines if problem_with(line) is None), lines[0] if lines else "")


def problem_with(text: str) -> str | None:
    """Why a cleaned answer is not a usable prompt (empty, no letters, too short, a refusal, repeated junk,
    mostly symbols), or ``None`` when it is."""
    if not text:
        return "empty"
    words = re.findall(r"[^\W\d_]+", text)
    if not words:
        return "without any letters"
    if len(words) < 2:
        return "too short (one word)"
    if _REFUSAL.search(text):
        return "a refusal or a remark, not a prompt"
    letters = sum(ch.isalpha() for ch in text)
    if letters < 0.6 * len(text.replace(" ", "")):
        return "mostly symbols or digits"
    lowered = [w.lower() for w in words]
    if any(lowered[i] == lowered[i + 1] == lowered[i + 2] for i in range(len(lowered) - 2)):
        return "repeated junk (one word three times in a row)"
    counts = Counter(w for w in lowered if len(w) > 2 and w not in _FILLERS)
    if counts and counts.most_common(1)[0][1] >= max(3, 0.25 * len(lowered)):
        return f"repeated junk ({counts.most_common(1)[0][0]!r} is a quarter of the words or more)"
    pairs = list(zip(lowered, lowered[1:]))
    if len(pairs) >= 7 and len(set(pairs)) < 0.5 * len(pairs):
        return "repeated junk (the same words again and again)"
    parts = [p.strip().lower() for p in text.split(",") if p.strip()]
    if len(parts) >= 4 and len(set(parts)) < 0.6 * len(parts):
        return "repeated junk (the same items again and again)"
    return None


def drop_unasked(text: str, scene: str) -> tuple[str, list[str]]:
    """``text`` without its comma-separated parts that add music or speech the ``scene`` (caption + draft) does
    not mention; returns (text, dropped parts)."""
    scene_words = set(re.findall(r"[a-z]+", scene.lower()))
    banned = {w for kind, words in _UNASKED.items() if not scene_words & set(words) for w in words}
    kept, dropped = [], []
    for part in text.split(","):
        if banned & set(re.findall(r"[a-z]+", part.lower())):
            dropped.append(part.strip())
        elif part.strip():
            kept.append(part.strip())
    return ", ".join(kept), dropped


def clean_answer(raw: str, caption: str, rule_prompt: str,
                 token_limit: int = PROMPT_TOKEN_LIMIT) -> tuple[str, str | None, list[str]]:
    """The model's answer as a prompt: ``(prompt, problem, notes)``.

    ``prompt`` is the first usable line without labels/quotes, without music or speech the scene lacks, shortened
    on a word (preferably comma) boundary to ``token_limit`` estimated T5 tokens; ``problem`` says why it is not
    usable (then ``prompt`` is ""), ``notes`` what the cleaning changed."""
    text = first_line(raw)
    problem = problem_with(text)
    if problem:
        return "", problem, []
    notes = []
    text, dropped = drop_unasked(text, f"{caption} {rule_prompt}")
    if dropped:
        notes.append(f"dropped {', '.join(repr(d) for d in dropped)} (not in the scene)")
        problem = problem_with(text)
        if problem:
            return "", f"{problem} once music or speech the scene lacks was dropped", notes
    short = shorten_to_limit(text, token_limit)
    if short != text:
        notes.append(f"shortened from {estimate_tokens(text)} to {estimate_tokens(short)} tokens")
    return short, None, notes


def _token_reporter(tokenizer, start_len: int, max_new_tokens: int, on_step):
    """A transformers stopping criterion: reports each new token to ``on_step`` (which may raise: Cancel) and
    stops once a whole usable line has been written (the answer needs one line)."""
    import torch
    from transformers import StoppingCriteria

    class Reporter(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            made = max(0, input_ids.shape[-1] - start_len)
            if on_step is not None:
                on_step(min(made, max_new_tokens), max_new_tokens)
            text = tokenizer.decode(input_ids[0, start_len:], skip_special_tokens=True)
            done = any(problem_with(_strip_line(line)) is None for line in _THINK.sub("", text).split("\n")[:-1])
            return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)

    return Reporter()


def generate_answer(model, tokenizer, messages: list[dict], *, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
                    seed: int = SEED, on_step: Callable[[int, int], None] | None = None) -> str:
    """The model's raw answer to ``messages``: greedy decoding under ``torch.manual_seed(seed)`` (the global RNG
    is restored afterwards), at most ``max_new_tokens`` tokens, stopping after the first usable line.

    Args:
        model: a transformers causal LM on the device it should run on.
        tokenizer: its tokenizer.
        messages: the chat (:func:`build_messages`).
        max_new_tokens: the most tokens to generate.
        seed: the torch seed (greedy decoding does not sample; the seed pins anything that would).
        on_step: ``on_step(done, total)`` per generated token (total = ``max_new_tokens``); raising from it stops
            generation (Cancel).

    Returns:
        The decoded new tokens, special tokens removed.
    """
    import torch
    from transformers import GenerationConfig, StoppingCriteriaList

    device = next(model.parameters()).device
    # a chat template writes its own special tokens (BOS...); a plain prompt gets the tokenizer's
    enc = tokenizer(render_chat(tokenizer, messages), return_tensors="pt",
                    add_special_tokens=not getattr(tokenizer, "chat_template", None))
    enc = {k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
    start_len = enc["input_ids"].shape[-1]
    own = model.generation_config
    eos = own.eos_token_id if own.eos_token_id is not None else tokenizer.eos_token_id
    pad = next((p for p in (tokenizer.pad_token_id, own.pad_token_id) if p is not None), None)
    if pad is None:  # e.g. Llama 3: no pad token; the first end-of-sequence id stands in (batch of one)
        pad = eos[0] if isinstance(eos, (list, tuple)) else eos
    config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, num_beams=1, eos_token_id=eos,
                              bos_token_id=own.bos_token_id, pad_token_id=pad,
                              repetition_penalty=own.repetition_penalty or 1.0)
    reporter = _token_reporter(tokenizer, start_len, max_new_tokens, on_step)
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), torch.inference_mode():
        torch.manual_seed(seed)
        out = model.generate(**enc, generation_config=config, stopping_criteria=StoppingCriteriaList([reporter]))
    if on_step is not None:
        on_step(max_new_tokens, max_new_tokens)
    return tokenizer.decode(out[0, start_len:], skip_special_tokens=True)


def rewrite_prompt(model, tokenizer, caption: str, rule_prompt: str, *,
                   max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, model_name: str = "the model",
                   on_step: Callable[[int, int], None] | None = None) -> Rewrite:
    """Ask the instruct model for one ambience prompt; the rule prompt when its answer is not usable.

    Args:
        model, tokenizer: a loaded causal LM and its tokenizer (:func:`models.loading.load` of a prompt LLM).
        caption: what the picture shows (may be empty).
        rule_prompt: Build Ambient Prompt's prompt: the draft, and the fallback.
        max_new_tokens: the most tokens the model may write (8..256).
        model_name: the folder name, for the note.
        on_step: progress and Cancel, as in :func:`generate_answer`.

    Returns:
        A :class:`Rewrite`: the prompt (within :data:`PROMPT_TOKEN_LIMIT` estimated T5 tokens, one line) and a
        note saying whether the model's prompt or the rule prompt is used, and why.

    Raises:
        ValueError: empty ``rule_prompt`` or ``max_new_tokens`` out of range (naming the node and input).
    """
    check_texts(caption, rule_prompt, max_new_tokens)
    raw = generate_answer(model, tokenizer, build_messages(caption, rule_prompt), max_new_tokens=max_new_tokens,
                          on_step=on_step)
    prompt, problem, notes = clean_answer(raw, caption or "", rule_prompt)
    excerpt = " ".join(raw.split())[:80]
    if problem:
        note = (f"Kept the rule prompt: {model_name}'s answer was {problem} "
                f"({excerpt!r}{'...' if len(' '.join(raw.split())) > 80 else ''}).")
        log.warning("%s: %s", NODE, note)
        return Rewrite(prompt=rule_prompt, note=note, used_model=False, raw=raw)
    note = f"Rewritten by {model_name}" + (f"; {'; '.join(notes)}." if notes else ".")
    log.info("%s: %s -> %s", NODE, rule_prompt, prompt)
    return Rewrite(prompt=prompt, note=note, used_model=True, raw=raw)
