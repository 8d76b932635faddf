"""Honest fault answers: a worker's death or stall is blamed on the request (422) only when
the request caused it (the memory cap, or a budget spent computing); a crash with memory to
spare, a SIGTERM from outside, a stall, are faults of ours (the task survives, or 503)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from app.config import Settings
from app.engine import workers
from app.engine.admission import Allowance
from app.engine.faults import Looks, Seen, Usage, WorkerLost, death_cause
from app.engine.workers import CompilePool
from app.errors import NablaError, TooComplex
from tests.conftest import run_async

CAP = 1024**3  # a warm worker holds about 0.35 GB of it


@pytest.mark.parametrize(("exitcode", "data", "cause"), [
    (-signal.SIGKILL, 0.9, "external"),  # the OOM killer, an operator: not the request
    (-signal.SIGTERM, 0.1, "external"),
    (signal.SIGTERM, 0.1, "external"),  # pebble's own handler exits with 15
    (-signal.SIGABRT, 0.8, "memory"),  # an allocation failed at the cap: C++ aborts
    (-signal.SIGABRT, 0.2, "crash"),  # an assertion in XLA, with memory to spare
    (-signal.SIGSEGV, 0.3, "crash"),
    (1, None, "crash"),
], ids=lambda v: str(v))
def test_a_workers_death_is_the_requests_only_at_its_memory_cap(
        exitcode: int, data: float | None, cause: str) -> None:
    peak = None if data is None else int(data * CAP)
    assert death_cause(exitcode, peak, CAP) == cause


def test_a_task_over_budget_is_too_complex_only_if_it_computed() -> None:
    looks = Looks()
    looks.seen = {7: Seen(Usage("R", 14.5, 0), time.monotonic(), 0),
                  8: Seen(Usage("R", 12.5, 0), time.monotonic(), 0)}
    too_slow = TooComplex.time(4.0)
    assert looks.over_budget("compile", 7, 10.0, 4.0, too_slow) is too_slow  # 4.5 s of CPU
    starved = looks.over_budget("compile", 8, 10.0, 4.0, too_slow)  # 2.5 s in 12 s of wall
    assert isinstance(starved, WorkerLost) and "starved" in str(starved)


def test_the_peak_of_a_workers_memory_counts_from_its_task() -> None:
    looks = Looks()
    looks.look([os.getpid()])
    data = looks.seen[os.getpid()].usage.data_bytes
    assert data > 0 and looks.seen[os.getpid()].peak_data == data
    looks.seen[os.getpid()] = Seen(Usage("R", 0, data), 0, 10 * data)  # an earlier task's
    looks.task_started(os.getpid())
    assert looks.seen[os.getpid()].peak_data == data
    looks.look([os.getpid()])  # a zombie, or a pid gone, leaves the last look in place
    assert os.getpid() in looks.seen


# Tasks for the workers (importable by name).
def grow_then_abort() -> None:
    """Take memory until the cap refuses it, then die as C++ does when ``new`` fails."""
    held = []
    try:
        while True:
            held.append(bytearray(64 * 1024**2))
            time.sleep(0.02)
    except MemoryError:
        time.sleep(1.0)  # the watchdog looks a few times a second
    os.abort()


def pid_after(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def spin(seconds: float) -> None:
    """Compute for ``seconds`` of CPU."""
    start = time.process_time()
    while time.process_time() - start < seconds:
        pass


def killed_once(marker: str) -> int:
    """SIGKILL this worker the first time (as an operator or a group kill would, at any
    moment of the task); the pid of the worker that runs it the second time."""
    if not os.path.exists(marker):
        with open(marker, "w"):
            pass
        os.kill(os.getpid(), signal.SIGKILL)
    return os.getpid()


def with_pool(settings: Settings, scenario: Callable[[CompilePool], Awaitable[Any]],
              **options: Any) -> Any:
    """Run ``scenario`` with a warm pool of one worker (made with ``options``, as
    ``CompilePool``'s keywords), watched as the engine watches it."""

    async def go() -> Any:
        pool = CompilePool(settings, workers=1, **options)

        async def watchdog() -> None:
            while True:
                pool.watch()
                await asyncio.sleep(0.1)

        watching = asyncio.ensure_future(watchdog())
        try:
            while not pool.ready:
                await asyncio.sleep(0.05)
            return await scenario(pool)
        finally:
            watching.cancel()
            await asyncio.to_thread(pool.close)

    return run_async(go())


async def outcome(pool: CompilePool, func: Callable[..., Any], *args: Any,
                  allowance: Allowance | None = None) -> Any:
    """The task's result, or the error it ended with."""
    try:
        return await pool.call(func, *args, allowance=allowance)
    except NablaError as error:
        return error


@pytest.mark.slow
def test_a_crash_with_memory_to_spare_is_our_fault() -> None:
    async def scenario(pool: CompilePool) -> list[Any]:
        return [await outcome(pool, os.abort), await outcome(pool, grow_then_abort)]

    crashed, capped = with_pool(Settings(worker_memory_bytes=CAP), scenario)
    assert crashed.status == 503 and crashed.code == "workers_lost", crashed.problem()
    assert "SIGABRT" in crashed.detail
    assert capped.status == 422 and capped.code == "too_complex", capped.problem()
    assert capped.extra["limit"] == "worker_memory_bytes"


@pytest.mark.slow
def test_a_sigterm_from_outside_leaves_the_task_finishing() -> None:
    async def scenario(pool: CompilePool) -> tuple[Any, int]:
        task = asyncio.ensure_future(outcome(pool, pid_after, 1.5))
        while not any(t.pid for t in pool.queue.tasks.values()):
            await asyncio.sleep(0.02)
        (pid,) = [t.pid for t in pool.queue.tasks.values()]
        assert pid is not None
        # As systemd's KillMode=control-group or `kill -TERM -<pgid>` do: not from the server.
        subprocess.run(["kill", "-TERM", str(pid)], check=True)
        subprocess.run(["kill", "-INT", str(pid)], check=True)
        return await task, pid

    answer, pid = with_pool(Settings(), scenario)
    assert answer == pid  # the same worker finished its task


@pytest.mark.slow
def test_a_task_that_computes_past_its_budget_is_too_complex(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers, "WALL_BUDGETS", 100.0)  # however loaded the machine is

    async def scenario(pool: CompilePool) -> Any:
        return await outcome(pool, spin, 60.0)

    slow = with_pool(Settings(compile_timeout_seconds=1.0), scenario)
    assert slow.status == 422 and slow.code == "too_complex", slow.problem()
    assert slow.extra["limit"] == "compile_timeout_seconds"


@pytest.mark.slow
def test_a_worker_short_of_cpu_is_not_cut_short_by_the_budget() -> None:
    async def scenario(pool: CompilePool) -> Any:
        return await outcome(pool, pid_after, 2.0)  # 2 s of wall time, no CPU: as if starved

    assert isinstance(with_pool(Settings(compile_timeout_seconds=1.0), scenario), int)


@pytest.mark.slow
def test_a_stall_past_the_budget_is_our_fault() -> None:
    async def scenario(pool: CompilePool) -> Any:
        return await outcome(pool, time.sleep, 10.0)  # no CPU: as a stopped or starved one

    stalled = with_pool(Settings(compile_timeout_seconds=1.5), scenario)
    assert stalled.status == 503 and stalled.code == "workers_lost", stalled.problem()
    assert "starved" in stalled.detail


@pytest.mark.slow
def test_a_worker_killed_from_outside_mid_task_is_replaced_with_its_pool(
        tmp_path: Any) -> None:
    """pebble would start a new worker on the same channel, whose lock the killed worker
    may have held (its new worker then waits a minute for it, and the task's retry with
    it: test_chaos saw no answer for 30 s). The pool is rebuilt instead, and the task's one
    retry runs on the new pool."""
    marker = str(tmp_path / "killed")

    async def scenario(pool: CompilePool) -> tuple[Any, int, int]:
        first = pool._worker_pids()
        answer = await outcome(pool, killed_once, marker)
        return answer, first[0], pool.rebuilds

    answer, first_pid, rebuilds = with_pool(Settings(), scenario)
    assert isinstance(answer, int) and answer != first_pid  # answered by a new worker
    assert rebuilds == 1  # of a new pool, not a worker respawned on the old channel
