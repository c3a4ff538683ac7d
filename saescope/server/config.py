"""How a server is set up: data root, what it may read, limits, default SAE, LLM."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from saescope.llm.providers import LLMSettings
from saescope.ops.files import IngestLimits


@dataclass
class ServerConfig:
    """Settings of one ``saescope serve`` process."""

    home: Path | None = None
    """Data root (default: ``$SAESCOPE_HOME`` or ``~/.local/share/saescope``)."""
    roots: list[Path] = field(default_factory=lambda: [Path.cwd()])
    """Folders whose files ``ingest_documents`` may read (resolved; symlinks may not lead out of them)."""
    max_bytes: int = 200_000_000
    """Largest input, in bytes: a file (or a folder's .txt files together), or inline documents."""
    max_documents: int = 200_000
    """Most documents one ingest may store."""
    sae: str = "default"
    """SAE used by ``embed_dataset`` when the call names none: default, a folder, or RELEASE:SAE_ID."""
    device: str | None = None
    llm: LLMSettings = field(default_factory=LLMSettings)
    llm_prices: Path | None = None
    """Price table (JSON) for the cost ledger; default: ``$SAESCOPE_LLM_PRICES`` or the shipped ``prices.json``."""
    text_limit: int = 8000
    """Most characters of text one tool result returns (the structured result is paged instead)."""
    ray: str | None = None
    """Ray address on which ``embed_dataset`` jobs run (None: in the server's process). Only the operator
    chooses it: a request's Ray fields are operator-only, so an agent cannot send work to another cluster."""

    def __post_init__(self) -> None:
        self.roots = [Path(r).expanduser().resolve() for r in self.roots]

    @property
    def ingest_limits(self) -> IngestLimits:
        """What an agent's ingest may read and store."""
        return IngestLimits(roots=self.roots, max_bytes=self.max_bytes, max_documents=self.max_documents)
