"""What a connected agent may touch: files under the allowed roots only, and HTTP only with the token."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from pathlib import Path
from typing import Any

from saescope.errors import InputError

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _under(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def resolve_under_roots(path: str, roots: Sequence[Path]) -> Path:
    """``path`` (relative paths are taken from the first root) resolved, symlinks followed, if it lies
    under one of ``roots``.

    Raises:
        InputError: no roots, the path does not exist, or it (or where a symlink in it points) is outside them.
    """
    if not roots:
        raise InputError("this server reads no files (no --root given); pass the documents inline instead")
    raw = Path(path).expanduser()
    candidate = raw if raw.is_absolute() else roots[0] / raw
    try:
        real = candidate.resolve(strict=True)
    except (FileNotFoundError, RuntimeError) as exc:
        raise InputError(
            f"{path} does not exist (relative paths start at {roots[0]}); allowed roots: {[str(r) for r in roots]}"
        ) from exc
    if not any(_under(real, r) for r in roots):
        raise InputError(
            f"{path} resolves to {real}, outside the allowed roots {[str(r) for r in roots]}; "
            "the server only reads files under them (start it with --root DIR to allow another)"
        )
    return real


def files_to_read(path: Path, roots: Sequence[Path]) -> list[Path]:
    """The files ingesting ``path`` will open: itself, or every ``*.txt`` below a folder, each checked
    against ``roots`` after resolving symlinks.

    Raises:
        InputError: a file inside the folder resolves outside the roots.
    """
    if path.is_file():
        return [path]
    files = sorted(p for p in path.rglob("*.txt") if p.is_file())
    for f in files:
        real = f.resolve()
        if not any(_under(real, r) for r in roots):
            raise InputError(f"{f} is a link to {real}, outside the allowed roots; remove it or ingest another folder")
    return files


def check_size(files: Sequence[Path], max_bytes: int) -> int:
    """Total bytes of ``files``.

    Raises:
        InputError: over ``max_bytes``.
    """
    total = sum(f.stat().st_size for f in files)
    if total > max_bytes:
        raise InputError(
            f"the input is {total:,} bytes, over this server's limit of {max_bytes:,} "
            "(--max-bytes); split it, or ingest it with the `saescope ingest` command"
        )
    return total


def new_token() -> str:
    return secrets.token_urlsafe(32)


class BearerAuth:
    """ASGI middleware: HTTP requests must carry ``Authorization: Bearer <token>``, or get a 401."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        if not token:
            raise ValueError("an empty bearer token would let anyone in")
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope.get("headers", []):
            if name.lower() == b"authorization":
                given = value
                break
        if secrets.compare_digest(given, self.expected):
            await self.app(scope, receive, send)
            return
        log.warning("refused an HTTP request without a valid bearer token from %s", scope.get("client"))
        body = json.dumps(
            {
                "error": "invalid_token",
                "error_description": "missing or wrong bearer token: send 'Authorization: Bearer <token>' with the token "
                "printed by `saescope serve` (or given with --token)",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"www-authenticate", b'Bearer realm="saescope"'),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
