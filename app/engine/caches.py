"""Bounded caches (``cachetools``) and single-flight: what keeps cold work from repeating.

``Counted`` is an LRU that counts hits and misses under a lock, for the executables
(``app.ops.metrics.CacheStats`` reads it). ``SingleFlight`` lets concurrent requests for
one key share one computation: one compile, one parse.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
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

    def __contains__(self, key: K) -> bool:
        with self._lock:
            return key in self._items

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

    def hit(self, key: K) -> V | None:
        """The value if cached, counted as a hit; None, uncounted, if not (for a fast path
        whose caller falls back to ``get``, which counts the miss)."""
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self.hits += 1
            return value

    def put(self, key: K, value: V) -> None:
        """Keep ``value``; the least recently used item goes when the cache is full."""
        with self._lock:
            remember(self._items, key, value)


class Doorkeeper:
    """Hashes seen once lately, in a FIFO of at most ``capacity`` (TinyLFU's doorkeeper):
    ``seen_before`` is True the second time a hash comes while it is still noted."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._noted: OrderedDict[int, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._noted)

    def seen_before(self, noted: int) -> bool:
        """Whether ``noted`` was seen lately (it is then forgotten); else it is noted, the
        oldest going past ``capacity``."""
        if noted in self._noted:
            del self._noted[noted]
            return True
        self._noted[noted] = None
        if len(self._noted) > self.capacity:
            self._noted.popitem(last=False)
        return False


class SingleFlight(Generic[K, V]):
    """Concurrent calls for one key share one computation, which runs as a task of its own
    (on the event loop): a caller that stops waiting (its deadline came) stops it for no one,
    and its result still reaches the caches."""

    def __init__(self) -> None:
        self._pending: dict[K, asyncio.Task[V]] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, key: K) -> bool:
        return key in self._pending

    def start(self, key: K, make: Callable[[], Awaitable[V]]) -> asyncio.Task[V]:
        """The computation for ``key``: the one running, or ``make()`` started now."""
        task = self._pending.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(_call(make))
            self._pending[key] = task
            task.add_done_callback(lambda done: self._finish(key, done))
        return task

    def _finish(self, key: K, task: asyncio.Task[V]) -> None:
        if self._pending.get(key) is task:
            del self._pending[key]
        if not task.cancelled():
            task.exception()  # read here: a failure nobody waited for is not an error

    async def run(self, key: K, make: Callable[[], Awaitable[V]]) -> V:
        """``await make()``, or the result of the call for ``key`` already running."""
        return await asyncio.shield(self.start(key, make))


async def _call(make: Callable[[], Awaitable[V]]) -> V:
    return await make()
