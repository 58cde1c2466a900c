"""The exporter-toolkit web configuration: parsing, basic auth, TLS, and an in-process server behind them."""

from __future__ import annotations

import base64
import logging
import os
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
import requests
from pki import Pki, make_pki
from support import wait_for, write_config

from exporter.api.errors import REASONS
from exporter.metrics.renderer import Renderer
from exporter.metrics.series import Settings
from exporter.poll.snapshot import Store
from exporter.web import basicauth
from exporter.web.basicauth import BasicAuth, parse_basic_auth
from exporter.web.config import WebConfigError, load_web_config
from exporter.web.reload import WebConfigFile
from exporter.web.server import start_server

PASSWORD = "correct horse"
# Cost 4 keeps the unit tests fast; the cost does not change what is being tested.
# A fixed salt: the hash names parametrized tests, which every xdist worker must collect alike.
HASH = bcrypt.hashpw(PASSWORD.encode(), b"$2b$04$abcdefghijklmnopqrstuu").decode()
assert HASH == "$2b$04$abcdefghijklmnopqrstuujydOTSfIH/d5oUHpsygqV5X9xJLQc6e"
OTHER_HASH = bcrypt.hashpw(b"other password", bcrypt.gensalt(rounds=4)).decode()


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def tls_section(pki: Pki, **extra: str) -> str:
    lines = [f"  cert_file: {pki.server_cert}", f"  key_file: {pki.server_key}"]
    lines += [f"  {key}: {value}" for key, value in extra.items()]
    return "tls_server_config:\n" + "\n".join(lines) + "\n"


def problems_of(path: str) -> list[str]:
    with pytest.raises(WebConfigError) as caught:
        load_web_config(path)
    assert str(caught.value) == "\n".join(caught.value.problems)
    return list(caught.value.problems)


# --- loading --------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n"])
def test_empty_file_means_no_tls_and_no_auth(tmp_path: Path, text: str) -> None:
    config = load_web_config(write_config(tmp_path, text))
    assert config.server_options() == {}
    assert config.tls is None


def test_tls_and_users_become_server_options(tmp_path: Path, pki: Pki) -> None:
    config = load_web_config(
        write_config(tmp_path, tls_section(pki) + f"basic_auth_users:\n  alice: '{HASH}'\n")
    )
    options = config.server_options()
    assert set(options) == {"ssl_context", "authenticate"}
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_NONE
    assert callable(options["authenticate"])
    # The same authenticator each time, so its cache is shared by every request.
    assert config.server_options()["authenticate"] is options["authenticate"]


def test_relative_paths_are_relative_to_the_config_file(
    tmp_path: Path, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    path = write_config(
        pki.directory,
        "tls_server_config:\n  cert_file: server.crt\n  key_file: ./server.key\n",
        "relative.yml",
    )
    config = load_web_config(path)
    assert config.tls is not None
    assert config.tls.cert_file == str(pki.directory / "server.crt")
    assert config.tls.key_file == str(pki.directory / "server.key")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "foo: 1\n",
            "foo: unknown key (known: basic_auth_users, http_server_config, rate_limit, tls_server_config)",
        ),
        ("- a\n", "expected a mapping, got list"),
        ("tls_server_config: yes\n", "tls_server_config: expected a mapping, got bool"),
        (
            "tls_server_config:\n  cert_file: a.crt\n",
            "tls_server_config.key_file: missing: TLS needs cert_file and key_file",
        ),
        (
            "tls_server_config:\n  key_file: a.key\n",
            "tls_server_config.cert_file: missing: TLS needs cert_file and key_file",
        ),
        (
            "tls_server_config:\n  cert_file: [a]\n  key_file: k\n",
            "tls_server_config.cert_file: expected a string, got list",
        ),
        (
            "tls_server_config:\n  cert: '-----BEGIN'\n  key_file: k\n",
            "tls_server_config.cert: inline PEM is not supported here; put it in a file and use cert_file",
        ),
        (
            "tls_server_config:\n  cert_file: c\n  key_file: k\n  client_allowed_sans: [a]\n",
            "tls_server_config.client_allowed_sans: not supported by this exporter",
        ),
        (
            "tls_server_config:\n  cert_file: c\n  key_file: k\n  min_version: TLS14\n",
            "tls_server_config.min_version: unknown value 'TLS14' (known: TLS10, TLS11, TLS12, TLS13)",
        ),
        (
            "tls_server_config:\n  cert_file: c\n  key_file: k\n  min_version: TLS13\n  max_version: TLS12\n",
            "tls_server_config.min_version: TLS13 is above max_version TLS12",
        ),
        (
            "tls_server_config:\n  cert_file: c\n  key_file: k\n  client_auth_type: RequireAnyClientCert\n",
            "tls_server_config.client_auth_type: RequireAnyClientCert is not supported "
            "(it accepts unverified certificates); use RequireAndVerifyClientCert or VerifyClientCertIfGiven",
        ),
        (
            "tls_server_config:\n  cert_file: c\n  key_file: k\n  client_auth_type: Always\n",
            "tls_server_config.client_auth_type: unknown value 'Always' (known: NoClientCert, "
            "VerifyClientCertIfGiven, RequireAndVerifyClientCert)",
        ),
        (
            "tls_server_config:\n  cert_file: c\n  key_file: k\n  client_ca_file: ca\n",
            "tls_server_config.client_auth_type: a client CA is set, "
            "so set a client_auth_type that verifies it",
        ),
        (
            "tls_server_config:\n  cert_file: c\n  key_file: k\n"
            "  client_auth_type: RequireAndVerifyClientCert\n",
            "tls_server_config.client_ca_file: missing: "
            "client_auth_type RequireAndVerifyClientCert needs a CA to verify clients",
        ),
        (
            "http_server_config:\n  headers:\n    Server: nginx\n",
            "http_server_config.headers.Server: this header cannot be configured "
            "(allowed: Strict-Transport-Security, X-Content-Type-Options, X-Frame-Options, "
            "X-XSS-Protection, Content-Security-Policy)",
        ),
        (
            "http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
            "http_server_config.headers.X-Frame-Options: expected one of deny, sameorigin, got 'allow'",
        ),
        (
            "http_server_config:\n  http2: maybe\n",
            "http_server_config.http2: expected true or false, got str",
        ),
        (
            "http_server_config:\n  gzip: true\n",
            "http_server_config.gzip: unknown key (known: headers, http2)",
        ),
        (
            "basic_auth_users: [alice]\n",
            "basic_auth_users: expected a mapping of usernames to bcrypt hashes, got list",
        ),
        (f"basic_auth_users:\n  123: '{HASH}'\n", "basic_auth_users: username 123 is not a string; quote it"),
        (
            f"basic_auth_users:\n  'a:b': '{HASH}'\n",
            "basic_auth_users.a:b: usernames cannot contain ':' (basic auth splits on the first one)",
        ),
        ("rate_limit:\n  every: 1s\n", "rate_limit.every: unknown key (known: burst, interval)"),
        (
            "basic_auth_users:\n  a: x\n  a: y\n",
            "invalid YAML: line 3, column 3: duplicate key 'a' (first at line 2)",
        ),
        ("a: [\n", "invalid YAML: line 2, column 1: expected the node content, but found '<stream end>'"),
    ],
)
def test_error_messages(tmp_path: Path, text: str, expected: str) -> None:
    path = write_config(tmp_path, text)
    assert f"{path}: {expected}" in problems_of(path)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        "tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n  min_version: TLS9\n"
        "basic_auth_users:\n  alice: not-a-hash\nbogus: 1\n",
    )
    problems = problems_of(path)
    assert len(problems) == 5, problems
    assert (
        f"{path}: tls_server_config.cert_file: cannot read {tmp_path}/missing.crt: No such file or directory"
        in problems
    )
    assert (
        f"{path}: tls_server_config.key_file: cannot read {tmp_path}/missing.key: No such file or directory"
        in problems
    )


def test_unreadable_config_file(tmp_path: Path) -> None:
    path = str(tmp_path / "absent.yml")
    assert problems_of(path) == [f"{path}: cannot read: No such file or directory"]


def test_certificate_and_key_problems(tmp_path: Path, pki: Pki) -> None:
    def problem(cert: Path, key: Path, **extra: str) -> list[str]:
        path = write_config(
            tmp_path,
            f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
            + "".join(f"  {k}: {v}\n" for k, v in extra.items()),
        )
        return [line.removeprefix(f"{path}: ") for line in problems_of(path)]

    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not PEM\n")
    where = "tls_server_config"
    assert problem(pki.server_cert, pki.other_key) == [
        f"{where}.key_file: {pki.other_key} does not match the certificate in {pki.server_cert}"
    ]
    assert problem(garbage, pki.server_key) == [f"{where}.cert_file: no PEM certificate in {garbage}"]
    assert problem(pki.server_cert, garbage) == [f"{where}.key_file: no PEM private key in {garbage}"]
    # Swapped files: the certificate file holds a key.
    assert problem(pki.server_key, pki.server_cert) == [
        f"{where}.cert_file: no PEM certificate in {pki.server_key}"
    ]
    assert problem(pki.server_cert, pki.encrypted_key) == [
        f"{where}.key_file: {pki.encrypted_key} is encrypted; give an unencrypted key"
    ]
    assert problem(pki.server_cert, tmp_path) == [f"{where}.key_file: cannot read {tmp_path}: Is a directory"]
    assert problem(
        pki.server_cert,
        pki.server_key,
        client_auth_type="RequireAndVerifyClientCert",
        client_ca_file=str(garbage),
    ) == [f"{where}.client_ca_file: no PEM certificate in {garbage}"]


def test_go_only_settings_are_accepted_with_a_warning(
    tmp_path: Path, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    text = tls_section(pki) + (
        "  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n"
        "  curve_preferences: [X25519]\n"
        "  prefer_server_cipher_suites: true\n"
        "http_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\n"
        "rate_limit:\n  interval: 1s\n  burst: 10\n"
    )
    with caplog.at_level(logging.WARNING, logger="exporter.web.config"):
        config = load_web_config(write_config(tmp_path, text))
    assert config.ssl_context is not None
    # Headers are supported, so they are passed on, not warned about.
    assert config.headers == {"X-Frame-Options": "deny"}
    assert config.server_options()["headers"] == {"X-Frame-Options": "deny"}
    warned = caplog.text
    for name in ("cipher_suites", "curve_preferences", "prefer_server_cipher_suites", "rate_limit"):
        assert name in warned
    assert "headers" not in warned


@pytest.mark.parametrize(
    ("version", "expected"), [("TLS10", ssl.TLSVersion.TLSv1), ("TLS13", ssl.TLSVersion.TLSv1_3)]
)
def test_min_version(tmp_path: Path, pki: Pki, version: str, expected: ssl.TLSVersion) -> None:
    config = load_web_config(write_config(tmp_path, tls_section(pki, min_version=version)))
    assert config.ssl_context is not None
    assert config.ssl_context.minimum_version == expected
    assert config.ssl_context.maximum_version == ssl.TLSVersion.TLSv1_3


# --- bcrypt hashes --------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["$2a$", "$2b$", "$2y$"])
def test_bcrypt_variants_are_accepted_and_work(tmp_path: Path, prefix: str) -> None:
    hashed = prefix + HASH[4:]
    config = load_web_config(write_config(tmp_path, f"basic_auth_users:\n  alice: '{hashed}'\n"))
    assert config.authenticator is not None
    assert config.authenticator(basic("alice", PASSWORD))
    assert not config.authenticator(basic("alice", "wrong"))


@pytest.mark.parametrize(
    "hashed",
    [
        "hunter2",
        "",
        "$2x$" + HASH[4:],  # the buggy crypt_blowfish variant
        "$2b$03$" + HASH[7:],  # below bcrypt's minimum cost
        "$2b$32$" + HASH[7:],
        HASH[:-1],
        HASH + "x",
        HASH[:28] + "A" + HASH[29:],  # the salt's last character must leave its padding bits zero
        "$2b$10$" + "!" * 53,
    ],
)
def test_invalid_hashes_are_rejected_without_echoing_them(tmp_path: Path, hashed: str) -> None:
    path = write_config(tmp_path, f"basic_auth_users:\n  alice: '{hashed}'\n")
    problems = problems_of(path)
    assert problems == [
        f"{path}: basic_auth_users.alice: not a bcrypt hash (expected $2a$, $2b$ or $2y$, a cost of 04-31 "
        "and 53 characters; value not shown)"
    ]
    if hashed:
        assert hashed not in problems[0]


def test_non_string_hash_is_rejected(tmp_path: Path) -> None:
    path = write_config(tmp_path, "basic_auth_users:\n  alice: 12345\n")
    assert "basic_auth_users.alice: not a bcrypt hash" in problems_of(path)[0]


def test_hashes_and_passwords_stay_out_of_reprs_and_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        config = load_web_config(write_config(tmp_path, f"basic_auth_users:\n  alice: '{HASH}'\n"))
        assert config.authenticator is not None
        config.authenticator(basic("alice", PASSWORD))
        config.authenticator(basic("alice", "wrong password"))
    assert HASH not in repr(config)
    assert PASSWORD not in caplog.text
    assert "wrong password" not in caplog.text


# --- the Authorization header ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Basic",
        "Basic ",
        "Bearer " + base64.b64encode(b"alice:pw").decode(),
        "Basic !!!not base64!!!",
        "Basic YWxpY2U6cHc",  # missing padding
        "Basic " + base64.b64encode(b"no colon here").decode(),
        "Basic " + base64.b64encode(b"alice:\xff\xfe").decode(),  # not UTF-8
        "Basic " + base64.b64encode(b"\xc3(:pw").decode(),
        "Basic \xe9\xe8",  # http.server hands over headers decoded as Latin-1
        "Basic " + "A" * 10_000,
        "Basic\x00" + base64.b64encode(b"alice:pw").decode(),
    ],
)
def test_garbage_headers_are_refused_without_crashing(header: str | None) -> None:
    assert parse_basic_auth(header) is None
    assert BasicAuth({"alice": HASH})(header) is False


def test_header_parsing() -> None:
    assert parse_basic_auth(basic("alice", PASSWORD)) == ("alice", PASSWORD)
    assert parse_basic_auth("basic " + base64.b64encode(b"alice:a:b:").decode()) == ("alice", "a:b:")
    assert parse_basic_auth("  BASIC   " + base64.b64encode(b":").decode() + " ") == ("", "")
    assert parse_basic_auth(basic("jos\u00e9", "p\u00e4ss")) == ("jos\u00e9", "p\u00e4ss")


# --- checking credentials and the cache -----------------------------------------------------------


@pytest.fixture
def bcrypt_calls(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Count bcrypt checks: records the hash each one was made against."""
    calls: list[bytes] = []
    real = bcrypt.checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        calls.append(hashed)
        return real(password, hashed)

    monkeypatch.setattr(basicauth.bcrypt, "checkpw", counting)
    return calls


def test_right_and_wrong_passwords(bcrypt_calls: list[bytes]) -> None:
    auth = BasicAuth({"alice": HASH, "bob": OTHER_HASH})
    assert auth(basic("alice", PASSWORD))
    assert auth(basic("bob", "other password"))
    assert not auth(basic("alice", "other password"))
    assert not auth(basic("bob", PASSWORD))
    assert not auth(basic("Alice", PASSWORD))
    assert not auth(basic("alice", PASSWORD + " "))


def test_a_repeated_check_does_not_run_bcrypt_again(bcrypt_calls: list[bytes]) -> None:
    auth = BasicAuth({"alice": HASH})
    assert auth(basic("alice", PASSWORD))
    assert auth(basic("alice", PASSWORD))
    assert len(bcrypt_calls) == 1
    assert not auth(basic("alice", "wrong"))
    assert not auth(basic("alice", "wrong"))
    assert len(bcrypt_calls) == 2


def test_unknown_users_cost_one_bcrypt_check_against_a_real_hash(bcrypt_calls: list[bytes]) -> None:
    auth = BasicAuth({"alice": HASH})
    # Even with alice's password: the decoy check must never let an unknown user in.
    assert not auth(basic("mallory", PASSWORD))
    assert bcrypt_calls == [HASH.encode()]
    assert not auth(basic("mallory", PASSWORD))
    assert len(bcrypt_calls) == 1


def test_the_cache_is_bounded(bcrypt_calls: list[bytes]) -> None:
    auth = BasicAuth({"alice": HASH}, cache_size=3)
    for attempt in range(5):
        assert not auth(basic("alice", f"guess {attempt}"))
    assert len(bcrypt_calls) == 5
    assert not auth(basic("alice", "guess 4"))  # still cached
    assert len(bcrypt_calls) == 5
    assert not auth(basic("alice", "guess 0"))  # evicted
    assert len(bcrypt_calls) == 6


def test_a_flood_of_wrong_passwords_does_not_evict_the_right_one(bcrypt_calls: list[bytes]) -> None:
    auth = BasicAuth({"alice": HASH}, cache_size=2)
    assert auth(basic("alice", PASSWORD))
    for attempt in range(10):
        auth(basic("alice", f"guess {attempt}"))
    calls = len(bcrypt_calls)
    assert auth(basic("alice", PASSWORD))
    assert len(bcrypt_calls) == calls


def test_concurrent_requests_with_the_same_credentials_share_one_bcrypt_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = []
    release = threading.Event()
    real = bcrypt.checkpw

    def slow(password: bytes, hashed: bytes) -> bool:
        calls.append(hashed)
        release.wait(5)
        return real(password, hashed)

    monkeypatch.setattr(basicauth.bcrypt, "checkpw", slow)
    auth = BasicAuth({"alice": HASH}, max_unverified=50, max_unverified_per_client=50)
    results: list[bool] = []
    threads = [
        threading.Thread(target=lambda: results.append(auth(basic("alice", PASSWORD)))) for _ in range(50)
    ]
    for thread in threads:
        thread.start()
    wait_for(lambda: calls, 5, what="the first bcrypt check")
    release.set()
    for thread in threads:
        thread.join(5)
    assert results == [True] * 50
    assert len(calls) == 1


@pytest.fixture
def stalled_bcrypt(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[list[bytes], threading.Event]]:
    """bcrypt checks that block until the event is set, standing in for an expensive cost factor."""
    calls: list[bytes] = []
    release = threading.Event()
    real = bcrypt.checkpw

    def stalled(password: bytes, hashed: bytes) -> bool:
        calls.append(password)
        release.wait(10)
        return real(password, hashed)

    monkeypatch.setattr(basicauth.bcrypt, "checkpw", stalled)
    yield calls, release
    release.set()


def check_in_thread(auth: BasicAuth, header: str, client: str) -> tuple[threading.Thread, list[bool]]:
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(auth(header, client)), daemon=True)
    thread.start()
    return thread, result


def test_unverified_credentials_are_checked_a_few_at_a_time_and_never_delay_verified_ones(
    stalled_bcrypt: tuple[list[bytes], threading.Event],
) -> None:
    calls, release = stalled_bcrypt
    auth = BasicAuth({"alice": HASH}, parallelism=3, max_unverified=3, max_unverified_per_client=2)
    release.set()
    assert auth(basic("alice", PASSWORD), "10.0.0.1")  # verified once, as Prometheus's first scrape
    release.clear()
    calls.clear()
    # A flood of new wrong passwords: three checks stall in bcrypt (two from one address).
    pending = [
        check_in_thread(auth, basic("alice", f"guess {n}"), client)
        for n, client in enumerate(["10.0.0.66", "10.0.0.66", "10.0.0.77"])
    ]
    wait_for(lambda: len(calls) == 3, 5, what="three stalled bcrypt checks")
    # The verified credential answers at once, from any address.
    for client in ("10.0.0.1", "10.0.0.66", "10.0.0.99"):
        thread, result = check_in_thread(auth, basic("alice", PASSWORD), client)
        thread.join(2)
        assert result == [True], client
    # Over the budget, further new credentials are refused at once, without running bcrypt.
    thread, result = check_in_thread(auth, basic("alice", "one more guess"), "10.0.0.88")
    thread.join(2)
    assert result == [False]
    assert len(calls) == 3
    release.set()
    for thread, result in pending:
        thread.join(5)
        assert result == [False]


def test_one_address_gets_only_its_share_of_unverified_checks(
    stalled_bcrypt: tuple[list[bytes], threading.Event],
) -> None:
    calls, release = stalled_bcrypt
    auth = BasicAuth({"alice": HASH}, max_unverified=4, max_unverified_per_client=1)
    flood, _ = check_in_thread(auth, basic("alice", "guess"), "10.0.0.66")
    wait_for(lambda: len(calls) == 1, 5, what="the flood's bcrypt check")
    thread, result = check_in_thread(auth, basic("alice", "guess 2"), "10.0.0.66")
    thread.join(2)
    assert result == [False]  # refused unchecked: that address already has a check in progress
    assert len(calls) == 1
    newcomer, verdict = check_in_thread(auth, basic("alice", PASSWORD), "10.0.0.1")
    wait_for(lambda: len(calls) == 2, 5, what="the newcomer's bcrypt check")
    release.set()
    newcomer.join(5)
    flood.join(5)
    assert verdict == [True]


def test_passwords_longer_than_72_bytes_are_truncated_like_go_and_htpasswd() -> None:
    long_password = "p" * 72
    auth = BasicAuth({"alice": bcrypt.hashpw(long_password.encode(), bcrypt.gensalt(rounds=4)).decode()})
    assert auth(basic("alice", long_password + "ignored by bcrypt"))
    assert not auth(basic("alice", "p" * 71))


# --- TLS with client certificates, in process ----------------------------------------------------


def handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> bool:
    """Whether a TLS connection between the two contexts gets as far as exchanging data."""
    server_end, client_end = socket.socketpair()
    server_end.settimeout(5)
    client_end.settimeout(5)

    def serve() -> None:
        try:
            with server.wrap_socket(server_end, server_side=True) as tls:
                tls.sendall(b"ok")
        except OSError:  # ssl.SSLError is an OSError
            server_end.close()

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with client.wrap_socket(client_end, server_hostname="localhost") as tls:
            return tls.recv(2) == b"ok"
    except OSError:
        return False
    finally:
        thread.join(5)


def client_context(pki: Pki, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.server_cert))
    if cert is not None:
        context.load_cert_chain(str(cert), str(key))
    return context


@pytest.mark.parametrize(
    ("auth_type", "no_cert", "good_cert", "rogue_cert"),
    [
        ("RequireAndVerifyClientCert", False, True, False),
        ("VerifyClientCertIfGiven", True, True, False),
    ],
)
def test_client_certificates(
    tmp_path: Path, pki: Pki, auth_type: str, no_cert: bool, good_cert: bool, rogue_cert: bool
) -> None:
    path = write_config(
        tmp_path, tls_section(pki, client_auth_type=auth_type, client_ca_file=str(pki.client_ca))
    )
    server = load_web_config(path).ssl_context
    assert server is not None
    assert handshake(server, client_context(pki)) is no_cert
    assert handshake(server, client_context(pki, pki.client_cert, pki.client_key)) is good_cert
    assert handshake(server, client_context(pki, pki.rogue_cert, pki.rogue_key)) is rogue_cert


def test_client_ca_inline(tmp_path: Path, pki: Pki) -> None:
    pem = "".join(f"    {line}\n" for line in pki.client_ca.read_text().splitlines())
    text = tls_section(pki, client_auth_type="RequireAndVerifyClientCert") + f"  client_ca: |\n{pem}"
    server = load_web_config(write_config(tmp_path, text)).ssl_context
    assert server is not None
    assert handshake(server, client_context(pki, pki.client_cert, pki.client_key))
    assert not handshake(server, client_context(pki))


def test_client_ca_inline_and_file_together(tmp_path: Path, pki: Pki) -> None:
    text = tls_section(
        pki, client_auth_type="VerifyClientCertIfGiven", client_ca_file=str(pki.client_ca), client_ca="x"
    )
    path = write_config(tmp_path, text)
    assert problems_of(path) == [
        f"{path}: tls_server_config.client_ca: give client_ca or client_ca_file, not both"
    ]


def test_tls13_minimum_refuses_tls12_clients(tmp_path: Path, pki: Pki) -> None:
    server = load_web_config(write_config(tmp_path, tls_section(pki, min_version="TLS13"))).ssl_context
    assert server is not None
    old_client = client_context(pki)
    old_client.maximum_version = ssl.TLSVersion.TLSv1_2
    assert handshake(server, client_context(pki))
    assert not handshake(server, old_client)


# --- following the file while the server runs ---------------------------------------------------


def served_certificate(port: int) -> bytes:
    """The DER certificate the server presents to a new connection."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def der_of(path: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(path.read_text())


@pytest.fixture
def reloading_server(tmp_path: Path, pki: Pki) -> Iterator[tuple[WebConfigFile, int, Path]]:
    """An in-process server following web.yml, which names server.crt/server.key beside it."""
    (tmp_path / "server.crt").write_bytes(pki.server_cert.read_bytes())
    (tmp_path / "server.key").write_bytes(pki.server_key.read_bytes())
    path = Path(
        write_config(tmp_path, "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n")
    )
    web_config = WebConfigFile(str(path))
    store = Store(["main"], REASONS)
    renderer = Renderer(Settings(30.0, 300.0, ("TRY",), "last", False), store.view)
    server, thread = start_server("127.0.0.1:0", renderer, store.view, web_config=web_config)
    try:
        yield web_config, server.server_address[1], path
    finally:
        server.shutdown()
        server.server_close()
        thread.join(2)


def test_a_rotated_certificate_is_served_without_a_restart(
    reloading_server: tuple[WebConfigFile, int, Path], tmp_path_factory: pytest.TempPathFactory, pki: Pki
) -> None:
    _, port, path = reloading_server
    assert served_certificate(port) == der_of(pki.server_cert)
    rotated = make_pki(tmp_path_factory.mktemp("rotated"))
    # As cert-manager or a Secret update would: new files renamed over the old ones.
    for name, source in (("server.crt", rotated.server_cert), ("server.key", rotated.server_key)):
        (path.parent / f".{name}.new").write_bytes(source.read_bytes())
        os.replace(path.parent / f".{name}.new", path.parent / name)
    assert served_certificate(port) == der_of(rotated.server_cert)


def test_a_broken_new_file_keeps_the_running_config_and_says_why_once(
    reloading_server: tuple[WebConfigFile, int, Path], pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    web_config, port, path = reloading_server
    path.write_text("tls_server_config:\n  cert_file: server.crt\n  key_file: missing.key\n")
    with caplog.at_level(logging.WARNING, logger="exporter.web.reload"):
        for _ in range(3):
            assert served_certificate(port) == der_of(pki.server_cert)
    warnings = [r.getMessage() for r in caplog.records if r.name == "exporter.web.reload"]
    assert len(warnings) == 1, warnings
    assert "\n" not in warnings[0]
    assert "still serving with the previous one" in warnings[0]
    assert "tls_server_config.key_file: cannot read" in warnings[0]
    assert web_config.reload() is False


def test_reload_turns_on_basic_auth_and_keeps_verified_credentials_across_unrelated_changes(
    reloading_server: tuple[WebConfigFile, int, Path], pki: Pki, bcrypt_calls: list[bytes]
) -> None:
    web_config, port, path = reloading_server
    url = f"https://127.0.0.1:{port}/metrics"
    assert requests.get(url, verify=str(pki.server_cert), timeout=5).status_code == 200
    tls = path.read_text()
    path.write_text(tls + f"basic_auth_users:\n  alice: '{HASH}'\n")
    assert web_config.reload() is True
    assert requests.get(url, verify=str(pki.server_cert), timeout=5).status_code == 401
    good = requests.get(url, verify=str(pki.server_cert), auth=("alice", PASSWORD), timeout=5)
    assert good.status_code == 200
    calls = len(bcrypt_calls)
    path.write_text(
        tls + f"basic_auth_users:\n  alice: '{HASH}'\nhttp_server_config:\n  headers:\n"
        "    X-Frame-Options: deny\n"
    )
    again = requests.get(url, verify=str(pki.server_cert), auth=("alice", PASSWORD), timeout=5)
    assert again.headers["X-Frame-Options"] == "deny"  # the new file is in force...
    assert len(bcrypt_calls) == calls  # ...and alice's password was not checked again


def test_client_certificates_through_the_server(tmp_path: Path, pki: Pki) -> None:
    """The non-blocking handshake still verifies client certificates."""
    config = load_web_config(
        write_config(
            tmp_path,
            tls_section(
                pki, client_auth_type="RequireAndVerifyClientCert", client_ca_file=str(pki.client_ca)
            ),
        )
    )
    store = Store(["main"], REASONS)
    renderer = Renderer(Settings(30.0, 300.0, ("TRY",), "last", False), store.view)
    server, thread = start_server("127.0.0.1:0", renderer, store.view, **config.server_options())
    url = f"https://127.0.0.1:{server.server_address[1]}/healthz"
    try:
        good = (str(pki.client_cert), str(pki.client_key))
        rogue = (str(pki.rogue_cert), str(pki.rogue_key))
        assert requests.get(url, verify=str(pki.server_cert), cert=good, timeout=5).status_code == 200
        for cert in (None, rogue):
            with pytest.raises(requests.exceptions.RequestException):
                requests.get(url, verify=str(pki.server_cert), cert=cert, timeout=5)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(2)
