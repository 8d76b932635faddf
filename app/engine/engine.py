"""The engine of one process: from a compile spec to a tier that evaluates it.

    spec -> executable in the cache?              -> XlaTier (warm: nothing is parsed)
         -> parse (in a worker) and plan from the estimated costs (app.engine.planning):
         -> small, and every node has a jet rule   -> JetTier (XLA compiles it in the
                                                     background once it is requested again)
         -> XLA hopeless, jets' work small         -> JetTier for good (never compiled)
         -> XLA hopeless                           -> 422 too_complex at once (in the worker)
         -> otherwise                              -> XlaTier, compiled now

New text is read only in a worker process with a budget (or, with ``in_process``, in a
thread), and once per program: built programs are kept (``programs``) for the first tier,
the compile, ``symbolic``, ``explain`` and ``/v1/plot``. At most ``max_pending_compiles``
distinct compiles run at a time; concurrent requests for one spec share one compile, and
for one text one parse. Each compile and parse is a task of its own, so a request waits for
it only until its deadline (``app.engine.admission``); a compile that the queue cannot
finish within a request's deadline is refused at once with 503 and the expected wait as
``Retry-After`` (and started, when the queue is short, so that the retry finds it). The
programs and the failed compiles are kept in LRUs used on the event loop only; the
executables' LRU takes a lock, so any thread may read it.

Background compiles (``app.engine.speculation``) are for hot programs only, start only
while no request waits for a compile, and run on a worker of their own at idle CPU
priority, started when the first is needed: a request never waits behind speculation.
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
from app.engine import admission, disk_cache
from app.engine.admission import Allowance
from app.engine.caches import Counted, SingleFlight, remember
from app.engine.compilation import CompileSpec, Parsed, compile_spec, load
from app.engine.costs import compile_seconds, jet_entries, retry_seconds
from app.engine.planning import Policy, parse_and_plan, plan, surely_xla, too_costly
from app.engine.speculation import Speculation
from app.engine.tiers import INLINE_JET_ENTRIES, INLINE_JET_NODES, JetTier, Tier, XlaTier
from app.engine.workers import CompilePool, NotReady
from app.engine.xla import output_layout
from app.errors import NablaError, RemoteProblem, Unavailable
from app.ops.metrics import record_compile

logger = logging.getLogger("nabla")
#: Seconds between two health checks of the worker pools.
WATCH_SECONDS = 0.25


class Engine:
    """Holds the worker pools and the caches of executables and programs."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.budget = settings.compile_timeout_seconds
        self.policy = Policy(self.budget, settings.interpret)
        self.executables: Counted[CompileSpec, XlaTier] = Counted(settings.compile_cache_size)
        self.programs: LRUCache[Hashable, Parsed] = LRUCache(settings.compile_cache_size)
        self.pool: CompilePool | None = None
        self.parse_pool: CompilePool | None = None
        self.background_pool: CompilePool | None = None  # started with the first hot program
        self._compiles: SingleFlight[CompileSpec, XlaTier] = SingleFlight()
        # Background compiles in flight (idle priority), and the compiles of their specs that
        # a request started meanwhile: a loaded machine may give the idle worker no CPU.
        self._speculating: set[CompileSpec] = set()
        self._urgent: SingleFlight[CompileSpec, XlaTier] = SingleFlight()
        self._parses: SingleFlight[Hashable, Parsed] = SingleFlight()
        self._done_by: dict[CompileSpec, float] = {}  # compile -> when it should be done
        # Compiles refused as too complex (by the budget, the memory cap or the estimate):
        # their problem, answered again at once; the first tier keeps answering them.
        self._uncompilable: LRUCache[CompileSpec, dict[str, Any]] = LRUCache(
            settings.compile_cache_size)
        self.speculation = Speculation(self._compile_quietly)
        self._watchdog: asyncio.Task[None] | None = None
        self.cache_folder: str | None = None  # of the persistent compile cache, once started

    def start(self) -> None:
        """Start the compile workers, the parse worker (unless working in process) and the
        watchdog that heals their pools; call it on the running event loop."""
        if self.cache_folder is None and self.settings.cache_dir != "":
            self.cache_folder = disk_cache.resolve_folder(self.settings.cache_dir)
            if self.cache_folder is not None:
                logger.info("persistent compile cache in %s", self.cache_folder)
        if self.settings.in_process:
            disk_cache.enable(self.cache_folder, self.settings.cache_max_bytes)
        elif self.pool is None:
            self.pool = CompilePool(self.settings, cache_folder=self.cache_folder)
            if self.settings.interpret:
                self.parse_pool = CompilePool(self.settings, workers=1, name="parse",
                                              budget=self.settings.parse_timeout_seconds,
                                              express=True)
            self._watchdog = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            for pool in self._all_pools():
                try:
                    pool.watch()
                except Exception:  # the watchdog must outlive any one failure
                    logger.exception("worker pool health check failed")
            await asyncio.sleep(WATCH_SECONDS)

    def _pools(self) -> list[CompilePool]:
        """The pools that requests wait for (the background one is not: it is speculation)."""
        return [p for p in (self.pool, self.parse_pool) if p is not None]

    def _all_pools(self) -> list[CompilePool]:
        return [p for p in (*self._pools(), self.background_pool) if p is not None]

    @property
    def not_ready(self) -> NotReady | None:
        """Why new expressions cannot be read or compiled now, or None when they can."""
        if self.settings.in_process:
            return None
        if self.pool is None:
            return NotReady("starting", "the compile workers are not started")
        return next((r for p in self._pools() if (r := p.not_ready) is not None), None)

    @property
    def ready(self) -> bool:
        """Whether new expressions can be compiled now."""
        return self.not_ready is None

    def close(self) -> None:
        """Stop the watchdog and the workers."""
        pools = self._detach()
        for pool in pools:
            pool.close()

    async def aclose(self) -> None:
        """``close``, with the workers stopped off the event loop (it keeps answering)."""
        for pool in self._detach():
            await asyncio.to_thread(pool.close)

    def _detach(self) -> list[CompilePool]:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        pools = self._all_pools()
        self.pool = self.parse_pool = self.background_pool = None
        return pools

    async def tier(self, spec: CompileSpec) -> Tier:
        """The way to evaluate ``spec`` now: its executable, jets, or a new executable."""
        compiled = self.executables.get(spec.key)
        if compiled is not None:
            return compiled
        allowance = admission.current()
        if surely_xla(spec, self.policy) and spec.key not in self._compiles:
            self._admit_soon(allowance)  # before reading it, if the queue is already too long
        parsed = await self._parsed(spec, allowance)
        route = plan(spec, parsed, self.policy)  # or TooComplex, at once
        if route == "xla":
            return await self._compiled(spec, allowance,
                                        compile_seconds(parsed.cost, spec.kinds))
        if route == "jets_for_good":  # XLA would not make it: it is never tried
            seconds = compile_seconds(parsed.cost, spec.kinds)
            remember(self._uncompilable, spec.key, too_costly(seconds, self.budget).problem())
        inline = parsed.jet_nodes <= INLINE_JET_NODES and jet_entries(
            parsed.program.layout.n, parsed.program.outputs * parsed.jet_nodes, spec.count,
            spec.kinds) <= INLINE_JET_ENTRIES
        return JetTier(parsed.program, spec, self.compile_later, self.compiled, inline)

    async def parsed(self, spec: CompileSpec) -> Parsed:
        """The built program of ``spec``'s texts: kept, being built, or built now."""
        return await self._parsed(spec, admission.current())

    async def _parsed(self, spec: CompileSpec, allowance: Allowance | None) -> Parsed:
        key = spec.program_key
        known = self.programs.get(key)
        if known is not None:
            return known
        # Keyed by what the plan depends on too: a text refused for a Hessian at a million
        # points is not refused for its value at one.
        work = self._parses.start((key, spec.kinds, spec.count), lambda: self._parse(spec))
        pool = self.parse_pool or self.pool
        return await admission.within(allowance, work, "a worker to read the expression",
                                      lambda: pool.expected_wait() if pool else 1.0)

    async def _parse(self, spec: CompileSpec) -> Parsed:
        pool = self.parse_pool or self.pool
        if pool is None:
            parsed: Parsed = await run_in_threadpool(parse_and_plan, spec, self.settings,
                                                     self.policy)
        else:  # untrusted text is read in a worker, with a budget
            parsed = await pool.call(parse_and_plan, spec, pool.limits, self.policy)
        record_compile({"parse": parsed.seconds})
        remember(self.programs, spec.program_key, parsed)
        return parsed

    async def compiled(self, spec: CompileSpec) -> XlaTier:
        """The executable of ``spec``: cached, being compiled, or compiled now."""
        return await self._compiled(spec, admission.current())

    async def _compiled(self, spec: CompileSpec, allowance: Allowance | None,
                        seconds: float | None = None) -> XlaTier:
        key = spec.key
        known = self.executables.peek(key)
        if known is not None:
            return known
        refused = self._uncompilable.get(key)
        if refused is not None and refused.get("code") == "too_complex":
            raise RemoteProblem(refused)
        self.speculation.withdraw(key)  # a request waits for it: no longer speculation
        if key in self._speculating:
            # Its compile runs on the idle-priority worker, which a busy machine starves: the
            # request's own compile runs on the compile workers (the first done is kept).
            work = self._urgent.start(key, lambda: self._compile(spec))
        else:
            if key not in self._compiles:
                self._admit(spec, allowance,
                            self._estimate(spec) if seconds is None else seconds)
            work = self._compiles.start(key, lambda: self._compile(spec))
        return await admission.within(allowance, work, "its compile", lambda: max(
            0.0, self._done_by.get(key, 0.0) - time.monotonic()))

    def _estimate(self, spec: CompileSpec) -> float:
        parsed = self.programs.get(spec.program_key)
        return 1.0 if parsed is None else compile_seconds(parsed.cost, spec.kinds)

    def _admit(self, spec: CompileSpec, allowance: Allowance | None, seconds: float) -> None:
        """Refuse a new compile when too many are pending, or when the queue cannot finish it
        within the request's deadline (then start it, if the queue is short, for the retry)."""
        if len(self._compiles) >= self.settings.max_pending_compiles:
            raise Unavailable("Too many new expressions are being compiled; retry shortly",
                              retry_after=max(1, int(self.settings.compile_timeout_seconds / 4)),
                              code="compile_queue_full")
        wait = self.pool.expected_wait() if self.pool is not None else 0.0
        if self.pool is not None:
            seconds *= self.pool.calibration.value
        late = allowance is not None and wait + seconds > allowance.remaining()
        if not late or wait < self.settings.request_deadline_seconds:
            self._done_by[spec.key] = time.monotonic() + wait + seconds
            self._compiles.start(spec.key, lambda: self._compile(spec))
        if allowance is not None and late:
            raise self._queue_too_long(allowance, wait, seconds)

    def _admit_soon(self, allowance: Allowance | None) -> None:
        """Refuse at once a compile that could not even start before the deadline."""
        wait = self.pool.expected_wait() if self.pool is not None else 0.0
        if allowance is not None and wait > allowance.remaining():
            raise self._queue_too_long(allowance, wait, 0.0)

    def _queue_too_long(self, allowance: Allowance, wait: float, seconds: float) -> Unavailable:
        own = f", and this one about {seconds:.1f} s" if seconds else ""
        return Unavailable(
            f"The compiles ahead of this one need about {wait:.1f} s{own}: past this "
            f"request's deadline of {allowance.seconds:g} s (request_deadline_seconds). "
            "Retry after that", retry_after=retry_seconds(wait + seconds),
            code="queue_too_long")

    async def _compile(self, spec: CompileSpec, background: bool = False) -> XlaTier:
        parsed = self.programs.get(spec.program_key)
        program = None if parsed is None else parsed.program  # parsed: the worker compiles
        pool = self._background_pool() if background else self.pool
        if not background:
            self.speculation.foreground_started()
        try:
            if pool is None:
                compiled = await run_in_threadpool(compile_spec, spec, self.settings, program)
            else:
                compiled = await pool.compile(spec, program, self._estimate(spec))
        except NablaError as error:
            if error.code == "too_complex":  # answered at once from now on
                remember(self._uncompilable, spec.key, error.problem())
            raise
        finally:
            self._done_by.pop(spec.key, None)
            if not background:
                self.speculation.foreground_finished()
        if compiled.parsed is not None:
            remember(self.programs, spec.program_key, compiled.parsed)
        started = time.perf_counter()
        executable = await run_in_threadpool(load, compiled)
        record_compile({**dict(compiled.seconds), "load": time.perf_counter() - started},
                       compiled.cached if self.cache_folder is not None else None)
        tier = XlaTier(compiled.signature, executable,
                       output_layout(compiled.signature, spec.kinds))
        self.executables.put(spec.key, tier)
        return tier

    def _background_pool(self) -> CompilePool | None:
        """The worker of background compiles (idle CPU priority), started on first use."""
        if self.background_pool is None and self.pool is not None:
            self.background_pool = CompilePool(self.settings, workers=1, name="background",
                                               idle=True, cache_folder=self.cache_folder)
        return self.background_pool

    def compile_later(self, spec: CompileSpec) -> None:
        """The first tier answered ``spec``: compile it with XLA in the background once it
        is requested again, for the requests that follow."""
        key = spec.key
        if key in self._compiles or key in self._uncompilable or key in self.executables:
            return
        self.speculation.answered(key)

    async def _compile_quietly(self, key: Hashable) -> None:
        assert isinstance(key, CompileSpec)
        try:
            if (key in self._compiles or key in self._uncompilable or key in self.executables
                    or len(self._compiles) >= self.settings.max_pending_compiles):
                return
            self._speculating.add(key)
            try:
                await self._compiles.start(key, lambda: self._compile(key, background=True))
            finally:
                self._speculating.discard(key)
        except Unavailable:
            pass  # a fault of ours, or too busy: a later request tries again
        except NablaError as error:  # too complex for XLA: keep answering with jets
            remember(self._uncompilable, key, error.problem())
        except Exception:
            logger.exception("background compile failed")

    async def drain(self) -> None:
        """Wait until the background compiles queued so far have ended."""
        await self.speculation.drain()

    async def task(self, func: Callable[..., Any], *args: Any) -> Any:
        """A cold task other than a compile (symbolic, explain): in a worker, or a thread;
        within the request's deadline."""
        if self.pool is None:
            return await run_in_threadpool(func, *args)
        return await self.pool.call(func, *args, allowance=admission.current())
