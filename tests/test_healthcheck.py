"""The container health probe finds the address the exporter was given, and speaks TLS when it does."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from pki import Pki

from exporter.api.errors import REASONS
from exporter.healthcheck import Target, find_exporter, flags_of, main, probe, target_from
from exporter.metrics.renderer import Renderer
from exporter.metrics.series import Settings
from exporter.poll.snapshot import Store
from exporter.web.server import start_server


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["btcturk-exporter"], Target()),
        (["/usr/local/bin/btcturk-exporter", "--web.listen-address=:9100"], Target(":9100")),
        (
            ["/sbin/docker-init", "--", "btcturk-exporter", "--web.listen-address", "127.0.0.1:9100"],
            Target("127.0.0.1:9100"),
        ),
        (
            ["python", "-m", "exporter", "--web.config.file", "/etc/web.yml", "--web.listen-address=[::]:1"],
            Target("[::]:1", "/etc/web.yml"),
        ),
        (["python", "-m", "exporter.healthcheck"], None),
        (["sleep", "60"], None),
    ],
)
def test_flags_of_a_command_line(argv: list[str], expected: Target | None) -> None:
    assert flags_of(argv) == expected


def fake_proc(root: Path, processes: dict[int, list[str]]) -> Path:
    for pid, argv in processes.items():
        (root / str(pid)).mkdir(parents=True)
        (root / str(pid) / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    (root / "self").mkdir()
    return root


def test_the_exporter_is_found_as_pid_1_or_under_an_init(tmp_path: Path) -> None:
    as_pid_1 = fake_proc(tmp_path / "a", {1: ["btcturk-exporter", "--web.listen-address=:9100"], 7: ["sh"]})
    assert find_exporter(as_pid_1) == Target(":9100")
    under_init = fake_proc(
        tmp_path / "b",
        {1: ["/sbin/docker-init", "--", "sh"], 12: ["btcturk-exporter", "--web.listen-address", ":9200"]},
    )
    assert find_exporter(under_init) == Target(":9200")
    assert find_exporter(tmp_path / "nothing") == Target()  # no /proc: the default port


def test_arguments_win_over_discovery(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, {1: ["btcturk-exporter", "--web.listen-address=:9100"]})
    assert target_from(["9300"], proc) == Target("127.0.0.1:9300")
    assert target_from(["--web.listen-address=:9400"], proc) == Target(":9400")
    assert target_from([], proc) == Target(":9100")


@pytest.fixture
def tls_port(pki: Pki) -> Iterator[int]:
    store = Store(["main"], REASONS)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    renderer = Renderer(Settings(30.0, 300.0, ("TRY",), "last", False), store.view)
    server, thread = start_server("127.0.0.1:0", renderer, store.view, ssl_context=context)
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(2)


def test_probe_follows_the_configured_address_and_tls(tls_port: int, tmp_path: Path, pki: Pki) -> None:
    web = tmp_path / "web.yml"
    web.write_text(f"tls_server_config:\n  cert_file: {pki.server_cert}\n  key_file: {pki.server_key}\n")
    proc = fake_proc(
        tmp_path / "proc",
        {1: ["btcturk-exporter", f"--web.listen-address=:{tls_port}", f"--web.config.file={web}"]},
    )
    target = find_exporter(proc)
    assert probe(target)
    assert main([f"--web.listen-address=127.0.0.1:{tls_port}", f"--web.config.file={web}"]) == 0
    assert main([str(tls_port)]) == 0  # the old form: a bare port, either scheme


def test_probe_fails_where_nothing_listens(tls_port: int) -> None:
    assert not probe(Target("127.0.0.1:1"))
    assert not probe(Target("not an address"))
    assert main(["--web.listen-address=127.0.0.1:1"]) == 1
