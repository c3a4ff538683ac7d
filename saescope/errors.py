"""Exceptions that carry an actionable message for the person or agent who made the call."""

from __future__ import annotations


class SaescopeError(Exception):
    """Base class: the message says what was wrong and what to do instead."""


class InputError(SaescopeError):
    """The caller's input (a file, a document, an argument) is unusable as given."""


class NotFoundError(SaescopeError):
    """A named thing (dataset, embedding, latent, document) does not exist."""


class MissingAssetError(SaescopeError):
    """A model or SAE needed for the operation is not installed or cannot be reached."""
