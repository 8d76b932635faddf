"""GET /v1/plot: an SVG of f and its derivatives over a range."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from app.api.deps import ServiceDep
from app.errors import InputError
from app.service.plot import plot_svg
from schemas.problem import PROBLEM_RESPONSES

router = APIRouter(prefix="/v1", tags=["derivatives"])
Bound = Annotated[float, Query(allow_inf_nan=False, description="an end of the x range")]


@router.get(
    "/plot",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}, "description": "an SVG image"},
               **PROBLEM_RESPONSES},
    summary="Plot f and its derivatives (computed by JAX) as SVG",
)
async def plot(
    expression: Annotated[str, Query(min_length=1, description="f, of one variable",
                                     examples=["sin(x)"])],
    start: Bound,
    stop: Bound,
    service: ServiceDep,
    num: Annotated[int, Query(ge=2, le=5000, description="points on the curve")] = 200,
    variable: Annotated[str | None, Query(description="the x axis; default: the "
                                          "expression's one free name")] = None,
    order: Annotated[int, Query(ge=1, le=10, description="the derivatives drawn, f' to "
                                "the order-th (1: f and f'; 2: f'' too), up to "
                                "max_derivative_order")] = 1,
    only: Annotated[bool, Query(description="draw f and its order-th derivative alone")] = False,
    taylor_at: Annotated[float | None, Query(allow_inf_nan=False, description="draw the "
                                             "Taylor polynomial about this x over f")] = None,
    taylor_order: Annotated[int | None, Query(ge=0, le=10, description="its order "
                                              "(default: order)")] = None,
) -> Response:
    """f and its derivatives up to ``order`` from ``start`` to ``stop``; with
    ``taylor_at``, the Taylor polynomial about it over f."""
    if not math.isfinite(stop - start):
        raise InputError(f"The range from {start:g} to {stop:g} is wider than float64 can "
                         "hold; plot a narrower range", code="bad_range")
    svg = await plot_svg(service, expression, start, stop, num, variable, order, taylor_at,
                         taylor_order, only)
    return Response(svg, media_type="image/svg+xml")
