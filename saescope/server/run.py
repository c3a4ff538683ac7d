"""Serve over stdio (the default; nothing but protocol on stdout) or streamable HTTP behind a bearer token."""

from __future__ import annotations

import logging
import sys

from saescope.server.config import ServerConfig

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def serve_stdio(config: ServerConfig) -> None:
    """Answer MCP on stdin/stdout until the client closes the pipe."""
    from saescope.server.app import build_server

    build_server(config).run(transport="stdio")


def serve_http(
    config: ServerConfig, *, host: str = "127.0.0.1", port: int = 8765, token: str | None = None, path: str = "/mcp"
) -> None:
    """Answer MCP over streamable HTTP at ``http://host:port/mcp``; every request needs the bearer token
    (a fresh one is made, and printed to stderr, when none is given)."""
    import uvicorn

    from saescope.server.app import build_server
    from saescope.server.security import BearerAuth, new_token

    if host not in LOOPBACK:
        log.warning(
            "serving on %s: reachable from other machines; the bearer token is the only protection, "
            "and traffic is not encrypted (put a TLS proxy in front)",
            host,
        )
    token = token or new_token()
    shown = f"[{host}]" if ":" in host else host
    sys.stderr.write(
        f"saescope: MCP over HTTP at http://{shown}:{port}{path}\n"
        f"saescope: send 'Authorization: Bearer {token}' with every request\n"
    )
    sys.stderr.flush()
    app = build_server(config).streamable_http_app(streamable_http_path=path, host=host)
    uvicorn.Server(
        uvicorn.Config(BearerAuth(app, token), host=host, port=port, log_level="warning", lifespan="on")
    ).run()
