"""Embedding jobs as clients see them: state, progress and outcome (the server's JobManager runs them)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

JobState = Literal["queued", "running", "done", "failed"]


class EmbedJob(BaseModel):
    """An embedding job and how far it has got."""

    job_id: str
    dataset: str
    sae: str = Field(description="the SAE asked for: default, a folder, or RELEASE:SAE_ID")
    state: JobState
    docs_done: int = 0
    docs_total: int = 0
    tokens_done: int = 0
    elapsed_s: float = 0.0
    actors_alive: int | None = Field(default=None, description="Ray actors embedding now (null: not on Ray)")
    submitted: str
    finished: str | None = None
    embedding_key: str | None = Field(default=None, description="the finished embedding's key")
    error: str | None = Field(default=None, description="why the job failed, and what to do")

    @property
    def active(self) -> bool:
        return self.state in ("queued", "running")

    @property
    def rates(self) -> str:
        """``, 12.3 docs/s, 4,567 tokens/s`` (and Ray actors alive) while running; empty before."""
        if self.elapsed_s <= 0:
            return ""
        actors = "" if self.actors_alive is None else f", {self.actors_alive} Ray actors alive"
        return (
            f", {self.docs_done / self.elapsed_s:.1f} docs/s, {self.tokens_done / self.elapsed_s:,.0f} tokens/s{actors}"
        )

    def to_text(self) -> str:
        pct = f"{self.docs_done / self.docs_total:.0%}" if self.docs_total else "0%"
        line = (
            f"job {self.job_id}: embed {self.dataset} with {self.sae}: {self.state}, {self.docs_done}/"
            f"{self.docs_total} docs ({pct}), {self.tokens_done:,} tokens, {self.elapsed_s:.0f}s{self.rates}"
        )
        if self.state == "done":
            line += f"; embedding {self.embedding_key} is ready for the analysis tools"
        if self.error:
            line += f"\nerror: {self.error}"
        return line


class JobList(BaseModel):
    """Embedding jobs of this server, newest first."""

    jobs: list[EmbedJob]

    def to_text(self) -> str:
        return "\n".join(j.to_text() for j in self.jobs) if self.jobs else "no embedding jobs yet"
