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


# --- prompt -> response links (evals.prompt_response) ---------------------------------------------------
# What an instruction asks for, and the checkable form of the answer that goes with it. Each link is
# verified on the data before it is scored (the answer property must be more frequent after the request).

_LANGUAGES = (
    r"python|javascript|java|c\+\+|c#|sql|typescript|rust|golang|bash|html|css|php|ruby|matlab|latex|powershell|"
    r"kotlin|swift"
)
_ASKS_CODE = re.compile(
    rf"\b(?:{_LANGUAGES})\b|\b(?:write|create|implement|generate|give|show|fix|debug|complete|modify|rewrite|convert)"
    r"\b[^.?!\n]{0,60}\b(?:code|program|function|class|query|regex|method|snippet)\b",
    re.I,
)
_ASKS_LIST = re.compile(
    r"\b(?:list|steps|step-by-step|step by step|ways to|tips|ideas|brainstorm|suggestions|examples of)\b|"
    r"\b(?:\d+|two|three|four|five|six|seven|eight|nine|ten)\s+(?:\w+\s+){0,2}(?:ways|things|reasons|ideas|tips|"
    r"examples|questions|books|movies|places|items|steps|words|names|songs|games|activities|benefits)\b",
    re.I,
)
_ASKS_POEM = re.compile(
    r"\b(?:poem|poems|poetry|haiku|limerick|sonnet|lyrics|rhymes?|rhyming|ballad)\b|"
    r"\b(?:write|compose|create|make)\b[^.?!]*\bsong\b",
    re.I,
)
_OTHER_LANGUAGES = (
    r"french|spanish|german|italian|chinese|mandarin|japanese|korean|portuguese|russian|arabic|hindi|dutch|swedish|"
    r"greek|turkish|polish|hebrew"
)
_ASKS_TRANSLATION = re.compile(
    rf"\btranslat\w*\b[^.?!\n]{{0,60}}\b(?:to|into|in)\s+(?:{_OTHER_LANGUAGES})\b|"
    rf"\bhow (?:do|would) (?:you|i) say\b[^?]*\bin (?:{_OTHER_LANGUAGES})\b",
    re.I,
)
_LIST_LINE = re.compile(r"^\s*(?:[-*•+]|\d{1,2}[.)])\s+")
_WORD = re.compile(r"[^\W\d_]+")
_ENGLISH = frozenset(
    [
        "the",
        "a",
        "an",
        "and",
        "or",
        "of",
        "to",
        "in",
        "is",
        "are",
        "was",
        "were",
        "be",
        "it",
        "that",
        "this",
        "for",
        "on",
        "with",
        "as",
        "at",
        "by",
        "from",
        "you",
        "your",
        "i",
        "we",
        "they",
        "he",
        "she",
        "not",
        "but",
        "have",
        "has",
        "my",
        "me",
    ]
)
_ROMANCE_GERMANIC = frozenset(
    [
        "le",
        "la",
        "les",
        "des",
        "et",
        "est",
        "une",
        "du",
        "je",
        "vous",
        "nous",
        "el",
        "los",
        "las",
        "y",
        "es",
        "una",
        "que",
        "en",
        "der",
        "die",
        "das",
        "und",
        "ist",
        "ein",
        "eine",
        "ich",
        "il",
        "di",
        "che",
        "non",
        "per",
        "sie",
        "wir",
        "ist",
        "o",
        "os",
        "um",
        "uma",
        "não",
    ]
)


def asks_for_code(instruction: str) -> bool:
    """The instruction names a programming language, or asks to write/fix/... code, a program, function, ..."""
    return bool(_ASKS_CODE.search(instruction))


def asks_for_list(instruction: str) -> bool:
    """The instruction asks for a list, steps, tips, ideas, or a number of things ("five reasons")."""
    return bool(_ASKS_LIST.search(instruction))


def asks_for_poem(instruction: str) -> bool:
    """The instruction asks for a poem, haiku, lyrics, rhymes, or to write a song."""
    return bool(_ASKS_POEM.search(instruction))


def asks_for_translation(instruction: str) -> bool:
    """The instruction asks to translate into (or how to say something in) another named language."""
    return bool(_ASKS_TRANSLATION.search(instruction))


def has_list(text: str) -> bool:
    """A bulleted or a numbered list."""
    return has_bullet_list(text) or has_numbered_list(text)


def has_verse(text: str) -> bool:
    """At least four consecutive short lines (<= 70 characters, not list items or headers) outside code: the
    line breaks of a poem or song."""
    run = 0
    for line in prose(text).split("\n"):
        line = line.strip()
        if not line:
            continue
        if len(line) <= 70 and not _LIST_LINE.match(line) and not line.startswith("#"):
            run += 1
            if run >= 4:
                return True
        else:
            run = 0
    return False


def has_non_english(text: str) -> bool:
    """A sentence of at least three words with no common English word, written in a non-Latin script or with
    at least two French/Spanish/German/Italian/Portuguese function words."""
    for sentence in re.split(r"[\n.!?:;]+", prose(text)):
        words = _WORD.findall(sentence)
        if len(words) < 3 or any(w.lower() in _ENGLISH for w in words):
            continue
        if any(c.isalpha() and ord(c) > 0x24F for c in sentence):
            return True
        if sum(w.lower() in _ROMANCE_GERMANIC for w in words) >= 2:
            return True
    return False


@dataclass(frozen=True)
class Link:
    """A request in an instruction and the checkable form of the answer that fulfils it."""

    name: str
    asks: str
    answers: str
    instruction_rule: Callable[[str], bool]
    answer_rule: Callable[[str], bool]


LINKS: tuple[Link, ...] = (
    Link("code", "asks for code", "answers with a fenced code block", asks_for_code, has_code_block),
    Link("list", "asks for a list or steps", "answers with a bulleted or numbered list", asks_for_list, has_list),
    Link("poem", "asks for a poem or song", "answers in short lines (verse)", asks_for_poem, has_verse),
    Link(
        "translation",
        "asks for a translation",
        "answers with a non-English sentence",
        asks_for_translation,
        has_non_english,
    ),
)
