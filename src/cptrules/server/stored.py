"""Serialised responses kept per date class, with the date of service written in per request.

Every date of one date class gets the same facts but the date itself (timeline.py), and the
date is written in a response only as an ISO string (fired rules' inputs) or as a
google.type.Date message, both of a fixed width for the years served. So the deterministic
bytes of one class are one template: the bytes between the places the date is written are
the same for every day of the class, and a request costs a join, not a message build.

A template is made by serialising the response for two sentinel days that differ in every
byte the date is written with, and is kept only when writing the second day into the first
day's template gives the second day's bytes exactly; otherwise (a text that spells the
date out, say) the response is kept per day instead.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass

from cachetools import LRUCache
from google.type import date_pb2

# Two days whose ISO text and google.type.Date encodings differ in every varying byte, and
# whose years need the two varint bytes every served year (1990-2100) needs too.
_SENTINELS = ("1111-11-11", "2222-02-22")


@functools.lru_cache(maxsize=8192)
def _date_bytes(iso: str) -> tuple[bytes, bytes]:
    """(ISO text, google.type.Date encoding) of a day."""
    day = dt.date.fromisoformat(iso)
    return iso.encode(), date_pb2.Date(year=day.year, month=day.month,
                                       day=day.day).SerializeToString(deterministic=True)


@dataclass(frozen=True, slots=True)
class DatedBytes:
    """A response's bytes as constant pieces with the date written between them."""

    pieces: tuple[bytes, ...]   # one more than slots
    slots: tuple[int, ...]      # 0: ISO text, 1: google.type.Date encoding

    @property
    def nbytes(self) -> int:
        return sum(map(len, self.pieces))

    def on(self, day: str) -> bytes:
        if not self.slots:
            return self.pieces[0]
        written = _date_bytes(day)
        parts = [self.pieces[0]]
        for slot, piece in zip(self.slots, self.pieces[1:]):
            parts.append(written[slot])
            parts.append(piece)
        return b"".join(parts)


def _template(first: bytes, day: str) -> DatedBytes:
    iso, encoded = _date_bytes(day)
    pattern = re.compile(re.escape(iso) + b"|" + re.escape(encoded))
    pieces, slots, at = [], [], 0
    for match in pattern.finditer(first):
        pieces.append(first[at:match.start()])
        slots.append(0 if match.group(0) == iso else 1)
        at = match.end()
    pieces.append(first[at:])
    return DatedBytes(tuple(pieces), tuple(slots))


def dated_bytes(serialise: Callable[[str], bytes]) -> DatedBytes | None:
    """The template of `serialise(day)` over days, or None when the bytes depend on the day
    in any other way than writing it that the two sentinels tell apart. Only for responses
    that read the day just to write it (the Code message): a response that tests the day
    (a template's `if`) may treat both sentinels alike and a real day otherwise."""
    first, second = (serialise(day) for day in _SENTINELS)
    template = _template(first, _SENTINELS[0])
    return template if template.on(_SENTINELS[1]) == second else None


class Stored:
    """One response kept for every day of a class: a template, or the bytes per day."""

    __slots__ = ("_template", "_serialise", "_days", "_lock", "_nbytes")

    DAYS_KEPT = 64  # without a template: the bytes of this many days, least recently used out

    def __init__(self, serialise: Callable[[str], bytes]) -> None:
        self._template = dated_bytes(serialise)
        self._serialise = None if self._template is not None else serialise
        # Only an entry without a template keeps days (few do): the others carry no cache or lock.
        self._days: LRUCache[str, bytes] | None = None if self._template is not None else LRUCache(self.DAYS_KEPT)
        self._lock = None if self._template is not None else threading.Lock()
        self._nbytes = (self._template.nbytes if self._template is not None
                        else self.DAYS_KEPT * len(serialise(_SENTINELS[0])))

    @property
    def templated(self) -> bool:
        return self._template is not None

    @property
    def nbytes(self) -> int:
        """The most bytes this entry keeps: its template's, or DAYS_KEPT days' (the days are
        kept later than a cache sizes the entry, so it is sized for all of them at once)."""
        return self._nbytes

    def on(self, day: str) -> bytes:
        if self._template is not None:
            return self._template.on(day)
        assert self._serialise is not None and self._days is not None and self._lock is not None
        with self._lock:
            known = self._days.get(day)
        if known is None:
            known = self._serialise(day)
            with self._lock:
                self._days[day] = known
        return known


def field_bytes(number: int, payload: bytes) -> bytes:
    """A length-delimited field (a sub-message or string) as protobuf writes it."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def repeated_message(number: int, items: list[bytes]) -> bytes:
    """A repeated message field from its items' bytes, in order."""
    return b"".join(field_bytes(number, item) for item in items)

