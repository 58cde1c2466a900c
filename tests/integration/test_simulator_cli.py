"""`python -m exporter.simulator` as a user runs it: keys, one-line errors, never a traceback."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from exporter.api.signing import auth_headers, decode_private_key
from exporter.simulator import BALANCES_PATH, SERVER_TIME_PATH, generate_keypair

TIMEOUT = 10.0
COMMAND = [sys.executable, "-m", "exporter.simulator"]
USER_PUBLIC, USER_PRIVATE = generate_keypair(4242)
OTHER_PUBLIC, OTHER_PRIVATE = generate_keypair(4343)


@contextmanager
def running(accounts: int, *args: str) -> Iterator[tuple[str, list[str]]]:
    """Start the simulator; yield its URL and the `accounts` account lines it printed."""
    process = subprocess.Popen([*COMMAND, "--port", "0", *args], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split()[-1]
        lines = [process.stdout.readline() for _ in range(accounts)]
        assert all(line.startswith("account ") for line in lines), lines
        yield url, lines
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=TIMEOUT) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def balances(url: str, public: str, private: str, path: str = BALANCES_PATH) -> requests.Response:
    stamp = requests.get(url + SERVER_TIME_PATH, timeout=TIMEOUT).json()["serverTime"]
    headers = auth_headers(public, decode_private_key(private), stamp)
    return requests.get(url + path, headers=headers, timeout=TIMEOUT)


def fails(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*COMMAND, *args], capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert result.stdout == "" or "listening" not in result.stdout
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result


def test_command_line_runs_and_stops_on_sigterm() -> None:
    command = [*COMMAND, "--port", "0", "--accounts", "2", "--seed", "1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split()[-1]
        lines = [process.stdout.readline() for _ in range(2)]
        accounts = [dict(part.split("=", 1) for part in line.split()[2:]) for line in lines]
        assert url.startswith("http://127.0.0.1:")
        assert process.stdout.readline().startswith("(throwaway test keys")
        # Both hosts: api_url alone left the price history at graph-api.btcturk.com, failing forever.
        assert process.stdout.readline() == f"point the exporter's api_url and graph_api_url both at {url}\n"
        assert accounts[0]["public_key"] != accounts[1]["public_key"]
        key = accounts[1]
        assert balances(url, key["public_key"], key["private_key"]).status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=TIMEOUT) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_users_own_key_is_served_and_never_printed() -> None:
    with running(1, "--key", f"{USER_PUBLIC}:{USER_PRIVATE}") as (url, lines):
        assert balances(url, USER_PUBLIC, USER_PRIVATE).status_code == 200
        assert balances(url, USER_PUBLIC, OTHER_PRIVATE).status_code == 401
        # Months of history behind the balances by default: the last 30 days hold trades.
        trades = balances(url, USER_PUBLIC, USER_PRIVATE, "/api/v1/users/transactions/trade")
        assert trades.status_code == 200 and trades.json()["data"]
        printed = "".join(lines)
        assert USER_PUBLIC in printed and USER_PRIVATE not in printed
        assert "private_key=" not in printed  # no throwaway account unless asked for


def test_keys_file_serves_every_pair_in_it(tmp_path: Path) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text(f"# my accounts\n{USER_PUBLIC}:{USER_PRIVATE}\n\n{OTHER_PUBLIC} {OTHER_PRIVATE}\n")
    with running(2, "--keys-file", str(keys)) as (url, lines):
        assert balances(url, USER_PUBLIC, USER_PRIVATE).status_code == 200
        assert balances(url, OTHER_PUBLIC, OTHER_PRIVATE).status_code == 200
        assert USER_PRIVATE not in "".join(lines) and OTHER_PRIVATE not in "".join(lines)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--accounts", "0"], "--accounts: must be between 1 and 1000, got 0"),
        (["--accounts", "many"], "--accounts: expected a whole number"),
        (["--drift-interval", "0"], "--drift-interval: must be more than 0 seconds"),
        (["--drift-interval", "-1"], "--drift-interval: must be more than 0 seconds"),
        (["--drift-interval", "nan"], "--drift-interval: must be more than 0 seconds"),
        (["--port", "70000"], "--port: must be between 0 and 65535, got 70000"),
        (["--market", "huge"], "--market: invalid choice"),
        (["--history-days", "1000"], "--history-days: must be between 0 and 365, got 1000"),
        (["--key", "just-a-public-key"], "--key #1: expected PUBLIC:PRIVATE"),
        (["--key", "pub:not base64!"], "--key #1: the private key is not valid base64"),
        (["--keys-file", "/nonexistent/keys.txt"], "--keys-file /nonexistent/keys.txt: No such file"),
        (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(args: list[str], expected: str) -> None:
    result = fails(*args)
    assert result.returncode == 2
    assert expected in result.stderr
    assert "not base64!" not in result.stderr  # a private key is never echoed


def test_bad_line_in_keys_file_names_the_line(tmp_path: Path) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text(f"{USER_PUBLIC}:{USER_PRIVATE}\n{OTHER_PUBLIC}:{OTHER_PRIVATE}%%\n")
    result = fails("--keys-file", str(keys))
    assert result.returncode == 2
    assert f"--keys-file {keys} line 2: the private key is not valid base64" in result.stderr
    assert OTHER_PRIVATE not in result.stderr


def test_port_in_use_is_one_line_and_exit_1() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        result = fails("--port", str(port))
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr


@pytest.mark.parametrize("host", ["256.1.1.1", "192.0.2.1"])
def test_bad_host_is_one_line_and_exit_1(host: str) -> None:
    result = fails("--host", host, "--port", "0")
    assert result.returncode == 1
    assert f"cannot listen on {host}:0:" in result.stderr
