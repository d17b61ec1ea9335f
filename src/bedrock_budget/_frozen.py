"""Frozen slotted dataclasses built at the speed of mutable ones, for values made on every call.

A frozen dataclass's generated ``__init__`` stores each field through ``object.__setattr__`` (it has to step
around its own ``__setattr__``, which refuses), several times slower than the plain slot stores of a
mutable dataclass: for a 26-field call record that is most of the record's cost. :func:`fast_builder`
returns a function with the class's own fields, defaults and ``__post_init__`` that fills a mutable twin
with the same slots and then makes it an instance of the frozen class — a genuine, frozen instance, equal
to what the class's constructor gives for the same arguments. The function is generated with the class's
own parameter list, as ``dataclasses`` generates ``__init__``.
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
    slots = cls.__dict__["__slots__"]
    fields = dataclasses.fields(cls)
    if tuple(slots) != tuple(item.name for item in fields):
        raise TypeError(f"{cls.__name__} has slots beyond its fields")
    if not all(item.init for item in fields):
        raise TypeError(f"{cls.__name__} has fields outside __init__")
    # The mutable twin: the same slots in the same order, so an instance can become a cls in place.
    twin = type(f"_{cls.__name__}Builder", (), {"__slots__": slots})
    names: dict[str, Any] = {"_new": object.__new__, "_twin": twin, "_cls": cls, "_MISSING": _MISSING}
    params: list[str] = []
    body: list[str] = []
    keyword_only = False
    for i, item in enumerate(fields):
        if item.kw_only and not keyword_only:
            params.append("*")
            keyword_only = True
        if item.default is not dataclasses.MISSING:
            names[f"_default_{i}"] = item.default
            params.append(f"{item.name}=_default_{i}")
            body.append(f"    self.{item.name} = {item.name}")
        elif item.default_factory is not dataclasses.MISSING:
            names[f"_factory_{i}"] = item.default_factory
            params.append(f"{item.name}=_MISSING")
            body.append(f"    self.{item.name} = _factory_{i}() if {item.name} is _MISSING else {item.name}")
        else:
            params.append(item.name)
            body.append(f"    self.{item.name} = {item.name}")
    hook = getattr(cls, "__post_init__", None)
    if post_init and hook is not None:
        names["_post_init"] = hook
        body.append("    _post_init(self)")
    # One generated function with the class's own parameters, as dataclasses generates ``__init__``: no
    # second frame and no repacking of the arguments. Field names are identifiers (dataclasses checked).
    source = (
        f"def build({', '.join(params)}):\n"
        "    self = _new(_twin)\n" + "\n".join(body) + "\n    self.__class__ = _cls\n    return self\n"
    )
    exec(source, names)  # the source is built above from the dataclass's own field names
    build: Callable[..., T] = names["build"]
    build.__doc__ = f"Build a {cls.__name__} (see {cls.__name__} for the fields)."
    build.__qualname__ = build.__name__ = f"build_{cls.__name__}"
    return build


class _Missing:
    """The default of a parameter whose field has a default factory."""

    def __repr__(self) -> str:
        return "<factory default>"


_MISSING = _Missing()
