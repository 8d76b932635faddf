"""The parse pool's express lane (app.engine.express): it reads expressions as the pool's own
worker does, and each fault of a task it took ends as the pool would end it: the budget and
the memory cap are the request's (422), a kill, a crash or a stop are ours (the pool's own
worker runs the task again)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import sympy as sp

from app.config import Limits, Settings
from app.engine import express as express_module
from app.engine import in_worker, workers
from app.engine.admission import Allowance
from app.engine.compilation import CompileSpec, Parsed
from app.engine.faults import usage
from app.engine.planning import Policy, parse_and_plan
from app.engine.workers import CompilePool
from app.engine.xla import KINDS
from tests.conftest import run_async
from tests.test_honest_faults import (
    CAP,
    grow_then_abort,
    killed_once,
    outcome,
    pid_after,
    spin,
    with_pool,
)

pytestmark = pytest.mark.slow


def spec(text: str) -> CompileSpec:
    return CompileSpec((text,), False, None, (), KINDS, None, 1)


def with_lane(settings: Settings, scenario: Callable[[CompilePool], Awaitable[Any]]) -> Any:
    """Run ``scenario`` with a warm parse pool (one worker) whose express worker is idle."""

    async def when_idle(pool: CompilePool) -> Any:
        await idle(pool)
        return await scenario(pool)

    return with_pool(settings, when_idle, name="parse", budget=settings.parse_timeout_seconds,
                     express=True)


async def idle(pool: CompilePool, seconds: float = 60.0) -> None:
    """Wait until the express worker is up and idle (a task starts it the first time)."""
    assert pool.express is not None
    until = time.monotonic() + seconds
    while not pool.express.idle:
        await pool.call(os.getpid)  # starts it, on the pool's own worker meanwhile
        assert time.monotonic() < until, "the express worker never came up"
        await asyncio.sleep(0.05)


@contextlib.contextmanager
def pools_own_tasks(pool: CompilePool) -> Iterator[list[Any]]:
    """The tasks given to the pool's own workers meanwhile."""
    given: list[Any] = []
    run = pool._run

    async def spy(func: Callable[..., Any], args: tuple[Any, ...], *rest: Any) -> Any:
        given.append(args)
        return await run(func, args, *rest)

    pool._run = spy  # type: ignore[method-assign,assignment]
    try:
        yield given
    finally:
        pool._run = run  # type: ignore[method-assign]


def express_pid(pool: CompilePool) -> int:
    assert pool.express is not None and pool.express._pid is not None
    return pool.express._pid


def test_the_express_worker_reads_expressions_and_takes_the_tasks_of_an_idle_lane() -> None:
    x, y, z = sp.symbols("x y z")
    texts = {"x^2*y + sin(z)": x**2 * y + sp.sin(z), "exp(x/y) - 3*z": sp.exp(x / y) - 3 * z,
             "log(1 + x^2) * y^z": sp.log(1 + x**2) * y**z}

    async def scenario(pool: CompilePool) -> tuple[list[Parsed], int, int, list[Any]]:
        lane, pid = pool.express, express_pid(pool)
        assert lane is not None
        taken = lane.taken
        parsed = [await pool.call(parse_and_plan, spec(t), Limits(), Policy(10.0, True))
                  for t in texts]
        # Two at once: the second finds the lane busy and goes to the pool's own worker.
        both = await asyncio.gather(pool.call(pid_after, 0.5), pool.call(pid_after, 0.0))
        return parsed, lane.taken - taken, pid, list(both)

    parsed, taken, pid, both = with_lane(Settings(), scenario)
    assert taken == len(texts) + 1
    for one, expected in zip(parsed, texts.values(), strict=True):
        (tree,) = one.program.exprs  # the worker's symbols carry their own assumptions
        at = {"x": sp.Rational(3, 7), "y": sp.Rational(5, 4), "z": sp.Rational(-2, 3)}
        ours = tree.subs({s: at[s.name] for s in tree.free_symbols}).evalf(30)
        theirs = expected.subs({s: at[s.name] for s in expected.free_symbols}).evalf(30)
        assert abs(ours - theirs) < 1e-25, (tree, expected)
    assert both[0] == pid and both[1] != pid


def test_a_task_past_its_budget_in_the_express_worker_is_too_complex(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers, "WALL_BUDGETS", 100.0)  # however loaded the machine is
    monkeypatch.setattr(express_module, "HAND_OVER_SECONDS", 100.0)  # and starved, at idle
    async def scenario(pool: CompilePool) -> tuple[Any, int, int, int, bool]:
        lane, first = pool.express, express_pid(pool)
        assert lane is not None
        with pools_own_tasks(pool) as own:
            slow = await outcome(pool, spin, 60.0)
        await idle(pool)
        return slow, first, express_pid(pool), lane.starts, not own

    slow, first, then, starts, kept = with_lane(Settings(parse_timeout_seconds=1.0), scenario)
    assert slow.status == 422 and slow.code == "too_complex", slow.problem()
    assert slow.extra["limit"] == "parse_timeout_seconds"
    assert then != first and starts == 2  # the spinning worker was replaced
    assert kept  # and the task was not run again by the pool's own worker


def test_a_kill_from_outside_mid_task_runs_the_task_again_on_the_pools_worker(
        tmp_path: Any) -> None:
    marker = str(tmp_path / "killed")

    async def scenario(pool: CompilePool) -> tuple[Any, int, list[int]]:
        first = express_pid(pool)
        answer = await outcome(pool, killed_once, marker)
        await idle(pool)
        return answer, first, pool._worker_pids()

    answer, first, pool_pids = with_lane(Settings(), scenario)
    assert answer in pool_pids and answer != first


def test_a_stopped_express_worker_is_replaced_and_its_task_run_again() -> None:
    async def scenario(pool: CompilePool) -> tuple[Any, int, list[int], int]:
        first = express_pid(pool)
        task = asyncio.ensure_future(outcome(pool, pid_after, 0.5))
        await asyncio.sleep(0.1)
        os.kill(first, signal.SIGSTOP)  # SIGKILLed by the lane after STALL_SECONDS
        answer = await task
        await idle(pool)
        return answer, first, pool._worker_pids(), express_pid(pool)

    answer, first, pool_pids, then = with_lane(Settings(), scenario)
    assert answer in pool_pids and then != first


def test_an_express_worker_that_dies_at_its_memory_cap_is_the_requests_fault(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(express_module, "HAND_OVER_SECONDS", 100.0)  # it sleeps as it grows
    async def scenario(pool: CompilePool) -> tuple[Any, bool]:
        with pools_own_tasks(pool) as own:
            capped = await outcome(pool, grow_then_abort)
        return capped, not own

    capped, kept = with_lane(Settings(worker_memory_bytes=CAP), scenario)
    assert capped.status == 422 and capped.code == "too_complex", capped.problem()
    assert capped.extra["limit"] == "worker_memory_bytes"
    assert kept  # the task was not run again by the pool's own worker


def test_a_deadline_ends_the_wait_not_the_task(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(express_module, "LOOK_SECONDS", 0.05)

    async def scenario(pool: CompilePool) -> tuple[Any, bool, int, int]:
        lane, pid = pool.express, express_pid(pool)
        assert lane is not None
        late = await outcome(pool, pid_after, 1.0, allowance=Allowance.starting_now(0.2))
        busy = not lane.idle  # the task goes on; its answer is dropped
        until = time.monotonic() + 30  # a second from now, or later on a loaded machine
        while not lane.idle:
            assert time.monotonic() < until, "the lane stayed busy"
            await asyncio.sleep(0.05)
        again = await pool.call(pid_after, 0.0)
        return late, busy, pid, again

    late, busy, pid, again = with_lane(Settings(), scenario)
    assert late.status == 503 and late.code == "deadline_exceeded", late.problem()
    assert busy and again == pid  # the same worker, idle again and taking tasks


def test_the_pool_is_ready_once_the_lane_is_and_its_worker_works_meanwhile(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers, "WALL_BUDGETS", 100.0)

    async def go() -> tuple[Any, bool, str | None, bool]:
        pool = CompilePool(Settings(), workers=1, name="parse", express=True)
        try:
            while not pool._warm.done():  # no watchdog: the lane is not started
                await asyncio.sleep(0.05)
            why = pool.not_ready
            answer = await pool.call(os.getpid)  # the pool's worker; the lane starts now
            by_pool = answer in pool._worker_pids()
            until = time.monotonic() + 60
            while not pool.ready:
                assert time.monotonic() < until, pool.not_ready
                await asyncio.sleep(0.05)
            assert pool.express is not None
            return answer, by_pool, None if why is None else why.code, pool.express.idle
        finally:
            await asyncio.to_thread(pool.close)

    answer, by_pool, why, idle_then = run_async(go())
    assert by_pool, answer
    assert why == "starting" and idle_then


def test_a_lane_that_never_comes_up_holds_the_pool_back_no_longer_than_its_limit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers, "EXPRESS_START_SECONDS", 0.0)

    async def go() -> tuple[bool, bool]:
        pool = CompilePool(Settings(), workers=1, name="parse", express=True)
        try:
            while not pool._warm.done():  # no watchdog: the lane is never started
                await asyncio.sleep(0.05)
            assert pool.express is not None
            return pool.ready, pool.express.settled
        finally:
            await asyncio.to_thread(pool.close)

    assert run_async(go()) == (True, False)


def sched_after_spin(seconds: float) -> tuple[int, int]:
    """Compute for ``seconds`` of CPU; then this thread's scheduling policy, and its id."""
    spin(seconds)
    return os.sched_getscheduler(0), threading.get_native_id()


def test_task_threads_move_a_long_task_to_idle_priority_and_keep_a_short_ones_thread() -> None:
    tasks = in_worker.TaskThreads(idle_after=0.02)

    def run(seconds: Any) -> tuple[int, int]:
        ok, (done, answer) = tasks.run(sched_after_spin, (seconds,))  # run_task's answer
        assert ok and done
        return answer

    short = [run(0.0) for _ in range(3)]
    long = run(0.2)
    after = run(0.0)
    failed = tasks.run(spin, ("not seconds",))
    assert [policy for policy, _ in short] == [os.SCHED_OTHER] * 3
    assert len({tid for _, tid in short}) == 1  # one thread for the short tasks
    assert long[0] == os.SCHED_IDLE and tasks.demoted == 1
    assert after[0] == os.SCHED_OTHER and after[1] != long[1]  # a new thread
    assert failed[0] is False and isinstance(failed[1], TypeError)


def test_the_express_worker_runs_a_long_task_at_idle_priority() -> None:
    async def scenario(pool: CompilePool) -> tuple[tuple[int, int], tuple[int, int], int]:
        lane = pool.express
        assert lane is not None
        taken = lane.taken
        long = await pool.call(sched_after_spin, 0.1)
        short = await pool.call(sched_after_spin, 0.0)
        return long, short, lane.taken - taken

    long, short, taken = with_lane(Settings(), scenario)
    assert taken == 2 and long[0] == os.SCHED_IDLE and short[0] == os.SCHED_OTHER


def test_a_task_starved_of_cpu_in_the_express_worker_goes_to_the_pools_worker_too(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(express_module, "LOOK_SECONDS", 0.05)
    monkeypatch.setattr(express_module, "HAND_OVER_SECONDS", 0.3)

    async def scenario(pool: CompilePool) -> tuple[int, list[int], int, bool, int, int]:
        lane, pid = pool.express, express_pid(pool)
        assert lane is not None
        assert await pool.call(pid_after, 0.0) == pid  # the worker imports the tests: CPU
        with pools_own_tasks(pool) as own:
            call = asyncio.ensure_future(pool.call(pid_after, 2.0))  # asleep: no CPU at all
            until = time.monotonic() + 1.5
            while not own:  # handed over at 0.3 s, as the lane looks every 0.05 s
                assert time.monotonic() < until, "the task was not handed over"
                await asyncio.sleep(0.02)
            busy = not lane.idle  # the lane's worker still has it
            answer = await call
        until = time.monotonic() + 30
        while not lane.idle:
            assert time.monotonic() < until, "the lane stayed busy"
            await asyncio.sleep(0.05)
        return answer, pool._worker_pids(), pid, busy, express_pid(pool), lane.starts

    answer, pool_pids, pid, busy, then, starts = with_lane(Settings(), scenario)
    assert answer in pool_pids and answer != pid  # the pool's own worker answered,
    assert busy and then == pid and starts == 1  # and the lane's worker was kept


def test_tasks_on_new_threads_do_not_grow_the_data_segment_the_memory_cap_counts() -> None:
    """Each long task's thread ends with it: a thread left waiting would hold its stack (8
    MiB of the data segment the memory cap counts) for the worker's life."""
    async def scenario(pool: CompilePool) -> tuple[int, int, int, bool]:
        lane, pid = pool.express, express_pid(pool)
        assert lane is not None
        await pool.call(sched_after_spin, 0.0)
        before = usage(pid)
        for _ in range(40):
            assert (await pool.call(sched_after_spin, 0.03))[0] == os.SCHED_IDLE
        after = usage(pid)
        assert before is not None and after is not None
        return before.data_bytes, after.data_bytes, lane.taken, express_pid(pool) == pid

    before, after, taken, kept = with_lane(Settings(), scenario)
    assert kept and taken >= 41
    assert after - before < 16 * 1024**2, (before, after)


class Unpicklable(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.callback = lambda: text  # pickle refuses a lambda


def raise_unpicklable() -> None:
    raise Unpicklable("the task's own words")


def return_unpicklable() -> Any:
    return lambda: None


def test_an_answer_pickle_refuses_comes_back_as_its_text() -> None:
    async def scenario(pool: CompilePool) -> tuple[list[str], bool]:
        errors = []
        with pools_own_tasks(pool) as own:
            for task in (raise_unpicklable, return_unpicklable):
                await idle(pool)
                with pytest.raises(RuntimeError) as raised:
                    await pool.call(task)
                errors.append(str(raised.value))
        return errors, not own

    (raised, returned), kept = with_lane(Settings(), scenario)
    assert "Unpicklable" in raised and "the task's own words" in raised
    assert "pickle" in returned.lower() and "lambda" in returned
    assert kept  # both were the lane's, not the pool's own worker's
