"""GET /v1/plot's work: f and its derivatives over a range, through the differentiate path,
drawn as SVG (``app.learning.svg``)."""

from __future__ import annotations

from typing import Literal

import numpy as np

from app.config import Settings
from app.errors import InputError
from app.language.build import free_names
from app.language.syntax import SyntaxLimits, parse
from app.learning.svg import line_chart
from app.service.pipeline import Differentiator
from schemas.differentiate import DifferentiateRequest, GridAxis

_LABELS = ("f", "f'", "f''")
_KINDS: tuple[Literal["value", "gradient", "hessian"], ...] = ("value", "gradient", "hessian")


async def plot_svg(differentiator: Differentiator, expression: str, start: float,
                   stop: float, num: int, variable: str | None, order: int) -> str:
    """An SVG of f, f' (and f'' for ``order`` 2) at ``num`` points from ``start`` to ``stop``."""
    if not start < stop:
        raise InputError(f"start ({start:g}) must be less than stop ({stop:g})",
                         code="bad_range")
    name = variable or _the_variable(expression, differentiator.settings)
    kinds = _KINDS[: order + 1]
    request = DifferentiateRequest(
        expression=expression, variables={name: []}, derivatives=list(kinds),
        grid={name: GridAxis(start=start, stop=stop, num=num)})
    body = await differentiator.run(request)
    x = np.linspace(start, stop, num)
    curves = [(label, np.asarray(body[kind], dtype=np.float64).reshape(num))
              for label, kind in zip(_LABELS, kinds, strict=False)]
    return line_chart(f"f({name}) = {expression}", x, curves)


def _the_variable(expression: str, settings: Settings) -> str:
    """The one free name of ``expression`` (``x`` if it has none)."""
    tree = parse(expression, SyntaxLimits(settings.max_expression_chars, settings.max_depth,
                                          settings.max_nodes))
    names = free_names(tree)
    if len(names) > 1:
        raise InputError(f"The expression has the variables {', '.join(names)}; a plot has "
                         "one axis: name it with 'variable' and write the others as numbers",
                         code="too_many_variables")
    return names[0] if names else "x"
