"""The HTTP layer in process: routing, probes, headers, auth hook and listen addresses."""

import gzip
import logging
import socket
import ssl
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from pki import make_pki
from support import wait_for

from exporter.api.errors import REASONS
from exporter.api.parsing import Balance
from exporter.metrics.renderer import Renderer
from exporter.metrics.series import Settings
from exporter.poll.snapshot import AccountSnapshot, Store
from exporter.web.registry import Limits
from exporter.web.server import ListenError, escape_control, gzip_accepted, parse_listen_address, start_server

SETTINGS = Settings(30.0, 300.0, ("TRY",), "last", False)


@pytest.fixture
def store() -> Store:
    return Store(["main"], REASONS)


def serve(store: Store, **options: object) -> Iterator[str]:
    server, thread = start_server(
        "127.0.0.1:0",
        Renderer(SETTINGS, store.view),
        store.view,
        **options,  # type: ignore[arg-type]
    )
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(2)


@pytest.fixture
def url(store: Store) -> Iterator[str]:
    yield from serve(store)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (":9788", ("", 9788)),
        ("127.0.0.1:9788", ("127.0.0.1", 9788)),
        ("[::1]:9788", ("::1", 9788)),
        ("localhost:0", ("localhost", 0)),
    ],
)
def test_listen_addresses(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen_address(text) == expected


@pytest.mark.parametrize("text", ["9788", "nope", ":99999", "host:", "::1:9788", "host:port"])
def test_bad_listen_addresses_name_the_flag(text: str) -> None:
    with pytest.raises(ListenError, match=r"--web\.listen-address"):
        parse_listen_address(text)


def test_taken_address_is_a_listen_error(store: Store) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ListenError, match=f"cannot listen on 127.0.0.1:{port}"):
            start_server(f"127.0.0.1:{port}", Renderer(SETTINGS, store.view), store.view)


def test_ready_follows_the_first_successful_poll(store: Store, url: str) -> None:
    response = requests.get(url + "/ready", timeout=5)
    assert response.status_code == 503
    assert "main" in response.text
    store.publish_balances(AccountSnapshot("main", (), 1.0), 0.1)
    assert requests.get(url + "/ready", timeout=5).status_code == 200
    assert requests.get(url + "/healthz", timeout=5).status_code == 200


def test_head_and_query_strings(url: str) -> None:
    head = requests.head(url + "/metrics?x=1", timeout=5)
    assert head.status_code == 200
    assert head.content == b""
    assert int(head.headers["Content-Length"]) > 0
    assert requests.get(url + "/missing", timeout=5).status_code == 404


def test_metrics_content_type(url: str) -> None:
    response = requests.get(url + "/metrics", timeout=5)
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")


def test_auth_hook_guards_everything_but_the_probes(store: Store) -> None:
    for url in serve(store, authenticate=lambda header, client: header == "Basic ok"):
        assert requests.get(url + "/metrics", timeout=5).status_code == 401
        assert requests.get(url + "/", timeout=5).status_code == 401
        assert (
            requests.get(url + "/metrics", headers={"Authorization": "Basic ok"}, timeout=5).status_code
            == 200
        )
        assert requests.get(url + "/healthz", timeout=5).status_code == 200
        assert requests.get(url + "/ready", timeout=5).status_code == 503


def test_configured_headers_are_sent(store: Store) -> None:
    for url in serve(store, headers={"X-Frame-Options": "deny"}):
        assert requests.get(url + "/metrics", timeout=5).headers["X-Frame-Options"] == "deny"
        assert requests.get(url + "/healthz", timeout=5).headers["X-Frame-Options"] == "deny"


# --- HTTP as a Prometheus exporter speaks it ------------------------------------------------------


def raw_exchange(url: str, data: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes and read until the server closes the connection."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "FOO"])
def test_other_methods_are_405_with_allow(url: str, method: str) -> None:
    response = requests.request(method, url + "/metrics", timeout=5)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD"


def test_a_request_body_is_never_taken_for_the_next_request(url: str) -> None:
    answer = raw_exchange(
        url,
        b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 33\r\n\r\n"
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 405 ")
    assert answer.count(b"HTTP/1.1 ") == 1


def test_pipelined_requests_are_answered_in_order(url: str) -> None:
    answer = raw_exchange(
        url,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert b"HTTP/1.1 404 " in answer.split(b"ok\n", 1)[1]


def test_keep_alive_serves_many_requests_on_one_connection(url: str) -> None:
    with requests.Session() as session:
        ports = set()
        for _ in range(5):
            response = session.get(url + "/healthz", timeout=5, stream=True)
            ports.add(response.raw._connection.sock.getsockname()[1])
            response.content  # noqa: B018 (reads the body so the connection goes back to the pool)
        assert len(ports) == 1


def test_server_header_names_the_exporter_not_python(url: str) -> None:
    server = requests.get(url + "/healthz", timeout=5).headers["Server"]
    assert server.startswith("btcturk-exporter/")
    assert "Python" not in server


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip", True),
        ("GZIP", True),
        ("gzip, deflate, br", True),
        ("deflate, gzip;q=0.5", True),
        ("gzip;q=0", False),
        ("gzip; q=0.000", False),
        ("gzip;q=0, *;q=1", False),
        ("*", True),
        ("*;q=0", False),
        ("identity", False),
        ("", False),
        ("gzip;q=nope", False),
        ("gzip;q=2", False),
        ("x-gzip", True),
        ("gzipped", False),
    ],
)
def test_gzip_follows_q_values(header: str, expected: bool) -> None:
    assert gzip_accepted(header) is expected


def test_gzip_q0_gets_plain_text(url: str) -> None:
    plain = requests.get(url + "/metrics", headers={"Accept-Encoding": "gzip;q=0"}, timeout=5)
    assert "Content-Encoding" not in plain.headers
    assert plain.content.startswith(b"#")
    zipped = requests.get(url + "/metrics", headers={"Accept-Encoding": "gzip"}, timeout=5, stream=True)
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.raw.read()).startswith(b"#")


def test_escape_control() -> None:
    assert escape_control("/a\x1b[31m\r\nb\\") == "/a\\x1b[31m\\x0d\\x0ab\\x5c"
    assert escape_control("Türk Lirası /metrics") == "Türk Lirası /metrics"


def test_access_log_escapes_control_characters(url: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="exporter.web.server"):
        answer = raw_exchange(
            url,
            b"GET /x\x1b[2J\x07 HTTP/1.1\r\nHost: x\r\nUser-Agent: evil\x1b]0;pwned\x07\r\n"
            b"Connection: close\r\n\r\n",
        )
        assert answer.startswith(b"HTTP/1.1 404 ")
        wait_for(lambda: caplog.records, 5, what="the access log line")
    for record in caplog.records:
        text = record.getMessage() + str(getattr(record, "user_agent", ""))
        assert "\x1b" not in text and "\x07" not in text, text
    logged = " ".join(r.getMessage() + str(getattr(r, "user_agent", "")) for r in caplog.records)
    assert "/x\\x1b[2J\\x07" in logged
    assert "evil\\x1b]0;pwned\\x07" in logged


# --- bounded under hostile clients, in process ----------------------------------------------------


def open_idle(url: str, count: int, first: bytes = b"") -> list[socket.socket]:
    host, port = url.removeprefix("http://").split(":")
    socks = []
    for _ in range(count):
        sock = socket.create_connection((host, int(port)), timeout=5)
        if first:
            sock.sendall(first)
        socks.append(sock)
    return socks


def closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True


def test_a_slow_request_is_closed_at_the_header_deadline(store: Store) -> None:
    for url in serve(store, limits=Limits(header_timeout=0.3)):
        [slow] = open_idle(url, 1, b"GET /metr")
        [silent] = open_idle(url, 1)
        for sock in (slow, silent):
            sock.settimeout(5)
            assert closed_by_server(sock)
            sock.close()


def test_an_idle_kept_alive_connection_is_closed_at_the_idle_deadline(store: Store) -> None:
    for url in serve(store, limits=Limits(idle_timeout=0.3)):
        [sock] = open_idle(url, 1, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(5)
        head, body = read_response(sock)
        assert head.startswith(b"HTTP/1.1 200 ")
        assert body == b"ok\n"
        assert closed_by_server(sock)
        sock.close()


def test_over_the_cap_the_oldest_incomplete_connection_makes_room(store: Store) -> None:
    limits = Limits(max_connections=8, workers=2)
    for url in serve(store, limits=limits):
        idle = open_idle(url, 40, b"GET / HTTP/1.1\r\n")
        try:
            # Served by closing the oldest, not once the held connections reach their header deadline.
            started = time.monotonic()
            assert requests.get(url + "/metrics", timeout=limits.header_timeout).status_code == 200
            assert time.monotonic() - started < limits.header_timeout
            assert closed_by_server(idle[0])
        finally:
            for sock in idle:
                sock.close()


def test_huge_headers_get_431(store: Store) -> None:
    for url in serve(store, limits=Limits(max_header_bytes=1024)):
        answer = raw_exchange(url, b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 431 ")


def test_a_tls_handshake_that_never_comes_is_closed(store: Store, tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    for url in serve(store, ssl_context=context, limits=Limits(header_timeout=0.3)):
        [silent] = open_idle(url, 1)
        [half] = open_idle(url, 1, b"\x16\x03\x01")  # the start of a ClientHello, and nothing more
        for sock in (silent, half):
            sock.settimeout(5)
            assert closed_by_server(sock)
            sock.close()
        https = url.replace("http://", "https://")
        assert requests.get(https + "/healthz", verify=str(pki.server_cert), timeout=5).status_code == 200


def big_store(store: Store, assets: int = 20000) -> bytes:
    """Publish enough balances for a response of megabytes; return the /metrics body."""
    one = Decimal("1.5")
    balances = tuple(
        Balance(f"A{n}", f"Asset {n}", one, one, Decimal(0), Decimal(0), Decimal(0)) for n in range(assets)
    )
    store.publish_balances(AccountSnapshot("main", balances, time.time()), 0.1)
    body = Renderer(SETTINGS, store.view).scrape()
    assert len(body) > 1_000_000
    return body


def stalled_client(url: str, path: str = "/metrics") -> socket.socket:
    """A connection that asks for a response and does not read it (a tiny receive window)."""
    host, port = url.split("://")[1].split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return sock


def test_clients_that_never_read_their_response_hold_no_worker(store: Store) -> None:
    big_store(store)
    for url in serve(store, limits=Limits(workers=2)):
        stalled = [stalled_client(url) for _ in range(6)]
        try:
            # Deadlines under the server's 30 s write timeout, which would free held workers: a
            # worker held by a stalled client makes these wait past them (2 s was missed on a loaded box).
            assert requests.get(url + "/healthz", timeout=15).status_code == 200
            assert requests.get(url + "/metrics", timeout=20).status_code == 200
        finally:
            for sock in stalled:
                sock.close()


def read_response(sock: socket.socket) -> tuple[bytes, bytes]:
    """Read one response with a Content-Length: (head, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(next(line for line in head.split(b"\r\n") if line.startswith(b"Content-Length:")).split()[1])
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed mid-body"
        body += chunk
    return head, body


@pytest.mark.parametrize("tls", [False, True])
def test_a_slow_reader_gets_the_whole_response_and_can_ask_again(
    store: Store, tmp_path: Path, tls: bool
) -> None:
    expected = big_store(store)
    options: dict[str, object] = {}
    if tls:
        pki = make_pki(tmp_path)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki.server_cert, pki.server_key)
        options["ssl_context"] = context
    for url in serve(store, **options):
        host, port = url.split("://")[1].split(":")
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.settimeout(10)
        raw.connect((host, int(port)))
        sock = raw
        if tls:
            client = ssl.create_default_context(cafile=str(pki.server_cert))
            sock = client.wrap_socket(raw, server_hostname="localhost")
        with sock:
            for _ in range(2):  # the same kept-alive connection serves the next request after the slow one
                sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                head, body = read_response(sock)
                assert head.startswith(b"HTTP/1.1 200 ")
                assert body[: len(expected) - 2000] == expected[: len(expected) - 2000]
