"""What runs inside a worker process: its start (the signals it obeys, its priority and
memory cap, JAX warmed up) and the tasks the pools send it.

A task runs at the worker's priority (nice 10) for its first ``idle_after`` seconds, then
yields: its thread goes to Linux's ``SCHED_IDLE`` and runs only on CPU time that the rest of
the service (the server's event loop, other workers' short tasks) does not want
(``TaskThread``). A new expression of a few variables is read in 2-3 ms and never yields; a
compile bomb, refused by the cost estimate after 60-170 ms of parsing, yields after the first
few. At nice 10 such a worker still took slices of the CPU from the server's event loop
when the two shared a core: warm requests' p99 went from 0.6 to 2.6 ms while a client sent
bombs one after another. ``SCHED_IDLE`` for the whole worker cured that, but delayed every
new expression by the wake-ups of an idle task (cold median 3 ms -> 3.3-5.6 ms on a busy
machine): an idle task never preempts on waking, and a short task is all wake-up.

This module imports nothing heavy at its top: a spawned worker imports it to run
``start_worker`` first, so the signal mask is set before JAX, NumPy or OpenBLAS start a
thread, and every thread inherits it.
"""

from __future__ import annotations

import contextlib
import gc
import os
import queue
import resource
import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from app.errors import NablaError, TooComplex

if TYPE_CHECKING:
    from app.config import Limits
    from app.engine.compilation import Compiled, CompileSpec
    from app.engine.xla import Program

T = TypeVar("T")


def start_worker(memory_bytes: int, idle: bool = False, cache_folder: str | None = None,
                 cache_max_bytes: int = 0, idle_after: float | None = None) -> None:
    """A new worker's first steps (pebble's initializer): signals, memory cap, then JAX, with
    the persistent compile cache in ``cache_folder`` (checked by the server; None: off) kept
    within ``cache_max_bytes``, warmed up with one compile, then its priority.

    A worker warms up at the server's priority, and only then yields the CPU (nice 10) to the
    server's warm requests: its pool is not ready until it is warm, and a warm-up at nice 10
    on a loaded machine took 20-50 s of wall time instead of 1 s (the chaos test's recovery
    after a fault). An ``idle`` worker (background compiles: no request waits for its pool)
    runs only on CPU time nothing else wants, from its start; any other runs each task on a
    ``TaskThread`` that yields after ``idle_after`` seconds (None: never)."""
    global _tasks
    obey_only_parent()  # first: before JAX starts its threads
    if idle:
        lowest_priority()
    niceness = min(19, os.getpriority(os.PRIO_PROCESS, 0) + 10)
    if memory_bytes > 0:
        resource.setrlimit(resource.RLIMIT_DATA, (memory_bytes, memory_bytes))
    from app.config import Limits
    from app.engine import (
        disk_cache,
        evaluator,  # noqa: F401 - imports JAX and turns on float64
    )
    from app.engine.compilation import CompileSpec, compile_or_problem
    from app.engine.xla import KINDS

    disk_cache.enable(cache_folder, cache_max_bytes)
    compile_or_problem(CompileSpec(("sin(x)",), False, None, (), KINDS, None, 1), Limits())
    # JAX and SymPy as loaded and warmed up stay for the worker's life: out of the cyclic
    # collector's way, so that no task pays for a full collection of them (~120 ms).
    gc.freeze()
    if not idle:
        every_thread(lambda tid: os.setpriority(os.PRIO_PROCESS, tid, niceness))
        if idle_after is not None:
            _tasks = TaskThread(idle_after)


class TaskThread:
    """Runs a worker's tasks, one at a time, on a thread of their own that gives up its
    priority (``SCHED_IDLE``) once a task has run ``idle_after`` seconds (of wall-clock time:
    on a busy machine a task yields sooner, never later). Linux lets a process lower a
    thread's priority but not raise it again without privileges, so a thread that yielded
    ends with its task, and the next task gets a new one (which inherits the worker's
    nice 10 from the thread that starts it). Handing a task over costs about 20 us."""

    def __init__(self, idle_after: float) -> None:
        self.idle_after = idle_after
        self.yielded = 0  # tasks that ran past ``idle_after`` (each thread's last)
        self._inbox: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._tid: int | None = None
        self._started = threading.Event()

    def run(self, func: Callable[..., T], *args: Any) -> T:
        """``func(*args)`` on the task thread; its result, or its exception raised here."""
        if self._tid is None:
            self._start()
        job = _Job(func, args)
        self._inbox.put(job)
        if not job.done.wait(self.idle_after):
            tid, self._tid = self._tid, None
            self._inbox.put(None)  # the thread ends after this task
            assert tid is not None
            with contextlib.suppress(OSError):  # it ended meanwhile
                yield_cpu(tid)
            self.yielded += 1
            job.done.wait()
        if job.error is not None:
            raise job.error
        return cast(T, job.result)

    def _start(self) -> None:
        self._started.clear()
        self._inbox = queue.SimpleQueue()
        thread = threading.Thread(target=self._serve, args=(self._inbox,),
                                  name="nabla-task", daemon=True)
        thread.start()
        self._started.wait()

    def _serve(self, inbox: queue.SimpleQueue[_Job | None]) -> None:
        self._tid = threading.get_native_id()
        self._started.set()
        while (job := inbox.get()) is not None:
            try:
                job.result = job.func(*job.args)
            except BaseException as error:  # handed to the caller as it is
                job.error = error
            job.done.set()
            del job


class _Job:
    """A task handed to a ``TaskThread``, and its outcome."""

    __slots__ = ("args", "done", "error", "func", "result")

    def __init__(self, func: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.func, self.args = func, args
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


def yield_cpu(tid: int) -> None:
    """Thread ``tid`` of this process to ``SCHED_IDLE`` (nice 19 where that is refused)."""
    try:
        os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
    except ProcessLookupError:
        raise
    except (AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, tid, 19)


#: This worker's task thread (None: tasks run on the thread that receives them).
_tasks: TaskThread | None = None


def _in_task_thread(func: Callable[..., T], *args: Any) -> T:
    return func(*args) if _tasks is None else _tasks.run(func, *args)


def every_thread(change: Callable[[int], None]) -> None:
    """``change`` each thread of this process (by its id), and any that one of them started
    meanwhile. Linux keeps a priority per thread, and JAX started its threads during the
    warm-up: changing the process's own (the main thread's) would leave them as they were."""
    done: set[int] = set()
    while todo := {int(tid) for tid in os.listdir("/proc/self/task")} - done:
        for tid in todo:
            with contextlib.suppress(ProcessLookupError):  # the thread ended meanwhile
                change(tid)
        done |= todo


def lowest_priority() -> None:
    """Linux's SCHED_IDLE for every thread of this process, and so for those they start
    (nice 19 where that is not allowed): speculation takes no CPU from requests, nor from
    compiles they wait for."""
    every_thread(yield_cpu)


def obey_only_parent() -> None:
    """In a new worker, before any other thread starts: ignore SIGINT, and SIGTERM unless
    the server (the parent) sends it. So a SIGTERM to the whole process group (systemd's
    ``KillMode=control-group``, ``kill -TERM -<pgid>``) or a Ctrl-C leaves the worker
    finishing its task while the server drains; pebble's SIGTERM to a worker over budget,
    or at shutdown, still stops it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # every later thread too

    def wait_for_term() -> None:
        while True:
            info = signal.sigwaitinfo({signal.SIGTERM})
            if info.si_pid == parent:
                os._exit(signal.SIGTERM)  # as pebble's own handler exits

    threading.Thread(target=wait_for_term, name="nabla-sigterm", daemon=True).start()


def ready() -> bool:
    """Answers once the worker has started and warmed up."""
    return True


def compile_task(spec: CompileSpec, limits: Limits,
                 program: Program | None) -> Compiled | dict[str, Any]:
    """``compile_or_problem``, with XLA's and Python's exhausted memory as its problem."""
    return _in_task_thread(_compile, spec, limits, program)


def _compile(spec: CompileSpec, limits: Limits,
             program: Program | None) -> Compiled | dict[str, Any]:
    from app.engine.compilation import compile_or_problem

    try:
        return compile_or_problem(spec, limits, program)
    except Exception as error:  # XLA reports exhausted memory as its own runtime error, and
        # a C++ allocation over RLIMIT_DATA can surface as RuntimeError("std::bad_alloc")
        if any(s in str(error) for s in ("RESOURCE_EXHAUSTED", "bad_alloc")) or isinstance(
                error, MemoryError):
            return TooComplex.memory().problem()
        raise


def run_task(func: Callable[..., Any], args: tuple[Any, ...]) -> tuple[bool, Any]:
    """Run another cold task (parsing, symbolic derivatives, explain); errors come back as
    problems."""
    return _in_task_thread(_run, func, args)


def _run(func: Callable[..., Any], args: tuple[Any, ...]) -> tuple[bool, Any]:
    try:
        return True, func(*args)
    except NablaError as error:
        return False, error.problem()
    except MemoryError:
        return False, TooComplex.memory().problem()
