"""Naming what is wrong with a user-supplied value without echoing it whole (it may be a secret)."""

from __future__ import annotations

import difflib
from collections.abc import Mapping


def type_name(value: object) -> str:
    """The YAML-ish name of a value's type, for messages that must not echo the value itself."""
    if value is None:
        return "null"
    for kind, name in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string")):
        if isinstance(value, kind):
            return name
    if isinstance(value, Mapping):
        return "mapping"
    if isinstance(value, list | tuple):
        return "list"
    return type(value).__name__


def shown(value: str, limit: int = 40) -> str:
    """repr() of a user-supplied (non-secret) string, shortened so one bad value cannot flood the output."""
    return repr(value if len(value) <= limit else value[: limit - 1] + "…")


def unknown_key(path: str, key: object, valid: tuple[str, ...]) -> str:
    """The problem line for an unknown key, suggesting the closest valid one."""
    name = str(key)
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    return f"{path}{name}: unknown key ({hint}expected one of: {', '.join(valid)})"
