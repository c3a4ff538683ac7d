"""The audit agent's loop against a real ``saescope serve`` over stdio and a scripted chat-completions stand-in.

The stand-in (stdlib ``http.server`` in a thread) plays the model: it answers each request with the
next scripted message (tool calls, then a report) and records what the agent sent, so the test can
check that tools were offered as function specs and that every tool result went back to the model.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import pytest
from openai import AsyncOpenAI

from evals.audit_agent import AuditReport, audit, openai_tools, question_for, server_params
from saescope.store.dataset import Store

pytestmark = pytest.mark.anyio


def tool_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


class StandIn:
    """A chat-completions endpoint that replays scripted assistant messages and records the requests."""

    def __init__(self, script: list[dict[str, Any]], repeat_last: bool = False) -> None:
        self.script = script
        self.repeat_last = repeat_last
        self.requests: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                i = len(outer.requests) - 1
                msg = outer.script[min(i, len(outer.script) - 1)] if outer.repeat_last else outer.script[i]
                if "tools" not in body:
                    msg = {"role": "assistant", "content": "Forced report: nothing conclusive."}
                payload = {
                    "id": f"c{i}",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body["model"],
                    "choices": [
                        {"index": 0, "message": msg, "finish_reason": "tool_calls" if msg.get("tool_calls") else "stop"}
                    ],
                    "usage": {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110},
                }
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> StandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "home"
    frame = pd.DataFrame(
        {
            "doc_id": ["d0", "d1", "d2", "d3"],
            "text": ["good film", "bad film", "fine", "dull"],
            "side": ["a", "a", "b", "b"],
        }
    )
    Store(root).create("tiny", frame, source="test")
    yield root


async def test_agent_calls_tools_feeds_results_back_and_reports(home: Path) -> None:
    script: list[dict[str, Any]] = [
        {"role": "assistant", "content": None, "tool_calls": [tool_call("t1", "list_datasets", "{}")]},
        {
            "role": "assistant",
            "content": "Looking closer.",
            "tool_calls": [
                tool_call("t2", "describe_dataset", '{"dataset": "tiny", "n_examples": 1}'),
                tool_call(
                    "t3",
                    "diff_datasets",
                    '{"dataset_a": "tiny", "where_a": "side == \'a\'", "where_b": "side == \'b\'"}',
                ),
                tool_call("t4", "read_documents", "not json"),
            ],
        },
        {
            "role": "assistant",
            "content": "Report: the datasets could not be compared (no embedding). Evidence: "
            "list_datasets, describe_dataset.",
        },
    ]
    with StandIn(script) as llm:
        chat = AsyncOpenAI(base_url=llm.url, api_key="none", max_retries=0)
        question = question_for("tiny", "side == 'a'", None, "side == 'b'")
        report = await audit(server_params(home), chat, "stand-in", question, max_steps=5)
    assert isinstance(report, AuditReport)
    assert report.finished and report.steps == 3 and report.report.startswith("Report:")
    assert [e.name for e in report.evidence] == ["list_datasets", "describe_dataset", "diff_datasets", "read_documents"]
    assert [e.is_error for e in report.evidence] == [False, False, True, True]
    assert "tiny" in report.evidence[0].result_excerpt
    assert "embedding" in report.evidence[2].result_excerpt
    assert (report.prompt_tokens, report.completion_tokens) == (300, 30)

    first = llm.requests[0]
    names = {t["function"]["name"] for t in first["tools"]}
    assert {"list_datasets", "diff_datasets", "feature_details", "verify_hypothesis"} <= names
    assert all(t["type"] == "function" and t["function"]["parameters"]["type"] == "object" for t in first["tools"])
    assert "'tiny' where side == 'a'" in first["messages"][1]["content"]
    third = llm.requests[2]["messages"]
    tool_msgs = {m["tool_call_id"]: m["content"] for m in third if m["role"] == "tool"}
    assert set(tool_msgs) == {"t1", "t2", "t3", "t4"}
    assert tool_msgs["t3"].startswith("ERROR: ") and tool_msgs["t4"].startswith("ERROR: invalid arguments")
    assert [m["role"] for m in third[:3]] == ["system", "user", "assistant"]
    assert "Audit report" in report.to_markdown() and "diff_datasets" in report.to_markdown()


async def test_agent_stops_at_the_step_limit_and_asks_for_the_report(home: Path) -> None:
    loop = [{"role": "assistant", "content": None, "tool_calls": [tool_call("t", "list_datasets", "{}")]}]
    with StandIn(loop, repeat_last=True) as llm:
        chat = AsyncOpenAI(base_url=llm.url, api_key="none", max_retries=0)
        report = await audit(server_params(home), chat, "stand-in", question_for("tiny", None, None, None), max_steps=2)
    assert not report.finished and report.steps == 3 and len(report.evidence) == 2
    assert report.report == "Forced report: nothing conclusive."
    assert "tools" not in llm.requests[-1]
    assert llm.requests[-1]["messages"][-1]["content"].startswith("Stop investigating")


def test_openai_tools_rejects_names_a_chat_api_cannot_call() -> None:
    class T:
        name, title, description, input_schema = "bad name", None, "d", {"type": "object"}

    with pytest.raises(ValueError, match="cannot be an OpenAI function name"):
        openai_tools([T()])

    class Ok:
        name, title, description = "ok_tool", "Ok", "  does things "
        input_schema: ClassVar[dict[str, Any]] = {}

    assert openai_tools([Ok()]) == [
        {
            "type": "function",
            "function": {
                "name": "ok_tool",
                "description": "does things",
                "parameters": {"type": "object", "properties": {}},
            },
        }
    ]
