"""The Redis stores build each counter's key names, reserve request pieces and hash slot once, in memos
bounded at 4096 entries each."""

from __future__ import annotations

import fakeredis

from bedrock_budget.stores import CounterRef, Hold, from_uri
from bedrock_budget.stores.redis import RedisClusterStore, RedisStore
from service_fixtures import free_port

BOUND = 4096


def _ref(number: int) -> CounterRef:
    return CounterRef(budget=f"b{number}", scope=(), window="lifetime", timezone="UTC", start=0, end=None)


def test_key_and_reserve_memos_are_emptied_past_their_bound() -> None:
    store = RedisStore(fakeredis.FakeRedis())
    for number in range(BOUND):
        hold = Hold(ref=_ref(number), limit_usd=10, limit_tokens=None, usd=1, tokens=0)
        assert store._reserve_pieces(hold)[0] == store._keys(hold.ref)
    assert (len(store._key_memo), len(store._reserve_memo)) == (BOUND, BOUND)
    first = store._keys(_ref(0))
    assert store._keys(_ref(0)) is first  # a hit
    store._keys(_ref(BOUND))
    assert store._key_memo == {_ref(BOUND): store._keys(_ref(BOUND))}
    store._reserve_pieces(Hold(ref=_ref(BOUND), limit_usd=10, limit_tokens=None, usd=1, tokens=0))
    assert len(store._reserve_memo) == 1
    store.close()


def test_the_cluster_slot_memo_is_emptied_past_its_bound() -> None:
    store = from_uri(f"redis+cluster://127.0.0.1:{free_port()}")  # slots need no connection
    assert isinstance(store, RedisClusterStore)
    slots = [store._slot(_ref(number)) for number in range(BOUND)]
    assert len(store._slot_memo) == BOUND
    assert store._slot(_ref(BOUND)) == store._slot(_ref(BOUND))
    assert len(store._slot_memo) == 1
    assert [store._slot(_ref(number)) for number in range(BOUND)] == slots
    store.close()
