"""Fixtures and hooks shared by every test directory: the fake Bedrock, the real services, the backend
matrix (tests/backends.py, chosen per test with ``@pytest.mark.backends(...)``) and no skips."""

from __future__ import annotations

import signal

import pytest

from backends import backend, backend_params
from fake_bedrock_fixtures import fake, fake_server, records
from no_skips import pytest_make_collect_report, pytest_runtest_makereport
from service_fixtures import cluster_url, redis_server_binary, redis_url, sentinel_url

__all__ = [
    "backend",
    "cluster_url",
    "fake",
    "fake_server",
    "pytest_generate_tests",
    "pytest_make_collect_report",
    "pytest_runtest_makereport",
    "records",
    "redis_server_binary",
    "redis_url",
    "sentinel_url",
]


# A shell starts a background job with SIGINT ignored, and a process keeps that through exec: the servers
# and demos the tests end with Ctrl-C, as their help says to, would never see it. Children of a process
# with a handler start with the default one, as from a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test that uses ``backend`` runs once per backend its ``backends`` marker names."""
    if "backend" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("backends")
    if marker is None:
        raise pytest.UsageError(f"{metafunc.definition.nodeid} uses `backend` without @pytest.mark.backends")
    metafunc.parametrize("backend", backend_params(*marker.args), indirect=True)
