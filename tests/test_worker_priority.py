"""A worker's CPU priority: it warms up (imports JAX, one compile) at the server's priority,
then every one of its threads yields the CPU (nice 10); a background worker is SCHED_IDLE
from its start to its end.

A warm-up at nice 10 on a loaded machine (4 busy processes on 2 cores) took 20-50 s instead
of 1 s, and the pool stayed not ready all that time: the chaos test's recovery after a
fault. What is checked here is the priority itself, not a duration.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import Future
from multiprocessing.queues import Queue
from types import SimpleNamespace
from typing import Any

import pytest

from app.config import Settings
from app.engine import workers
from app.engine.queueing import RunningMean
from app.engine.workers import CompilePool
from tests.test_honest_faults import with_pool

pytestmark = pytest.mark.slow


def threads(pid: int) -> list[int]:
    return [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]


def priorities(pid: int) -> dict[int, tuple[int, int]]:
    """Each thread of ``pid``: its nice value and its scheduling policy."""
    return {tid: (os.getpriority(os.PRIO_PROCESS, tid), os.sched_getscheduler(tid))
            for tid in threads(pid)}


def start_and_report(idle: bool, report: Queue[Any]) -> None:
    """In a spawned process: ``start_worker``, noting the priority its warm-up compile ran
    at; then every thread's priority."""
    from app.engine import compilation, in_worker

    compile_or_problem = compilation.compile_or_problem

    def noted(*args: Any) -> Any:
        report.put(("warm-up", os.getpriority(os.PRIO_PROCESS, 0), os.sched_getscheduler(0)))
        return compile_or_problem(*args)

    compilation.compile_or_problem = noted  # start_worker imports it when it runs
    in_worker.start_worker(0, idle)
    report.put(("after", priorities(os.getpid())))


def worker_report(idle: bool) -> tuple[tuple[int, int], dict[int, tuple[int, int]]]:
    context = multiprocessing.get_context("spawn")
    report: Queue[Any] = context.Queue()
    process = context.Process(target=start_and_report, args=(idle, report))
    process.start()
    try:
        _, nice, policy = report.get(timeout=120)
        _, after = report.get(timeout=120)
    finally:
        process.join(timeout=60)
    assert process.exitcode == 0
    return (nice, policy), after


def test_a_worker_warms_up_at_the_servers_priority_then_every_thread_yields() -> None:
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    warm_up, after = worker_report(idle=False)
    assert warm_up == (ours, os.SCHED_OTHER)  # not niced while its pool is not ready
    assert len(after) > 2  # JAX's threads, started during the warm-up, besides two of ours
    assert set(after.values()) == {(min(19, ours + 10), os.SCHED_OTHER)}


def test_a_background_worker_is_idle_from_its_start() -> None:
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    warm_up, after = worker_report(idle=True)
    assert warm_up == (ours, os.SCHED_IDLE)  # no request waits for its pool
    assert len(after) > 2
    assert set(after.values()) == {(ours, os.SCHED_IDLE)}


def test_a_pools_warm_worker_yields_in_every_thread() -> None:
    ours = os.getpriority(os.PRIO_PROCESS, 0)

    async def scenario(pool: CompilePool) -> dict[int, tuple[int, int]]:
        (pid,) = pool._worker_pids()
        return priorities(pid)

    seen = with_pool(Settings(), scenario)
    assert len(seen) > 2
    assert set(seen.values()) == {(min(19, ours + 10), os.SCHED_OTHER)}


def test_only_a_pool_that_warmed_up_counts_toward_the_warm_up_estimate() -> None:
    """A pool torn down before it was warm (its ``ready`` task cancelled) says nothing of how
    long a warm-up takes; it used to be counted, as the seconds since the next pool began."""
    pool = SimpleNamespace(name="parse", warmup=RunningMean(workers.WARMUP_SECONDS))
    torn_down: Future[bool] = Future()
    torn_down.cancel()
    CompilePool._warmed(pool, torn_down, time.monotonic())  # type: ignore[arg-type]
    assert pool.warmup.value == workers.WARMUP_SECONDS
    warm: Future[bool] = Future()
    warm.set_result(True)
    CompilePool._warmed(pool, warm, time.monotonic() - 2 * workers.WARMUP_SECONDS)
    assert pool.warmup.value > workers.WARMUP_SECONDS
