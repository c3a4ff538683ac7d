"""LLM providers: the connected MCP client's model (sampling), an OpenAI-compatible endpoint, or none.

A provider answers a batch of :class:`ChatRequest` at once, so that a task's independent prompts
(one label per latent, say) can run concurrently, or, on 2026-07-28 MCP connections, travel to the
client together in one round of input requests.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import anyio
from pydantic import BaseModel, Field

from saescope.errors import SaescopeError

log = logging.getLogger(__name__)

ProviderKind = Literal["auto", "sampling", "openai", "none"]

CONFIGURE_HINT = (
    "To configure one, either connect with an MCP client that supports sampling (the server then asks the "
    "client's own model; no key needed), or start the server with SAESCOPE_LLM_BASE_URL, SAESCOPE_LLM_MODEL "
    "and SAESCOPE_LLM_API_KEY (or OPENAI_BASE_URL / OPENAI_MODEL / OPENAI_API_KEY) set, or pass "
    "`saescope serve --llm openai --llm-base-url URL --llm-model NAME`. Tools that need no LLM "
    "(diff_datasets, verify_hypothesis without judge, feature_details, ...) work without one."
)


class LLMUnavailableError(SaescopeError):
    """No LLM is configured for a tool that needs one."""


class LLMError(SaescopeError):
    """The LLM provider failed or refused."""


class ChatRequest(BaseModel):
    """One prompt: a system instruction and a user message."""

    system: str
    user: str
    max_tokens: int = 400
    temperature: float = 0.0

    @property
    def key(self) -> str:
        """A stable id for the request (same text, same key), used to match answers across rounds."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:24]


class ChatReply(BaseModel):
    """The model's answer to one :class:`ChatRequest`, with its token counts."""

    text: str
    model: str
    provider: str
    prompt_tokens: int
    completion_tokens: int
    tokens_estimated: bool = False
    fresh: bool = Field(default=True, exclude=True, description="false when replayed from an earlier round")


class LLMProvider(Protocol):
    """Anything that answers a batch of prompts, in order."""

    name: str

    async def complete(self, requests: Sequence[ChatRequest]) -> list[ChatReply]: ...


def estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4)


@dataclass(frozen=True)
class LLMSettings:
    """Which LLM to use; every field can come from the environment (see :meth:`from_env`)."""

    provider: ProviderKind = "auto"
    """auto: an OpenAI-compatible endpoint when one is configured, else the MCP client's model, else none."""
    base_url: str | None = None
    model: str | None = None
    api_key: str | None = None
    timeout_s: float = 120.0
    max_concurrency: int = 4

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> LLMSettings:
        """Settings from ``SAESCOPE_LLM_*`` (or ``OPENAI_*``) variables; ``overrides`` that are not None win."""
        e = os.environ if env is None else env

        def pick(*names: str) -> str | None:
            return next((e[n] for n in names if e.get(n)), None)

        values: dict[str, Any] = {
            "provider": pick("SAESCOPE_LLM_PROVIDER") or "auto",
            "base_url": pick("SAESCOPE_LLM_BASE_URL", "OPENAI_BASE_URL"),
            "model": pick("SAESCOPE_LLM_MODEL", "OPENAI_MODEL"),
            "api_key": pick("SAESCOPE_LLM_API_KEY", "OPENAI_API_KEY"),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @property
    def openai_configured(self) -> bool:
        return bool(self.model and (self.base_url or self.api_key))

    def describe(self) -> str:
        if self.provider == "none":
            return "none"
        if self.provider == "openai" or (self.provider == "auto" and self.openai_configured):
            return f"openai ({self.model} at {self.base_url or 'api.openai.com'})"
        if self.provider == "sampling":
            return "mcp-sampling"
        return "auto (MCP sampling when the client supports it)"


class OpenAICompatibleProvider:
    """Chat completions from any OpenAI-compatible endpoint (OpenAI, vLLM, llama.cpp, Ollama, ...)."""

    name = "openai"

    def __init__(self, settings: LLMSettings) -> None:
        if not settings.model:
            raise LLMUnavailableError(
                "an OpenAI-compatible endpoint needs a model name (SAESCOPE_LLM_MODEL). " + CONFIGURE_HINT
            )
        self.settings = settings
        self._client: Any = None

    def _get_client(self) -> Any:
        if self._client is None:
            from openai import AsyncOpenAI

            self._client = AsyncOpenAI(
                base_url=self.settings.base_url,
                api_key=self.settings.api_key or "none",
                timeout=self.settings.timeout_s,
                max_retries=1,
            )
        return self._client

    async def complete(self, requests: Sequence[ChatRequest]) -> list[ChatReply]:
        """Raises:
        LLMError: the endpoint failed or returned no text.
        """
        out: list[ChatReply | None] = [None] * len(requests)
        limit = anyio.Semaphore(max(1, self.settings.max_concurrency))

        async def one(i: int, req: ChatRequest) -> None:
            async with limit:
                out[i] = await self._one(req)

        try:
            async with anyio.create_task_group() as tg:
                for i, req in enumerate(requests):
                    tg.start_soon(one, i, req)
        except BaseExceptionGroup as group:
            raise _first_leaf(group) from None
        return [r for r in out if r is not None]

    async def _one(self, req: ChatRequest) -> ChatReply:
        import openai

        model = str(self.settings.model)
        try:
            resp = await self._get_client().chat.completions.create(
                model=model,
                messages=[{"role": "system", "content": req.system}, {"role": "user", "content": req.user}],
                max_tokens=req.max_tokens,
                temperature=req.temperature,
            )
        except openai.OpenAIError as exc:
            raise LLMError(f"the LLM endpoint {self.settings.base_url or 'api.openai.com'} failed: {exc}") from exc
        text = resp.choices[0].message.content if resp.choices else None
        if not text:
            raise LLMError(
                f"the LLM endpoint returned no text (finish reason "
                f"{resp.choices[0].finish_reason if resp.choices else 'none'})"
            )
        usage = resp.usage
        return ChatReply(
            text=text,
            model=str(resp.model or model),
            provider=self.name,
            prompt_tokens=int(usage.prompt_tokens) if usage else estimate_tokens(req.system + req.user),
            completion_tokens=int(usage.completion_tokens) if usage else estimate_tokens(text),
            tokens_estimated=usage is None,
        )


def _first_leaf(group: BaseExceptionGroup[Any]) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


def _sampling_text(result: Any) -> str:
    content = getattr(result, "content", None)
    blocks = content if isinstance(content, list) else [content]
    return "".join(str(getattr(b, "text", "")) for b in blocks if getattr(b, "type", None) == "text")


def sampling_params(req: ChatRequest) -> Any:
    """The MCP ``sampling/createMessage`` parameters for one request."""
    from mcp_types import CreateMessageRequestParams, SamplingMessage, TextContent

    return CreateMessageRequestParams(
        messages=[SamplingMessage(role="user", content=TextContent(type="text", text=req.user))],
        system_prompt=req.system,
        max_tokens=req.max_tokens,
        temperature=req.temperature,
        include_context="none",
    )


def reply_from_sampling(req: ChatRequest, result: Any, *, fresh: bool = True) -> ChatReply:
    """A :class:`ChatReply` from a client's ``CreateMessageResult`` (token counts estimated)."""
    text = _sampling_text(result)
    return ChatReply(
        text=text,
        model=str(getattr(result, "model", None) or "client-model"),
        provider="mcp-sampling",
        prompt_tokens=estimate_tokens(req.system + req.user),
        completion_tokens=estimate_tokens(text),
        tokens_estimated=True,
        fresh=fresh,
    )


class SamplingProvider:
    """The connected client's model, asked mid-call with ``sampling/createMessage`` (handshake-era MCP)."""

    name = "mcp-sampling"

    def __init__(self, session: Any) -> None:
        self.session = session

    async def complete(self, requests: Sequence[ChatRequest]) -> list[ChatReply]:
        """Raises:
        LLMError: the client refused or failed.
        """
        from mcp.shared.exceptions import MCPError

        out = []
        for req in requests:
            p = sampling_params(req)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    result = await self.session.create_message(
                        p.messages,
                        max_tokens=p.max_tokens,
                        system_prompt=p.system_prompt,
                        temperature=p.temperature,
                        include_context=p.include_context,
                    )
            except MCPError as exc:
                raise LLMError(
                    f"the client's model did not answer the sampling request: {exc}. " + CONFIGURE_HINT
                ) from exc
            out.append(reply_from_sampling(req, result))
        return out


class NeedsClientInput(Exception):
    """Raised by :class:`SamplingRoundsProvider` when prompts must go to the client in a new round."""

    def __init__(self, pending: dict[str, ChatRequest]) -> None:
        super().__init__(f"{len(pending)} prompt(s) need the client's model")
        self.pending = pending


class SamplingRoundsProvider:
    """The client's model on 2026-07-28 MCP connections, where a server cannot send requests mid-call.

    The tool runs again on each round: prompts already answered (in ``answered``) are replayed, and
    the first batch with a missing answer raises :class:`NeedsClientInput`; the server then returns
    those prompts to the client as input requests and resumes when the client retries with answers.
    """

    name = "mcp-sampling"

    def __init__(self, answered: Mapping[str, ChatReply]) -> None:
        self.answered = dict(answered)

    async def complete(self, requests: Sequence[ChatRequest]) -> list[ChatReply]:
        missing = {r.key: r for r in requests if r.key not in self.answered}
        if missing:
            raise NeedsClientInput(missing)
        return [self.answered[r.key] for r in requests]


class NoProvider:
    """No LLM: every call explains how to configure one."""

    name = "none"

    def __init__(self, reason: str = "No LLM is configured for this server.") -> None:
        self.reason = reason

    async def complete(self, requests: Sequence[ChatRequest]) -> list[ChatReply]:
        """Raises:
        LLMUnavailableError: always.
        """
        raise LLMUnavailableError(f"{self.reason} This tool needs one. {CONFIGURE_HINT}")
