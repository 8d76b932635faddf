"""Worker processes for cold work: parse, trace and compile with a time budget and a memory cap.

XLA compilation cannot be interrupted from Python, so a budget needs a process that can
be killed: pebble's ``ProcessPool`` kills a task's worker when its timeout expires and
starts a new one. Workers are spawned (not forked: JAX's threads make ``fork`` unsafe),
cap their own memory with ``RLIMIT_DATA``, and warm JAX up before their first task.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import resource
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from pebble import ProcessExpired, ProcessPool

from app.config import Limits, Settings
from app.engine.compilation import Compiled, CompileSpec, compile_or_problem
from app.engine.xla import KINDS, Program
from app.errors import NablaError, RemoteProblem, TooComplex, Unavailable


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
    except Exception as error:  # XLA reports exhausted memory as its own runtime error
        if "RESOURCE_EXHAUSTED" in str(error) or isinstance(error, MemoryError):
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
    """A pool of compile workers; ``compile`` awaits one task within the budget."""

    def __init__(self, settings: Settings, workers: int | None = None,
                 budget: float | None = None) -> None:
        self.settings = settings
        self.budget = settings.compile_timeout_seconds if budget is None else budget
        self.limits = Limits.model_validate(settings.model_dump(include=set(Limits.model_fields)))
        self._pool = ProcessPool(
            max_workers=settings.compile_workers if workers is None else workers,
            initializer=_init_worker,
            initargs=(settings.worker_memory_bytes,),
            context=multiprocessing.get_context("spawn"),
        )
        # Ready once a worker has started and compiled its warm-up expression.
        self._warm = self._pool.schedule(_ready)

    @property
    def ready(self) -> bool:
        """True once a worker is up and warm."""
        return self._warm.done() and self._warm.exception() is None

    async def compile(self, spec: CompileSpec, program: Program | None = None) -> Compiled:
        """Compile in a worker (parsing unless ``program`` is given); raises ``TooComplex``,
        ``RemoteProblem`` or ``Unavailable``."""
        result = await self._schedule(_compile, (spec, self.limits, program))
        if isinstance(result, dict):
            raise RemoteProblem(result)
        assert isinstance(result, Compiled)
        return result

    async def call(self, func: Callable[..., Any], *args: Any) -> Any:
        """``func(*args)`` in a worker within the budget (``func`` importable by name)."""
        ok, result = await self._schedule(_task, (func, args))
        if not ok:
            raise RemoteProblem(result)
        return result

    async def _schedule(self, func: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        budget = self.budget
        try:
            future = self._pool.schedule(func, args=args, timeout=budget)
        except RuntimeError as error:  # the pool is closed or broken
            raise Unavailable(f"The compile workers are not running ({error})") from None
        try:
            result = await asyncio.wrap_future(future)
        except FutureTimeout:
            raise TooComplex.time(budget) from None
        except ProcessExpired:
            raise TooComplex.memory() from None
        return result

    def close(self) -> None:
        """Stop the workers (tasks in flight are cancelled)."""

        self._pool.stop()  # type: ignore[no-untyped-call]
        self._pool.join(timeout=10)
