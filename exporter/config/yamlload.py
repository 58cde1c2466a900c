"""Reading configuration files safely: regular files under a size cap, YAML that refuses repeated keys.

Shared by the main configuration, the key files and the web configuration, so each refuses a FIFO,
a device or a huge file in the same way instead of hanging or reading forever.
"""

from __future__ import annotations

import os
import stat
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, ScalarNode

try:  # libyaml is five times faster on big files; PyYAML's wheels bundle it, a source build may not.
    from yaml import CSafeLoader as _FastLoader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _FastLoader  # type: ignore[assignment]

# A configuration is a few kilobytes; a cap keeps a wrong path (a log, a dump) from taking minutes and
# gigabytes to parse. Measured by benchmarks/config_load.py.
MAX_CONFIG_BYTES = 1024 * 1024

# Broken files up to this size are parsed a second time for a clearer message; see load_yaml.
EXACT_ERRORS_UP_TO = 64 * 1024
_MERGE_TAG = "tag:yaml.org,2002:merge"
# Python's int() refuses over 4300 digits with a ValueError that would escape as a traceback.
MAX_INT_DIGITS = 1000


class ReadError(Exception):
    """A file could not be read; str() is the reason alone, for the caller to prefix with key and path."""


def read_limited(path: str, limit: int) -> tuple[bytes, int]:
    """Read a regular file of at most `limit` bytes; return its bytes and its mode, or raise ReadError.

    Opened non-blocking, so a FIFO without a writer cannot hang the caller, and checked with fstat on
    the open descriptor, so the file checked is the file read. ValueError for a path holding a NUL.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise ReadError(exc.strerror or str(exc)) from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise ReadError(os.strerror(21))  # EISDIR: the wording open() gives elsewhere
        if not stat.S_ISREG(mode):
            raise ReadError("not a regular file")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise ReadError(f"larger than {_size(limit)}")
        return b"".join(chunks), mode
    except OSError as exc:
        raise ReadError(exc.strerror or str(exc)) from None
    finally:
        os.close(fd)


def _size(limit: int) -> str:
    return f"{limit // 1024 // 1024} MiB" if limit % (1024 * 1024) == 0 else f"{limit} bytes"


class _UniqueKeys(SafeConstructor):
    """Refuses a key given twice in one mapping, which PyYAML would otherwise silently let win."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        first: dict[object, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:  # `<<: *base` may be overridden by design
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                line = first.get(key)
            except TypeError:  # an unhashable key: SafeConstructor reports it
                continue
            if line is not None:
                raise ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line {line + 1})", key_node.start_mark
                )
            first[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: ScalarNode) -> int:
        """An integer, refusing ones longer than int() converts (it raises a bare ValueError there)."""
        if len(str(node.value)) > MAX_INT_DIGITS:
            raise ConstructorError(
                None, None, f"a number of over {MAX_INT_DIGITS} digits is not a setting", node.start_mark
            )
        value: int = super().construct_yaml_int(node)
        return value


class _FastUniqueLoader(_UniqueKeys, _FastLoader):
    """libyaml's parser, where available."""


class _ExactUniqueLoader(_UniqueKeys, yaml.SafeLoader):
    """The pure-Python parser, whose error messages say more (it names what it found)."""


def _fast_int(loader: _FastUniqueLoader, node: ScalarNode) -> int:
    return loader.construct_yaml_int(node)


def _exact_int(loader: _ExactUniqueLoader, node: ScalarNode) -> int:
    return loader.construct_yaml_int(node)


def _timestamp_as_written(loader: yaml.SafeLoader, node: ScalarNode) -> str:
    """A date or time stays the text written: `since: 2025-01-31` unquoted, as the docs show it, is
    the setting's own syntax (parsed, and refused with its key, by its parser), and `2025-13-01` must
    not escape from PyYAML's date constructor as a bare ValueError."""
    return str(node.value)


_FastUniqueLoader.add_constructor("tag:yaml.org,2002:int", _fast_int)
_ExactUniqueLoader.add_constructor("tag:yaml.org,2002:int", _exact_int)
for _loader in (_FastUniqueLoader, _ExactUniqueLoader):
    _loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_written)


def load_yaml(text: str) -> Any:
    """Parse one YAML document safely, refusing repeated keys; raise yaml.YAMLError."""
    try:
        return yaml.load(text, Loader=_FastUniqueLoader)
    except yaml.YAMLError:
        if len(text) > EXACT_ERRORS_UP_TO:
            raise
        # Parse again for the pure-Python parser's clearer message (same position): it names what it
        # found. Only for ordinary sizes, as it is five times slower than libyaml.
        return yaml.load(text, Loader=_ExactUniqueLoader)
