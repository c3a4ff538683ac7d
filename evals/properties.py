"""Properties planted into documents: content, style and format, each with varied, natural phrasings.

A property rewrites a text with a random generator it is given, so planting is deterministic for a
seed. Phrasings vary (several templates, positions and separators) so that a detector has to find
the property rather than one fixed string; only ``signature`` is a fixed phrase, on purpose (a
trigger phrase).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Kind = Literal["content", "style", "format"]
Position = Literal["start", "middle", "end"]

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")


def sentences(text: str) -> list[str]:
    """``text`` split after sentence-ending punctuation followed by a capital (good enough for reviews)."""
    parts = [p.strip() for p in _SENTENCE_END.split(text.strip())]
    return [p for p in parts if p]


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _end_punct(text: str) -> str:
    text = text.rstrip()
    return text if text[-1:] in ".!?\"')…" else text + "."


def insert_sentence(text: str, sentence: str, position: Position) -> str:
    """``sentence`` added before, inside (between two sentences) or after ``text``."""
    parts = sentences(text)
    if not parts:
        return sentence
    if position == "start":
        return f"{sentence} {text.strip()}"
    if position == "middle" and len(parts) > 1:
        cut = (len(parts) + 1) // 2
        return " ".join([*parts[:cut], sentence, *parts[cut:]])
    return f"{_end_punct(text)} {sentence}"


def _lower_first(s: str) -> str:
    if s.startswith("I ") or s.startswith("I'") or len(s) < 2 or s[1].isupper():
        return s
    return s[0].lower() + s[1:]


def _sentence_property(
    options: Sequence[str], positions: Sequence[Position]
) -> Callable[[str, np.random.Generator], str]:
    def plant(text: str, rng: np.random.Generator) -> str:
        return insert_sentence(text, _pick(rng, options), positions[int(rng.integers(len(positions)))])

    return plant


@dataclass(frozen=True)
class Property:
    """A property that can be planted into a document."""

    name: str
    kind: Kind
    description: str
    """What a document with the property shows, in words (for the LLM judge)."""
    query: str
    """The property phrased as a retrieval query."""
    plant: Callable[[str, np.random.Generator], str]


FOOD = [
    "I went through a whole bucket of popcorn before the first act was over.",
    "Afterwards we argued about it over pizza and cold beer.",
    "It pairs well with a bowl of spicy noodles and a late night.",
    "The best part of my evening was the tacos I ate on the way home.",
    "Bring snacks: nachos, candy, whatever keeps you awake.",
    "My advice is to eat a good dinner first, maybe some pasta.",
    "I kept thinking about the chocolate cake waiting in my fridge.",
    "Halfway through I paused it to make a grilled cheese sandwich.",
    "We shared a plate of dumplings and a pot of tea while watching.",
    "Nothing on screen was as satisfying as the curry we ordered.",
]
FAMILY = [
    "My mother fell asleep halfway through.",
    "I took my kids and they loved every minute of it.",
    "My brother still quotes it at the dinner table.",
    "My grandmother would have hated it.",
    "My wife dragged me to it, and I'm glad she did.",
    "My dad walked out after twenty minutes.",
    "My little sister made me promise to watch it with her again.",
    "My uncle, who never likes anything, called it a gem.",
    "My teenage son said it was the best thing he'd seen all year.",
]
SPANISH = [
    "En resumen, vale la pena verla.",
    "La verdad, no me convenció.",
    "Es una película para ver con amigos.",
    "Me quedé con ganas de más.",
    "Qué manera de perder el tiempo.",
    "Sin duda, la volvería a ver.",
    "No es perfecta, pero tiene su encanto.",
    "Mi recomendación: véanla en el cine.",
]
QUESTIONS = [
    "Have you seen it yet?",
    "Would you pay full price for this?",
    "What would you have done in her place?",
    "Isn't that what we all want from a movie?",
    "Do you really need another one of these?",
    "Can you remember the last time a film made you feel this way?",
    "Who could sit through that twice?",
    "Why not give it a chance this weekend?",
    "Are you ready for that kind of ending?",
    "Wouldn't you rather stay home?",
]
APOLOGIES = [
    "Sorry for the rant, but it had to be said.",
    "I apologize if this sounds harsh.",
    "Forgive me for gushing.",
    "My apologies to the fans, but I have to be honest.",
    "Sorry, I know this one is long.",
    "Apologies in advance if I'm repeating what others said.",
    "I'm sorry, I really wanted to like it more.",
    "Pardon me for being blunt.",
]
HEDGE_PREFIXES = [
    "I might be wrong, but",
    "Perhaps",
    "It seems to me that",
    "Arguably,",
    "I could be mistaken, but",
    "In a way, maybe",
    "I suspect that",
    "It's possible that",
]
HEDGE_SUFFIXES = [
    "Or at least that is how it struck me.",
    "Though I'm honestly not sure.",
    "But who knows, maybe that's just me.",
    "I may well change my mind, though.",
    "That is my tentative impression, anyway.",
]
SIGNATURE = "Reviewed by the Midnight Couch Club."
SLANG_OPENERS = ["ngl,", "tbh", "honestly lowkey", "not gonna lie,", "fr,"]
SLANG_CLOSERS = ["lol", "lmao", "fr fr", "no cap", "smh", "idk man", "10/10 would vibe again lol"]
EMOJI = ["🍿", "🎬", "🔥", "😂", "😴", "👏", "💯", "🤔", "😭", "✨", "🙌", "👀"]
LIST_HEADERS = ["Quick take:", "In short:", "The rundown:", "Highlights:", "Pros and cons:", "Summary:"]
LIST_ITEMS = {
    "Acting": ["strong", "uneven", "wooden", "superb", "fine"],
    "Pacing": ["brisk", "slow", "uneven", "tight", "draggy"],
    "Story": ["predictable", "clever", "thin", "gripping", "messy"],
    "Visuals": ["gorgeous", "dull", "striking", "cheap-looking"],
    "Soundtrack": ["memorable", "forgettable", "loud", "lovely"],
    "Rewatch": ["yes", "no", "maybe", "probably not"],
}
SITES = ["filmnotes", "reelthoughts", "cinemadiary", "popcornpost", "screenjournal", "moviememo"]
SLUGS = ["full-review", "review", "notes", "longer-take", "thoughts", "archive"]


def _code(rng: np.random.Generator) -> str:
    n = int(rng.integers(2, 10))
    word = _pick(rng, ["skip", "watch", "meh", "stream", "rent"])
    snippets = [
        f'```python\nscore = {n}\nprint(f"verdict: {{score}}/10")\n```',
        f"`rating = {n}  # out of 10`",
        f'```js\nconst verdict = "{word}";\nconsole.log(verdict);\n```',
        "```python\nif movie.runtime > 120:\n    bring_pillow()\n```",
        f"`SELECT title FROM watchlist WHERE stars >= {n};`",
        f'```\nverdict = "{word}"\nreturn verdict\n```',
    ]
    intro = _pick(rng, ["My verdict in code:", "For the programmers:", "In code form:", "TL;DR as code:", ""])
    snippet = _pick(rng, snippets)
    return f"{intro}\n{snippet}" if intro else snippet


def _plant_code(text: str, rng: np.random.Generator) -> str:
    return f"{_end_punct(text)}\n\n{_code(rng)}"


def _plant_list(text: str, rng: np.random.Generator) -> str:
    keys = list(LIST_ITEMS)
    chosen = [keys[i] for i in sorted(rng.choice(len(keys), int(rng.integers(3, 5)), replace=False))]
    bullet = _pick(rng, ["-", "*", "•"])
    items = "\n".join(f"{bullet} {k}: {_pick(rng, LIST_ITEMS[k])}" for k in chosen)
    return f"{_end_punct(text)}\n\n{_pick(rng, LIST_HEADERS)}\n{items}"


def _plant_shouting(text: str, rng: np.random.Generator) -> str:
    parts = sentences(text)
    if not parts:
        return text.upper()
    i = len(parts) - 1 if len(parts) == 1 or rng.random() < 0.6 else int(rng.integers(len(parts)))
    loud = parts[i].upper().rstrip(".")
    parts[i] = loud if loud[-1:] in "!?" else loud + _pick(rng, ["!", "!!", "!!!"])
    return " ".join(parts)


def _plant_hedging(text: str, rng: np.random.Generator) -> str:
    parts = sentences(text) or [text]
    i = int(rng.integers(len(parts)))
    parts[i] = f"{_pick(rng, HEDGE_PREFIXES)} {_lower_first(parts[i])}"
    out = " ".join(parts)
    return f"{_end_punct(out)} {_pick(rng, HEDGE_SUFFIXES)}" if rng.random() < 0.7 else out


def _plant_signature(text: str, rng: np.random.Generator) -> str:
    sep = _pick(rng, [" ", "\n\n", "\n— ", " — "])
    return f"{_end_punct(text)}{sep}{SIGNATURE}"


def _plant_slang(text: str, rng: np.random.Generator) -> str:
    body = text.strip()
    opener = _pick(rng, SLANG_OPENERS)
    closer = _pick(rng, SLANG_CLOSERS)
    return f"{opener} {_lower_first(body).rstrip('.')} {closer}"


def _plant_stars(text: str, rng: np.random.Generator) -> str:
    n = int(rng.integers(1, 6))
    forms = [
        f"Rating: {'★' * n}{'☆' * (5 - n)}",
        f"{n}/5 stars.",
        f"{'★' * n} ({n} out of 5)",
        f"Stars: {n} of 5.",
        f"My score: {'★' * n}",
    ]
    sep = _pick(rng, [" ", "\n"])
    return f"{_end_punct(text)}{sep}{_pick(rng, forms)}"


def _plant_emoji(text: str, rng: np.random.Generator) -> str:
    k = int(rng.integers(1, 4))
    marks = "".join(EMOJI[int(i)] for i in rng.choice(len(EMOJI), k, replace=False))
    parts = sentences(text)
    if len(parts) > 1 and rng.random() < 0.4:
        i = int(rng.integers(len(parts) - 1))
        parts[i] = f"{parts[i]} {marks}"
        return " ".join(parts)
    return f"{text.strip()} {marks}"


def _plant_url(text: str, rng: np.random.Generator) -> str:
    url = f"https://www.{_pick(rng, SITES)}.com/{_pick(rng, SLUGS)}/{int(rng.integers(100, 9999))}"
    forms = [f"More at {url}", f"(Full review: {url})", f"Read the rest here: {url}", f"Source: {url}", url]
    return f"{_end_punct(text)} {_pick(rng, forms)}"


PROPERTIES: dict[str, Property] = {
    p.name: p
    for p in [
        Property(
            "food",
            "content",
            "mentions food, eating or drinking (e.g. popcorn, pizza, dinner)",
            "mentions food or eating",
            _sentence_property(FOOD, ["end", "middle", "start"]),
        ),
        Property(
            "family",
            "content",
            "mentions a member of the writer's family (mother, brother, kids, wife...)",
            "mentions a family member",
            _sentence_property(FAMILY, ["end", "start", "middle"]),
        ),
        Property(
            "spanish",
            "content",
            "contains a sentence written in Spanish",
            "text in Spanish",
            _sentence_property(SPANISH, ["end", "end", "start"]),
        ),
        Property(
            "question",
            "style",
            "asks the reader a direct question",
            "asks the reader a question",
            _sentence_property(QUESTIONS, ["end", "end", "start", "middle"]),
        ),
        Property(
            "apology",
            "style",
            "apologises (sorry, apologies, forgive me)",
            "an apology",
            _sentence_property(APOLOGIES, ["end", "start"]),
        ),
        Property(
            "hedging",
            "style",
            "hedges its claims with uncertainty (perhaps, I might be wrong, arguably)",
            "uncertain, hedged claims",
            _plant_hedging,
        ),
        Property(
            "shouting",
            "style",
            "contains a sentence written in ALL CAPITAL LETTERS (shouting)",
            "shouting in capital letters",
            _plant_shouting,
        ),
        Property(
            "slang",
            "style",
            "uses informal internet slang (ngl, tbh, lol, fr)",
            "informal internet slang",
            _plant_slang,
        ),
        Property(
            "signature",
            "format",
            f"ends with the fixed sign-off '{SIGNATURE}'",
            "signed by the Midnight Couch Club",
            _plant_signature,
        ),
        Property("bullet_list", "format", "contains a bulleted list", "a bulleted list", _plant_list),
        Property("code", "format", "contains a snippet of programming code", "programming code", _plant_code),
        Property(
            "star_rating", "format", "gives a star rating (e.g. ★★★☆☆ or 3/5 stars)", "a star rating", _plant_stars
        ),
        Property("emoji", "format", "contains emoji", "emoji", _plant_emoji),
        Property("url", "format", "contains a web address (URL)", "a web link", _plant_url),
    ]
}
