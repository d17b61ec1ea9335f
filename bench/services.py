"""What the Redis benchmarks talk to: the Redis on 127.0.0.1:6379 (``make services`` starts it) and a
3-master Redis Cluster started here from redis-server processes on free loopback ports, torn down after."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

REDIS_URL = "redis://127.0.0.1:6379/0"


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def redis_available() -> bool:
    return port_open(6379)


def unique_prefix() -> str:
    return f"bbbench-{uuid.uuid4().hex[:10]}:"


def delete_prefix(url: str, prefix: str) -> None:
    import redis

    if url.startswith("redis+cluster://"):
        from redis.cluster import ClusterNode, RedisCluster

        host, _, port = url.removeprefix("redis+cluster://").split(",")[0].partition(":")
        client = RedisCluster(startup_nodes=[ClusterNode(host, int(port))])
        try:
            for key in list(client.scan_iter(match=f"{prefix}*", count=1000)):
                client.delete(key)
        finally:
            client.close()
        return
    plain = redis.Redis.from_url(url)
    try:
        keys = list(plain.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            plain.delete(*keys)
    finally:
        plain.close()


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _cluster_port() -> int:
    # The cluster bus listens on port + 10000, so both must be free.
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = 20000 + int(probe.getsockname()[1]) % 20000
        if _bindable(port) and _bindable(port + 10000):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def _cli(*args: str) -> str:
    done = subprocess.run(["redis-cli", *args], capture_output=True, text=True, timeout=30, check=False)
    return done.stdout + done.stderr


@contextlib.contextmanager
def redis_cluster() -> Iterator[str]:
    """A fresh 3-master cluster on loopback; yields its ``redis+cluster://`` URI."""
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        raise RuntimeError("redis-server / redis-cli not installed (run `make services`)")
    directory = Path(tempfile.mkdtemp(prefix="bb-bench-cluster-"))
    processes: list[tuple[subprocess.Popen[bytes], int]] = []
    try:
        for _ in range(3):
            port = _cluster_port()
            process = subprocess.Popen(
                [
                    "redis-server",
                    "--port", str(port),
                    "--bind", "127.0.0.1",
                    "--save", "",
                    "--appendonly", "no",
                    "--dir", str(directory),
                    "--loglevel", "warning",
                    "--cluster-enabled", "yes",
                    "--cluster-config-file", f"nodes-{port}.conf",
                    "--cluster-node-timeout", "5000",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            processes.append((process, port))
            _wait(lambda p=port: port_open(p), 10, f"redis-server on {port}")
        nodes = [f"127.0.0.1:{port}" for _, port in processes]
        created = _cli("--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes")
        if "[OK]" not in created:
            raise RuntimeError(f"redis-cli --cluster create failed: {created}")
        for _, port in processes:
            _wait(lambda p=port: "cluster_state:ok" in _cli("-p", str(p), "cluster", "info"), 20, "cluster")
        yield "redis+cluster://" + ",".join(nodes)
    finally:
        for process, _ in processes:
            process.terminate()
        for process, _ in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A fresh standalone Redis on a free loopback port, for figures no other client may disturb (its
    ``INFO cpu`` counts only the benchmark's commands); yields its URI."""
    if shutil.which("redis-server") is None:
        raise RuntimeError("redis-server not installed (run `make services`)")
    directory = Path(tempfile.mkdtemp(prefix="bb-bench-redis-"))
    port = _cluster_port()
    process = subprocess.Popen(
        [
            "redis-server",
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(directory),
            "--loglevel", "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait(lambda: port_open(port), 10, f"redis-server on {port}")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        shutil.rmtree(directory, ignore_errors=True)
