"""Naming what is wrong with a user-supplied value without echoing it whole (it may be a secret)."""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Mapping, Sequence
from typing import NoReturn


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


def unknown_flag(word: str, flags: Sequence[str]) -> str:
    """The problem line for a command-line word no flag took, suggesting the flag it is closest to."""
    if not word.startswith("-"):
        return f"unexpected argument {shown(word)} (every setting is a --flag; --help lists them)"
    name = word.split("=", 1)[0]
    # A prefix first (--conf, --web.listen): abbreviations are refused, so they are the usual slip.
    close = [f for f in flags if f.startswith(name)][:1] or difflib.get_close_matches(name, flags, n=1)
    hint = f"did you mean {close[0]}?" if close else "--help lists the flags"
    return f"unknown flag {shown(name)[1:-1]}; {hint}"


class FlagParser(argparse.ArgumentParser):
    """argparse with each mistake in one line, as for config keys and variables: not the usage first."""

    def error(self, message: str) -> NoReturn:
        """Exit 2 with one line naming the mistake (and, for an unknown flag, the flag meant)."""
        prefix = "unrecognized arguments: "
        if message.startswith(prefix):
            flags = [f for action in self._actions for f in action.option_strings if f.startswith("--")]
            message = unknown_flag(message[len(prefix) :].split(" ")[0], flags)
        else:
            message += " (--help lists the flags)"
        self.exit(2, f"{self.prog}: {message}\n")
