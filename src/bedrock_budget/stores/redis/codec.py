"""The Lua scripts and the helpers that decode their replies.

Every operation is one script (``stores/lua/*.lua``, each prefixed with ``common.lua``), read once at
import. Replies arrive as bytes or str depending on the client's ``decode_responses``; the helpers accept
both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from importlib import resources
from typing import Final

from bedrock_budget.stores.base import CounterRef, CounterState, Hold


def _script_text(name: str) -> str:
    folder = resources.files("bedrock_budget.stores").joinpath("lua")
    return folder.joinpath("common.lua").read_text("utf-8") + "\n" + folder.joinpath(name).read_text("utf-8")


_SCRIPTS: Final = {
    name: _script_text(f"{name}.lua")
    for name in ("reserve", "settle_many", "release", "read", "forget_spend", "renew", "publish_definitions")
}


def _str(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return str(value)


def _int(value: object) -> int:
    return int(_str(value))


def _row(ref: CounterRef, row: Sequence[object]) -> CounterState:
    return CounterState(
        ref=ref,
        spent_usd=_int(row[0]),
        held_usd=_int(row[1]),
        spent_tokens=_int(row[2]),
        held_tokens=_int(row[3]),
        active=_int(row[4]),
    )


def _limit(pairs: Sequence[tuple[str, str]], name: str) -> int | None:
    value = next((v for k, v in pairs if k == name), "")
    return int(value) if value else None


# The counter of a hash without a meta field: a read by ref puts the ref asked for in its place, and
# listings skip it.
_PLACEHOLDER: Final = CounterRef(budget="?", scope=(), window="lifetime", timezone="UTC", start=0, end=None)


# -- request limits: the fields and columns the scripts add only for a counter that has one --------------


def request_fields(hold: Hold) -> str:
    """What ends a counter's part of the reserve request: its request limit, refusal mark and requests as
    JSON strings after a comma, or nothing for a counter without a request limit."""
    if hold.limit_requests is None:
        return ""
    mark = next((m.name for m in hold.refusal_marks if m.unit == "requests"), "")
    return f',"{hold.limit_requests}","{mark}","{hold.requests}"'


def reserve_requests(columns: Sequence[str]) -> tuple[int, int, bool, list[str]]:
    """A reserve reply line's request columns taken off the columns after the epoch: requests made and
    held, whether requests refused, and the fired marks left."""
    spent, held, refused, *fired = columns
    return int(spent), int(held), refused == "1", fired


def settle_requests(columns: Sequence[str]) -> tuple[int, int, list[str]]:
    """A settle reply row's request columns taken off the columns after the state: requests made and
    held, and the fired marks left."""
    spent, held, *fired = columns
    return int(spent), int(held), fired


def read_requests(state: CounterState, pairs: Sequence[tuple[str, str]]) -> CounterState:
    """A read's request fields: requests made and held, and the request limit last reserved under."""
    found = {k: v for k, v in pairs if k in ("sq", "hq")}
    return replace(
        state,
        spent_requests=max(int(found.get("sq", 0)), 0),
        held_requests=max(int(found.get("hq", 0)), 0),
        limit_requests=_limit(pairs, "lq"),
    )
