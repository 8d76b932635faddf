"""One request, as a plain sequence of steps:

    request -> spec (app.service.spec: texts and shapes, no parsing)
            -> check the output's size, as far as the request tells it (before any work)
            -> tier (app.engine: the cached executable, jets, or a new executable)
            -> check the output's size -> reserve its bytes -> points -> tangent / cotangent
            -> evaluate -> body (app.service.response) -> symbolic / explain (app.learning)

The engine holds the caches and the worker pools of the process; see ``app.engine.engine``.
Each request runs within its ``Allowance`` (its deadline, and the bytes its answer holds of
the process's ``ByteBudget`` until it is sent); see ``app.engine.admission``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
from starlette.concurrency import run_in_threadpool

from app.config import Settings
from app.engine import admission
from app.engine.admission import ALLOWANCE, Allowance, ByteBudget
from app.engine.caches import Counted
from app.engine.compilation import CompileSpec, check_output
from app.engine.engine import Engine
from app.engine.planning import coordinates
from app.engine.tiers import XlaTier
from app.engine.workers import NotReady
from app.engine.xla import Layout, Shape
from app.learning.explanations import explanations
from app.service.inputs import grid_points, grid_results, product_vectors
from app.service.points import from_point, from_points
from app.service.response import add_explanations, assemble
from app.service.spec import make_spec
from schemas.differentiate import DifferentiateRequest

#: Batches of more points than this are converted and assembled in a thread.
BIG_BATCH = 4096
T = TypeVar("T")


class Service:
    """Turns requests into response bodies, with the engine of this process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = Engine(settings)
        self.output_bytes = ByteBudget(settings.max_response_bytes_in_flight)

    @property
    def cache(self) -> Counted[CompileSpec, XlaTier]:
        """The executable cache (its hits, misses and size are metrics)."""
        return self.engine.executables

    @property
    def ready(self) -> bool:
        """Whether new expressions can be compiled now."""
        return self.engine.ready

    @property
    def not_ready(self) -> NotReady | None:
        """Why new expressions cannot be read or compiled now, or None when they can."""
        return self.engine.not_ready

    def start(self) -> None:
        """Start the worker processes (unless working in process)."""
        self.engine.start()

    def close(self) -> None:
        """Stop the worker processes."""
        self.engine.close()

    async def aclose(self) -> None:
        """Stop the worker processes, off the event loop."""
        await self.engine.aclose()

    async def run(self, request: DifferentiateRequest) -> dict[str, Any]:
        """Compute what ``request`` asks for; raises ``NablaError`` subclasses on bad input."""
        allowance = admission.current()
        if allowance is not None:
            return await self._run(request, allowance)
        allowance = Allowance.starting_now(self.settings.request_deadline_seconds)
        token = ALLOWANCE.set(allowance)  # in-process use: the deadline starts now
        try:
            return await self._run(request, allowance)
        finally:
            allowance.release()
            ALLOWANCE.reset(token)

    async def _run(self, request: DifferentiateRequest, allowance: Allowance) -> dict[str, Any]:
        spec = make_spec(request, self.settings.max_points, self.settings.max_coordinates)
        self._check_output(coordinates(spec), (len(spec.texts),) if spec.stacked else (),
                           spec, allowance)  # as far as the request tells, before any work
        tier = await self.engine.tier(spec)
        signature = tier.signature
        nbytes = self._check_output(signature.layout.n, signature.out_shape, spec, allowance)
        allowance.hold(self.output_bytes, nbytes)
        points, dims = await self._points(request, signature.layout, spec.count)
        vectors = product_vectors(request.tangent, request.cotangent, spec.kinds,
                                  signature.layout, signature.out_shape)
        results = await tier.evaluate(points, vectors, spec.batch)
        if dims is not None:
            results = grid_results(results, dims)
        body = await _off_loop(spec.count > BIG_BATCH, assemble, signature, results)
        if "symbolic" in request.derivatives or "explain" in request.derivatives:
            parsed = await self.engine.parsed(spec)  # kept: parsed again only if evicted
            extra = await explanations(self.engine.task, parsed.program, request.derivatives,
                                       points)
            body = add_explanations(body, extra)
        return body

    def _check_output(self, n: int, out_shape: tuple[int, ...], spec: CompileSpec,
                      allowance: Allowance) -> int:
        """Refuse an answer over the limits; its estimated bytes."""
        return check_output(n, out_shape, spec.kinds, spec.count, self.settings,
                            self.settings.max_response_bytes, allowance.bytes_per_number)

    async def _points(self, request: DifferentiateRequest, layout: Layout,
                      count: int) -> tuple[np.ndarray, Shape | None]:
        """The request's points as flat coordinates, and the grid's shape if it has one."""
        if request.at is not None:
            return from_point(request.at, layout), None
        if request.grid is not None:
            return grid_points(request.grid, layout)
        assert request.points is not None
        points = await _off_loop(count > BIG_BATCH, from_points, request.points, layout,
                                 self.settings.max_points)
        return points, None


async def _off_loop(big: bool, func: Callable[..., T], *args: Any) -> T:
    """``func(*args)``: in a thread when the work is big, so the event loop keeps serving."""
    return await run_in_threadpool(func, *args) if big else func(*args)
