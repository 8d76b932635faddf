"""Syntax tree -> SymPy tree, with names resolved, shapes checked and constants tamed.

SymPy evaluates eagerly, and some of its exact evaluations never end (``9**9**9**9``,
``gamma(10**300)``) or leave the reals (``log(-1)`` is ``I*pi``). So every node is
built here, by one function per syntax kind, and a constant result is kept exact only
when it is small, real and finite; otherwise it is computed in float64 by the same JAX
table that compiles expressions (``compiler.evaluate_constant``), which also makes
``1/0`` and ``log(-1)`` mean what they mean in JAX.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import mpmath
import sympy
from sympy.codegen.cfunctions import expm1, log1p, log2, log10
from sympy.logic.boolalg import Boolean

from app.engine.evaluator import evaluate_constant
from app.errors import ExpressionError, LimitError, ShapeError
from app.language import functions as F
from app.language.syntax import Syntax

Shape = tuple[int, ...]

CONSTANTS: dict[str, sympy.Basic] = {
    "pi": sympy.pi, "e": sympy.E, "E": sympy.E, "True": sympy.true, "False": sympy.false,
}

_ELEMENTWISE: dict[str, Any] = {
    "sin": sympy.sin, "cos": sympy.cos, "tan": sympy.tan, "asin": sympy.asin,
    "acos": sympy.acos, "atan": sympy.atan, "sinh": sympy.sinh, "cosh": sympy.cosh,
    "tanh": sympy.tanh, "asinh": sympy.asinh, "acosh": sympy.acosh, "atanh": sympy.atanh,
    "exp": sympy.exp, "expm1": expm1, "log1p": log1p, "log2": log2, "log10": log10,
    "sqrt": sympy.sqrt, "cbrt": F.cbrt, "abs": sympy.Abs, "Abs": sympy.Abs, "sign": sympy.sign,
    "floor": sympy.floor, "ceil": sympy.ceiling, "ceiling": sympy.ceiling, "erf": sympy.erf,
    "erfc": sympy.erfc, "gamma": sympy.gamma, "lgamma": sympy.loggamma,
    "loggamma": sympy.loggamma, "sigmoid": F.sigmoid, "softplus": F.softplus, "relu": F.relu,
}
# Exact SymPy evaluation of these at constants is costly or unlike JAX: compute in float64.
_NUMERIC_AT_CONSTANTS = {
    expm1, log1p, log2, log10, F.cbrt, sympy.gamma, sympy.loggamma, sympy.erf, sympy.erfc,
    sympy.floor, sympy.ceiling, sympy.sign, F.sigmoid, F.softplus, F.relu,
    sympy.Heaviside, sympy.DiracDelta, sympy.polygamma,
}
_REDUCTIONS: dict[str, type[F.VectorOp]] = {
    "sum": F.VecSum, "prod": F.VecProd, "mean": F.VecMean, "norm": F.VecNorm,
}
OTHER_FUNCTIONS = (
    "log", "atan2", "min", "Min", "max", "Max", "where", "piecewise", "Piecewise", "dot",
    "heaviside", "diracdelta", "polygamma",
)
FUNCTION_NAMES = frozenset(_ELEMENTWISE) | frozenset(_REDUCTIONS) | frozenset(OTHER_FUNCTIONS)
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


def variable_symbol(name: str) -> sympy.Symbol:
    """The SymPy symbol of a variable (real, as every input is)."""
    return sympy.Symbol(name, real=True)


def free_names(tree: Syntax) -> list[str]:
    """The variable names the expression uses, in order of first appearance."""
    seen: dict[str, None] = {}
    stack = [tree]
    while stack:
        node = stack.pop()
        if node.kind == "name" and node.text not in CONSTANTS:
            seen.setdefault(node.text, None)
        stack.extend(reversed([a for a in node.args if a is not None]))
    return list(seen)


@dataclass
class Builder:
    """Builds the SymPy tree of one expression for the given variable shapes."""

    shapes: Mapping[str, Shape]
    max_exponent: float
    max_literal: float

    def build(self, node: Syntax) -> Term:
        """Build ``node`` and its subtree."""
        method: Callable[[Syntax], Term] = getattr(self, f"_{node.kind}")
        return method(node)

    def value(self, node: Syntax) -> Term:
        """Build a node that must be a number or vector, not a condition."""
        term = self.build(node)
        if term.is_condition:
            raise ExpressionError(
                f"A condition at position {node.pos} is used as a number; conditions go "
                "in where(cond, a, b), piecewise((a, cond), ...), and, or, not",
                node.pos, code="condition_as_value")
        return term

    def condition(self, node: Syntax) -> Term:
        """Build a node that must be a condition."""
        term = self.build(node)
        if not term.is_condition:
            raise ExpressionError(
                f"Expected a condition (such as x > 0) at position {node.pos}",
                node.pos, code="expected_condition")
        return term

    # --- leaves -------------------------------------------------------------------

    def _number(self, node: Syntax) -> Term:
        text = node.text
        if text.isdigit() and len(text) <= 15:
            return Term(sympy.Integer(int(text)), (), node.pos)
        value = float(text)
        if not abs(value) <= self.max_literal:
            raise LimitError("max_literal", self.max_literal, f"The number {text[:40]}")
        if text.isdigit() or (value.is_integer() and abs(value) < 2**53 and "." not in text):
            return Term(sympy.Integer(int(value)), (), node.pos)
        return Term(sympy.Float(value), (), node.pos)

    def _name(self, node: Syntax) -> Term:
        name = node.text
        if name in CONSTANTS:
            value = CONSTANTS[name]
            return Term(value, (), node.pos, is_condition=isinstance(value, Boolean))
        if name in self.shapes:
            return Term(variable_symbol(name), self.shapes[name], node.pos)
        if name in FUNCTION_NAMES:
            raise ExpressionError(
                f"{name!r} at position {node.pos} is a function; call it, as in {name}(x)",
                node.pos, code="function_as_name")
        raise ExpressionError(
            f"Unknown name {name!r} at position {node.pos}; declare it in variables",
            node.pos, code="unknown_name")

    def _tuple(self, node: Syntax) -> Term:
        raise ExpressionError(
            f"A tuple at position {node.pos} is allowed only as an argument of piecewise",
            node.pos, code="misplaced_tuple")

    # --- operators ----------------------------------------------------------------

    def _unary(self, node: Syntax) -> Term:
        operand = self.value(_arg(node, 0))
        expr = operand.expr if node.text == "+" else _settle(sympy.Mul, -1, operand.expr)
        return Term(expr, operand.shape, node.pos)

    def _arith(self, node: Syntax) -> Term:
        terms = [self.value(_arg(node, i)) for i in range(len(node.args))]
        shape = _broadcast(terms, node, "add or subtract")
        parts = [terms[0].expr] + [
            t.expr if op == "+" else _settle(sympy.Mul, -1, t.expr)
            for op, t in zip(node.ops, terms[1:], strict=True)
        ]
        return Term(_settle(sympy.Add, *parts), shape, node.pos)

    def _term(self, node: Syntax) -> Term:
        factors = [self.value(_arg(node, i)) for i in range(len(node.args))]
        shape = _broadcast(factors, node, "multiply or divide")
        parts = [factors[0].expr] + [
            f.expr if op == "*" else _settle(sympy.Pow, f.expr, -1)
            for op, f in zip(node.ops, factors[1:], strict=True)
        ]
        return Term(_settle(sympy.Mul, *parts), shape, node.pos)

    def _power(self, node: Syntax) -> Term:
        base, exponent = (self.value(_arg(node, i)) for i in range(2))
        shape = _broadcast([base, exponent], node, "raise to a power")
        if exponent.expr.is_number and not exponent.expr.free_symbols:
            magnitude = abs(float(exponent.expr)) if exponent.expr.is_finite else float("inf")
            if not magnitude <= self.max_exponent:
                raise LimitError("max_exponent", self.max_exponent,
                                 f"The exponent at position {node.op_positions[0]}")
        return Term(_settle(sympy.Pow, base.expr, exponent.expr), shape, node.pos)

    def _compare(self, node: Syntax) -> Term:
        terms = [self.value(_arg(node, i)) for i in range(len(node.args))]
        shape = _broadcast(terms, node, "compare")
        relations = {"<": sympy.Lt, "<=": sympy.Le, ">": sympy.Gt, ">=": sympy.Ge,
                     "==": sympy.Eq, "!=": sympy.Ne}
        links = [relations[op](a.expr, b.expr)
                 for op, a, b in zip(node.ops, terms, terms[1:], strict=False)]
        return Term(_logic_node(sympy.And, links), shape, node.pos, is_condition=True)

    def _and(self, node: Syntax) -> Term:
        return self._logic(node, sympy.And)

    def _or(self, node: Syntax) -> Term:
        return self._logic(node, sympy.Or)

    def _not(self, node: Syntax) -> Term:
        return self._logic(node, sympy.Not)

    def _logic(self, node: Syntax, op: Any) -> Term:
        terms = [self.condition(_arg(node, i)) for i in range(len(node.args))]
        shape = _broadcast(terms, node, "combine")
        return Term(_logic_node(op, [t.expr for t in terms]), shape, node.pos,
                    is_condition=True)

    # --- subscripts ---------------------------------------------------------------

    def _index(self, node: Syntax) -> Term:
        target = self._vector(_arg(node, 0), "index")
        length = target.shape[0]
        i = self._integer(_arg(node, 1))
        if not -length <= i < length:
            raise ShapeError(
                f"Index {i} at position {node.pos} is out of range for a vector of "
                f"length {length}", position=node.pos)
        return Term(F.Index(target.expr, i % length, length), (), node.pos)

    def _slice(self, node: Syntax) -> Term:
        target = self._vector(_arg(node, 0), "slice")
        length = target.shape[0]
        bounds = [None if a is None else self._integer(a) for a in node.args[1:]]
        if bounds[2] == 0:
            raise ShapeError(f"The slice step at position {node.pos} is zero", position=node.pos)
        start, stop, step = slice(*bounds).indices(length)
        count = len(range(start, stop, step))
        if count == 0:
            raise ShapeError(f"The slice at position {node.pos} is empty", position=node.pos)
        expr = F.Slice(target.expr, start, stop, step, length)
        return Term(expr, (count,), node.pos)

    def _vector(self, node: Syntax, what: str) -> Term:
        target = self.value(node)
        if len(target.shape) != 1:
            raise ShapeError(
                f"Only a vector can be {what}ed; the value at position {node.pos} is a scalar",
                position=node.pos)
        return target

    def _integer(self, node: Syntax) -> int:
        term = self.value(node)
        if not (term.expr.is_Integer and term.shape == ()):
            raise ExpressionError(
                f"An index at position {node.pos} must be a constant integer",
                node.pos, code="bad_index")
        return int(term.expr)

    # --- calls --------------------------------------------------------------------

    def _call(self, node: Syntax) -> Term:
        from app.language.calls import build_call

        return build_call(self, node)


def _logic_node(op: Any, args: list[Any]) -> Any:
    """And/Or/Not; long chains unevaluated, since SymPy's simplification of them is costly."""
    return op(*args, evaluate=False) if len(args) > SMALL_NARY else op(*args)


def _arg(node: Syntax, i: int) -> Syntax:
    arg = node.args[i]
    assert arg is not None
    return arg


def _broadcast(terms: Sequence[Term], node: Syntax, verb: str) -> Shape:
    """The common shape of operands: equal shapes, or scalars beside one vector shape."""
    shapes = {t.shape for t in terms if t.shape != ()}
    if len(shapes) > 1:
        described = " and ".join(f"a vector of length {s[0]}" for s in sorted(shapes))
        raise ShapeError(
            f"Cannot {verb} {described} (at position {node.pos}); vectors must have "
            "the same length", position=node.pos)
    return shapes.pop() if shapes else ()


def settle_constant(func: Any, args: Sequence[Any]) -> Any:
    """Evaluate ``func(*args)`` at constant arguments in float64, as JAX would."""
    value = evaluate_constant(func(*args, evaluate=False))
    return sympy.Float(value)


def _settle(func: Any, *args: Any) -> Any:
    """``func(*args)``, with constant results kept exact only if small, real and finite."""
    args = tuple(sympy.Integer(a) if isinstance(a, int) else a for a in args)
    if all(_is_constant(a) for a in args) and func in _NUMERIC_AT_CONSTANTS:
        return settle_constant(func, args)
    result = func(*args)
    if isinstance(result, Boolean) or not _is_constant(result):
        return result
    if not all(_is_constant(a) for a in args):
        return result  # such as nan + x, which is nan whatever x is
    if result.is_Rational:
        if max(abs(result.p), result.q).bit_length() > _MAX_EXACT_BITS:
            return sympy.Float(mpmath.mpf(result.p) / result.q)  # no decimal string
        return result
    if result.is_Float and result.is_finite:
        return result
    if result.is_extended_real is True and result.is_finite is True:
        return result
    return settle_constant(func, args)


def _is_constant(expr: Any) -> bool:
    return isinstance(expr, sympy.Expr) and not expr.free_symbols


settle = _settle
