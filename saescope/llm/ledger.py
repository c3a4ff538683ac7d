"""What LLM calls cost: a per-model price table, per-result usage, and the server's running totals."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from pydantic import BaseModel, Field

from saescope.errors import InputError
from saescope.llm.providers import ChatReply, ChatRequest, LLMProvider

DEFAULT_PRICES = Path(__file__).resolve().parent / "prices.json"


class ModelPrice(BaseModel):
    """Price of one model in currency units per million tokens."""

    prompt: float = Field(description="per million prompt (input) tokens")
    completion: float = Field(description="per million completion (output) tokens")


class PriceTable(BaseModel):
    """Prices per model, as of ``date``."""

    date: str = Field(description="when the prices were copied from the vendors")
    currency: str = "USD"
    models: dict[str, ModelPrice] = Field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None = None) -> PriceTable:
        """The table at ``path``, ``$SAESCOPE_LLM_PRICES``, or the one shipped with saescope.

        Raises:
            InputError: the file is missing or not a price table.
        """
        env = os.environ.get("SAESCOPE_LLM_PRICES")
        target = path or (Path(env) if env else DEFAULT_PRICES)
        if target == DEFAULT_PRICES and not target.is_file():
            return cls(date="unknown (no price table installed)", models={})
        try:
            return cls.model_validate(json.loads(target.read_text(encoding="utf-8")))
        except FileNotFoundError as exc:
            raise InputError(f"price table {target} does not exist") from exc
        except ValueError as exc:
            raise InputError(
                f"{target} is not a price table ({{date, currency, models: {{name: {{prompt, completion}}}}}}): {exc}"
            ) from exc

    def price(self, model: str) -> ModelPrice | None:
        """The price of ``model``: exact name, else the longest listed prefix (``gpt-4o-mini-2024-07-18``)."""
        name = model.lower().rsplit("/", 1)[-1]
        table = {k.lower(): v for k, v in self.models.items()}
        if name in table:
            return table[name]
        prefixes = [k for k in table if name.startswith(k)]
        return table[max(prefixes, key=len)] if prefixes else None

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
        p = self.price(model)
        if p is None:
            return None
        return (prompt_tokens * p.prompt + completion_tokens * p.completion) / 1e6


class LLMUsage(BaseModel):
    """Tokens and price of the LLM calls behind one result (or one model's share of the totals)."""

    provider: str = Field(description="mcp-sampling (the client's model) or openai (an OpenAI-compatible endpoint)")
    model: str = Field(description="model name(s) reported by the provider")
    calls: int = Field(description="LLM requests made")
    prompt_tokens: int
    completion_tokens: int
    tokens_estimated: bool = Field(
        description="true when the provider reports no token counts (MCP sampling): counts are characters / 4"
    )
    cost: float | None = Field(description="price of these tokens at the price table; null for unpriced models")
    currency: str = "USD"
    price_date: str = Field(description="date of the price table used")

    def to_text(self) -> str:
        cost = "unpriced" if self.cost is None else f"{self.cost:.4f} {self.currency}"
        est = " (estimated)" if self.tokens_estimated else ""
        return (
            f"LLM: {self.calls} call(s) to {self.model} via {self.provider}, {self.prompt_tokens}+"
            f"{self.completion_tokens} tokens{est}, {cost} at prices of {self.price_date}"
        )


def summarise_usage(replies: Iterable[ChatReply], prices: PriceTable) -> LLMUsage | None:
    """One :class:`LLMUsage` over ``replies`` (None when there are none)."""
    items = list(replies)
    if not items:
        return None
    costs = [prices.cost(r.model, r.prompt_tokens, r.completion_tokens) for r in items]
    return LLMUsage(
        provider=", ".join(sorted({r.provider for r in items})),
        model=", ".join(sorted({r.model for r in items})),
        calls=len(items),
        prompt_tokens=sum(r.prompt_tokens for r in items),
        completion_tokens=sum(r.completion_tokens for r in items),
        tokens_estimated=any(r.tokens_estimated for r in items),
        cost=None if any(c is None for c in costs) else sum(c for c in costs if c is not None),
        currency=prices.currency,
        price_date=prices.date,
    )


class UsageTotals(BaseModel):
    """Every LLM call this server made since it started, per provider and model."""

    provider: str = Field(description="the LLM this server uses now (openai, mcp-sampling, auto or none)")
    calls: int
    prompt_tokens: int
    completion_tokens: int
    cost: float | None = Field(description="total price; null when some model is not in the price table")
    currency: str
    price_date: str
    unpriced_models: list[str] = Field(description="models missing from the price table (add them to price them)")
    by_model: list[LLMUsage]

    def to_text(self) -> str:
        head = (
            f"LLM usage since start ({self.provider}): {self.calls} call(s), {self.prompt_tokens}+"
            f"{self.completion_tokens} tokens, "
            + ("cost unknown" if self.cost is None else f"{self.cost:.4f} {self.currency}")
            + f" (prices of {self.price_date})"
        )
        lines = [head] + ["- " + u.to_text() for u in self.by_model]
        if self.unpriced_models:
            lines.append(f"unpriced: {', '.join(self.unpriced_models)}")
        return "\n".join(lines)


class CostLedger:
    """Running totals of every LLM reply, per provider and model, safe to update from several threads."""

    def __init__(self, prices: PriceTable | None = None) -> None:
        self.prices = prices or PriceTable.load()
        self._lock = threading.Lock()
        self._usage: dict[tuple[str, str], LLMUsage] = {}

    def record(self, replies: Iterable[ChatReply]) -> None:
        for r in replies:
            one = summarise_usage([r], self.prices)
            if one is None:
                continue
            with self._lock:
                old = self._usage.get((r.provider, r.model))
                if old is None:
                    self._usage[(r.provider, r.model)] = one
                    continue
                self._usage[(r.provider, r.model)] = old.model_copy(
                    update={
                        "calls": old.calls + 1,
                        "prompt_tokens": old.prompt_tokens + one.prompt_tokens,
                        "completion_tokens": old.completion_tokens + one.completion_tokens,
                        "tokens_estimated": old.tokens_estimated or one.tokens_estimated,
                        "cost": None if old.cost is None or one.cost is None else old.cost + one.cost,
                    }
                )

    def totals(self, provider: str) -> UsageTotals:
        with self._lock:
            per = [self._usage[k] for k in sorted(self._usage)]
        unpriced = sorted({u.model for u in per if u.cost is None})
        return UsageTotals(
            provider=provider,
            calls=sum(u.calls for u in per),
            prompt_tokens=sum(u.prompt_tokens for u in per),
            completion_tokens=sum(u.completion_tokens for u in per),
            cost=None if unpriced else sum(u.cost or 0.0 for u in per),
            currency=self.prices.currency,
            price_date=self.prices.date,
            unpriced_models=unpriced,
            by_model=per,
        )


class MeteredProvider:
    """Wraps a provider for one task: remembers its replies (for the result's usage) and adds new
    ones to the server's ledger (replies replayed from an earlier round were counted then)."""

    def __init__(self, inner: LLMProvider, ledger: CostLedger | None = None, prices: PriceTable | None = None) -> None:
        self.inner = inner
        self.name = inner.name
        self.ledger = ledger
        self.prices = prices or (ledger.prices if ledger is not None else PriceTable.load())
        self.replies: list[ChatReply] = []

    async def complete(self, requests: Sequence[ChatRequest]) -> list[ChatReply]:
        replies = await self.inner.complete(requests)
        self.replies.extend(replies)
        if self.ledger is not None:
            self.ledger.record(r for r in replies if r.fresh)
        return replies

    def usage(self) -> LLMUsage | None:
        return summarise_usage(self.replies, self.prices)
