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

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from starlette.concurrency import run_in_threadpool

from app.config import Settings
from app.engine import admission
from app.engine.admission import ALLOWANCE, Allowance, ByteBudget
from app.engine.caches import Counted
from app.engine.compilation import CompileSpec, check_output
from app.engine.engine import Engine
from app.engine.nonfinite import NonFinite
from app.engine.planning import coordinates
from app.engine.tiers import XlaTier
from app.engine.workers import NotReady
from app.engine.xla import Layout, Shape, Signature
from app.errors import InputError
from app.learning.explanations import explanations, symbolic_orders
from app.learning.taylor import evaluate_polynomial, polynomial
from app.service.check import check
from app.service.inputs import grid_points, grid_results, product_vectors
from app.service.orders import (
    OrderPlan,
    add_orders,
    directions,
    next_terms,
    plan_orders,
    taylor_coefficients,
)
from app.service.points import from_point, from_points, scalar_point
from app.service.response import add_explanations, add_nonfinite, assemble, plain_body
from app.service.spec import make_spec, with_orders
from schemas.differentiate import DifferentiateRequest


@dataclass(frozen=True)
class Prepared:
    """A request read and planned, before any work: all its answer depends on besides its
    point's numbers (``app.api.hot`` keeps it by the request's form)."""

    spec: CompileSpec
    plan: OrderPlan
    value: bool  # "value" is asked for
    at_once: bool  # one point, outputs only: ``Service.at_once`` can answer it


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

    def prepare(self, request: DifferentiateRequest, allowance: Allowance) -> Prepared:
        """What ``request`` asks, read and refused over the limits before any work: the
        spec and the plan of its orders. It does not depend on the point's numbers."""
        spec = make_spec(request, self.settings.max_points, self.settings.max_coordinates)
        plan = plan_orders(request, coordinates(spec),
                           len(spec.texts) if spec.stacked else 1, self.settings)
        spec = with_orders(spec, plan, request)
        self._check_output(coordinates(spec), (len(spec.texts),) if spec.stacked else (),
                           spec, allowance)  # as far as the request tells, before any work
        at_once = (request.at is not None and not plan.direction_count and plan.taylor is None
                   and request.check is None and not {"jvp", "vjp"} & set(spec.kinds)
                   and not {"symbolic", "explain"} & set(request.derivatives))
        return Prepared(spec, plan, "value" in request.derivatives, at_once)

    async def _run(self, request: DifferentiateRequest, allowance: Allowance) -> dict[str, Any]:
        prepared = self.prepare(request, allowance)
        spec, plan = prepared.spec, prepared.plan
        tier = await self.engine.tier(spec)
        signature = tier.signature
        nbytes = self._check_output(signature.layout.n, signature.out_shape, spec, allowance)
        allowance.hold(self.output_bytes, nbytes)
        points, dims = await self._points(request, signature.layout, spec.count)
        vectors = product_vectors(request.tangent, request.cotangent, spec.kinds,
                                  signature.layout, signature.out_shape)
        along = None
        if plan.direction_count:
            vectors.append(directions(plan, request, signature.layout))
            along = vectors[-1][0] if plan.directional else None
        results = await tier.evaluate(points, vectors, spec.batch)
        if dims is not None:
            results = grid_results(results, dims)
        lead = 0 if request.at is not None else 1 if dims is None else len(dims)
        body = await _off_loop(spec.count > BIG_BATCH, _outputs, signature, results, plan, lead)
        if plan.taylor is not None:
            body["taylor"], nonfinite = await self._taylor(request, plan, signature, results)
            body = add_nonfinite(body, nonfinite)
        if not prepared.value:
            body.pop("value", None)
        if request.check is not None:
            body["check"] = await check(self.run, request, signature, points)
        if "symbolic" in request.derivatives or "explain" in request.derivatives:
            parsed = await self.engine.parsed(spec)  # kept: parsed again only if evicted
            extra = await explanations(self.engine.task, parsed.program, request.derivatives,
                                       points, symbolic_orders(plan, along))
            body = add_explanations(body, extra)
        return body

    def at_once(self, prepared: Prepared, at: Mapping[str, float]) -> dict[str, Any] | None:
        """The body for one point of numbers, when ``prepared`` is such a request and its
        executable is cached and small: computed now, without an await (tens of
        microseconds), by the same steps as ``run``. None otherwise: ``run`` answers it.
        Called within the request's allowance (``app.api.allowance``)."""
        allowance = admission.current()
        tier = self.engine.executables.hit(prepared.spec.key) if prepared.at_once else None
        if tier is None or allowance is None or not tier.inline(1):
            return None
        signature = tier.signature
        nbytes = self._check_output(signature.layout.n, signature.out_shape, prepared.spec,
                                    allowance)
        allowance.hold(self.output_bytes, nbytes)
        flat = tier.run_now(scalar_point(at, signature.layout))
        body = None if prepared.plan.tensor_orders else plain_body(signature, tier.outputs,
                                                                   flat)
        if body is None:  # a number to list or flush, or more than a few
            body = _outputs(signature, tier.results(flat), prepared.plan, 0)
        if not prepared.value:
            body.pop("value", None)
        return body

    async def _taylor(self, request: DifferentiateRequest, plan: OrderPlan,
                      signature: Signature, results: dict[str, np.ndarray],
                      ) -> tuple[dict[str, Any], NonFinite]:
        """The Taylor polynomial about ``at``, with the remainder at ``remainder_at``, and its
        non-finite numbers: ``taylor.coefficients`` by place in the list, and
        ``taylor.remainder.polynomial`` / ``.remainder`` / ``.estimate``."""
        if signature.vector_valued:
            raise InputError("'taylor' expands a scalar f; send each component of a "
                             "vector f as a request of its own", code="taylor_of_vector")
        assert request.at is not None and request.taylor is not None
        layout = signature.layout
        center = from_point(request.at, layout)
        coefficients = taylor_coefficients(plan, results, results["value"])
        nonfinite = NonFinite()
        nonfinite.add("taylor.coefficients",
                      np.array([float(c) for _, c in coefficients], dtype=np.float64))
        answer = polynomial(coefficients, layout.coordinates(), center)
        answer.update(order=plan.taylor, center=request.at)
        if request.taylor.remainder_at is not None:
            b = request.taylor.remainder_at
            at_b_body = await self.run(DifferentiateRequest.model_validate(
                {"expression": request.expression, "variables": _declared(layout),
                 "at": b, "derivatives": ["value"]}))
            value = at_b_body["value"]
            number = math.nan if value is None else value
            for entry in at_b_body.get("nonfinite", []):  # the value's, written null
                number = float(entry["kind"])  # "nan", "inf", "-inf"
                nonfinite.add("taylor.remainder.value", np.asarray(number))
            at_b = evaluate_polynomial(coefficients, from_point(b, layout, "in "
                                                                "'remainder_at'") - center)
            estimate = float(next_terms(plan, results))
            difference = number - at_b
            for name, number in (("polynomial", at_b), ("remainder", difference),
                                 ("estimate", estimate)):
                nonfinite.add(f"taylor.remainder.{name}", np.asarray(float(number)))
            answer["remainder"] = {"at": b, "value": value, "polynomial": at_b,
                                   "remainder": difference, "estimate": estimate}
        return answer, nonfinite

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


def _outputs(signature: Signature, results: dict[str, np.ndarray], plan: OrderPlan,
             lead: int) -> dict[str, Any]:
    """The body's outputs (before Taylor's, the check's and the explanations), and their
    non-finite entries; ``lead`` leading axes are points or a grid's."""
    body = assemble(signature, results)
    return add_nonfinite(body, add_orders(body, plan, results, lead, results.get("value")))


async def _off_loop(big: bool, func: Callable[..., T], *args: Any) -> T:
    """``func(*args)``: in a thread when the work is big, so the event loop keeps serving."""
    return await run_in_threadpool(func, *args) if big else func(*args)


def _declared(layout: Layout) -> dict[str, list[int]]:
    """The layout as a request's ``variables``."""
    return {name: list(shape) for name, shape in zip(layout.names, layout.shapes, strict=True)}

