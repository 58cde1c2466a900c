"""Property-based tests: whatever the configuration or the API throws at the exporter, it either
accepts it or fails with its own error type (ConfigError, BadResponse, ApiError), never another exception.
"""

from __future__ import annotations

import json
import math
import os
import socket
import socketserver
import sys
import tempfile
import threading
import urllib.parse
from collections.abc import Iterator
from copy import deepcopy
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from exporter.api.account import Account, Secret
from exporter.api.client import BALANCES, Client
from exporter.api.errors import REASONS, ApiError, parse_retry_after
from exporter.api.parsing import (
    BadResponse,
    Balance,
    Ticker,
    parse_balances,
    parse_server_time,
    parse_ticker_answer,
)
from exporter.api.signing import decode_private_key
from exporter.config.accounts import ACCOUNT_KEYS, ENV_API_URL, ENV_PRIVATE_KEY, ENV_PUBLIC_KEY
from exporter.config.loader import (
    TOP_LEVEL_KEYS,
    Config,
    ConfigError,
    load_config,
    summarize,
)
from exporter.metrics.renderer import Renderer
from exporter.metrics.series import Settings
from exporter.poll.snapshot import AccountSnapshot, PriceSnapshot, Store

PROPERTY = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)

# --- configuration -------------------------------------------------------------------------------

PRIVATE = "dGVzdC1zZWNyZXQta2V5LWZvci11bml0LXRlc3Rz"
# Files the key-file settings may name; anything else a strategy makes is mapped onto these, so a
# random path can never reach a device or a large file outside the test's directory.
KEY_FILES = {
    "public.txt": ("test-public-key\n", 0o600),
    "private.txt": (PRIVATE + "\n", 0o600),
    "world-readable.txt": (PRIVATE, 0o644),
    "not-base64.txt": ("not base64 at all!", 0o600),
    "empty.txt": ("", 0o600),
    "latin1.txt": (b"\xff\xfe caf\xe9", 0o600),
}
FILE_VALUES = [*KEY_FILES, "missing.txt", "subdir", ".", "", "nul\x00byte"]

INTERESTING = [
    "",
    " ",
    "0",
    "-1",
    "1s",
    "0s",
    "-5s",
    "1m30s",
    "500ms",
    "1h",
    "1e308",
    "nan",
    ".inf",
    "1" + "0" * 400,
    "http://127.0.0.1:9",
    "https://api.btcturk.com",
    "http://[::1",
    "http://127.0.0.1:99999",
    "http://host:abc",
    "ftp://x",
    "last",
    "mid",
    "TRY",
    "cGs=",
    "not base64!",
    "ключ",
    "a\x00b",
    "\ud800",
    "line\nbreak",
]
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**300, max_value=10**400)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(INTERESTING)
)
keys = st.sampled_from(TOP_LEVEL_KEYS + ACCOUNT_KEYS) | st.text(max_size=8) | st.integers() | st.none()
documents = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=6),
    max_leaves=25,
)


def safe_paths(node: Any) -> Any:
    """Point every *_file value at one of the prepared files (or a missing one)."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if isinstance(key, str) and key.endswith("_file") and isinstance(value, str):
                value = FILE_VALUES[sum(map(ord, value)) % len(FILE_VALUES)]
            out[key] = safe_paths(value)
        return out
    if isinstance(node, list):
        return [safe_paths(v) for v in node]
    return node


VALID: dict[str, Any] = {
    "api_url": "http://127.0.0.1:9",
    "poll_interval": "30s",
    "timeout": "5s",
    "max_staleness": "5m",
    "value_currencies": ["TRY", "USDT"],
    "value_price": "mid",
    "export_all_pairs": False,
    "accounts": [
        {"name": "main", "public_key": "pub-main", "private_key": PRIVATE},
        {"name": "files", "public_key_file": "public.txt", "private_key_file": "private.txt"},
    ],
}
# Where a mutation may land: every existing key, plus new ones at each level.
PATHS: list[tuple[Any, ...]] = [
    *[(key,) for key in (*TOP_LEVEL_KEYS, "bogus")],
    *[("accounts", i, key) for i in (0, 1) for key in (*ACCOUNT_KEYS, "extra")],
    ("accounts", 0),
    ("accounts", 2),
    ("value_currencies", 0),
    ("value_currencies", 1),
]
mutations = st.lists(
    st.tuples(st.sampled_from(PATHS), st.sampled_from(["set", "delete"]), documents), min_size=1, max_size=4
)


def mutate(doc: dict[str, Any], changes: list[tuple[tuple[Any, ...], str, Any]]) -> dict[str, Any]:
    doc = deepcopy(doc)
    for path, op, value in changes:
        parent: Any = doc
        for step in path[:-1]:
            try:
                parent = parent[step]
            except (KeyError, IndexError, TypeError):
                parent = None
                break
        last = path[-1]
        if isinstance(parent, dict) and op == "set":
            parent[last] = value
        elif isinstance(parent, dict):
            parent.pop(last, None)
        elif not isinstance(parent, list) or not isinstance(last, int):
            continue
        elif op == "set":
            if last < len(parent):
                parent[last] = value
            else:
                parent.append(value)
        elif last < len(parent):
            del parent[last]
    return doc


environments = st.fixed_dictionaries(
    {},
    optional={
        ENV_PUBLIC_KEY: st.sampled_from(["", "env-public", "ключ"]),
        ENV_PRIVATE_KEY: st.sampled_from(["", PRIVATE, "not base64!"]),
        f"{ENV_PUBLIC_KEY}_FILE": st.sampled_from(FILE_VALUES),
        f"{ENV_PRIVATE_KEY}_FILE": st.sampled_from(FILE_VALUES),
        ENV_API_URL: st.sampled_from(INTERESTING),
    },
)


@pytest.fixture(scope="module")
def config_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, (content, mode) in KEY_FILES.items():
            path = root / name
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
            os.chmod(path, mode)
        (root / "subdir").mkdir()
        yield root


def check_config(directory: Path, text: str, env: dict[str, str]) -> None:
    path = directory / "config.yml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    # Key files named in the environment are relative to the working directory: make them absolute.
    env = {k: str(directory / v) if k.endswith("_FILE") and v else v for k, v in env.items()}
    try:
        config = load_config(str(path), env)
    except ConfigError as exc:
        assert exc.problems, "a ConfigError names at least one problem"
        assert all(len(problem.splitlines()) == 1 for problem in exc.problems), exc.problems
        assert str(exc).splitlines() == exc.problems
        for problem in exc.problems:
            # PRIVATE is only ever given as a private key (inline or in a file): never echo it.
            assert PRIVATE not in problem
        return
    check_accepted(config)


def check_accepted(config: Config) -> None:
    """What the rest of the exporter relies on once load_config has said yes."""
    assert isinstance(config, Config)
    assert math.isfinite(config.poll_interval) and config.poll_interval > 0
    assert 0 < config.timeout < config.poll_interval
    assert config.max_staleness >= config.poll_interval
    parts = urllib.parse.urlsplit(config.api_url)
    assert parts.scheme in ("http", "https") and parts.hostname
    port = parts.port  # raises ValueError for a port the HTTP client could never connect to
    assert port is None or 0 < port < 65536
    names = [account.name for account in config.accounts]
    assert len(names) == len(set(names))
    for account in config.accounts:
        assert account.name and account.public_key
        # Sent as an HTTP header: must encode as Latin-1 (it is ASCII in every real key).
        account.public_key.encode("latin-1")
        decode_private_key(account.private_key.reveal())
    summary = summarize(config)
    assert PRIVATE not in summary


@PROPERTY
@given(doc=documents.map(safe_paths), env=environments)
@example(doc={"poll_interval": 10**400, "accounts": VALID["accounts"][:1]}, env={})
@example(doc={"accounts": [{"name": "a", "public_key": "p", "private_key_file": "nul\x00byte"}]}, env={})
@example(doc={"api_url": "http://[::1", "accounts": VALID["accounts"][:1]}, env={})
@example(doc={"api_url": "http://127.0.0.1:99999", "accounts": VALID["accounts"][:1]}, env={})
@example(doc={"accounts": [{"name": "a", "public_key": "ключ", "private_key": PRIVATE}]}, env={})
def test_random_config_documents(config_dir: Path, doc: Any, env: dict[str, str]) -> None:
    try:
        text = yaml.safe_dump(doc, allow_unicode=True)
    except yaml.YAMLError:
        assume(False)
    check_config(config_dir, text, env)


@PROPERTY
@given(changes=mutations, env=environments)
def test_mutated_valid_config(config_dir: Path, changes: list, env: dict[str, str]) -> None:
    check_config(config_dir, yaml.safe_dump(safe_paths(mutate(VALID, changes)), allow_unicode=True), env)


@PROPERTY
@given(
    text=st.text(max_size=200)
    | st.sampled_from(["{", "[", "a: [", "a: *b", "!!python/object:os.system x", "\t"])
)
def test_random_config_text(config_dir: Path, text: str) -> None:
    check_config(config_dir, text, {})


def test_the_valid_config_is_valid(config_dir: Path) -> None:
    """The mutations start from a document that loads, so they test what each change breaks."""
    path = config_dir / "valid.yml"
    path.write_text(yaml.safe_dump(VALID), encoding="utf-8")
    config = load_config(str(path), {})
    assert [a.name for a in config.accounts] == ["main", "files"]


# --- API bodies ----------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**300, max_value=10**320)
    | st.floats()
    | st.text(max_size=10)
    | st.sampled_from(["0", "1.5", "1,5", "-1", "NaN", "Infinity", "1e5", "", "\ud800", "1" + "0" * 400])
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)

BALANCE_ITEM = {
    "asset": "BTC",
    "assetname": "Bitcoin",
    "balance": "1.5",
    "locked": "0.5",
    "free": "1.0",
    "orderFund": "0.5",
    "requestFund": "0",
    "precision": 8,
    "timestamp": 1735689600000,
}
TICKER_ITEM = {
    "pair": "BTCTRY",
    "pairNormalized": "BTC_TRY",
    "last": 3500000.5,
    "bid": 3499000,
    "ask": 3501000,
    "volume": 12.5,
    "numeratorSymbol": "BTC",
    "denominatorSymbol": "TRY",
}


def wrapped(data: Any) -> dict[str, Any]:
    return {"data": data, "success": True, "message": None, "code": 0}


VALID_BALANCES = wrapped([BALANCE_ITEM, {**BALANCE_ITEM, "asset": "TRY", "assetname": "Türk Lirası"}])
VALID_TICKER = wrapped([TICKER_ITEM])
VALID_TIME = {"serverTime": 1735689600000, "serverTime2": "2025-01-01T00:00:00+00:00"}

body_paths = st.sampled_from(
    [
        ("data",),
        ("success",),
        ("code",),
        ("message",),
        ("data", 0),
        ("data", 1),
        *[("data", 0, key) for key in {**BALANCE_ITEM, **TICKER_ITEM}],
        ("serverTime",),
    ]
)
body_mutations = st.lists(st.tuples(body_paths, st.sampled_from(["set", "delete"]), json_values), max_size=3)


def renders(balances: tuple, tickers: tuple = ()) -> None:
    """Whatever parsing accepts, the metrics layer can render, and Prometheus' parser can read."""
    store = Store(["main"], REASONS)
    store.publish_balances(AccountSnapshot("main", balances, 1e9), 0.1)
    store.publish_prices(PriceSnapshot(tickers, 1e9))
    settings_ = Settings(30.0, 1e12, ("TRY", "USDT"), "last", True)
    text = Renderer(settings_, store.view).exposition().decode("utf-8")
    list(text_string_to_metric_families(text))
    go_parsable(text)


def go_parsable(text: str) -> None:
    """Every sample value is a number Prometheus (Go's ParseFloat) accepts: in range, or spelled ±Inf/NaN."""
    for line in text.splitlines():
        if line and not line.startswith("#"):
            token = line.rsplit(" ", 1)[1]
            assert token in ("+Inf", "-Inf", "NaN") or math.isfinite(float(token)), line


SYMBOLS = ["TRY", "USDT", "BTC", "ETH", "XRP"]
# What parsing lets through: non-negative and within the float64 range, at any scale.
amounts = st.decimals(
    min_value=0, max_value=Decimal(sys.float_info.max), allow_nan=False, places=None
) | st.sampled_from(
    [
        Decimal(0),
        Decimal("1e300"),
        Decimal("1.7e308"),
        Decimal("1e-300"),
        Decimal("1e-400000"),
        Decimal("1e-1000001"),
    ]
)
balance_records = st.builds(
    lambda asset, a, b: Balance(asset, asset, a, a, b, b, Decimal(0)),
    st.sampled_from(SYMBOLS),
    amounts,
    amounts,
)
ticker_records = st.builds(
    lambda base, quote, last, bid, ask: Ticker(base + quote, base, quote, last, bid, ask, Decimal(1)),
    st.sampled_from(SYMBOLS),
    st.sampled_from(SYMBOLS),
    amounts,
    amounts,
    amounts,
)


@PROPERTY
@given(
    balances=st.lists(balance_records, max_size=5, unique_by=lambda b: b.asset),
    tickers=st.lists(ticker_records, max_size=8, unique_by=lambda t: t.pair),
    price=st.sampled_from(["last", "bid", "mid"]),
)
@example(
    balances=[Balance("BTC", "BTC", Decimal("1e300"), Decimal("1e300"), Decimal(0), Decimal(0), Decimal(0))],
    tickers=[
        Ticker("BTCTRY", "BTC", "TRY", Decimal("1e300"), Decimal("1e300"), Decimal("1e300"), Decimal(1))
    ],
    price="last",
)
@example(
    balances=[Balance("TRY", "TRY", Decimal("1e300"), Decimal("1e300"), Decimal(0), Decimal(0), Decimal(0))],
    tickers=[Ticker("USDTTRY", "USDT", "TRY", Decimal("1e-1000001"), Decimal(1), Decimal(1), Decimal(1))],
    price="last",
)
def test_accepted_balances_and_prices_render_as_valid_exposition(
    balances: list[Balance], tickers: list[Ticker], price: str
) -> None:
    store = Store(["main"], REASONS)
    store.publish_balances(AccountSnapshot("main", tuple(balances), 1e9), 0.1)
    store.publish_prices(PriceSnapshot(tuple(tickers), 1e9))
    settings_ = Settings(30.0, 1e12, ("TRY", "USDT"), price, True)
    text = Renderer(settings_, store.view).exposition().decode("utf-8")
    list(text_string_to_metric_families(text))
    go_parsable(text)


def parse_tickers(payload: Any) -> tuple[Ticker, ...]:
    return parse_ticker_answer(payload).tickers


def check_body(payload: Any) -> None:
    for parse in (parse_balances, parse_tickers):
        try:
            result = parse(payload)
        except BadResponse:
            continue
        assert isinstance(result, tuple)
        if parse is parse_balances:
            renders(result)
        else:
            renders((), result)
    try:
        stamp = parse_server_time(payload)
    except BadResponse:
        return
    # The client adds it to the local clock and signs with int(ms): it must be a usable number.
    assert math.isfinite(stamp) and stamp > 0
    int((stamp + 1.0) * 1000)


@PROPERTY
@given(payload=json_values)
@example(payload={"serverTime": 10**400})
@example(payload={"serverTime": float("inf")})
@example(payload={"serverTime": float("nan")})
def test_random_bodies(payload: Any) -> None:
    check_body(payload)


@PROPERTY
@given(base=st.sampled_from([VALID_BALANCES, VALID_TICKER, VALID_TIME]), changes=body_mutations)
def test_mutated_valid_bodies(base: dict[str, Any], changes: list) -> None:
    check_body(mutate(base, changes))


def test_the_valid_bodies_parse() -> None:
    assert len(parse_balances(VALID_BALANCES)) == 2
    assert parse_ticker_answer(VALID_TICKER).tickers[0].pair == "BTCTRY"
    assert parse_server_time(VALID_TIME) == 1735689600.0


@PROPERTY
@given(
    value=st.none()
    | st.text(max_size=40)
    | st.sampled_from(["1e999", "nan", "-5", "Fri, 31 Dec 9999 23:59:59 -2359"])
)
def test_retry_after_is_a_non_negative_number_or_none(value: str | None) -> None:
    result = parse_retry_after(value, 1735689600.0)
    assert result is None or result >= 0


# --- the real client against random answers -----------------------------------------------------


class RawServer(socketserver.ThreadingTCPServer):
    """Answers every request with the bytes in `response`, then closes the connection."""

    daemon_threads = True
    allow_reuse_address = True
    response = b""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), RawHandler)
        self.requests: list[bytes] = []


class RawHandler(socketserver.BaseRequestHandler):
    server: RawServer

    def handle(self) -> None:
        self.request.settimeout(2)
        data = b""
        try:
            while b"\r\n\r\n" not in data and len(data) < 65536:
                chunk = self.request.recv(4096)
                if not chunk:
                    return
                data += chunk
            self.server.requests.append(data)
            self.request.sendall(self.server.response)
            self.request.shutdown(socket.SHUT_WR)
        except OSError:
            pass


@pytest.fixture(scope="module")
def raw_server() -> Iterator[RawServer]:
    server = RawServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


ACCOUNT = Account("main", "test-public-key", Secret(PRIVATE))
header_values = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30) | st.sampled_from(
    [
        "0",
        "-1",
        "99999999",
        "gzip",
        "deflate",
        "br",
        "chunked",
        "application/json",
        "text/html",
        "close",
        "86400",
    ]
)
headers = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "Content-Type",
                "Content-Length",
                "Content-Encoding",
                "Transfer-Encoding",
                "Retry-After",
                "Connection",
                "WWW-Authenticate",
                "Set-Cookie",
            ]
        )
        | st.from_regex(r"X-[A-Za-z0-9-]{1,10}", fullmatch=True),
        header_values,
    )
    # Relative redirects only: nothing may ever leave the loopback server.
    | st.tuples(st.just("Location"), st.from_regex(r"/[A-Za-z0-9_/-]{0,20}", fullmatch=True)),
    max_size=5,
)
bodies = (
    st.binary(max_size=300)
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.tuples(st.sampled_from([VALID_BALANCES, VALID_TICKER, VALID_TIME]), body_mutations).map(
        lambda b: json.dumps(mutate(*b)).encode()
    )
)


def http_response(status: int, reason: str, header_list: list[tuple[str, str]], body: bytes) -> bytes:
    head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in header_list)
    return head.encode("latin-1") + b"\r\n" + body


def check_client(server: RawServer, response: bytes) -> None:
    server.response = response
    client = Client(f"http://127.0.0.1:{server.server_address[1]}", timeout=0.5)
    try:
        for call in (lambda: client.balances(ACCOUNT), client.ticker, client.sync_clock):
            try:
                call()
            except ApiError as exc:
                assert exc.reason in REASONS
                str(exc)
    finally:
        client.session.close()


@PROPERTY
@given(
    status=st.integers(min_value=100, max_value=599) | st.sampled_from([200, 301, 302, 401, 403, 429, 500]),
    reason=st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=12),
    header_list=headers,
    body=bodies,
)
@example(status=200, reason="OK", header_list=[], body=b"[" * 50_000 + b"]" * 50_000)
@example(status=500, reason="X", header_list=[("Content-Type", "application/json")], body=b"[" * 50_000)
@example(status=200, reason="OK", header_list=[], body=b'{"serverTime": 1' + b"0" * 400 + b"}")
@example(status=200, reason="OK", header_list=[], body=b'{"serverTime": Infinity}')
def test_client_against_random_answers(
    raw_server: RawServer, status: int, reason: str, header_list: list[tuple[str, str]], body: bytes
) -> None:
    check_client(raw_server, http_response(status, reason, header_list, body))


@PROPERTY
@given(response=st.binary(max_size=400))
@example(response=b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}")
@example(response=b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
@example(response=b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\nnot gzip")
def test_client_against_random_bytes(raw_server: RawServer, response: bytes) -> None:
    check_client(raw_server, response)


def test_redirects_are_not_followed_with_signed_headers(raw_server: RawServer) -> None:
    """A 3xx (from a proxy or CDN) must not carry X-PCK/X-Signature to wherever it points."""
    with RawServer() as elsewhere:
        thread = threading.Thread(target=elsewhere.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        elsewhere.response = http_response(200, "OK", [], json.dumps(VALID_BALANCES).encode())
        # Another port is another origin, as a redirect to another host would be.
        target = f"http://127.0.0.1:{elsewhere.server_address[1]}{BALANCES}"
        raw_server.response = http_response(
            302, "Found", [("Location", target), ("Content-Length", "0")], b""
        )
        client = Client(f"http://127.0.0.1:{raw_server.server_address[1]}", timeout=2)
        try:
            with pytest.raises(ApiError) as info:
                client.balances(ACCOUNT)
        finally:
            client.session.close()
            elsewhere.shutdown()
        assert info.value.reason == "bad_response"
        assert info.value.status == 302
        assert f"redirect to {target}" in str(info.value)
        leaked = b"\n".join(elsewhere.requests).lower()
        assert b"x-signature" not in leaked and b"x-pck" not in leaked
