"""Command line of the standalone simulator: ``python -m exporter.simulator``.

Every mistake is one line on stderr and an exit status (2 for bad arguments, 1 when the simulator
cannot start), never a traceback; private keys given by the user are never printed.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import NoReturn

from exporter.api.signing import decode_private_key
from exporter.simulator.accounts import generate_keypair
from exporter.simulator.core import Simulator
from exporter.simulator.market import MARKETS

PROG = "python -m exporter.simulator"
DESCRIPTION = (
    "A stand-in for the BTCTurk REST API, for trying the exporter without real keys. Point a config "
    "file's api_url at the printed URL; give your own key pairs with --key or --keys-file to use that "
    "config file unchanged."
)
MAX_ACCOUNTS = 1000
MAX_HISTORY_DAYS = 365
_MAX_KEYS_FILE = 1 << 20


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse prints the whole usage first; one line naming the problem is easier to read.
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text!r}")
    return value


def _accounts(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= value <= MAX_ACCOUNTS:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_ACCOUNTS}, got {value}")
    return value


def _history_days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of days, got {text!r}") from None
    if not 0 <= value <= MAX_HISTORY_DAYS:
        raise argparse.ArgumentTypeError(f"must be between 0 and {MAX_HISTORY_DAYS}, got {value}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be between 0 and 65535, got {value}")
    return value


def parse_key(text: str, where: str) -> tuple[str, str]:
    """PUBLIC:PRIVATE (or PUBLIC PRIVATE) -> (public, private); the error never holds the private key."""
    public, sep, private = text.strip().partition(":")
    if not sep:
        public, _, private = text.strip().partition(" ")
    public, private = public.strip(), private.strip()
    if not public or not private:
        raise ValueError(f"{where}: expected PUBLIC:PRIVATE")
    if not public.isascii() or not public.isprintable() or " " in public:
        raise ValueError(f"{where}: the public key must be printable ASCII without spaces")
    try:
        decode_private_key(private)
    except ValueError as exc:
        raise ValueError(f"{where}: the private key is {exc}") from None
    return public, private


def read_keys_file(path: Path) -> list[tuple[str, str]]:
    """Key pairs, one PUBLIC:PRIVATE a line; blank lines and lines starting with # are skipped."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(_MAX_KEYS_FILE + 1)
    except OSError as exc:
        raise ValueError(f"--keys-file {path}: {exc.strerror or exc}") from None
    if len(raw) > _MAX_KEYS_FILE:
        raise ValueError(f"--keys-file {path}: larger than {_MAX_KEYS_FILE} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"--keys-file {path}: not UTF-8 text") from None
    keys = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            keys.append(parse_key(line, f"--keys-file {path} line {number}"))
    if not keys:
        raise ValueError(f"--keys-file {path}: no key pairs in it")
    return keys


def build_parser() -> argparse.ArgumentParser:
    """The simulator's arguments."""
    parser = _Parser(prog=PROG, description=DESCRIPTION)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=_port, default=8081, help="0 picks a free port (default 8081)")
    parser.add_argument(
        "--accounts", type=_accounts, help="demo accounts with throwaway keys (default 1, or 0 with --key)"
    )
    parser.add_argument(
        "--key",
        action="append",
        default=[],
        metavar="PUBLIC:PRIVATE",
        help="serve this key pair (repeatable)",
    )
    parser.add_argument(
        "--keys-file", type=Path, help="serve the key pairs in this file, one PUBLIC:PRIVATE a line"
    )
    parser.add_argument(
        "--history-days",
        type=_history_days,
        default=90,
        help="days of seeded trades, deposits and withdrawals behind each account's balances (default 90)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--market", choices=MARKETS, default="default", help="live: about 380 pairs")
    parser.add_argument(
        "--btc-quoted", action="store_true", help="also list BTC-quoted pairs (ETHBTC, ZRXBTC)"
    )
    parser.add_argument(
        "--drift-interval", type=_positive, default=5.0, help="seconds between market and account moves"
    )
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a standalone simulator until SIGINT/SIGTERM; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        keys = [parse_key(text, f"--key #{n}") for n, text in enumerate(args.key, start=1)]
        if args.keys_file is not None:
            keys += read_keys_file(args.keys_file)
    except ValueError as exc:
        parser.error(str(exc))
    generated = args.accounts if args.accounts is not None else (0 if keys else 1)

    sim = Simulator(args.host, args.port, seed=args.seed, market=args.market, btc_quoted=args.btc_quoted)
    sim.log_requests = args.verbose
    try:
        sim.start()
    except (OSError, OverflowError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        print(f"{PROG}: error: cannot listen on {args.host}:{args.port}: {reason}", file=sys.stderr)
        return 1
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {signum: signal.signal(signum, _on_signal) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        print(f"BTCTurk simulator listening on {sim.url}", flush=True)
        for index in range(generated):
            public_key, private_key = generate_keypair(args.seed * 1000 + index)
            sim.add_account(public_key, private_key, history_days=args.history_days, seed=args.seed + index)
            print(f"account {index + 1}: public_key={public_key} private_key={private_key}", flush=True)
        if generated:
            print("(throwaway test keys for this simulator only)", flush=True)
        for index, (public_key, private_key) in enumerate(keys, start=generated + 1):
            sim.add_account(
                public_key, private_key, history_days=args.history_days, seed=args.seed + index - 1
            )
            print(f"account {index}: public_key={public_key} (your key; demo balances)", flush=True)
        # Both: with graph_api_url left at BTCTurk's, past prices (cost basis, profit) never come.
        print(f"point the exporter's api_url and graph_api_url both at {sim.url}", flush=True)
        while not stop.wait(args.drift_interval):
            sim.drift()
    finally:
        sim.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    print("simulator stopped", flush=True)
    return 0
