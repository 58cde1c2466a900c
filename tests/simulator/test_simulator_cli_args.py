"""The simulator CLI's argument checks, in process (tests/integration/test_simulator_cli.py runs it)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from exporter.simulator import generate_keypair
from exporter.simulator.cli import build_parser, main, parse_key, read_keys_file

PUBLIC, PRIVATE = generate_keypair(77)


def test_parse_key_accepts_colon_or_space() -> None:
    assert parse_key(f"{PUBLIC}:{PRIVATE}", "x") == (PUBLIC, PRIVATE)
    assert parse_key(f"  {PUBLIC}   {PRIVATE} ", "x") == (PUBLIC, PRIVATE)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "expected PUBLIC:PRIVATE"),
        ("only-public", "expected PUBLIC:PRIVATE"),
        (f":{PRIVATE}", "expected PUBLIC:PRIVATE"),
        (f"pübl:{PRIVATE}", "printable ASCII"),
        ("pub:***", "the private key is not valid base64"),
    ],
)
def test_parse_key_names_the_problem_without_the_private_key(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=r"^--key #3: ") as caught:
        parse_key(text, "--key #3")
    assert problem in str(caught.value) and "***" not in str(caught.value)


def test_keys_file(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"# comment\n\n{PUBLIC}:{PRIVATE}\n", encoding="utf-8")
    assert read_keys_file(path) == [(PUBLIC, PRIVATE)]
    path.write_text("# nothing\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no key pairs in it"):
        read_keys_file(path)
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(ValueError, match="not UTF-8 text"):
        read_keys_file(path)
    path.write_bytes(b"#" * (2 << 20))
    with pytest.raises(ValueError, match="larger than"):
        read_keys_file(path)
    with pytest.raises(ValueError, match="No such file"):
        read_keys_file(tmp_path / "missing")


@pytest.mark.parametrize(
    "argv",
    [
        ["--accounts", "0"],
        ["--drift-interval", "inf"],
        ["--port", "-1"],
        ["--key", "x"],
        ["--port", "x"],
        ["--history-days", "366"],
        ["--history-days", "-1"],
        ["--history-days", "lots"],
    ],
)
def test_bad_arguments_exit_2_with_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "(see --help)" in err


def test_defaults() -> None:
    args = build_parser().parse_args([])
    assert (args.port, args.accounts, args.market, args.drift_interval) == (8081, None, "default", 5.0)
    assert args.history_days == 90


def test_port_in_use_returns_1(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        assert main(["--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert (
        err.strip()
        == f"python -m exporter.simulator: error: cannot listen on 127.0.0.1:{port}: Address already in use"
    )
