"""GET /v1/plot's work: f and its derivatives over a range, through the differentiate path,
drawn as SVG (``app.learning.svg``).

The x axis is the expression's one free name. Finding it means reading the text, which,
like every new text, happens in a worker (``Engine.parsed``); the grid request that
follows declares nothing, so its program is the same one and is not parsed again.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from app.engine.engine import Engine
from app.engine.xla import KINDS
from app.errors import InputError
from app.learning.svg import line_chart
from app.service.inputs import axis_values
from app.service.pipeline import Service
from app.service.spec import text_spec
from schemas.differentiate import DifferentiateRequest

_SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def label(order: int) -> str:
    """The curve of the derivative of ``order``: f, f', f'', f''', then f⁽⁴⁾, f⁽⁵⁾, ..."""
    if order <= 3:
        return "f" + "'" * order
    return "f⁽" + str(order).translate(_SUPERSCRIPTS) + "⁾"


async def plot_svg(service: Service, expression: str, start: float, stop: float, num: int,
                   variable: str | None, order: int, taylor_at: float | None = None,
                   taylor_order: int | None = None, only: bool = False) -> str:
    """An SVG of f and its derivatives up to ``order`` (f and f^(order) alone with ``only``)
    at ``num`` points from ``start`` to ``stop``; with ``taylor_at``, the Taylor polynomial
    of ``taylor_order`` (default ``order``) about it, over f."""
    if not start < stop:
        raise InputError(f"start ({start:g}) must be less than stop ({stop:g})",
                         code="bad_range")
    name, declared = await _axis(service.engine, expression, variable)
    kinds = KINDS[: min(order, 2) + 1]
    request = DifferentiateRequest.model_validate(
        {"expression": expression, "variables": declared, "derivatives": kinds,
         "grid": {name: {"start": start, "stop": stop, "num": num}},
         **({"order": order} if order > 2 else {})})
    body = await service.run(request)
    x = axis_values(start, stop, num)  # the grid's own x values
    columns = [np.asarray(body[kind], dtype=np.float64).reshape(num) for kind in kinds]
    columns += [np.asarray(body["tensors"][str(j)], dtype=np.float64).reshape(num)
                for j in range(3, order + 1)]
    curves = [(label(j), y) for j, y in enumerate(columns) if not only or j in (0, order)]
    if taylor_at is not None:
        k = order if taylor_order is None else taylor_order
        curves.append(await _taylor_curve(service, expression, declared, name, taylor_at, k,
                                          x))
    return line_chart(f"f({name}) = {expression}", x, curves)


async def _taylor_curve(service: Service, expression: str, declared: dict[str, Any] | None,
                        name: str, at: float, order: int,
                        x: np.ndarray) -> tuple[str, np.ndarray]:
    """The Taylor polynomial of ``order`` about ``at``, over ``x``."""
    body = await service.run(DifferentiateRequest.model_validate(
        {"expression": expression, "variables": declared, "at": {name: at},
         "derivatives": ["value"], "taylor": {"order": order}}))
    y = np.zeros_like(x)
    with np.errstate(all="ignore"):
        for coefficient in body["taylor"]["coefficients"]:
            value = coefficient["value"]
            power = coefficient["powers"].get(name, 0)
            y = y + (np.nan if value is None else value) * (x - at) ** power
    return f"T{order} at {at:g}", y


async def _axis(engine: Engine, expression: str,
                variable: str | None) -> tuple[str, dict[str, Any] | None]:
    """The x axis's name, and the ``variables`` to declare (none when the name is the
    expression's own: the grid request then shares the parse made here)."""
    if variable is not None:
        return variable, {variable: []}
    names = (await engine.parsed(text_spec(expression))).program.layout.names
    if len(names) > 1:
        raise InputError(f"The expression has the variables {', '.join(names)}; a plot has "
                         "one axis: name it with 'variable' and write the others as numbers",
                         code="too_many_variables")
    return (names[0], None) if names else ("x", {"x": []})
