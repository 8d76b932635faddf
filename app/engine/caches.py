"""Bounded caches (``cachetools``) and single-flight: what keeps cold work from repeating.

``Counted`` is an LRU that counts hits and misses under a lock, for the executables
(``app.ops.metrics.CacheStats`` reads it). ``SingleFlight`` lets concurrent requests for
one key share one computation: one compile, one parse.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from cachetools import Cache, LRUCache

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def remember(cache: Cache[K, V], key: K, value: V) -> None:
    """Keep ``value`` unless it alone is larger than the whole cache (cachetools refuses it)."""
    if cache.getsizeof(value) <= cache.maxsize:
        cache[key] = value


class Counted(Generic[K, V]):
    """An LRU of at most ``capacity`` items, safe under threads; counts hits and misses."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.hits = 0
        self.misses = 0
        self._items: LRUCache[K, V] = LRUCache(maxsize=capacity)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def peek(self, key: K) -> V | None:
        """The value, if cached, without counting a hit or a miss."""
        with self._lock:
            return self._items.get(key)

    def get(self, key: K) -> V | None:
        """The value, if cached; counts a hit or a miss."""
        with self._lock:
            value = self._items.get(key)
            if value is None:
                self.misses += 1
            else:
                self.hits += 1
            return value

    def put(self, key: K, value: V) -> None:
        """Keep ``value``; the least recently used item goes when the cache is full."""
        with self._lock:
            remember(self._items, key, value)


class SingleFlight(Generic[K, V]):
    """Concurrent calls for one key share one computation (on the event loop)."""

    def __init__(self) -> None:
        self._pending: dict[K, asyncio.Future[V]] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, key: K) -> bool:
        return key in self._pending

    async def run(self, key: K, make: Callable[[], Awaitable[V]]) -> V:
        """``await make()``, or the result of the call for ``key`` already running."""
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            value = await make()
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # mark retrieved: waiters, if any, re-raise it
            raise
        finally:
            del self._pending[key]
        future.set_result(value)
        return value
