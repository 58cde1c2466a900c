#!/usr/bin/env python3
"""The exporter under hostile clients: threads, memory and scrape latency. A report, not a test.

    python benchmarks/hostile.py [--source DIR]

Starts `python -m exporter --demo` (from DIR, to measure another checkout's exporter package) with
a bcrypt-protected web config and prints, for each scenario, the exporter's thread count and
resident size and how long a normal scrape took on a fresh connection:

* 300 idle connections held open;
* 300 connections trickling a request header at a byte a second;
* a burst of 3000 connections, each sending half a request line and holding;
* 64 clients sending new wrong passwords as fast as they are answered (from 127.0.0.2), and a
  scraper with the right password, first unverified and then verified.

Every wait is bounded; scrapes time out after 60 s and report that instead.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import bcrypt
import requests

PASSWORD = "scrape-me"
SCRAPE_TIMEOUT = 60.0


def status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return -1


def start(source: Path, directory: Path) -> tuple[subprocess.Popen[bytes], int]:
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=10)).decode()
    web = directory / "web.yml"
    # newcomer's password is first used during the password flood: a correct credential not yet verified.
    web.write_text(f"basic_auth_users:\n  prometheus: '{hashed}'\n  newcomer: '{hashed}'\n")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(source)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "exporter", "--demo", "--demo.poll-interval", "1s",
         "--web.listen-address", f"127.0.0.1:{port}", "--web.config.file", str(web)],
        cwd=source, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                return proc, port
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("the exporter did not become ready")


def scrape(port: int, user: str = "prometheus") -> str:
    started = time.monotonic()
    try:
        response = requests.get(
            f"http://127.0.0.1:{port}/metrics", auth=(user, PASSWORD), timeout=SCRAPE_TIMEOUT
        )
    except requests.RequestException as exc:
        return f"failed after {time.monotonic() - started:.2f}s ({type(exc).__name__})"
    return f"{response.status_code} in {(time.monotonic() - started) * 1000:.0f} ms"


@contextlib.contextmanager
def held(port: int, count: int, first: bytes = b"") -> Iterator[list[socket.socket]]:
    socks = []
    try:
        for _ in range(count):
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                if first:
                    sock.sendall(first)
            except OSError:
                continue
            socks.append(sock)
        yield socks
    finally:
        for sock in socks:
            sock.close()


@contextlib.contextmanager
def background(target: Callable[[threading.Event], None], threads: int) -> Iterator[None]:
    stop = threading.Event()
    workers = [threading.Thread(target=target, args=(stop,), daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    try:
        yield
    finally:
        stop.set()
        for worker in workers:
            worker.join(15)


def report(name: str, proc: subprocess.Popen[bytes], port: int, scrapes: int = 1) -> None:
    results = ", ".join(scrape(port) for _ in range(scrapes))
    threads, rss = status(proc.pid, "Threads"), status(proc.pid, "VmRSS") / 1024
    print(f"  {name:<44} threads {threads:4}  RSS {rss:6.1f} MiB  scrape {results}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path(__file__).resolve().parent.parent)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        proc, port = start(args.source.resolve(), Path(directory))
        try:
            print(f"exporter from {args.source} on port {port}")
            scrape(port)  # the first one verifies the password
            report("at rest", proc, port)
            with held(port, 300):
                report("300 idle connections", proc, port)
            report("after them", proc, port)

            with held(port, 300, b"GET /metrics HTTP/1.1\r\n") as socks:

                def trickle(stop: threading.Event) -> None:
                    while not stop.wait(1.0):
                        for sock in socks:
                            with contextlib.suppress(OSError):
                                sock.send(b"X")

                with background(trickle, 1):
                    report("300 byte-a-second connections", proc, port, scrapes=3)
            report("after them", proc, port)

            with held(port, 3000, b"GET /metrics HTTP/1.1\r\n"):
                report("burst of 3000 connections, held", proc, port)
            report("after them", proc, port)

            counter = iter(range(10**9))

            def guess(stop: threading.Event) -> None:
                while not stop.is_set():
                    token = base64.b64encode(f"prometheus:guess-{next(counter)}".encode())
                    with (
                        contextlib.suppress(OSError),
                        socket.create_connection(
                            ("127.0.0.1", port), timeout=30, source_address=("127.0.0.2", 0)
                        ) as sock,
                    ):
                        sock.sendall(
                            b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                            b"Authorization: Basic " + token + b"\r\n\r\n"
                        )
                        while sock.recv(65536):
                            pass

            with background(guess, 64):
                time.sleep(2)  # let the flood build up
                report("64 clients guessing passwords, verified", proc, port, scrapes=3)
                print(f"  {'  a new, correct credential during the flood':<44} {scrape(port, 'newcomer')}")
            report("after the flood", proc, port)
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
