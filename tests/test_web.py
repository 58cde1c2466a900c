"""The HTTP layer in process: routing, probes, headers, auth hook and listen addresses."""

import socket
from collections.abc import Iterator

import pytest
import requests

from exporter.client import REASONS
from exporter.metrics import Renderer, Settings
from exporter.snapshot import AccountSnapshot, Store
from exporter.web import ListenError, parse_listen_address, start_server

SETTINGS = Settings(30.0, 300.0, ("TRY",), "last", False)


@pytest.fixture
def store() -> Store:
    return Store(["main"], REASONS)


def serve(store: Store, **options: object) -> Iterator[str]:
    server, thread = start_server("127.0.0.1:0", Renderer(SETTINGS, store.view), store.view, **options)
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
    for url in serve(store, authenticate=lambda header: header == "Basic ok"):
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
