"""API key pairs: the accounts of the config file and of the BTCTURK_* variables, keys inline or in files.

Every problem is appended to a list as one line naming the key path or variable; a key's value is never
part of a message.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from exporter.api.account import Account, Secret
from exporter.api.signing import decode_private_key
from exporter.config.yamlload import ReadError, read_limited
from exporter.describe import shown as _shown
from exporter.describe import type_name as _type_name
from exporter.describe import unknown_key as _unknown_key

# API keys are well under a hundred characters; anything much longer is the wrong file.
MAX_KEY_FILE_BYTES = 16384

ACCOUNT_KEYS = ("name", "public_key", "public_key_file", "private_key", "private_key_file")

ENV_PUBLIC_KEY = "BTCTURK_PUBLIC_KEY"
ENV_PRIVATE_KEY = "BTCTURK_PRIVATE_KEY"
ENV_API_URL = "BTCTURK_API_URL"
ENV_GRAPH_API_URL = "BTCTURK_GRAPH_API_URL"
ENV_ACCOUNT_NAME = "default"
ENV_KEY_NAMES = (ENV_PUBLIC_KEY, f"{ENV_PUBLIC_KEY}_FILE", ENV_PRIVATE_KEY, f"{ENV_PRIVATE_KEY}_FILE")
ENV_NAMES = (*ENV_KEY_NAMES, ENV_API_URL, ENV_GRAPH_API_URL)
ENV_PREFIX = "BTCTURK_"
# Kubernetes gives every pod variables for each Service of its namespace: the Service btcturk-exporter
# makes BTCTURK_EXPORTER_SERVICE_HOST, BTCTURK_EXPORTER_PORT_9788_TCP_ADDR, ... They are not settings.
_SERVICE_LINK_RE = re.compile(
    r"[A-Z0-9_]+_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|PORT(_\d+_(TCP|UDP|SCTP)(_(PROTO|PORT|ADDR))?)?)"
)

_MISSING = object()


@dataclass(frozen=True)
class _Source:
    """Where one key value came from: the key path to blame and, for *_file keys, the file read."""

    key: str
    text: str
    path: str | None = None

    def problem(self, what: str) -> str:
        return f"{self.key}: {what}" + (f" (read from {self.path})" if self.path else "")


def _read_secret_file(
    key: str, raw: object, base_dir: str, problems: list[str], warnings: list[str]
) -> _Source | None:
    """Read a key file (Docker/Kubernetes secret style); warn when other users can read it."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        problems.append(f"{key}: must not be empty")
        return None
    if not isinstance(raw, str):
        problems.append(f"{key}: expected a file path, got {_type_name(raw)}")
        return None
    path = os.path.join(base_dir, raw)
    try:
        data, mode = read_limited(path, MAX_KEY_FILE_BYTES)
        text = data.decode("utf-8")
    except ReadError as exc:
        reason = str(exc)
        if reason.startswith("larger than"):
            problems.append(f"{key}: {path} is too large for a key file ({reason})")
        else:
            problems.append(f"{key}: cannot read {path}: {reason}")
        return None
    except UnicodeDecodeError:
        problems.append(f"{key}: cannot read {path}: not UTF-8 text")
        return None
    except ValueError:  # a path holding a NUL character or a lone surrogate
        problems.append(f"{key}: not a usable file path: {_shown(raw)}")
        return None
    # Group access is how Kubernetes (fsGroup) and Docker give keys to a non-root user; world access is not.
    if mode & 0o007:
        warnings.append(f"{key}: {path} is readable by other users (chmod 600 recommended)")
    return _Source(key, text.strip(), path)


def _key_source(
    inline: tuple[str, str, object],
    file: tuple[str, str, object],
    base_dir: str,
    problems: list[str],
    warnings: list[str],
) -> _Source | None:
    """Pick a key given inline or through a file; each tuple is (key path, display name, raw or _MISSING)."""
    (inline_key, inline_name, inline_raw), (file_key, file_name, file_raw) = inline, file
    if inline_raw is not _MISSING and file_raw is not _MISSING:
        problems.append(f"{file_key}: set only one of {inline_name} and {file_name}")
        return None
    if file_raw is not _MISSING:
        return _read_secret_file(file_key, file_raw, base_dir, problems, warnings)
    if inline_raw is None:
        inline_raw = ""
    if not isinstance(inline_raw, str):
        # Name the type only: the value may be a private key that YAML happened to read as a number.
        problems.append(f"{inline_key}: expected a string, got {_type_name(inline_raw)} (quote the value)")
        return None
    return _Source(inline_key, inline_raw.strip())


def _non_empty(source: _Source | None, problems: list[str]) -> _Source | None:
    """The source when it holds a key; an empty one is reported here, a missing one was already."""
    if source is not None and not source.text:
        problems.append(source.problem("must not be empty"))
        return None
    return source


def _public_key(source: _Source | None, problems: list[str]) -> str | None:
    source = _non_empty(source, problems)
    if source is None:
        return None
    if any(c.isspace() for c in source.text):
        problems.append(source.problem("must not contain whitespace"))
        return None
    if not (source.text.isascii() and source.text.isprintable()):
        # It is sent as the X-PCK header: anything beyond Latin-1 cannot even be encoded there.
        problems.append(source.problem("must be printable ASCII (API keys are)"))
        return None
    return source.text


def _private_key(source: _Source | None, problems: list[str]) -> Secret | None:
    source = _non_empty(source, problems)
    if source is None:
        return None
    try:
        decode_private_key(source.text)
    except ValueError as exc:
        # decode_private_key's messages never contain the key.
        problems.append(source.problem(str(exc)))
        return None
    return Secret(source.text)


def env_value(environ: Mapping[str, str], name: str) -> str | None:
    """The variable's value, or None when unset or empty."""
    # An empty value is refused by check_environment, so here it can only mean unset.
    value = environ.get(name)
    return value if value is not None and value.strip() else None


def check_environment(environ: Mapping[str, str]) -> list[str]:
    """Problems with BTCTURK_* variables: unknown names (a typo silently ignored is a lost key) and empty
    values (set but empty is neither a key nor unset)."""
    return environment_problems(environ)[0]


def environment_problems(environ: Mapping[str, str]) -> tuple[list[str], set[str]]:
    """check_environment's problems, and the known names suggested for misspelt ones."""
    problems: list[str] = []
    suggested: set[str] = set()
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX):
            continue
        if name in ENV_NAMES:
            if not environ[name].strip():
                problems.append(f"{name}: set but empty (unset it or give a value)")
        elif not _SERVICE_LINK_RE.fullmatch(name):
            # Compared without the shared prefix, which would make every name look close.
            suffixes = [known.removeprefix(ENV_PREFIX) for known in ENV_NAMES]
            close = difflib.get_close_matches(name.removeprefix(ENV_PREFIX), suffixes, n=1)
            hint = f"did you mean {ENV_PREFIX}{close[0]}? " if close else ""
            suggested.update(ENV_PREFIX + c for c in close)
            problems.append(
                f"{name}: unknown environment variable ({hint}the exporter reads {', '.join(ENV_NAMES)})"
            )
    return problems, suggested


def check_demo(config_file: str | None, environ: Mapping[str, str]) -> list[str]:
    """Problems with --demo: it runs on made-up accounts, so real settings next to it are a mistake."""
    problems = check_environment(environ)
    if config_file is not None:
        problems.append("--demo: cannot be combined with --config.file (the demo uses made-up accounts)")
    given = [name for name in ENV_NAMES if name in environ]
    if given:
        problems.append(
            f"--demo: cannot be combined with {', '.join(given)} (the demo uses made-up accounts on the "
            "built-in simulator); unset them or drop --demo"
        )
    return problems


# --- accounts ------------------------------------------------------------------------------------


# config.example.yaml's made-up public keys start with this; no key BTCTurk issues does.
PLACEHOLDER_PREFIX = "example-public-key"


def file_account(
    index: int, raw: object, base_dir: str, problems: list[str], warnings: list[str]
) -> tuple[str | None, Account | None]:
    """Validate accounts[index]; return its name (when valid) and the account (when entirely valid)."""
    path = f"accounts[{index}]"
    if not isinstance(raw, Mapping):
        problems.append(
            f"{path}: expected a mapping with name, public_key and private_key, got {_type_name(raw)}"
        )
        return None, None
    before = len(problems)
    problems.extend(_unknown_key(f"{path}.", key, ACCOUNT_KEYS) for key in raw if key not in ACCOUNT_KEYS)

    name: str | None = None
    raw_name = raw.get("name")
    if "name" not in raw:
        problems.append(f"{path}.name: required")
    elif raw_name is None or (isinstance(raw_name, str) and not raw_name.strip()):
        problems.append(f"{path}.name: must not be empty")
    elif not isinstance(raw_name, str):
        problems.append(f"{path}.name: expected a string, got {_type_name(raw_name)} (quote the value)")
    elif any(0xD800 <= ord(c) <= 0xDFFF for c in raw_name):
        # A YAML escape such as "\ud800" makes a lone surrogate; no UTF-8 label or log line can hold it.
        problems.append(f"{path}.name: not valid Unicode text, got {_shown(raw_name)}")
    else:
        name = raw_name.strip()

    sources: dict[str, _Source | None] = {}
    for kind in ("public_key", "private_key"):
        inline, file = raw.get(kind, _MISSING), raw.get(f"{kind}_file", _MISSING)
        if inline is _MISSING and file is _MISSING:
            problems.append(f"{path}.{kind}: required (or {kind}_file)")
            sources[kind] = None
        else:
            sources[kind] = _key_source(
                (f"{path}.{kind}", kind, inline),
                (f"{path}.{kind}_file", f"{kind}_file", file),
                base_dir,
                problems,
                warnings,
            )
    public = _public_key(sources["public_key"], problems)
    private = _private_key(sources["private_key"], problems)
    if len(problems) > before or name is None or public is None or private is None:
        return name, None
    if public.startswith(PLACEHOLDER_PREFIX):
        warnings.append(
            f"{path}.public_key: {_shown(public)} is a placeholder from config.example.yaml: put the "
            "account's own key pair here, or every poll of it is refused with 401"
        )
    return name, Account(name=name, public_key=public, private_key=private)


def env_account(
    environ: Mapping[str, str], problems: list[str], warnings: list[str], misspelt: set[str]
) -> tuple[bool, Account | None]:
    """The account BTCTURK_* variables define: (whether any key variable is set, the account when valid)."""
    names = [name for kind in (ENV_PUBLIC_KEY, ENV_PRIVATE_KEY) for name in (kind, f"{kind}_FILE")]
    raw: dict[str, object] = {name: env_value(environ, name) for name in names}
    if all(value is None for value in raw.values()):
        return False, None
    raw = {name: _MISSING if value is None else value for name, value in raw.items()}
    before = len(problems)
    sources: dict[str, _Source | None] = {}
    for kind, other in ((ENV_PUBLIC_KEY, ENV_PRIVATE_KEY), (ENV_PRIVATE_KEY, ENV_PUBLIC_KEY)):
        file = f"{kind}_FILE"
        if raw[kind] is _MISSING and raw[file] is _MISSING:
            # Unless a misspelling of it was reported already: one mistake, one line.
            if not misspelt & {kind, file}:
                problems.append(f"{kind}: required when {other} is set (or set {file})")
            sources[kind] = None
        else:
            # Relative _FILE paths are relative to the working directory, like any command-line path.
            sources[kind] = _key_source(
                (kind, kind, raw[kind]), (file, file, raw[file]), "", problems, warnings
            )
    public = _public_key(sources[ENV_PUBLIC_KEY], problems)
    private = _private_key(sources[ENV_PRIVATE_KEY], problems)
    if len(problems) > before or public is None or private is None:
        return True, None
    return True, Account(name=ENV_ACCOUNT_NAME, public_key=public, private_key=private)
