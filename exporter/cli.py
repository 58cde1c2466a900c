"""Command line: parse flags, load configuration, wire the pieces together, and stop cleanly."""

from __future__ import annotations

import argparse
import logging
import os
import platform
import signal
import sys
import threading
from collections.abc import Sequence

from exporter import __version__
from exporter.client import REASONS, Client
from exporter.config import ConfigError, load_config, parse_duration, summarize
from exporter.demo import start_demo
from exporter.logs import FORMATS, LEVELS, setup_logging
from exporter.metrics import TICKER_FAILURE, Renderer, Settings
from exporter.poller import Poller
from exporter.snapshot import SHARED, Store
from exporter.web import ListenError, start_server
from exporter.webconfig import ServerOptions

log = logging.getLogger("exporter")

DEFAULT_PORT = 9788
PROG = "btcturk-exporter"


def build_parser() -> argparse.ArgumentParser:
    """The exporter's flags, named like the Prometheus project's own exporters."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Prometheus exporter for BTCTurk account balances and portfolio value.",
        epilog="Without --config.file and without BTCTURK_PUBLIC_KEY/BTCTURK_PRIVATE_KEY, runs --demo.",
    )
    parser.add_argument("--config.file", dest="config_file", metavar="PATH", help="YAML configuration file.")
    parser.add_argument(
        "--web.listen-address",
        dest="listen_address",
        default=f":{DEFAULT_PORT}",
        metavar="HOST:PORT",
        help=f"Address to serve /metrics on (default :{DEFAULT_PORT}, every interface).",
    )
    parser.add_argument(
        "--web.config.file",
        dest="web_config_file",
        metavar="PATH",
        help="Exporter-toolkit web configuration (TLS and basic auth) for the HTTP server.",
    )
    parser.add_argument("--log.level", dest="log_level", choices=list(LEVELS), default="info")
    parser.add_argument("--log.format", dest="log_format", choices=FORMATS, default="logfmt")
    parser.add_argument(
        "--check-config",
        action="store_true",
        help="Validate the configuration, print a summary with secrets masked, and exit (0 valid, 1 not).",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="Run against a bundled simulator of the BTCTurk API with made-up accounts; needs no keys.",
    )
    parser.add_argument(
        "--demo.accounts",
        dest="demo_accounts",
        type=int,
        metavar="N",
        help="Demo accounts (default 3, or fewer when --demo.poll-interval is too short for 3).",
    )
    parser.add_argument("--demo.poll-interval", dest="demo_poll_interval", default="5s", metavar="DURATION")
    parser.add_argument(
        "--version", action="version", version=f"{PROG} {__version__} (Python {platform.python_version()})"
    )
    return parser


def _fail(message: str) -> int:
    for line in message.splitlines():
        print(f"{PROG}: {line}", file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the exporter until SIGTERM or SIGINT; return the process exit code."""
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level, args.log_format)

    try:
        config = load_config(args.config_file, os.environ)
    except ConfigError as exc:
        return _fail(str(exc))
    for warning in config.warnings:
        log.warning(warning)

    web_options: ServerOptions = {}
    if args.web_config_file:
        from exporter.webconfig import WebConfigError, load_web_config

        try:
            web_options = load_web_config(args.web_config_file).server_options()
        except WebConfigError as exc:
            return _fail(str(exc))

    if args.check_config:
        if not config.accounts:
            return _fail(
                "no accounts configured: give --config.file or set BTCTURK_PUBLIC_KEY and BTCTURK_PRIVATE_KEY"
            )
        print(summarize(config))
        return 0

    demo = None
    if args.demo or not config.accounts:
        if not args.demo:
            log.info(
                "no accounts configured (no --config.file, no BTCTURK_PUBLIC_KEY): running the demo simulator"
            )
        try:
            interval = parse_duration(args.demo_poll_interval, "--demo.poll-interval")
            config, demo = start_demo(args.demo_accounts, interval)
        except ConfigError as exc:
            return _fail(str(exc))
        log.info("demo simulator serving the BTCTurk API", extra={"url": config.api_url})

    store = Store([a.name for a in config.accounts], REASONS, [(SHARED, TICKER_FAILURE)])
    renderer = Renderer(Settings.from_config(config), store.view)
    renderer.attach(store)
    try:
        server, _ = start_server(args.listen_address, renderer, store.view, **web_options)
    except ListenError as exc:
        if demo is not None:
            demo.stop()
        return _fail(str(exc))
    client = Client(config.api_url, config.timeout, pool_size=len(config.accounts) + 2)
    poller = Poller(config, client, store)

    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    poller.start()
    port = server.server_address[1]
    log.info(
        "btcturk-exporter started",
        extra={
            "version": __version__,
            "address": args.listen_address,
            "port": port,
            "accounts": len(config.accounts),
            "api_url": config.api_url,
            "tls": bool(web_options.get("ssl_context")),
        },
    )
    stop.wait()
    server.shutdown()
    server.server_close()
    poller.stop(timeout=0.5)
    if demo is not None:
        demo.stop()
    log.info("stopped")
    return 0
