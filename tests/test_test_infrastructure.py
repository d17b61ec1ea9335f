"""The suite's own machinery: the polling helpers, the no-skip plugin, the backend matrix and its marker, the
prefix cleanup and the ports servers of our own listen on."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest
import redis

from backends import KINDS, Backend, backend_params, delete_prefix
from polling import holds_for, wait_until
from service_fixtures import BUS_OFFSET, TAKEN, RedisServer, ephemeral_range, free_port

TESTS = Path(__file__).resolve().parent


# -- polling ---------------------------------------------------------------------------------------------


def test_wait_until_returns_what_the_condition_returned_once_it_holds() -> None:
    calls: list[int] = []

    def third_time() -> str | None:
        calls.append(1)
        return "ready" if len(calls) >= 3 else None

    assert wait_until(third_time, 5, interval=0.001, message="the third call") == "ready"
    assert len(calls) == 3


def test_wait_until_says_what_it_waited_for_and_what_it_last_saw() -> None:
    found: list[int] = [1, 2]
    started = time.monotonic()
    with pytest.raises(
        AssertionError, match=r"^timed out after 0.2s waiting for 3 found: it last returned \[\]$"
    ):
        wait_until(lambda: [n for n in found if n >= 3], 0.2, message="3 found")
    assert time.monotonic() - started >= 0.2


def test_wait_until_reports_the_last_exception_and_describes_late_state() -> None:
    state = {"left": 4}

    def broken() -> bool:
        raise ConnectionError("refused")

    with pytest.raises(AssertionError, match=r"the store \(4 left\): it raised ConnectionError: refused"):
        wait_until(broken, 0.05, interval=0.01, message=lambda: f"the store ({state['left']} left)")


def test_wait_until_lets_an_assertion_in_the_condition_fail_at_once() -> None:
    def wrong() -> bool:
        raise AssertionError("the server died")

    started = time.monotonic()
    with pytest.raises(AssertionError, match="the server died"):
        wait_until(wrong, 30)
    assert time.monotonic() - started < 5


def test_wait_until_sees_a_change_made_by_another_thread() -> None:
    flag = threading.Event()
    threading.Timer(0.05, flag.set).start()
    assert wait_until(flag.is_set, 10, message="the timer")


def test_holds_for_checks_through_the_whole_period_and_fails_when_it_stops() -> None:
    started = time.monotonic()
    assert holds_for(lambda: True, 0.1, interval=0.02) >= 5
    assert time.monotonic() - started >= 0.1
    stop_at = time.monotonic() + 0.05
    with pytest.raises(AssertionError, match="the hold stopped holding"):
        holds_for(lambda: time.monotonic() < stop_at, 2, interval=0.01, message="the hold")


# -- no skips --------------------------------------------------------------------------------------------


def test_every_kind_of_skip_fails_the_run(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(
        "from no_skips import pytest_make_collect_report, pytest_runtest_makereport\n"
    )
    (tmp_path / "test_skips.py").write_text(
        textwrap.dedent(
            """
            import pytest

            def test_passes():
                assert True

            def test_skip_call():
                pytest.skip("no service")

            @pytest.mark.skip(reason="marked")
            def test_skip_mark():
                pass

            @pytest.mark.skipif(True, reason="condition")
            def test_skipif():
                pass

            @pytest.fixture
            def service():
                pytest.skip("fixture could not start it")

            def test_skip_in_fixture(service):
                pass

            @pytest.mark.xfail(reason="expected")
            def test_xfail():
                assert False
            """
        )
    )
    (tmp_path / "test_module_skip.py").write_text(
        "import pytest\npytest.importorskip('a_module_nobody_installed')\n\ndef test_never():\n    pass\n"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--continue-on-collection-errors",
            str(tmp_path),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PYTHONPATH": str(TESTS), "PATH": "/usr/bin:/bin"},
    )
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert "skipped" not in out.splitlines()[-1], out
    # A skip in setup (marks, fixtures) or collection shows as an error, in the call as a failure.
    assert "2 failed, 1 passed, 4 errors" in out, out
    assert out.count("a skip is a failure in this suite") >= 6, out
    for reason in ("no service", "marked", "condition", "fixture could not start it", "xfail: expected"):
        assert reason in out, reason
    assert "a_module_nobody_installed" in out


# -- the backend matrix ----------------------------------------------------------------------------------


def test_backend_params_expand_all_in_matrix_order_and_mark_the_services() -> None:
    every = backend_params("all")
    assert [p.id for p in every] == list(KINDS) == ["memory", "fakeredis", "redis", "sentinel", "cluster"]
    assert [p.id for p in backend_params("cluster", "redis", "cluster")] == ["redis", "cluster"]
    marks = {p.id: {m.name for m in p.marks} for p in every}
    assert marks == {
        "memory": set(),
        "fakeredis": set(),
        "redis": {"redis"},
        "sentinel": {"sentinel"},
        "cluster": {"cluster"},
    }
    with pytest.raises(pytest.UsageError, match="unknown backend 'mysql'"):
        backend_params("mysql")
    with pytest.raises(pytest.UsageError, match="at least one"):
        backend_params()


def test_a_backend_without_the_marker_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(
        textwrap.dedent(
            f"""
            import importlib.util

            spec = importlib.util.spec_from_file_location("suite_conftest", {str(TESTS / "conftest.py")!r})
            suite = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(suite)
            pytest_generate_tests = suite.pytest_generate_tests
            backend = suite.backend
            """
        )
    )
    (tmp_path / "test_unmarked.py").write_text("def test_x(backend):\n    pass\n")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PYTHONPATH": str(TESTS), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode != 0
    assert "uses `backend` without @pytest.mark.backends" in done.stdout + done.stderr


@pytest.mark.backends("all")
def test_stores_of_one_backend_share_the_test_prefix_and_leave_nothing_behind(backend: Backend) -> None:
    from bedrock_budget.stores import CounterRef, Hold

    assert backend.kind in KINDS
    assert backend.prefix.startswith("bbt")
    assert backend.prefix.endswith(":")
    one, two = backend.make(), backend.make()
    ref = CounterRef(budget="b", scope=(), window="lifetime", timezone="UTC", start=0, end=None)
    assert one.reserve(
        "r", [Hold(ref=ref, limit_usd=10, limit_tokens=None, usd=4, tokens=0)], now_ms=1000, deadline_ms=9000
    ).granted
    assert two.read([ref], now_ms=1000)[0].held_usd == 4  # the second store sees the first one's hold
    other = backend.make(prefix=backend.prefix + "other:")
    assert other.read([ref], now_ms=1000)[0].held_usd == 0  # another prefix, another namespace
    if backend.uri is not None:
        assert backend.uri.startswith(
            {"redis": "redis://", "sentinel": "redis+sentinel://", "cluster": "redis+cluster://"}[
                backend.kind
            ]
        )
        backend.close()
        assert delete_prefix(backend.uri, backend.prefix) == 0  # close deleted every key of the test


@pytest.mark.redis
def test_delete_prefix_deletes_only_its_own_prefix_even_with_glob_characters(redis_url: str) -> None:
    base = f"bbt{uuid.uuid4().hex[:12]}"
    ours, neighbour = f"{base}[a]*?:", f"{base}a:"
    client = redis.Redis.from_url(redis_url)
    try:
        client.set(ours + "k1", 1)
        client.set(ours + "k2", 1)
        client.set(neighbour + "k", 1)  # what the unescaped glob `[a]` would match
        assert delete_prefix(redis_url, ours) == 2
        assert client.get(neighbour + "k") == b"1"
        with pytest.raises(ValueError, match="prefix is empty"):
            delete_prefix(redis_url, "")
    finally:
        client.delete(ours + "k1", ours + "k2", neighbour + "k")
        client.close()


# -- ports -----------------------------------------------------------------------------------------------


def test_free_ports_are_outside_the_ephemeral_range_with_room_for_the_bus() -> None:
    low, high = ephemeral_range()
    for _ in range(50):
        port = free_port()
        assert not low <= port <= high
        assert port not in TAKEN
        bus = free_port(with_bus=True)
        assert not low <= bus <= high
        assert not low <= bus + BUS_OFFSET <= high
        assert bus + BUS_OFFSET <= 65535


@pytest.mark.redis
def test_a_server_whose_port_is_taken_moves_to_another(redis_server_binary: str, tmp_path: Path) -> None:
    first = RedisServer(tmp_path, None)
    first.start()
    try:
        second = RedisServer(tmp_path, None)
        second.port = first.port  # as if another checkout's server took the port after we chose it
        second.start()
        try:
            assert second.port != first.port
            assert second.process is not None
            client = redis.Redis(host="127.0.0.1", port=second.port)
            assert client.info("server")["process_id"] == second.process.pid
            client.close()
        finally:
            second.stop()
    finally:
        first.stop()
    taken = RedisServer(tmp_path, None)
    taken.start()
    try:
        fixed = RedisServer(tmp_path, taken.port)  # a port given by the caller is kept, and must be free
        with pytest.raises(RuntimeError, match=f"could not listen on port {taken.port}"):
            fixed.start()
    finally:
        taken.stop()
