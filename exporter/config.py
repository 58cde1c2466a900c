"""Configuration: YAML file plus BTCTURK_* environment variables, validated in one pass."""

from __future__ import annotations

import difflib
import math
import os
import re
import stat
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from exporter import budget
from exporter.signing import decode_private_key

BALANCE_CALLS_PER_MINUTE = budget.BY_NAME["balances"].limit
TICKER_CALLS_PER_MINUTE = budget.BY_NAME["ticker"].limit
# API keys are well under a hundred characters; anything much longer is the wrong file.
MAX_KEY_FILE_CHARS = 16384

DEFAULT_API_URL = "https://api.btcturk.com"
DEFAULT_POLL_INTERVAL = 30.0
DEFAULT_TIMEOUT = 10.0
STALENESS_FACTOR = 10
VALUE_PRICES = ("last", "bid", "mid", "ask")

TOP_LEVEL_KEYS = (
    "api_url",
    "poll_interval",
    "timeout",
    "max_staleness",
    "value_currencies",
    "value_price",
    "export_all_pairs",
    "rate_limit_share",
    "accounts",
)
ACCOUNT_KEYS = ("name", "public_key", "public_key_file", "private_key", "private_key_file")

ENV_PUBLIC_KEY = "BTCTURK_PUBLIC_KEY"
ENV_PRIVATE_KEY = "BTCTURK_PRIVATE_KEY"
ENV_API_URL = "BTCTURK_API_URL"
ENV_ACCOUNT_NAME = "default"

_MASK = "********"
_MISSING = object()
_DURATION_RE = re.compile(
    r"(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s)?(?:(?P<ms>\d+(?:\.\d+)?)ms)?"
)
_NUMBER_RE = re.compile(r"\d+(?:\.\d+)?")
_SYMBOL_RE = re.compile(r"[A-Z0-9]+")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
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
    rate_limit_share: float = budget.DEFAULT_SHARE
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
    millis = seconds * 1000
    if not math.isfinite(millis) or millis <= 0 or abs(millis - round(millis)) > 1e-6:
        return f"{seconds:g}s"
    rest = round(millis)
    parts = []
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


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


def parse_duration(value: object, key: str) -> float:
    """Parse "30s", "2m", "1m30s", "500ms", "1h" or a number of seconds; raise ConfigError naming key."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"{key}: expected a duration, got {_type_name(value)}")
    seconds: float | None = None
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:  # an int beyond the float range
            raise ConfigError(
                f"{key}: must be a duration like 30s or a positive number, got a huge number"
            ) from None
    else:
        text = value.strip()
        if _NUMBER_RE.fullmatch(text):
            seconds = float(text)
        elif text and (match := _DURATION_RE.fullmatch(text)):
            seconds = sum(float(n) * _UNIT_SECONDS[unit] for unit, n in match.groupdict().items() if n)
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        got = _shown(value) if isinstance(value, str) else f"{value:g}"
        raise ConfigError(f"{key}: must be a duration like 30s or a positive number, got {got}")
    return seconds


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
        # A FIFO would block start-up and a device (/dev/zero) would be read forever: regular files only.
        if not stat.S_ISREG(os.stat(path).st_mode):
            problems.append(f"{key}: cannot read {path}: not a regular file")
            return None
        with open(path, encoding="utf-8") as handle:
            # fstat on the open handle, so the mode checked is that of the file actually read.
            mode = os.fstat(handle.fileno()).st_mode
            text = handle.read(MAX_KEY_FILE_CHARS + 1)
        if len(text) > MAX_KEY_FILE_CHARS:
            problems.append(f"{key}: {path} is too large for a key file (over {MAX_KEY_FILE_CHARS} chars)")
            return None
    except OSError as exc:
        problems.append(f"{key}: cannot read {path}: {exc.strerror or exc}")
        return None
    except UnicodeDecodeError:
        problems.append(f"{key}: cannot read {path}: not UTF-8 text")
        return None
    except ValueError:  # open() refuses a path holding a NUL character or a lone surrogate
        problems.append(f"{key}: not a usable file path: {_shown(raw)}")
        return None
    # Group access is how Kubernetes (fsGroup) and Docker give keys to a non-root user; world access is not.
    if stat.S_ISREG(mode) and mode & 0o007:
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
    # Empty counts as unset: compose files and Helm charts often pass VAR="" for "not configured".
    value = environ.get(name)
    return value if value is not None and value.strip() else None


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
    environ: Mapping[str, str], problems: list[str], warnings: list[str]
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
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        return {}, f"{path}: cannot read config file: {exc.strerror or exc}"
    except UnicodeDecodeError:
        return {}, f"{path}: cannot read config file: not UTF-8 text"
    try:
        data = yaml.safe_load(text)
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


def _share(raw: object, problems: list[str]) -> float | None:
    """rate_limit_share: the part of each per-IP limit the configured polling may plan to use."""
    if isinstance(raw, int | float) and not isinstance(raw, bool) and 0 < raw <= 1:
        return float(raw)
    got = f"{raw:g}" if isinstance(raw, int | float) and not isinstance(raw, bool) else _type_name(raw)
    problems.append(f"rate_limit_share: must be a number above 0 and at most 1, got {got}")
    return None


def _check_budget(interval: float, accounts: int, share: float, problems: list[str]) -> None:
    """Refuse poll intervals that would plan past the share of the per-IP limits all accounts share."""
    for use in budget.plan(accounts, interval, share):
        if use.per_cycle and (problem := use.problem()):
            problems.append(f"poll_interval: {problem}")


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
    problems: list[str] = []
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
    share = _share(data["rate_limit_share"], problems) if "rate_limit_share" in data else budget.DEFAULT_SHARE
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

    env_given, env_account = _env_account(environ, problems, warnings)
    if env_given and ENV_ACCOUNT_NAME in seen:
        problems.append(
            f"accounts[{seen[ENV_ACCOUNT_NAME]}].name: duplicate account name {ENV_ACCOUNT_NAME!r} "
            f"(also defined by {ENV_PUBLIC_KEY} and {ENV_PRIVATE_KEY})"
        )
    if env_account is not None:
        accounts.append(env_account)

    # Without a file, no accounts means the CLI's demo; with one, forgetting the accounts is a mistake.
    if file_read and not env_given and raw_accounts in (None, []):
        problems.append(
            f"accounts: at least one account is required (or set {ENV_PUBLIC_KEY} and {ENV_PRIVATE_KEY})"
        )
    if interval is not None and share is not None:
        _check_budget(interval, len(entries) + int(env_given), share, problems)

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
        rate_limit_share=share if share is not None else budget.DEFAULT_SHARE,
        warnings=tuple(warnings),
    )


# --- summary -------------------------------------------------------------------------------------


def summarize(config: Config) -> str:
    """A human-readable summary for --check-config; the private keys are never shown."""
    accounts = len(config.accounts)
    lines = [
        f"api_url: {config.api_url}",
        f"poll_interval: {_format_duration(config.poll_interval)}",
        f"timeout: {_format_duration(config.timeout)}",
        f"max_staleness: {_format_duration(config.max_staleness)}",
        f"value_currencies: {', '.join(config.value_currencies)}",
        f"value_price: {config.value_price}",
        f"export_all_pairs: {'true' if config.export_all_pairs else 'false'}",
        f"rate_limit_share: {config.rate_limit_share:g}",
        "planned API use (per source IP, shared by every account of this instance):",
    ]
    uses = budget.plan(accounts, config.poll_interval, config.rate_limit_share)
    lines.extend(f"  {use.describe()}" for use in uses)
    lines.append(f"accounts: {accounts}")
    for account in config.accounts:
        lines.append(f"  - {account.name}: public key {account.public_key[:4]}…, private key {_MASK}")
    if config.warnings:
        lines.append(f"warnings: {len(config.warnings)}")
        lines.extend(f"  - {warning}" for warning in config.warnings)
    return "\n".join(lines)
