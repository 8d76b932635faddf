"""The engine of one process: from a compile spec to a tier that evaluates it.

    spec -> executable in the cache?            -> XlaTier (warm: nothing is parsed)
         -> small, and every node has a jet rule -> JetTier, and XLA compiles it meanwhile
         -> otherwise                            -> XlaTier, compiled now

New text is read only in a worker process with a budget (or, with ``in_process``, in a
thread), and once per program: built programs are kept (``programs``) for the first tier,
the compile, ``symbolic``, ``explain`` and ``/v1/plot``. At most ``max_pending_compiles``
distinct compiles run at a time; concurrent requests for one spec share one compile, and
for one text one parse. The programs and the failed compiles are kept in LRUs used on the
event loop only; the executables' LRU takes a lock, so any thread may read it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Hashable
from typing import Any

from cachetools import LRUCache
from starlette.concurrency import run_in_threadpool

from app.config import Settings
from app.engine.caches import Counted, SingleFlight, remember
from app.engine.compilation import CompileSpec, Parsed, compile_spec, load, parse_program
from app.engine.first_tier import interpretable
from app.engine.tiers import JetTier, Tier, XlaTier
from app.engine.workers import CompilePool
from app.errors import NablaError, Unavailable
from app.ops.metrics import record_compile

logger = logging.getLogger("nabla")
#: Seconds between two health checks of the worker pools.
WATCH_SECONDS = 0.25


class Engine:
    """Holds the worker pools and the caches of executables and programs."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.executables: Counted[CompileSpec, XlaTier] = Counted(settings.compile_cache_size)
        self.programs: LRUCache[Hashable, Parsed] = LRUCache(settings.compile_cache_size)
        self.pool: CompilePool | None = None
        self.parse_pool: CompilePool | None = None
        self._compiles: SingleFlight[CompileSpec, XlaTier] = SingleFlight()
        self._parses: SingleFlight[Hashable, Parsed] = SingleFlight()
        self._uncompilable: LRUCache[CompileSpec, str] = LRUCache(settings.compile_cache_size)
        self._background: set[asyncio.Task[None]] = set()
        self._watchdog: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the compile workers, the parse worker (unless working in process) and the
        watchdog that heals their pools; call it on the running event loop."""
        if not self.settings.in_process and self.pool is None:
            self.pool = CompilePool(self.settings)
            if self.settings.interpret:
                self.parse_pool = CompilePool(self.settings, workers=1, name="parse",
                                              budget=self.settings.parse_timeout_seconds)
            self._watchdog = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            for pool in self._pools():
                try:
                    pool.watch()
                except Exception:  # the watchdog must outlive any one failure
                    logger.exception("worker pool health check failed")
            await asyncio.sleep(WATCH_SECONDS)

    def _pools(self) -> list[CompilePool]:
        return [p for p in (self.pool, self.parse_pool) if p is not None]

    @property
    def not_ready_reason(self) -> str | None:
        """Why new expressions cannot be read or compiled now, or None when they can."""
        if self.settings.in_process:
            return None
        if self.pool is None:
            return "the compile workers are not started"
        return next((r for p in self._pools() if (r := p.not_ready_reason) is not None), None)

    @property
    def ready(self) -> bool:
        """Whether new expressions can be compiled now."""
        return self.not_ready_reason is None

    def close(self) -> None:
        """Stop the watchdog and the workers."""
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        for pool in self._pools():
            pool.close()
        self.pool = self.parse_pool = None

    async def tier(self, spec: CompileSpec) -> Tier:
        """The way to evaluate ``spec`` now: its executable, jets, or a new executable."""
        compiled = self.executables.get(spec.key)
        if compiled is not None:
            return compiled
        jets = await self._jets(spec)
        return jets if jets is not None else await self.compiled(spec)

    async def _jets(self, spec: CompileSpec) -> JetTier | None:
        """The first tier, when ``spec`` is small and every node of its program has a rule."""
        if not self.settings.interpret or not interpretable(
                sum(map(len, spec.texts)), 0, 1, spec.count, spec.kinds):
            return None
        parsed = await self.parsed(spec)
        program = parsed.program
        if not parsed.jet_nodes or not interpretable(
                0, program.layout.n, program.outputs * parsed.jet_nodes, spec.count, spec.kinds):
            return None
        return JetTier(program, spec, self.compile_later, self.compiled)

    async def parsed(self, spec: CompileSpec) -> Parsed:
        """The built program of ``spec``'s texts: kept, being built, or built now."""
        key = spec.program_key
        known = self.programs.get(key)
        if known is not None:
            return known
        return await self._parses.run(key, lambda: self._parse(spec))

    async def _parse(self, spec: CompileSpec) -> Parsed:
        pool = self.parse_pool or self.pool
        if pool is None:
            parsed: Parsed = await run_in_threadpool(parse_program, spec, self.settings)
        else:  # untrusted text is read in a worker, with a budget
            parsed = await pool.call(parse_program, spec, pool.limits)
        record_compile({"parse": parsed.seconds})
        remember(self.programs, spec.program_key, parsed)
        return parsed

    async def compiled(self, spec: CompileSpec) -> XlaTier:
        """The executable of ``spec``: cached, being compiled, or compiled now."""
        known = self.executables.peek(spec.key)
        if known is not None:
            return known
        if spec.key not in self._compiles and (
                len(self._compiles) >= self.settings.max_pending_compiles):
            raise Unavailable("Too many new expressions are being compiled; retry shortly",
                              retry_after=max(1, int(self.settings.compile_timeout_seconds / 4)),
                              code="compile_queue_full")
        return await self._compiles.run(spec.key, lambda: self._compile(spec))

    async def _compile(self, spec: CompileSpec) -> XlaTier:
        parsed = self.programs.get(spec.program_key)
        program = None if parsed is None else parsed.program  # parsed: the worker compiles
        if self.pool is None:
            compiled = await run_in_threadpool(compile_spec, spec, self.settings, program)
        else:
            compiled = await self.pool.compile(spec, program)
        if compiled.parsed is not None:
            remember(self.programs, spec.program_key, compiled.parsed)
        started = time.perf_counter()
        executable = await run_in_threadpool(load, compiled)
        record_compile({**dict(compiled.seconds), "load": time.perf_counter() - started})
        tier = XlaTier(compiled.signature, executable)
        self.executables.put(spec.key, tier)
        return tier

    def compile_later(self, spec: CompileSpec) -> None:
        """Compile ``spec`` with XLA in the background, for the requests that follow."""
        key = spec.key
        if (key in self._compiles or key in self._uncompilable
                or len(self._compiles) >= self.settings.max_pending_compiles):
            return
        task = asyncio.get_running_loop().create_task(self._compile_quietly(spec))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _compile_quietly(self, spec: CompileSpec) -> None:
        try:
            await self.compiled(spec)
        except NablaError as error:  # too complex for XLA: keep answering with jets
            remember(self._uncompilable, spec.key, error.code)
        except Exception:
            logger.exception("background compile failed")

    async def drain(self) -> None:
        """Wait for the background compiles started so far."""
        await asyncio.gather(*self._background)

    async def task(self, func: Callable[..., Any], *args: Any) -> Any:
        """A cold task other than a compile (symbolic, explain): in a worker, or a thread."""
        if self.pool is None:
            return await run_in_threadpool(func, *args)
        return await self.pool.call(func, *args)
