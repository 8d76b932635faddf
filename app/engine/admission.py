"""What one request may still spend: the time left before its deadline, and its share of
the bytes of answers being produced at once.

The API stamps each request with an ``Allowance`` on arrival (``app.api.allowance``); the
service and the engine read it (``current``) before each wait, so that no request waits in
any queue (a worker's, a shared compile's, the pool's rebuild) past its deadline. Waits
end with 503 and a ``Retry-After`` that says how long the work is expected to take.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TypeVar

from app.engine.costs import retry_seconds
from app.errors import Unavailable

#: Estimated bytes of one number in an answer: JSON's longest float64 and its comma
#: ("-2.2250738585072014e-308," is 25; most are 18 to 22), MessagePack's type byte and 8.
JSON_BYTES_PER_NUMBER = 24
MSGPACK_BYTES_PER_NUMBER = 9
T = TypeVar("T")


class ByteBudget:
    """Bytes of answers being produced at once, all requests of the process together."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.in_use = 0

    def take(self, nbytes: int) -> bool:
        """Reserve ``nbytes`` if they fit (a request alone always fits an idle budget)."""
        if self.in_use and self.in_use + nbytes > self.capacity:
            return False
        self.in_use += nbytes
        return True

    def give(self, nbytes: int) -> None:
        """Return ``nbytes`` reserved before."""
        self.in_use = max(0, self.in_use - nbytes)


@dataclass
class Allowance:
    """One request's deadline (``time.monotonic``), the bytes a number of its answer takes,
    and the bytes it holds of a ``ByteBudget``."""

    deadline: float
    seconds: float
    bytes_per_number: int = JSON_BYTES_PER_NUMBER
    held: list[tuple[ByteBudget, int]] = field(default_factory=list)

    @classmethod
    def starting_now(cls, seconds: float,
                     bytes_per_number: int = JSON_BYTES_PER_NUMBER) -> Allowance:
        """The allowance of a request arriving now."""
        return cls(time.monotonic() + seconds, seconds, bytes_per_number)

    def remaining(self) -> float:
        """Seconds left before the deadline (negative once past it)."""
        return self.deadline - time.monotonic()

    def hold(self, budget: ByteBudget, nbytes: int) -> None:
        """Reserve ``nbytes`` of ``budget`` until ``release``; 503 when they do not fit."""
        if not budget.take(nbytes):
            raise Unavailable(
                f"The answers being computed now hold about {budget.in_use} bytes; this one "
                f"needs about {nbytes} more, over max_response_bytes_in_flight = "
                f"{budget.capacity}; retry shortly", code="output_budget_full")
        self.held.append((budget, nbytes))

    def release(self) -> None:
        """Give back every reservation (the answer is sent)."""
        for budget, nbytes in self.held:
            budget.give(nbytes)
        self.held.clear()


ALLOWANCE: ContextVar[Allowance | None] = ContextVar("nabla_allowance", default=None)


def current() -> Allowance | None:
    """The allowance of the request being served, if any."""
    return ALLOWANCE.get()


def deadline_exceeded(allowance: Allowance, waiting_for: str, expected: float) -> Unavailable:
    """The 503 of a request whose deadline came while it waited."""
    return Unavailable(
        f"This request was not answered within its deadline of {allowance.seconds:g} s "
        f"(request_deadline_seconds) while it waited for {waiting_for}; that is expected to "
        f"take about {expected:.1f} s more. Retry it then: the work goes on meanwhile",
        retry_after=retry_seconds(expected), code="deadline_exceeded")


async def within(allowance: Allowance | None, work: Awaitable[T], waiting_for: str,
                 expected: Callable[[], float] = lambda: 1.0) -> T:
    """``await work`` until the deadline at most; ``work`` (a task or future: its owner
    reads its outcome) is shielded, so it goes on for whoever else waits for it.
    ``expected()`` is how much longer it should take, for the Retry-After."""
    shielded = asyncio.shield(work)
    if allowance is None:
        return await shielded
    try:
        return await asyncio.wait_for(shielded, max(0.0, allowance.remaining()))
    except TimeoutError:
        raise deadline_exceeded(allowance, waiting_for, expected()) from None
