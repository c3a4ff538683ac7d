"""Prices, per-result usage and the server's running totals."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from saescope.errors import InputError
from saescope.llm.ledger import CostLedger, MeteredProvider, PriceTable, summarise_usage
from saescope.llm.providers import ChatReply, ChatRequest, SamplingRoundsProvider

pytestmark = pytest.mark.anyio


def reply(model: str = "gpt-4o-mini-2024-07-18", fresh: bool = True, provider: str = "openai") -> ChatReply:
    return ChatReply(text="x", model=model, provider=provider, prompt_tokens=1000, completion_tokens=500, fresh=fresh)


def test_shipped_price_table_is_dated_and_matches_by_prefix() -> None:
    table = PriceTable.load()
    assert table.date and table.currency == "USD"
    assert table.price("gpt-4o-mini-2024-07-18") == table.models["gpt-4o-mini"]
    assert table.price("openai/gpt-4o") == table.models["gpt-4o"]
    assert table.price("my-local-llama") is None
    assert table.cost("gpt-4o-mini", 1_000_000, 1_000_000) == pytest.approx(0.75)


def test_a_bad_price_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        PriceTable.load(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text(json.dumps({"models": {}}))
    with pytest.raises(InputError, match="not a price table"):
        PriceTable.load(tmp_path / "bad.json")


def test_usage_sums_tokens_and_prices() -> None:
    table = PriceTable.load()
    usage = summarise_usage([reply(), reply()], table)
    assert usage is not None
    assert (usage.calls, usage.prompt_tokens, usage.completion_tokens) == (2, 2000, 1000)
    assert usage.cost == pytest.approx(2 * (1000 * 0.15 + 500 * 0.6) / 1e6)
    unpriced = summarise_usage([reply(), reply("local-model")], table)
    assert unpriced is not None and unpriced.cost is None and unpriced.model == "gpt-4o-mini-2024-07-18, local-model"
    assert summarise_usage([], table) is None


def test_ledger_totals_are_thread_safe() -> None:
    ledger = CostLedger(PriceTable.load())

    def add() -> None:
        for _ in range(200):
            ledger.record([reply()])

    threads = [threading.Thread(target=add) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ledger.record([reply("local-model", provider="mcp-sampling")])
    totals = ledger.totals("test")
    assert totals.calls == 801 and totals.prompt_tokens == 801_000
    assert totals.cost is None and totals.unpriced_models == ["local-model"]
    assert "801 call(s)" in totals.to_text()


async def test_metered_provider_counts_replayed_answers_in_the_result_only() -> None:
    ledger = CostLedger(PriceTable.load())
    req = ChatRequest(system="s", user="u")
    inner = SamplingRoundsProvider({req.key: reply(fresh=False)})
    metered = MeteredProvider(inner, ledger)
    await metered.complete([req])
    usage = metered.usage()
    assert usage is not None and usage.calls == 1
    assert ledger.totals("x").calls == 0
