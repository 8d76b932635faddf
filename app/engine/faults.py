"""Worker faults as the server sees them: what a worker process uses, and why it died.

A worker's death is blamed on the request only when the request caused it: a task that ran
out of its memory cap, or used its whole budget of CPU seconds. Everything else (a signal
from outside, a crash with memory to spare, a worker stopped or starved of CPU) is a fault
of ours: ``WorkerLost``, which the pool retries once and then answers 503.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from app.errors import TooComplex

#: Exit by one of these signals comes from outside (an operator, systemd, the OOM killer): it
#: is our fault, not the request's. RLIMIT_DATA makes allocations fail instead (an abort).
EXTERNAL_SIGNALS = frozenset({signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
#: A worker that died holding at least this share of its memory cap died of the cap: a warm
#: worker holds about 0.35 GB (9 % of the default 4 GiB), and a compile that runs into the
#: cap grows toward it for seconds, sampled four times a second.
MEMORY_SHARE = 0.5
#: How long the last look at a worker that is gone is kept (to tell why it died).
KEPT_SECONDS = 30.0
_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
Cause = Literal["external", "memory", "crash"]


class WorkerLost(Exception):
    """The task's worker was lost (killed, stopped, or its pool rebuilt) before answering;
    ``external`` when a signal from outside killed it."""

    def __init__(self, message: str, external: bool = False) -> None:
        super().__init__(message)
        self.external = external


@dataclass(frozen=True)
class Usage:
    """One look at a process: its state letter (``T``: stopped), CPU seconds and data bytes
    (what ``RLIMIT_DATA`` caps)."""

    state: str
    cpu_seconds: float
    data_bytes: int


def usage(pid: int) -> Usage | None:
    """What ``/proc`` says of ``pid`` now, or None if it is gone (or exiting: a zombie)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/statm", encoding="ascii") as statm:
            data_pages = int(statm.read().split()[5])
    except (OSError, IndexError, ValueError):
        return None
    # After the name: state is field 3 of stat(5), utime and stime fields 14 and 15.
    if fields[0] in ("Z", "X"):
        return None
    cpu = (int(fields[11]) + int(fields[12])) / _TICKS
    return Usage(fields[0], cpu, data_pages * _PAGE)


def process_state(pid: int) -> str:
    """The state letter of ``/proc/<pid>/stat`` (``T``: stopped), or "" if unknown."""
    seen = usage(pid)
    return "" if seen is None else seen.state


@dataclass(frozen=True)
class Seen:
    """The last look at a worker, when it was, its most data since its task began, and since
    when it is stopped (if it is)."""

    usage: Usage
    at: float
    peak_data: int
    stopped_since: float | None = None


class Looks:
    """What the watchdog saw of each worker (kept a while after it is gone)."""

    def __init__(self) -> None:
        self.seen: dict[int, Seen] = {}

    def look(self, pids: Iterable[int]) -> None:
        """Look at ``pids`` now; forget workers gone for ``KEPT_SECONDS``."""
        now = time.monotonic()
        for pid in pids:
            new = usage(pid)
            if new is not None:
                old = self.seen.get(pid)
                peak = new.data_bytes if old is None else max(old.peak_data, new.data_bytes)
                since = None
                if new.state == "T":
                    since = old.stopped_since if old and old.stopped_since else now
                self.seen[pid] = Seen(new, now, peak, since)
        for pid in [p for p, seen in self.seen.items() if now - seen.at > KEPT_SECONDS]:
            del self.seen[pid]

    def task_started(self, pid: int) -> float | None:
        """A worker took a task: its CPU seconds now; its peak starts again."""
        seen = self.seen.get(pid)
        if seen is None:
            return None
        self.seen[pid] = Seen(seen.usage, seen.at, seen.usage.data_bytes, seen.stopped_since)
        return seen.usage.cpu_seconds

    def stopped(self, pids: Iterable[int], seconds: float) -> int | None:
        """One of ``pids`` seen stopped (``T``) for at least ``seconds``, if any."""
        now = time.monotonic()
        for pid in pids:
            seen = self.seen.get(pid)
            if seen is not None and seen.stopped_since is not None and (
                    now - seen.stopped_since >= seconds):
                return pid
        return None

    def cpu_since(self, pid: int, cpu_at_start: float) -> float:
        """CPU seconds the worker used since it had ``cpu_at_start`` (0 if never seen)."""
        seen = self.seen.get(pid)
        return 0.0 if seen is None else seen.usage.cpu_seconds - cpu_at_start

    def state(self, pid: int) -> str:
        """The worker's state letter when last seen (``T``: stopped), or ""."""
        seen = self.seen.get(pid)
        return "" if seen is None else seen.usage.state

    def died(self, name: str, pid: int | None, exitcode: int | None,
             memory_cap: int) -> Exception:
        """``TooComplex`` if the worker died of its memory cap, else ``WorkerLost``."""
        seen = self.seen.get(pid) if pid else None
        cause = death_cause(exitcode, seen.peak_data if seen else None, memory_cap)
        if cause == "memory":
            return TooComplex.memory()
        how = "was killed by" if cause == "external" else "crashed with"
        return WorkerLost(f"{name} worker pid {pid} {how} {signal_name(exitcode)}",
                          external=cause == "external")

    def over_budget(self, name: str, pid: int | None, cpu_at_start: float | None,
                    budget: float, too_slow: TooComplex) -> Exception:
        """``too_slow`` if the worker computed for its whole budget, else ``WorkerLost``."""
        seen = self.seen.get(pid) if pid else None
        if seen is None or cpu_at_start is None:
            return too_slow  # never seen running: the budget is all we know
        cpu = seen.usage.cpu_seconds - cpu_at_start
        if cpu >= budget:
            return too_slow
        return WorkerLost(f"{name} worker pid {pid} ran out of its {budget:g} s budget with "
                          f"{cpu:.1f} s of CPU: it was stopped or starved")


def death_cause(exitcode: int | None, peak_data: int | None, memory_cap: int) -> Cause:
    """Why a worker died during a task: a signal from outside, its memory cap (it held most
    of the cap at its peak during the task), or a crash of ours."""
    if exitcode is not None and (-exitcode in EXTERNAL_SIGNALS or exitcode == signal.SIGTERM):
        return "external"  # pebble's SIGTERM handler (before ours is set) exits with 15
    if memory_cap > 0 and peak_data is not None and peak_data >= MEMORY_SHARE * memory_cap:
        return "memory"
    return "crash"


def signal_name(exitcode: int | None) -> str:
    """``SIGKILL`` for a process killed by it (exit code -9), else the exit code."""
    if exitcode is not None and exitcode < 0:
        try:
            return signal.Signals(-exitcode).name
        except ValueError:
            return f"signal {-exitcode}"
    return f"exit code {exitcode}"


def too_slow(pool: str, budget: float) -> TooComplex:
    """The problem of a task that computed past its pool's budget."""
    if pool == "compile":
        return TooComplex.time(budget)
    return TooComplex(f"Reading this expression used its whole budget of {budget:g} s of CPU time "
                      f"({pool}_timeout_seconds); shorten or simplify it",
                      limit=f"{pool}_timeout_seconds", limit_value=budget)
