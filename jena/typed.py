"""Typed values from text and from TOML/JSON tables: the one ``key=value`` parser (``--set``
of ``jena sweep`` and ``jena train``), the one value parser, and the one checker of values
against a dataclass's type hints (sweep files)."""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from collections.abc import Iterable
from typing import Any

from jena.errors import ConfigError, FieldError


def parse_value(text: str) -> Any:
    """``key=value`` text as a TOML value (``2``, ``0.5``, ``true``, ``[16, 32]``, ``"adam"``);
    anything that is not TOML is the bare string."""
    try:
        return tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        return text.strip()


def parse_assignments(items: Iterable[str], example: str) -> list[tuple[str, Any]]:
    """``key=value`` items as (key, TOML value); an item without ``=`` is a ConfigError that
    shows ``example`` (``fidelity.max_epochs=2``)."""
    out = []
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. --set {example}")
        key, text = item.split("=", 1)
        out.append((key.strip(), parse_value(text)))
    return out


_NAMES: dict[Any, str] = {
    bool: "true or false",
    int: "an integer",
    float: "a number",
    str: "a string",
    type(None): "unset",
}
_PLURAL = {bool: "booleans", int: "integers", float: "numbers", str: "strings"}


def type_name(hint: Any) -> str:
    """``an integer``, ``a list of integers``, ``a string or unset``, ..."""
    if hint in _NAMES:
        return _NAMES[hint]
    origin = typing.get_origin(hint)
    if origin in (tuple, list):
        inner = typing.get_args(hint)[0]
        return f"a list of {_PLURAL.get(inner, 'values')}"
    if origin is dict or dataclasses.is_dataclass(hint):
        return "a table"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(a) for a in typing.get_args(hint))
    return str(hint)


def coerce(hint: Any, value: Any) -> tuple[bool, Any]:
    """(ok, value as ``hint``): ints become floats where a float is wanted, lists tuples where a
    tuple is; bools are never numbers."""
    if hint is Any:
        return True, value
    if hint is type(None):
        return value is None, value
    if hint is bool:
        return isinstance(value, bool), value
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return ok, float(value) if ok else value
    if hint is str:
        return isinstance(value, str), value
    origin = typing.get_origin(hint)
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            return False, value
        inner = typing.get_args(hint)[0]
        items = [coerce(inner, v) for v in value]
        out = [v for _, v in items]
        return all(ok for ok, _ in items), tuple(out) if origin is tuple else out
    if origin is dict:
        return isinstance(value, dict), dict(value) if isinstance(value, dict) else value
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(hint):
            ok, coerced = coerce(arg, value)
            if ok:
                return True, coerced
        return False, value
    raise TypeError(f"unsupported field type {hint!r}")  # a bug in a dataclass of ours


def build(cls: type, raw: dict[str, Any], where: str, prefix: str = "") -> Any:
    """An instance of the dataclass ``cls`` from a table: unknown keys and wrongly typed values
    are one-line ConfigErrors naming ``where`` and the (dotted) key; nested dataclasses are
    tables. A field with ``metadata={"key": False}`` is not a key of the table."""
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls) if f.metadata.get("key", True)}
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        full = f"{prefix}.{key}" if prefix else key
        if key not in fields:
            raise ConfigError(f"{where}: unknown key {full!r} (known: {', '.join(sorted(fields))})")
        kwargs[key] = check(value, hints[key], full, where)
    try:
        return cls(**kwargs)
    except ConfigError as exc:  # the dataclass checks its own values
        raise ConfigError(f"{where}: {exc}") from None


def check(value: Any, hint: Any, key: str, where: str) -> Any:
    """``value`` as ``hint`` or a ConfigError ``where: key: expected ..., got ...``."""
    inner = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(inner) == 1:
        if value is None:
            return None
        hint = inner[0]
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: [{key}]: expected a table")
        return build(hint, value, where, prefix=key)  # type: ignore[arg-type]
    ok, coerced = coerce(hint, value)
    if not ok:
        raise FieldError(where, key, f"expected {type_name(hint)}, got {value!r}")
    return coerced
