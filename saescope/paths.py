"""Where saescope keeps its data (datasets, embeddings) and caches (converted models)."""

from __future__ import annotations

import os
from pathlib import Path


def data_home() -> Path:
    """The data root: ``$SAESCOPE_HOME`` or ``~/.local/share/saescope``."""
    env = os.environ.get("SAESCOPE_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "saescope"


def cache_home() -> Path:
    """The cache root: ``$SAESCOPE_CACHE`` or ``$XDG_CACHE_HOME/saescope`` (``~/.cache/saescope``)."""
    env = os.environ.get("SAESCOPE_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "saescope"
