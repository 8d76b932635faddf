"""What runs inside a worker process: its start (the signals it obeys, its priority and
memory cap, JAX warmed up) and the tasks the pools send it.

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
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from app.errors import NablaError, TooComplex

if TYPE_CHECKING:
    from app.config import Limits
    from app.engine.compilation import Compiled, CompileSpec
    from app.engine.xla import Program


def start_worker(memory_bytes: int, idle: bool = False, cache_folder: str | None = None,
                 cache_max_bytes: int = 0) -> None:
    """A new worker's first steps (pebble's initializer): signals, memory cap, then JAX, with
    the persistent compile cache in ``cache_folder`` (checked by the server; None: off) kept
    within ``cache_max_bytes``, warmed up with one compile, then its priority.

    A worker warms up at the server's priority, and only then yields the CPU (nice 10) to the
    server's warm requests: its pool is not ready until it is warm, and a warm-up at nice 10
    on a loaded machine took 20-50 s of wall time instead of 1 s (the chaos test's recovery
    after a fault). An ``idle`` worker (background compiles: no request waits for its pool)
    runs only on CPU time nothing else wants, from its start."""
    niceness = begin(memory_bytes, idle)
    from app.config import Limits
    from app.engine import (
        disk_cache,
        evaluator,  # noqa: F401 - imports JAX and turns on float64
    )
    from app.engine.compilation import CompileSpec, compile_or_problem
    from app.engine.xla import KINDS

    disk_cache.enable(cache_folder, cache_max_bytes)
    compile_or_problem(CompileSpec(("sin(x)",), False, None, (), KINDS, None, 1), Limits())
    settle(None if idle else niceness)


def begin(memory_bytes: int, idle: bool = False) -> int:
    """A worker's first steps, before any import that starts a thread: the signals it obeys,
    its priority (``idle``: the lowest), its memory cap; the niceness it takes once warm."""
    obey_only_parent()  # first: before JAX starts its threads
    if idle:
        lowest_priority()
    niceness = min(19, os.getpriority(os.PRIO_PROCESS, 0) + 10)
    if memory_bytes > 0:
        resource.setrlimit(resource.RLIMIT_DATA, (memory_bytes, memory_bytes))
    return niceness


def settle(niceness: int | None) -> None:
    """A warm worker's last step: what it loaded and warmed up stays for its life, out of
    the cyclic collector's way (no task pays for a full collection of JAX and SymPy, ~120
    ms); then every thread yields the CPU at ``niceness`` (None: as it is)."""
    gc.freeze()
    if niceness is not None:
        every_thread(lambda tid: os.setpriority(os.PRIO_PROCESS, tid, niceness))


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
    every_thread(lowest_for)


def lowest_for(tid: int) -> None:
    """Linux's SCHED_IDLE for the thread ``tid`` (nice 19 where that is not allowed)."""
    try:
        os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, tid, 19)


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
    """Run another cold task (symbolic derivatives, explain); errors come back as problems."""
    try:
        return True, func(*args)
    except NablaError as error:
        return False, error.problem()
    except MemoryError:
        return False, TooComplex.memory().problem()


# The express lane's worker (``app.engine.express``): tasks and answers as frames on a socket.

FRAME_HEADER = 4  # bytes of a frame's length, big-endian, before the frame


#: Wall seconds an express task runs at the worker's priority before it yields to everything
#: else (SCHED_IDLE). Reading a usual expression takes under 1 ms, a 100-variable Rosenbrock
#: 22 ms, a compile bomb of 500 factors 45 ms: the bomb's parse then takes no CPU a warm request
#: wants (issue 3's isolation row), and the lane hands a task that waits too long for CPU to
#: the pool's own worker (``app.engine.express``).
IDLE_AFTER_SECONDS = 0.01


def express_worker(sock: socket.socket, memory_bytes: int) -> None:
    """The express worker's life: the start of a worker (without JAX's compile warm-up: it
    only reads expressions), one frame saying it is ready, then one task at a time until the
    server closes its end. A task is ``(number, func, args)``; its answer is ``(number,
    "done", run_task(func, args), cpu)``, or ``(number, "raised", error, cpu)``, with the CPU
    seconds the worker has used (the server's starting point for the next task's budget)."""
    one_malloc_arena()  # before any thread starts
    niceness = begin(memory_bytes)
    import pickle
    import time

    from app.config import Limits
    from app.engine.compilation import CompileSpec
    from app.engine.planning import Policy, parse_and_plan
    from app.engine.xla import KINDS

    parse_and_plan(CompileSpec(("sin(x)*y",), False, None, (), KINDS, None, 1), Limits(),
                   Policy(1.0, True))  # Lark's tables and SymPy's caches, warmed up
    settle(niceness)
    tasks = TaskThreads(IDLE_AFTER_SECONDS)
    write_frame(sock, pickle.dumps((0, "ready", os.getpid(), time.process_time())))
    while (frame := read_frame(sock)) is not None:
        number, func, args = pickle.loads(frame)  # noqa: S301 - the server's, on our socket pair
        ok, value = tasks.run(func, args)
        try:
            answer = pickle.dumps((number, "done" if ok else "raised", value,
                                   time.process_time()))
        except Exception as error:  # an answer pickle refuses: its text, as pebble sends it
            answer = pickle.dumps((number, "raised", RuntimeError(repr(error if ok else value)),
                                   time.process_time()))
        write_frame(sock, answer)
    os._exit(0)


class TaskThreads:
    """Runs each task on a thread of its own priority, and moves a task still running after
    ``idle_after`` seconds to Linux's SCHED_IDLE: it then runs only on CPU time nothing else
    wants. Linux lets a thread lower its priority but, unprivileged, never raise it again, so
    that thread ends with its task and the next task gets a new one; a short task leaves its
    thread for the next."""

    def __init__(self, idle_after: float) -> None:
        self.idle_after = idle_after
        self.demoted = 0  # tasks moved to SCHED_IDLE, for the tests
        self._thread: _TaskThread | None = None

    def run(self, func: Callable[..., Any], args: tuple[Any, ...]) -> tuple[bool, Any]:
        """``(True, run_task(func, args))``, or ``(False, the exception it raised)``."""
        thread = self._thread
        if thread is None:
            thread = self._thread = _TaskThread()
        thread.tasks.put((func, args))
        try:
            return thread.answers.get(timeout=self.idle_after)
        except queue.Empty:
            pass
        if thread.lower():
            self.demoted += 1
        self._thread = None
        answer = thread.answers.get()
        thread.tasks.put(None)  # its last task: it ends
        return answer


class _TaskThread:
    def __init__(self) -> None:
        self.tasks: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...]] | None] = (
            queue.SimpleQueue())
        self.answers: queue.SimpleQueue[tuple[bool, Any]] = queue.SimpleQueue()
        self._started = threading.Event()
        self._tid = 0
        threading.Thread(target=self._serve, name="nabla-task", daemon=True).start()
        self._started.wait()

    def _serve(self) -> None:
        self._tid = threading.get_native_id()
        self._started.set()
        while (task := self.tasks.get()) is not None:
            func, args = task
            try:
                answer: tuple[bool, Any] = (True, run_task(func, args))
            except Exception as error:
                answer = (False, error)
            self.answers.put(answer)

    def lower(self) -> bool:
        """This thread at the lowest priority (``lowest_for``); whether it worked."""
        try:
            lowest_for(self._tid)
        except OSError:
            return False
        return True


def one_malloc_arena() -> None:
    """glibc's malloc gives a thread an arena of its own (up to 8 per core) while others
    are alive, which grows the data segment that the worker's memory cap counts; the
    express worker's task threads share the main one instead. (An ended thread's arena is
    reused: 40 long tasks, each on a new thread, left the segment as it was either way.)"""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL(None).mallopt(-8, 1)  # M_ARENA_MAX


def write_frame(sock: socket.socket, data: bytes) -> None:
    """``data`` after its length."""
    sock.sendall(len(data).to_bytes(FRAME_HEADER, "big") + data)


def read_frame(sock: socket.socket) -> bytes | None:
    """The next whole frame, or None once the other end is closed."""
    header = _read_exactly(sock, FRAME_HEADER)
    if header is None:
        return None
    return _read_exactly(sock, int.from_bytes(header, "big"))


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(min(size - len(data), 1 << 20))
        if not chunk:
            return None
        data += chunk
    return bytes(data)
