"""What building an expression shares: a built subexpression (``Term``), shapes, and ``settle``.

SymPy evaluates eagerly, and that is wrong for us in two ways. Some exact evaluations never
end (``9**9**9**9``, ``gamma(10**300)``) or leave the reals (``log(-1)`` is ``I*pi``); and
its automatic simplifications change values and domains: ``exp(log(x))`` becomes ``x``,
``x/x`` becomes ``1``, ``0*log(x)`` becomes ``0``, ``not (a > b)`` becomes ``a <= b``, all
of which differ from IEEE float64 where ``log(x)`` or ``a`` is NaN. So every node is made by
``settle``: a node with a variable under it is made unevaluated, exactly as written; a
constant result is kept exact only when it is small, real, finite and a normal float64;
otherwise it is computed in float64 by the evaluator the caller injects (the same JAX table
that compiles expressions), which also makes ``1/0`` and ``log(-1)`` mean what they mean in
JAX. This module is imported by the builder of operators (``build``) and by the builders
of calls (``calls``), and imports neither.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np
import sympy
from sympy.calculus.accumulationbounds import AccumBounds
from sympy.logic.boolalg import Boolean, BooleanAtom

from app.errors import ShapeError
from app.language.matrix_ops import MATRIX_OPS, MAX_ENTRIES
from app.language.packing import unevaluated
from app.language.tree import Syntax

Shape = tuple[int, ...]
#: A constant SymPy tree -> its value in float64, as compiled code would compute it.
ConstantEvaluator = Callable[[sympy.Basic], float]
_MAX_EXACT_BITS = 1024
#: The range of normal float64 numbers: an exact constant outside it is computed in float64
#: (overflow to inf, underflow to 0 as the compiled code flushes subnormals).
_LARGEST = sympy.Rational(int(sys.float_info.max))
_SMALLEST_NORMAL = sympy.Rational(1, 2**1022)
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
    """The common shape of operands: equal vector shapes, or scalars beside them; with a
    matrix among them, NumPy's broadcasting (a row vector [n] fits an m x n matrix)."""
    shapes = {t.shape for t in terms if t.shape != ()}
    if len(shapes) > 1 and all(len(s) == 1 for s in shapes):
        described = " and ".join(f"a vector of length {s[0]}" for s in sorted(shapes))
        raise ShapeError(
            f"Cannot {verb} {described} (at position {node.pos}); vectors must have "
            "the same length", position=node.pos)
    if len(shapes) > 1:
        try:
            shape = tuple(int(s) for s in np.broadcast_shapes(*shapes))
        except ValueError:
            described = " and ".join(str(list(s)) for s in sorted(shapes, key=len))
            raise ShapeError(
                f"Cannot {verb} shapes {described} (at position {node.pos}); they do not "
                "broadcast (as in NumPy: sizes equal, or 1, from the last axis)",
                position=node.pos) from None
        if math.prod(shape) > MAX_ENTRIES:
            raise ShapeError(f"Cannot {verb} shapes {[list(s) for s in shapes]} (at position "
                             f"{node.pos}): the result would hold more than {MAX_ENTRIES} "
                             "entries", position=node.pos)
        return shape
    return shapes.pop() if shapes else ()


def logic_node(op: Any, args: list[Any]) -> Any:
    """And/Or/Not, unevaluated unless every operand is True or False: SymPy would rewrite
    ``not (a > b)`` as ``a <= b`` and ``(a > b) or (a <= b)`` as True, both wrong where
    ``a`` is NaN."""
    if all(isinstance(a, BooleanAtom) for a in args):
        return op(*args)
    if len(args) == 1 and op is not sympy.Not:
        return args[0]
    return unevaluated(op, args)


def relation(op: Any, a: Any, b: Any) -> Any:
    """A comparison, unevaluated unless both sides are finite real constants (SymPy would
    call ``x == x`` True, and refuses to compare NaN)."""
    if _finite_real(a) and _finite_real(b):
        return op(a, b)
    return op(a, b, evaluate=False)


def _finite_real(expr: Any) -> bool:
    return is_constant(expr) and expr.is_extended_real is True and expr.is_finite is True


def settle(evaluate: ConstantEvaluator, func: Any, *args: Any, numeric: bool = False) -> Any:
    """``func(*args)``: unevaluated, as written, when an argument has a variable; at constant
    arguments kept exact only if small, real, finite and normal, else in float64.

    ``numeric`` says that ``func`` at constant arguments is computed in float64 at once,
    because its exact SymPy evaluation is costly or unlike JAX (the catalog's flag).
    """
    args = tuple(sympy.Integer(a) if isinstance(a, int) else a for a in args)
    if not all(is_constant(a) for a in args):
        return _as_written(func, args)
    if numeric:
        return _in_float64(evaluate, func, args)
    if _has_nan(args) and _sorts_by_value(func):  # Max(0, nan) is "not comparable" to SymPy
        return _in_float64(evaluate, func, args)
    result = func(*args)
    if isinstance(result, Boolean) or not is_constant(result):
        return result
    if result.is_Rational or (result.is_Float and result.is_finite):
        return _exact(result) if _normal(result) else _in_float64(evaluate, func, args)
    if (result.is_extended_real is True and result.is_finite is True
            and not result.has(AccumBounds)):  # sin(oo) is a set to SymPy, NaN to IEEE
        return result
    return _in_float64(evaluate, func, args)


def quotient(evaluate: ConstantEvaluator, a: Any, b: Any) -> Any:
    """``a / b`` as one division, never a product with a reciprocal: ``1/b`` overflows or
    flushes to 0 where ``a/b`` may not (``x/x`` at 1e308 is 1). The evaluators divide by
    each factor ``b**-1`` of a product (``app.language.walk.divides``)."""
    reciprocal = sympy.Pow(b, -1, evaluate=False)
    if not (is_constant(a) and is_constant(b)):
        return sympy.Mul(a, reciprocal, evaluate=False)
    return settle(evaluate, sympy.Mul, a, reciprocal)


def _normal(number: Any) -> bool:
    """Whether an exact number is 0 or a normal float64 (not past the largest, not below
    the smallest normal, where float64 overflows or the compiled code flushes to 0)."""
    size = abs(number)
    return bool(size == 0 or _SMALLEST_NORMAL <= size <= _LARGEST)


def _exact(number: Any) -> Any:
    """A rational with huge terms as a Float (no decimal string), else the number itself."""
    if number.is_Rational and max(abs(number.p), number.q).bit_length() > _MAX_EXACT_BITS:
        return sympy.Float(mpmath.mpf(number.p) / number.q)
    return number


def _in_float64(evaluate: ConstantEvaluator, func: Any, args: Sequence[Any]) -> Any:
    """``func(*args)`` at constant arguments, in float64 as JAX computes it."""
    return sympy.Float(evaluate(_as_written(func, args)))


def _as_written(func: Any, args: Sequence[Any]) -> Any:
    """``func(*args, evaluate=False)``. SymPy's Max and Min sort their arguments even then,
    by comparing them, and a NaN constant (``acosh(0)`` in float64) has no order: they are
    then made directly."""
    if _has_nan(args) and _sorts_by_value(func):
        return unevaluated(func, args)
    return func(*args, evaluate=False)


def _sorts_by_value(func: Any) -> bool:
    return isinstance(func, type) and issubclass(func, (sympy.Max, sympy.Min))


def _has_nan(args: Sequence[Any]) -> bool:
    return any(a is sympy.nan for a in args)


def is_constant(expr: Any) -> bool:
    """Whether ``expr`` is a number-valued tree without variables."""
    return (isinstance(expr, sympy.Expr) and not has_variables(expr)
            and not expr.has(*MATRIX_OPS))  # eye(2) is an array, never folded to a number


_BASIC_FREE_SYMBOLS = sympy.Basic.free_symbols


@functools.lru_cache(maxsize=1 << 16)
def has_variables(expr: sympy.Basic) -> bool:
    """Whether ``expr.free_symbols`` is not empty, with each node's answer kept.

    SymPy computes ``free_symbols`` from the leaves up on every call, so asking it of each
    step of a chain built one operand at a time (``a + b + c + ...``, as written) costs
    time quadratic in its length (a 100-variable Rosenbrock's tree took 12 ms to build, 7.5
    ms with this). A node whose class has its own rule (a Symbol, bound variables) keeps
    it."""
    if type(expr).free_symbols is not _BASIC_FREE_SYMBOLS:
        return bool(expr.free_symbols)
    return any(has_variables(a) for a in expr.args)
