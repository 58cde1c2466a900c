"""The client against the simulator over loopback HTTP: every failure maps to its reason."""

import errno
import gzip
import json
import logging
import re
import socket
import socketserver
import ssl
import struct
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
import urllib3.exceptions
from pki import make_pki

from exporter import __version__
from exporter.api.account import Account, Secret
from exporter.api.client import BALANCES, MAX_BODY_BYTES, ODDITIES, SERVER_TIME, TICKER, Client
from exporter.api.errors import REASONS, ApiError, parse_retry_after
from exporter.api.network_errors import _chain, network_failure
from exporter.api.parsing import MAX_ASSETS, parse_balances, parse_ticker_answer
from exporter.api.signing import auth_headers
from exporter.config.loader import Config
from exporter.metrics.renderer import Renderer
from exporter.metrics.series import Settings
from exporter.poll.poller import Poller
from exporter.poll.snapshot import SHARED, PriceSnapshot, Store
from exporter.simulator import Fault, Simulator, generate_keypair

PUBLIC, PRIVATE = generate_keypair(seed=7)
ACCOUNT = Account(name="main", public_key=PUBLIC, private_key=Secret(PRIVATE))
SETTINGS = Settings(
    poll_interval=30, max_staleness=300, value_currencies=("TRY",), value_price="last", export_all_pairs=True
)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator() as simulator:
        simulator.add_account(PUBLIC, PRIVATE)
        yield simulator


@pytest.fixture
def client(sim: Simulator) -> Client:
    return Client(sim.url, timeout=2.0)


def failure(call) -> ApiError:  # type: ignore[no-untyped-def]
    with pytest.raises(ApiError) as info:
        call()
    return info.value


def test_balances_and_ticker(client: Client) -> None:
    balances = client.balances(ACCOUNT)
    assert {b.asset for b in balances} >= {"TRY", "BTC", "USDT"}
    assert all(b.balance == b.free + b.locked for b in balances)
    assert any(t.pair == "BTCTRY" for t in client.ticker())


def test_user_agent_names_the_exporter_and_version(client: Client) -> None:
    assert client.session.headers["User-Agent"].startswith(f"btcturk-exporter/{__version__}")


def test_comma_decimals_parse_exactly(sim: Simulator, client: Client) -> None:
    dots = {b.asset: b.balance for b in client.balances(ACCOUNT)}
    sim.comma_decimals = True
    commas = {b.asset: b.balance for b in client.balances(ACCOUNT)}
    assert commas == dots


def test_request_hook_sees_every_exchange(sim: Simulator, client: Client) -> None:
    seen: list[tuple[str, str]] = []
    client.balances(ACCOUNT, lambda e, c: seen.append((e, c)))
    sim.inject(Fault("status", status=503), endpoint=BALANCES, times=1)
    failure(lambda: client.balances(ACCOUNT, lambda e, c: seen.append((e, c))))
    assert seen == [(BALANCES, "200"), (BALANCES, "503")]


@pytest.mark.parametrize("kind", ["auth", "auth_json"])
def test_401_with_empty_or_json_body_is_auth(sim: Simulator, client: Client, kind: str) -> None:
    sim.inject(Fault(kind), endpoint=BALANCES)
    error = failure(lambda: client.balances(ACCOUNT))
    assert (error.reason, error.status) == ("auth", 401)
    assert str(error).startswith(f"GET {BALANCES}: HTTP 401 (auth)")
    assert not error.transient


def test_wrong_key_is_auth() -> None:
    with Simulator() as simulator:
        simulator.add_account(PUBLIC, generate_keypair(seed=8)[1])
        error = failure(lambda: Client(simulator.url, 2.0).balances(ACCOUNT))
    assert error.reason == "auth"


def test_403_html_is_forbidden(sim: Simulator, client: Client) -> None:
    html = b"<html><body>Access denied</body></html>"
    sim.inject(
        Fault("status", status=403, body=html, headers={"Content-Type": "text/html"}), endpoint=BALANCES
    )
    error = failure(lambda: client.balances(ACCOUNT))
    assert (error.reason, error.status) == ("forbidden", 403)
    assert "non-JSON body (text/html)" in str(error)


def test_429_carries_retry_after(sim: Simulator, client: Client) -> None:
    sim.inject(Fault("rate_limit", retry_after=17), endpoint=BALANCES)
    error = failure(lambda: client.balances(ACCOUNT))
    assert (error.reason, error.status, error.retry_after) == ("rate_limited", 429, 17)
    assert error.transient


def test_429_without_retry_after(sim: Simulator, client: Client) -> None:
    sim.inject(Fault("rate_limit", retry_after=None), endpoint=BALANCES)
    error = failure(lambda: client.balances(ACCOUNT))
    assert (error.reason, error.retry_after) == ("rate_limited", None)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_server_error(sim: Simulator, client: Client, status: int) -> None:
    sim.inject(Fault("status", status=status, body=b"oops"), endpoint=BALANCES)
    error = failure(lambda: client.balances(ACCOUNT))
    assert (error.reason, error.status) == ("server_error", status)
    assert error.transient


def test_slow_answer_is_timeout(sim: Simulator) -> None:
    sim.inject(Fault("latency", seconds=2.0), endpoint=BALANCES, times=1)
    error = failure(lambda: Client(sim.url, timeout=0.3).balances(ACCOUNT))
    assert (error.reason, error.status) == ("timeout", None)
    assert "no response" in str(error)


def test_refused_connection_is_connection() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    error = failure(lambda: Client(f"http://127.0.0.1:{port}", 1.0).balances(ACCOUNT))
    assert error.reason == "connection"


def test_reset_mid_body_is_connection_or_bad_response(sim: Simulator, client: Client) -> None:
    sim.inject(Fault("reset"), endpoint=BALANCES)
    assert failure(lambda: client.balances(ACCOUNT)).reason in {"connection", "bad_response"}


@pytest.mark.parametrize(
    "body",
    [
        b"<html>maintenance</html>",
        b'{"data": [{"asset": "BTC", "bal',
        b'{"data": null, "success": false, "message": "FAILED_X", "code": 1}',
        b'{"data": [{"asset": "BTC"}], "success": true, "code": 0}',
        b'{"data": [{"asset": "BTC", "balance": "x", "free": "1", "locked": "0"}], "success": true}',
        b'{"data": [{"asset": "BTC", "balance": "-1", "free": "1", "locked": "0"}], "success": true}',
        b"",
    ],
)
def test_malformed_200_is_bad_response(sim: Simulator, client: Client, body: bytes) -> None:
    sim.inject(Fault("body", body=body), endpoint=BALANCES)
    error = failure(lambda: client.balances(ACCOUNT))
    assert (error.reason, error.status) == ("bad_response", 200)


def test_clock_skew_is_measured_and_corrected(sim: Simulator, client: Client) -> None:
    sim.clock_skew = 30.0
    assert failure(lambda: client.balances(ACCOUNT)).reason == "auth"
    offset = client.sync_clock()
    assert offset == pytest.approx(30.0, abs=0.5)
    assert client.balances(ACCOUNT)


def test_server_time_failure_is_reported(sim: Simulator, client: Client) -> None:
    sim.inject(Fault("body", body=b"{}"), endpoint=SERVER_TIME)
    assert failure(client.sync_clock).reason == "bad_response"
    sim.clear_faults()
    sim.inject(Fault("status", status=502), endpoint=TICKER)
    assert failure(client.ticker).reason == "server_error"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("17", 17.0),
        ("0", 0.0),
        ("-5", 0.0),
        ("soon", None),
        (None, None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, now=1_800_000_000.0) == expected


# --- helpers for answers the simulator does not give -------------------------------------------------

FIXTURES = Path(__file__).parents[1] / "fixtures"


class Scripted(socketserver.ThreadingTCPServer):
    """A loopback server whose handler `script(sock)` writes whatever bytes a test needs, when it wants."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, script: Callable[[socket.socket], None]) -> None:
        super().__init__(("127.0.0.1", 0), _ScriptedHandler)
        self.script = script
        self.done = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ScriptedHandler(socketserver.BaseRequestHandler):
    server: Scripted

    def handle(self) -> None:
        self.request.settimeout(5)
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = self.request.recv(4096)
                if not chunk:
                    return
                data += chunk
            self.server.script(self.request)
        except OSError:
            pass  # the client went away, as it should when it gives up
        finally:
            self.server.done.set()


Start = Callable[[Callable[[socket.socket], None]], Scripted]


@pytest.fixture
def scripted() -> Iterator[Start]:
    servers: list[Scripted] = []

    def start(script: Callable[[socket.socket], None]) -> Scripted:
        server = Scripted(script)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def head(length: int | None = None, *, status: str = "200 OK", extra: str = "") -> bytes:
    framing = f"Content-Length: {length}\r\n" if length is not None else "Transfer-Encoding: chunked\r\n"
    return f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{framing}{extra}\r\n".encode()


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


BALANCES_BODY = (FIXTURES / "balances.json").read_bytes()
TICKER_BODY = (FIXTURES / "ticker.json").read_bytes()


# --- a whole attempt within `timeout` -----------------------------------------------------------------


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_a_body_trickling_in_is_cut_off_at_the_timeout(scripted: Start, chunked: bool) -> None:
    stop = threading.Event()

    def trickle(sock: socket.socket) -> None:
        # One byte every 50 ms: each read succeeds well within the read timeout, the whole takes ~80 s.
        sock.sendall(head(None if chunked else len(BALANCES_BODY)))
        for byte in BALANCES_BODY:
            if stop.wait(0.05):
                return
            sock.sendall(chunk(bytes([byte])) if chunked else bytes([byte]))
        if chunked:
            sock.sendall(b"0\r\n\r\n")

    server = scripted(trickle)
    seen: list[str] = []
    try:
        error = failure(
            lambda: Client(server.url, timeout=0.5).balances(ACCOUNT, lambda e, c: seen.append(c))
        )
    finally:
        stop.set()
    assert (error.reason, error.kind, error.status) == ("timeout", "timeout", None)
    assert "answer not complete within 0.5s" in str(error)
    assert seen == ["timeout"]


@pytest.mark.parametrize("where", ["status line", "headers"])
def test_an_answer_trickling_in_before_its_body_is_cut_off_too(scripted: Start, where: str) -> None:
    stop = threading.Event()

    def trickle(sock: socket.socket) -> None:
        # ~100 s at one byte every 50 ms, each byte well within the read timeout.
        text = b"HTTP/1.1 200 " + b"O" * 2000 if where == "status line" else b"X-Padding: " + b"a" * 2000
        if where == "headers":
            sock.sendall(b"HTTP/1.1 200 OK\r\n")
        for byte in text:
            if stop.wait(0.05):
                return
            sock.sendall(bytes([byte]))

    server = scripted(trickle)
    try:
        error = failure(lambda: Client(server.url, timeout=0.5).balances(ACCOUNT))
    finally:
        stop.set()
    assert (error.reason, error.kind) == ("timeout", "timeout")
    assert "answer not complete within 0.5s" in str(error)


def test_a_stalled_body_is_a_timeout_not_a_connection_failure(scripted: Start) -> None:
    release = threading.Event()

    def stall(sock: socket.socket) -> None:
        sock.sendall(head(len(BALANCES_BODY)) + BALANCES_BODY[:40])
        release.wait(10)

    server = scripted(stall)
    try:
        error = failure(lambda: Client(server.url, timeout=0.3).balances(ACCOUNT))
    finally:
        release.set()
    assert (error.reason, error.kind) == ("timeout", "timeout")


def test_the_deadline_bounds_the_attempt(sim: Simulator) -> None:
    sim.inject(Fault("latency", seconds=2.0), endpoint=BALANCES, times=1)
    client = Client(sim.url, timeout=30.0)
    error = failure(lambda: client.balances(ACCOUNT, deadline=time.monotonic() + 0.3))
    assert error.reason == "timeout"
    # With no time left the call is not even sent.
    before = sim.count(BALANCES)
    error = failure(lambda: client.ticker(deadline=time.monotonic() - 1))
    assert (error.reason, sim.count(TICKER)) == ("timeout", 0)
    assert "no time left" in str(error)
    assert sim.count(BALANCES) == before
    assert client.balances(ACCOUNT, deadline=time.monotonic() + 5)


# --- size limits ----------------------------------------------------------------------------------------


def test_a_body_declared_over_the_cap_is_refused_before_reading(scripted: Start) -> None:
    release = threading.Event()

    def huge(sock: socket.socket) -> None:
        sock.sendall(head(MAX_BODY_BYTES + 1) + b"[")
        release.wait(10)

    server = scripted(huge)
    try:
        error = failure(lambda: Client(server.url, timeout=5).balances(ACCOUNT))
    finally:
        release.set()
    assert (error.reason, error.status) == ("bad_response", 200)
    assert str(error).endswith(f"body over 8 MiB (Content-Length {MAX_BODY_BYTES + 1})")


def test_a_streamed_body_over_the_cap_is_refused(scripted: Start) -> None:
    # Valid JSON after 9 MiB of whitespace: only the size is wrong with it.
    padding = b" " * (1024 * 1024)

    def stream(sock: socket.socket) -> None:
        sock.sendall(head(None))
        for _ in range(9):
            sock.sendall(chunk(padding))
        sock.sendall(chunk(BALANCES_BODY) + b"0\r\n\r\n")

    server = scripted(stream)
    error = failure(lambda: Client(server.url, timeout=5).balances(ACCOUNT))
    assert (error.reason, error.status) == ("bad_response", 200)
    assert str(error).endswith("body over 8 MiB")


def test_a_body_just_under_the_cap_is_read(scripted: Start) -> None:
    body = b" " * (MAX_BODY_BYTES - len(BALANCES_BODY)) + BALANCES_BODY
    server = scripted(lambda sock: sock.sendall(head(len(body)) + body))
    assert len(Client(server.url, timeout=5).balances(ACCOUNT)) == 2


def test_asset_count_over_the_limit_is_bad_response(sim: Simulator, client: Client) -> None:
    row = '{"asset":"A%d","assetname":"A","balance":"1","free":"1","locked":"0"}'
    rows = ",".join(row % i for i in range(MAX_ASSETS + 1))
    sim.inject(Fault("body", body=f'{{"data":[{rows}],"success":true,"code":0}}'.encode()), endpoint=BALANCES)
    error = failure(lambda: client.balances(ACCOUNT))
    assert error.reason == "bad_response"
    assert str(error).endswith(f"{MAX_ASSETS + 1} assets, over the limit of {MAX_ASSETS}")


def test_a_body_that_is_not_utf8_is_bad_response(sim: Simulator, client: Client) -> None:
    body = BALANCES_BODY.replace(b'"BTC"', b'"\xff\xfeTRY"')
    sim.inject(Fault("body", body=body), endpoint=BALANCES)
    error = failure(lambda: client.balances(ACCOUNT))
    assert error.reason == "bad_response"
    assert "body is not valid UTF-8 (byte 0xff at offset" in str(error)


def test_a_number_too_long_says_so(sim: Simulator, client: Client) -> None:
    body = TICKER_BODY.replace(b'"last": 36.21', b'"last": 36.' + b"1" * 5000)
    sim.inject(Fault("body", body=body), endpoint=TICKER)
    error = failure(client.ticker)
    assert error.reason == "bad_response"
    assert "a number of 5003 characters, over the limit of 400" in str(error)
    assert "not JSON" not in str(error)


def test_json_numbers_keep_every_digit(sim: Simulator, client: Client) -> None:
    body = TICKER_BODY.replace(b'"last": 36.21', b'"last": 36.2100000000000000000001')
    body = body.replace(b'"bid": 36.2,', b'"bid": 12345678.123456789,')
    sim.inject(Fault("body", body=body), endpoint=TICKER)
    usdt = {t.pair: t for t in client.ticker()}["USDTTRY"]
    assert str(usdt.last) == "36.2100000000000000000001"
    assert str(usdt.bid) == "12345678.123456789"


def test_minus_zero_is_zero(sim: Simulator, client: Client) -> None:
    body = BALANCES_BODY.replace(b'"requestFund": "0"', b'"requestFund": "-0"')
    body = body.replace(b'"locked": "3,3109771999999998"', b'"locked": -0.0')
    sim.inject(Fault("body", body=body), endpoint=BALANCES)
    btc = {b.asset: b for b in client.balances(ACCOUNT)}["BTC"]
    assert (str(btc.request_fund), str(btc.locked)) == ("0", "0.0")


def test_503_carries_retry_after(sim: Simulator, client: Client) -> None:
    sim.inject(Fault("status", status=503, headers={"Retry-After": "7"}), endpoint=BALANCES)
    error = failure(lambda: client.balances(ACCOUNT))
    assert (error.reason, error.status, error.retry_after) == ("server_error", 503, 7.0)


# --- duplicate pairs -------------------------------------------------------------------------------------


def test_a_pair_listed_twice_is_kept_once_and_counted(sim: Simulator) -> None:
    payload = json.loads(TICKER_BODY)
    again = dict(payload["data"][0], last=1, bid=1, ask=1)
    payload["data"].append(again)
    sim.inject(Fault("body", body=json.dumps(payload).encode()), endpoint=TICKER)
    store = Store(["main"], REASONS, oddities=ODDITIES)
    before = Renderer(SETTINGS, store.view).scrape().decode()
    assert 'btcturk_api_oddities_total{endpoint="/api/v2/ticker",kind="duplicate_pair"} 0' in before
    tickers = Client(sim.url, 2.0, on_oddity=store.count_oddity).ticker()
    assert [t.pair for t in tickers] == ["BTCTRY", "USDTTRY"]
    assert tickers[0].last == Decimal("3512345.67")  # the first row, not the later one
    store.publish_prices(PriceSnapshot(tickers, time.time()))
    text = Renderer(SETTINGS, store.view).scrape().decode()
    assert 'btcturk_api_oddities_total{endpoint="/api/v2/ticker",kind="duplicate_pair"} 1' in text
    assert text.count('btcturk_ticker_last{pair="BTCTRY"') <= 1


# --- one session per thread -----------------------------------------------------------------------------


def test_each_thread_has_its_own_session(sim: Simulator) -> None:
    client = Client(sim.url, 2.0)
    mine = client.session
    assert client.session is mine
    sessions: list[requests.Session] = []
    results: list[int] = []
    barrier = threading.Barrier(4)

    def work() -> None:
        barrier.wait()
        sessions.append(client.session)
        results.append(len(client.balances(ACCOUNT)) + len(client.ticker()))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(results) == 4 and all(results)
    assert len({id(s) for s in [mine, *sessions]}) == 5
    assert all(s.headers["User-Agent"] == mine.headers["User-Agent"] for s in sessions)
    client.close()


def test_keep_alive_still_works(scripted: Start) -> None:
    connections: list[int] = []

    def two_answers(sock: socket.socket) -> None:
        connections.append(1)
        sock.sendall(head(len(TICKER_BODY)) + TICKER_BODY)
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(4096) or b"\r\n\r\n"
        sock.sendall(head(len(TICKER_BODY)) + TICKER_BODY)

    server = scripted(two_answers)
    client = Client(server.url, 2.0)
    assert client.ticker() == client.ticker()
    assert connections == [1]


# --- network failures name host and kind ---------------------------------------------------------------


def test_refused_names_host_and_kind() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    error = failure(lambda: Client(f"http://127.0.0.1:{port}", 1.0).balances(ACCOUNT))
    assert (error.reason, error.kind) == ("connection", "refused")
    assert str(error) == f"GET {BALANCES}: no response (connection): 127.0.0.1:{port}: connection refused"


def test_no_answer_is_a_timeout_naming_the_host(scripted: Start) -> None:
    release = threading.Event()
    server = scripted(lambda sock: release.wait(10))
    try:
        error = failure(lambda: Client(server.url, 0.3).ticker())
    finally:
        release.set()
    assert (error.reason, error.kind) == ("timeout", "timeout")
    # The read timeout and the attempt's watchdog run out together; either may report it.
    assert re.search(f"127.0.0.1:{server.server_address[1]}: (timed out|answer not complete)", str(error))


def test_reset_names_host_and_kind(scripted: Start) -> None:
    def reset(sock: socket.socket) -> None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()

    server = scripted(reset)
    error = failure(lambda: Client(server.url, 2.0).ticker())
    assert (error.reason, error.kind) == ("connection", "reset")
    assert f"127.0.0.1:{server.server_address[1]}: connection reset" in str(error)


def test_tls_to_a_plain_http_server_names_tls() -> None:
    def plain(sock: socket.socket) -> None:
        sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    server = Scripted(plain)
    server.RequestHandlerClass = _PlainHandler
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        port = server.server_address[1]
        error = failure(lambda: Client(f"https://127.0.0.1:{port}", 2.0).ticker())
    finally:
        server.shutdown()
        server.server_close()
    assert (error.reason, error.kind) == ("connection", "tls")
    assert f"127.0.0.1:{port}: TLS failed" in str(error)


class _PlainHandler(socketserver.BaseRequestHandler):
    """Answers whatever arrives (a TLS ClientHello here) as a plain HTTP server would."""

    server: Scripted

    def handle(self) -> None:
        self.request.settimeout(5)
        try:
            if self.request.recv(4096):
                self.server.script(self.request)
        except OSError:
            pass


def test_dns_failure_names_host_and_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    # The lookup itself is replaced: resolving even a .invalid name may ask the configured resolver.
    real = socket.getaddrinfo

    def lookup(host: str, *args: Any, **kwargs: Any) -> Any:
        if host == "nonexistent.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    error = failure(lambda: Client("https://nonexistent.invalid", 1.0).ticker())
    assert (error.reason, error.kind) == ("connection", "dns")
    assert "nonexistent.invalid: DNS lookup failed" in str(error)


def test_url_credentials_never_reach_the_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    error = failure(lambda: Client(f"http://user:hunter2@127.0.0.1:{port}", 1.0).ticker())
    assert "hunter2" not in str(error) and "hunter2" not in repr(error)


@pytest.mark.parametrize("how", ["refused", "401", "timeout", "reset"])
def test_a_failing_signed_call_never_shows_a_key(sim: Simulator, how: str) -> None:
    if how == "refused":
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{s.getsockname()[1]}"
    elif how == "401":
        sim.inject(Fault("auth_json"), endpoint=BALANCES)
        url = sim.url
    elif how == "timeout":
        sim.inject(Fault("latency", seconds=1.0), endpoint=BALANCES)
        url = sim.url
    else:
        sim.inject(Fault("reset"), endpoint=BALANCES)
        url = sim.url
    error = failure(lambda: Client(url, 0.3).balances(ACCOUNT))
    shown = [str(error), repr(error), "".join(traceback.format_exception(error))]
    shown += [repr(e) for e in _chain(error)]
    for text in shown:
        assert PUBLIC not in text and PRIVATE not in text


# --- the vendor's documented answers, and the simulator's, through the same parse -----------------------


def test_vendor_balances_example_parses(sim: Simulator, client: Client) -> None:
    sim.inject(Fault("body", body=BALANCES_BODY), endpoint=BALANCES)
    tl, btc = client.balances(ACCOUNT)
    assert (tl.asset, tl.asset_name) == ("TRY", "Türk Lirası")
    assert tl.balance == Decimal("27223.7283250757643288")
    assert tl.free + tl.locked == tl.balance
    assert btc.balance == Decimal("9.7502186644553258") and btc.locked == btc.order_fund


def test_vendor_ticker_example_parses(sim: Simulator, client: Client) -> None:
    sim.inject(Fault("body", body=TICKER_BODY), endpoint=TICKER)
    btc, usdt = client.ticker()
    assert (btc.pair, btc.base, btc.quote) == ("BTCTRY", "BTC", "TRY")
    assert (btc.last, btc.bid, btc.ask) == (
        Decimal("3512345.67"),
        Decimal("3512000.01"),
        Decimal("3512400.02"),
    )
    assert usdt.volume == Decimal("5312764.12")


def test_vendor_429_body_is_rate_limited_with_retry_after(sim: Simulator, client: Client) -> None:
    body = (FIXTURES / "rate_limited_429.json").read_bytes()
    sim.inject(Fault("status", status=429, body=body, headers={"Retry-After": "60"}), endpoint=BALANCES)
    error = failure(lambda: client.balances(ACCOUNT))
    assert (error.reason, error.retry_after) == ("rate_limited", 60.0)
    assert str(error).endswith(": TOO_MANY_REQUESTS")


def test_vendor_legacy_401_body_is_auth(sim: Simulator, client: Client) -> None:
    body = (FIXTURES / "unauthorized_401_legacy.json").read_bytes()
    sim.inject(Fault("status", status=401, body=body), endpoint=BALANCES)
    error = failure(lambda: client.balances(ACCOUNT))
    assert (error.reason, error.status) == ("auth", 401)
    assert str(error).endswith(": Unauthorized - Invalid Nonce")


def _rows(path: str, url: str, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = requests.get(url + path, headers=headers, timeout=5).json()["data"]
    return rows


def test_simulator_answers_have_the_vendor_shape(sim: Simulator, client: Client) -> None:
    vendor_ticker = json.loads(TICKER_BODY)["data"][0]
    vendor_balance = json.loads(BALANCES_BODY)["data"][0]
    sim_ticker = _rows(TICKER, sim.url)
    sim_balances = _rows(
        BALANCES, sim.url, dict(auth_headers(PUBLIC, ACCOUNT.private_key_bytes(), client.now_ms()))
    )
    assert all(set(row) == set(vendor_ticker) for row in sim_ticker)
    assert all(set(row) >= set(vendor_balance) for row in sim_balances)
    # The same parse takes both.
    assert parse_ticker_answer(json.loads(TICKER_BODY)).tickers and client.ticker()
    assert parse_balances(json.loads(BALANCES_BODY)) and client.balances(ACCOUNT)


# --- compressed answers (the live API gzips every answer) ------------------------------------------------


def test_a_gzipped_answer_is_read_and_its_size_checked_after_decompression(scripted: Start) -> None:
    small = gzip.compress(BALANCES_BODY)
    # 9 MiB of whitespace before the JSON compresses to a few kB: the cap is on what it inflates to.
    bomb = gzip.compress(b" " * (9 * 1024 * 1024) + BALANCES_BODY)
    assert len(bomb) < 100_000
    bodies = iter([small, bomb])

    def answer(sock: socket.socket) -> None:
        body = next(bodies)
        sock.sendall(head(len(body), extra="Content-Encoding: gzip\r\nConnection: close\r\n") + body)

    server = scripted(answer)
    client = Client(server.url, timeout=5)
    assert len(client.balances(ACCOUNT)) == 2
    error = failure(lambda: client.balances(ACCOUNT))
    assert (error.reason, str(error).endswith("body over 8 MiB")) == ("bad_response", True)


def test_a_broken_gzip_body_is_bad_response(scripted: Start) -> None:
    body = b"not gzip at all"
    server = scripted(lambda sock: sock.sendall(head(len(body), extra="Content-Encoding: gzip\r\n") + body))
    error = failure(lambda: Client(server.url, timeout=5).balances(ACCOUNT))
    assert (error.reason, error.status) == ("bad_response", 200)
    assert "body is not valid gzip" in str(error)


def test_the_poll_log_line_names_account_host_and_kind(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    config = Config(accounts=(ACCOUNT,), api_url=url, poll_interval=2.0, timeout=0.2, max_staleness=20.0)
    poller = Poller(config, Client(url, 0.2), Store(["main"], REASONS, [(SHARED, "ticker")]))
    with caplog.at_level(logging.WARNING, logger="exporter.poll.poller"):
        poller.poll_account(ACCOUNT, time.monotonic() + 0.5)
    lines = [r.getMessage() for r in caplog.records if "poll of account" in r.getMessage()]
    assert lines == [
        f"poll of account main failed: GET {BALANCES}: no response (connection): "
        f"127.0.0.1:{port}: connection refused"
    ]


def test_over_tls_a_good_answer_is_read_and_a_trickle_is_cut_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pki = make_pki(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki.server_cert))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    stop = threading.Event()
    calls: list[int] = []

    def answer(sock: socket.socket) -> None:
        calls.append(1)
        if len(calls) == 1:
            sock.sendall(head(len(TICKER_BODY), extra="Connection: close\r\n") + TICKER_BODY)
            return
        sock.sendall(b"HTTP/1.1 200 OK\r\n")
        for byte in b"X-Padding: " + b"a" * 2000:
            if stop.wait(0.05):
                return
            sock.sendall(bytes([byte]))

    server = Scripted(answer)
    server.RequestHandlerClass = _tls_handler(context)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    # Far below the trickle's 100 s (2,000 bytes, 50 ms apart), and ample for the first, whole answer.
    client = Client(f"https://127.0.0.1:{server.server_address[1]}", timeout=2.0)
    try:
        assert [t.pair for t in client.ticker()] == ["BTCTRY", "USDTTRY"]
        error = failure(client.ticker)
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
    assert (error.reason, error.kind) == ("timeout", "timeout")


def _tls_handler(context: ssl.SSLContext) -> type[socketserver.BaseRequestHandler]:
    class Handler(_ScriptedHandler):
        def setup(self) -> None:
            self.request = context.wrap_socket(self.request, server_side=True)

    return Handler


def _wrapped(inner: BaseException) -> requests.RequestException:
    """What requests raises for a failure urllib3 met while connecting (built, not provoked)."""
    pool_error = urllib3.exceptions.MaxRetryError(None, "/api/v2/ticker", inner)  # type: ignore[arg-type]
    if type(inner) is urllib3.exceptions.ConnectTimeoutError:
        return requests.ConnectTimeout(pool_error)
    return requests.ConnectionError(pool_error)


def _new_connection_error(errno_: int, text: str) -> urllib3.exceptions.NewConnectionError:
    try:
        try:
            raise OSError(errno_, text)
        except OSError as cause:
            message = f"Failed to establish a new connection: {cause}"
            raise urllib3.exceptions.NewConnectionError(None, message) from cause  # type: ignore[arg-type]
    except urllib3.exceptions.NewConnectionError as error:
        return error


@pytest.mark.parametrize(
    ("inner", "expected"),
    [
        # NewConnectionError subclasses ConnectTimeoutError: an unreachable network is not a timeout.
        (
            _new_connection_error(errno.ENETUNREACH, "Network is unreachable"),
            ("connection", "other", "api.example:443: Network is unreachable"),
        ),
        (
            # OSError with ECONNREFUSED is a ConnectionRefusedError.
            _new_connection_error(errno.ECONNREFUSED, "Connection refused"),
            ("connection", "refused", "api.example:443: connection refused"),
        ),
        (
            urllib3.exceptions.ConnectTimeoutError(None, "timed out. (connect timeout=1)"),
            ("timeout", "timeout", "api.example:443: timed out connecting (timeout 1s)"),
        ),
    ],
)
def test_failure_mapping_on_built_exceptions(inner: BaseException, expected: tuple[str, str, str]) -> None:
    assert network_failure(_wrapped(inner), "api.example:443", 1.0) == expected
