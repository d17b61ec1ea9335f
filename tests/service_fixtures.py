"""Real services for the tests: a Redis on 127.0.0.1:6379 and a 3-master Redis Cluster started here from
redis-server processes, shared by every test directory.

Outside CI a missing Redis or redis-server binary skips the tests that need it; with ``CI=true`` it fails
them, so CI can never pass by skipping.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REDIS_HOST = "127.0.0.1"
REDIS_PORT = 6379


def unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"required test service missing in CI: {reason}")
    pytest.skip(reason)


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def free_port(*, with_bus: bool = False) -> int:
    """A free loopback port; with ``with_bus`` also port + 10000 (the cluster bus) is free."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if with_bus:
            port = 20000 + port % 20000
            if not (_bindable(port) and _bindable(port + 10000)):
                continue
        return port
    raise RuntimeError("no free port found")


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


class RedisServer:
    """A redis-server process of our own (for outage tests and the cluster)."""

    def __init__(self, directory: Path, port: int, *extra: str) -> None:
        self.port = port
        self.directory = directory
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None
        self.process = subprocess.Popen(
            [
                binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.directory),
                "--loglevel", "warning",
                *self.extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(lambda: port_open("127.0.0.1", self.port), 10, f"redis-server on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None
        wait_until(lambda: not port_open("127.0.0.1", self.port), 10, f"port {self.port} to close")


def _cli(*args: str) -> str:
    binary = shutil.which("redis-cli")
    assert binary is not None
    done = subprocess.run([binary, *args], capture_output=True, text=True, timeout=30, check=False)
    return done.stdout + done.stderr


@pytest.fixture(scope="session")
def redis_server_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None or shutil.which("redis-cli") is None:
        unavailable("redis-server / redis-cli not installed (run `make services`)")
    assert binary is not None
    return binary


@pytest.fixture(scope="session")
def redis_url() -> str:
    if not port_open(REDIS_HOST, REDIS_PORT):
        unavailable(f"no Redis on {REDIS_HOST}:{REDIS_PORT} (run `make services`)")
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/0"


@pytest.fixture(scope="session")
def cluster_url(redis_server_binary: str) -> Iterator[str]:
    directory = Path(tempfile.mkdtemp(prefix="bb-cluster-"))
    servers: list[RedisServer] = []
    try:
        for _ in range(3):
            port = free_port(with_bus=True)
            node = RedisServer(
                directory,
                port,
                "--cluster-enabled", "yes",
                "--cluster-config-file", f"nodes-{port}.conf",
                "--cluster-node-timeout", "5000",
            )  # fmt: skip
            node.start()
            servers.append(node)
        nodes = [f"127.0.0.1:{s.port}" for s in servers]
        created = _cli("--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes")
        if "[OK]" not in created:
            raise RuntimeError(f"redis-cli --cluster create failed: {created}")
        for server in servers:
            wait_until(
                lambda s=server: "cluster_state:ok" in _cli("-p", str(s.port), "cluster", "info"),
                20,
                "cluster_state:ok",
            )
        yield "redis+cluster://" + ",".join(nodes)
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def lingering_demo(
    metrics_port: int, linger: int, calls: int = 60
) -> Iterator[tuple[subprocess.Popen[str], Any]]:
    """``bedrock-budget demo --json --metrics-port P --linger S`` as a user runs it; yields the process and
    its JSON summary once the run is over (while /metrics lingers), and stops the process on exit."""
    cli = str(Path(sys.executable).with_name("bedrock-budget"))
    command = [cli, "demo", "--json", "--latency", "0", "--calls", str(calls)]
    command += ["--metrics-port", str(metrics_port), "--linger", str(linger)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as demo:
        try:
            assert demo.stdout is not None
            lines = []
            for line in demo.stdout:  # the summary is printed once the run is over
                lines.append(line)
                if line == "}\n":
                    break
            yield demo, json.loads("".join(lines))
        finally:
            if demo.poll() is None:
                demo.kill()


@contextlib.contextmanager
def spawned_worker(target: Callable[..., None], *args: object) -> Iterator[tuple[Any, Any]]:
    """``target(*args, ready)`` in a fresh (spawned) process; yields the process and the ``ready`` queue it
    reports on, and cleans both up however the test ends."""
    context = multiprocessing.get_context("spawn")
    ready = context.Queue()
    worker = context.Process(target=target, args=(*args, ready))
    worker.start()
    try:
        yield worker, ready
    finally:
        if worker.is_alive():
            worker.kill()
            worker.join(10)
        worker.close()
        ready.close()
        ready.join_thread()


def kill_9(worker: Any) -> None:
    """SIGKILL: no atexit, no finally, no flush; the process is gone at once."""
    assert worker.pid is not None
    os.kill(worker.pid, signal.SIGKILL)
    worker.join(10)
    assert worker.exitcode == -signal.SIGKILL
