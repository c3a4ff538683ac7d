"""Tools that use an LLM: label latents, summarise a diff into hypotheses, verify a hypothesis; and its cost."""

from __future__ import annotations

from mcp.server.mcpserver import Context
from mcp_types import CallToolResult, InputRequiredResult
from pydantic import BaseModel

from saescope import ops
from saescope.llm.providers import LLMProvider
from saescope.ops.requests import LabelRequest, SummariseRequest, VerifyRequest
from saescope.server.state import ServerState
from saescope.server.tooling import LLM_READ, READ_ONLY, WRITES, tool


@tool("Label latents with an LLM", WRITES)
async def label_latents(state: ServerState, req: LabelRequest, ctx: Context) -> CallToolResult | InputRequiredResult:
    """Write a label for each latent with an LLM (the connected client's model through MCP sampling, or the
    server's configured endpoint) from documents where it fires (firing tokens marked) and where it does
    not, then score the label: the LLM picks which held-out documents match it; score = balanced accuracy
    (0.5 chance, 1 perfect). Saved labels are used by every later result. Needs an LLM."""
    run_sync = state.runner(None)

    async def task(provider: LLMProvider) -> BaseModel:
        return await ops.label_latents(state.ws, req, provider, run_sync=run_sync)

    return await state.with_llm(ctx, task)


@tool("Summarise a diff into hypotheses", LLM_READ)
async def summarise_diff(
    state: ServerState, req: SummariseRequest, ctx: Context
) -> CallToolResult | InputRequiredResult:
    """Run diff_datasets with these arguments and ask an LLM to turn its top latents into a few hypotheses
    about how A differs from B. Each hypothesis cites latent ids from the diff (others are dropped) and carries
    freq_a / freq_b: the fraction of documents where any cited latent fires, counted by code. Test one with
    verify_hypothesis. Needs an LLM."""

    async def task(provider: LLMProvider) -> BaseModel:
        return await ops.summarise_diff(state.ws, req, provider, run_sync=state.runner(None))

    return await state.with_llm(ctx, task)


@tool("Verify a hypothesis", LLM_READ)
async def verify_hypothesis(
    state: ServerState, req: VerifyRequest, ctx: Context
) -> CallToolResult | InputRequiredResult:
    """Test a hypothesis carried by latents: the fraction of A's and B's documents where any of the latents
    fires, their difference with a 95% interval and a two-proportion p-value (no LLM). With judge=true, an
    LLM also reads n_judge random documents per side, shuffled together, and the counts of 'shows it' per
    side are compared, with the judge's agreement with the latents."""

    async def task(provider: LLMProvider | None) -> BaseModel:
        return await ops.verify_hypothesis(state.ws, req, provider, run_sync=state.runner(None))

    if not req.judge:
        return state.result(await task(None))
    return await state.with_llm(ctx, task)


@tool("LLM usage and cost", READ_ONLY)
async def llm_usage(state: ServerState) -> CallToolResult:
    """Tokens and price of every LLM call this server made since it started, per provider and model (prices
    from the server's price table; MCP sampling reports no tokens, so those are estimated), and which LLM
    the server uses."""
    return state.result(await state.run(lambda: state.ledger.totals(state.config.llm.describe())))
