"""Configuration: YAML file plus BTCTURK_* environment variables, validated in one pass."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from exporter.api import budget
from exporter.api.account import MASK, Account
from exporter.config.accounts import (
    ENV_ACCOUNT_NAME,
    ENV_API_URL,
    ENV_GRAPH_API_URL,
    ENV_PRIVATE_KEY,
    ENV_PUBLIC_KEY,
    env_value,
)
from exporter.config.accounts import env_account as _env_account
from exporter.config.accounts import environment_problems as _environment_problems
from exporter.config.accounts import file_account as _file_account
from exporter.config.activity import parse_activity, summary_lines
from exporter.config.activity_settings import DEFAULT_GRAPH_API_URL, ActivitySettings
from exporter.config.report import ReportSettings, parse_report
from exporter.config.values import (
    DEFAULT_POLL_INTERVAL,
    DEFAULT_TIMEOUT,
    STALENESS_FACTOR,
    check_budget,
    parse_api_url,
    parse_duration_s,
    parse_intervals,
    parse_share,
    parse_value_currencies,
    parse_value_price,
)
from exporter.config.yamlload import MAX_CONFIG_BYTES, ReadError, load_yaml, read_limited
from exporter.describe import type_name as _type_name
from exporter.describe import unknown_key as _unknown_key
from exporter.durations import format_duration

BALANCE_CALLS_PER_MINUTE = budget.BY_NAME["balances"].limit
DEFAULT_API_URL = "https://api.btcturk.com"

TOP_LEVEL_KEYS = (
    "api_url",
    "poll_interval",
    "timeout",
    "max_staleness",
    "value_currencies",
    "value_price",
    "export_all_pairs",
    "rate_limit_share",
    "graph_api_url",
    "activity",
    "report",
    "accounts",
)
NO_ACCOUNTS = (
    f"no accounts configured: looked for --config.file, {ENV_PUBLIC_KEY}/{ENV_PRIVATE_KEY} and "
    f"{ENV_PUBLIC_KEY}_FILE/{ENV_PRIVATE_KEY}_FILE and found none; "
    "run with --demo to try the exporter on made-up data"
)

# Every character str.splitlines() breaks on, mapped to its escape (\n, \x85, \u2028, ...).
_LINE_BREAKS = str.maketrans({c: repr(c)[1:-1] for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"})


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
    activity: ActivitySettings = field(default_factory=ActivitySettings)
    report: ReportSettings = field(default_factory=ReportSettings)


class ConfigError(Exception):
    """Every problem found in the configuration, one line each, as "key.path: what is wrong"."""

    def __init__(self, problems: list[str] | str) -> None:
        problems = [problems] if isinstance(problems, str) else list(problems)
        # A key or path from the file may hold a line break; one problem must stay one line.
        self.problems = [problem.translate(_LINE_BREAKS) for problem in problems]
        super().__init__("\n".join(self.problems))

    def __str__(self) -> str:
        return "\n".join(self.problems)


def parse_duration(value: object, key: str, maximum: float | None = None) -> float:
    """Seconds from "30s", "1h30m", "500ms", "1d" or whole seconds, at most `maximum` (by default the
    key's bound in values.MAX_DURATIONS); raise ConfigError naming key."""
    problems: list[str] = []
    seconds = parse_duration_s(value, key, problems, maximum)
    if seconds is None:
        raise ConfigError(problems)
    return seconds


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


def load_config(path: str | None, environ: Mapping[str, str]) -> Config:
    """Load the YAML file (if any) and BTCTURK_* variables; raise one ConfigError listing every problem."""
    problems, misspelt = _environment_problems(environ)
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

    api_url = parse_api_url(data["api_url"], "api_url", problems) if "api_url" in data else DEFAULT_API_URL
    if (env_url := env_value(environ, ENV_API_URL)) is not None:
        api_url = parse_api_url(env_url, ENV_API_URL, problems)
    interval, timeout, staleness = parse_intervals(data, problems)
    currencies = (
        parse_value_currencies(data["value_currencies"], problems) if "value_currencies" in data else None
    )
    price = parse_value_price(data["value_price"], problems) if "value_price" in data else "last"
    share = (
        parse_share(data["rate_limit_share"], problems)
        if "rate_limit_share" in data
        else budget.DEFAULT_SHARE
    )
    graph_url: str | None = DEFAULT_GRAPH_API_URL
    if "graph_api_url" in data:
        graph_url = parse_api_url(data["graph_api_url"], "graph_api_url", problems, api_path_check=False)
    if (env_graph := env_value(environ, ENV_GRAPH_API_URL)) is not None:
        graph_url = parse_api_url(env_graph, ENV_GRAPH_API_URL, problems, api_path_check=False)
    activity = parse_activity(
        data.get("activity"),
        currencies or Config.value_currencies,
        share if share is not None else budget.DEFAULT_SHARE,
        graph_url or DEFAULT_GRAPH_API_URL,
        problems,
    )
    report = parse_report(data.get("report"), problems)
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
    if interval is not None and share is not None:
        check_budget(interval, len(entries) + int(env_given), share, problems)

    if problems:
        raise ConfigError(problems)
    assert api_url is not None and interval is not None and timeout is not None and staleness is not None
    assert activity is not None and report is not None
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
        activity=activity,
        report=report,
    )


# --- summary -------------------------------------------------------------------------------------


def summarize(config: Config) -> str:
    """A human-readable summary for --check-config; the private keys are never shown."""
    accounts = len(config.accounts)
    lines = [
        f"api_url: {config.api_url}",
        f"poll_interval: {format_duration(config.poll_interval)}",
        f"timeout: {format_duration(config.timeout)}",
        f"max_staleness: {format_duration(config.max_staleness)}",
        f"value_currencies: {', '.join(config.value_currencies)}",
        f"value_price: {config.value_price}",
        f"export_all_pairs: {'true' if config.export_all_pairs else 'false'}",
        f"rate_limit_share: {config.rate_limit_share:g}",
        "planned API use (per source IP, shared by every account of this instance):",
    ]
    uses = budget.plan(accounts, config.poll_interval, config.rate_limit_share)
    lines.extend(f"  {use.describe()}" for use in uses)
    lines.extend(summary_lines(config.activity, accounts))
    lines.append(f"report: timezone {config.report.timezone}")
    lines.append(f"accounts: {accounts}")
    for account in config.accounts:
        lines.append(f"  - {account.name}: public key {account.public_key[:4]}…, private key {MASK}")
    if config.warnings:
        lines.append(f"warnings: {len(config.warnings)}")
        lines.extend(f"  - {warning}" for warning in config.warnings)
    return "\n".join(lines)
