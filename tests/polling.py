"""Waiting on conditions instead of sleeping for fixed windows.

``wait_until`` polls until a condition holds and returns what it returned; ``holds_for`` checks that a
condition stays true for a whole period. Both fail with an ``AssertionError`` naming what was awaited and
the last thing they saw (a value or an exception), so a timeout explains itself. ``async_wait_until`` and
``async_holds_for`` do the same on an event loop, with awaitable conditions, leaving the loop free between
checks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["async_holds_for", "async_wait_until", "holds_for", "wait_until"]

T = TypeVar("T")


def _seen(value: object, error: BaseException | None) -> str:
    if error is not None:
        return f"it raised {type(error).__name__}: {error}"
    return f"it last returned {value!r}"


def wait_until(
    condition: Callable[[], T],
    timeout: float,
    interval: float = 0.02,
    message: str | Callable[[], str] = "the condition",
) -> T:
    """Call ``condition`` every ``interval`` seconds until it returns something truthy, and return that.

    An exception from ``condition`` counts as not yet (it is reported if the time runs out), except an
    ``AssertionError``: a condition that asserts has seen something wrong, so that fails at once. After
    ``timeout`` seconds, one last call decides; if it is still falsy an ``AssertionError`` names
    ``message`` (a string, or a callable asked for one then, to describe the state left over) and what
    the condition last returned.
    """
    deadline = time.monotonic() + timeout
    value: object = None
    error: BaseException | None = None
    while True:
        last_chance = time.monotonic() >= deadline
        try:
            result = condition()
        except AssertionError:
            raise
        except Exception as exc:  # reported below if it never comes right
            error, value = exc, None
        else:
            if result:
                return result
            error, value = None, result
        if last_chance:
            break
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
    what = message() if callable(message) else message
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}: {_seen(value, error)}")


def holds_for(
    condition: Callable[[], object],
    duration: float,
    interval: float = 0.05,
    message: str = "the condition",
) -> int:
    """Check ``condition`` every ``interval`` seconds for ``duration`` seconds (at the start and at the
    end too); fail at the first check it does not hold. Returns how many checks were made."""
    deadline = time.monotonic() + duration
    checks = 0
    while True:
        last = time.monotonic() >= deadline
        value = condition()
        checks += 1
        if not value:
            raise AssertionError(f"{message} stopped holding after {checks} checks: it returned {value!r}")
        if last:
            return checks
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))


async def async_wait_until(
    condition: Callable[[], Awaitable[T]],
    timeout: float,
    interval: float = 0.02,
    message: str = "the condition",
) -> T:
    """:func:`wait_until` for a coroutine function ``condition``, sleeping on the loop between checks."""
    deadline = time.monotonic() + timeout
    value: object = None
    error: BaseException | None = None
    while True:
        last_chance = time.monotonic() >= deadline
        try:
            result = await condition()
        except AssertionError:
            raise
        except Exception as exc:
            error, value = exc, None
        else:
            if result:
                return result
            error, value = None, result
        if last_chance:
            break
        await asyncio.sleep(min(interval, max(0.0, deadline - time.monotonic())))
    raise AssertionError(f"timed out after {timeout:g}s waiting for {message}: {_seen(value, error)}")


async def async_holds_for(
    condition: Callable[[], Awaitable[object]],
    duration: float,
    interval: float = 0.05,
    message: str = "the condition",
) -> int:
    """:func:`holds_for` for a coroutine function ``condition``, sleeping on the loop between checks."""
    deadline = time.monotonic() + duration
    checks = 0
    while True:
        last = time.monotonic() >= deadline
        value = await condition()
        checks += 1
        if not value:
            raise AssertionError(f"{message} stopped holding after {checks} checks: it returned {value!r}")
        if last:
            return checks
        await asyncio.sleep(min(interval, max(0.0, deadline - time.monotonic())))
