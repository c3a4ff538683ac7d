"""How a server tool is declared: a module-level function over (state, request), published with the
request's fields as its MCP arguments.

A tool is written once, as ``async def diff_datasets(state, req: DiffRequest) -> CallToolResult``, and
marked with :func:`tool`. :func:`mcp_tool` gives the MCP SDK a function whose signature is the request's
fields (each with its type, default, bounds and description, less the operator-only ones), builds the
request from the validated arguments and turns library errors into tool errors the agent can act on.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar, cast, get_type_hints

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools import Tool
from mcp_types import CallToolResult, InputRequiredResult, ToolAnnotations
from pydantic import Field
from pydantic.fields import FieldInfo

from saescope.ops.requests import Request, operator_only
from saescope.server.state import ServerState, tool_error

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
WRITES = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
REPLACES = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False)
"""A tool that can replace stored data (ingest with overwrite=true deletes the old dataset and its embeddings)."""
LLM_READ = ToolAnnotations(read_only_hint=True, open_world_hint=True)

ToolResult = CallToolResult | InputRequiredResult
ToolFn = Callable[..., Awaitable[Any]]
F = TypeVar("F", bound=ToolFn)


@dataclass(frozen=True)
class ToolMeta:
    """What :func:`tool` records on a tool function."""

    title: str
    annotations: ToolAnnotations


def tool(title: str, annotations: ToolAnnotations) -> Callable[[F], F]:
    """Mark ``fn(state, [req], [ctx])`` as an MCP tool with this title and these hints."""

    def mark(fn: F) -> F:
        fn.__tool_meta__ = ToolMeta(title, annotations)  # type: ignore[attr-defined]
        return fn

    return mark


def _argument(name: str, info: FieldInfo) -> inspect.Parameter:
    """The MCP argument for one request field: its type, bounds and description, and its default."""
    described = Field(description=info.description) if info.description else Field()
    annotation = cast(Any, Annotated)[(info.annotation, described, *info.metadata)]
    default = inspect.Parameter.empty if info.is_required() else info.get_default(call_default_factory=True)
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def mcp_tool(fn: ToolFn, state: ServerState) -> Tool:
    """The MCP tool for ``fn``: arguments from its request type's fields (unknown ones refused), errors as
    ``is_error`` results."""
    meta: ToolMeta = fn.__tool_meta__  # type: ignore[attr-defined]
    hints = get_type_hints(fn)
    request: type[Request] | None = hints.get("req")
    wants_ctx = "ctx" in hints
    params: list[inspect.Parameter] = []
    if wants_ctx:
        params.append(inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context))
    if request is not None:
        params += [_argument(n, f) for n, f in request.model_fields.items() if not operator_only(f)]

    @functools.wraps(fn)
    async def call(**arguments: Any) -> Any:
        extra: dict[str, Any] = {"ctx": arguments.pop("ctx")} if wants_ctx else {}
        try:
            if request is not None:
                extra["req"] = request.build(**arguments)
            return await fn(state, **extra)
        except Exception as exc:
            raise tool_error(exc) from exc

    returns = hints.get("return", Any)
    call.__signature__ = inspect.Signature(params, return_annotation=returns)  # type: ignore[attr-defined]
    call.__annotations__ = {**{p.name: p.annotation for p in params}, "return": returns}
    del call.__wrapped__  # the SDK must read the request's fields, not fn's own signature
    made = Tool.from_function(call, name=fn.__name__, title=meta.title, annotations=meta.annotations)
    # The SDK drops arguments it does not know; a misspelt or operator-only one must be an error instead.
    arguments = made.fn_metadata.arg_model
    arguments.model_config["extra"] = "forbid"
    arguments.model_rebuild(force=True)
    return made
