"""The web config file in a real exporter process: TLS and basic auth over loopback, a bad file at start."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
import requests
from pki import Pki
from support import ExporterProcess, start_exporter, wait_for, write_config

PASSWORD = "correct horse"
# Cost 4 keeps the tests fast; the cost does not change what is being tested.
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()


@pytest.fixture(scope="module")
def secured_exporter(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExporterProcess]:
    directory = tmp_path_factory.mktemp("secured")
    # Relative paths: the exporter runs from another directory and must resolve them against the file's.
    (directory / "server.crt").write_bytes(pki.server_cert.read_bytes())
    (directory / "server.key").write_bytes(pki.server_key.read_bytes())
    web_config = write_config(
        directory,
        f"tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
        f"basic_auth_users:\n  prometheus: '{HASH}'\n",
    )
    exporter = start_exporter(
        directory, None, "--demo", "--demo.poll-interval", "1s", "--web.config.file", web_config, ready=False
    )
    exporter.scheme = "https"
    exporter.session.verify = str(pki.server_cert)
    # Otherwise REQUESTS_CA_BUNDLE, when set, silently replaces session.verify (psf/requests#3829).
    exporter.session.trust_env = False
    try:
        wait_for(lambda: exporter.get("/ready").status_code == 200, 15, what="/ready over TLS")
    except BaseException:
        exporter.terminate()
        raise
    yield exporter
    assert exporter.terminate() == 0, exporter.log_text()


def test_metrics_need_the_right_password(secured_exporter: ExporterProcess) -> None:
    good = secured_exporter.get("/metrics", auth=("prometheus", PASSWORD))
    assert good.status_code == 200
    assert "btcturk_up" in good.text
    for auth in (("prometheus", "wrong"), ("nobody", PASSWORD), None):
        refused = secured_exporter.get("/metrics", auth=auth)
        assert refused.status_code == 401, auth
        assert refused.headers["WWW-Authenticate"].startswith("Basic ")
        assert "btcturk_up" not in refused.text


def test_probes_need_no_password(secured_exporter: ExporterProcess) -> None:
    assert secured_exporter.get("/healthz").status_code == 200
    assert secured_exporter.get("/ready").status_code == 200


def test_the_certificate_is_the_configured_one(secured_exporter: ExporterProcess, pki: Pki) -> None:
    by_name = requests.get(
        f"https://localhost:{secured_exporter.port}/healthz", verify=str(pki.server_cert), timeout=5
    )
    assert by_name.status_code == 200
    # The system trust store does not know the self-signed certificate: proves TLS is really verified.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"https://127.0.0.1:{secured_exporter.port}/healthz", timeout=5)


def test_plain_http_to_the_tls_port_fails(secured_exporter: ExporterProcess) -> None:
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://127.0.0.1:{secured_exporter.port}/healthz", timeout=5)
    # The failed handshake only ended that connection.
    assert secured_exporter.get("/healthz").status_code == 200


def test_an_invalid_web_config_stops_the_exporter_at_start(tmp_path: Path) -> None:
    web_config = write_config(tmp_path, "basic_auth_users:\n  alice: my-plain-password\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "exporter",
            "--demo",
            "--web.listen-address",
            "127.0.0.1:0",
            "--web.config.file",
            web_config,
        ],
        capture_output=True,
        text=True,
        timeout=15,
    )
    assert result.returncode == 1
    assert f"{web_config}: basic_auth_users.alice: not a bcrypt hash" in result.stderr
    assert "my-plain-password" not in result.stderr + result.stdout
