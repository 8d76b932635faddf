"""Worker faults as the server sees them: a worker's process state, how it died, and the
error of a task whose worker was lost through no fault of the request."""

from __future__ import annotations

import signal

#: Exit by one of these signals comes from outside (an operator, systemd, the OOM killer): it
#: is our fault, not the request's. RLIMIT_DATA makes allocations fail instead (an abort).
EXTERNAL_SIGNALS = frozenset({signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP})


class WorkerLost(Exception):
    """The task's worker was lost (killed, stopped, or its pool rebuilt) before answering."""


def process_state(pid: int) -> str:
    """The state letter of ``/proc/<pid>/stat`` (``T``: stopped), or "" if unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def signal_name(exitcode: int | None) -> str:
    """``SIGKILL`` for a process killed by it (exit code -9), else the exit code."""
    if exitcode is not None and exitcode < 0:
        try:
            return signal.Signals(-exitcode).name
        except ValueError:
            return f"signal {-exitcode}"
    return f"exit code {exitcode}"
