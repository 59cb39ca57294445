"""Values checked against the annotations of the dataclass they go into, as pydantic reads annotations.

A suite file and a plugin's config options are untyped until here: ``check_value`` compares a value with a
field's annotation (``int | None``, ``bool``, ``float``, ``str``, ``list[int]``, ``tuple[...]``, ``Literal``,
``Path``) and returns it in the field's type, or raises GenbenchError saying what was expected. A bool is never
an int or a float here (Python says it is, a user who wrote ``true`` did not mean 1), and a string is never a
bool (``binarize = "false"`` would otherwise be true). Floats must be finite: a NaN or infinity in a config
would only reappear later as an unreadable number in a results file.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from genbench.contract import GenbenchError
from genbench.toolkit.text import terminal_safe

#: How long a shown value may be before it is cut, so that an error stays one readable line.
SHOWN_VALUE_LENGTH = 60


class _Mismatch(Exception):
    """A value does not fit its annotation; the caller says which setting it was."""


def field_hints(cls: type) -> dict[str, Any]:
    """The resolved annotations of a dataclass's fields (strings under ``from __future__ import annotations``)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls)}


def check_value(value: Any, hint: Any, what: str) -> Any:
    """``value`` converted to ``hint`` (an int to a float, a str to a Path, a list to a tuple), or an error."""
    try:
        return _convert(value, hint)
    except _Mismatch:
        raise GenbenchError(f"{what} must be {describe(hint)}, got {shown(value)}") from None


def shown(value: Any) -> str:
    """A value as the user wrote it, cut short and free of control characters."""
    text = repr(value)
    if len(text) > SHOWN_VALUE_LENGTH:
        text = text[: SHOWN_VALUE_LENGTH - 3] + "..."
    return terminal_safe(text)


def describe(hint: Any) -> str:
    """An annotation in words: ``list[int]`` -> "a list of integers"."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(arg) for arg in args if arg is not type(None)) + (
            " (or left out)" if type(None) in args else ""
        )
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(arg) for arg in args)
    if origin in (list, tuple, set, frozenset):
        return f"a list of {_plural(args[0]) if args else 'values'}"
    if origin is dict:
        return "a table"
    return _SINGULAR.get(hint, f"a {getattr(hint, '__name__', hint)}")


_SINGULAR: dict[Any, str] = {
    int: "an integer",
    float: "a finite number",
    bool: "true or false",
    str: "a string",
    Path: "a path (a string)",
    dict: "a table",
}


def _plural(hint: Any) -> str:
    return {int: "integers", float: "finite numbers", str: "strings", bool: "booleans"}.get(
        hint, describe(hint).removeprefix("a ").removeprefix("an ") + "s"
    )


def _convert(value: Any, hint: Any) -> Any:
    if hint is Any or hint is object:
        return value
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return _convert_union(value, args)
    if origin is typing.Literal:
        if any(value == arg and type(value) is type(arg) for arg in args):
            return value
        raise _Mismatch
    if origin in (list, tuple, set, frozenset):
        return _convert_collection(value, origin, args)
    if origin is dict:
        if not isinstance(value, dict):
            raise _Mismatch
        return value
    if is_callable_hint(hint):
        return _callable(value)
    checker = _SCALARS.get(hint)
    if checker is not None:
        return checker(value)
    if isinstance(hint, type) and isinstance(value, hint):
        return value
    raise _Mismatch


def _convert_union(value: Any, args: tuple[Any, ...]) -> Any:
    if value is None and type(None) in args:
        return None
    for arg in args:
        if arg is type(None):
            continue
        try:
            return _convert(value, arg)
        except _Mismatch:
            continue
    raise _Mismatch


def _convert_collection(value: Any, origin: type, args: tuple[Any, ...]) -> Any:
    if not isinstance(value, list | tuple | set | frozenset):
        raise _Mismatch
    items = list(value)
    if origin is tuple and args and args[-1] is not Ellipsis:
        if len(items) != len(args):
            raise _Mismatch
        return tuple(_convert(item, arg) for item, arg in zip(items, args, strict=True))
    item_hint = args[0] if args else Any
    converted = [_convert(item, item_hint) for item in items]
    return origin(converted)


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Mismatch
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _Mismatch
    return float(value)


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Mismatch
    return value


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise _Mismatch
    return value


def _path(value: Any) -> Path:
    if isinstance(value, Path):
        return value
    if not isinstance(value, str) or not value or "\x00" in value:
        raise _Mismatch
    return Path(value).expanduser()


_SCALARS: dict[Any, Callable[[Any], Any]] = {
    int: _integer,
    float: _number,
    bool: _boolean,
    str: _string,
    Path: _path,
    type: lambda value: value if isinstance(value, type) else _fail(),
}


def _fail() -> Any:
    raise _Mismatch


def _callable(value: Any) -> Any:
    return value if callable(value) else _fail()


def is_callable_hint(hint: Any) -> bool:
    origin = typing.get_origin(hint)
    return origin is not None and getattr(origin, "__name__", "") == "Callable"


def check_fields(instance: Any, what: str) -> None:
    """Every field of a dataclass instance against its annotation (a plugin's spec, say); the first mismatch
    is a GenbenchError that names ``what`` and the field."""
    for name, hint in field_hints(type(instance)).items():
        value = getattr(instance, name)
        if is_callable_hint(hint):
            if not callable(value):
                raise GenbenchError(f"{what}: field {name!r} must be callable, got {shown(value)}")
            continue
        check_value(value, hint, f"{what}: field {name!r}")


def non_finite_paths(data: Any, path: str = "") -> list[str]:
    """Where a JSON-bound structure holds a NaN or infinity, as ``a.b[2]`` paths (JSON cannot hold them)."""
    if isinstance(data, float) and not math.isfinite(data):
        return [path or "(the value)"]
    if isinstance(data, dict):
        return [found for key, item in data.items() for found in non_finite_paths(item, f"{path}.{key}".lstrip("."))]
    if isinstance(data, list | tuple):
        return [found for index, item in enumerate(data) for found in non_finite_paths(item, f"{path}[{index}]")]
    return []


# ------------------------------------------------------------------------- range checks for plugin configs
# A plugin's config dataclass checks its own values in ``__post_init__`` and raises GenbenchError (or
# ValueError); resolve_config prefixes the model or metric and the CLI prints one line, before any training.
# These two cover the usual cases; a config built in Python gets the same error.


def require_at_least(config: Any, minimum: int, *names: str) -> None:
    """GenbenchError unless each named field is at least ``minimum`` (None, "use the default", passes)."""
    for name in names:
        value = getattr(config, name)
        if _is_number(value) and value < minimum:
            raise GenbenchError(f"{name} must be at least {minimum}, got {value}")


def require_positive(config: Any, *names: str) -> None:
    """GenbenchError unless each named field is greater than 0 (a rate, a pseudocount)."""
    for name in names:
        value = getattr(config, name)
        if _is_number(value) and not value > 0:
            raise GenbenchError(f"{name} must be greater than 0, got {value}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
