"""The Redis store's script calls without I/O: the keys and arguments each Lua script is sent, and what its
reply means.

Shared by the sync stores (:mod:`.standalone`, :mod:`.cluster`) and the ``redis.asyncio`` ones
(:mod:`.asyncio_store`), so a sync and an async process build byte-for-byte the same calls on the same
keys: one budget, whatever drives it. Each ``*_call`` method returns ``(keys, args)`` for one script call
(one hash slot on a cluster); each ``*_reply`` method turns that call's reply into the store's values.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Final

from bedrock_budget._memo import remember
from bedrock_budget.stores.base import (
    UNIT_LETTERS,
    Check,
    CounterRef,
    CounterState,
    Hold,
    Mark,
    Renewal,
    ReserveResult,
    SettleOutcome,
    SettleRequest,
    parse_tallies,
    settle_status,
    tally_items,
)
from bedrock_budget.stores.redis.codec import (
    _PLACEHOLDER,
    _int,
    _limit,
    _row,
    _str,
    read_requests,
    request_fields,
    reserve_requests,
    settle_requests,
)
from bedrock_budget.stores.redis.tracking import track_ops

_KEY_MEMO_SIZE: Final = 4096

#: One script call: its keys and its arguments.
ScriptCall = tuple[list[str], list[Any]]


class ScriptCalls:
    """Mixed into a Redis store (sync or async), which sets ``prefix``, ``key_slack`` and
    ``tombstone_retention`` and calls :meth:`_init_memos`."""

    prefix: str
    key_slack: int
    tombstone_retention: int

    def _init_memos(self) -> None:
        # Every call of a window names the same counters: build their key names once (bounded: windows
        # roll over and per-user scopes come and go).
        self._key_memo: dict[CounterRef, tuple[str, str, str]] = {}
        self._reserve_memo: dict[tuple[object, ...], tuple[tuple[str, str, str], str]] = {}

    def key(self, ref: CounterRef) -> str:
        return f"{self.prefix}{ref.tag}"

    def _keys(self, ref: CounterRef) -> tuple[str, str, str]:
        keys = self._key_memo.get(ref)
        if keys is None:
            base = self.key(ref)
            keys = remember(self._key_memo, ref, (f"{base}:h", f"{base}:z", f"{base}:t"), _KEY_MEMO_SIZE)
        return keys

    def _trim(self, now_ms: int) -> int:
        return now_ms - self.tombstone_retention * 1000

    # -- reserve ----------------------------------------------------------------------------------------

    def _reserve_call(self, rid: str, holds: Sequence[Hold], now_ms: int, deadline_ms: int) -> ScriptCall:
        # One JSON argument and one bulk-string reply (see reserve.lua): a fraction of what redis-py
        # costs to pack separate arguments and parse a nested reply. Each counter's part is assembled from
        # pieces built once per counter and limits; only the amounts and the expiry change per call.
        keys: list[str] = []
        parts: list[str] = []
        slack = self.key_slack
        for hold in holds:
            counter_keys, fixed = self._reserve_pieces(hold)
            keys.extend(counter_keys)
            charge = 1 if hold.charge_on_expiry else 0
            parts.append(
                f'{fixed},"{hold.usd}","{hold.tokens}","{hold.ref.ttl_ms(now_ms, slack)}",{charge}'
                f"{request_fields(hold)}]"
            )
        payload = "[" + ",".join(parts) + "]"
        return keys, [now_ms, deadline_ms, rid, payload]

    @staticmethod
    def _reserve_reply(holds: Sequence[Hold], reply: object) -> ReserveResult:
        head, *lines = _str(reply).split("\n")
        granted, repeated = head.split()
        checks: list[Check] = []
        for hold, line in zip(holds, lines, strict=True):
            spent_usd, held_usd, spent_tok, held_tok, live, refused_usd, refused_tok, epoch, *fired = (
                line.split()
            )
            spent_req = held_req = 0
            refused_requests = False
            if hold.limit_requests is not None:
                spent_req, held_req, refused_requests, fired = reserve_requests(fired)
            state = CounterState(
                ref=hold.ref,
                spent_usd=int(spent_usd),
                held_usd=int(held_usd),
                spent_tokens=int(spent_tok),
                held_tokens=int(held_tok),
                active=int(live),
                spent_requests=spent_req,
                held_requests=held_req,
            )
            checks.append(
                Check(
                    state,
                    refused_usd=refused_usd == "1",
                    refused_tokens=refused_tok == "1",
                    fired=tuple(m for m in hold.refusal_marks if m.name in fired) if fired else (),
                    epoch=None if epoch == "-" else epoch,
                    refused_requests=refused_requests,
                )
            )
        return ReserveResult(granted=granted == "1", checks=tuple(checks), repeated=repeated == "1")

    def _reserve_pieces(self, hold: Hold) -> tuple[tuple[str, str, str], str]:
        """A counter's keys and the fixed start of its part of the reserve request (an open JSON array)."""
        memo_key = (hold.ref, hold.limit_usd, hold.limit_tokens, hold.enforce, hold.refusal_marks)
        pieces = self._reserve_memo.get(memo_key)
        if pieces is None:
            marks = {mark.unit: mark.name for mark in hold.refusal_marks}
            fixed = [
                "" if hold.limit_usd is None else str(hold.limit_usd),
                "" if hold.limit_tokens is None else str(hold.limit_tokens),
                1 if hold.enforce else 0,
                hold.ref.meta(),
                marks.get("usd", ""),
                marks.get("tokens", ""),
            ]
            pieces = (self._keys(hold.ref), json.dumps(fixed, separators=(",", ":"))[:-1])
            remember(self._reserve_memo, memo_key, pieces, _KEY_MEMO_SIZE)
        return pieces

    # -- settle_many ------------------------------------------------------------------------------------

    def _settle_call(self, requests: Sequence[SettleRequest], now_ms: int) -> ScriptCall:
        # One JSON argument for the whole batch (see settle_many.lua); each distinct counter (with its
        # thresholds) is listed once and spends refer to it by 1-based index. Amounts go as strings.
        index: dict[tuple[CounterRef, tuple[Mark, ...]], int] = {}
        keys: list[str] = []
        counters: list[list[object]] = []
        settlements: list[list[object]] = []
        for request in requests:
            spends = request.spends
            if not spends:
                continue  # a call with no budget, or a cluster slot holding only its spend-ledger entry
            parts: list[list[object]] = []
            for spend in spends:
                ref = spend.ref
                slot = index.get((ref, spend.marks))
                if slot is None:
                    slot = index[(ref, spend.marks)] = len(index) + 1
                    keys.extend(self._keys(ref))
                    thresholds = [[m.name, UNIT_LETTERS[m.unit], str(m.amount)] for m in spend.marks]
                    counters.append([str(ref.ttl_ms(now_ms, self.key_slack)), ref.meta(), thresholds])
                part: list[object] = [slot, str(spend.usd), str(spend.tokens), spend.epoch or ""]
                if spend.requests is not None:
                    part.append(str(spend.requests))
                parts.append(part)
            settlements.append(
                [
                    request.reservation_id,
                    "c" if request.charge else "s",
                    [[field, str(value)] for field, value in tally_items(request.tallies)],
                    parts,
                ]
            )
        payload: dict[str, object] = {"c": counters, "s": settlements}
        if any(r.track is not None for r in requests):
            payload["w"], payload["t"] = track_ops(self.prefix, requests, keys, self.tombstone_retention)
        batch = json.dumps(payload, separators=(",", ":"))
        return keys, [now_ms, self._trim(now_ms), batch]

    @staticmethod
    def _settle_reply(requests: Sequence[SettleRequest], reply: Any) -> list[tuple[SettleOutcome, ...]]:
        rows = iter(reply)
        results: list[tuple[SettleOutcome, ...]] = []
        for request in requests:
            outcomes: list[SettleOutcome] = []
            for spend in request.spends:
                status, spent_usd, held_usd, spent_tokens, held_tokens, live, *fired = _str(
                    next(rows)
                ).split()
                spent_req = held_req = 0
                if spend.requests is not None:
                    spent_req, held_req, fired = settle_requests(fired)
                state = CounterState(
                    ref=spend.ref,
                    spent_usd=int(spent_usd),
                    held_usd=int(held_usd),
                    spent_tokens=int(spent_tokens),
                    held_tokens=int(held_tokens),
                    active=int(live),
                    spent_requests=spent_req,
                    held_requests=held_req,
                )
                reached = tuple(m for m in spend.marks if m.name in fired) if fired else ()
                outcomes.append(SettleOutcome(settle_status(int(status)), state, reached))
            results.append(tuple(outcomes))
        return results

    # -- per-counter scripts (release, forget_spend) and renew ---------------------------------------------

    def _per_counter_call(
        self, refs: Sequence[CounterRef], now_ms: int, args: Sequence[object]
    ) -> ScriptCall:
        """A script that takes each counter's three keys, ``args`` and then each counter's TTL."""
        keys: list[str] = []
        for ref in refs:
            keys.extend(self._keys(ref))
        ttls = [ref.ttl_ms(now_ms, self.key_slack) for ref in refs]
        return keys, [*args, *ttls]

    def _release_call(self, rid: str, refs: Sequence[CounterRef], now_ms: int) -> ScriptCall:
        return self._per_counter_call(refs, now_ms, [now_ms, rid, self._trim(now_ms)])

    @staticmethod
    def _per_counter_reply(reply: Any) -> tuple[bool, ...]:
        """A per-counter script's answer: 1 or 0 per counter."""
        return tuple(_int(x) == 1 for x in reply)

    def _renew_call(
        self, renewals: Sequence[Renewal], now_ms: int, deadline_ms: int
    ) -> tuple[ScriptCall, list[int]]:
        """The renew call, and the order (positions in ``renewals``) its reply comes back in: each counter
        once, with the ids to renew there."""
        counters: dict[CounterRef, list[int]] = {}
        for position, renewal in enumerate(renewals):
            counters.setdefault(renewal.ref, []).append(position)
        keys: list[str] = []
        request: list[list[object]] = []
        order: list[int] = []
        for ref, positions in counters.items():
            keys.extend(self._keys(ref))
            request.append(
                [str(ref.ttl_ms(now_ms, self.key_slack)), [renewals[p].reservation_id for p in positions]]
            )
            order.extend(positions)
        payload = json.dumps(request, separators=(",", ":"))
        return (keys, [now_ms, deadline_ms, payload]), order

    @staticmethod
    def _renew_reply(count: int, order: Sequence[int], reply: object) -> tuple[bool, ...]:
        renewed = [False] * count
        for position, flag in zip(order, _str(reply), strict=True):
            renewed[position] = flag == "1"
        return tuple(renewed)

    # -- read -------------------------------------------------------------------------------------------

    @staticmethod
    def _read_reply(raw: Any) -> list[tuple[CounterState, str]]:
        """The read script's answer: each counter's state (with tallies, fired alerts and the limits last
        reserved under) and its stored identity (empty for a counter that does not exist)."""
        found: list[tuple[CounterState, str]] = []
        for row, meta, extra in raw:
            pairs = [(_str(extra[i]), _str(extra[i + 1])) for i in range(0, len(extra), 2)]
            meta_text = _str(meta)
            state = replace(
                _row(CounterRef.from_meta(meta_text) if meta_text else _PLACEHOLDER, row),
                models=parse_tallies(pairs),
                alerted=tuple(sorted(k[2:] for k, _ in pairs if k.startswith("a:"))),
                limit_usd=_limit(pairs, "lu"),
                limit_tokens=_limit(pairs, "lt"),
            )
            found.append((read_requests(state, pairs), meta_text))
        return found
