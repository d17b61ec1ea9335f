"""Real services for the tests: a Redis on 127.0.0.1:6379, a Redis Sentinel on 127.0.0.1:26379 watching it
(both started by ``.ci/ensure-services.sh``) and a 3-master Redis Cluster started here from redis-server
processes, shared by every test directory.

A missing service fails the tests that need it, in CI or not: the suite never passes by skipping.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from polling import wait_until

REDIS_HOST = "127.0.0.1"
REDIS_PORT = 6379
SENTINEL_PORT = 26379
#: The name under which the Sentinel of ``.ci/ensure-services.sh`` monitors the Redis on 6379.
SENTINEL_SERVICE = "bedrock-budget"
#: Ports the services above use, never handed out by :func:`free_port`.
TAKEN = frozenset({REDIS_PORT, SENTINEL_PORT})
#: Ports below this are left alone (well-known and registered services).
LOWEST_PORT = 10000
#: A cluster node's bus listens on its port + 10000.
BUS_OFFSET = 10000
_random = random.SystemRandom()


def unavailable(reason: str) -> None:
    pytest.fail(f"required test service missing: {reason}")


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range for outgoing connections' local ports (``ip_local_port_range``)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # the Linux default


def port_candidates(*, with_bus: bool = False) -> list[range]:
    """Where servers of our own may listen: outside the ephemeral range, so an outgoing connection can
    never have taken the port between the check and the server's bind (and, with ``with_bus``, the bus
    port too)."""
    low, high = ephemeral_range()
    reach = BUS_OFFSET if with_bus else 0
    spans = [range(LOWEST_PORT, low - reach), range(high + 1, 65536 - reach)]
    return [span for span in spans if len(span) > 0]


def free_port(*, with_bus: bool = False) -> int:
    """A free loopback port below the ephemeral range (or above it when the range leaves no room below),
    picked at random so that suites run side by side from several checkouts rarely try the same one; with
    ``with_bus`` also port + 10000 (the cluster bus) is free. A server started on it must still check that
    it got the port (:meth:`RedisServer.start` does)."""
    spans = port_candidates(with_bus=with_bus)
    if not spans:
        raise RuntimeError(f"no loopback ports outside the ephemeral range {ephemeral_range()}")
    sizes = [len(span) for span in spans]
    for _ in range(500):
        span = _random.choices(spans, weights=sizes)[0]
        port = span[_random.randrange(len(span))]
        if port in TAKEN or (with_bus and port + BUS_OFFSET in TAKEN):
            continue
        if _bindable(port) and (not with_bus or _bindable(port + BUS_OFFSET)):
            return port
    raise RuntimeError("no free port found")


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class PortTakenError(RuntimeError):
    """The port was free when chosen, but another process bound it first."""


class RedisServer:
    """A redis-server process of our own (for outage tests and the cluster).

    With ``port=None`` the server picks a free port itself (with room for the cluster bus when
    ``with_bus``) and tries another if a process elsewhere takes it first; once started it keeps its port,
    so a restart comes back where clients expect it."""

    def __init__(self, directory: Path, port: int | None, *extra: str, with_bus: bool = False) -> None:
        self.directory = directory
        self.extra = extra
        self.with_bus = with_bus
        self._chosen = port is None
        self.port = free_port(with_bus=with_bus) if port is None else port
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        attempts = 20 if self._chosen else 1
        for attempt in range(attempts):
            try:
                self._launch()
            except PortTakenError:
                if attempt == attempts - 1:
                    raise
                self.port = free_port(with_bus=self.with_bus)
            else:
                self._chosen = False  # from now on the port is this server's
                return

    def _launch(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None
        process = subprocess.Popen(
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
        self.process = process
        wait_until(
            lambda: process.poll() is not None or self._answers_as(process.pid),
            10,
            message=f"redis-server (pid {process.pid}) to answer on port {self.port}",
        )
        if process.poll() is not None:
            self.process = None
            raise PortTakenError(f"redis-server could not listen on port {self.port}")

    def _answers_as(self, pid: int) -> bool:
        """Whether the server answering on our port is the process we started (not another one's)."""
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1, socket_connect_timeout=1)
        try:
            return int(client.info("server")["process_id"]) == pid
        except redis.RedisError:
            return False
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None
        wait_until(lambda: not port_open("127.0.0.1", self.port), 10, message=f"port {self.port} to close")


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


def sentinel_master(port: int, service: str) -> tuple[str, int] | None:
    """The master address the Sentinel on ``port`` gives for ``service``, or None."""
    client = redis.Redis(host=REDIS_HOST, port=port, socket_timeout=2, decode_responses=True)
    try:
        found = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", service)
    except redis.RedisError:
        return None
    finally:
        client.close()
    return (str(found[0]), int(found[1])) if found else None


@pytest.fixture(scope="session")
def sentinel_url(redis_url: str) -> str:
    """The Redis on 6379 reached through the Sentinel that monitors it (``redis+sentinel://``)."""
    master = sentinel_master(SENTINEL_PORT, SENTINEL_SERVICE)
    if master is None:
        unavailable(
            f"no Redis Sentinel on {REDIS_HOST}:{SENTINEL_PORT} monitoring {SENTINEL_SERVICE!r} "
            "(run `make services`)"
        )
    if master != (REDIS_HOST, REDIS_PORT):
        unavailable(f"the Sentinel gives {master} for {SENTINEL_SERVICE!r}, not {REDIS_HOST}:{REDIS_PORT}")
    return f"redis+sentinel://{REDIS_HOST}:{SENTINEL_PORT}/{SENTINEL_SERVICE}/0"


@pytest.fixture(scope="session")
def cluster_url(redis_server_binary: str) -> Iterator[str]:
    directory = Path(tempfile.mkdtemp(prefix="bb-cluster-"))
    servers: list[RedisServer] = []
    try:
        for index in range(3):
            node = RedisServer(
                directory,
                None,
                "--cluster-enabled", "yes",
                "--cluster-config-file", f"nodes-{index}.conf",
                "--cluster-node-timeout", "5000",
                with_bus=True,
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
                message=f"cluster_state:ok on port {server.port}",
            )
        yield "redis+cluster://" + ",".join(nodes)
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def lingering_demo(
    metrics_port: int, linger: float, calls: int = 60
) -> Iterator[tuple[subprocess.Popen[str], Any]]:
    """``bedrock-budget demo --json --metrics-port P --linger S`` as a user runs it; yields the process and
    its JSON summary once the run is over (while /metrics lingers), and stops the process on exit. Ctrl-C
    (``stop_lingering``) ends the linger early."""
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


def stop_lingering(demo: subprocess.Popen[str]) -> int:
    """Ctrl-C a lingering demo, as its help says to end the linger early; its exit status."""
    demo.send_signal(signal.SIGINT)
    return demo.wait(timeout=30)


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
