"""Checking a web configuration file: every problem collected with its key path, and typed reads of values."""

from __future__ import annotations

from typing import Any


class Problems:
    """Collects every problem in the file so the user can fix them in one go."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lines: list[str] = []

    def add(self, where: str, message: str) -> None:
        """One problem at key path `where` (empty for the file as a whole)."""
        self.lines.append(f"{self.path}: {where}: {message}" if where else f"{self.path}: {message}")


def section(value: object, where: str, allowed: frozenset[str], problems: Problems) -> dict[str, Any]:
    """The mapping at `where` (empty when absent), its unknown keys reported."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.add(where, f"expected a mapping, got {kind(value)}")
        return {}
    for key in value:
        if key not in allowed:
            prefix = f"{where}." if where else ""
            problems.add(f"{prefix}{key}", f"unknown key (known: {', '.join(sorted(allowed))})")
    return value


def kind(value: object) -> str:
    """What a YAML value is, for an error message; never the value itself."""
    return "nothing" if value is None else type(value).__name__


def string(mapping: dict[str, Any], key: str, where: str, problems: Problems) -> str | None:
    """The string at `where.key`, None when absent or empty."""
    value = mapping.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        problems.add(f"{where}.{key}", f"expected a string, got {kind(value)}")
        return None
    return value


def read_file(path: str, where: str, problems: Problems) -> bytes | None:
    """The bytes of a file the config names, None (reported) when it cannot be read."""
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as exc:
        problems.add(where, f"cannot read {path}: {exc.strerror or exc}")
        return None
