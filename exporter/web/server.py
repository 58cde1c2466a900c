"""HTTP serving: /metrics, a landing page, and the /healthz and /ready probes."""

from __future__ import annotations

import io
import ipaddress
import logging
import re
import socket
import ssl
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler
from typing import ClassVar, Protocol, cast

from exporter import __version__
from exporter.describe import shown
from exporter.metrics.exposition import CONTENT_TYPE
from exporter.metrics.renderer import Renderer
from exporter.poll.snapshot import View
from exporter.web.config import ServerOptions
from exporter.web.connections import ConnectionServer
from exporter.web.registry import Connection, Limits

log = logging.getLogger(__name__)

# Digits and dots only: meant as an IPv4 address, never as a name to look up.
_NUMERIC_HOST = re.compile(r"[0-9.]+")
# Probes must keep working when /metrics is behind basic auth.
OPEN_PATHS = frozenset({"/healthz", "/ready"})

LANDING_PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>BTCTurk Exporter</title></head>
<body><h1>BTCTurk Exporter</h1><p>Version {__version__}</p>
<ul><li><a href="metrics">Metrics</a></li><li><a href="healthz">Health</a></li>
<li><a href="ready">Readiness</a></li></ul></body></html>
""".encode()
DEMO_BANNER = "DEMO DATA: made-up accounts from the built-in simulator"
# In --demo nobody may take the numbers for an account's: the banner comes before everything else.
DEMO_LANDING_PAGE = LANDING_PAGE.replace(
    b"<body>",
    b'<body><p role="alert" style="background:#c00;color:#fff;font-weight:bold;padding:.5em">'
    + DEMO_BANNER.encode()
    + b"</p>",
)

# Given the Authorization header (or None) and the client's address, says whether the request may proceed.
Authenticator = Callable[[str | None, str], bool]
ALLOWED_METHODS = ("GET", "HEAD")
# C0 and C1 controls, DEL, and the backslash that escapes them: a request cannot forge log lines.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\\]")
MAX_REQUEST_LINE = 65536


def escape_control(text: str) -> str:
    """Text with control characters written as \\xNN, safe to put in a log line."""
    return _UNPRINTABLE.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def gzip_accepted(header: str) -> bool:
    """Whether an Accept-Encoding header gives gzip a q-value above 0 (RFC 9110, section 12.5.3)."""
    explicit: float | None = None
    wildcard: float | None = None
    for item in header.split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0  # a malformed weight: do not guess that the client wants gzip
                if not 0.0 <= q <= 1.0:
                    q = 0.0
        coding = coding.lower()
        if coding in ("gzip", "x-gzip"):
            explicit = q if explicit is None else max(explicit, q)
        elif coding == "*":
            wildcard = q
    chosen = explicit if explicit is not None else wildcard
    return chosen is not None and chosen > 0


class WebConfigSource(Protocol):
    """A web configuration that may change while the server runs (exporter.webreload.WebConfigFile)."""

    def options(self) -> ServerOptions:
        """The settings to use for a new connection."""

    def reload(self) -> bool:
        """Re-read the configuration now; False (and the old one kept) when the new one is invalid."""


class ListenError(Exception):
    """The listen address is malformed or cannot be bound."""


def parse_listen_address(value: str) -> tuple[str, int]:
    """Split `HOST:PORT`, `:PORT` or `[v6]:PORT`; an empty host means every interface."""
    host, sep, port_text = value.rpartition(":")
    # isascii: str.isdigit() is also true for "²" and other digits that int() refuses.
    if not sep or not (port_text.isascii() and port_text.isdigit()):
        raise ListenError(f"--web.listen-address: expected HOST:PORT, got {value!r}")
    if len(port_text) > 5 or int(port_text) > 65535:
        raise ListenError(f"--web.listen-address: the port must be 0 to 65535, got {shown(value)}")
    # Literals that do not parse as addresses are refused here: bind() would look them up in DNS.
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            if host:
                ipaddress.IPv6Address(host)
        except ValueError:
            raise ListenError(f"--web.listen-address: not a valid IPv6 address: {host!r}") from None
    elif ":" in host:
        raise ListenError(f"--web.listen-address: put IPv6 addresses in brackets, got {value!r}")
    elif _NUMERIC_HOST.fullmatch(host):
        try:
            socket.inet_aton(host)  # the C library's own rules, so "127.1" stays valid
        except OSError:
            raise ListenError(f"--web.listen-address: not a valid IP address: {host!r}") from None
    return host, int(port_text)


class Handler(BaseHTTPRequestHandler):
    """Serves one request whose header bytes the selector thread has already read."""

    server: ExporterServer  # type: ignore[assignment]
    protocol_version = "HTTP/1.1"
    server_version = f"btcturk-exporter/{__version__}"
    routes: ClassVar[dict[str, str]] = {
        "/": "landing",
        "/metrics": "metrics",
        "/healthz": "healthz",
        "/ready": "ready",
    }

    def __init__(  # not BaseRequestHandler's: that one reads the request from the socket itself
        self, conn: Connection, request: bytes, server: ExporterServer, options: ServerOptions
    ) -> None:
        self.server = server
        self.request = self.connection = conn.sock
        self.client_address = cast(tuple[str, int], conn.address)
        self.rfile = io.BytesIO(request)
        self.wfile = cast(io.BufferedIOBase, conn)
        self.options = options
        self.close_connection = True
        self._serve_one()

    def _serve_one(self) -> None:
        self.raw_requestline = self.rfile.readline(MAX_REQUEST_LINE + 1)
        if len(self.raw_requestline) > MAX_REQUEST_LINE:
            self.requestline = self.request_version = self.command = ""
            self.send_error(414)
            return
        if not self.parse_request():
            return  # parse_request has answered 400 (or the like) and closes the connection
        if self.headers.get("Transfer-Encoding") or self.headers.get("Content-Length", "0").strip() != "0":
            # Bodies are never read, so their bytes must not be taken for the next request.
            self.close_connection = True
        if self.command not in ALLOWED_METHODS:
            self.close_connection = True
            self._send(
                405,
                b"method not allowed\n",
                "text/plain; charset=utf-8",
                {"Allow": ", ".join(ALLOWED_METHODS)},
            )
            return
        self.do_GET()

    def version_string(self) -> str:
        """The Server header: the exporter and its version, not the Python it runs on."""
        return self.server_version

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """One debug line per request, with whatever the client sent escaped."""
        agent = self.headers.get("User-Agent", "-") if hasattr(self, "headers") else "-"
        log.debug(
            "%s %s %s",
            self.address_string(),
            escape_control(self.requestline),
            code,
            extra={"user_agent": escape_control(str(agent))},
        )

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), escape_control(format % args))

    def _send(
        self,
        status: int,
        body: bytes | tuple[bytes, ...],
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        # A body may come in parts, written in order; no need to join megabytes first.
        parts = (body,) if isinstance(body, bytes) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(sum(len(part) for part in parts)))
        for name, value in {**self.options.get("headers", {}), **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            for part in parts:
                self.wfile.write(part)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        route = self.routes.get(path)
        if route is None:
            self._send(404, b"not found\n", "text/plain; charset=utf-8")
            return
        auth = self.options.get("authenticate")
        if (
            auth is not None
            and path not in OPEN_PATHS
            and not auth(self.headers.get("Authorization"), str(self.client_address[0]))
        ):
            self._send(
                401,
                b"unauthorized\n",
                "text/plain; charset=utf-8",
                {"WWW-Authenticate": 'Basic realm="btcturk-exporter", charset="UTF-8"'},
            )
            return
        getattr(self, "_" + route)()

    def _landing(self) -> None:
        page = DEMO_LANDING_PAGE if self.server.renderer.settings.demo else LANDING_PAGE
        self._send(200, page, "text/html; charset=utf-8")

    def _healthz(self) -> None:
        self._send(200, b"ok\n", "text/plain; charset=utf-8")

    def _ready(self) -> None:
        view = self.server.view()
        if view.ready:
            self._send(200, b"ready\n", "text/plain; charset=utf-8")
            return
        waiting = ", ".join(a for a in view.accounts if view.health[a].last_success is None)
        self._send(
            503, f"not ready: no successful poll yet for {waiting}\n".encode(), "text/plain; charset=utf-8"
        )

    def _metrics(self) -> None:
        gzipped = gzip_accepted(self.headers.get("Accept-Encoding", ""))
        body = self.server.renderer.scrape_parts(gzipped)
        headers = {"Vary": "Accept-Encoding"}
        if gzipped:
            headers["Content-Encoding"] = "gzip"
        self._send(200, body, CONTENT_TYPE, headers)


class ExporterServer(ConnectionServer):
    """The exporter's HTTP(S) server: bounded connections, and what the handler serves."""

    # Many scrapers may connect at once, and a burst must not overflow into SYN retries (1 s each).
    request_queue_size = 1024

    def __init__(
        self,
        address: tuple[str, int],
        renderer: Renderer,
        view: Callable[[], View],
        *,
        options: Callable[[], ServerOptions],
        web_config: WebConfigSource | None = None,
        limits: Limits | None = None,
    ) -> None:
        host, port = address
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        dualstack = False
        if host == "":
            # An empty host means every interface; prefer a dual-stack socket where there is one.
            dualstack = socket.has_dualstack_ipv6()
            family = socket.AF_INET6 if dualstack else socket.AF_INET
            host = "::" if dualstack else "0.0.0.0"
        elif host == "::":
            dualstack = socket.has_dualstack_ipv6()
        listener = socket.create_server(
            (host, port), family=family, backlog=self.request_queue_size, dualstack_ipv6=dualstack
        )
        super().__init__(listener, self._serve_request, self._accept_connection, limits or Limits())
        self.server_address = listener.getsockname()
        self.renderer = renderer
        self.view = view
        self._options = options
        self._web_config = web_config

    def reload(self) -> bool:
        """Re-read the web config file now (for SIGHUP); True when there is none or it loaded."""
        return self._web_config.reload() if self._web_config is not None else True

    def _accept_connection(self, sock: socket.socket) -> tuple[socket.socket, object]:
        # The certificate in force at accept serves the whole connection; auth and headers are
        # looked up per request, so a new password applies to kept-alive scrapers at once.
        options = self._options()
        context = options.get("ssl_context")
        if context is not None:
            # The handshake is finished by the selector thread, without blocking and within a deadline.
            sock = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, options

    def _serve_request(self, conn: Connection, request: bytes) -> bool:
        return not Handler(conn, request, self, self._options()).close_connection


def start_server(
    listen_address: str,
    renderer: Renderer,
    view: Callable[[], View],
    *,
    ssl_context: ssl.SSLContext | None = None,
    authenticate: Authenticator | None = None,
    headers: Mapping[str, str] | None = None,
    web_config: WebConfigSource | None = None,
    limits: Limits | None = None,
) -> tuple[ExporterServer, threading.Thread]:
    """Bind the listen address (raising ListenError with a clear message) and serve on a thread.

    TLS, auth and headers come from `web_config` when given (and follow its reloads), else from the
    keyword arguments.
    """
    address = parse_listen_address(listen_address)
    fixed: ServerOptions = {}
    if ssl_context is not None:
        fixed["ssl_context"] = ssl_context
    if authenticate is not None:
        fixed["authenticate"] = authenticate
    if headers:
        fixed["headers"] = dict(headers)
    options = web_config.options if web_config is not None else lambda: fixed
    try:
        server = ExporterServer(
            address, renderer, view, options=options, web_config=web_config, limits=limits
        )
    except OSError as exc:
        raise ListenError(
            f"--web.listen-address: cannot listen on {listen_address}: {exc.strerror or exc}"
        ) from None
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="http", daemon=True
    )
    thread.start()
    return server, thread
