"""Caption cleaning: turn a BLIP caption into plain lower-case scene words, and the word helpers the prompt builder
shares (normalised tokens, phrase containment). Pure Python, standard library only, deterministic."""

from __future__ import annotations

import re
import unicodedata

_COLOURS = (
    "red", "blue", "green", "yellow", "orange", "purple", "pink", "brown", "black", "white",
    "gray", "grey", "golden", "gold", "silver", "beige", "teal", "turquoise", "cyan", "magenta",
    "maroon", "navy", "crimson", "scarlet", "azure", "violet", "indigo", "tan", "bronze",
)
_SHADE = r"(?:light|dark|bright|pale|deep|pastel|neon|vivid|pure)"
_COLOUR_WORD = r"(?:" + "|".join(_COLOURS) + r")(?:ish)?"
_COLOUR_TERM = rf"(?:{_SHADE}\s+)?{_COLOUR_WORD}(?:\s+colou?red)?"
_COLOUR_RE = re.compile(rf"\b{_COLOUR_TERM}(?:(?:\s*,\s*|\s+and\s+|\s+or\s+|\s+){_COLOUR_TERM})*\b")

_ARTEFACT_RE = re.compile(r"\bar+af+e?(?:d|s)?\b|\barafed\b")
_LEADIN_RE = re.compile(
    r"\b(?:there\s+(?:is|are)|this\s+is|these\s+are|it\s+is|we\s+can\s+see|you\s+can\s+see|"
    r"(?:this|the)\s+(?:image|picture|photo)\s+(?:shows|depicts|contains))\b"
)
_FRAME_RE = re.compile(
    r"\b(?:(?:a|an|the)\s+)?"
    r"(?:(?:blurry|blurred|close\s+up|closeup|old|vintage|black\s+and\s+white|aerial|underwater|wide|wide\s+angle|"
    r"panoramic|beautiful|nice|great|stock|digital|high\s+quality|hd|\d+k|long\s+exposure|cropped)\s+)*"
    r"(?:picture|photo|photograph|photography|image|painting|drawing|illustration|view|sketch|rendering|"
    r"render|shot|screenshot|close\s+up|closeup|scene|postcard|poster|artwork|wallpaper|snapshot)s?"
    r"\s+(?:of|from|showing|depicting|with)\b"
)
_VISUAL_RE = re.compile(
    r"\b(?:in\s+the\s+(?:background|foreground|distance\s+background)|with\s+a\s+blurry\s+background|"
    r"background|foreground|photo|photograph|photography|picture|image|painting|drawing|illustration|"
    r"sketch|cartoon|rendering|render|screenshot|wallpaper|stock|closeup|close\s+up|blurry|blurred|"
    r"colorful|colourful|multicolou?red|multi\s+colou?red|beautiful|pretty|picturesque|scenic|"
    r"vibrant|shiny|hd|4k|8k|3d)\b"
)
_DUP_RE = re.compile(r"\b(\w+(?:\s+\w+){0,3})(?:\s+\1\b)+")
_EDGE_WORDS = frozenset("a an the and or with of in on at to for by from".split())
LEADING_DROP = frozenset("and or with of in on at to for by from".split())


def _strip_control(text: str) -> str:
    """Map tabs/newlines to spaces and delete every other control/format character."""
    out = []
    for ch in text:
        if ch in "\t\n\r\v\f":
            out.append(" ")
        elif unicodedata.category(ch)[0] == "C":
            continue
        else:
            out.append(ch)
    return "".join(out)


_GAP = "\x00"  # marks where words were removed (control chars are stripped before)
_GAP_ARTICLE_RE = re.compile(r"\b(an?)((?:\s*\x00)+)\s*([a-z0-9]\w*)")


def _fix_articles(text: str) -> str:
    """Repair "a"/"an" in front of a word that became adjacent through a removal."""

    def repl(m: re.Match[str]) -> str:
        word = m.group(3)
        if word[0] == "u" or word[0].isdigit() or word.startswith(("one", "once", "eu")):
            return f"{m.group(1)} {word}"
        vowel = word[0] in "aeio" or word.startswith(("hour", "honest", "heir", "honor", "honour"))
        return ("an " if vowel else "a ") + word

    return _GAP_ARTICLE_RE.sub(repl, text)


def tidy_edges(text: str, leading: frozenset[str] = LEADING_DROP) -> str:
    """Drop connector words and commas from both ends of ``text`` (``leading`` ones at the start)."""
    words = text.replace(",", " , ").split()
    while words and (words[0] in leading or words[0] == ","):
        words.pop(0)
    while words and (words[-1] in _EDGE_WORDS or words[-1] == ","):
        words.pop()
    return " ".join(words).replace(" , ", ", ")


def clean_caption_report(caption: object) -> tuple[str, list[str]]:
    """Clean a caption (as :func:`clean_caption`) and report the removed words, in order."""
    if caption is None:
        return "", []
    text = _strip_control(str(caption))
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.lower().replace("'", "").replace("\u2019", "")
    # keep plain latin letters, digits and commas; everything else (emoji, other scripts) -> space
    text = re.sub(r"[^a-z0-9,]+", " ", text)
    text = re.sub(r"\s*,[\s,]*", ", ", text)
    text = " ".join(text.split())
    dropped: list[str] = []

    def drop(rx: re.Pattern[str], s: str) -> str:
        def rm(m: re.Match[str]) -> str:
            dropped.append(" ".join(m.group(0).split()))
            return f" {_GAP} "

        return rx.sub(rm, s)

    for rx in (_ARTEFACT_RE, _LEADIN_RE, _FRAME_RE, _COLOUR_RE, _VISUAL_RE):
        text = drop(rx, text)
    text = _fix_articles(text)
    text = " ".join(text.replace(_GAP, " ").split())
    text = _DUP_RE.sub(r"\1", text)
    text = re.sub(r"\s+,", ",", text)
    text = re.sub(r",(?:\s*,)+", ",", text)
    text = re.sub(r"\b(?:and|with|or)\s+(?=,|$)", "", text)
    text = tidy_edges(text)
    return text, dropped


def clean_caption(caption: str) -> str:
    """Normalise a BLIP caption and strip purely visual words.

    Lower-cases, removes control characters, non-Latin characters and emoji, BLIP
    artefacts ("arafed", "araffe"), lead-ins ("there is", "a picture of",
    "a photography of", "a close up of", "a view of"), colours, camera words and
    "in the background", then collapses whitespace.

    Args:
        caption: Raw caption text (``None`` is treated as empty).

    Returns:
        The cleaned caption; may be empty.
    """
    return clean_caption_report(caption)[0]


def clean_extra(extra: object) -> str:
    """The user's extra detail text with control characters removed and commas and whitespace tidied."""
    if extra is None:
        return ""
    text = _strip_control(str(extra))
    text = " ".join(text.split())
    text = re.sub(r"\s*,[\s,]*", ", ", text)
    return text.strip(" ,")


def norm_tokens(text: str) -> list[str]:
    """Lower-case word tokens with a plural "s" dropped from words longer than three letters."""
    toks = re.findall(r"[a-z0-9]+", text.lower())
    return [t[:-1] if len(t) > 3 and t.endswith("s") else t for t in toks]


def contains_phrase(hay: list[str], needle: list[str]) -> bool:
    """Whether the token list ``needle`` appears in ``hay`` as a contiguous run."""
    n = len(needle)
    return n > 0 and any(hay[i : i + n] == needle for i in range(len(hay) - n + 1))

