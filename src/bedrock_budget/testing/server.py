"""The HTTP/1.1 layer: a threaded loopback server that speaks just enough HTTP for botocore.

Tuned for test-suite speed: TCP_NODELAY on every connection, keep-alive, and each response written
with a single ``sendall`` (head and body together) unless it is deliberately paced.
"""

from __future__ import annotations

import contextlib
import http
import socket
import socketserver
import sys
import threading
import uuid
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Final

from bedrock_budget.errors import ListenError

from .engine import Engine, Incoming
from .errors import BedrockError
from .reply import Reply, error_reply

__all__ = ["FakeBedrockServer"]

_MAX_BODY: Final = 64 * 1024 * 1024


class _BadFramingError(Exception):
    """The request's body framing cannot be trusted, so the connection must close after answering."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeBedrock"
    sys_version = ""
    disable_nagle_algorithm = True
    # Idle keep-alive connections are dropped after this long; botocore reconnects transparently.
    timeout = 60
    server: FakeBedrockServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def log_message(self, format: str, *args: object) -> None:
        # Silent by design: request lines and errors could end up in CI logs.
        return

    # Method names are fixed by BaseHTTPRequestHandler's dispatch. Unknown routes answer like Bedrock.
    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        raw = self.headers.get("Content-Length")
        if raw is None:
            return b""
        try:
            length = int(raw)
        except ValueError as exc:
            raise _BadFramingError from exc
        if length < 0 or length > _MAX_BODY:
            raise _BadFramingError
        body = self.rfile.read(length)
        if len(body) != length:
            raise _BadFramingError
        return body

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError as exc:
                raise _BadFramingError from exc
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            total += size
            if total > _MAX_BODY:
                raise _BadFramingError
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _serve(self) -> None:
        try:
            body = self._read_body()
        except _BadFramingError:
            self.close_connection = True
            self._send(
                error_reply(BedrockError("ValidationException", "The request body framing is invalid."))
            )
            return
        path, _, query = self.path.partition("?")
        headers = {name.lower(): value for name, value in self.headers.items()}
        reply = self.server.engine.handle(Incoming(self.command, path, query, headers, body))
        self._send(reply)

    def _head(self, reply: Reply, *, chunked: bool, length: int) -> bytes:
        try:
            phrase = http.HTTPStatus(reply.status).phrase
        except ValueError:
            phrase = "Unknown"
        lines = [
            f"HTTP/1.1 {reply.status} {phrase}",
            f"Date: {formatdate(usegmt=True)}",
            f"x-amzn-RequestId: {reply.request_id or uuid.uuid4()}",
        ]
        lines.extend(f"{name}: {value}" for name, value in reply.headers)
        lines.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {length}")
        if self.close_connection:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _send(self, reply: Reply) -> None:
        stopping = self.server.stopping
        try:
            if reply.events is None:
                delay = max(reply.latency, reply.first_byte_delay)
                if delay > 0 and stopping.wait(delay):
                    self.close_connection = True
                    return
                body = b"" if self.command == "HEAD" else reply.body
                self.wfile.write(self._head(reply, chunked=False, length=len(reply.body)) + body)
                return
            self._send_stream(reply, stopping)
        except OSError:
            # The client went away (closed a stream early, timed out): nothing left to answer.
            self.close_connection = True

    def _send_stream(self, reply: Reply, stopping: threading.Event) -> None:
        events = reply.events or ()
        if reply.first_byte_delay > 0 and stopping.wait(reply.first_byte_delay):
            self.close_connection = True
            return
        spread = reply.latency - reply.first_byte_delay
        if spread <= 0 or len(events) < 2:
            payload = b"".join(events)
            self.wfile.write(self._head(reply, chunked=False, length=len(payload)) + payload)
            return
        # Paced stream: chunked transfer, one chunk per event, the rest spread over the latency budget.
        interval = spread / (len(events) - 1)
        out = self._head(reply, chunked=True, length=0) + _chunk(events[0])
        for event in events[1:]:
            self.wfile.write(out)
            if stopping.wait(interval):
                self.close_connection = True
                return
            out = _chunk(event)
        self.wfile.write(out + b"0\r\n\r\n")


def _chunk(data: bytes) -> bytes:
    return f"{len(data):X}\r\n".encode("ascii") + data + b"\r\n"


class FakeBedrockServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, host: str, port: int, engine: Engine) -> None:
        self.engine = engine
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._connections: dict[socket.socket, threading.Thread] = {}
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the FQDN of the host, which can stall on reverse DNS.
        host, port = self.server_address[:2]
        try:
            socketserver.TCPServer.server_bind(self)
        except OSError as exc:
            raise ListenError(str(host), int(port), exc) from exc
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])

    def track(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections[connection] = threading.current_thread()

    def untrack(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.pop(connection, None)

    def handle_error(self, request: object, client_address: object) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # a client hanging up is not an error worth a traceback
        super().handle_error(request, client_address)  # type: ignore[arg-type]

    def close_connections(self, timeout: float = 5.0) -> None:
        """Wake every handler blocked on a keep-alive connection and wait for it to finish."""
        with self._lock:
            items = list(self._connections.items())
        for connection, _ in items:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        for _, thread in items:
            if thread is not threading.current_thread():
                thread.join(timeout)
