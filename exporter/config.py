"""Configuration: YAML file plus BTCTURK_* environment variables, validated in one pass."""

from __future__ import annotations

import difflib
import math
import os
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from exporter.durations import DurationError, format_duration, parse_duration_ms
from exporter.signing import decode_private_key
from exporter.yamlload import MAX_CONFIG_BYTES, ReadError, load_yaml, read_limited

BALANCE_CALLS_PER_MINUTE = 120
TICKER_CALLS_PER_MINUTE = 600
# API keys are well under a hundred characters; anything much longer is the wrong file.
MAX_KEY_FILE_BYTES = 16384

DEFAULT_API_URL = "https://api.btcturk.com"
DEFAULT_POLL_INTERVAL = 30.0
DEFAULT_TIMEOUT = 10.0
STALENESS_FACTOR = 10
VALUE_PRICES = ("last", "bid", "mid")
# Upper bounds, in seconds: far beyond any sensible setting, well within what threading's waits accept
# (a poll_interval of 3000000h overflowed Event.wait and logged errors in a tight loop).
MAX_DURATIONS = {"poll_interval": 86_400.0, "timeout": 600.0, "max_staleness": 30 * 86_400.0}

TOP_LEVEL_KEYS = (
    "api_url",
    "poll_interval",
    "timeout",
    "max_staleness",
    "value_currencies",
    "value_price",
    "export_all_pairs",
    "accounts",
)
ACCOUNT_KEYS = ("name", "public_key", "public_key_file", "private_key", "private_key_file")

ENV_PUBLIC_KEY = "BTCTURK_PUBLIC_KEY"
ENV_PRIVATE_KEY = "BTCTURK_PRIVATE_KEY"
ENV_API_URL = "BTCTURK_API_URL"
ENV_ACCOUNT_NAME = "default"
ENV_KEY_NAMES = (ENV_PUBLIC_KEY, f"{ENV_PUBLIC_KEY}_FILE", ENV_PRIVATE_KEY, f"{ENV_PRIVATE_KEY}_FILE")
ENV_NAMES = (*ENV_KEY_NAMES, ENV_API_URL)
ENV_PREFIX = "BTCTURK_"
# Kubernetes gives every pod variables for each Service of its namespace: the Service btcturk-exporter
# makes BTCTURK_EXPORTER_SERVICE_HOST, BTCTURK_EXPORTER_PORT_9788_TCP_ADDR, ... They are not settings.
_SERVICE_LINK_RE = re.compile(
    r"[A-Z0-9_]+_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|PORT(_\d+_(TCP|UDP|SCTP)(_(PROTO|PORT|ADDR))?)?)"
)
NO_ACCOUNTS = (
    f"no accounts configured: looked for --config.file, {ENV_PUBLIC_KEY}/{ENV_PRIVATE_KEY} and "
    f"{ENV_PUBLIC_KEY}_FILE/{ENV_PRIVATE_KEY}_FILE and found none; "
    "run with --demo to try the exporter on made-up data"
)

_MASK = "********"
_MISSING = object()
_SYMBOL_RE = re.compile(r"[A-Z0-9]+")
# Every character str.splitlines() breaks on, mapped to its escape (\n, \x85, \u2028, ...).
_LINE_BREAKS = str.maketrans({c: repr(c)[1:-1] for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"})


class Secret:
    """A secret string that never shows its value in repr, str or format."""

    # A plain class rather than a dataclass so dataclasses.asdict(config) cannot unwrap the value.
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret value; call only where it is used, never to log or print."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({_MASK!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash((Secret, self._value))


@dataclass(frozen=True)
class Account:
    """One BTCTurk API key pair to poll."""

    name: str
    public_key: str
    private_key: Secret

    def private_key_bytes(self) -> bytes:
        """The decoded private key (load_config has already checked that it decodes)."""
        return decode_private_key(self.private_key.reveal())


@dataclass(frozen=True)
class Config:
    """Validated exporter settings; durations are in seconds."""

    accounts: tuple[Account, ...]
    api_url: str = DEFAULT_API_URL
    poll_interval: float = DEFAULT_POLL_INTERVAL
    timeout: float = DEFAULT_TIMEOUT
    max_staleness: float = STALENESS_FACTOR * DEFAULT_POLL_INTERVAL
    value_currencies: tuple[str, ...] = ("TRY", "USDT")
    value_price: str = "last"
    export_all_pairs: bool = False
    warnings: tuple[str, ...] = ()


class ConfigError(Exception):
    """Every problem found in the configuration, one line each, as "key.path: what is wrong"."""

    def __init__(self, problems: list[str] | str) -> None:
        problems = [problems] if isinstance(problems, str) else list(problems)
        # A key or path from the file may hold a line break; one problem must stay one line.
        self.problems = [problem.translate(_LINE_BREAKS) for problem in problems]
        super().__init__("\n".join(self.problems))

    def __str__(self) -> str:
        return "\n".join(self.problems)


# --- small helpers -------------------------------------------------------------------------------


def _type_name(value: object) -> str:
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


def _shown(value: str, limit: int = 40) -> str:
    """repr() of a user-supplied (non-secret) string, shortened so one bad value cannot flood the output."""
    return repr(value if len(value) <= limit else value[: limit - 1] + "…")


def _format_duration(seconds: float) -> str:
    """Render seconds in the syntax parse_duration accepts: 90 -> '1m30s', 0.5 -> '500ms'."""
    return format_duration(seconds)


def _format_number(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _unknown_key(path: str, key: object, valid: tuple[str, ...]) -> str:
    name = str(key)
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    return f"{path}{name}: unknown key ({hint}expected one of: {', '.join(valid)})"


# --- durations -----------------------------------------------------------------------------------


def parse_duration(value: object, key: str, maximum: float | None = None) -> float:
    """Seconds from "30s", "1h30m", "500ms", "1d" or whole seconds, at most `maximum` (by default the
    key's bound in MAX_DURATIONS); raise ConfigError naming key."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"{key}: expected a duration, got {_type_name(value)}")
    if isinstance(value, float):
        got = f"{value:g}"
        raise ConfigError(f"{key}: fractions are not allowed (write 1s500ms, not 1.5), got {got}")
    bound = maximum if maximum is not None else MAX_DURATIONS.get(key, MAX_DURATIONS["poll_interval"])
    try:
        return parse_duration_ms(value, round(bound * 1000)) / 1000
    except DurationError as exc:
        raise ConfigError(f"{key}: {exc}") from None


# --- reading values ------------------------------------------------------------------------------


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


def _public_key(source: _Source | None, problems: list[str]) -> str | None:
    if source is None:
        return None
    if not source.text:
        problems.append(source.problem("must not be empty"))
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
    if source is None:
        return None
    if not source.text:
        problems.append(source.problem("must not be empty"))
        return None
    try:
        decode_private_key(source.text)
    except ValueError as exc:
        # decode_private_key's messages never contain the key.
        problems.append(source.problem(str(exc)))
        return None
    return Secret(source.text)


def _api_url(raw: object, key: str, problems: list[str]) -> str | None:
    if not isinstance(raw, str):
        problems.append(f"{key}: expected a string, got {_type_name(raw)}")
        return None
    url = raw.strip().rstrip("/")
    try:
        parts = urllib.parse.urlsplit(url)  # ValueError for an unclosed [IPv6 bracket
    except ValueError:
        parts = urllib.parse.urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        problems.append(f"{key}: must be an http:// or https:// URL, got {_shown(raw)}")
        return None
    try:
        port = parts.port  # ValueError unless a number in 0-65535
    except ValueError:
        port = 0
    if port == 0:
        problems.append(f"{key}: the port must be a number from 1 to 65535, got {_shown(raw)}")
        return None
    try:
        # What the HTTP client will do with it: a label over 63 characters (or unencodable) fails there.
        parts.hostname.encode("idna")
    except UnicodeError:
        problems.append(f"{key}: not a valid host name, got {_shown(raw)}")
        return None
    if parts.username is not None or parts.password is not None:
        # The URL is logged at start; a password in it would be too.
        problems.append(f"{key}: must not hold a user name or password (give the host only)")
        return None
    if "api" in parts.path.lower().split("/"):
        # The client appends /api/v1/... and /api/v2/...: .../api/v2 would request /api/v2/api/v2/ticker.
        base = urllib.parse.urlunsplit((parts.scheme, parts.netloc, "", "", ""))
        problems.append(
            f"{key}: give the base URL without the API path (the exporter adds /api/v1 and /api/v2), "
            f"like {base!r}, got {_shown(raw)}"
        )
        return None
    return url


def _duration(data: Mapping[str, Any], key: str, problems: list[str]) -> float | None:
    try:
        return parse_duration(data[key], key)
    except ConfigError as exc:
        problems.extend(exc.problems)
        return None


def _value_currencies(raw: object, problems: list[str]) -> tuple[str, ...] | None:
    key = "value_currencies"
    if not isinstance(raw, list) or not raw:
        problems.append(f"{key}: must be a non-empty list of asset symbols, got {_type_name(raw)}")
        return None
    symbols: list[str] = []
    ok = True
    for index, item in enumerate(raw):
        symbol = item.strip().upper() if isinstance(item, str) else None
        if symbol is None or not _SYMBOL_RE.fullmatch(symbol):
            got = _shown(item) if isinstance(item, str) else _type_name(item)
            problems.append(f"{key}[{index}]: must be an asset symbol like TRY, got {got}")
            ok = False
        elif symbol in symbols:
            problems.append(f"{key}[{index}]: duplicate {symbol!r} (also {key}[{symbols.index(symbol)}])")
            ok = False
        symbols.append(symbol or "")
    return tuple(symbols) if ok else None


def _value_price(raw: object, problems: list[str]) -> str | None:
    choice = raw.strip().lower() if isinstance(raw, str) else None
    if choice not in VALUE_PRICES:
        got = _shown(raw) if isinstance(raw, str) else _type_name(raw)
        problems.append(f"value_price: must be one of {', '.join(VALUE_PRICES)}, got {got}")
        return None
    return choice


def _env(environ: Mapping[str, str], name: str) -> str | None:
    # An empty value is refused by check_environment, so here it can only mean unset.
    value = environ.get(name)
    return value if value is not None and value.strip() else None


def check_environment(environ: Mapping[str, str]) -> list[str]:
    """Problems with BTCTURK_* variables: unknown names (a typo silently ignored is a lost key) and empty
    values (set but empty is neither a key nor unset)."""
    return _check_environment(environ)[0]


def _check_environment(environ: Mapping[str, str]) -> tuple[list[str], set[str]]:
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


def _file_account(
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
    return name, Account(name=name, public_key=public, private_key=private)


def _env_account(
    environ: Mapping[str, str], problems: list[str], warnings: list[str], misspelt: set[str]
) -> tuple[bool, Account | None]:
    """The account BTCTURK_* variables define: (whether any key variable is set, the account when valid)."""
    names = [name for kind in (ENV_PUBLIC_KEY, ENV_PRIVATE_KEY) for name in (kind, f"{kind}_FILE")]
    raw: dict[str, object] = {name: _env(environ, name) for name in names}
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


# --- the whole configuration ---------------------------------------------------------------------


def _read_yaml(path: str) -> tuple[Mapping[str, Any], str | None]:
    """The file's top-level mapping, or a one-line problem naming the file."""
    try:
        text = read_limited(path, MAX_CONFIG_BYTES)[0].decode("utf-8")
    except ReadError as exc:
        return {}, f"{path}: cannot read config file: {exc}"
    except UnicodeDecodeError:
        return {}, f"{path}: cannot read config file: not UTF-8 text"
    except ValueError:  # a path holding a NUL character
        return {}, f"{path}: cannot read config file: not a usable file path"
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        # Only the error's own words and position: str(exc) quotes the offending line, which may hold a key.
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        words = [str(w) for w in (getattr(exc, "context", None), getattr(exc, "problem", None)) if w]
        return {}, f"{path}: invalid YAML{where}: {', '.join(words) or type(exc).__name__}"
    if data is None:
        return {}, None
    if not isinstance(data, Mapping):
        return {}, f"{path}: the top level must be a mapping of settings, got {_type_name(data)}"
    return data, None


def _check_budget(interval: float, accounts: int, problems: list[str]) -> None:
    """Refuse poll intervals that would exceed the per-IP rate limits, which all accounts share."""
    for per_cycle, limit, what in (
        (accounts, BALANCE_CALLS_PER_MINUTE, "balance"),
        (1, TICKER_CALLS_PER_MINUTE, "ticker"),
    ):
        if per_cycle == 0 or per_cycle * 60 <= limit * interval:
            continue
        needed = per_cycle * 60 / limit
        # Advice rounded up to whole seconds (whole ms below 1s): exactly at the limit leaves no slack.
        advice = math.ceil(needed) if needed >= 1 else math.ceil(needed * 1000) / 1000
        who = _plural(accounts, "account") if what == "balance" else "1 ticker call"
        verb = "needs" if per_cycle == 1 else "need"
        problems.append(
            f"poll_interval: {who} every {_format_duration(interval)} {verb} "
            f"{_format_number(per_cycle * 60 / interval)} {what} calls a minute, "
            f"over the API's per-IP limit of {limit}; use at least {_format_duration(advice)}"
        )


def _intervals(
    data: Mapping[str, Any], problems: list[str]
) -> tuple[float | None, float | None, float | None]:
    """poll_interval, timeout and max_staleness, checked against each other."""
    interval = (
        _duration(data, "poll_interval", problems) if "poll_interval" in data else DEFAULT_POLL_INTERVAL
    )
    timeout = _duration(data, "timeout", problems) if "timeout" in data else None
    staleness = _duration(data, "max_staleness", problems) if "max_staleness" in data else None
    if interval is None:
        return None, timeout, staleness
    # Defaults follow poll_interval, so setting only poll_interval can never make them invalid.
    if "timeout" not in data:
        timeout = min(DEFAULT_TIMEOUT, interval / 2)
    if "max_staleness" not in data:
        staleness = STALENESS_FACTOR * interval
    if timeout is not None and timeout >= interval:
        problems.append(
            f"timeout: must be shorter than poll_interval ({_format_duration(interval)}), "
            f"got {_format_duration(timeout)}"
        )
    if staleness is not None and staleness < interval:
        problems.append(
            f"max_staleness: must be at least poll_interval ({_format_duration(interval)}), "
            f"got {_format_duration(staleness)}"
        )
    return interval, timeout, staleness


def load_config(path: str | None, environ: Mapping[str, str]) -> Config:
    """Load the YAML file (if any) and BTCTURK_* variables; raise one ConfigError listing every problem."""
    problems, misspelt = _check_environment(environ)
    warnings: list[str] = []
    data: Mapping[str, Any] = {}
    file_read = False
    if path is not None:
        data, problem = _read_yaml(path)
        if problem is not None:
            problems.append(problem)
        file_read = problem is None
    base_dir = os.path.dirname(os.path.abspath(path)) if path is not None else ""
    problems.extend(_unknown_key("", key, TOP_LEVEL_KEYS) for key in data if key not in TOP_LEVEL_KEYS)

    api_url = _api_url(data["api_url"], "api_url", problems) if "api_url" in data else DEFAULT_API_URL
    if (env_url := _env(environ, ENV_API_URL)) is not None:
        api_url = _api_url(env_url, ENV_API_URL, problems)
    interval, timeout, staleness = _intervals(data, problems)
    currencies = _value_currencies(data["value_currencies"], problems) if "value_currencies" in data else None
    price = _value_price(data["value_price"], problems) if "value_price" in data else "last"
    export_all = data.get("export_all_pairs", False)
    if not isinstance(export_all, bool):
        problems.append(f"export_all_pairs: expected true or false, got {_type_name(export_all)}")

    raw_accounts = data.get("accounts")
    if raw_accounts is not None and not isinstance(raw_accounts, list):
        problems.append(f"accounts: expected a list of accounts, got {_type_name(raw_accounts)}")
    entries = raw_accounts if isinstance(raw_accounts, list) else []
    accounts: list[Account] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(entries):
        name, account = _file_account(index, raw, base_dir, problems, warnings)
        if name is not None and name in seen:
            problems.append(
                f"accounts[{index}].name: duplicate account name {name!r} (also accounts[{seen[name]}])"
            )
        elif name is not None:
            seen[name] = index
        if account is not None:
            accounts.append(account)

    env_given, env_account = _env_account(environ, problems, warnings, misspelt)
    if env_given and ENV_ACCOUNT_NAME in seen:
        problems.append(
            f"accounts[{seen[ENV_ACCOUNT_NAME]}].name: duplicate account name {ENV_ACCOUNT_NAME!r} "
            f"(also defined by {ENV_PUBLIC_KEY} and {ENV_PRIVATE_KEY})"
        )
    if env_account is not None:
        accounts.append(env_account)

    if file_read and not env_given and raw_accounts in (None, []):
        problems.append(
            f"accounts: at least one account is required (or set {ENV_PUBLIC_KEY} and {ENV_PRIVATE_KEY})"
        )
    elif path is None and not env_given and not problems:
        # Never fall back to the demo: made-up balances must not be mistaken for an account's.
        problems.append(NO_ACCOUNTS)
    if interval is not None:
        _check_budget(interval, len(entries) + int(env_given), problems)

    if problems:
        raise ConfigError(problems)
    assert api_url is not None and interval is not None and timeout is not None and staleness is not None
    return Config(
        accounts=tuple(accounts),
        api_url=api_url,
        poll_interval=interval,
        timeout=timeout,
        max_staleness=staleness,
        value_currencies=currencies or Config.value_currencies,
        value_price=price or "last",
        export_all_pairs=export_all,
        warnings=tuple(warnings),
    )


# --- summary -------------------------------------------------------------------------------------


def summarize(config: Config) -> str:
    """A human-readable summary for --check-config; the private keys are never shown."""
    accounts = len(config.accounts)
    balance_calls = accounts * 60 / config.poll_interval
    ticker_calls = 60 / config.poll_interval
    lines = [
        f"api_url: {config.api_url}",
        f"poll_interval: {_format_duration(config.poll_interval)} "
        f"({_format_number(balance_calls)} of {BALANCE_CALLS_PER_MINUTE} balance calls a minute, "
        f"{_format_number(ticker_calls)} of {TICKER_CALLS_PER_MINUTE} ticker calls a minute)",
        f"timeout: {_format_duration(config.timeout)}",
        f"max_staleness: {_format_duration(config.max_staleness)}",
        f"value_currencies: {', '.join(config.value_currencies)}",
        f"value_price: {config.value_price}",
        f"export_all_pairs: {'true' if config.export_all_pairs else 'false'}",
        f"accounts: {accounts}",
    ]
    for account in config.accounts:
        lines.append(f"  - {account.name}: public key {account.public_key[:4]}…, private key {_MASK}")
    if config.warnings:
        lines.append(f"warnings: {len(config.warnings)}")
        lines.extend(f"  - {warning}" for warning in config.warnings)
    return "\n".join(lines)
