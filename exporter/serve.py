"""The exporter itself: parse its flags, load configuration, wire the pieces together, and stop cleanly.

cli.py hands it the command line when no subcommand is given.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import signal
import sys
import tempfile
from collections.abc import Callable, Sequence

from exporter import __version__
from exporter.api.permissions import what_it_reads
from exporter.config.accounts import check_demo
from exporter.config.loader import Config, ConfigError, load_config, parse_duration, summarize
from exporter.demo import Demo, start_demo
from exporter.describe import FlagParser
from exporter.ledger.schema import LedgerError
from exporter.ledger.store import Ledger
from exporter.logs import FORMATS, LEVELS, setup_logging
from exporter.service import ReloadStatus, Service, WebLoader, build_pipeline, live_registry
from exporter.web.config import WebConfigError, load_web_config
from exporter.web.reload import WebConfigFile
from exporter.web.server import DEMO_BANNER, ExporterServer, ListenError, parse_listen_address, start_server

log = logging.getLogger("exporter")

DEFAULT_PORT = 9788
PROG = "btcturk-exporter"
HANDLED_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}


def build_parser() -> argparse.ArgumentParser:
    """The exporter's flags, named like the Prometheus project's own exporters."""
    parser = FlagParser(
        prog=PROG,
        description="Prometheus exporter for BTCTurk account balances and portfolio value.",
        epilog="Accounts come from --config.file and/or BTCTURK_PUBLIC_KEY/BTCTURK_PRIVATE_KEY (or their "
        "_FILE forms); without any, it refuses to start: use --demo to try it on made-up data. "
        "SIGHUP re-reads the configuration files. Subcommands: `ledger export` prints the ledger, "
        "`ledger report` sums it per month, quarter or year, `ledger holdings` values it at a date, "
        "`backfill` writes past samples for promtool (each has --help).",
        # --conf would silently mean --config.file, and a future --config.x would change its meaning.
        allow_abbrev=False,
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
        "--storage.path",
        dest="storage_path",
        metavar="PATH",
        help="Directory of the activity ledger (ledger.db), created if missing (default data/; "
        "--demo always uses a temporary one). Deleting it is safe: it is rebuilt from the API.",
    )
    parser.add_argument(
        "--check-config",
        action="store_true",
        help="Validate the configuration, print a summary with secrets masked, and exit (0 valid, 1 not).",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="Run against a bundled simulator of the BTCTurk API with made-up accounts; needs no keys, "
        "and takes no --config.file or BTCTURK_* variables.",
    )
    parser.add_argument(
        "--demo.accounts",
        dest="demo_accounts",
        type=int,
        metavar="N",
        help="Demo accounts (default 3, or fewer when --demo.poll-interval is too short for 3).",
    )
    parser.add_argument(
        "--demo.poll-interval",
        dest="demo_poll_interval",
        metavar="DURATION",
        help="How often the demo polls (default 5s, at most 1h).",
    )
    parser.add_argument(
        "--version", action="version", version=f"{PROG} {__version__} (Python {platform.python_version()})"
    )
    return parser


def _fail(message: str) -> int:
    for line in message.splitlines():
        print(f"{PROG}: {line}", file=sys.stderr)
    return 1


def _start_demo(args: argparse.Namespace) -> tuple[Config, Demo]:
    """The demo's configuration and simulator; ConfigError for bad --demo.* flags or real settings."""
    problems = check_demo(args.config_file, os.environ)
    if args.check_config:
        problems.append("--check-config: checks a configuration, and --demo has none to check")
    if problems:
        raise ConfigError(problems)
    interval = parse_duration(args.demo_poll_interval or "5s", "--demo.poll-interval", maximum=3600)
    return start_demo(args.demo_accounts, interval)


DEFAULT_STORAGE_PATH = "data/"


def open_ledger(path: str) -> Ledger:
    """The ledger in `path`, the directory created if missing; LedgerError naming the path otherwise."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise LedgerError(f"--storage.path {path}: cannot create the directory: {exc.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise LedgerError(f"--storage.path {path}: the directory is not writable by this user")
    return Ledger.open(path)  # its LedgerError names the file


def _web_loader(path: str, server: ExporterServer) -> WebLoader:
    """On SIGHUP, have the server re-read its web configuration; a broken file fails the reload."""

    def load() -> Callable[[], None]:
        # Parsed here first so that a broken file fails the reload with what is wrong in it; the
        # server then re-reads and applies it itself.
        load_web_config(path)
        if not server.reload():
            raise WebConfigError([f"{path}: not reloaded, still serving with the previous one"])
        return lambda: None

    return load


def serve(argv: Sequence[str]) -> int:
    """Run the exporter until SIGTERM or SIGINT, reloading on SIGHUP; return the process exit code."""
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level, args.log_format)
    # Blocked before any thread starts, so every thread inherits the mask and the signals wait for
    # sigwait() on the main thread. A Python handler would only run once the main thread woke up,
    # which a signal delivered to another thread does not do.
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED_SIGNALS)
    try:
        return _run(args)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _run(args: argparse.Namespace) -> int:
    if not args.demo and (args.demo_accounts is not None or args.demo_poll_interval is not None):
        flag = "--demo.accounts" if args.demo_accounts is not None else "--demo.poll-interval"
        return _fail(f"{flag}: only with --demo")

    try:
        parse_listen_address(args.listen_address)  # before a demo simulator starts or a ledger opens
    except ListenError as exc:
        return _fail(str(exc))
    demo: Demo | None = None
    try:
        if args.demo:
            config, demo = _start_demo(args)
        else:
            config = load_config(args.config_file, os.environ)
    except ConfigError as exc:
        return _fail(str(exc))
    if not args.check_config:  # --check-config's summary lists them: once, on stdout with the rest
        for warning in config.warnings:
            log.warning(warning)

    web_config = None
    if args.web_config_file:
        try:
            web_config = WebConfigFile(args.web_config_file)
        except WebConfigError as exc:
            if demo is not None:
                demo.stop()
            return _fail(str(exc))

    if args.check_config:
        print(summarize(config))
        return 0

    if demo is not None:
        log.warning(f"{DEMO_BANNER}: every balance and price served is invented, none is a real account's")
        log.info("demo simulator serving the BTCTurk API", extra={"url": config.api_url})

    ledger: Ledger | None = None
    scratch: tempfile.TemporaryDirectory[str] | None = None
    # With activity off the ledger is never opened: no file, and an unwritable path does not matter.
    if config.activity.enabled:
        path = args.storage_path
        if demo is not None:
            # Made-up records must never reach a real ledger (the image passes --storage.path always,
            # and a volume may be shared with a real instance): the demo's ledger lives and dies here.
            if path is not None:
                log.warning("--demo keeps its ledger in a temporary directory, not in --storage.path")
            scratch = tempfile.TemporaryDirectory(prefix="btcturk-exporter-demo-")
            path = scratch.name
        try:
            ledger = open_ledger(path or DEFAULT_STORAGE_PATH)
        except LedgerError as exc:
            # Balances never depend on the ledger: they are served, and the activity is off, said once.
            log.error("%s; balances are served, account activity is off until a restart can use it", exc)

    def cleanup() -> None:
        if demo is not None:
            demo.stop()
        if ledger is not None:
            ledger.close()
        if scratch is not None:
            scratch.cleanup()

    status = ReloadStatus()
    live = live_registry(status)
    pipeline = build_pipeline(config, live, demo=demo is not None, ledger=ledger)
    try:
        server, _ = start_server(
            args.listen_address, pipeline.renderer, pipeline.store.view, web_config=web_config
        )
    except ListenError as exc:
        cleanup()
        return _fail(str(exc))
    service = Service(
        server,
        pipeline,
        status,
        live,
        load=None if demo is not None else lambda: load_config(args.config_file, os.environ),
        load_web=_web_loader(args.web_config_file, server) if args.web_config_file else None,
        ledger=ledger,
    )

    service.start()
    port = server.server_address[1]
    log.info(
        "btcturk-exporter started",
        extra={
            "version": __version__,
            "address": args.listen_address,
            "port": port,
            "accounts": len(config.accounts),
            "api_url": config.api_url,
            "tls": web_config is not None and "ssl_context" in web_config.options(),
            "demo": demo is not None,
            "activity": ledger is not None,
            "ledger": str(ledger.path) if ledger is not None else "",
        },
    )
    for account in config.accounts:  # a key made without a permission a feature needs shows here first
        log.info(what_it_reads(ledger is not None), extra={"account": account.name})
    while (signum := signal.sigwait(HANDLED_SIGNALS)) == signal.SIGHUP:
        log.info("received SIGHUP, reloading the configuration")
        service.reload()
    log.info("received %s, stopping", signal.Signals(signum).name)
    service.stop()
    cleanup()
    log.info("stopped")
    return 0
