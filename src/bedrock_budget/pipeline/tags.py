"""Request tags: the call's attribution copied into Converse ``requestMetadata``, so that Bedrock's
model-invocation logs (and what is built on them) carry the same user / app / team as our records.

Bedrock's limits (the bedrock-runtime API model): at most 16 entries; keys 1-256 and values 0-256
characters of ``[a-zA-Z0-9\\s:_@$#=/+,-.]``. Attribution keys and values always fit that alphabet (see
``attribution``), so the only thing that can keep a tag out is the entry limit: what the caller set comes
first and is never overwritten, and tags that do not fit are dropped and counted.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Final

logger = logging.getLogger("bedrock_budget")

MAX_ENTRIES: Final = 16
_ALLOWED: Final = re.compile(r"[a-zA-Z0-9\s:_@$#=/+,\-.]{0,256}\Z")
#: The operations whose request has a ``requestMetadata`` member.
TAGGED_OPERATIONS: Final = frozenset({"Converse", "ConverseStream"})


class RequestTagger:
    """Merges attribution into ``requestMetadata``. ``keys``: the attribution keys to copy (``None``: all).

    ``dropped`` counts tags left out (entry limit reached, or a value outside Bedrock's alphabet).
    """

    def __init__(self, keys: Iterable[str] | None = None) -> None:
        self.keys: tuple[str, ...] | None = None if keys is None else tuple(keys)
        self.dropped = 0
        self._lock = threading.Lock()
        self._warned = False

    def merged(self, attribution: Mapping[str, str], sent: object) -> dict[str, str] | None:
        """The ``requestMetadata`` to send, or ``None`` to leave the request as it is (nothing to add, or
        the caller's value is not a map, which Bedrock's own validation will report)."""
        if sent is not None and not isinstance(sent, Mapping):
            return None
        tags = dict(sent) if sent else {}
        keys = attribution if self.keys is None else [key for key in self.keys if key in attribution]
        dropped = 0
        added = False
        for key in keys:
            if key in tags:
                continue  # the caller's own value wins
            value = attribution[key]
            if len(tags) >= MAX_ENTRIES or not _ALLOWED.match(value):
                dropped += 1
                continue
            tags[key] = value
            added = True
        if dropped:
            self._count_dropped(dropped)
        return tags if added else None

    def _count_dropped(self, count: int) -> None:
        with self._lock:
            self.dropped += count
            warn, self._warned = not self._warned, True
        if warn:
            logger.warning(
                "bedrock-budget: %d attribution tag(s) left out of requestMetadata (Bedrock allows %d "
                "entries); further drops are counted in the meter's request_tagger.dropped",
                count,
                MAX_ENTRIES,
            )
