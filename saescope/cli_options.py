"""Command-line options made from request types, so the CLI and the MCP server share defaults and help.

:func:`add_options` adds one option per request field (type, choices and help from the field; the default
stays the request's, shown in the help), and :func:`request_from` builds the request from what was given.
"""

from __future__ import annotations

import argparse
import types
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic.fields import FieldInfo

from saescope.ops.requests import Request

R = TypeVar("R", bound=Request)


def int_list(text: str) -> list[int]:
    """``1,2,3`` as ``[1, 2, 3]``."""
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 12,40, got {text!r}") from None


def _core(annotation: Any) -> Any:
    """``T`` for ``T | None``."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def text_list(text: str) -> list[str]:
    """``a,b,c`` as ``["a", "b", "c"]``."""
    return [x.strip() for x in text.split(",") if x.strip()]


def _option(
    p: argparse.ArgumentParser, name: str, info: FieldInfo, flag: str, comma: bool, bare: Any = argparse.SUPPRESS
) -> None:
    core = _core(info.annotation)
    shown = "" if info.is_required() or info.default in (None, False, [], ()) else f" (default: {info.default})"
    kw: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS, "help": f"{info.description or ''}{shown}"}
    if info.is_required():
        kw["required"] = True
    if bare is not argparse.SUPPRESS:
        kw.update(nargs="?", const=bare, metavar=name.upper())
    if core is bool:
        kw["action"] = "store_false" if flag.startswith("--no-") else "store_true"
    elif get_origin(core) is Literal:
        kw["choices"] = list(get_args(core))
    elif get_origin(core) is list:
        item = get_args(core)[0]
        if (get_args(item)[0] if get_origin(item) is Annotated else item) is int:
            kw["type"] = int_list
        elif comma:
            kw["type"] = text_list
        else:
            kw["action"] = "append"
    elif core in (int, float):
        kw["type"] = core
    p.add_argument(*flag.split("/"), **kw)


def add_options(
    p: argparse.ArgumentParser,
    request: type[Request],
    *,
    positional: Iterable[str] = (),
    optional: Iterable[str] = (),
    flags: Mapping[str, str] | None = None,
    skip: Iterable[str] = (),
    comma: Iterable[str] = (),
    bare: Mapping[str, Any] | None = None,
) -> None:
    """Options for ``request``'s fields: ``positional`` ones as arguments (which may be left out if named in
    ``optional``), the others as ``--field-name`` (or the flag in ``flags``; ``"-k/--top-k"`` gives two
    spellings, ``--no-x`` turns a true default off). A list field is a repeatable option, or one
    comma-separated option when named in ``comma`` (lists of integers are always comma-separated). An option
    named in ``bare`` may be given without a value, which then is ``bare[name]`` (``--ray`` or ``--ray ADDR``)."""
    flags = flags or {}
    bare = bare or {}
    firsts = list(positional)
    for name in firsts:
        nargs = "?" if name in optional else None
        p.add_argument(name, nargs=nargs, default=argparse.SUPPRESS, help=request.model_fields[name].description)
    for name, info in request.model_fields.items():
        if name in firsts or name in skip:
            continue
        flag = flags.get(name, "--" + name.replace("_", "-"))
        _option(p, name, info, flag, name in comma, bare.get(name, argparse.SUPPRESS))


def request_from(args: argparse.Namespace, request: type[R], **values: Any) -> R:
    """The request made of the options that were given (the request's defaults for the rest) and ``values``.

    Raises:
        InputError: a value is out of the request's bounds (see :meth:`Request.build`).
    """
    given = {n: getattr(args, n) for n in request.model_fields if hasattr(args, n)}
    return request.build(**{**given, **values})
