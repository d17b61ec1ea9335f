"""Redis Cluster faults under load: a master killed and restarted, a slot migrated between masters.

Each test starts its own three-master cluster without replicas (AOF with fsync on every write, so a killed
master comes back with what it acknowledged) and drives wrapped clients from several threads against the
fake Bedrock.

What the client does while a master is down: with no replica there is no failover, so the dead master's
slots simply have no server. Every store operation touching them fails fast (connection refused; redis-py
re-reads the topology, still finds the dead node as the owner and gives up) and the ledger applies the
outage policy: ``deny`` refuses the call with ``StoreUnavailableError`` before it reaches Bedrock; ``allow``
lets it through without a hold and journals its spend. Counters on the other masters keep working: the
tests run with ``cluster-require-full-coverage no`` and a node timeout longer than the outage; with the
default ``yes``, once the node timeout marks the master failed, every node answers CLUSTERDOWN and all
calls fall under the outage policy until it returns. A settlement that cannot reach its master is
journalled and replayed once the master is back; a reserve that was applied but whose reply was lost
expires after the reservation TTL.

During a slot migration redis-py follows the ASK and MOVED redirections; a script whose keys are split
between the two masters at that instant gets TRYAGAIN, which the ledger treats as an outage for that one
operation.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest
from redis.crc import key_slot

import bedrock_budget as bb
from bedrock_budget.budgets import Ledger
from bedrock_budget.stores import CounterRef, from_uri
from bedrock_budget.testing import FakeBedrock, UsageSpec
from fake_bedrock_fixtures import Records
from polling import wait_until

from .conftest import HAIKU, MESSAGES, NANOS_PER_USD, Cluster, unique_prefix

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

NODE_OPTIONS = (
    "--cluster-node-timeout", "20000",
    "--cluster-require-full-coverage", "no",
    "--appendonly", "yes",
    "--appendfsync", "always",
)  # fmt: skip
USERS = [f"user-{n}" for n in range(10)]
TTL = 3.0
USER_LIMIT = "0.003"


class Load:
    """Threads calling Bedrock through one wrapped client, for users in turn, until told to stop."""

    def __init__(self, client: Any, threads: int = 4, max_calls: int = 20000) -> None:
        self.client = client
        self.stop = threading.Event()
        self.outcomes: dict[str, int] = defaultdict(int)
        self.unexpected: list[BaseException] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(n, max_calls)) for n in range(threads)]

    def _run(self, seed: int, max_calls: int) -> None:
        for index in range(max_calls):
            if self.stop.is_set():
                return
            user = USERS[(seed * 7 + index) % len(USERS)]
            try:
                with bb.attribute(user=user):
                    self.client.converse(modelId=HAIKU, messages=MESSAGES, inferenceConfig={"maxTokens": 64})
                outcome = "ok"
            except bb.StoreUnavailableError:
                outcome = "unavailable"
            except bb.BudgetExceededError:
                outcome = "refused"
            except BaseException as exc:
                with self._lock:
                    self.unexpected.append(exc)
                return
            with self._lock:
                self.outcomes[outcome] += 1
            time.sleep(0.002)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(30)
        assert not any(thread.is_alive() for thread in self._threads)


def metered(
    fake: FakeBedrock, cluster: Cluster, records: Records, policy: str, budgets: list[bb.Budget]
) -> tuple[Ledger, Any]:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=100, output_tokens=20))
    store = from_uri(cluster.url, prefix=unique_prefix(), socket_timeout=0.5, connect_timeout=0.2)
    ledger = Ledger(store, budgets, on_store_error=policy, reservation_ttl=TTL)  # type: ignore[arg-type]
    return ledger, bb.wrap(fake.client(), ledger=ledger, listeners=[records])


def slot_of(ledger: Ledger, budget: bb.Budget, scope: dict[str, str]) -> int:
    start, end = budget.window.bounds(time.time())
    ref = CounterRef(
        budget.name, tuple(sorted(scope.items())), budget.window.kind, budget.timezone, start, end
    )
    return key_slot(ledger.store.key(ref).encode())


def served(records: Records, since: int, users: set[str] | None = None) -> bool:
    """Whether a call recorded after the first ``since`` records, for one of ``users`` (any user when
    None), went through."""
    return any(
        r.outcome == "ok" and (users is None or r.attribution["user"] in users) for r in list(records)[since:]
    )


def more_calls(records: Records, load: Load, what: str, count: int = 5) -> None:
    """Wait until ``count`` more calls are recorded: the load has run against the current cluster state."""
    mark = len(records)
    wait_until(lambda: len(records) >= mark + count, 30, message=lambda: f"{what} ({load.outcomes})")


def spent_by_user(records: Records) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for record in records:
        if record.cost is not None:
            totals[record.attribution["user"]] += record.cost.total_nanos
    return totals


@pytest.mark.parametrize("policy", ["deny", "allow"])
def test_master_killed_and_restarted_during_load(
    fake: FakeBedrock, cluster_factory: Callable[..., Cluster], records: Records, policy: str
) -> None:
    cluster = cluster_factory(3, *NODE_OPTIONS)
    per_user = bb.Budget("per-user", scope={"user": "*"}, window="lifetime", limit_usd=USER_LIMIT)
    ledger, client = metered(fake, cluster, records, policy, [per_user])
    try:
        owners = {user: cluster.owner(slot_of(ledger, per_user, {"user": user})) for user in USERS}
        victim = max(set(owners.values()), key=lambda port: sum(p == port for p in owners.values()))
        on_victim = {user for user, port in owners.items() if port == victim}
        assert 0 < len(on_victim) < len(USERS)

        with Load(client) as load:
            # The load reaches every master before the kill...
            wait_until(
                lambda: served(records, 0, on_victim) and served(records, 0, set(USERS) - on_victim),
                30,
                message=lambda: f"calls served on the victim and on the other masters ({load.outcomes})",
            )
            cluster.kill(victim)
            killed = len(records)

            # ...goes on against the other masters while it is down, and meets the outage on the victim:
            # refused as unavailable (deny), or let through with its spend journalled (allow).
            def outage_seen() -> bool:
                met = load.outcomes["unavailable"] > 0 if policy == "deny" else ledger.journal_depth > 0
                return met and served(records, killed, set(USERS) - on_victim)

            wait_until(outage_seen, 30, message=lambda: f"the outage to be met under load ({load.outcomes})")
            during = [r for r in list(records)[killed:] if r.attribution["user"] not in on_victim]
            cluster.server(victim).start()
            cluster.wait_ok()
            restarted = len(records)
            # ...and reaches the restarted master again before it stops.
            wait_until(
                lambda: any(
                    r.attribution["user"] in on_victim and r.error_code != "StoreUnavailableError"
                    for r in list(records)[restarted:]
                ),
                30,
                message=lambda: f"a call on the restarted master ({load.outcomes})",
            )
        assert not load.unexpected, load.unexpected
        assert load.outcomes["ok"] > 0
        assert any(r.outcome == "ok" for r in during)  # the other masters kept serving

        unavailable = [r for r in records if r.error_code == "StoreUnavailableError"]
        if policy == "deny":
            assert load.outcomes["unavailable"] > 0
            assert {r.attribution["user"] for r in unavailable} <= on_victim
        else:
            assert load.outcomes["unavailable"] == 0
        assert fake.request_count == sum(r.outcome == "ok" for r in records)

        assert ledger.flush() == 0
        # A reserve applied just before the kill whose reply was lost is held until its TTL.
        wait_until(
            lambda: all(ledger.read("per-user", {"user": u}).reserved_usd == 0 for u in USERS),
            TTL + 5,
            message="every hold to be settled or expire",
        )
        expected = spent_by_user(records)
        limit = int(per_user.limit_usd * NANOS_PER_USD) if per_user.limit_usd is not None else 0
        for user in USERS:
            status = ledger.read("per-user", {"user": user})
            assert status.spent_usd * NANOS_PER_USD == expected[user], user
            if policy == "deny" or user not in on_victim:
                assert status.spent_usd * NANOS_PER_USD <= limit, user
    finally:
        ledger.close()
        ledger.store.close()


def test_slot_migrated_during_load(
    fake: FakeBedrock, cluster_factory: Callable[..., Cluster], records: Records
) -> None:
    cluster = cluster_factory(3, *NODE_OPTIONS)
    total = bb.Budget("total", window="lifetime", limit_usd="0.02")
    per_user = bb.Budget("per-user", scope={"user": "*"}, window="lifetime", limit_usd="1")
    ledger, client = metered(fake, cluster, records, "deny", [total, per_user])
    try:
        slot = slot_of(ledger, total, {})
        source = cluster.owner(slot)
        target = next(s.port for s in cluster.servers if s.port != source)
        source_id, target_id = cluster.node_id(source), cluster.node_id(target)

        with Load(client) as load:
            wait_until(lambda: served(records, 0), 30, message=lambda: f"a call served ({load.outcomes})")
            cluster.command(target, "CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
            cluster.command(source, "CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
            more_calls(records, load, "calls while the slot is marked migrating")
            for _ in range(100):
                keys = cluster.command(source, "CLUSTER", "GETKEYSINSLOT", slot, 100)
                if not keys:
                    break
                cluster.command(source, "MIGRATE", "127.0.0.1", target, "", 0, 5000, "KEYS", *keys)
                more_calls(records, load, "calls between two MIGRATE batches")
            for server in cluster.servers:
                cluster.command(server.port, "CLUSTER", "SETSLOT", slot, "NODE", target_id)
            # Keep the load on until the total budget runs out on the new master: the cap is exercised.
            wait_until(
                lambda: load.outcomes.get("refused", 0) > 0,
                30,
                message=lambda: f"the total budget to refuse a call ({load.outcomes})",
            )
        assert not load.unexpected, load.unexpected
        assert cluster.owner(slot) == target
        assert load.outcomes["ok"] > 0

        assert ledger.flush() == 0
        wait_until(
            lambda: ledger.read("total").reserved_usd == 0, TTL + 5, message="every hold to settle or expire"
        )
        status = ledger.read("total")
        ok = [r for r in records if r.cost is not None]
        assert status.spent_usd * NANOS_PER_USD == sum(r.cost.total_nanos for r in ok if r.cost)
        assert status.spent_usd <= total.limit_usd  # type: ignore[operator]
        assert fake.request_count == len(ok)
        expected = spent_by_user(records)
        for user in USERS:
            assert ledger.read("per-user", {"user": user}).spent_usd * NANOS_PER_USD == expected[user]
    finally:
        ledger.close()
        ledger.store.close()
