"""`python -m exporter.healthcheck` against a real exporter on a non-default address with TLS on."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from pki import make_pki
from support import ExporterProcess


def healthcheck(*args: str) -> int:
    return subprocess.run(
        [sys.executable, "-m", "exporter.healthcheck", *args], capture_output=True, timeout=30, check=False
    ).returncode


def test_healthcheck_follows_the_exporters_flags(
    exporter_factory: Callable[..., ExporterProcess], tmp_path: Path
) -> None:
    pki = make_pki(tmp_path)
    web = tmp_path / "web.yml"
    web.write_text(f"tls_server_config:\n  cert_file: {pki.server_cert}\n  key_file: {pki.server_key}\n")
    exporter = exporter_factory(
        None, "--demo", "--demo.poll-interval", "1s", "--web.config.file", str(web), ready=False
    )
    address = f"127.0.0.1:{exporter.port}"
    # The same two flags the exporter was given, as the image's probe reads them from /proc.
    assert healthcheck(f"--web.listen-address={address}", f"--web.config.file={web}") == 0
    assert healthcheck(str(exporter.port)) == 0
    exporter.terminate()
    assert healthcheck(f"--web.listen-address={address}", f"--web.config.file={web}") == 1
