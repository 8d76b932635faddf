"""Background compiles ("speculation"): XLA compiles a program that the first tier answers
once it is requested again, for the requests that follow; never ahead of a compile that a
request waits for.

    first answer by the jets    -> noted (an LRU of the specs answered once)
    another answer by the jets  -> hot: queued here (first in, first out, bounded)
    the queue                   -> one compile at a time, started only while no compile that
                                   a request waits for (foreground) is pending

A background compile that is already running when a foreground one arrives is not in its
way either: the engine runs it on a worker of its own at idle CPU priority
(``app.engine.engine``). A one-off expression (most cold requests) is never compiled:
before, every first answer queued a compile, and on a 2-core machine with one compile worker
a request that needed XLA next waited behind it (3.1 s instead of 0.28 s for the
vectorised Rosenbrock of 100,000 after a 100-variable one).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Hashable
from typing import Any

from cachetools import LRUCache

#: Specs answered once by the jets, remembered to know a second request when it comes.
SEEN_CAPACITY = 4096
#: Hot specs waiting for their background compile; more are not queued (a later request
#: queues them again).
QUEUE_CAPACITY = 64


class Speculation:
    """The queue of background compiles, and the count of foreground compiles pending."""

    def __init__(self, compile_: Callable[[Hashable], Coroutine[Any, Any, None]],
                 capacity: int = QUEUE_CAPACITY) -> None:
        self._compile = compile_
        self.capacity = capacity
        self._seen: LRUCache[Hashable, None] = LRUCache(SEEN_CAPACITY)
        self._queue: OrderedDict[Hashable, None] = OrderedDict()
        self.running: Hashable | None = None
        self._task: asyncio.Task[None] | None = None
        self.foreground = 0
        self.started: list[Hashable] = []  # keys in the order their compiles started

    def __contains__(self, key: Hashable) -> bool:
        return key in self._queue or key == self.running

    def queued(self) -> list[Hashable]:
        """The keys waiting, in the order they will start."""
        return list(self._queue)

    def answered(self, key: Hashable) -> None:
        """The first tier answered ``key``: the second time, it is queued for a compile."""
        if key in self:
            return
        if key not in self._seen:
            self._seen[key] = None
            return
        del self._seen[key]
        if len(self._queue) < self.capacity:
            self._queue[key] = None
            self._pump()

    def withdraw(self, key: Hashable) -> None:
        """A request waits for ``key``'s compile now: it is no longer speculation."""
        self._queue.pop(key, None)

    def foreground_started(self) -> None:
        """A compile that a request waits for was started: background ones wait."""
        self.foreground += 1

    def foreground_finished(self) -> None:
        """A foreground compile ended; the queue moves when none is left."""
        self.foreground -= 1
        self._pump()

    def _pump(self) -> None:
        if self._task is not None or self.foreground > 0 or not self._queue:
            return
        key, _ = self._queue.popitem(last=False)
        self.running = key
        self.started.append(key)
        del self.started[:-self.capacity]
        self._task = asyncio.get_running_loop().create_task(self._compile(key))
        self._task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._task = None
        self.running = None
        self._pump()

    @property
    def idle(self) -> bool:
        """Whether nothing is queued or running."""
        return self._task is None and not self._queue

    async def drain(self) -> None:
        """Wait until the queue is empty and its last compile has ended."""
        while not self.idle:
            if self._task is not None:
                await asyncio.wait({self._task})
            else:  # waiting for the foreground compiles
                await asyncio.sleep(0.01)
