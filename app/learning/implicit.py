"""Implicit differentiation, symbolically: y defined by F(x, y) = 0 near a point.

    dy/dx_i = -F_xi / F_y, and each further derivative by D_j e = ∂e/∂x_j + ∂e/∂y · dy/dx_j

(what SymPy's ``idiff`` does). The formulas grow fast with the order, so they are bounded
as ``app.learning.symbolic``'s are: a small F, and at most ``MAX_ORDER``; beyond, the
answer says why they were skipped (the numbers are computed all the same). Runs in a worker.
"""

from __future__ import annotations

from typing import Any

import sympy

from app.engine.xla import Program
from app.language.build import variable_symbol
from app.language.printing import Unprintable, to_latex, to_text
from app.learning.symbolic import MAX_DEPTH, MAX_OPERATIONS, depth, tidy

MAX_ORDER = 4


def implicit_task(program: Program, dependent: str, independent: tuple[str, ...],
                  order: int) -> dict[str, Any]:
    """Formulas of the derivatives of ``dependent`` (text, and ``latex``), or skipped."""
    F = program.exprs[0]
    size = sympy.count_ops(F)
    if order > MAX_ORDER:
        return {"skipped": f"formulas are written up to order {MAX_ORDER}; the numbers go to "
                           f"order {order}"}
    if size > MAX_OPERATIONS or depth(F) > MAX_DEPTH:
        return {"skipped": f"the equation has {size} operations; formulas are written only "
                           f"up to {MAX_OPERATIONS}"}
    y = variable_symbol(dependent)
    xs = [variable_symbol(name) for name in independent]
    F_y = sympy.diff(F, y)
    first = [tidy(-sympy.diff(F, x) / F_y) for x in xs]
    try:
        if len(xs) == 1:
            trees = [first[0]]
            for _ in range(order - 1):
                trees.append(tidy(_total(trees[-1], xs[0], y, first[0])))
            return _printed({"derivatives": trees})
        answer: dict[str, Any] = {"gradient": first}
        if order >= 2:
            answer["hessian"] = [[tidy(_total(g, x, y, first[j])) for j, x in enumerate(xs)]
                                 for g in first]
        return _printed(answer)
    except RecursionError:
        return {"skipped": "the equation is nested too deeply for formulas"}


def _total(expr: Any, x: Any, y: Any, slope: Any) -> Any:
    """d expr / dx with y = y(x): ∂expr/∂x + ∂expr/∂y · dy/dx."""
    return sympy.diff(expr, x) + sympy.diff(expr, y) * slope


def _printed(trees: dict[str, Any]) -> dict[str, Any]:
    def each(value: Any, func: Any) -> Any:
        return [each(v, func) for v in value] if isinstance(value, list) else func(value)
    try:
        texts = {k: each(v, to_text) for k, v in trees.items()}
    except Unprintable as error:
        return {"skipped": f"a derivative cannot be written in the language: {error}"}
    return {**texts, "latex": {k: each(v, to_latex) for k, v in trees.items()}}
