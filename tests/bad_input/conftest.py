"""Shared pieces of the bad-input suite: the fake Bedrock, a tiny scripted HTTP server that answers with
exactly the bytes a test gives it (malformed JSON, absurd headers, broken event-stream frames), and a
watcher for keys written outside a test's own Redis namespace."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis
from botocore.config import Config

from service_fixtures import RedisServer, free_port

HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "Write one short line about rivers."}]}]


# --- a scripted server --------------------------------------------------------------------------------


@dataclass
class Reply:
    """One raw HTTP answer. ``body`` is sent as is; ``length`` overrides Content-Length (to promise more
    than is sent); ``chunks`` sends the body with chunked transfer encoding, piece by piece, and
    ``end_chunks=False`` hangs up before the terminating chunk."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    length: int | None = None
    chunks: list[bytes] | None = None
    end_chunks: bool = True


def json_reply(payload: object, status: int = 200, **headers: str) -> Reply:
    return Reply(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **headers})


class ScriptedServer:
    """Answers each request with the next scripted :class:`Reply` (the last one repeats)."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.paths: list[str] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                with outer._lock:
                    outer.paths.append(self.path)
                    reply = outer.replies.pop(0) if len(outer.replies) > 1 else outer.replies[0]
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                head = [f"HTTP/1.1 {reply.status} X", f"x-amzn-RequestId: {uuid.uuid4()}"]
                head += [f"{name}: {value}" for name, value in reply.headers.items()]
                if reply.chunks is not None:
                    head.append("Transfer-Encoding: chunked")
                    data = b"".join(f"{len(c):X}\r\n".encode() + c + b"\r\n" for c in reply.chunks)
                    data += b"0\r\n\r\n" if reply.end_chunks else b""
                else:
                    length = len(reply.body) if reply.length is None else reply.length
                    head.append(f"Content-Length: {length}")
                    data = reply.body
                head.append("Connection: close")
                self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("utf-8") + data)
                self.close_connection = True

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self.replies = list(replies)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def scripted_client(scripted: ScriptedServer) -> Iterator[Any]:
    """A boto3 bedrock-runtime client for the scripted server, without retries."""
    import boto3

    client = boto3.client(
        "bedrock-runtime",
        endpoint_url=scripted.url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=5, connect_timeout=2),
    )
    yield client
    client.close()


# --- Redis namespace watch ----------------------------------------------------------------------------

# Keys another application (or another bedrock-budget namespace) keeps in the same Redis; hostile ids must
# never reach them.
DECOYS = {
    b"bb:{all||lifetime|0}:h": b"decoy",
    b"{user=alice}:h": b"decoy",
    b"app:*": b"decoy",
    b"victim": b"decoy",
}


class KeyspaceWatch:
    """A redis-server of the test's own, holding decoy keys. ``url`` logs in as an ACL user that may touch
    only keys under ``prefix``, so any read or write outside the namespace fails loudly (NOPERM) instead of
    passing unseen; :meth:`assert_untouched` also compares every other key byte for byte."""

    def __init__(self, admin_url: str) -> None:
        self.prefix = f"bbbad{uuid.uuid4().hex[:10]}:"
        self._client = redis.Redis.from_url(admin_url)
        self._client.acl_setuser(
            "budget", enabled=True, passwords=["+fenced"], keys=[f"{self.prefix}*"], commands=["+@all"]
        )
        self.url = admin_url.replace("redis://", "redis://budget:fenced@", 1)
        for key, value in DECOYS.items():
            self._client.set(key, value)
        self.before = self._outside()

    def _outside(self) -> dict[bytes, bytes | None]:
        return {
            key: self._client.dump(key)
            for key in self._client.scan_iter(count=1000)
            if not key.startswith(self.prefix.encode())
        }

    def inside(self) -> list[bytes]:
        return sorted(self._client.scan_iter(match=f"{self.prefix}*", count=1000))

    def assert_untouched(self) -> None:
        assert self._outside() == self.before

    def close(self) -> None:
        self._client.close()


@pytest.fixture
def keyspace(redis_server_binary: str, tmp_path: Path) -> Iterator[KeyspaceWatch]:
    server = RedisServer(tmp_path, free_port())
    server.start()
    try:
        watch = KeyspaceWatch(f"redis://127.0.0.1:{server.port}/0")
        yield watch
        watch.close()
    finally:
        server.stop()
