"""What a snapshot remembers between requests, and the memory that may take.

A request for a code, a day or a question not asked before costs an evaluation; one asked
before costs a lookup. What is remembered is bounded, so no stream of distinct requests (random
codes at random dates, say) grows memory without end: the caches fill to their bounds and stay
there. The bytes a transport keeps (responses per date class and per request) are the bulk and
are sized by one budget an operator chooses (`serve --cache-mb`); the rest is bounded by entries
(see README, "Memory").
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CacheBudget:
    """The bytes a snapshot's response caches may hold: half for the responses derived per date
    class, half for responses remembered by request (a pool the methods share: see BytePool)."""

    megabytes: int = 256

    def __post_init__(self) -> None:
        if self.megabytes < 16:
            raise ValueError("the cache budget is at least 16 MB")

    @property
    def derived_bytes(self) -> int:
        return (self.megabytes << 20) // 2

    @property
    def request_bytes(self) -> int:
        return (self.megabytes << 20) // 2


class BytePool:
    """Bytes several caches share. Any one may grow to the whole pool while the others are idle;
    past the pool's bound the largest gives up its least recently used entries first, so a flood
    of one method's requests evicts its own before anyone else's."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._caches: list[ReportCache] = []
        self._lock = threading.Lock()

    def join(self, cache: ReportCache) -> None:
        with self._lock:
            self._caches.append(cache)

    @property
    def used(self) -> int:
        return sum(cache.nbytes or 0 for cache in self._caches)

    def settle(self) -> None:
        """Evict from the largest member until the pool is within its bound. Takes one member's
        lock at a time, never while holding another's, so members cannot deadlock."""
        with self._lock:
            while self.used > self.limit:
                largest = max(self._caches, key=lambda cache: cache.nbytes or 0)
                if not largest.drop_oldest():
                    return


class ReportCache:
    """Results by key (code reports by date class, categories by code), least recently used
    first out, so no stream of distinct requests grows memory; safe across threads. Bounded by
    entries, or by `getsizeof` of the values when given.

    Every request passes through several of these, so a hit is an OrderedDict lookup and a
    move (both in C) under one lock, not a pure-Python cache's bookkeeping."""

    def __init__(self, size: int = 50_000, getsizeof: Callable[[Any], int] | None = None,
                 pool: BytePool | None = None) -> None:
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._limit = size
        self._sizeof = getsizeof
        self._used = 0
        self._lock = threading.Lock()
        self._pool = pool
        self.hits = 0    # read by the metrics endpoint (hit ratio)
        self.misses = 0
        if pool is not None:
            pool.join(self)

    def get(self, key: Any) -> Any:
        with self._lock:
            value = self._items.get(key)
            if value is None:
                self.misses += 1
            else:
                self.hits += 1
                self._items.move_to_end(key)
            return value

    def put(self, key: Any, value: Any) -> None:
        sizeof = self._sizeof
        cost = sizeof(value) if sizeof else 1
        if cost > self._limit:  # larger than the whole cache: not kept
            return
        with self._lock:
            items = self._items
            old = items.pop(key, None)
            if old is not None:
                self._used -= sizeof(old) if sizeof else 1
            items[key] = value
            self._used += cost
            while self._used > self._limit:
                _, dropped = items.popitem(last=False)
                self._used -= sizeof(dropped) if sizeof else 1
        if self._pool is not None:  # after this cache's lock is let go
            self._pool.settle()

    def drop_oldest(self) -> bool:
        """Evict the least recently used entry; False when there is none."""
        with self._lock:
            if not self._items:
                return False
            _, dropped = self._items.popitem(last=False)
            self._used -= self._sizeof(dropped) if self._sizeof else 1
            return True

    @property
    def nbytes(self) -> int | None:
        """Bytes held, for a cache sized in bytes; None for one bounded by entries."""
        return self._used if self._sizeof else None

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._used = 0

    def __len__(self) -> int:
        return len(self._items)


def size_of(value: Any) -> int:
    """Bytes a derived value holds, roughly: its `nbytes` when it says, else its length."""
    size = getattr(value, "nbytes", None)
    return (size if size is not None else len(value)) + 200  # the entry's own keeping
