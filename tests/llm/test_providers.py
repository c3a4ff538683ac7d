"""Providers: an OpenAI-compatible endpoint (a local stand-in), settings from the environment, none."""

from __future__ import annotations

import pytest

from saescope.llm.providers import (
    ChatRequest,
    LLMError,
    LLMSettings,
    LLMUnavailableError,
    NeedsClientInput,
    NoProvider,
    OpenAICompatibleProvider,
    SamplingRoundsProvider,
)
from tests.server.shared import FakeLLM

pytestmark = pytest.mark.anyio


async def test_openai_compatible_endpoint_answers_a_batch_in_order(fake_llm: FakeLLM) -> None:
    fake_llm.respond = lambda system, user: f"echo {user}"
    provider = OpenAICompatibleProvider(LLMSettings(base_url=fake_llm.url, model="m", api_key="k", max_concurrency=2))
    replies = await provider.complete([ChatRequest(system="sys", user=f"q{i}", max_tokens=7) for i in range(5)])
    assert [r.text for r in replies] == [f"echo q{i}" for i in range(5)]
    assert all((r.prompt_tokens, r.completion_tokens, r.model, r.provider) == (100, 20, "m", "openai") for r in replies)
    sent = fake_llm.requests[0]
    assert sent["max_tokens"] == 7 and sent["temperature"] == 0.0 and sent["_auth"] == "Bearer k"
    assert sent["messages"][0] == {"role": "system", "content": "sys"}


async def test_endpoint_failures_are_llm_errors() -> None:
    provider = OpenAICompatibleProvider(LLMSettings(base_url="http://127.0.0.1:9/v1", model="m", timeout_s=5))
    with pytest.raises(LLMError, match=r"127\.0\.0\.1:9"):
        await provider.complete([ChatRequest(system="s", user="u")])
    with pytest.raises(LLMUnavailableError, match="model name"):
        OpenAICompatibleProvider(LLMSettings(base_url="http://x"))


def test_settings_come_from_the_environment_and_overrides_win() -> None:
    env = {
        "OPENAI_API_KEY": "sk",
        "OPENAI_BASE_URL": "http://o/v1",
        "SAESCOPE_LLM_MODEL": "m1",
        "SAESCOPE_LLM_BASE_URL": "http://s/v1",
    }
    s = LLMSettings.from_env(env)
    assert (s.base_url, s.model, s.api_key, s.provider) == ("http://s/v1", "m1", "sk", "auto")
    assert s.openai_configured and "m1" in s.describe()
    assert LLMSettings.from_env(env, model="m2", provider=None).model == "m2"
    assert not LLMSettings.from_env({}).openai_configured


async def test_no_provider_explains_how_to_configure_one() -> None:
    with pytest.raises(LLMUnavailableError, match="SAESCOPE_LLM_BASE_URL") as info:
        await NoProvider("No LLM here.").complete([ChatRequest(system="s", user="u")])
    assert "sampling" in str(info.value) and str(info.value).startswith("No LLM here.")


async def test_sampling_rounds_ask_for_missing_answers() -> None:
    a, b = ChatRequest(system="s", user="a"), ChatRequest(system="s", user="b")
    with pytest.raises(NeedsClientInput) as info:
        await SamplingRoundsProvider({}).complete([a, b])
    assert set(info.value.pending) == {a.key, b.key}
    assert a.key != b.key and a.key == ChatRequest(system="s", user="a").key
