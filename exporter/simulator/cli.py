"""Command line of the standalone simulator: ``python -m exporter.simulator``."""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Sequence
from types import FrameType

from exporter.simulator.accounts import demo_assets, generate_keypair
from exporter.simulator.core import Simulator

DESCRIPTION = "A stand-in for the BTCTurk REST API, for trying the exporter without real keys."


def main(argv: Sequence[str] | None = None) -> int:
    """Run a standalone simulator with demo accounts until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m exporter.simulator", description=DESCRIPTION)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081, help="0 picks a free port")
    parser.add_argument("--accounts", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--drift-interval", type=float, default=5.0, help="seconds between random walks")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)

    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)

    sim = Simulator(args.host, args.port, seed=args.seed)
    sim.log_requests = args.verbose
    sim.start()
    try:
        print(f"BTCTurk simulator listening on {sim.url}", flush=True)
        for index in range(args.accounts):
            public_key, private_key = generate_keypair(args.seed * 1000 + index)
            sim.add_account(public_key, private_key, demo_assets(args.seed + index))
            print(f"account {index + 1}: public_key={public_key} private_key={private_key}", flush=True)
        print("(throwaway test keys for this simulator only)", flush=True)
        while not stop.wait(args.drift_interval):
            sim.drift()
    finally:
        sim.stop()
    print("simulator stopped", flush=True)
    return 0
