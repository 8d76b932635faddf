"""The data path of one request: request -> compile spec -> executable -> arrays -> body.

    request model -> CompileSpec (cheap: texts, shapes) -> executable from the cache, or a
    worker compiles it (app.engine.workers) -> points as an array -> evaluate -> response body

Warm requests never parse: the executable cache is keyed by the spec. Cold compiles run in
worker processes (or, with ``in_process``, in a thread), at most ``max_pending_compiles``
distinct ones at a time, and concurrent requests for one spec share one compile.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from starlette.concurrency import run_in_threadpool

from app.config import Settings
from app.engine.compilation import (
    CompileSpec,
    Shapes,
    Signature,
    build_program,
    check_output,
    compile_spec,
    load,
)
from app.engine.first_tier import interpret, interpretable, program_interpretable
from app.engine.workers import CompilePool
from app.engine.xla import COMPILED_KINDS, Program, bucket, evaluate
from app.errors import LimitError, NablaError, Unavailable
from app.learning.explanations import explanations
from app.ops.metrics import record_compile
from app.service.inputs import grid_count, grid_points, grid_results, product_vectors
from app.service.points import from_point, from_points
from schemas.differentiate import DifferentiateRequest

MAX_NONFINITE_LISTED = 1000
#: Requests whose points x (1 + n)^2 is at most this run on the event loop (~50 us).
INLINE_WORK = 4096
#: Batches of more points than this are converted and assembled in a thread.
BIG_BATCH = 4096
#: Seconds between two health checks of the worker pools.
WATCH_SECONDS = 0.25
T = TypeVar("T")
logger = logging.getLogger("nabla")


@dataclass(frozen=True)
class Entry:
    """A loaded executable and what the server needs to call it."""

    signature: Signature
    executable: Any


@dataclass
class ExecutableCache:
    """A bounded LRU of loaded executables, safe under threads; counts hits and misses."""

    capacity: int
    items: OrderedDict[CompileSpec, Entry] = field(default_factory=OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    hits: int = 0
    misses: int = 0

    def __len__(self) -> int:
        return len(self.items)

    def peek(self, key: CompileSpec) -> Entry | None:
        """The entry, if cached, without counting a hit or a miss."""
        with self.lock:
            return self.items.get(key)

    def get(self, key: CompileSpec) -> Entry | None:
        with self.lock:
            entry = self.items.get(key)
            if entry is None:
                self.misses += 1
                return None
            self.items.move_to_end(key)
            self.hits += 1
            return entry

    def put(self, key: CompileSpec, entry: Entry) -> None:
        with self.lock:
            self.items[key] = entry
            while len(self.items) > self.capacity:
                self.items.popitem(last=False)


@dataclass
class Differentiator:
    """Turns requests into response bodies; holds the caches and the pool of one process."""

    settings: Settings
    cache: ExecutableCache = field(init=False)
    pool: CompilePool | None = field(init=False, default=None)
    parse_pool: CompilePool | None = field(init=False, default=None)
    _inflight: dict[CompileSpec, asyncio.Future[Entry]] = field(default_factory=dict)
    # First tier: each program with its node count (0: a node has no jet rule).
    _programs: dict[CompileSpec, tuple[Program, int]] = field(default_factory=dict)
    _uncompilable: dict[CompileSpec, str] = field(default_factory=dict)
    _background: set[asyncio.Task[None]] = field(default_factory=set)
    _watchdog: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self.cache = ExecutableCache(self.settings.compile_cache_size)

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
        """Stop the watchdog and the compile workers."""
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        for pool in self._pools():
            pool.close()
        self.pool = self.parse_pool = None

    async def run(self, request: DifferentiateRequest) -> dict[str, Any]:
        """Compute what ``request`` asks for; raises ``NablaError`` subclasses on bad input."""
        spec = make_spec(request, self.settings.max_points)
        entry = self.cache.get(spec.key)
        program = None if entry is not None else await self.first_tier(spec)
        if entry is None and program is None:
            entry = await self.entry(spec)
        if entry is not None:
            signature = entry.signature
        else:
            assert program is not None
            signature = Signature.of(program)
        check_output(signature.layout.n, signature.out_shape, spec.kinds, spec.count,
                     self.settings)
        dims = None
        if request.at is not None:
            points = from_point(request.at, signature.layout)
        elif request.grid is not None:
            points, dims = grid_points(request.grid, signature.layout)
        else:
            assert request.points is not None
            points = await _off_loop(spec.count > BIG_BATCH, from_points, request.points,
                                     signature.layout, self.settings.max_points)
        vectors = product_vectors(request.tangent, request.cotangent, spec.kinds,
                                  signature.layout.n, signature.out_shape)
        if program is not None:
            results = await run_in_threadpool(interpret, program, spec.kinds, points,
                                              spec.batch is not None)
            self.compile_later(spec)
        else:
            assert entry is not None
            results = await self._evaluate(entry, points, spec, vectors)
        body = await _off_loop(spec.count > BIG_BATCH, assemble, signature,
                               results if dims is None else grid_results(results, dims))
        if "symbolic" in request.derivatives or "explain" in request.derivatives:
            extra = await explanations(self.task, spec, self.settings, request.derivatives,
                                       points)
            if extra.get("nonfinite"):
                body["nonfinite"] = body.get("nonfinite", []) + extra["nonfinite"]
            body.update({k: v for k, v in extra.items() if k != "nonfinite"})
        return body

    async def _evaluate(self, entry: Entry, points: np.ndarray, spec: CompileSpec,
                        vectors: Any) -> dict[str, np.ndarray]:
        """Run the executable: inline when the work is tiny (a thread hop costs more)."""
        signature = entry.signature
        work = spec.count * (1 + signature.layout.n) ** 2 * max(1, len(signature.out_shape))
        if work <= INLINE_WORK:
            return evaluate(entry.executable, points, spec.batch, vectors)
        return await run_in_threadpool(evaluate, entry.executable, points, spec.batch, vectors)

    async def first_tier(self, spec: CompileSpec) -> Program | None:
        """The program to interpret with jets, when the spec is small and not compiled yet."""
        key = spec.key
        if not self.settings.interpret:
            return None
        if not interpretable(sum(map(len, spec.texts)), 0, 1, spec.count, spec.kinds):
            return None
        known = self._programs.get(key)
        if known is None:
            if self.parse_pool is None:
                program = await run_in_threadpool(build_program, spec, self.settings)
            else:  # untrusted text is parsed in a worker, with a budget
                program = await self.parse_pool.call(build_program, spec, self.parse_pool.limits)
            known = self._programs[key] = (program, program_interpretable(program))
            while len(self._programs) > self.settings.compile_cache_size:
                self._programs.pop(next(iter(self._programs)))
        program, nodes = known
        size = program.out_shape[0] if program.vector_valued else 1
        if not nodes or not interpretable(0, program.layout.n, size * nodes, spec.count,
                                          spec.kinds):
            return None
        return program

    def compile_later(self, spec: CompileSpec) -> None:
        """Compile ``spec`` with XLA in the background, for the requests that follow."""
        key = spec.key
        if (key in self._inflight or key in self._uncompilable
                or len(self._inflight) >= self.settings.max_pending_compiles):
            return
        task = asyncio.get_running_loop().create_task(self._compile_quietly(spec))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _compile_quietly(self, spec: CompileSpec) -> None:
        try:
            await self.entry(spec)
        except NablaError as error:  # too complex for XLA: keep answering with jets
            self._uncompilable[spec.key] = error.code
            while len(self._uncompilable) > self.settings.compile_cache_size:
                self._uncompilable.pop(next(iter(self._uncompilable)))
        except Exception:
            logger.exception("background compile failed")

    async def task(self, func: Callable[..., Any], *args: Any) -> Any:
        """A cold task other than a compile (symbolic, explain): in a worker, or a thread."""
        if self.pool is None:
            return await run_in_threadpool(func, *args)
        return await self.pool.call(func, *args)

    async def entry(self, spec: CompileSpec) -> Entry:
        """The executable of ``spec``: cached, being compiled, or compiled now."""
        key = spec.key
        entry = self.cache.peek(key)
        if entry is not None:
            return entry
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        if len(self._inflight) >= self.settings.max_pending_compiles:
            raise Unavailable("Too many new expressions are being compiled; retry shortly",
                              retry_after=max(1, int(self.settings.compile_timeout_seconds / 4)),
                              code="compile_queue_full")
        future: asyncio.Future[Entry] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            entry = await self._compile(spec)
            self.cache.put(key, entry)
            future.set_result(entry)
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # mark retrieved: waiters, if any, re-raise it
            raise
        finally:
            del self._inflight[key]
        return entry

    async def _compile(self, spec: CompileSpec) -> Entry:
        if self.pool is None:
            compiled = await run_in_threadpool(compile_spec, spec, self.settings)
        else:
            compiled = await self.pool.compile(spec)
        started = time.perf_counter()
        executable = await run_in_threadpool(load, compiled)
        record_compile({**dict(compiled.seconds), "load": time.perf_counter() - started})
        return Entry(compiled.signature, executable)


async def _off_loop(big: bool, func: Callable[..., T], *args: Any) -> T:
    """``func(*args)``: in a thread when the work is big, so the event loop keeps serving."""
    return await run_in_threadpool(func, *args) if big else func(*args)


def _value_shape(value: Any) -> tuple[int, ...]:
    return (len(value),) if isinstance(value, list) else ()


def make_spec(request: DifferentiateRequest, max_points: int) -> CompileSpec:
    """The compile spec of a request, from its texts and the shapes of its point values."""
    stacked = isinstance(request.expression, list)
    texts = tuple(request.expression) if stacked else (str(request.expression),)
    declared: Shapes | None = None
    if request.variables is not None:
        declared = tuple((name, tuple(shape)) for name, shape in request.variables.items())
    kinds = tuple(k for k in COMPILED_KINDS if k in request.derivatives)
    if request.at is not None:
        sampled = {k: _value_shape(v) for k, v in request.at.items()}
        batch, count = None, 1
    elif request.grid is not None:
        count = grid_count(request.grid, max_points)
        sampled, batch = dict.fromkeys(request.grid, ()), bucket(count)
    elif isinstance(request.points, list):
        count = len(request.points)
        sampled = {k: _value_shape(v) for k, v in request.points[0].items()} if count else {}
        batch = bucket(count)
    else:
        assert request.points is not None
        columns = request.points
        count = max((len(c) for c in columns.values()), default=0)
        sampled = {k: _value_shape(c[0]) if c else () for k, c in columns.items()}
        batch = bucket(count)
    if count > max_points:
        raise LimitError("max_points", max_points, f"The number of points ({count})")
    return CompileSpec(texts, stacked, declared, tuple(sorted(sampled.items())), kinds, batch,
                       count)


def assemble(signature: Signature, results: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The response body: coordinates, the outputs, and where any are not finite."""
    body: dict[str, Any] = {"coordinates": signature.layout.coordinates()}
    names = {"value": "value", "hessian": "hessian", "jvp": "jvp", "vjp": "vjp",
             "gradient": "jacobian" if signature.vector_valued else "gradient"}
    nonfinite: list[dict[str, Any]] = []
    count = 0
    for kind in COMPILED_KINDS:
        if kind not in results:
            continue
        array = results[kind]
        field_name = names[kind]
        bad = ~np.isfinite(array)
        if bad.any():
            count += int(bad.sum())
            for index in np.argwhere(bad)[: MAX_NONFINITE_LISTED - len(nonfinite)]:
                x = float(array[tuple(index)])
                label = "nan" if np.isnan(x) else ("inf" if x > 0 else "-inf")
                nonfinite.append({"field": field_name, "index": index.tolist(), "kind": label})
        body[field_name] = float(array) if array.ndim == 0 else np.ascontiguousarray(array)
    if count:
        body["nonfinite"] = nonfinite
        if count > len(nonfinite):
            body["nonfinite_count"] = count
    return body
