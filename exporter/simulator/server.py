"""HTTP plumbing: a threading server that tracks its connections, and a handler that hands requests on."""

from __future__ import annotations

import contextlib
import socket
import struct
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from exporter.simulator.responses import Response, failure, json_response

_MAX_BODY = 1 << 20


class Server(ThreadingHTTPServer):
    """Serves `serve(handler)` for every request; stop() can drop kept-alive connections."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512

    def __init__(
        self, address: tuple[str, int], serve: Callable[[Handler], None], verbose: Callable[[], bool]
    ) -> None:
        self.serve = serve
        self.verbose = verbose
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)

    def process_request(self, request: socket.socket, client_address: Any) -> None:  # type: ignore[override]
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Drop open connections: keep-alive ones would otherwise be served after stop(), hiding an outage."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients vanishing mid-request are routine in fault tests; only real bugs deserve a traceback.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    """Reads one request's body and writes answers, whole, partial or not at all."""

    protocol_version = "HTTP/1.1"
    server_version = "BTCTurkSimulator/1.0"
    sys_version = ""
    timeout = 120.0
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose():
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        try:
            self.server.serve(self)
        except OSError:
            # The peer went away mid-exchange; there is nobody left to answer.
            self.close_connection = True

    def read_body(self) -> bytes | None:
        """The request body, or None once an error answer has been sent (or the peer left)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            self.send(json_response(411, failure("LENGTH_REQUIRED", 411)))
            return None
        raw = self.headers.get("Content-Length")
        if raw is None:
            return b""
        try:
            length = int(raw)
            if not 0 <= length <= _MAX_BODY:
                raise ValueError(raw)
        except ValueError:
            self.close_connection = True
            self.send(json_response(400, failure("BAD_REQUEST", 400)))
            return None
        body = self.rfile.read(length)
        if len(body) < length:
            self.close_connection = True
            return None
        return body

    def _start(self, response: Response, content_length: int) -> None:
        self.send_response(response.status)
        has_length = False
        for name, value in response.headers.items():
            if name.lower() == "content-length":
                # A fault may lie about the length on purpose; the stream cannot be reused after that.
                has_length = True
                self.close_connection = True
            self.send_header(name, value)
        if not has_length:
            self.send_header("Content-Length", str(content_length))
        self.end_headers()

    def send(self, response: Response) -> None:
        """Write the whole answer."""
        self._start(response, len(response.body))
        if response.body and self.command != "HEAD":
            self.wfile.write(response.body)

    def send_partial(self, response: Response) -> None:
        """Write the headers and half the body, then reset the connection."""
        self.close_connection = True
        self._start(response, len(response.body))
        self.wfile.write(response.body[: max(1, len(response.body) // 2)])
        self.wfile.flush()
        # Linger 0 turns the close into a TCP RST, like a proxy or load balancer dropping the stream.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()

    def abort(self) -> None:
        """Close without (further) answer."""
        self.close_connection = True


class Listener:
    """A Server on its own daemon thread: started, stopped and started again on the same port."""

    def __init__(self) -> None:
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(
        self, host: str, port: int, serve: Callable[[Handler], None], verbose: Callable[[], bool]
    ) -> int:
        """Bind (OSError when the address is taken or invalid), serve, and return the bound port."""
        server = Server((host, port), serve, verbose)
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"btcturk-sim-{server.server_address[1]}",
            daemon=True,
        )
        self._server, self._thread = server, thread
        thread.start()
        return int(server.server_address[1])

    def stop(self) -> None:
        """Stop serving and drop open connections."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
