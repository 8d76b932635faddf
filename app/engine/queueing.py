"""How long a pool's queue will take: the tasks queued or running, each with an estimate of
its seconds, and the workers that will take them.

A compile's estimate is the cost model's (``app.engine.costs``) times a calibration learned
from recent compiles (what they took over what the model said); other tasks (parses,
symbolic derivatives) are estimated by the mean of recent ones. ``Queue.wait`` plays the
queue forward, first in first out, on the pool's workers: the seconds until a new task
would start.
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from dataclasses import dataclass

#: Weight of the newest observation in the running means.
SMOOTHING = 0.3
#: The calibration stays within these bounds however odd recent compiles were.
CALIBRATION_BOUNDS = (0.25, 10.0)
#: Compiles estimated at less than this teach the calibration nothing: their time is mostly
#: fixed costs and noise (a 3-variable Hessian takes 0.1 to 1 s, whatever the model says).
CALIBRATING_SECONDS = 0.5


class RunningMean:
    """An exponentially weighted mean, starting from a prior."""

    def __init__(self, prior: float) -> None:
        self.value = prior

    def observe(self, sample: float) -> None:
        """Move the mean toward ``sample``."""
        self.value += SMOOTHING * (sample - self.value)


class Calibration(RunningMean):
    """Recent compile seconds over the model's estimates (1: the model is right here)."""

    def __init__(self) -> None:
        super().__init__(1.0)

    def observe_compile(self, estimated: float, took: float) -> None:
        """Learn from one compile that the model estimated at ``estimated`` seconds."""
        if estimated >= CALIBRATING_SECONDS and took > 0:
            low, high = CALIBRATION_BOUNDS
            self.observe(min(high, max(low, took / estimated)))


@dataclass
class Task:
    """One task of the queue: its estimate, the request it serves, and once a worker took
    it, when, which worker, the worker's CPU seconds then, and whether it used up its budget."""

    seconds: float
    request_id: str | None
    started: float | None = None
    pid: int | None = None
    cpu_at_start: float | None = None
    over_budget: bool = False


class Queue:
    """The tasks of one pool, queued or running, in the order they were scheduled."""

    def __init__(self) -> None:
        self.tasks: dict[Hashable, Task] = {}

    def __len__(self) -> int:
        return len(self.tasks)

    def add(self, key: Hashable, task: Task) -> None:
        """A task was scheduled."""
        self.tasks[key] = task

    def remove(self, key: Hashable) -> Task | None:
        """A task ended; what was known of it."""
        return self.tasks.pop(key, None)

    def request_ids(self) -> list[str]:
        """The ids of the requests the tasks serve."""
        return sorted({t.request_id for t in self.tasks.values() if t.request_id})

    def wait(self, workers: int, now: float | None = None) -> float:
        """Seconds until a task scheduled now would start, on ``workers`` workers."""
        now = time.monotonic() if now is None else now
        running = [t for t in self.tasks.values() if t.started is not None]
        queued = [t for t in self.tasks.values() if t.started is None]
        free = sorted(max(0.0, t.seconds - (now - (t.started or now))) for t in running)
        free = (free + [0.0] * workers)[:max(1, workers)]
        for task in queued:  # first in, first out: each goes to the first worker free
            free.sort()
            free[0] += task.seconds
        return min(free)
