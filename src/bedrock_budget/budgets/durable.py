"""A local journal file for settlements not yet in the store, so a killed process does not lose them.

Without it, settlements queued in memory (``settle_mode="background"``) and spend journalled during a store
outage (``on_store_error="allow"``) die with the process. With ``Ledger(journal_path=DIR)`` each ledger
appends every such settlement to a file of its own in ``DIR`` before it is queued, and a line saying it was
applied once the store took it:

- Durability: each record is one ``write`` to a file opened for appending, so it is in the kernel before
  the call returns and survives the process being killed; the file is fsync'd once per settle batch (and
  whenever outage spend is journalled), so a crash of the machine loses at most the batch in progress.
- Ownership: a ledger holds an exclusive ``flock`` on its own file for as long as it lives. The kernel
  drops the lock when the process dies, however it dies.
- Replay, exactly once: a ledger opening ``DIR`` takes over every file whose lock it can get (its owner is
  gone), reads the settlements not marked applied, appends them to its own file, deletes the old one and
  replays them through its outage journal. Two processes starting at once never take over the same file
  (the lock), and a settlement applied twice changes nothing, because the store applies a reservation id's
  settlement at most once per counter, so a takeover or replay that was itself killed half-way is simply
  done again by the next process.
- Identity: a settlement is known in the file by its reservation id and the counters it settles
  (:func:`journal_key`), since the capacity leases one request took share a reservation id and each
  settles apart. An "applied" line of an older file names the reservation id alone, and is still honoured;
  an "applied" line also names the reservation id once none of its settlements is pending, so an older
  version taking a file over (a rollback) does not replay what was applied.
- Size: once nothing is pending, a file larger than ``compact_bytes`` is truncated; a ledger closed with
  nothing pending deletes its file.

Records are JSON lines holding ids, counter names, amounts and token counts — never prompt or completion
text. A torn last line (the process was killed mid-write) is ignored: its settlement had not been queued. Each
record is one :class:`~bedrock_budget.stores.base.SettleRequest`; records of the earlier format (a model
and its raw token counts instead of tallies) are still read, so a file left by an older version replays.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from bedrock_budget.errors import ConfigurationError
from bedrock_budget.stores.base import CounterRef, Mark, SettleRequest, Spend, call_tallies
from bedrock_budget.stores.tracking import TrackEntry

log = logging.getLogger("bedrock_budget.journal")

SUFFIX: Final = ".journal"
DEFAULT_COMPACT_BYTES: Final = 1 << 20


def encode(request: SettleRequest) -> dict[str, Any]:
    return {
        "id": request.reservation_id,
        "spends": [
            {
                "ref": s.ref.meta(),
                "usd": s.usd,
                "tokens": s.tokens,
                "marks": [[m.unit, m.percent, m.amount] for m in s.marks],
                "epoch": s.epoch,
                **({} if s.requests is None else {"requests": s.requests}),
            }
            for s in request.spends
        ],
        "charge": request.charge,
        "tallies": {model: dict(counts) for model, counts in request.tallies.items()},
        **({} if request.track is None else {"track": encode_track(request.track)}),
    }


def encode_track(entry: TrackEntry) -> dict[str, Any]:
    return {
        "at": entry.at,
        "cost": entry.cost,
        "tokens": [list(p) for p in entry.tokens],
        "dims": [list(p) for p in entry.dims],
        "keep": [entry.hourly_days, entry.daily_days],
        **({} if entry.calls == 1 else {"calls": entry.calls}),
    }


def decode_track(data: Mapping[str, Any] | None) -> TrackEntry | None:
    if data is None:
        return None
    hourly, daily = data["keep"]
    return TrackEntry(
        at=int(data["at"]),
        cost=int(data["cost"]),
        tokens=tuple((str(k), int(n)) for k, n in data["tokens"]),
        dims=tuple((str(d), str(v)) for d, v in data["dims"]),
        hourly_days=int(hourly),
        daily_days=int(daily),
        calls=int(data.get("calls", 1)),
    )


def decode(data: Mapping[str, Any]) -> SettleRequest:
    spends = tuple(
        Spend(
            ref=CounterRef.from_meta(s["ref"]),
            usd=int(s["usd"]),
            tokens=int(s["tokens"]),
            marks=tuple(Mark(unit, int(percent), int(amount)) for unit, percent, amount in s["marks"]),
            epoch=s["epoch"],
            requests=None if s.get("requests") is None else int(s["requests"]),
        )
        for s in data["spends"]
    )
    tallies = data.get("tallies")
    if tallies is None:
        # Written before settlements carried their tallies: one call of ``model`` with raw ``counts``.
        model = data.get("model")
        counts = {str(k): int(v) for k, v in data.get("counts", {}).items()}
        cost = int(data.get("cost", 0))
        tallies = {} if model is None else call_tallies(str(model), cost, counts)
    return SettleRequest(
        reservation_id=str(data["id"]),
        spends=spends,
        tallies=MappingProxyType(
            {str(m): MappingProxyType({str(k): int(v) for k, v in c.items()}) for m, c in tallies.items()}
        ),
        charge=bool(data["charge"]),
        track=decode_track(data.get("track")),
    )


def journal_key(request: SettleRequest) -> str:
    """What tells a settlement apart in a journal file: its reservation id, and the counters it settles.
    The capacity leases one request took share its reservation id and each settles its own counter, when
    it closes: by the id alone, the file would keep one of them and lose the others' spend."""
    spends = request.spends
    if not spends:
        return request.reservation_id
    return f"{request.reservation_id}/{'+'.join(spend.ref.tag for spend in spends)}"


def pending_in(lines: Iterable[bytes]) -> list[SettleRequest]:
    """The settlements a journal file holds that it does not mark applied, oldest first."""
    added: dict[str, SettleRequest] = {}
    for line in lines:
        try:
            record = json.loads(line)
            if "a" in record:
                entry = decode(record["a"])
                added.setdefault(journal_key(entry), entry)
            else:
                for key in record["d"]:
                    if added.pop(key, None) is None:
                        _forget_reservation(added, key)
        except (ValueError, KeyError, TypeError):
            # A torn last line, or damage: a settlement that was never fully written was never queued.
            log.warning("skipping an unreadable line of a settlement journal")
    return list(added.values())


def _forget_reservation(added: dict[str, SettleRequest], rid: str) -> None:
    # A file written before settlements were told apart by their counters marks them applied by
    # reservation id.
    for key in [key for key, entry in added.items() if entry.reservation_id == rid]:
        del added[key]


class JournalFile:
    """This ledger's journal file in ``directory`` (see the module docstring)."""

    def __init__(
        self, directory: str | os.PathLike[str], *, compact_bytes: int = DEFAULT_COMPACT_BYTES
    ) -> None:
        self.directory = Path(directory)
        self.compact_bytes = compact_bytes
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot create the journal directory {str(self.directory)!r}: {exc.strerror}"
            ) from exc
        self._open_own()

    def _open_own(self) -> None:
        self._lock = threading.Lock()
        self._pending: set[str] = set()
        self._dirty = False
        self._size = 0
        self.path = self.directory / f"{os.getpid()}-{os.urandom(6).hex()}{SUFFIX}"
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot create a journal file in {str(self.directory)!r}: {exc.strerror}"
            ) from exc
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._fd: int | None = fd

    def after_fork(self) -> None:
        """In a forked child: the parent's file (and lock) stay the parent's; the child starts its own."""
        self._open_own()

    # -- taking over what dead processes left -------------------------------------------------------------

    def take_over(self) -> list[SettleRequest]:
        """Every settlement pending in files whose owner is gone, now pending in this ledger's file."""
        adopted: list[SettleRequest] = []
        for path in sorted(self.directory.glob(f"*{SUFFIX}")):
            if path == self.path:
                continue
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                continue  # another process took it over meanwhile
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its owner is alive, or another process is taking it over
                try:
                    if os.stat(path).st_ino != os.fstat(fd).st_ino:
                        continue
                except FileNotFoundError:
                    continue  # taken over and deleted between our open and our lock
                with os.fdopen(os.dup(fd), "rb") as stream:
                    entries = pending_in(stream)
                # Into this file first, durably, and only then is the old file deleted: a crash in between
                # leaves the settlements in both, which replays them twice, harmlessly (see the docstring).
                for entry in entries:
                    self.add(entry)
                self.sync()
                path.unlink()
                if entries:
                    log.warning(
                        "replaying %d settlements a stopped process left in %s", len(entries), path.name
                    )
                adopted.extend(entries)
            finally:
                os.close(fd)
        return adopted

    # -- this ledger's records ----------------------------------------------------------------------------

    def add(self, entry: SettleRequest) -> None:
        """Record a settlement not yet in the store (once: see :func:`journal_key`)."""
        key = journal_key(entry)
        if key in self._pending:
            return
        line = json.dumps({"a": encode(entry)}, separators=(",", ":")).encode() + b"\n"
        with self._lock:
            self._pending.add(key)
            self._write(line)

    def done(self, entries: Iterable[SettleRequest]) -> None:
        """Mark settlements applied by the store."""
        with self._lock:
            applied = [key for key in map(journal_key, entries) if key in self._pending]
            if not applied:
                return
            self._pending.difference_update(applied)
            if not self._pending and self._size >= self.compact_bytes and self._fd is not None:
                # Nothing pending: the whole file is history.
                os.ftruncate(self._fd, 0)
                self._size = 0
                return
            self._write(
                json.dumps({"d": applied + self._bare_ids(applied)}, separators=(",", ":")).encode() + b"\n"
            )

    def _bare_ids(self, applied: list[str]) -> list[str]:
        """The reservation ids of ``applied`` none of whose settlements is pending any more: written with the
        keys so that an older version taking this file over, which marks settlements applied by reservation
        id alone, does not replay them (an id written while another of its settlements was pending would
        make it skip that one)."""
        ids = {key.partition("/")[0] for key in applied if "/" in key}
        if not ids:
            return []
        pending = {key.partition("/")[0] for key in self._pending}
        return sorted(ids - pending)

    def _write(self, line: bytes) -> None:
        # Called with the lock held. One write per record on an O_APPEND file: in the kernel at once.
        if self._fd is None:
            return
        os.write(self._fd, line)
        self._size += len(line)
        self._dirty = True

    def sync(self) -> None:
        """fsync what was written since the last sync (once per settle batch)."""
        fd = self._fd
        if fd is not None and self._dirty:
            self._dirty = False
            os.fsync(fd)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def close(self) -> None:
        """Delete the file when nothing is pending, else keep it for the next process; drop the lock."""
        with self._lock:
            fd, self._fd = self._fd, None
            if fd is None:
                return
            try:
                if not self._pending:
                    self.path.unlink(missing_ok=True)
                else:
                    os.fsync(fd)
                    log.error(
                        "%d settlements the budget store never took stay in %s for the next process",
                        len(self._pending),
                        self.path,
                    )
            finally:
                os.close(fd)
