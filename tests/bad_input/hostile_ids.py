"""Hostile ids and the checks of a namespace, shared by the sync (tests/bad_input/test_hostile_ids.py) and
async (tests_async/test_hostile_ids.py) proofs that nothing leaves its namespace."""

from __future__ import annotations

import re

from redis.crc import key_slot

import bedrock_budget as bb

from .conftest import KeyspaceWatch

__all__ = ["HOSTILE", "TOO_LONG", "budgets", "check_keys"]

HOSTILE = [
    "{}",
    "a}b{c",
    "user:1:*",
    "*",
    "?",
    "[a-z]",
    "\n",
    "line\r\nbreak",
    "é😀",
    "\x00",
    "\ud800",
    "bb:{all||lifetime|0}:h",
    " ",
    "%2A",
    "a|b,c=d",
    "#" + "0" * 32,
    "h-" + "0" * 32,
    "x" * 4096,
    "ü" * 2000,
]
TOO_LONG = "y" * 10_240
# One hash tag per key, nothing a glob or the protocol would read as syntax.
KEY = re.compile(rb"[^{}*?\[\]\s]*\{[^{}*?\[\]\s]+\}:[hzt]")
# The spend ledger's keys (stores.tracking): one hash tag, then the bucket and the encoded value.
TRACK_KEY = re.compile(
    rb"[^{}*?\[\]\s]*t:\{[^{}*?\[\]\s]+/[0-9]+\}:(d:[0-9]+|k:[^{}*?\[\]\s:]+:[hd]:[0-9]+:(z|v:[^{}*?\[\]\s]+))"
)


def budgets() -> list[bb.Budget]:
    return [
        bb.Budget("per-user", scope={"user": "*"}, window="lifetime", limit_usd="1"),
        bb.Budget("per-app", scope={"app": "*"}, window="day", limit_usd="1"),
        bb.Budget("per-model", model="*", window="hour", limit_tokens="1000000"),
        bb.Budget("everything", window="month", timezone="Pacific/Chatham", limit_usd="10"),
    ]


def check_keys(keyspace: KeyspaceWatch) -> list[bytes]:
    keyspace.assert_untouched()
    keys = keyspace.inside()
    counters: dict[bytes, set[int]] = {}
    for key in keys:
        if TRACK_KEY.fullmatch(key):
            counters.setdefault(key[: key.index(b"}") + 1], set()).add(key_slot(key))
            continue
        assert KEY.fullmatch(key), key
        counters.setdefault(key[:-2], set()).add(key_slot(key))
    assert all(len(slots) == 1 for slots in counters.values())
    return keys
