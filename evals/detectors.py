"""Rule-based detectors of checkable properties of a chat model's response: the ground truth of the
real-response evals (:mod:`evals.real_responses`), set by rules and never by the method under test.

Each detector is a plain function of the response text. Format detectors (headers, bold, lists,
questions) look only outside fenced code blocks, so a ``# comment`` or ``a ** b`` in code is not
markdown. Run on the AlpacaEval outputs in ``../shared/data/alpaca_eval/`` they reproduce the table of
that folder's README to within about 0.01 (``tests/evals/test_detectors.py`` checks it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

SHORT_MAX_CHARS = 400
"""A response shorter than this many characters is ``short``."""
LONG_MIN_CHARS = 1200
"""A response of at least this many characters is ``long``."""

_FENCE = re.compile(r"```.*?(?:```|\Z)", re.S)
_HEADER = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+\S", re.M)
_BOLD = re.compile(r"\*\*(?=\S)[^*\n]+?(?<=\S)\*\*")
_BULLET = re.compile(r"^[ \t]*[-*•+][ \t]+\S", re.M)
_NUMBERED = re.compile(r"^[ \t]*\d{1,2}[.)][ \t]+\S", re.M)
_OPENER = re.compile(r"^\W{0,3}(certainly|sure|of course|absolutely)\b", re.I)
_OFFER = re.compile(
    r"let me know|feel free|hope (?:this|that|it) helps|don'?t hesitate|happy to help|"
    r"if you have any (?:other|more|further)",
    re.I,
)
_APOLOGY = re.compile(
    r"\b(?:I'?m sorry|I am sorry|I apologi[sz]e|(?:my )?apologies|sorry,? but|I'?m afraid I (?:can(?:no|')t|don'?t))\b",
    re.I,
)
_AS_AN_AI = re.compile(
    r"\b(?:as an? (?:AI|artificial intelligence|(?:large )?language model)\b|"
    r"I(?:'m| am) (?:just |only |merely )?an? (?:AI|artificial intelligence|(?:large )?language model)\b)",
    re.I,
)
_SENTENCE_END = re.compile(r"(?<=[.!?])[\s\"')*_]+")
_YOU = re.compile(r"\byour?\b", re.I)
_CONCLUSION = re.compile(
    r"^[ \t]*(?:#+[ \t]*)?(?:\*\*)?(?:in conclusion|in summary|to summari[sz]e|to sum up|overall,)", re.I | re.M
)


def prose(text: str) -> str:
    """``text`` without its fenced code blocks (an unclosed fence runs to the end)."""
    return _FENCE.sub("\n", text)


def has_header(text: str) -> bool:
    """A markdown header line (``#`` to ``######`` then text) outside code."""
    return bool(_HEADER.search(prose(text)))


def has_bold(text: str) -> bool:
    """``**bold**`` outside code (``__bold__`` is left out: in answers it is mostly Python's ``__init__``)."""
    return bool(_BOLD.search(prose(text)))


def has_bullet_list(text: str) -> bool:
    """At least two lines starting with ``-``, ``*``, ``+`` or ``•`` (any indent) outside code."""
    return len(_BULLET.findall(prose(text))) >= 2


def has_numbered_list(text: str) -> bool:
    """At least two lines starting with ``1.`` / ``2)``-style numbers outside code."""
    return len(_NUMBERED.findall(prose(text))) >= 2


def opens_with_certainly(text: str) -> bool:
    """The response opens with "Certainly", "Sure", "Of course" or "Absolutely"."""
    return bool(_OPENER.search(text.lstrip()))


def offers_more_help(text: str) -> bool:
    """An offer of further help: "let me know", "feel free", "hope this helps", "don't hesitate"..."""
    return bool(_OFFER.search(text))


def apologises(text: str) -> bool:
    """ "I'm sorry", "I apologise", "apologies", "sorry, but"..."""
    return bool(_APOLOGY.search(text))


def as_an_ai(text: str) -> bool:
    """An "as an AI (language model)" or "I am an AI" disclaimer."""
    return bool(_AS_AN_AI.search(text))


def has_code_block(text: str) -> bool:
    """A fenced code block (three backticks)."""
    return "```" in text


def asks_user(text: str) -> bool:
    """A question addressed to the reader: a sentence with "you"/"your" that ends in "?", outside code and
    not a header line (so "### What do you need?" as a section title does not count)."""
    for line in prose(text).split("\n"):
        if _HEADER.match(line):
            continue
        for sentence in _SENTENCE_END.split(line):
            if sentence.rstrip(" \t\"')*_").endswith("?") and _YOU.search(sentence):
                return True
    return False


def is_short(text: str) -> bool:
    """Fewer than :data:`SHORT_MAX_CHARS` characters (stripped)."""
    return len(text.strip()) < SHORT_MAX_CHARS


def is_long(text: str) -> bool:
    """At least :data:`LONG_MIN_CHARS` characters (stripped)."""
    return len(text.strip()) >= LONG_MIN_CHARS


def has_conclusion(text: str) -> bool:
    """A paragraph opening "In conclusion", "In summary", "To summarize", "To sum up" or "Overall,"."""
    return bool(_CONCLUSION.search(prose(text)))


@dataclass(frozen=True)
class Detector:
    """A checkable property of a response: its rule, and how a person would ask for it in words."""

    name: str
    description: str
    query: str
    """The property as a retrieval query (what a user would type)."""
    rule: Callable[[str], bool]


DETECTORS: tuple[Detector, ...] = (
    Detector("header", "uses markdown headers", "uses markdown section headers", has_header),
    Detector("bold", "uses **bold** text", "uses bold text for emphasis", has_bold),
    Detector("bullets", "has a bulleted list", "a bulleted list", has_bullet_list),
    Detector("numbered", "has a numbered list", "a numbered list of steps or items", has_numbered_list),
    Detector(
        "certainly",
        "opens with 'Certainly', 'Sure' or 'Of course'",
        "opens with 'Certainly!' or 'Sure!'",
        opens_with_certainly,
    ),
    Detector("offer_help", "offers further help at the end", "offers further help at the end", offers_more_help),
    Detector("apology", "apologises", "an apology", apologises),
    Detector("as_an_ai", "says 'as an AI (language model)'", "says it is an AI language model", as_an_ai),
    Detector("code_block", "contains a fenced code block", "contains a block of programming code", has_code_block),
    Detector("asks_user", "asks the user a question", "asks the user a question", asks_user),
    Detector("short", f"is short (< {SHORT_MAX_CHARS} characters)", "a very short, brief answer", is_short),
    Detector("long", f"is long (>= {LONG_MIN_CHARS} characters)", "a long, detailed answer", is_long),
    Detector(
        "conclusion",
        "has a conclusion paragraph ('In conclusion', 'Overall,')",
        "ends with a conclusion paragraph",
        has_conclusion,
    ),
)
NAMES: tuple[str, ...] = tuple(d.name for d in DETECTORS)
BY_NAME: dict[str, Detector] = {d.name: d for d in DETECTORS}


def detect(text: str) -> dict[str, bool]:
    """Every detector on one response."""
    return {d.name: bool(d.rule(text)) for d in DETECTORS}


def detect_all(texts: Sequence[str]) -> npt.NDArray[np.bool_]:
    """An (n_texts, n_detectors) boolean matrix, columns in :data:`NAMES` order."""
    out = np.zeros((len(texts), len(DETECTORS)), dtype=bool)
    for i, text in enumerate(texts):
        for j, d in enumerate(DETECTORS):
            out[i, j] = d.rule(text)
    return out
