"""Exceptions that carry an actionable message for the person or agent who made the call."""

from __future__ import annotations

MAX_MESSAGE = 8000
"""Longest message an error carries; a longer one (a huge input echoed back) is cut in the middle."""


class SaescopeError(Exception):
    """Base class: the message says what was wrong and what to do instead (at most :data:`MAX_MESSAGE`
    characters: the start, which says what was wrong, and the end, which says what to do, are kept)."""

    def __init__(self, *args: object) -> None:
        if len(args) == 1 and isinstance(args[0], str) and len(args[0]) > MAX_MESSAGE:
            text = args[0]
            half = MAX_MESSAGE // 2 - 50
            args = (f"{text[:half]} … [{len(text) - 2 * half:,} characters cut] … {text[-half:]}",)
        super().__init__(*args)


class InputError(SaescopeError):
    """The caller's input (a file, a document, an argument) is unusable as given."""


class NotFoundError(SaescopeError):
    """A named thing (dataset, embedding, latent, document) does not exist."""


class MissingAssetError(SaescopeError):
    """A model or SAE needed for the operation is not installed or cannot be reached."""


def clip(text: str, limit: int = 200) -> str:
    """``text`` cut to ``limit`` characters for an error message, so that a huge input is not echoed back."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"
