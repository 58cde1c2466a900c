"""Container health probe: exits 0 when the exporter's /healthz answers 200, 1 otherwise.

    python -m exporter.healthcheck [--web.listen-address HOST:PORT] [--web.config.file PATH]
    python -m exporter.healthcheck PORT

Without arguments it probes the address the running exporter was actually given: it reads the
exporter's own command line from /proc (PID 1 in a container, or the first process that is the
exporter, e.g. under `docker run --init`), so `docker run IMAGE --web.listen-address=:9100` needs no
second setting. It speaks TLS first when that command line names a web config with TLS, and tries
the other scheme too, since the file can change while the exporter runs.
"""

from __future__ import annotations

import os
import ssl
import sys
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

DEFAULT_ADDRESS = ":9788"
LISTEN_FLAG = "--web.listen-address"
CONFIG_FLAG = "--web.config.file"


@dataclass(frozen=True)
class Target:
    """Where the exporter listens, as its flags say."""

    listen_address: str = DEFAULT_ADDRESS
    web_config_file: str | None = None


def flags_of(argv: Sequence[str]) -> Target | None:
    """The listen address and web config in an exporter command line; None if it is not the exporter."""
    argv = list(argv)
    start = None
    for i, arg in enumerate(argv):
        if os.path.basename(arg) == "btcturk-exporter":
            start = i + 1
            break
        if arg == "-m" and argv[i + 1 : i + 2] == ["exporter"]:
            start = i + 2
            break
    if start is None:
        return None
    values: dict[str, str] = {}
    args = list(argv[start:])
    for i, arg in enumerate(args):
        for flag in (LISTEN_FLAG, CONFIG_FLAG):
            if arg == flag and i + 1 < len(args):
                values[flag] = args[i + 1]
            elif arg.startswith(flag + "="):
                values[flag] = arg.partition("=")[2]
    return Target(values.get(LISTEN_FLAG, DEFAULT_ADDRESS), values.get(CONFIG_FLAG) or None)


def find_exporter(proc: Path = Path("/proc")) -> Target:
    """The flags of the exporter process: PID 1 if it is the exporter, else the lowest PID that is."""
    pids = [int(entry.name) for entry in _entries(proc) if entry.name.isdigit()]
    for pid in sorted(pids, key=lambda p: (p != 1, p)):
        if pid == os.getpid():
            continue
        try:
            raw = (proc / str(pid) / "cmdline").read_bytes()
        except OSError:
            continue
        target = flags_of([part.decode(errors="replace") for part in raw.split(b"\0") if part])
        if target is not None:
            return target
    return Target()


def _entries(proc: Path) -> list[Path]:
    try:
        return list(proc.iterdir())
    except OSError:
        return []


def _hosts(listen_address: str) -> tuple[str, int]:
    host, _, port = listen_address.rpartition(":")
    host = host.strip("[]")
    # Every interface includes loopback; a specific address must be probed as given.
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return (f"[{host}]" if ":" in host else host), int(port)


def _uses_tls(web_config_file: str | None) -> bool:
    if not web_config_file:
        return False
    try:
        with open(web_config_file, "rb") as file:
            document = yaml.safe_load(file)
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(document, dict) and bool(document.get("tls_server_config"))


def probe(target: Target | int, timeout: float = 3.0) -> bool:
    """True when /healthz answers 200 at the target (a port means on loopback), over HTTP or TLS."""
    if isinstance(target, int):
        target = Target(f"127.0.0.1:{target}")
    try:
        host, port = _hosts(target.listen_address)
    except ValueError:
        return False
    schemes = ("https", "http") if _uses_tls(target.web_config_file) else ("http", "https")
    # Only the exporter itself is probed, so an unverified TLS context is no risk here.
    context = ssl._create_unverified_context()
    for scheme in schemes:
        url = f"{scheme}://{host}:{port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
                if response.status == 200:
                    return True
        except (OSError, ValueError):
            continue
    return False


def target_from(argv: Sequence[str], proc: Path = Path("/proc")) -> Target:
    """What to probe: the arguments given (a bare port, or the exporter's flags), else the exporter's."""
    if len(argv) == 1 and argv[0].isascii() and argv[0].isdigit():
        return Target(f"127.0.0.1:{argv[0]}")
    if argv:
        return flags_of(["btcturk-exporter", *argv]) or Target()
    return find_exporter(proc)


def main(argv: Sequence[str] | None = None) -> int:
    """Probe once; 0 when healthy."""
    target = target_from(sys.argv[1:] if argv is None else argv)
    return 0 if probe(target) else 1


if __name__ == "__main__":
    sys.exit(main())
