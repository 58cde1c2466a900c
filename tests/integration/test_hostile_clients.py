"""The real exporter under idle, slow (slowloris) and bursting clients: a normal scrape still answers.

Each test holds hundreds or thousands of hostile connections open against an exporter process on
loopback, then scrapes it as Prometheus would, on a fresh connection. The bounds are generous (2 s
for an answer that takes milliseconds): they assert availability, not speed. The exporter's thread
count is read from /proc, and must not grow with the number of connections.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import bcrypt
import pytest
import requests
from pki import Pki
from support import ExporterProcess, wait_for

from exporter.web.registry import Limits

# A scrape held up behind the hostile connections would wait until the server cuts them off at the
# header deadline: that is the bound, not a figure of milliseconds (speed is for benchmarks/).
ANSWER_WITHIN = Limits().header_timeout
# Main thread, selector thread, 8 workers, poller and the demo simulator with its pooled connections.
MAX_THREADS = 40


def threads_of(exporter: ExporterProcess) -> int:
    for line in Path(f"/proc/{exporter.proc.pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads: line in /proc/PID/status")


def scrape_answers_in_time(exporter: ExporterProcess, **kwargs: object) -> None:
    """A new scraper's /metrics answers 200 with the exposition within ANSWER_WITHIN seconds."""
    started = time.monotonic()
    response = requests.get(exporter.url + "/metrics", timeout=ANSWER_WITHIN, **kwargs)  # type: ignore[arg-type]
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert "btcturk_up" in response.text
    assert elapsed < ANSWER_WITHIN, f"/metrics took {elapsed:.2f}s"


@contextlib.contextmanager
def connections(port: int, count: int, first: bytes = b"") -> Iterator[list[socket.socket]]:
    """Open `count` connections that send `first` (maybe nothing) and then hold still."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            except OSError:
                continue  # refused or reset under the burst: that is the server protecting itself
            socks.append(sock)
            if first:
                with contextlib.suppress(OSError):
                    sock.sendall(first)
        yield socks
    finally:
        for sock in socks:
            sock.close()


@contextlib.contextmanager
def byte_a_second(socks: list[socket.socket]) -> Iterator[Callable[[], int]]:
    """Trickle a never-ending request header into every socket, one byte per socket per second.

    Yields a function giving the number of rounds trickled so far.
    """
    stop = threading.Event()
    rounds = [0]

    def trickle() -> None:
        while not stop.is_set():
            for sock in socks:
                with contextlib.suppress(OSError):
                    sock.send(b"X")
            rounds[0] += 1
            stop.wait(1.0)  # pacing, not synchronisation

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        yield lambda: rounds[0]
    finally:
        stop.set()
        thread.join(5)


@pytest.fixture
def demo(exporter_factory: Callable[..., ExporterProcess]) -> ExporterProcess:
    return exporter_factory(None, "--demo", "--demo.poll-interval", "1s")


def test_idle_connections_hold_no_threads_and_delay_no_scrape(demo: ExporterProcess) -> None:
    before = threads_of(demo)
    with connections(demo.port, 300):
        scrape_answers_in_time(demo)
        assert threads_of(demo) <= max(before, MAX_THREADS)
    scrape_answers_in_time(demo)


def test_slowloris_delays_no_scrape(demo: ExporterProcess) -> None:
    with (
        connections(demo.port, 300, b"GET /metrics HTTP/1.1\r\nHost: x\r\n") as socks,
        byte_a_second(socks) as rounds,
    ):
        # A scrape in each of several seconds of trickling.
        while (seen := rounds()) < 4:
            scrape_answers_in_time(demo)
            assert threads_of(demo) <= MAX_THREADS
            wait_for(lambda seen=seen: rounds() > seen, 5, what="the next trickle round")
    scrape_answers_in_time(demo)


def test_a_burst_of_connections_delays_no_scrape_during_or_after(demo: ExporterProcess) -> None:
    with connections(demo.port, 3000, b"GET /metrics HTTP/1.1\r\n"):
        scrape_answers_in_time(demo)
        assert threads_of(demo) <= MAX_THREADS
    scrape_answers_in_time(demo)
    # A scraper on a kept-alive connection is still served after the burst.
    with requests.Session() as session:
        for _ in range(3):
            assert session.get(demo.url + "/metrics", timeout=ANSWER_WITHIN).status_code == 200


def test_tls_idle_and_half_handshakes_delay_no_scrape(
    exporter_factory: Callable[..., ExporterProcess], pki: Pki, tmp_path: Path
) -> None:
    web = tmp_path / "web.yml"
    web.write_text(f"tls_server_config:\n  cert_file: {pki.server_cert}\n  key_file: {pki.server_key}\n")
    exporter = exporter_factory(
        None, "--demo", "--demo.poll-interval", "1s", "--web.config.file", str(web), ready=False
    )
    exporter.scheme = "https"
    exporter.session.verify = str(pki.server_cert)
    exporter.session.trust_env = False
    verify = {"verify": str(pki.server_cert)}
    # No handshake at all, the first bytes of one, and complete handshakes that then send nothing.
    with (
        connections(exporter.port, 150),
        connections(exporter.port, 150, b"\x16\x03\x01\x00"),
    ):
        context = ssl.create_default_context(cafile=str(pki.server_cert))
        done = []
        for _ in range(50):
            raw = socket.create_connection(("127.0.0.1", exporter.port), timeout=5)
            done.append(context.wrap_socket(raw, server_hostname="localhost"))
        try:
            scrape_answers_in_time(exporter, **verify)
            assert threads_of(exporter) <= MAX_THREADS
        finally:
            for sock in done:
                sock.close()
    scrape_answers_in_time(exporter, **verify)


def test_a_flood_of_wrong_passwords_starves_no_scraper(
    exporter_factory: Callable[..., ExporterProcess], tmp_path: Path
) -> None:
    password = "scrape-me"
    # Each wrong password costs the exporter ~0.1 s of CPU (cost 10, the bcrypt default is 12).
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()
    web = tmp_path / "web.yml"
    web.write_text(f"basic_auth_users:\n  prometheus: '{hashed}'\n")
    exporter = exporter_factory(None, "--demo", "--demo.poll-interval", "1s", "--web.config.file", str(web))
    stop = threading.Event()
    attempts = [0]

    def guess(worker: int) -> None:
        # From another loopback address, as an attacker's host would be.
        n = 0
        while not stop.is_set():
            n += 1
            token = base64.b64encode(f"prometheus:guess-{worker}-{n}".encode()).decode()
            with (
                contextlib.suppress(OSError),
                socket.create_connection(
                    ("127.0.0.1", exporter.port), timeout=10, source_address=("127.0.0.2", 0)
                ) as sock,
            ):
                sock.sendall(
                    b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                    b"Authorization: Basic " + token.encode() + b"\r\n\r\n"
                )
                while sock.recv(65536):
                    pass
            attempts[0] += 1

    flood = [threading.Thread(target=guess, args=(n,), daemon=True) for n in range(64)]
    for thread in flood:
        thread.start()
    try:
        wait_for(lambda: attempts[0] >= 64, 30, what="the flood to be under way")
        # A credential the exporter has never checked, then the same one again (now verified).
        for _ in range(3):
            scrape_answers_in_time(exporter, auth=("prometheus", password))
        assert threads_of(exporter) <= MAX_THREADS
    finally:
        stop.set()
        for thread in flood:
            thread.join(15)
