"""What one server process holds: the workspace (models load lazily, once), jobs, locks, the LLM ledger."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import anyio.to_thread
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, CreateMessageRequest, InputRequiredResult, TextContent
from pydantic import BaseModel

from saescope.errors import SaescopeError, clip
from saescope.llm.ledger import CostLedger, MeteredProvider
from saescope.llm.providers import (
    ChatReply,
    LLMProvider,
    NeedsClientInput,
    NoProvider,
    OpenAICompatibleProvider,
    SamplingProvider,
    SamplingRoundsProvider,
    reply_from_sampling,
    sampling_params,
)
from saescope.server.config import ServerConfig
from saescope.server.jobs import JobManager

if TYPE_CHECKING:
    from mcp.server.mcpserver import Context

    from saescope.workspace import Workspace

log = logging.getLogger(__name__)

T = TypeVar("T")
Lock = Literal["encoder"] | None
"""What a call holds while it runs. The reader needs no lock: it is thread-safe (each thread captures its own
block output), so token-evidence calls run at once with each other and with a running embedding job, sharing
the cores instead of waiting for the job to end; embedding jobs run one at a time (:class:`JobManager`)."""


def cap_text(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, saying how to get the rest."""
    if len(text) <= limit:
        return text
    note = (
        f"\n… [text cut at {limit} characters; the structured result holds this whole page. Ask for fewer rows "
        "(top_k) or fewer items, or page on with cursor.]"
    )
    return text[: max(0, limit - len(note))] + note


class ServerState:
    """Shared by every tool call of one server (and every session, over HTTP)."""

    def __init__(self, config: ServerConfig, workspace: Workspace | None = None) -> None:
        self.config = config
        self._ws = workspace
        self._ws_lock = threading.Lock()
        self.jobs = JobManager()
        self.encoder_lock = threading.Lock()
        self._ledger: CostLedger | None = None

    @property
    def ws(self) -> Workspace:
        with self._ws_lock:
            if self._ws is None:
                from saescope.workspace import Workspace

                self._ws = Workspace(self.config.home, device=self.config.device)
            return self._ws

    @property
    def ledger(self) -> CostLedger:
        if self._ledger is None:
            from saescope.llm.ledger import PriceTable

            self._ledger = CostLedger(PriceTable.load(self.config.llm_prices))
        return self._ledger

    # --- running library calls ---------------------------------------------------------------
    async def run(self, fn: Callable[[], T], lock: Lock = None) -> T:
        """Run blocking library work in a worker thread, so the server keeps answering meanwhile."""

        def call() -> T:
            if lock == "encoder":
                with self.encoder_lock:
                    return fn()
            return fn()

        return await anyio.to_thread.run_sync(call)

    def runner(self, lock: Lock) -> Callable[[Callable[[], Any]], Awaitable[Any]]:
        async def run_sync(fn: Callable[[], Any]) -> Any:
            return await self.run(fn, lock)

        return run_sync

    def result(self, model: BaseModel) -> CallToolResult:
        """The tool result: a compact text (capped) and the structured model."""
        render = getattr(model, "to_text", None)
        text = render() if callable(render) else model.model_dump_json(indent=1)
        return CallToolResult(
            content=[TextContent(type="text", text=cap_text(str(text), self.config.text_limit))],
            structured_content=model.model_dump(mode="json"),
        )

    # --- LLM ---------------------------------------------------------------------------------------
    def provider_for(self, ctx: Context[Any, Any]) -> LLMProvider:
        """The LLM for this call: the configured endpoint, else the client's model by sampling, else none."""
        from mcp_types.version import MODERN_PROTOCOL_VERSIONS

        s = self.config.llm
        if s.provider == "none":
            return NoProvider("This server was started with --llm none.")
        if s.provider == "openai" or (s.provider == "auto" and s.openai_configured):
            return OpenAICompatibleProvider(s)
        caps = ctx.client_capabilities
        if caps is None or caps.sampling is None:
            return NoProvider("No LLM is configured, and the connected client does not offer MCP sampling.")
        if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            return SamplingRoundsProvider(_answers(ctx))
        return SamplingProvider(ctx.session)

    async def with_llm(
        self, ctx: Context[Any, Any], task: Callable[[MeteredProvider], Awaitable[BaseModel]]
    ) -> CallToolResult | InputRequiredResult:
        """Run an LLM task; on 2026-07-28 connections, prompts still unanswered go back to the client as
        input requests (the task runs again, from the start, when the client retries with answers)."""
        provider = self.provider_for(ctx)
        metered = MeteredProvider(provider, self.ledger)
        try:
            model = await task(metered)
        except NeedsClientInput as need:
            assert isinstance(provider, SamplingRoundsProvider)
            state = {
                "answered": {k: r.model_dump() for k, r in provider.answered.items()},
                "pending": {k: len(r.system) + len(r.user) for k, r in need.pending.items()},
            }
            return InputRequiredResult(
                input_requests={k: CreateMessageRequest(params=sampling_params(r)) for k, r in need.pending.items()},
                request_state=json.dumps(state),
            )
        return self.result(model)


def _answers(ctx: Context[Any, Any]) -> dict[str, ChatReply]:
    """Answers to earlier rounds' prompts: replayed from the request state, plus this round's responses."""
    from saescope.llm.providers import ChatRequest

    state = json.loads(ctx.request_state) if ctx.request_state else {}
    answered = {
        k: ChatReply.model_validate(v).model_copy(update={"fresh": False}) for k, v in state.get("answered", {}).items()
    }
    pending: dict[str, int] = state.get("pending", {})
    for key, response in (ctx.input_responses or {}).items():
        if key not in pending:
            continue
        stand_in = ChatRequest(system="", user="x" * int(pending[key]))
        answered[key] = reply_from_sampling(stand_in, response)
    return answered


def tool_error(exc: BaseException) -> ToolError:
    """The error a client sees: the library's actionable message, or a bug report hint."""
    if isinstance(exc, ToolError):
        return exc
    if isinstance(exc, SaescopeError):
        return ToolError(str(exc))
    if isinstance(exc, ValueError):
        # Often a bad value met below the library's own checks; logged in full in case it is a bug instead.
        log.warning("a tool failed on a value error", exc_info=exc)
        return ToolError(f"invalid value: {clip(str(exc), 2000)}")
    log.exception("unexpected error in a tool", exc_info=exc)
    return ToolError(
        f"internal error ({type(exc).__name__}: {clip(str(exc), 2000)}); this is a bug in saescope, and the "
        "server's log (stderr) has the traceback. Other tools still work."
    )
