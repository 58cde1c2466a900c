"""Configuration loading: every rule, every message, and that private keys never leak."""

from __future__ import annotations

import base64
import dataclasses
import math
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.api.account import Account, Secret
from exporter.config.accounts import check_demo
from exporter.config.activity import ACTIVITY_KEYS
from exporter.config.activity_settings import ActivitySettings
from exporter.config.loader import (
    BALANCE_CALLS_PER_MINUTE,
    TOP_LEVEL_KEYS,
    Config,
    ConfigError,
    load_config,
    parse_duration,
    summarize,
)
from exporter.config.yamlload import MAX_CONFIG_BYTES

PRIVATE = "dGVzdC1zZWNyZXQta2V5LWZvci11bml0LXRlc3Rz"
EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.yaml"
# Valid base64, so it survives validation and would reach a Config if anything let it through.
CANARY = base64.b64encode(b"CANARY-private-key-must-never-be-printed").decode()
# Invalid base64: exercises the path where validation itself fails on the secret.
CANARY_BAD = "CANARY!!not*base64*but*still*secret"


def account(name: str = "main", **overrides: object) -> dict[str, object]:
    entry: dict[str, object] = {"name": name, "public_key": f"pub-{name}", "private_key": PRIVATE}
    entry.update(overrides)
    return {k: v for k, v in entry.items() if v is not None}


def write_config(tmp_path: Path, config: dict[str, Any] | str, name: str = "config.yml") -> str:
    path = tmp_path / name
    path.write_text(config if isinstance(config, str) else yaml.safe_dump(config), encoding="utf-8")
    return str(path)


def load(tmp_path: Path, config: dict[str, Any] | str, env: dict[str, str] | None = None) -> Config:
    return load_config(write_config(tmp_path, config), env or {})


def problems(tmp_path: Path, config: dict[str, Any] | str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, config, env)
    for problem in info.value.problems:
        assert "\n" not in problem
    assert str(info.value) == "\n".join(info.value.problems)
    return info.value.problems


def only_problem(tmp_path: Path, config: dict[str, Any] | str, env: dict[str, str] | None = None) -> str:
    found = problems(tmp_path, config, env)
    assert len(found) == 1, found
    return found[0]


def secret_file(tmp_path: Path, name: str, text: str, mode: int = 0o600) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    os.chmod(path, mode)
    return str(path)


# --- the happy path ------------------------------------------------------------------------------


def test_minimal_file_gets_the_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, {"accounts": [account()]})
    assert config == Config(accounts=(Account("main", "pub-main", Secret(PRIVATE)),))
    assert config.api_url == "https://api.btcturk.com"
    assert (config.poll_interval, config.timeout, config.max_staleness) == (30.0, 10.0, 300.0)
    assert config.value_currencies == ("TRY", "USDT")
    assert (config.value_price, config.export_all_pairs, config.warnings) == ("last", False, ())
    assert config.accounts[0].private_key_bytes() == base64.b64decode(PRIVATE)


def test_every_key_set(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        {
            "api_url": "http://localhost:8080/",
            "poll_interval": "1m",
            "timeout": 5,
            "max_staleness": "30m",
            "value_currencies": ["try", " btc "],
            "value_price": "bid",
            "export_all_pairs": True,
            "accounts": [account("a"), account("b")],
        },
    )
    assert config.api_url == "http://localhost:8080"
    assert (config.poll_interval, config.timeout, config.max_staleness) == (60.0, 5.0, 1800.0)
    assert config.value_currencies == ("TRY", "BTC")
    assert (config.value_price, config.export_all_pairs) == ("bid", True)
    assert [a.name for a in config.accounts] == ["a", "b"]


def test_defaults_follow_poll_interval(tmp_path: Path) -> None:
    config = load(tmp_path, {"poll_interval": "4s", "accounts": [account()]})
    assert (config.timeout, config.max_staleness) == (2.0, 40.0)


def test_no_file_and_no_env_is_an_error_not_the_demo() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, {})
    [problem] = info.value.problems
    for looked_for in ("--config.file", "BTCTURK_PUBLIC_KEY", "BTCTURK_PRIVATE_KEY", "_FILE", "--demo"):
        assert looked_for in problem


def test_example_file_loads() -> None:
    config = load_config(str(EXAMPLE), {})
    assert [a.name for a in config.accounts] == ["main", "savings"]
    assert config.activity == ActivitySettings(), "the activity values shown are the defaults"
    # Its keys are made up: said, so a copy left unedited is not a silent 401 forever.
    assert [w.split(":")[0] for w in config.warnings] == ["accounts[0].public_key", "accounts[1].public_key"]


def test_example_file_documents_every_key() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    for key in (*TOP_LEVEL_KEYS, "public_key_file", "private_key_file", "BTCTURK_PRIVATE_KEY_FILE"):
        assert key in text, key
    assert "BTCTURK_API_URL" in text and "120" in text and "600" in text
    activity = text[text.index("\nactivity:\n") : text.index("\nreport:\n")]
    for key in ACTIVITY_KEYS:
        assert re.search(rf"^  {key}: ", activity, re.M), f"activity.{key}"


# --- durations -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("30s", 30.0),
        ("2m", 120.0),
        ("1m30s", 90.0),
        ("500ms", 0.5),
        ("1h", 3600.0),
        ("1h2m3s4ms", 3723.004),
        ("1h30m", 5400.0),
        ("1d", 86400.0),
        (" 45s ", 45.0),
        ("10", 10.0),
        (30, 30.0),
    ],
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value, "poll_interval") == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("1w", 7 * 86400.0), ("1y", 365 * 86400.0), ("2w3d", 17 * 86400.0), ("1y2w3d4h5m6s7ms", 33_019_506.007)],
)
def test_prometheus_units_up_to_years(value: str, seconds: float) -> None:
    # model.ParseDuration's units: a week is 7 days and a year 365.
    assert parse_duration(value, "any", maximum=2 * 365 * 86400) == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["abc", "", "1s1m", "30m1h", "5 s", "10x", "1h 30m", "1S", "-5s", "1d1y"])
def test_bad_durations(value: object) -> None:
    with pytest.raises(ConfigError) as info:
        parse_duration(value, "poll_interval")
    assert str(info.value).startswith("poll_interval: must be a duration like 30s, 1m30s or 500ms (units ")
    assert "largest first" in str(info.value)


@pytest.mark.parametrize("value", ["0s", "0", 0, -1, "0ms", "0h0m"])
def test_durations_must_be_positive(value: object) -> None:
    with pytest.raises(ConfigError) as info:
        parse_duration(value, "timeout")
    assert str(info.value).startswith("timeout: must be a positive duration like 30s, got ")


@pytest.mark.parametrize("value", ["1.5s", "0.5", 0.25, 1.5, ".5", math.nan, math.inf, -0.5])
def test_durations_have_no_fractions(value: object) -> None:
    # As in Prometheus: 1.5s is written 1s500ms.
    with pytest.raises(ConfigError) as info:
        parse_duration(value, "poll_interval")
    assert str(info.value).startswith("poll_interval: fractions are not allowed (write 1s500ms")


@pytest.mark.parametrize(
    ("key", "value", "bound"),
    [
        ("poll_interval", "3000000h", "1d"),
        ("poll_interval", "25h", "1d"),
        ("poll_interval", 86401, "1d"),
        ("poll_interval", "9" * 5000 + "s", "1d"),
        ("poll_interval", 10**400, "1d"),
        ("timeout", "11m", "10m"),
        ("max_staleness", "31d", "4w2d"),
    ],
)
def test_durations_have_an_upper_bound(key: str, value: object, bound: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_duration(value, key)
    assert str(info.value).startswith(f"{key}: must be at most {bound}, got ")
    assert len(str(info.value)) < 200, "a huge value must not be echoed whole"


def test_durations_at_the_upper_bound_are_accepted(tmp_path: Path) -> None:
    config = load(tmp_path, {"poll_interval": "1d", "timeout": "10m", "accounts": [account()]})
    assert (config.poll_interval, config.timeout, config.max_staleness) == (86400.0, 600.0, 864000.0)
    assert load(tmp_path, {"max_staleness": "30d", "accounts": [account()]}).max_staleness == 30 * 86400.0


def test_a_huge_poll_interval_in_the_file_is_refused(tmp_path: Path) -> None:
    # It used to pass and then overflow threading's waits in a tight loop of error lines.
    assert only_problem(tmp_path, {"poll_interval": "3000000h", "accounts": [account()]}) == (
        "poll_interval: must be at most 1d, got '3000000h'"
    )


@pytest.mark.parametrize(
    ("value", "kind"), [([1], "list"), (True, "boolean"), (None, "null"), ({}, "mapping")]
)
def test_durations_of_the_wrong_type(value: object, kind: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_duration(value, "timeout")
    assert info.value.problems == [f"timeout: expected a duration, got {kind}"]


def test_bad_duration_in_the_file(tmp_path: Path) -> None:
    assert only_problem(tmp_path, {"poll_interval": "abc", "accounts": [account()]}) == (
        "poll_interval: must be a duration like 30s, 1m30s or 500ms (units y, w, d, h, m, s, ms, largest "
        "first) or whole seconds, got 'abc'"
    )


def test_duration_of_the_wrong_type_in_the_file(tmp_path: Path) -> None:
    assert only_problem(tmp_path, {"timeout": [10], "accounts": [account()]}) == (
        "timeout: expected a duration, got list"
    )


# --- one test per message ------------------------------------------------------------------------


def test_private_key_not_base64(tmp_path: Path) -> None:
    config = {"accounts": [account("a"), account("b", private_key="not base64!")]}
    assert only_problem(tmp_path, config) == "accounts[1].private_key: not valid base64"


def test_private_key_read_as_a_number_by_yaml(tmp_path: Path) -> None:
    text = "accounts:\n  - name: a\n    public_key: p\n    private_key: 12345678\n"
    assert only_problem(tmp_path, text) == (
        "accounts[0].private_key: expected a string, got integer (quote the value)"
    )


def test_duplicate_account_name(tmp_path: Path) -> None:
    config = {"accounts": [account("main"), account("other"), account("main")]}
    assert (
        only_problem(tmp_path, config) == "accounts[2].name: duplicate account name 'main' (also accounts[0])"
    )


@pytest.mark.parametrize("value", ["", "   ", None])
def test_empty_public_key(tmp_path: Path, value: str | None) -> None:
    text = yaml.safe_dump({"accounts": [{"name": "a", "public_key": value, "private_key": PRIVATE}]})
    assert only_problem(tmp_path, text) == "accounts[0].public_key: must not be empty"


@pytest.mark.parametrize("value", ["", None])
def test_empty_private_key(tmp_path: Path, value: str | None) -> None:
    text = yaml.safe_dump({"accounts": [{"name": "a", "public_key": "p", "private_key": value}]})
    assert only_problem(tmp_path, text) == "accounts[0].private_key: must not be empty"


@pytest.mark.parametrize("name", ["", "  ", None])
def test_empty_account_name(tmp_path: Path, name: str | None) -> None:
    text = yaml.safe_dump({"accounts": [{"name": name, "public_key": "p", "private_key": PRIVATE}]})
    assert only_problem(tmp_path, text) == "accounts[0].name: must not be empty"


def test_account_name_must_be_a_string(tmp_path: Path) -> None:
    assert only_problem(tmp_path, {"accounts": [account(2024)]}).startswith(  # type: ignore[arg-type]
        "accounts[0].name: expected a string, got integer"
    )


def test_missing_account_keys(tmp_path: Path) -> None:
    assert problems(tmp_path, {"accounts": [{}]}) == [
        "accounts[0].name: required",
        "accounts[0].public_key: required (or public_key_file)",
        "accounts[0].private_key: required (or private_key_file)",
    ]


def test_key_and_key_file_together(tmp_path: Path) -> None:
    path = secret_file(tmp_path, "private", PRIVATE)
    config = {"accounts": [account(private_key_file=path)]}
    assert only_problem(tmp_path, config) == (
        "accounts[0].private_key_file: set only one of private_key and private_key_file"
    )


@pytest.mark.parametrize("url", ["ftp://example.com", "api.btcturk.com", "https://", "http://x/?a=1", ""])
def test_api_url(tmp_path: Path, url: str) -> None:
    found = only_problem(tmp_path, {"api_url": url, "accounts": [account()]})
    assert found.startswith("api_url: must be an http:// or https:// URL")


def test_api_url_of_the_wrong_type(tmp_path: Path) -> None:
    assert (
        only_problem(tmp_path, {"api_url": 5, "accounts": [account()]})
        == "api_url: expected a string, got integer"
    )


@pytest.mark.parametrize("price", ["close", "LAST2", 1])
def test_value_price(tmp_path: Path, price: object) -> None:
    found = only_problem(tmp_path, {"value_price": price, "accounts": [account()]})
    assert found.startswith("value_price: must be one of last, bid, mid, ask")


def test_value_price_ask_is_accepted(tmp_path: Path) -> None:
    assert load(tmp_path, {"value_price": "ask", "accounts": [account()]}).value_price == "ask"


def test_value_price_is_case_insensitive(tmp_path: Path) -> None:
    assert load(tmp_path, {"value_price": "Mid", "accounts": [account()]}).value_price == "mid"


@pytest.mark.parametrize("currencies", [[], "TRY", None, {"TRY": 1}])
def test_value_currencies(tmp_path: Path, currencies: object) -> None:
    found = only_problem(tmp_path, {"value_currencies": currencies, "accounts": [account()]})
    assert found.startswith("value_currencies: must be a non-empty list of asset symbols")


def test_value_currency_items(tmp_path: Path) -> None:
    assert problems(tmp_path, {"value_currencies": ["TRY", 5, "U S D", "try"], "accounts": [account()]}) == [
        "value_currencies[1]: must be an asset symbol like TRY, got integer",
        "value_currencies[2]: must be an asset symbol like TRY, got 'U S D'",
        "value_currencies[3]: duplicate 'TRY' (also value_currencies[0])",
    ]


def test_export_all_pairs_must_be_a_boolean(tmp_path: Path) -> None:
    assert only_problem(tmp_path, {"export_all_pairs": "true", "accounts": [account()]}) == (
        "export_all_pairs: expected true or false, got string"
    )


def test_unknown_top_level_key_suggests_the_closest(tmp_path: Path) -> None:
    found = only_problem(tmp_path, {"pol_interval": "5s", "accounts": [account()]})
    assert found.startswith(
        "pol_interval: unknown key (did you mean poll_interval? expected one of: api_url, "
    )


def test_unknown_account_key_suggests_the_closest(tmp_path: Path) -> None:
    found = only_problem(tmp_path, {"accounts": [account(privat_key="x")]})
    assert found == (
        "accounts[0].privat_key: unknown key (did you mean private_key? expected one of: "
        "name, public_key, public_key_file, private_key, private_key_file)"
    )


def test_unknown_key_without_a_close_match(tmp_path: Path) -> None:
    found = only_problem(tmp_path, {"zzz": 1, "accounts": [account()]})
    assert found.startswith("zzz: unknown key (expected one of: ")


def test_accounts_must_be_a_list_of_mappings(tmp_path: Path) -> None:
    assert (
        only_problem(tmp_path, {"accounts": {"name": "a"}})
        == "accounts: expected a list of accounts, got mapping"
    )
    assert only_problem(tmp_path, {"accounts": ["main"]}) == (
        "accounts[0]: expected a mapping with name, public_key and private_key, got string"
    )


@pytest.mark.parametrize(
    "text", ["", "# nothing yet\n", "accounts: []\n", "accounts:\n", "poll_interval: 1m\n"]
)
def test_a_file_needs_an_account(tmp_path: Path, text: str) -> None:
    assert only_problem(tmp_path, text) == (
        "accounts: at least one account is required (or set BTCTURK_PUBLIC_KEY and BTCTURK_PRIVATE_KEY)"
    )


def test_timeout_shorter_than_poll_interval(tmp_path: Path) -> None:
    found = only_problem(tmp_path, {"poll_interval": "10s", "timeout": "10s", "accounts": [account()]})
    assert found == "timeout: must be shorter than poll_interval (10s), got 10s"


def test_max_staleness_at_least_poll_interval(tmp_path: Path) -> None:
    found = only_problem(tmp_path, {"poll_interval": "1m", "max_staleness": "30s", "accounts": [account()]})
    assert found == "max_staleness: must be at least poll_interval (1m), got 30s"
    assert load(tmp_path, {"poll_interval": "1m", "max_staleness": "1m", "accounts": [account()]})


# --- rate-limit budget ---------------------------------------------------------------------------


def test_balance_budget(tmp_path: Path) -> None:
    config = {"poll_interval": "1s", "accounts": [account("a"), account("b"), account("c")]}
    assert only_problem(tmp_path, config) == (
        "poll_interval: 3 accounts every 1s need 180 balances calls a minute, over the plan of 96 "
        f"(rate_limit_share 0.8 of the API's per-IP limit of {BALANCE_CALLS_PER_MINUTE}); "
        "use a poll_interval of at least 1s875ms, or split the accounts over 3 exporter instances, "
        "each on its own egress IP (README: Many accounts)"
    )


def test_balance_budget_counts_the_env_account(tmp_path: Path) -> None:
    env = {"BTCTURK_PUBLIC_KEY": "p", "BTCTURK_PRIVATE_KEY": PRIVATE}
    found = only_problem(tmp_path, {"poll_interval": "500ms", "accounts": [account()]}, env)
    assert found.startswith("poll_interval: 2 accounts every 500ms need 240 balances calls a minute")
    # Not even one account fits in 500 ms: more instances cannot help, so none are suggested.
    assert found.endswith("use a poll_interval of at least 1s250ms")


def test_the_whole_limit_is_refused_by_default(tmp_path: Path) -> None:
    doc = {"poll_interval": "1s", "timeout": "500ms", "accounts": [account("a"), account("b")]}
    assert only_problem(tmp_path, doc).startswith(
        "poll_interval: 2 accounts every 1s need 120 balances calls"
    )
    config = load(tmp_path, {**doc, "rate_limit_share": 1})
    assert len(config.accounts) * 60 / config.poll_interval == BALANCE_CALLS_PER_MINUTE
    assert config.rate_limit_share == 1


def test_exactly_at_the_planned_share_is_allowed(tmp_path: Path) -> None:
    config = load(
        tmp_path, {"poll_interval": "1s250ms", "timeout": "1s", "accounts": [account("a"), account("b")]}
    )
    assert len(config.accounts) * 60 / config.poll_interval == 96
    assert config.rate_limit_share == 0.8


@pytest.mark.parametrize("raw", [0, -0.5, 1.01, 2, 10**400, "0.8", True, None, [0.5], float("nan")])
def test_rate_limit_share_must_be_a_fraction(tmp_path: Path, raw: object) -> None:
    found = only_problem(tmp_path, {"rate_limit_share": raw, "accounts": [account()]})
    assert found.startswith("rate_limit_share: must be a number above 0 and at most 1, got ")


def test_rate_limit_share_scales_the_plan(tmp_path: Path) -> None:
    doc = {"poll_interval": "2s", "rate_limit_share": 0.25, "accounts": [account("a"), account("b")]}
    assert only_problem(tmp_path, doc) == (
        "poll_interval: 2 accounts every 2s need 60 balances calls a minute, over the plan of 30 "
        "(rate_limit_share 0.25 of the API's per-IP limit of 120); use a poll_interval of at least 4s, "
        "or split the accounts over 2 exporter instances, each on its own egress IP (README: Many accounts)"
    )


def test_ticker_budget(tmp_path: Path) -> None:
    found = problems(tmp_path, {"poll_interval": "50ms", "accounts": [account()]})
    assert found == [
        "poll_interval: 1 account every 50ms needs 1200 balances calls a minute, over the plan of 96 "
        "(rate_limit_share 0.8 of the API's per-IP limit of 120); use a poll_interval of at least 625ms",
        "poll_interval: 1 call every 50ms needs 1200 ticker calls a minute, over the plan of 480 "
        "(rate_limit_share 0.8 of the API's per-IP limit of 600); "
        "use a poll_interval of at least 125ms",
    ]


def test_summary_shows_the_planned_use_per_endpoint(tmp_path: Path) -> None:
    text = summarize(load(tmp_path, {"accounts": [account("a"), account("b"), account("c")]}))
    assert "rate_limit_share: 0.8" in text.splitlines()
    assert "  balances: 3 accounts every 30s = 6 calls/min of 120 (5%, plan 96)" in text.splitlines()
    assert "  ticker: 1 call every 30s = 2 calls/min of 600 (0.3%, plan 480)" in text.splitlines()


# --- every problem at once -----------------------------------------------------------------------


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    config = {
        "api_url": "ftp://x",
        "poll_interval": "abc",
        "timeout": [1],
        "value_price": "close",
        "value_currencies": [],
        "export_all_pairs": "yes please",
        "unknown": 1,
        "accounts": [
            account("main", public_key=""),
            account("b", private_key="not base64!"),
            account("main"),
            account("d", public_key_file=str(tmp_path / "missing"), public_key=None),
        ],
    }
    found = problems(tmp_path, config)
    keys = [problem.split(": ", 1)[0] for problem in found]
    assert sorted(keys) == sorted(
        [
            "unknown",
            "api_url",
            "poll_interval",
            "timeout",
            "value_currencies",
            "value_price",
            "export_all_pairs",
            "accounts[0].public_key",
            "accounts[1].private_key",
            "accounts[2].name",
            "accounts[3].public_key_file",
        ]
    )


# --- the file itself -----------------------------------------------------------------------------


def test_missing_config_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yml"
    with pytest.raises(ConfigError) as info:
        load_config(str(path), {})
    assert info.value.problems == [f"{path}: cannot read config file: No such file or directory"]


def test_config_file_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(str(tmp_path), {})
    assert info.value.problems == [f"{tmp_path}: cannot read config file: Is a directory"]


def test_invalid_yaml_names_line_and_column(tmp_path: Path) -> None:
    path = write_config(tmp_path, "poll_interval: 30s\naccounts: [\n  - name: a\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    [found] = info.value.problems
    assert found.startswith(f"{path}: invalid YAML at line ")
    assert ", column " in found and "\n" not in found


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = write_config(tmp_path, "- a\n- b\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    assert info.value.problems == [f"{path}: the top level must be a mapping of settings, got list"]


# --- key files -----------------------------------------------------------------------------------


def test_key_files_are_read_and_stripped(tmp_path: Path) -> None:
    public = secret_file(tmp_path, "public", "  pub-from-file\n")
    private = secret_file(tmp_path, "private", PRIVATE + "\n")
    config = load(
        tmp_path, {"accounts": [{"name": "a", "public_key_file": public, "private_key_file": private}]}
    )
    assert config.accounts == (Account("a", "pub-from-file", Secret(PRIVATE)),)
    assert config.warnings == ()


def test_relative_key_files_are_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "secrets").mkdir()
    secret_file(tmp_path / "secrets", "private", PRIVATE)
    monkeypatch.chdir("/")
    config = load(tmp_path, {"accounts": [account(private_key=None, private_key_file="secrets/private")]})
    assert config.accounts[0].private_key.reveal() == PRIVATE


def test_missing_key_file(tmp_path: Path) -> None:
    path = tmp_path / "missing"
    config = {"accounts": [account(private_key=None, private_key_file=str(path))]}
    assert only_problem(tmp_path, config) == (
        f"accounts[0].private_key_file: cannot read {path}: No such file or directory"
    )


@pytest.mark.parametrize("special", ["/dev/zero", "fifo", "dir"])
def test_key_file_must_be_a_regular_file(tmp_path: Path, special: str) -> None:
    # /dev/zero would be read forever and a FIFO would block start-up.
    path = {"/dev/zero": Path("/dev/zero"), "fifo": tmp_path / "fifo", "dir": tmp_path}[special]
    if special == "fifo":
        os.mkfifo(path)
    config = {"accounts": [account(private_key=None, private_key_file=str(path))]}
    reason = "Is a directory" if special == "dir" else "not a regular file"
    assert only_problem(tmp_path, config) == f"accounts[0].private_key_file: cannot read {path}: {reason}"


def test_oversized_key_file(tmp_path: Path) -> None:
    path = secret_file(tmp_path, "private", "A" * 20000)
    config = {"accounts": [account(private_key=None, private_key_file=path)]}
    assert "is too large for a key file" in only_problem(tmp_path, config)


def test_key_file_with_bad_content(tmp_path: Path) -> None:
    path = secret_file(tmp_path, "private", "not base64!")
    config = {"accounts": [account(private_key=None, private_key_file=path)]}
    assert (
        only_problem(tmp_path, config) == f"accounts[0].private_key_file: not valid base64 (read from {path})"
    )


@pytest.mark.parametrize("mode", [0o644, 0o604, 0o606])
def test_key_file_readable_by_others_is_a_warning(tmp_path: Path, mode: int) -> None:
    path = secret_file(tmp_path, "private", PRIVATE, mode)
    config = load(tmp_path, {"accounts": [account(private_key=None, private_key_file=path)]})
    assert config.warnings == (
        f"accounts[0].private_key_file: {path} is readable by other users (chmod 600 recommended)",
    )
    assert len(config.accounts) == 1


# 0o640 and 0o440: group-readable, as Kubernetes fsGroup and Docker secrets hand keys to a non-root user.
@pytest.mark.parametrize("mode", [0o600, 0o400, 0o640, 0o440])
def test_private_key_file_is_quiet(tmp_path: Path, mode: int) -> None:
    path = secret_file(tmp_path, "private", PRIVATE, mode)
    assert load(tmp_path, {"accounts": [account(private_key=None, private_key_file=path)]}).warnings == ()


# --- environment ---------------------------------------------------------------------------------


def test_env_defines_the_default_account() -> None:
    config = load_config(None, {"BTCTURK_PUBLIC_KEY": "env-pub", "BTCTURK_PRIVATE_KEY": PRIVATE})
    assert config.accounts == (Account("default", "env-pub", Secret(PRIVATE)),)


def test_env_account_is_added_to_the_file_accounts(tmp_path: Path) -> None:
    config = load(
        tmp_path, {"accounts": [account()]}, {"BTCTURK_PUBLIC_KEY": "p", "BTCTURK_PRIVATE_KEY": PRIVATE}
    )
    assert [a.name for a in config.accounts] == ["main", "default"]


def test_env_account_alone_satisfies_a_file_without_accounts(tmp_path: Path) -> None:
    config = load(
        tmp_path, {"poll_interval": "1m"}, {"BTCTURK_PUBLIC_KEY": "p", "BTCTURK_PRIVATE_KEY": PRIVATE}
    )
    assert [a.name for a in config.accounts] == ["default"]


def test_env_account_clashes_with_a_file_account_named_default(tmp_path: Path) -> None:
    env = {"BTCTURK_PUBLIC_KEY": "p", "BTCTURK_PRIVATE_KEY": PRIVATE}
    assert only_problem(tmp_path, {"accounts": [account("default")]}, env) == (
        "accounts[0].name: duplicate account name 'default' "
        "(also defined by BTCTURK_PUBLIC_KEY and BTCTURK_PRIVATE_KEY)"
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"BTCTURK_PUBLIC_KEY": "p"}, "BTCTURK_PRIVATE_KEY: required when BTCTURK_PUBLIC_KEY is set"),
        ({"BTCTURK_PRIVATE_KEY": PRIVATE}, "BTCTURK_PUBLIC_KEY: required when BTCTURK_PRIVATE_KEY is set"),
    ],
)
def test_env_needs_both_keys(env: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, env)
    [found] = info.value.problems
    assert found.startswith(expected)


def test_env_key_and_key_file_together(tmp_path: Path) -> None:
    path = secret_file(tmp_path, "private", PRIVATE)
    env = {"BTCTURK_PUBLIC_KEY": "p", "BTCTURK_PRIVATE_KEY": PRIVATE, "BTCTURK_PRIVATE_KEY_FILE": path}
    with pytest.raises(ConfigError) as info:
        load_config(None, env)
    assert info.value.problems == [
        "BTCTURK_PRIVATE_KEY_FILE: set only one of BTCTURK_PRIVATE_KEY and BTCTURK_PRIVATE_KEY_FILE"
    ]


def test_env_private_key_not_base64() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, {"BTCTURK_PUBLIC_KEY": "p", "BTCTURK_PRIVATE_KEY": "not base64!"})
    assert info.value.problems == ["BTCTURK_PRIVATE_KEY: not valid base64"]


def test_env_key_files(tmp_path: Path) -> None:
    public = secret_file(tmp_path, "public", "env-pub\n")
    private = secret_file(tmp_path, "private", f"\n{PRIVATE}\n")
    config = load_config(None, {"BTCTURK_PUBLIC_KEY_FILE": public, "BTCTURK_PRIVATE_KEY_FILE": private})
    assert config.accounts == (Account("default", "env-pub", Secret(PRIVATE)),)
    assert config.warnings == ()


def test_env_key_file_missing(tmp_path: Path) -> None:
    path = tmp_path / "missing"
    with pytest.raises(ConfigError) as info:
        load_config(None, {"BTCTURK_PUBLIC_KEY": "p", "BTCTURK_PRIVATE_KEY_FILE": str(path)})
    assert info.value.problems == [f"BTCTURK_PRIVATE_KEY_FILE: cannot read {path}: No such file or directory"]


def test_env_key_file_readable_by_others_is_a_warning(tmp_path: Path) -> None:
    path = secret_file(tmp_path, "private", PRIVATE, 0o644)
    config = load_config(None, {"BTCTURK_PUBLIC_KEY": "p", "BTCTURK_PRIVATE_KEY_FILE": path})
    assert config.warnings == (
        f"BTCTURK_PRIVATE_KEY_FILE: {path} is readable by other users (chmod 600 recommended)",
    )


def test_empty_env_variables_are_errors() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, {"BTCTURK_PUBLIC_KEY": "", "BTCTURK_PRIVATE_KEY": " ", "BTCTURK_API_URL": ""})
    assert info.value.problems == [
        f"{name}: set but empty (unset it or give a value)"
        for name in ("BTCTURK_API_URL", "BTCTURK_PRIVATE_KEY", "BTCTURK_PUBLIC_KEY")
    ]


def test_one_empty_key_of_the_pair_is_an_error_even_with_the_other_set() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, {"BTCTURK_PUBLIC_KEY": "pub", "BTCTURK_PRIVATE_KEY": ""})
    assert "BTCTURK_PRIVATE_KEY: set but empty (unset it or give a value)" in info.value.problems


@pytest.mark.parametrize(
    ("name", "closest"),
    [
        ("BTCTURK_PUBLIK_KEY", "BTCTURK_PUBLIC_KEY"),
        ("BTCTURK_PRIVATEKEY", "BTCTURK_PRIVATE_KEY"),
        ("BTCTURK_APIURL", "BTCTURK_API_URL"),
        ("BTCTURK_PUBLIC_KEYFILE", "BTCTURK_PUBLIC_KEY_FILE"),
    ],
)
def test_unknown_btcturk_variables_name_the_closest_known_one(
    tmp_path: Path, name: str, closest: str
) -> None:
    env = {"BTCTURK_PUBLIC_KEY": "p", "BTCTURK_PRIVATE_KEY": PRIVATE, name: "x"}
    problem = only_problem(tmp_path, {"accounts": [account()]}, env)
    assert problem.startswith(f"{name}: unknown environment variable (did you mean {closest}? ")


def test_a_misspelt_key_variable_is_one_problem_not_two() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, {"BTCTURK_PUBLIK_KEY": "p", "BTCTURK_PRIVATE_KEY": PRIVATE})
    [problem] = info.value.problems
    assert problem.startswith(
        "BTCTURK_PUBLIK_KEY: unknown environment variable (did you mean BTCTURK_PUBLIC_KEY?"
    )


def test_unknown_btcturk_variable_without_a_close_match() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(
            None, {"BTCTURK_COLOUR": "blue", "BTCTURK_PUBLIC_KEY": "p", "BTCTURK_PRIVATE_KEY": PRIVATE}
        )
    assert info.value.problems == [
        "BTCTURK_COLOUR: unknown environment variable (the exporter reads BTCTURK_PUBLIC_KEY, "
        "BTCTURK_PUBLIC_KEY_FILE, BTCTURK_PRIVATE_KEY, BTCTURK_PRIVATE_KEY_FILE, BTCTURK_API_URL, "
        "BTCTURK_GRAPH_API_URL)"
    ]


@pytest.mark.parametrize(
    "name",
    [
        "BTCTURK_EXPORTER_SERVICE_HOST",
        "BTCTURK_EXPORTER_SERVICE_PORT",
        "BTCTURK_EXPORTER_SERVICE_PORT_METRICS",
        "BTCTURK_EXPORTER_PORT",
        "BTCTURK_EXPORTER_PORT_9788_TCP",
        "BTCTURK_EXPORTER_PORT_9788_TCP_ADDR",
        "BTCTURK_EXPORTER_PORT_9788_TCP_PROTO",
        "BTCTURK_EXPORTER_PORT_9788_TCP_PORT",
    ],
)
def test_kubernetes_service_variables_are_not_settings(name: str) -> None:
    # The Service btcturk-exporter gives every pod in its namespace these; refusing them would stop the pod.
    env = {"BTCTURK_PUBLIC_KEY": "p", "BTCTURK_PRIVATE_KEY": PRIVATE, name: "10.0.0.1"}
    assert [a.name for a in load_config(None, env).accounts] == ["default"]


def test_other_variables_are_none_of_our_business() -> None:
    env = {"BTCTURK": "x", "MY_BTCTURK_KEY": "y", "BTCTURKX_KEY": "z"}
    env |= {"BTCTURK_PUBLIC_KEY": "p", "BTCTURK_PRIVATE_KEY": PRIVATE}
    assert len(load_config(None, env).accounts) == 1


@pytest.mark.parametrize(
    ("config_file", "env", "expected"),
    [
        ("c.yml", {}, ["--demo: cannot be combined with --config.file"]),
        ({}, {"BTCTURK_PUBLIC_KEY": "p"}, ["--demo: cannot be combined with BTCTURK_PUBLIC_KEY ("]),
        (
            None,
            {"BTCTURK_PRIVATE_KEY_FILE": "/k", "BTCTURK_API_URL": "http://x"},
            ["--demo: cannot be combined with BTCTURK_PRIVATE_KEY_FILE, BTCTURK_API_URL ("],
        ),
        (None, {"BTCTURK_PUBLIK_KEY": "p"}, ["BTCTURK_PUBLIK_KEY: unknown environment variable"]),
        (None, {"BTCTURK_EXPORTER_SERVICE_HOST": "10.0.0.1"}, []),
    ],
)
def test_demo_with_real_settings_is_an_error(
    config_file: object, env: dict[str, str], expected: list[str]
) -> None:
    found = check_demo(config_file if isinstance(config_file, str) else None, env)
    assert len(found) == len(expected), found
    for problem, start in zip(found, expected, strict=True):
        assert problem.startswith(start), problem


def test_env_api_url_overrides_the_file(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        {"api_url": "https://a.example", "accounts": [account()]},
        {"BTCTURK_API_URL": "http://b:1/"},
    )
    assert config.api_url == "http://b:1"


def test_env_api_url_is_validated() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, {"BTCTURK_API_URL": "localhost:8080"})
    assert info.value.problems == [
        "BTCTURK_API_URL: must be an http:// or https:// URL, got 'localhost:8080'"
    ]


# --- secrets never leak --------------------------------------------------------------------------


def assert_no_canary(text: str) -> None:
    assert "CANARY" not in text
    assert CANARY not in text and CANARY_BAD not in text


@pytest.mark.parametrize(
    "accounts",
    [
        [account(private_key=CANARY_BAD)],  # the secret itself is what fails
        [
            account(private_key=CANARY, privat_key=CANARY),
            account(private_key=CANARY),
        ],  # typo + duplicate name
        [{"name": "a", "public_key": "p", "private_key": CANARY, "private_key_file": "/x"}],
    ],
)
def test_private_keys_never_appear_in_errors(tmp_path: Path, accounts: list[dict[str, object]]) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, {"poll_interval": "nope", "accounts": accounts})
    assert_no_canary(str(info.value))
    assert_no_canary(repr(info.value))


def test_private_key_never_appears_in_yaml_errors(tmp_path: Path) -> None:
    text = f"accounts:\n  - name: a\n    public_key: p\n    private_key: {CANARY}: oops\n"
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    assert "invalid YAML" in str(info.value)
    assert_no_canary(str(info.value))


def test_private_key_never_appears_in_env_errors() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, {"BTCTURK_PUBLIC_KEY": "p", "BTCTURK_PRIVATE_KEY": CANARY_BAD})
    assert_no_canary(str(info.value))


def test_private_key_never_appears_in_config_or_summary(tmp_path: Path) -> None:
    env = {"BTCTURK_PUBLIC_KEY": "p", "BTCTURK_PRIVATE_KEY": CANARY}
    config = load(tmp_path, {"accounts": [account(private_key=CANARY)]}, env)
    assert config.accounts[0].private_key.reveal() == CANARY
    for text in (repr(config), str(config), summarize(config), repr(dataclasses.asdict(config))):
        assert_no_canary(text)
    secret = config.accounts[0].private_key
    assert repr(secret) == str(secret) == f"{secret}" == "Secret('********')"


def test_summarize_masks_keys(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        {"poll_interval": "1m30s", "value_price": "mid", "accounts": [account(public_key="ABCDEFGHIJKL")]},
    )
    text = summarize(config)
    assert "ABCD…" in text and "ABCDE" not in text
    assert PRIVATE not in text
    assert "1m30s" in text and "mid" in text and "main" in text
    assert len(text.splitlines()) > 5


def test_summarize_lists_warnings(tmp_path: Path) -> None:
    path = secret_file(tmp_path, "private", PRIVATE, 0o644)
    text = summarize(load(tmp_path, {"accounts": [account(private_key=None, private_key_file=path)]}))
    assert "readable by other users" in text


# --- reading the file with limits ----------------------------------------------------------------


@pytest.mark.parametrize("special", ["/dev/zero", "fifo"])
def test_config_file_must_be_a_regular_file(tmp_path: Path, special: str) -> None:
    # /dev/zero grew the process to 22.7 GB in a minute; a FIFO without a writer hung it.
    path = Path("/dev/zero") if special == "/dev/zero" else tmp_path / "fifo"
    if special == "fifo":
        os.mkfifo(path)
    with pytest.raises(ConfigError) as info:
        load_config(str(path), {})
    assert info.value.problems == [f"{path}: cannot read config file: not a regular file"]


def test_config_file_has_a_size_cap(tmp_path: Path) -> None:
    # A 20 MB YAML list took over 60 s and 1.6 GB to parse; past 1 MiB it is not a configuration.
    path = write_config(tmp_path, "accounts:\n" + "- 1\n" * (MAX_CONFIG_BYTES // 4))
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    assert info.value.problems == [f"{path}: cannot read config file: larger than 1 MiB"]


def test_config_file_just_under_the_cap_is_read(tmp_path: Path) -> None:
    text = yaml.safe_dump({"accounts": [account()]})
    text += "#" * (MAX_CONFIG_BYTES - len(text) - 1) + "\n"
    assert len(text.encode()) == MAX_CONFIG_BYTES
    assert len(load(tmp_path, text).accounts) == 1


def test_a_number_too_long_for_int_is_a_clear_error(tmp_path: Path) -> None:
    # int() refuses over 4300 digits with a ValueError that escaped as a traceback.
    [problem] = problems(tmp_path, "poll_interval: " + "9" * 5000 + "\n")
    assert problem.endswith(
        "invalid YAML at line 1, column 16: a number of over 1000 digits is not a setting"
    )


def test_a_repeated_top_level_key_is_refused_with_both_lines(tmp_path: Path) -> None:
    # A second accounts: used to drop the first account silently, and --check-config passed.
    text = yaml.safe_dump({"accounts": [account("a")]}) + yaml.safe_dump({"accounts": [account("b")]})
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    assert info.value.problems == [
        f"{path}: invalid YAML at line 5, column 1: duplicate key 'accounts' (first at line 1)"
    ]


def test_a_repeated_account_key_is_refused(tmp_path: Path) -> None:
    text = f"accounts:\n  - name: a\n    public_key: p\n    private_key: {PRIVATE}\n    name: b\n"
    [problem] = problems(tmp_path, text)
    assert problem.endswith("invalid YAML at line 5, column 5: duplicate key 'name' (first at line 2)")


def test_yaml_merge_keys_may_still_be_overridden(tmp_path: Path) -> None:
    text = (
        f"base: &base {{public_key: p, private_key: {PRIVATE}}}\n"
        "accounts:\n  - <<: *base\n    name: a\n    public_key: q\n"
    )
    [problem] = problems(tmp_path, text)
    assert problem.startswith("base: unknown key"), "the merge itself must be accepted"


# --- api_url -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["https://api.btcturk.com/api/v2/", "https://api.btcturk.com/api/v2", "https://api.btcturk.com/api"],
)
def test_api_url_with_the_api_path_is_refused(tmp_path: Path, url: str) -> None:
    # It passed --check-config and then requested /api/v2/api/v2/ticker.
    assert only_problem(tmp_path, {"api_url": url, "accounts": [account()]}) == (
        "api_url: give the base URL without the API path (the exporter adds /api/v1 and /api/v2), "
        f"like 'https://api.btcturk.com', got {url!r}"
    )


def test_api_url_with_a_proxy_prefix_is_kept(tmp_path: Path) -> None:
    assert load(tmp_path, {"api_url": "http://proxy:8080/btcturk/", "accounts": [account()]}).api_url == (
        "http://proxy:8080/btcturk"
    )


def test_api_url_with_a_password_is_refused(tmp_path: Path) -> None:
    problem = only_problem(tmp_path, {"api_url": "https://me:hunter2@proxy", "accounts": [account()]})
    assert problem == "api_url: must not hold a user name or password (give the host only)"


# --- the example file is safe to copy and edit ---------------------------------------------------


def _example_with(key: str, value: str) -> str:
    """config.example.yaml with one duration key set (uncommented if it was commented out)."""
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    matches = [i for i, line in enumerate(lines) if re.fullmatch(rf"(# )?{key}: \S+", line)]
    assert len(matches) == 1, (key, matches)
    lines[matches[0]] = f"{key}: {value}"
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("poll_interval", "5s"),
        ("poll_interval", "2s"),  # the shortest whole second that plans 2 accounts within 80%
        ("poll_interval", "1d"),
        ("timeout", "1s"),
        ("timeout", "29s"),
        ("max_staleness", "30s"),
        ("max_staleness", "1m"),
    ],
)
def test_each_example_duration_can_be_changed_alone(tmp_path: Path, key: str, value: str) -> None:
    config = load(tmp_path, _example_with(key, value))
    assert getattr(config, key) == parse_duration(value, key)


def test_example_comments_out_the_values_derived_from_poll_interval() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert re.search(r"^poll_interval: 30s$", text, re.M)
    for key, default in (("timeout", "10s"), ("max_staleness", "5m")):
        assert re.search(rf"^# {key}: {default}$", text, re.M), key
        assert not re.search(rf"^{key}:", text, re.M), key


# --- the key's permissions, where the reader is told to make a key ---------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "README.md",
        "config.example.yaml",
        "docker-compose.yml",
        "deploy/compose/live.yml",
        "deploy/kubernetes/secret.example.yaml",
    ],
)
def test_every_key_recipe_names_both_permissions_the_defaults_need(name: str) -> None:
    """A key made as one of these says, with only "Total Funds", gave btcturk_activity_up 0."""
    text = " ".join((EXAMPLE.parent / name).read_text(encoding="utf-8").split())
    assert "Total Funds" in text and "Account" in text, name
    assert "permission only" not in text and "only reads balances" not in text, name
    # The names BTCTurk's API Access page shows (exporter/api/permissions.py).
    assert re.search(r"\bTrade\b", text), f"{name} must say never to give the Trade permission"


# The duration forms the README and config.example.yaml show, typed unquoted into a file as a user
# would (a parser-level test would miss what YAML makes of them first).
@pytest.mark.parametrize(
    ("line", "attribute", "seconds"),
    [
        ("poll_interval: 30s", "poll_interval", 30.0),
        ("poll_interval: 2m", "poll_interval", 120.0),
        ("poll_interval: 1h30m", "poll_interval", 5400.0),
        ("poll_interval: 1d", "poll_interval", 86400.0),
        ("poll_interval: 90", "poll_interval", 90.0),
        ("timeout: 500ms", "timeout", 0.5),
        ("timeout: 1s500ms", "timeout", 1.5),
        ("max_staleness: 1w", "max_staleness", 7 * 86400.0),
    ],
)
def test_documented_duration_forms_load_as_typed(
    tmp_path: Path, line: str, attribute: str, seconds: float
) -> None:
    key = line.split(":")[0]
    # The example sets poll_interval itself: its line gives way, so that this one is the only one.
    rows = [row for row in EXAMPLE.read_text(encoding="utf-8").splitlines() if not row.startswith(f"{key}:")]
    text = "\n".join([*rows, line]) + "\n"
    assert getattr(load(tmp_path, text), attribute) == pytest.approx(seconds)
