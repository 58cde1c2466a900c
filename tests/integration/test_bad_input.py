"""Bad input on the command line: one clear line per problem, a non-zero exit, and nothing served.

Every case runs the real CLI (`python -m exporter`) as a subprocess, both as a normal start and with
--check-config. The listen address given to the normal start is a port this test holds itself: had the
exporter got as far as binding, it would have complained about that port instead of the config, so
an error about the config alone shows it stopped before serving anything. The API URL points at a
simulator that must see no request at all: no poll ever started.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import sample, start_exporter

from exporter.simulator import Simulator, generate_keypair

PROG = "btcturk-exporter: "
PUBLIC, PRIVATE = generate_keypair(seed=41)
OTHER_PUBLIC, OTHER_PRIVATE = generate_keypair(seed=42)
NOT_BASE64 = "this-is-not*base64!private-key"


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator() as simulator:
        simulator.add_account(PUBLIC, PRIVATE)
        simulator.add_account(OTHER_PUBLIC, OTHER_PRIVATE)
        yield simulator


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port that is taken (listening) for the duration of the test."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("BTCTURK_")}
    base.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "exporter", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=base,
    )


def valid(sim: Simulator, **overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "api_url": sim.url,
        "poll_interval": "1s",
        "timeout": "500ms",
        "accounts": [{"name": "main", "public_key": PUBLIC, "private_key": PRIVATE}],
    }
    doc.update(overrides)
    return doc


def write(tmp_path: Path, doc: dict[str, Any] | str, name: str = "config.yml") -> Path:
    path = tmp_path / name
    path.write_text(
        doc if isinstance(doc, str) else yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8"
    )
    return path


def refused(result: subprocess.CompletedProcess[str], *expected: str) -> list[str]:
    """Assert a clean refusal: exit 1, one prefixed line per expected problem, no traceback, no output."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == len(expected), lines
    for line, text in zip(lines, expected, strict=True):
        assert line.startswith(PROG), line
        assert text in line, (text, line)
    assert "started" not in result.stderr
    return lines


def check_both_ways(
    sim: Simulator, port: int, path: Path | str, *expected: str, env: dict[str, str] | None = None
) -> None:
    before = sim.stats()
    refused(run_cli("--check-config", "--config.file", str(path), env=env), *expected)
    lines = refused(
        run_cli("--config.file", str(path), "--web.listen-address", f"127.0.0.1:{port}", env=env), *expected
    )
    assert not any("--web.listen-address" in line for line in lines), "it got as far as binding"
    assert sim.stats() == before, "a poll started"


# --- the configuration file ----------------------------------------------------------------------


def test_missing_file(sim: Simulator, held_port: int, tmp_path: Path) -> None:
    path = tmp_path / "nope.yml"
    check_both_ways(sim, held_port, path, f"{path}: cannot read config file: No such file or directory")


@pytest.mark.parametrize("kind", ["directory", "not-utf8", "no-permission"])
def test_unreadable_file(sim: Simulator, held_port: int, tmp_path: Path, kind: str) -> None:
    path = tmp_path / "config.yml"
    if kind == "directory":
        path.mkdir()
        expected = f"{path}: cannot read config file: Is a directory"
    elif kind == "not-utf8":
        path.write_bytes(b"api_url: http://caf\xe9\n")
        expected = f"{path}: cannot read config file: not UTF-8 text"
    else:
        write(tmp_path, valid(sim))
        path.chmod(0)
        if os.access(path, os.R_OK):
            pytest.skip("running as root: permissions do not stop reading")
        expected = f"{path}: cannot read config file: Permission denied"
    check_both_ways(sim, held_port, path, expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("accounts: [\n", "invalid YAML at line 2, column 1"),
        ("api_url: 'unterminated\n", "invalid YAML at line"),
        ("a: b: c\n", "invalid YAML at line 1, column 5"),
        ("\tpoll_interval: 30s\n", "invalid YAML at line 1, column 1"),
        ("- just\n- a list\n", "the top level must be a mapping of settings, got list"),
    ],
    ids=["unclosed-list", "unterminated-string", "nested-colon", "tab", "top-level-list"],
)
def test_invalid_yaml(sim: Simulator, held_port: int, tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    check_both_ways(sim, held_port, path, f"{path}: {expected}")


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"poll_interval": [1, 2]}, "poll_interval: expected a duration, got list"),
        ({"timeout": True}, "timeout: expected a duration, got boolean"),
        ({"export_all_pairs": "yes please"}, "export_all_pairs: expected true or false, got string"),
        ({"api_url": 8080}, "api_url: expected a string, got integer"),
        ({"accounts": "main"}, "accounts: expected a list of accounts, got string"),
        ({"accounts": ["main"]}, "accounts[0]: expected a mapping with name, public_key and private_key"),
        ({"value_currencies": "TRY"}, "value_currencies: must be a non-empty list of asset symbols"),
        (
            {"accounts": [{"name": 7, "public_key": PUBLIC, "private_key": PRIVATE}]},
            "accounts[0].name: expected a string, got integer",
        ),
        ({"api_url": "ftp://example"}, "api_url: must be an http:// or https:// URL"),
        ({"value_price": "close"}, "value_price: must be one of last, bid, mid"),
    ],
    ids=lambda v: str(v)[:30] if isinstance(v, str) else None,
)
def test_wrong_types(
    sim: Simulator, held_port: int, tmp_path: Path, overrides: dict[str, Any], expected: str
) -> None:
    check_both_ways(sim, held_port, write(tmp_path, valid(sim, **overrides)), expected)


def test_unknown_keys(sim: Simulator, held_port: int, tmp_path: Path) -> None:
    doc = valid(sim, pol_interval="30s")
    doc["accounts"][0]["privat_key_file"] = "x"
    check_both_ways(
        sim,
        held_port,
        write(tmp_path, doc),
        "pol_interval: unknown key (did you mean poll_interval?",
        "accounts[0].privat_key_file: unknown key (did you mean private_key_file?",
    )


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("poll_interval", "-5s", "must be a duration like 30s, 1m30s or 500ms"),
        ("poll_interval", 0, "must be a positive duration like 30s, got 0"),
        ("poll_interval", "0s", "must be a positive duration like 30s, got '0s'"),
        ("timeout", -1, "must be a positive duration like 30s, got -1"),
        ("timeout", "0ms", "must be a positive duration like 30s, got '0ms'"),
        ("poll_interval", "1.5s", "fractions are not allowed (write 1s500ms"),
    ],
)
def test_negative_zero_or_fractional_durations(
    sim: Simulator, held_port: int, tmp_path: Path, key: str, value: object, expected: str
) -> None:
    check_both_ways(sim, held_port, write(tmp_path, valid(sim, **{key: value})), f"{key}: {expected}")


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("poll_interval", "3000000h", "poll_interval: must be at most 1d, got '3000000h'"),
        ("timeout", "1h", "timeout: must be at most 10m, got '1h'"),
        ("max_staleness", "1y", "max_staleness: must be at most 4w2d, got '1y'"),
    ],
)
def test_durations_beyond_their_bound(
    sim: Simulator, held_port: int, tmp_path: Path, key: str, value: str, expected: str
) -> None:
    # A 3000000h poll_interval used to start, overflow Event.wait and log errors in a tight loop.
    check_both_ways(sim, held_port, write(tmp_path, valid(sim, **{key: value})), expected)


@pytest.mark.parametrize("special", ["/dev/zero", "fifo"])
def test_config_file_that_is_not_a_regular_file(
    sim: Simulator, held_port: int, tmp_path: Path, special: str
) -> None:
    # /dev/zero grew the process to 22.7 GB in a minute and a FIFO hung it; run_cli's timeout would fail.
    path = Path("/dev/zero") if special == "/dev/zero" else tmp_path / "fifo"
    if special == "fifo":
        os.mkfifo(path)
    check_both_ways(sim, held_port, path, f"{path}: cannot read config file: not a regular file")


def test_config_file_over_the_size_cap(sim: Simulator, held_port: int, tmp_path: Path) -> None:
    path = write(tmp_path, "accounts:\n" + "- 1\n" * 300_000)
    check_both_ways(sim, held_port, path, f"{path}: cannot read config file: larger than 1 MiB")


def test_repeated_key_in_the_config_file(sim: Simulator, held_port: int, tmp_path: Path) -> None:
    # The second accounts: used to replace the first silently, and --check-config passed.
    text = yaml.safe_dump(valid(sim)) + yaml.safe_dump(
        {"accounts": [{"name": "other", "public_key": OTHER_PUBLIC, "private_key": OTHER_PRIVATE}]}
    )
    first = 1 + next(i for i, line in enumerate(text.splitlines()) if line.startswith("accounts:"))
    second = 1 + [i for i, line in enumerate(text.splitlines()) if line.startswith("accounts:")][1]
    check_both_ways(
        sim,
        held_port,
        write(tmp_path, text),
        f"invalid YAML at line {second}, column 1: duplicate key 'accounts' (first at line {first})",
    )


def test_api_url_with_the_api_path(sim: Simulator, held_port: int, tmp_path: Path) -> None:
    # It passed --check-config and then requested /api/v2/api/v2/ticker.
    check_both_ways(
        sim,
        held_port,
        write(tmp_path, valid(sim, api_url=sim.url + "/api/v2/")),
        f"api_url: give the base URL without the API path (the exporter adds /api/v1 and /api/v2), "
        f"like {sim.url!r}",
    )


def test_secret_file_that_does_not_exist(sim: Simulator, held_port: int, tmp_path: Path) -> None:
    doc = valid(sim)
    doc["accounts"][0] = {"name": "main", "public_key": PUBLIC, "private_key_file": "secrets/missing"}
    missing = tmp_path / "secrets" / "missing"
    check_both_ways(
        sim,
        held_port,
        write(tmp_path, doc),
        f"accounts[0].private_key_file: cannot read {missing}: No such file or directory",
    )


def test_secret_file_from_the_environment_that_does_not_exist(
    sim: Simulator, held_port: int, tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere"
    env = {"BTCTURK_PUBLIC_KEY": OTHER_PUBLIC, "BTCTURK_PRIVATE_KEY_FILE": str(missing)}
    check_both_ways(
        sim,
        held_port,
        write(tmp_path, valid(sim, poll_interval="2s")),  # two accounts: within the planned budget
        f"BTCTURK_PRIVATE_KEY_FILE: cannot read {missing}: No such file or directory",
        env=env,
    )


@pytest.mark.parametrize("where", ["inline", "file", "environment"])
def test_private_key_not_base64(sim: Simulator, held_port: int, tmp_path: Path, where: str) -> None:
    doc, env = valid(sim, poll_interval="2s"), None  # the environment adds a second account
    if where == "inline":
        doc["accounts"][0]["private_key"] = NOT_BASE64
        expected = "accounts[0].private_key: not valid base64"
    elif where == "file":
        key_file = tmp_path / "private.key"
        key_file.write_text(NOT_BASE64)
        key_file.chmod(0o600)
        del doc["accounts"][0]["private_key"]
        doc["accounts"][0]["private_key_file"] = str(key_file)
        expected = f"accounts[0].private_key_file: not valid base64 (read from {key_file})"
    else:
        env = {"BTCTURK_PUBLIC_KEY": OTHER_PUBLIC, "BTCTURK_PRIVATE_KEY": NOT_BASE64}
        expected = "BTCTURK_PRIVATE_KEY: not valid base64"
    path = write(tmp_path, doc)
    check_both_ways(sim, held_port, path, expected, env=env)
    # The bad key itself is never echoed.
    assert NOT_BASE64 not in run_cli("--check-config", "--config.file", str(path), env=env).stderr


def test_duplicate_accounts(sim: Simulator, held_port: int, tmp_path: Path) -> None:
    doc = valid(sim, poll_interval="2s")
    doc["accounts"].append({"name": "main", "public_key": OTHER_PUBLIC, "private_key": OTHER_PRIVATE})
    check_both_ways(
        sim,
        held_port,
        write(tmp_path, doc),
        "accounts[1].name: duplicate account name 'main' (also accounts[0])",
    )


def test_a_line_break_in_a_key_stays_on_its_line(sim: Simulator, held_port: int, tmp_path: Path) -> None:
    doc = valid(sim, **{"poll\ninterval": "30s"})
    doc["accounts"][0]["private_key_file"] = "a\u2028b"
    del doc["accounts"][0]["private_key"]
    check_both_ways(
        sim,
        held_port,
        write(tmp_path, doc),
        "poll\\ninterval: unknown key",
        "accounts[0].private_key_file: cannot read",
    )


def test_every_problem_is_one_line(sim: Simulator, held_port: int, tmp_path: Path) -> None:
    doc = valid(sim, poll_interval="-1s", value_price="close", colour="blue")
    doc["accounts"][0]["private_key"] = NOT_BASE64
    check_both_ways(
        sim,
        held_port,
        write(tmp_path, doc),
        "colour: unknown key",
        "poll_interval: must be a duration",
        "value_price: must be one of",
        "accounts[0].private_key: not valid base64",
    )


def test_world_readable_secret_file_starts_with_a_warning(sim: Simulator, tmp_path: Path) -> None:
    key_file = tmp_path / "private.key"
    key_file.write_text(PRIVATE + "\n")
    key_file.chmod(0o644)
    doc = valid(sim)
    doc["accounts"][0] = {"name": "main", "public_key": PUBLIC, "private_key_file": str(key_file)}
    warning = f"accounts[0].private_key_file: {key_file} is readable by other users"

    checked = run_cli("--check-config", "--config.file", str(write(tmp_path, doc)))
    assert checked.returncode == 0, checked.stderr
    # Once, in the summary: not again on stderr.
    assert checked.stdout.count(warning) == 1 and checked.stderr == ""

    exporter = start_exporter(tmp_path, doc)
    try:
        assert sample(exporter.metrics(), "btcturk_up", account="main") == 1
        warned = [
            r for r in exporter.log_records() if r.get("level") == "warn" and warning in r.get("msg", "")
        ]
        assert len(warned) == 1, exporter.log_text()
        assert PRIVATE not in exporter.log_text()
    finally:
        assert exporter.terminate() == 0


# --- flags and environment ----------------------------------------------------------------------


def test_abbreviated_flags_are_refused(sim: Simulator, tmp_path: Path) -> None:
    path = write(tmp_path, valid(sim))
    for abbreviation, meant in (
        ("--conf", "--config.file"),
        ("--config", "--config.file"),
        ("--web.listen", "--web.listen-address"),
        ("--check", "--check-config"),
    ):
        result = run_cli(f"{abbreviation}={path}" if abbreviation != "--check" else abbreviation)
        assert result.returncode == 2, (abbreviation, result.stderr)
        # One line, as for a mistyped variable or key: not eight lines of usage first.
        assert result.stderr == f"{PROG}unknown flag {abbreviation}; did you mean {meant}?\n"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--conf", "config.yml"], "unknown flag --conf; did you mean --config.file?"),
        (["--confg.file=config.yml"], "unknown flag --confg.file; did you mean --config.file?"),
        (["--no-such-flag"], "unknown flag --no-such-flag; --help lists the flags"),
        (["config.yml"], "unexpected argument 'config.yml' (every setting is a --flag; --help lists them)"),
        (["--log.level=verbose"], "argument --log.level: invalid choice: 'verbose'"),
        (["--config.file"], "argument --config.file: expected one argument"),
    ],
)
def test_a_flag_mistake_is_one_line(args: list[str], expected: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"{PROG}{expected}"), line


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def refused_and_not_listening(*args: str, env: dict[str, str], expected: str) -> None:
    """Both --check-config and a normal start exit 1 with one line; nothing listens on the port after."""
    refused(run_cli("--check-config", *args, env=env), expected)
    port = free_port()
    refused(run_cli(*args, "--web.listen-address", f"127.0.0.1:{port}", env=env), expected)
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def test_no_accounts_is_an_error_not_the_demo() -> None:
    result = run_cli("--web.listen-address", f"127.0.0.1:{free_port()}")
    [line] = refused(result, "no accounts configured: looked for --config.file, BTCTURK_PUBLIC_KEY")
    for looked_for in (
        "BTCTURK_PRIVATE_KEY",
        "BTCTURK_PUBLIC_KEY_FILE",
        "BTCTURK_PRIVATE_KEY_FILE",
        "--demo",
    ):
        assert looked_for in line
    refused_and_not_listening(env={}, expected="no accounts configured")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"BTCTURK_PUBLIK_KEY": PUBLIC, "BTCTURK_PRIVATE_KEY": PRIVATE},
            "BTCTURK_PUBLIK_KEY: unknown environment variable (did you mean BTCTURK_PUBLIC_KEY?",
        ),
        ({"BTCTURK_PUBLIC_KEY": "", "BTCTURK_PRIVATE_KEY": ""}, "BTCTURK_PRIVATE_KEY: set but empty"),
        ({"BTCTURK_PUBLIC_KEY": PUBLIC}, "BTCTURK_PRIVATE_KEY: required when BTCTURK_PUBLIC_KEY is set"),
    ],
    ids=["misspelled", "empty", "half-set"],
)
def test_bad_key_variables_stop_the_start(env: dict[str, str], expected: str) -> None:
    if len(env) == 2 and not any(env.values()):
        # Both empty: one line each.
        for args in ((), ("--check-config",)):
            refused(
                run_cli(*args, "--web.listen-address", f"127.0.0.1:{free_port()}", env=env),
                "BTCTURK_PRIVATE_KEY: set but empty",
                "BTCTURK_PUBLIC_KEY: set but empty",
            )
        return
    refused_and_not_listening(env=env, expected=expected)


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (("--config.file", "c.yml"), {}, "--demo: cannot be combined with --config.file"),
        ((), {"BTCTURK_PUBLIC_KEY_FILE": "/k"}, "--demo: cannot be combined with BTCTURK_PUBLIC_KEY_FILE"),
        ((), {"BTCTURK_API_URL": "http://127.0.0.1:1"}, "--demo: cannot be combined with BTCTURK_API_URL"),
    ],
    ids=["config-file", "key-variable", "api-url"],
)
def test_demo_with_real_settings_is_refused(
    args: tuple[str, ...], env: dict[str, str], expected: str
) -> None:
    port = free_port()
    refused(run_cli("--demo", *args, "--web.listen-address", f"127.0.0.1:{port}", env=env), expected)
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def test_demo_flags_need_demo(sim: Simulator, tmp_path: Path) -> None:
    path = write(tmp_path, valid(sim))
    refused(run_cli("--config.file", str(path), "--demo.accounts", "2"), "--demo.accounts: only with --demo")


# --- the listen address --------------------------------------------------------------------------


def test_listen_address_taken(sim: Simulator, held_port: int, tmp_path: Path) -> None:
    path = write(tmp_path, valid(sim))
    before = sim.stats()
    result = run_cli("--config.file", str(path), "--web.listen-address", f"127.0.0.1:{held_port}")
    refused(result, f"--web.listen-address: cannot listen on 127.0.0.1:{held_port}: Address already in use")
    assert sim.stats() == before, "polling started although nothing could be served"


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("nope", "expected HOST:PORT, got 'nope'"),
        (":99999", "the port must be 0 to 65535, got ':99999'"),
        (":80000", "the port must be 0 to 65535, got ':80000'"),
        (":" + "9" * 5000, "the port must be 0 to 65535, got ':9999"),
        ("127.0.0.1:", "expected HOST:PORT, got '127.0.0.1:'"),
        ("127.0.0.1:-1", "expected HOST:PORT, got '127.0.0.1:-1'"),
        (":²", "expected HOST:PORT, got ':²'"),
        ("::1:9000", "put IPv6 addresses in brackets, got '::1:9000'"),
        # Not an IPv4 address: refused as such, without asking a DNS server about "1.2.3.4.5".
        ("1.2.3.4.5:80", "not a valid IP address: '1.2.3.4.5'"),
        ("256.1.1.1:80", "not a valid IP address: '256.1.1.1'"),
        ("[nope]:80", "not a valid IPv6 address: 'nope'"),
    ],
    ids=[
        "word",
        "port-too-big",
        "port-80000",
        "port-of-5000-digits",
        "no-port",
        "negative-port",
        "superscript-port",
        "unbracketed-v6",
        "five-octets",
        "octet-over-255",
        "bracketed-name",
    ],
)
def test_malformed_listen_address(sim: Simulator, tmp_path: Path, address: str, expected: str) -> None:
    path = write(tmp_path, valid(sim))
    before = sim.stats()
    refused(
        run_cli("--config.file", str(path), "--web.listen-address", address),
        f"--web.listen-address: {expected}",
    )
    assert sim.stats() == before


def test_one_account_is_one_account() -> None:
    refused(
        run_cli("--demo", "--demo.accounts", "1", "--demo.poll-interval", "100ms"),
        "--demo.poll-interval: 1 account needs at least 625ms",
    )


def test_check_config_names_the_example_files_placeholder_keys() -> None:
    example = Path(__file__).resolve().parents[2] / "config.example.yaml"
    checked = run_cli("--check-config", "--config.file", str(example))
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr == ""
    for index, key in enumerate(("example-public-key-main", "example-public-key-savings")):
        line = f"  - accounts[{index}].public_key: {key!r} is a placeholder from config.example.yaml"
        assert checked.stdout.count(line) == 1, checked.stdout
