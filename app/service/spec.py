"""Request -> compile spec: its texts and the shapes of its values, read without parsing."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from app.engine.compilation import CompileSpec, Shapes
from app.engine.xla import COMPILED_KINDS, bucket
from app.errors import LimitError
from app.service.inputs import grid_count
from schemas.differentiate import DifferentiateRequest


def _value_shape(value: Any) -> tuple[int, ...]:
    """The shape of a value as given: a number, a list, or a list of rows (a ragged or empty
    one is refused when the point is read, with the variable's name)."""
    if not isinstance(value, list):
        return ()
    if value and isinstance(value[0], list):
        return (len(value), len(value[0]))
    return (len(value),)


def declared_shapes(variables: dict[str, list[int]] | None,
                    max_coordinates: int) -> Shapes | None:
    """The declared ``variables`` as shapes, refused when their sizes exceed
    ``max_coordinates`` (before any size reaches NumPy's 64-bit integers)."""
    if variables is None:
        return None
    total = 0
    for shape in variables.values():
        too_big = next((size for size in shape if size > max_coordinates), None)
        total += too_big if too_big is not None else math.prod(shape)
        if total > max_coordinates:
            raise LimitError("max_coordinates", max_coordinates,
                             f"The number of coordinates the variables declare ({total})")
    return tuple((name, tuple(shape)) for name, shape in variables.items())


def make_spec(request: DifferentiateRequest, max_points: int,
              max_coordinates: int) -> CompileSpec:
    """The compile spec of a request, from its texts and the shapes of its point values."""
    stacked = isinstance(request.expression, list)
    texts = tuple(request.expression) if stacked else (str(request.expression),)
    declared = declared_shapes(request.variables, max_coordinates)
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


def with_orders(spec: CompileSpec, plan: Any, request: DifferentiateRequest) -> CompileSpec:
    """``spec`` with the outputs past the Hessian that ``plan`` (``app.service.orders``)
    needs, and f's value when a Taylor polynomial or a partial of order 0 needs it."""
    kinds = spec.kinds
    needs_value = plan.taylor is not None or any(not alpha for alpha in plan.partials)
    if needs_value and "value" not in kinds:
        kinds = ("value", *kinds)
    kinds += plan.kinds
    return spec if kinds == spec.kinds else dataclasses.replace(spec, kinds=kinds)


def text_spec(expression: str) -> CompileSpec:
    """The spec of one text alone, its free names scalars (to read the names it uses)."""
    return CompileSpec((expression,), False, None, (), (), None, 1)
