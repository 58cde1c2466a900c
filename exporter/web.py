"""HTTP serving: /metrics, a landing page, and the /healthz and /ready probes."""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import ssl
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

from exporter import __version__
from exporter.metrics import CONTENT_TYPE, Renderer
from exporter.snapshot import View

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

# Given the Authorization header (or None), says whether the request may proceed.
Authenticator = Callable[[str | None], bool]


class ListenError(Exception):
    """The listen address is malformed or cannot be bound."""


def parse_listen_address(value: str) -> tuple[str, int]:
    """Split `HOST:PORT`, `:PORT` or `[v6]:PORT`; an empty host means every interface."""
    host, sep, port_text = value.rpartition(":")
    # isascii: str.isdigit() is also true for "²" and other digits that int() refuses.
    if not sep or not (port_text.isascii() and port_text.isdigit()) or not 0 <= int(port_text) <= 65535:
        raise ListenError(f"--web.listen-address: expected HOST:PORT, got {value!r}")
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
    """Routes the exporter's few paths; everything it needs hangs off the server."""

    server: ExporterServer
    protocol_version = "HTTP/1.1"
    # Headers, cached body and live metrics go out as separate writes: with Nagle's algorithm the
    # last small one would wait for the client's delayed ACK (40 ms) before leaving.
    disable_nagle_algorithm = True
    server_version = f"btcturk-exporter/{__version__}"
    routes: ClassVar[dict[str, str]] = {
        "/": "landing",
        "/metrics": "metrics",
        "/healthz": "healthz",
        "/ready": "ready",
    }

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), format % args)

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
        for name, value in {**self.server.headers, **(headers or {})}.items():
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
        auth = self.server.authenticate
        if auth is not None and path not in OPEN_PATHS and not auth(self.headers.get("Authorization")):
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
        accepts = self.headers.get("Accept-Encoding", "")
        gzipped = any(part.split(";")[0].strip() == "gzip" for part in accepts.split(","))
        body = self.server.renderer.scrape_parts(gzipped)
        headers = {"Vary": "Accept-Encoding"}
        if gzipped:
            headers["Content-Encoding"] = "gzip"
        self._send(200, body, CONTENT_TYPE, headers)


class ExporterServer(ThreadingHTTPServer):
    """A threading HTTP(S) server holding what the handler serves."""

    daemon_threads = True
    allow_reuse_address = True
    # Many scrapers may connect at once; the default backlog of 5 drops connections.
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        renderer: Renderer,
        view: Callable[[], View],
        *,
        ssl_context: ssl.SSLContext | None = None,
        authenticate: Authenticator | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        host = address[0]
        # Extra response headers from the web config (e.g. Strict-Transport-Security).
        self.headers = dict(headers or {})
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.renderer = renderer
        self.view = view
        self.authenticate = authenticate
        self.ssl_context = ssl_context
        if host == "":
            # An empty host means every interface; prefer a dual-stack socket where there is one.
            self.address_family = socket.AF_INET6 if socket.has_dualstack_ipv6() else socket.AF_INET
            address = ("::" if self.address_family == socket.AF_INET6 else "0.0.0.0", address[1])
        super().__init__(address, Handler)

    def server_bind(self) -> None:
        """Bind, accepting IPv4 too on a dual-stack socket."""
        if self.address_family == socket.AF_INET6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()

    def get_request(self) -> tuple[socket.socket, object]:
        """Accept a connection; wrap it in TLS lazily so a bad handshake only fails its own thread."""
        sock, addr = super().get_request()
        if self.ssl_context is not None:
            sock = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def finish_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        """Finish the TLS handshake in the connection's thread, then serve it."""
        if isinstance(request, ssl.SSLSocket):
            request.settimeout(10)
            try:
                request.do_handshake()
            except (OSError, ssl.SSLError) as exc:
                log.debug("TLS handshake failed: %s", exc)
                return
            request.settimeout(None)
        super().finish_request(request, client_address)

    def handle_error(self, request: object, client_address: object) -> None:
        """Log a broken connection in one line instead of a traceback on stderr."""
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


def start_server(
    listen_address: str,
    renderer: Renderer,
    view: Callable[[], View],
    *,
    ssl_context: ssl.SSLContext | None = None,
    authenticate: Authenticator | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[ExporterServer, threading.Thread]:
    """Bind the listen address (raising ListenError with a clear message) and serve on a thread."""
    address = parse_listen_address(listen_address)
    try:
        server = ExporterServer(
            address, renderer, view, ssl_context=ssl_context, authenticate=authenticate, headers=headers
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
