"""Worker processes for cold work: parse, trace and compile with a CPU budget and a memory cap.

XLA compilation cannot be interrupted from Python, so a budget needs a process that can
be killed: the watchdog cancels a task whose worker has used its budget of CPU seconds, and
pebble kills that worker and starts a new one. Workers are spawned (not forked: JAX's
threads make ``fork`` unsafe), cap their own memory with ``RLIMIT_DATA``, and warm JAX up
before their first task.

A pool heals itself. pebble marks a pool broken for good when a worker dies outside a task
("Unexpected error within the Pool"), and a stopped worker (SIGSTOP) holds its task, and
possibly the pool's channel, forever. ``CompilePool.watch`` (called by the server's watchdog,
and before each task) finds either fault, fails the tasks in flight with an honest 503,
tears the pool down and starts a new one, with a bounded back-off when new pools keep
breaking. Until the new pool is warm, ``ready`` is False and /readyz says 503.

A task is too complex only if its worker ran into the memory cap or computed for all of
its budget (``app.engine.faults``); workers ignore any SIGTERM but the server's
(``app.engine.in_worker``). Each pool keeps its queue with an estimate of every task
(``app.engine.queueing``): ``expected_wait`` says how long a new task would wait, and a
request's deadline bounds its wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import BrokenExecutor as BrokenProcessPool
from concurrent.futures import CancelledError as FutureCancelled
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, Literal

from pebble import ProcessExpired, ProcessPool

from app.config import Limits, Settings
from app.engine.admission import Allowance, deadline_exceeded
from app.engine.compilation import Compiled, CompileSpec
from app.engine.express import Express
from app.engine.faults import Looks, WorkerLost, too_slow
from app.engine.in_worker import compile_task, ready, run_task, start_worker
from app.engine.queueing import Calibration, Queue, RunningMean, Task
from app.engine.xla import Program
from app.errors import RemoteProblem, Unavailable
from app.ops.logs import REQUEST_ID
from app.ops.metrics import record_pool_rebuild

#: A worker stopped (SIGSTOP, a debugger) this long is a fault: its pool is rebuilt.
STALL_SECONDS = 1.0
#: A task's budget is in CPU seconds of its worker (the watchdog stops it past them), so a
#: worker starved by the machine's load is not cut short; this many budgets of wall-clock
#: time stop it all the same (and it is then a fault of ours).
WALL_BUDGETS = 3.0
#: Seconds before rebuilding a pool again, by how many pools in a row broke before warming up.
BACKOFF_SECONDS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)
#: How long a task lost to a fault waits for the rebuilt pool before its one retry.
RETRY_WAIT_SECONDS = 10.0
#: The pool's first readiness waits this long at most for its express lane's first worker.
EXPRESS_START_SECONDS = 60.0
#: Seconds a new worker takes to start and warm up (spawn, import JAX, compile sin(x)), before
#: any is measured.
WARMUP_SECONDS = 5.0
logger = logging.getLogger("nabla.workers")


@dataclass(frozen=True)
class NotReady:
    """Why no worker can take work: ``starting`` while the pool comes up for the first time,
    ``not_ready`` after a fault or while every worker is stopped."""

    code: Literal["starting", "not_ready"]
    reason: str


class CompilePool:
    """A self-healing pool of workers; ``compile`` and ``call`` await one task within the budget."""

    def __init__(self, settings: Settings, workers: int | None = None,
                 budget: float | None = None, name: str = "compile", idle: bool = False,
                 cache_folder: str | None = None, express: bool = False) -> None:
        self.settings = settings
        self.cache_folder = cache_folder  # of the persistent compile cache (None: off)
        self.name = name
        self.idle = idle  # its workers run at idle CPU priority (background compiles)
        self.budget = settings.compile_timeout_seconds if budget is None else budget
        self.limits = Limits.model_validate(settings.model_dump(include=set(Limits.model_fields)))
        self.workers = settings.compile_workers if workers is None else workers
        self.rebuilds = 0
        self.fault: str | None = None  # why the pool is down, until it is rebuilt
        self.queue = Queue()
        self.calibration = Calibration()  # compile seconds over the cost model's
        self.task_seconds = RunningMean(0.2)  # seconds of other tasks (parse, symbolic)
        self.warmup = RunningMean(WARMUP_SECONDS)
        self._closed = False
        self._breaks_in_a_row = 0
        self._rebuild_at = 0.0
        self._started_at = self._created_at = time.monotonic()
        self.looks = Looks()  # what each worker uses: its state, CPU and memory
        self._lost: asyncio.Future[str] | None = None  # set when this pool breaks
        self._pool, self._warm = self._start()
        # Short tasks a request waits for also go to the express lane, when it is free.
        self.express = Express(name, self.budget, settings.worker_memory_bytes, WALL_BUDGETS,
                               STALL_SECONDS) if express else None

    def _start(self) -> tuple[ProcessPool, Future[Any]]:
        pool = ProcessPool(
            max_workers=self.workers,
            initializer=start_worker,
            initargs=(self.settings.worker_memory_bytes, self.idle, self.cache_folder,
                      self.settings.cache_max_bytes),
            context=multiprocessing.get_context("spawn"),
        )
        started = self._started_at = time.monotonic()
        warm = pool.schedule(ready)  # done once a worker has started and warmed up
        warm.add_done_callback(lambda future: self._warmed(future, started))
        return pool, warm

    def _warmed(self, warm: Future[Any], started: float) -> None:
        """A pool's first worker is warm (or the pool went down before it was)."""
        if warm.cancelled() or warm.exception() is not None:
            return  # torn down: its time says nothing of a warm-up
        seconds = time.monotonic() - started
        self.warmup.observe(seconds)
        logger.info("worker pool warm", extra={"fields": {
            "pool": self.name, "seconds": round(seconds, 2)}})

    @property
    def ready(self) -> bool:
        """True while a worker is up, warm and not stopped."""
        return self.not_ready is None

    @property
    def not_ready(self) -> NotReady | None:
        """Why no worker can take work now, or None when one can."""
        if self.fault is not None:
            return NotReady("not_ready", f"the {self.name} workers are being restarted after "
                            f"a fault ({self.fault})")
        if not self._warm.done() or self._express_starting():
            return NotReady("starting", f"the {self.name} workers are starting")
        if self._warm.cancelled() or self._warm.exception() is not None:
            return NotReady("not_ready", f"the {self.name} workers failed to start")
        pids = self._worker_pids()
        if pids and all(self.looks.state(pid) == "T" for pid in pids):
            return NotReady("not_ready", f"every {self.name} worker is stopped")
        return None

    def _express_starting(self) -> bool:
        """The express lane's first worker is neither ready nor failed, and has not taken
        ``EXPRESS_START_SECONDS`` (a stopped or starved one does not hold the pool back)."""
        return (self.express is not None and not self.express.settled
                and time.monotonic() - self._created_at < EXPRESS_START_SECONDS)

    def expected_wait(self) -> float:
        """Seconds a task scheduled now would wait for a worker, by the queue's estimates."""
        wait = self.queue.wait(self.workers)
        if self.fault is not None or not self._warm.done():
            since = time.monotonic() - self._started_at
            wait += max(0.0, self._rebuild_at - time.monotonic()) + max(
                0.0, self.warmup.value - since)
        return wait

    def _worker_pids(self) -> list[int]:
        # pebble keeps its workers by pid; there is no public accessor.
        manager = getattr(getattr(self._pool, "_pool_manager", None), "worker_manager", None)
        return list(getattr(manager, "workers", {}))

    def _running(self) -> dict[Future[Any], int]:
        """Each task a worker has taken, and the worker's pid (pebble's own bookkeeping)."""
        manager = getattr(getattr(self._pool, "_pool_manager", None), "task_manager", None)
        tasks = list(getattr(manager, "tasks", {}).values())
        return {t.future: t.worker_id for t in tasks if getattr(t, "worker_id", 0)}

    def _look(self) -> None:
        """Look at every worker, note which task each has taken (and its CPU then), and stop
        a task that has computed for its whole budget."""
        self.looks.look(self._worker_pids())
        for future, pid in self._running().items():
            task = self.queue.tasks.get(future)
            if task is None:
                continue
            if task.pid is None:
                task.pid, task.started = pid, time.monotonic()
                task.cpu_at_start = self.looks.task_started(pid)
            elif task.cpu_at_start is not None and (
                    self.looks.cpu_since(pid, task.cpu_at_start) >= self.budget):
                task.over_budget = True
                future.cancel()  # pebble stops the worker and starts another

    def watch(self, look: bool = True) -> None:
        """Look for a fault and heal it: the watchdog calls this a few times a second, and
        each task before it is scheduled, without a new ``look`` at the workers (reading
        ``/proc`` for each took 0.1-0.2 ms of the event loop a task, and what it sees, the
        tasks' CPU and memory, is the watchdog's business)."""
        if self._closed:
            return
        if self.fault is not None:
            if time.monotonic() >= self._rebuild_at:
                self._rebuild()
            return
        if look:
            self._look()
        reason = self._find_fault()
        if reason is not None:
            self._break(reason)
        elif self._warm.done() and self._breaks_in_a_row and self.not_ready is None:
            self._breaks_in_a_row = 0  # this pool came up: the next fault rebuilds at once
        if self.express is not None and self.fault is None:
            self.express.start_soon()

    def _find_fault(self) -> str | None:
        if not self._pool.active:
            return "the pool stopped with an internal error"
        pid = self.looks.stopped(self._worker_pids(), STALL_SECONDS)
        if pid is not None:
            return f"{self.name} worker pid {pid} is stopped (SIGSTOP or a debugger)"
        return None

    def _break(self, reason: str) -> None:
        """Fail the tasks in flight, tear the pool down, and schedule its rebuild."""
        if self.fault is not None or self._closed:
            return
        logger.warning("worker pool broken; rebuilding it", extra={"fields": {
            "pool": self.name, "reason": reason, "affected_request_ids": self.queue.request_ids()}})
        self.fault = reason
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(reason)  # wakes every task of this pool with WorkerLost
        self._lost = None
        self.queue = Queue()
        for pid in self._worker_pids():
            if self.looks.state(pid) == "T":  # SIGTERM would wait for a SIGCONT: kill it now
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        # Stopping joins pebble's threads and the old workers: not on the event loop.
        threading.Thread(target=_stop, args=(self._pool,), name="nabla-pool-teardown",
                         daemon=True).start()
        backoff = BACKOFF_SECONDS[min(self._breaks_in_a_row, len(BACKOFF_SECONDS) - 1)]
        self._breaks_in_a_row += 1
        self._rebuild_at = time.monotonic() + backoff
        record_pool_rebuild(self.name)
        if backoff == 0:
            self._rebuild()

    def _rebuild(self) -> None:
        self._pool, self._warm = self._start()
        self.fault = None
        self.rebuilds += 1
        logger.info("worker pool rebuilt", extra={"fields": {
            "pool": self.name, "rebuilds": self.rebuilds}})

    async def compile(self, spec: CompileSpec, program: Program | None = None,
                      estimate: float = 1.0) -> Compiled:
        """Compile in a worker (parsing unless ``program`` is given), estimated by the cost
        model at ``estimate`` seconds; raises ``TooComplex``, ``RemoteProblem`` or
        ``Unavailable``."""
        result = await self._run(compile_task, (spec, self.limits, program),
                                 estimate * self.calibration.value)
        if isinstance(result, dict):
            raise RemoteProblem(result)
        assert isinstance(result, Compiled)
        if not result.cached:  # a read from the persistent cache says nothing of compiles
            self.calibration.observe_compile(estimate, dict(result.seconds).get("compile", 0.0))
        return result

    async def call(self, func: Callable[..., Any], *args: Any,
                   allowance: Allowance | None = None) -> Any:
        """``func(*args)`` in a worker within the budget (``func`` importable by name), and
        within ``allowance``'s deadline."""
        started = time.monotonic()
        answer = None
        if self.express is not None and self.fault is None:
            try:
                answer = await self.express.call(func, args, allowance)
            except WorkerLost as lost:  # the pool's own workers run it again
                self._log_lost(str(lost))
        if answer is None:
            answer = await self._run(run_task, (func, args), self.task_seconds.value, allowance)
        ok, result = answer
        self.task_seconds.observe(time.monotonic() - started)
        if not ok:
            raise RemoteProblem(result)
        return result

    async def _run(self, func: Callable[..., Any], args: tuple[Any, ...], seconds: float,
                   allowance: Allowance | None = None) -> Any:
        """One task; a task whose worker was lost (not by its own doing) runs once more, on
        the rebuilt pool, so one fault of ours costs the client time, not an error."""
        try:
            return await self._schedule(func, args, seconds, allowance)
        except WorkerLost as lost:
            self._log_lost(str(lost))
            until = time.monotonic() + RETRY_WAIT_SECONDS
            if allowance is not None:
                until = min(until, allowance.deadline)
            while self.fault is not None and time.monotonic() < until:
                await asyncio.sleep(0.05)
        try:
            return await self._schedule(func, args, seconds, allowance)
        except WorkerLost as lost:
            self._log_lost(str(lost))
            raise self._unavailable(str(lost)) from None

    async def _schedule(self, func: Callable[..., Any], args: tuple[Any, ...], seconds: float,
                        allowance: Allowance | None) -> Any:
        self.watch(look=False)
        if self.fault is not None:
            raise self._unavailable(self.fault)
        try:
            future = self._pool.schedule(func, args=args, timeout=WALL_BUDGETS * self.budget)
        except RuntimeError as error:  # pebble refuses work once its pool is broken
            self._break(f"the pool refused a task ({error})")
            raise WorkerLost(str(error)) from None
        queue = self.queue
        queue.add(future, Task(seconds, REQUEST_ID.get()))
        try:
            return await self._outcome(future, allowance)
        except FutureTimeout:
            raise self._over_budget(queue.tasks.get(future)) from None
        except ProcessExpired as error:
            died = self.looks.died(self.name, error.pid, error.exitcode,
                                   self.settings.worker_memory_bytes)
            if isinstance(died, WorkerLost) and died.external:
                # Killed from outside (SIGKILL of a whole group, say) at any moment: maybe
                # holding the lock of the pool's channel, and pebble's new worker then waits
                # for it (a minute) while the retry of this task waits for that worker
                # (test_chaos: no answer for 30 s). A new pool has a new channel.
                self._break(str(died))
            raise died from None
        except (FutureCancelled, BrokenProcessPool) as error:
            task = queue.tasks.get(future)
            if task is not None and task.over_budget:
                raise too_slow(self.name, self.budget) from None
            raise WorkerLost(str(error) or f"the {self.name} pool broke") from None
        finally:
            queue.remove(future)

    def _over_budget(self, task: Task | None) -> Exception:
        """``TooComplex`` if the worker computed for most of the budget, else ``WorkerLost``."""
        return self.looks.over_budget(self.name, task.pid if task else None,
                                      task.cpu_at_start if task else None, self.budget,
                                      too_slow(self.name, self.budget))

    async def _outcome(self, future: Future[Any], allowance: Allowance | None) -> Any:
        """The task's result, ``WorkerLost`` as soon as its pool breaks, or 503 at the
        deadline (the task is then cancelled: nobody else waits for it)."""
        if self._lost is None:
            self._lost = asyncio.get_running_loop().create_future()
        lost, waiter = self._lost, asyncio.wrap_future(future)
        timeout = None if allowance is None else max(0.0, allowance.remaining())
        try:
            await asyncio.wait((waiter, lost), timeout=timeout,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not waiter.done():
                waiter.cancel()  # cancelled, past the deadline, or the pool broke under it
        if not waiter.done() or waiter.cancelled():
            if lost.done():
                raise WorkerLost(lost.result())
            if allowance is not None and allowance.remaining() <= 0:
                raise deadline_exceeded(allowance, f"a {self.name} worker",
                                        self.expected_wait())
            if future.cancelled():
                raise FutureCancelled  # by the watchdog: the task used up its budget
            raise WorkerLost("")
        return waiter.result()

    def _log_lost(self, reason: str) -> None:
        logger.warning("a worker was lost while serving this request", extra={"fields": {
            "pool": self.name, "reason": reason}})

    def _unavailable(self, reason: str) -> Unavailable:
        return Unavailable(f"The {self.name} workers failed ({reason}); this is not a fault of "
                           "the request: retry it shortly", retry_after=1, code="workers_lost")

    def close(self) -> None:
        """Stop the workers (tasks in flight are cancelled)."""
        self._closed = True
        if self.express is not None:
            self.express.close()
        _stop(self._pool)


def _stop(pool: ProcessPool) -> None:
    pool.stop()  # type: ignore[no-untyped-call]
    pool.join(timeout=10)
