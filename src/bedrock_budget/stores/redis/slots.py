"""Redis Cluster without I/O: which hash slot each piece of an operation goes to, and how the per-slot
replies are put back together. Shared by the sync cluster store (:mod:`.cluster`, which fans the slots out
on a thread pool) and the ``redis.asyncio`` one (:mod:`.asyncio_cluster`, which gathers them on the loop).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, TypeVar, cast

from redis.crc import key_slot

from bedrock_budget.errors import StoreError
from bedrock_budget.stores.base import (
    DEFAULT_TOMBSTONE_RETENTION,
    NO_TALLIES,
    Check,
    CounterRef,
    Hold,
    ReserveResult,
    SettleOutcome,
    SettleRequest,
)
from bedrock_budget.stores.tracking import writes

T = TypeVar("T")

#: The part of a settle batch that goes to one slot: (request index, its spend positions, the settlement
#: carrying just what lives in that slot).
SlotPart = list[tuple[int, list[int], SettleRequest]]


def groups(refs: Sequence[CounterRef], slot_of: Callable[[CounterRef], int]) -> list[list[int]]:
    """Positions of ``refs`` grouped by hash slot, in order of first appearance."""
    found: dict[int, list[int]] = {}
    for index, ref in enumerate(refs):
        found.setdefault(slot_of(ref), []).append(index)
    return list(found.values())


def ref_of(item: Any) -> CounterRef:
    return item if isinstance(item, CounterRef) else item.ref


def merge(count: int, slot_groups: Sequence[Sequence[int]], parts: Sequence[Sequence[T]]) -> tuple[T, ...]:
    """Per-slot answers back in the order of the items they answer."""
    merged: list[Any] = [None] * count
    for group, part in zip(slot_groups, parts, strict=True):
        for index, value in zip(group, part, strict=True):
            merged[index] = value
    return tuple(merged)


def reserve_outcome(
    holds: Sequence[Hold],
    slot_groups: Sequence[Sequence[int]],
    parts: Sequence[ReserveResult | BaseException],
) -> tuple[ReserveResult | None, BaseException | None, list[list[CounterRef]]]:
    """A reservation made slot by slot: the whole result (``None`` when a slot failed), the first failure,
    and the counters of the slots that granted but must be released again (the reservation is all or
    nothing)."""
    failure = next((p for p in parts if isinstance(p, BaseException)), None)
    granted = failure is None and all(isinstance(p, ReserveResult) and p.granted for p in parts)
    undo: list[list[CounterRef]] = []
    if not granted:
        undo = [
            [holds[i].ref for i in group]
            for group, part in zip(slot_groups, parts, strict=True)
            if isinstance(part, ReserveResult) and part.granted
        ]
    if failure is not None:
        return None, failure, undo
    checks: list[Check | None] = [None] * len(holds)
    for group, part in zip(slot_groups, parts, strict=True):
        assert isinstance(part, ReserveResult)
        for index, check in zip(group, part.checks, strict=True):
            checks[index] = check
    repeated = all(isinstance(p, ReserveResult) and p.repeated for p in parts)
    result = ReserveResult(
        granted=granted, checks=tuple(c for c in checks if c is not None), repeated=repeated
    )
    return result, None, undo


def settle_parts(
    requests: Sequence[SettleRequest],
    slot_of: Callable[[CounterRef], int],
    prefix: str,
    retention: int = DEFAULT_TOMBSTONE_RETENTION,
) -> list[SlotPart]:
    """One part per slot, carrying the part of every settlement whose counters (and spend ledger
    writes, see ``stores.tracking``) live there. A settlement wholly in one slot goes as it is; one split
    across slots is cut once here (a batch is cut on the settle thread, per call, so this stays cheap)."""
    slots: dict[int, SlotPart] = {}
    for index, request in enumerate(requests):
        by_slot: dict[int, list[int]] = {}
        for position, spend in enumerate(request.spends):
            by_slot.setdefault(slot_of(spend.ref), []).append(position)
        track_slot = None
        if request.track is not None:
            # A call's spend-ledger writes are all in one shard (see stores.tracking): one slot.
            (write,) = writes(prefix, request.reservation_id, request.track, retention)
            track_slot = _tag_slot(write.slot_key)
            by_slot.setdefault(track_slot, [])
        whole = len(by_slot) == 1
        for slot, positions in by_slot.items():
            part = request if whole else _part(request, positions, slot == track_slot)
            slots.setdefault(slot, []).append((index, positions, part))
    return list(slots.values())


def part_requests(part: SlotPart) -> list[SettleRequest]:
    """The settlements one slot's script call carries."""
    return [request for _, _, request in part]


def _part(request: SettleRequest, positions: list[int], tracked_here: bool) -> SettleRequest:
    """The part of a settlement that lives in one slot: some of its spends (and their tallies), and its
    spend-ledger entry when that is written there. Built directly: ``dataclasses.replace`` costs a batch
    several microseconds a call."""
    spends = tuple(request.spends[p] for p in positions)
    return SettleRequest(
        request.reservation_id,
        spends,
        request.tallies if spends else NO_TALLIES,
        request.charge,
        request.track if tracked_here else None,
    )


@lru_cache(maxsize=1024)
def _tag_slot(key: str) -> int:
    return int(key_slot(key.encode("utf-8")))


def merge_settled(
    requests: Sequence[SettleRequest],
    parts: Sequence[SlotPart],
    gathered: Sequence[list[tuple[SettleOutcome, ...]] | BaseException],
) -> list[tuple[SettleOutcome, ...] | StoreError]:
    """Each settlement's outcomes from the slots' replies, or the error of a slot it had a part in."""
    merged: list[list[SettleOutcome | None]] = [[None] * len(request.spends) for request in requests]
    failed: dict[int, StoreError] = {}
    for part, result in zip(parts, gathered, strict=True):
        if isinstance(result, BaseException):
            if not isinstance(result, StoreError):
                raise result
            for index, _, _ in part:
                failed.setdefault(index, result)
            continue
        for (index, positions, _), outcomes in zip(part, result, strict=True):
            for position, outcome in zip(positions, outcomes, strict=True):
                merged[index][position] = outcome
    # Every spend is in exactly one slot's part, so a settlement no slot failed has all its outcomes.
    return [
        failed[index] if index in failed else cast(tuple[SettleOutcome, ...], tuple(outcomes))
        for index, outcomes in enumerate(merged)
    ]
