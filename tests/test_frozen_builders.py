"""``fast_builder`` gives the same frozen values as the classes' own constructors, only faster."""

from __future__ import annotations

import dataclasses
import pickle
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from bedrock_budget._frozen import fast_builder
from bedrock_budget.errors import InvalidUsageError
from bedrock_budget.extract.types import Extracted, build_extracted
from bedrock_budget.records import CallRecord, build_record
from bedrock_budget.usage import Usage

RECORD_ARGS = {
    "operation": "Converse",
    "model_id": "anthropic.claude-3-5-haiku-20241022-v1:0",
    "requested_model_id": "us.anthropic.claude-3-5-haiku-20241022-v1:0",
    "region": "us-east-1",
    "route": "geo",
    "attribution": {"user": "u-1"},
    "usage": Usage(input_tokens=12, output_tokens=3),
    "cost": None,
    "outcome": "ok",
    "request_id": "r-1",
    "budget_warnings": ("daily",),
    "timestamp": datetime(2026, 12, 4, tzinfo=UTC),
}


def test_a_built_record_is_the_record_the_constructor_gives() -> None:
    built = build_record(**RECORD_ARGS)
    made = CallRecord(**RECORD_ARGS)
    assert type(built) is CallRecord
    assert built == made
    assert repr(built) == repr(made)
    assert pickle.loads(pickle.dumps(built)) == made
    assert dataclasses.replace(built, outcome="error") == dataclasses.replace(made, outcome="error")
    assert built.as_dict() == made.as_dict()


def test_a_built_record_is_frozen() -> None:
    built = build_record(**RECORD_ARGS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.outcome = "error"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del built.outcome  # type: ignore[misc]


def test_defaults_and_factories_are_the_classes_own() -> None:
    args = {k: v for k, v in RECORD_ARGS.items() if k not in ("timestamp", "budget_warnings")}
    before = datetime.now(UTC)
    built = build_record(**args)
    assert built.budget_warnings == ()
    assert before <= built.timestamp <= datetime.now(UTC)
    assert build_extracted(Usage(), "none") == Extracted(Usage(), "none")


def test_post_init_checks_run_unless_the_caller_vouches_for_the_values() -> None:
    with pytest.raises(InvalidUsageError):
        fast_builder(Usage)(input_tokens=-1)
    assert fast_builder(Usage)(input_tokens=5) == Usage(input_tokens=5)


def test_wrong_arguments_fail_as_the_constructor_fails() -> None:
    with pytest.raises(TypeError):
        build_record(operation="Converse")
    with pytest.raises(TypeError):
        build_record(**RECORD_ARGS, colour="blue")


def test_only_slotted_dataclasses_without_extra_slots_are_accepted() -> None:
    @dataclass(frozen=True)
    class NoSlots:
        value: int = 0

    class Plain:
        __slots__ = ("value",)

    @dataclass(frozen=True, slots=True, weakref_slot=True)
    class WithWeakref:
        value: int = field(default=0)

    for cls in (NoSlots, Plain):
        with pytest.raises(TypeError):
            fast_builder(cls)
    with pytest.raises(TypeError):
        fast_builder(WithWeakref)
