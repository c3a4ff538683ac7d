"""Surface-form descriptions of token-level latents, read off their strongest activations.

Many latents of a small SAE fire on a kind of token in a kind of place: a ``-`` or ``*`` that opens a
line (a bulleted list), a number that opens a line (a numbered list), a line break, a URL, a question
mark. Their top-token labels (``'-', '*' (context: following, containing, keys) [python_docs]``) name the
tokens and carry noise from the corpus the examples came from; a sentence embedder cannot tie them to a
phrase like "a bulleted list", and the document-level concept match of :mod:`saescope.ops.describe` cannot
see formatting at all (a sentence embedder barely changes when prose becomes a list).

Each :data:`FORMS` entry is a description and a rule on the marked token of an example (``«token»`` in
:class:`saescope.labels.LatentExample`) and the text to its left. A latent's form is the rule that holds on
the largest share of half its examples; its share of the other half is the label's score (held out), and
the label is kept only when both reach :data:`FORM_MIN_SHARE`, with at least :data:`FORM_MIN_EXAMPLES`
examples. The label keeps the latent's top
tokens beside the description. Deterministic, LLM-free, and computed when a label book is loaded, for any
SAE whose labels carry examples.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from saescope.labels import FORM_MIN_SHARE, FeatureLabel, LabelBook, LatentExample

FORM_MIN_EXAMPLES = 4
"""Fewer examples than this give no form: a share of 3 of 3 says little."""

_MARKED = re.compile(r"(.*?)\u00ab(.*?)\u00bb(.*)", re.S)
_LINE_START = re.compile(r"(?:^|\n)[ \t]*$")
_BULLETS = frozenset({"-", "*", "•", "+", "–", "·", "‣", "▪"})
_QUOTES = frozenset({'"', "'", "“", "”", "‘", "’", "``", "''", "«", "»"})
_CLOSERS = frozenset("\"'”’)]}»?!.,;:")
_OPERATORS = frozenset({"=", "==", "!=", "+=", "-=", "<", ">", "<=", ">=", "/", "%", "+", "**", "->", "=>"})
_CONTEXT = re.compile(r"\(context: ([^)]*)\)")
_URL_PART = re.compile(r"https?|://|www\.?|\.(?:com|org|net|io|html?)\b")


@dataclass(frozen=True)
class Token:
    """One example's marked token, read once: the text to its left and right, the token as written and
    stripped, and whether it opens a line (after any indentation)."""

    left: str
    tok: str
    s: str
    right: str
    line_start: bool

    @property
    def ends_phrase(self) -> bool:
        """Whether what follows ends the phrase (space, line end, quote, bracket or more punctuation): a
        question mark in ``(?P<name>`` or a dot in ``os.path`` does not."""
        return not self.right or self.right[0].isspace() or self.right[0] in _CLOSERS

    @property
    def ends_question_or_exclamation(self) -> bool:
        """Whether a ``?`` or ``!`` ends a sentence: it ends the phrase, or a capital follows (sentences run
        together, as in joined headlines), and it does not open a group as in ``(?P<name>`` or ``{x!r}``."""
        if self.left[-1:] in ("(", "{"):
            return False
        return self.ends_phrase or self.right[:1].isupper()


@dataclass(frozen=True)
class Form:
    """A surface form: its description, its rule on a :class:`Token`, and whether the words around the
    examples belong in the label (punctuation and numbers: many latents share such a form and differ by where
    it occurs; a list marker or a URL is the concept itself)."""

    description: str
    rule: Callable[[Token], bool]
    contextual: bool = False


def _has_digit(s: str) -> bool:
    return any(c.isdigit() for c in s)


FORMS: tuple[Form, ...] = (
    Form("bulleted list item marker", lambda t: t.line_start and t.s in _BULLETS),
    Form("numbered list item", lambda t: t.line_start and re.fullmatch(r"\d{1,3}[.)]?", t.s) is not None),
    Form("'#' at the start of a line (markdown heading or code comment)", lambda t: t.line_start and t.s[:1] == "#"),
    Form("line break", lambda t: "\n" in t.tok),
    Form("indentation", lambda t: "\n" not in t.tok and len(t.tok) >= 2 and t.tok.strip(" \t") == ""),
    Form("sentence-ending period", lambda t: t.s in {".", '."', ".)", "...", "…"} and t.ends_phrase, True),
    Form("dot inside a name or number", lambda t: t.s == "." and not t.ends_phrase, True),
    Form("question mark", lambda t: "?" in t.s and t.ends_question_or_exclamation, True),
    Form("exclamation mark", lambda t: "!" in t.s and t.ends_question_or_exclamation, True),
    Form("comma", lambda t: t.s == ",", True),
    Form("colon or semicolon", lambda t: t.s in {":", ";"}, True),
    Form("quotation mark", lambda t: t.s in _QUOTES, True),
    Form("parenthesis or bracket", lambda t: bool(t.s) and all(c in "()[]{}" for c in t.s), True),
    Form("dash or hyphen within a line", lambda t: not t.line_start and t.s in {"-", "—", "–", "--"}, True),
    Form(
        "number",
        lambda t: not t.line_start and _has_digit(t.s) and re.fullmatch(r"[\d.,%$]+", t.s) is not None,
        True,
    ),
    Form("operator or assignment sign in code", lambda t: not t.line_start and t.s in _OPERATORS, True),
    Form("backtick (inline code or a code fence)", lambda t: "`" in t.s),
    Form("part of a web address (URL)", lambda t: _URL_PART.search(t.s) is not None),
    Form("emoji or pictograph", lambda t: any(c != "\ufffd" and unicodedata.category(c) == "So" for c in t.s)),
    Form("part of a non-ASCII character (emoji, accented or non-Latin letter)", lambda t: "\ufffd" in t.s),
    Form("word in capital letters", lambda t: len(t.s) >= 2 and t.s.isalpha() and t.s.isupper()),
)


def split_example(text: str) -> Token | None:
    """The marked token of an example (the first ``«...»``) and the text around it, or ``None`` when nothing
    is marked."""
    m = _MARKED.match(text)
    if m is None:
        return None
    left, tok, right = m.group(1), m.group(2), m.group(3)
    return Token(left, tok, tok.strip(), right, _LINE_START.search(left) is not None)


def _shares(tokens: Sequence[Token]) -> list[tuple[Form, float]]:
    if not tokens:
        return [(f, 0.0) for f in FORMS]
    return [(f, sum(bool(f.rule(t)) for t in tokens) / len(tokens)) for f in FORMS]


def form_shares(examples: Sequence[LatentExample]) -> list[tuple[Form, float]]:
    """For each form, the share of ``examples`` (with a marked token) whose token it describes."""
    return _shares([t for t in (split_example(e.text) for e in examples) if t is not None])


def describe_form(
    examples: Sequence[LatentExample], top_tokens: Sequence[tuple[str, int]] = (), context: str = ""
) -> FeatureLabel | None:
    """The ``form`` label of a latent from its strongest examples, or ``None`` when it has fewer than
    :data:`FORM_MIN_EXAMPLES` marked examples or no form reaches :data:`FORM_MIN_SHARE`.

    Held out: the form is chosen on every other example (the 1st, 3rd, ...; the first form wins a tie, the
    list running from structure to single characters) and scored on the rest, so the score is not the
    share the choice was made on. The text names the tokens too, and ``context`` (the words around the
    examples, which tell apart latents of one form) when given."""
    marked = [t for t in (split_example(e.text) for e in examples) if t is not None]
    if len(marked) < FORM_MIN_EXAMPLES:
        return None
    fit, held = marked[0::2], marked[1::2]
    form, fit_share = max(_shares(fit), key=lambda fs: fs[1])  # max keeps the first of equals
    share = sum(bool(form.rule(t)) for t in held) / len(held)
    if fit_share < FORM_MIN_SHARE or share < FORM_MIN_SHARE:
        return None
    tokens = ", ".join(repr(t) for t in list(dict.fromkeys(t.strip() or t for t, _ in top_tokens))[:3])
    text = f"{form.description} ({tokens})" if tokens else form.description
    if context and form.contextual:
        text += f" (context: {context})"
    return FeatureLabel(source="form", text=text, score=round(share, 4), model="rules:surface-forms")


def add_forms(book: LabelBook) -> int:
    """Attach a ``form`` label to every latent of ``book`` whose examples show one; returns how many."""
    n = 0
    for i, rec in list(book.latents.items()):
        tokens_label = next((lab.text for lab in rec.labels if lab.source == "top-tokens"), "")
        found = _CONTEXT.search(tokens_label)
        label = describe_form(rec.examples, rec.top_tokens, found.group(1) if found else "")
        if label is not None:
            book.add(i, label)
            n += 1
    return n
