"""Worker processes for cold work: parse, trace and compile with a time budget and a memory cap.

XLA compilation cannot be interrupted from Python, so a budget needs a process that can
be killed: pebble's ``ProcessPool`` kills a task's worker when its timeout expires and
starts a new one. Workers are spawned (not forked: JAX's threads make ``fork`` unsafe),
cap their own memory with ``RLIMIT_DATA``, and warm JAX up before their first task.

A pool heals itself. pebble marks a pool broken for good when a worker dies outside a task
("Unexpected error within the Pool"), and a stopped worker (SIGSTOP) holds its task, and
possibly the pool's channel, forever. ``CompilePool.watch`` (called by the server's watchdog,
and before each task) finds either fault, fails the tasks in flight with an honest 503,
tears the pool down and starts a new one, with a bounded back-off when new pools keep
breaking. Until the new pool is warm, ``ready`` is False and /readyz says 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import resource
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import BrokenExecutor as BrokenProcessPool
from concurrent.futures import CancelledError as FutureCancelled
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from pebble import ProcessExpired, ProcessPool

from app.config import Limits, Settings
from app.engine.compilation import Compiled, CompileSpec, compile_or_problem
from app.engine.faults import EXTERNAL_SIGNALS, WorkerLost, process_state, signal_name
from app.engine.xla import KINDS, Program
from app.errors import NablaError, RemoteProblem, TooComplex, Unavailable
from app.ops.logs import REQUEST_ID
from app.ops.metrics import record_pool_rebuild

#: A worker stopped (SIGSTOP, a debugger) this long is a fault: its pool is rebuilt.
STALL_SECONDS = 1.0
#: Seconds before rebuilding a pool again, by how many pools in a row broke before warming up.
BACKOFF_SECONDS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)
#: How long a task lost to a fault waits for the rebuilt pool before its one retry.
RETRY_WAIT_SECONDS = 10.0
logger = logging.getLogger("nabla.workers")


def _init_worker(memory_bytes: int) -> None:
    os.nice(10)  # cold work yields the CPU to the server's warm requests
    if memory_bytes > 0:
        resource.setrlimit(resource.RLIMIT_DATA, (memory_bytes, memory_bytes))
    from app.engine import evaluator  # noqa: F401 - imports JAX and turns on float64

    spec = CompileSpec(("sin(x)",), False, None, (), KINDS, None, 1)
    compile_or_problem(spec, Limits())


def _ready() -> bool:
    return True


def _compile(spec: CompileSpec, limits: Limits,
             program: Program | None) -> Compiled | dict[str, Any]:
    try:
        return compile_or_problem(spec, limits, program)
    except Exception as error:  # XLA reports exhausted memory as its own runtime error, and
        # a C++ allocation over RLIMIT_DATA can surface as RuntimeError("std::bad_alloc")
        if any(s in str(error) for s in ("RESOURCE_EXHAUSTED", "bad_alloc")) or isinstance(
                error, MemoryError):
            return TooComplex.memory().problem()
        raise


def _task(func: Callable[..., Any], args: tuple[Any, ...]) -> tuple[bool, Any]:
    """Run another cold task (symbolic derivatives, explain); errors come back as problems."""
    try:
        return True, func(*args)
    except NablaError as error:
        return False, error.problem()
    except MemoryError:
        return False, TooComplex.memory().problem()


class CompilePool:
    """A self-healing pool of workers; ``compile`` and ``call`` await one task within the budget."""

    def __init__(self, settings: Settings, workers: int | None = None,
                 budget: float | None = None, name: str = "compile") -> None:
        self.settings = settings
        self.name = name
        self.budget = settings.compile_timeout_seconds if budget is None else budget
        self.limits = Limits.model_validate(settings.model_dump(include=set(Limits.model_fields)))
        self.workers = settings.compile_workers if workers is None else workers
        self.rebuilds = 0
        self.fault: str | None = None  # why the pool is down, until it is rebuilt
        self._closed = False
        self._breaks_in_a_row = 0
        self._rebuild_at = 0.0
        self._stopped_since: dict[int, float] = {}
        self._outstanding: dict[Future[Any], str | None] = {}  # task -> request id
        self._lost: asyncio.Future[str] | None = None  # set when this pool breaks
        self._pool, self._warm = self._start()

    def _start(self) -> tuple[ProcessPool, Future[Any]]:
        pool = ProcessPool(
            max_workers=self.workers,
            initializer=_init_worker,
            initargs=(self.settings.worker_memory_bytes,),
            context=multiprocessing.get_context("spawn"),
        )
        # Ready once a worker has started and compiled its warm-up expression.
        return pool, pool.schedule(_ready)

    @property
    def ready(self) -> bool:
        """True while a worker is up, warm and not stopped."""
        return self.not_ready_reason is None

    @property
    def not_ready_reason(self) -> str | None:
        """Why no worker can take work now, or None when one can."""
        if self.fault is not None:
            return f"the {self.name} workers are being restarted after a fault ({self.fault})"
        if not self._warm.done():
            return f"the {self.name} workers are starting"
        if self._warm.cancelled() or self._warm.exception() is not None:
            return f"the {self.name} workers failed to start"
        pids = self._worker_pids()
        if pids and all(process_state(pid) == "T" for pid in pids):
            return f"every {self.name} worker is stopped"
        return None

    def _worker_pids(self) -> list[int]:
        # pebble keeps its workers by pid; there is no public accessor.
        manager = getattr(getattr(self._pool, "_pool_manager", None), "worker_manager", None)
        return list(getattr(manager, "workers", {}))

    def watch(self) -> None:
        """Look for a fault and heal it: the watchdog calls this a few times a second."""
        if self._closed:
            return
        if self.fault is not None:
            if time.monotonic() >= self._rebuild_at:
                self._rebuild()
            return
        reason = self._find_fault()
        if reason is not None:
            self._break(reason)
        elif self._warm.done() and self._breaks_in_a_row and self.not_ready_reason is None:
            self._breaks_in_a_row = 0  # this pool came up: the next fault rebuilds at once

    def _find_fault(self) -> str | None:
        if not self._pool.active:
            return "the pool stopped with an internal error"
        now = time.monotonic()
        pids = self._worker_pids()
        for pid in list(self._stopped_since):
            if pid not in pids:
                del self._stopped_since[pid]
        for pid in pids:
            if process_state(pid) != "T":
                self._stopped_since.pop(pid, None)
            elif now - self._stopped_since.setdefault(pid, now) >= STALL_SECONDS:
                return f"{self.name} worker pid {pid} is stopped (SIGSTOP or a debugger)"
        return None

    def _break(self, reason: str) -> None:
        """Fail the tasks in flight, tear the pool down, and schedule its rebuild."""
        if self.fault is not None or self._closed:
            return
        affected = sorted({rid for rid in self._outstanding.values() if rid})
        logger.warning("worker pool broken; rebuilding it", extra={"fields": {
            "pool": self.name, "reason": reason, "affected_request_ids": affected}})
        self.fault = reason
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(reason)  # wakes every task of this pool with WorkerLost
        self._lost = None
        self._outstanding = {}
        for pid in self._worker_pids():
            if process_state(pid) == "T":  # SIGTERM would wait for a SIGCONT: kill it now
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
        self._stopped_since.clear()
        self.fault = None
        self.rebuilds += 1
        logger.info("worker pool rebuilt", extra={"fields": {
            "pool": self.name, "rebuilds": self.rebuilds}})

    async def compile(self, spec: CompileSpec, program: Program | None = None) -> Compiled:
        """Compile in a worker (parsing unless ``program`` is given); raises ``TooComplex``,
        ``RemoteProblem`` or ``Unavailable``."""
        result = await self._run(_compile, (spec, self.limits, program))
        if isinstance(result, dict):
            raise RemoteProblem(result)
        assert isinstance(result, Compiled)
        return result

    async def call(self, func: Callable[..., Any], *args: Any) -> Any:
        """``func(*args)`` in a worker within the budget (``func`` importable by name)."""
        ok, result = await self._run(_task, (func, args))
        if not ok:
            raise RemoteProblem(result)
        return result

    async def _run(self, func: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        """One task; a task whose worker was lost (not by its own doing) runs once more, on
        the rebuilt pool, so one fault of ours costs the client time, not an error."""
        try:
            return await self._schedule(func, args)
        except WorkerLost as lost:
            self._log_lost(str(lost))
            deadline = time.monotonic() + RETRY_WAIT_SECONDS
            while self.fault is not None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        try:
            return await self._schedule(func, args)
        except WorkerLost as lost:
            self._log_lost(str(lost))
            raise self._unavailable(str(lost)) from None

    async def _schedule(self, func: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        self.watch()
        if self.fault is not None:
            raise self._unavailable(self.fault)
        try:
            future = self._pool.schedule(func, args=args, timeout=self.budget)
        except RuntimeError as error:  # pebble refuses work once its pool is broken
            self._break(f"the pool refused a task ({error})")
            raise WorkerLost(str(error)) from None
        self._outstanding[future] = REQUEST_ID.get()
        try:
            return await self._outcome(future)
        except FutureTimeout:
            raise TooComplex.time(self.budget) from None
        except ProcessExpired as error:
            if error.exitcode is not None and -error.exitcode in EXTERNAL_SIGNALS:
                raise WorkerLost(f"{self.name} worker pid {error.pid} was killed by "
                                 f"{signal_name(error.exitcode)}") from None
            raise TooComplex.memory() from None
        except (FutureCancelled, BrokenProcessPool) as error:
            raise WorkerLost(str(error) or f"the {self.name} pool broke") from None
        finally:
            self._outstanding.pop(future, None)

    async def _outcome(self, future: Future[Any]) -> Any:
        """The task's result, or ``WorkerLost`` as soon as its pool breaks."""
        if self._lost is None:
            self._lost = asyncio.get_running_loop().create_future()
        lost, waiter = self._lost, asyncio.wrap_future(future)
        try:
            await asyncio.wait((waiter, lost), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not waiter.done():
                waiter.cancel()  # the request was cancelled, or the pool broke under it
        if not waiter.done() or waiter.cancelled():
            raise WorkerLost(lost.result() if lost.done() else "")
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
        _stop(self._pool)


def _stop(pool: ProcessPool) -> None:
    pool.stop()  # type: ignore[no-untyped-call]
    pool.join(timeout=10)
