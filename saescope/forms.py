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

_MARKED = re.compile(r"(.*)\u00ab(.*?)\u00bb", re.S)
_LINE_START = re.compile(r"(?:^|\n)[ \t]*$")
_BULLETS = frozenset({"-", "*", "•", "+", "–", "·", "‣", "▪"})
_QUOTES = frozenset({'"', "'", "“", "”", "‘", "’", "``", "''", "«", "»"})
_OPERATORS = frozenset({"=", "==", "!=", "+=", "-=", "<", ">", "<=", ">=", "/", "%", "+", "**", "->", "=>"})
_CONTEXT = re.compile(r"\(context: ([^)]*)\)")
_URL_PART = re.compile(r"https?|://|www\.?|\.(?:com|org|net|io|html?)\b")


@dataclass(frozen=True)
class Form:
    """A surface form: its description, the rule on ``(left context, token, stripped token)``, and whether
    the words around the examples belong in the label (punctuation and numbers: many latents share such a
    form and differ by where it occurs; a list marker or a URL is the concept itself)."""

    description: str
    rule: Callable[[str, str, str], bool]
    contextual: bool = False


def _at_line_start(left: str) -> bool:
    return _LINE_START.search(left) is not None


def _has_digit(s: str) -> bool:
    return any(c.isdigit() for c in s)


FORMS: tuple[Form, ...] = (
    Form("bulleted list item marker", lambda left, tok, s: _at_line_start(left) and s in _BULLETS),
    Form(
        "numbered list item",
        lambda left, tok, s: _at_line_start(left) and re.fullmatch(r"\d{1,3}[.)]?", s) is not None,
    ),
    Form("heading marker at the start of a line", lambda left, tok, s: _at_line_start(left) and s.startswith("#")),
    Form("line break", lambda left, tok, s: "\n" in tok),
    Form("indentation", lambda left, tok, s: "\n" not in tok and len(tok) >= 2 and tok.strip(" \t") == ""),
    Form("sentence-ending period", lambda left, tok, s: s in {".", '."', ".)", "...", "…"}, True),
    Form("question mark", lambda left, tok, s: "?" in s, True),
    Form("exclamation mark", lambda left, tok, s: "!" in s, True),
    Form("comma", lambda left, tok, s: s == ",", True),
    Form("colon or semicolon", lambda left, tok, s: s in {":", ";"}, True),
    Form("quotation mark", lambda left, tok, s: s in _QUOTES, True),
    Form("parenthesis or bracket", lambda left, tok, s: bool(s) and all(c in "()[]{}" for c in s), True),
    Form(
        "dash or hyphen within a line",
        lambda left, tok, s: not _at_line_start(left) and s in {"-", "—", "–", "--"},
        True,
    ),
    Form(
        "number",
        lambda left, tok, s: not _at_line_start(left) and _has_digit(s) and re.fullmatch(r"[\d.,%$]+", s) is not None,
        True,
    ),
    Form(
        "operator or assignment sign in code",
        lambda left, tok, s: not _at_line_start(left) and s in _OPERATORS,
        True,
    ),
    Form("backtick (inline code or a code fence)", lambda left, tok, s: "`" in s),
    Form("part of a web address (URL)", lambda left, tok, s: _URL_PART.search(s) is not None),
    Form("emoji or pictograph", lambda left, tok, s: any(c != "\ufffd" and unicodedata.category(c) == "So" for c in s)),
    Form(
        "part of a non-ASCII character (emoji, accented or non-Latin letter)",
        lambda left, tok, s: "\ufffd" in s,
    ),
    Form("word in capital letters", lambda left, tok, s: len(s) >= 2 and s.isalpha() and s.isupper()),
)


def split_example(text: str) -> tuple[str, str] | None:
    """The text left of the marked token and the token itself, or ``None`` when nothing is marked."""
    m = _MARKED.match(text)
    return (m.group(1), m.group(2)) if m else None


def form_shares(examples: Sequence[LatentExample]) -> list[tuple[Form, float]]:
    """For each form, the share of ``examples`` (with a marked token) whose token it describes."""
    pairs = [p for p in (split_example(e.text) for e in examples) if p is not None]
    if not pairs:
        return [(f, 0.0) for f in FORMS]
    return [(f, sum(bool(f.rule(left, tok, tok.strip())) for left, tok in pairs) / len(pairs)) for f in FORMS]


def describe_form(
    examples: Sequence[LatentExample], top_tokens: Sequence[tuple[str, int]] = (), context: str = ""
) -> FeatureLabel | None:
    """The ``form`` label of a latent from its strongest examples, or ``None`` when it has fewer than
    :data:`FORM_MIN_EXAMPLES` marked examples or no form reaches :data:`FORM_MIN_SHARE`.

    Held out: the form is chosen on every other example (the 1st, 3rd, ...; the first form wins a tie, the
    list running from structure to single characters) and scored on the rest, so the score is not the
    share the choice was made on. The text names the tokens too, and ``context`` (the words around the
    examples, which tell apart latents of one form) when given."""
    marked = [e for e in examples if split_example(e.text) is not None]
    if len(marked) < FORM_MIN_EXAMPLES:
        return None
    fit, held = marked[0::2], marked[1::2]
    form, fit_share = max(form_shares(fit), key=lambda fs: fs[1])  # max keeps the first of equals
    share = dict((f.description, s) for f, s in form_shares(held))[form.description]
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
