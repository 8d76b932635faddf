"""What building an expression shares: a built subexpression (``Term``), shapes, and ``settle``.

SymPy evaluates eagerly, and some of its exact evaluations never end (``9**9**9**9``,
``gamma(10**300)``) or leave the reals (``log(-1)`` is ``I*pi``). So every node is made by
``settle``, which keeps a constant result exact only when it is small, real and finite;
otherwise the result is computed in float64 by the evaluator the caller injects (the same
JAX table that compiles expressions), which also makes ``1/0`` and ``log(-1)`` mean what
they mean in JAX. This module is imported by the builder of operators (``build``) and by
the builders of calls (``calls``), and imports neither.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import mpmath
import sympy
from sympy.logic.boolalg import Boolean

from app.errors import ShapeError
from app.language.syntax import Syntax

Shape = tuple[int, ...]
#: A constant SymPy tree -> its value in float64, as compiled code would compute it.
ConstantEvaluator = Callable[[sympy.Basic], float]
_MAX_EXACT_BITS = 1024
#: Above this many arguments, Min, Max, And and Or are built unevaluated.
SMALL_NARY = 8


@dataclass(frozen=True, slots=True)
class Term:
    """A built subexpression: its SymPy tree, its shape, and whether it is a condition."""

    expr: Any
    shape: Shape
    pos: int
    is_condition: bool = False


def broadcast(terms: Sequence[Term], node: Syntax, verb: str) -> Shape:
    """The common shape of operands: equal shapes, or scalars beside one vector shape."""
    shapes = {t.shape for t in terms if t.shape != ()}
    if len(shapes) > 1:
        described = " and ".join(f"a vector of length {s[0]}" for s in sorted(shapes))
        raise ShapeError(
            f"Cannot {verb} {described} (at position {node.pos}); vectors must have "
            "the same length", position=node.pos)
    return shapes.pop() if shapes else ()


def logic_node(op: Any, args: list[Any]) -> Any:
    """And/Or/Not; long chains unevaluated, since SymPy's simplification of them is costly."""
    return op(*args, evaluate=False) if len(args) > SMALL_NARY else op(*args)


def settle(evaluate: ConstantEvaluator, func: Any, *args: Any, numeric: bool = False) -> Any:
    """``func(*args)``, with constant results kept exact only if small, real and finite.

    ``numeric`` says that ``func`` at constant arguments is computed in float64 at once,
    because its exact SymPy evaluation is costly or unlike JAX (the catalog's flag).
    """
    args = tuple(sympy.Integer(a) if isinstance(a, int) else a for a in args)
    if numeric and all(is_constant(a) for a in args):
        return _in_float64(evaluate, func, args)
    result = func(*args)
    if isinstance(result, Boolean) or not is_constant(result):
        return result
    if not all(is_constant(a) for a in args):
        return result  # such as nan + x, which is nan whatever x is
    if result.is_Rational:
        if max(abs(result.p), result.q).bit_length() > _MAX_EXACT_BITS:
            return sympy.Float(mpmath.mpf(result.p) / result.q)  # no decimal string
        return result
    if result.is_Float and result.is_finite:
        return result
    if result.is_extended_real is True and result.is_finite is True:
        return result
    return _in_float64(evaluate, func, args)


def _in_float64(evaluate: ConstantEvaluator, func: Any, args: Sequence[Any]) -> Any:
    """``func(*args)`` at constant arguments, in float64 as JAX computes it."""
    return sympy.Float(evaluate(func(*args, evaluate=False)))


def is_constant(expr: Any) -> bool:
    """Whether ``expr`` is a number-valued tree without variables."""
    return isinstance(expr, sympy.Expr) and not expr.free_symbols
