"""Which files an agent's ingest may read: paths under the allowed roots only, with symlinks resolved."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from saescope.errors import InputError


@dataclass(frozen=True)
class IngestLimits:
    """What one ingest may read and store: files only under ``roots`` (symlinks resolved), at most
    ``max_bytes`` of input and ``max_documents`` documents. The CLI ingests with no limits."""

    roots: Sequence[Path]
    max_bytes: int
    max_documents: int


def _under(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _changed(path: Path | str, exc: OSError) -> InputError:
    return InputError(f"{str(path)[:300]} cannot be read ({exc.strerror or exc}); check the path, or try again")


def _expanded(path: str) -> Path:
    """``path`` with ``~`` expanded.

    Raises:
        InputError: a NUL character, or ``~user`` for a user who does not exist.
    """
    if "\x00" in path:
        raise InputError(f"{path[:300]!r} contains a NUL character, which no file name can hold; check the path")
    try:
        return Path(path).expanduser()
    except RuntimeError:
        raise InputError(f"{path[:300]}: cannot expand '~' (no such user); write the full path") from None


def local_path(path: str) -> Path:
    """``path`` (a person's, read without roots) made absolute, ``~`` expanded and symlinks resolved.

    Raises:
        InputError: an empty path, a NUL character, an unknown ``~user``, or a path the system refuses (too
            long, a loop of links...).
    """
    if not path.strip():
        raise InputError("give a path: a .jsonl/.csv/.parquet file or a folder of .txt files")
    try:
        return _expanded(path).resolve()
    except OSError as exc:
        raise _changed(path, exc) from exc
    except RuntimeError:  # a loop of symbolic links
        raise InputError(f"{path[:300]}: a loop of symbolic links; check the path") from None


def resolve_under_roots(path: str, roots: Sequence[Path]) -> Path:
    """``path`` (relative paths are taken from the first root) resolved, symlinks followed, if it lies
    under one of ``roots``. The files are checked again when they are opened (``IngestOptions.roots``),
    since a link may be swapped in between.

    Raises:
        InputError: no roots, an empty path or one with a NUL character, the path does not exist or cannot be resolved, or it (or where a
            symlink in it points) is outside them.
    """
    if not roots:
        raise InputError("this server reads no files (no --root given); pass the documents inline instead")
    if not path.strip():
        raise InputError(f"give a path: a file or folder under the allowed roots {[str(r) for r in roots]}")
    raw = _expanded(path)
    candidate = raw if raw.is_absolute() else roots[0] / raw
    try:
        real = candidate.resolve(strict=True)
    except (FileNotFoundError, NotADirectoryError, RuntimeError) as exc:
        raise InputError(
            f"{path[:300]} does not exist (relative paths start at {roots[0]}); allowed roots: "
            f"{[str(r) for r in roots]}"
        ) from exc
    except OSError as exc:
        raise _changed(path, exc) from exc
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
        InputError: a file inside the folder resolves outside the roots, or the folder changed while listed.
    """
    try:
        if not path.is_dir():
            return [path]
        files = sorted(p for p in path.rglob("*.txt") if p.is_file())
        for f in files:
            real = f.resolve()
            if not any(_under(real, r) for r in roots):
                raise InputError(
                    f"{f} is a link to {real}, outside the allowed roots; remove it or ingest another folder"
                )
    except OSError as exc:
        raise _changed(path, exc) from exc
    return files


def check_size(files: Sequence[Path], max_bytes: int) -> int:
    """Total bytes of ``files`` as stored (compressed files are counted again, decompressed, as they are read).

    Raises:
        InputError: over ``max_bytes``, or a file vanished.
    """
    try:
        total = sum(f.stat().st_size for f in files)
    except OSError as exc:
        raise _changed(files[0] if files else "input", exc) from exc
    if total > max_bytes:
        raise InputError(
            f"the input is {total:,} bytes, over this server's limit of {max_bytes:,} "
            "(--max-bytes); split it, or ingest it with the `saescope ingest` command"
        )
    return total
