"""When the client sends a request again, and how long it waits first.

nabla answers ``429`` (this client is over its rate limit) and ``503`` (no capacity now:
``overloaded``, ``compile_queue_full``, ``workers_lost``, shutting down) with
``Retry-After``: both are worth another try after that wait, and a request to nabla is a
pure function of its body, so sending it again is safe. Every other 4xx is the request's
own fault, and another 5xx a bug: sending either again would get the same answer, so
neither is retried.

``Retry-After`` is honoured in delta-seconds (what nabla sends), capped at ``max_wait``;
without one (or with an HTTP-date, which would depend on two clocks agreeing) the waits
are ``backoff``, then twice as long each time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

RETRY_STATUSES = frozenset({429, 503})


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds, or None when absent or not a number of seconds."""
    try:
        seconds = float(value) if value is not None else math.nan
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


@dataclass(frozen=True)
class RetryPolicy:
    """How often to send a request again after 429 or 503, and how long to wait first."""

    retries: int = 3  # tries after the first one
    max_wait: float = 30.0  # seconds, the most one wait lasts, whatever Retry-After asks
    backoff: float = 1.0  # seconds, the first wait when the answer has no Retry-After

    def __post_init__(self) -> None:
        if self.retries < 0 or not self.max_wait >= 0 or not self.backoff >= 0:
            raise ValueError("retries, max_wait and backoff must be 0 or more")

    def wait(self, status: int, retry_after: str | None, retry: int) -> float | None:
        """Seconds to wait before try number ``retry`` + 1 (``retry`` counts from 1), or
        None when the answer is final."""
        if status not in RETRY_STATUSES or retry > self.retries:
            return None
        asked = retry_after_seconds(retry_after)
        wait = asked if asked is not None else self.backoff * 2.0 ** (retry - 1)
        return min(wait, self.max_wait)
