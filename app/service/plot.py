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

_LABELS = ("f", "f'", "f''")


async def plot_svg(service: Service, expression: str, start: float, stop: float, num: int,
                   variable: str | None, order: int) -> str:
    """An SVG of f, f' (and f'' for ``order`` 2) at ``num`` points from ``start`` to ``stop``."""
    if not start < stop:
        raise InputError(f"start ({start:g}) must be less than stop ({stop:g})",
                         code="bad_range")
    name, declared = await _axis(service.engine, expression, variable)
    kinds = KINDS[: order + 1]
    request = DifferentiateRequest.model_validate(
        {"expression": expression, "variables": declared, "derivatives": kinds,
         "grid": {name: {"start": start, "stop": stop, "num": num}}})
    body = await service.run(request)
    x = axis_values(start, stop, num)  # the grid's own x values
    curves = [(label, np.asarray(body[kind], dtype=np.float64).reshape(num))
              for label, kind in zip(_LABELS, kinds, strict=False)]
    return line_chart(f"f({name}) = {expression}", x, curves)


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
