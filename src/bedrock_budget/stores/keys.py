"""Store key layout.

One budget window is one *counter*, held in three keys that share a hash tag (so they live in one Redis
Cluster slot)::

    <prefix>{<budget>|<k>=<v>,<k>=<v>|<window>|<start>}:h   hash: totals, holds, alert markers, tallies
    <prefix>{...}:z                                          zset: live reservation id -> deadline (ms)
    <prefix>{...}:t                                          zset: tombstones -> time (ms)

``<start>`` is the window start in epoch seconds; the limit never appears, so changing a limit keeps the
spend of the current window. Every name and value is percent-encoded (only ``A-Za-z0-9-._~@`` pass), so
``{``, ``}``, ``:``, ``*``, ``|``, ``,``, ``=`` and newlines cannot end the tag early or address another
key; an encoded part longer than 64 characters becomes ``#`` + 32 hex digits of its SHA-256 (``#`` is
itself always encoded, so the two forms cannot collide). The raw names are kept in the hash's ``meta``
field for listings.

Hash fields: ``su``/``st`` spent nano-dollars / milli-tokens, ``hu``/``ht`` held, ``r:<id>`` one hold
(``"<nanos> <milli>"``), ``a:<u|t><percent>`` alert markers, ``m:<model>:<type>`` per-model tallies.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import quote

_SAFE = "-._~@"
_MAX_PART = 64
_PREFIX = re.compile(r"[A-Za-z0-9_.:/-]{0,64}")


def encode_part(value: str) -> str:
    raw = value.encode("utf-8", "surrogatepass")
    encoded = quote(raw, safe=_SAFE)
    if len(encoded) > _MAX_PART:
        return "#" + hashlib.sha256(raw).hexdigest()[:32]
    return encoded


def counter_tag(budget: str, scope: tuple[tuple[str, str], ...], window: str, start: int) -> str:
    pairs = ",".join(f"{encode_part(k)}={encode_part(v)}" for k, v in scope)
    return f"{{{encode_part(budget)}|{pairs}|{window}|{start}}}"


def check_prefix(prefix: str) -> str:
    """Prefixes may not contain braces (they would move the hash tag) or glob characters (they would
    break listing)."""
    if not isinstance(prefix, str) or not _PREFIX.fullmatch(prefix):
        raise ValueError(f"key prefix {prefix!r} must be at most 64 characters of A-Z a-z 0-9 _ . : / -")
    return prefix
