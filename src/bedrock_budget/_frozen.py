"""Frozen slotted dataclasses built at the speed of mutable ones, for values made on every call.

A frozen dataclass's generated ``__init__`` stores each field through ``object.__setattr__`` (it has to step
around its own ``__setattr__``, which refuses), several times slower than the plain slot stores of a
mutable dataclass: for a 26-field call record that is most of the record's cost. :func:`fast_builder`
returns a function with the class's own fields, defaults and ``__post_init__`` that fills a mutable twin
with the same slots and then makes it an instance of the frozen class — a genuine, frozen instance, equal
to what the class's constructor gives for the same arguments.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def fast_builder(cls: type[T], *, post_init: bool = True) -> Callable[..., T]:
    """A builder of ``cls`` instances (a frozen dataclass with ``slots=True``) that takes the same
    arguments as ``cls``. ``post_init=False`` skips ``__post_init__``: only for values the caller has
    already checked."""
    if not dataclasses.is_dataclass(cls) or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__} is not a slotted dataclass")
    spec: list[tuple[str, Any, Any]] = []
    for item in dataclasses.fields(cls):
        default: Any = dataclasses.field()
        if item.default is not dataclasses.MISSING:
            default = dataclasses.field(default=item.default)
        elif item.default_factory is not dataclasses.MISSING:
            default = dataclasses.field(default_factory=item.default_factory)
        spec.append((item.name, item.type, default))
    namespace: dict[str, Any] = {}
    hook = getattr(cls, "__post_init__", None)
    if post_init and hook is not None:
        namespace["__post_init__"] = hook
    twin: Any = dataclasses.make_dataclass(
        f"_{cls.__name__}Builder", spec, namespace=namespace, slots=True, eq=False, repr=False
    )
    if twin.__slots__ != cls.__dict__["__slots__"]:
        raise TypeError(f"{cls.__name__} has slots beyond its fields")

    def build(*args: Any, **kwargs: Any) -> T:
        value = twin(*args, **kwargs)
        # Same slots in the same order: the object becomes a cls, frozen from here on.
        value.__class__ = cls
        return value  # type: ignore[no-any-return]

    build.__doc__ = f"Build a {cls.__name__} (see {cls.__name__} for the fields)."
    return build
