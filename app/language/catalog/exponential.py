"""Exponentials, logarithms, powers and roots; hypot and logaddexp."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import sympy
from sympy.codegen.cfunctions import Cbrt, expm1, log1p, log2, log10

from app.language import functions as F
from app.language.calls import Call, broadcasting, elementwise, power, power_of
from app.language.catalog.entry import (
    SYMPY_LATEX,
    Absent,
    Chain,
    Example,
    Function,
    Node,
    Partials,
    operator_name,
    unary,
)
from app.language.ieee import integer_power
from app.language.terms import Term, broadcast

TITLE = "Exponentials, logarithms, powers and roots"
AT = {"x": 0.5}


def _cbrt(a: Any) -> Any:
    """JAX: cbrt' = (1/3) * ans**-2."""
    root = np.cbrt(a)
    slope = (1 / 3) * integer_power(root, -2)
    return root, slope, lambda: (1 / 3) * (slope * (-2 * integer_power(root, -3)))


def _reciprocal(u: Any) -> tuple[Any, Any]:
    """1 / u and its derivative in u, as JAX's rule for a division: -u**-2."""
    return 1.0 / u, -integer_power(u, -2)


def _exp(a: Any) -> Any:
    e = np.exp(a)
    return e, e, lambda: e


def _expm1(a: Any) -> Any:
    """JAX: expm1' = ans + 1."""
    e = np.expm1(a)
    slope = e + 1
    return e, slope, lambda: slope


def _log_base(base: float) -> Any:
    """log2 and log10 as JAX computes them: log(x) / log(base)."""
    scale = math.log(base)

    def rule(a: Any) -> Any:
        slope, curve = _reciprocal(a)
        return np.log(a) / scale, slope / scale, lambda: curve / scale
    return rule


def _build_log(call: Call) -> Term:
    """log(x), or log(x, b) as log(x) / log(b): SymPy's own log(x, b) divides exactly, so
    log(x, 1) would be complex infinity and log(x, -1) complex."""
    terms = call.values()
    shape = broadcast(terms, call.node, "take the log of")
    logs = [call.settle(sympy.log, t.expr) for t in terms]
    expr = logs[0] if len(logs) == 1 else call.divide(logs[0], logs[1])
    return call.term(expr, shape)


@jax.custom_jvp
def _jax_hypot(a: Any, b: Any) -> Any:
    """JAX's hypot, with a JVP rule of its own: JAX differentiates its composition (abs, then
    max and min, which share a tie), which gives a Hessian of 0 where |a| = |b| (6e-18 at
    (3, 3), where it is [[1, -1], [-1, 1]] / (6 sqrt 2)) and a NaN gradient at (1e-200, 0)
    (0 * inf). The gradient is (a, b) / hypot(a, b); at (0, 0) it is JAX's (1/2, 1/2), and
    the Hessian JAX's 0."""
    return jnp.hypot(a, b)


@_jax_hypot.defjvp
def _jax_hypot_jvp(primals: Any, tangents: Any) -> Any:
    (a, b), (ta, tb) = primals, tangents
    return _jax_hypot(a, b), _unit(a, b) * ta + _unit(b, a) * tb


@jax.custom_jvp
def _unit(a: Any, b: Any) -> Any:
    """a / hypot(a, b), 1/2 at (0, 0)."""
    h = jnp.hypot(a, b)
    return jnp.where(h == 0, 0.5, a / jnp.where(h == 0, 1.0, h))


@_unit.defjvp
def _unit_jvp(primals: Any, tangents: Any) -> Any:
    """Its partial derivatives (b/h)^2 / h and -(a/h)(b/h) / h (no cancellation); 0 at
    (0, 0), where it is constant."""
    (a, b), (ta, tb) = primals, tangents
    h = jnp.hypot(a, b)
    origin = h == 0
    safe = jnp.where(origin, 1.0, h)
    ra, rb = a / safe, b / safe
    return _unit(a, b), (rb * rb / safe) * ta + (-(ra * rb) / safe) * tb


def _hypot(a: Any, b: Any) -> Any:
    """hypot, its partial derivatives and second derivatives, as the rules above."""
    h = np.hypot(a, b)
    origin = h == 0
    safe = np.where(origin, 1.0, h)
    ra, rb = a / safe, b / safe

    def second() -> tuple[Any, Any, Any]:
        return rb * rb / safe, -(ra * rb) / safe, ra * ra / safe
    return h, np.where(origin, 0.5, ra), np.where(origin, 0.5, rb), second


def _logaddexp(a: Any, b: Any) -> Any:
    """JAX's logaddexp: max + log1p(exp(-|a - b|)), and its JVP rule's partial derivatives
    exp(a - ans) and exp(b - ans), where an infinite a, b or ans reads as 0."""
    delta = a - b
    out = np.where(np.isnan(delta), a + b,
                   np.maximum(a, b) + np.log1p(np.exp(-np.abs(delta))))
    keep_a, keep_b, keep_out = (np.where(np.isposinf(u), 0.0, 1.0) for u in (a, b, out))
    fa = np.exp(_finite_or_zero(a) - _finite_or_zero(out))
    fb = np.exp(_finite_or_zero(b) - _finite_or_zero(out))

    def second() -> tuple[Any, Any, Any]:
        return (fa * (keep_a - keep_out * fa), fa * -(keep_out * fb),
                fb * (keep_b - keep_out * fb))
    return out, fa, fb, second


def _finite_or_zero(x: Any) -> Any:
    return np.where(np.isposinf(x), 0.0, x)


_LOG = Chain(lambda a: (np.log(a), *_reciprocal(a)))
_AS_POWER = Absent("sqrt(x) is built as x**(1/2): the power operator computes, "
                   "differentiates and prints it")
# sympy.codegen's Cbrt is never built from text; it is kept in the tables in case SymPy
# makes one while simplifying, and prints with SymPy's own LaTeX as before.
_CBRT = Node(F.cbrt, "cbrt", jnp.cbrt, Chain(_cbrt), "cbrt", operator_name("cbrt"))
_CODEGEN_CBRT = Node(Cbrt, "cbrt", jnp.cbrt, Chain(_cbrt), "cbrt", SYMPY_LATEX)

FUNCTIONS = (
    unary("exp", sympy.exp, jnp.exp,
          Chain(_exp),
          "e to the power x", Example("exp(x)", AT)),
    unary("expm1", expm1, jnp.expm1,
          Chain(_expm1),
          "exp(x) - 1, accurate for small x", Example("expm1(x)", {"x": 1e-5}),
          numeric=True),
    Function("log", (), (1, 2), _build_log,
             (Node(sympy.log, "log", jnp.log, _LOG, "log", SYMPY_LATEX),),
             "The natural logarithm of x; log(x, b) is the logarithm to base b",
             Example("log(x, b)", {"x": 5.0, "b": 2.0}),
             conventions="x > 0; log(0) is -inf and log(x < 0) is NaN, as in JAX "
             "(never SymPy's complex value); log(x, b) is log(x) / log(b), so log(x, 1) "
             "is inf, -inf or NaN as that division is", signature="log(x), log(x, b)"),
    Function("ln", (), (1, 1), elementwise(sympy.log),
             Absent("builds log(x)'s node: computed, differentiated and printed as log(x)"),
             "The natural logarithm, as log(x)", Example("ln(x)", AT),
             conventions="x > 0, as log"),
    unary("log1p", log1p, jnp.log1p,
          Chain(lambda a: (np.log1p(a), *_reciprocal(a + 1))),
          "log(1 + x), accurate for small x", Example("log1p(x)", {"x": 1e-5}),
          conventions="x > -1", numeric=True),
    unary("log2", log2, jnp.log2,
          Chain(_log_base(2)),
          "The logarithm to base 2", Example("log2(x)", {"x": 3.0}),
          conventions="x > 0, as log", numeric=True),
    unary("log10", log10, jnp.log10,
          Chain(_log_base(10)),
          "The logarithm to base 10", Example("log10(x)", {"x": 3.0}),
          conventions="x > 0, as log", numeric=True),
    Function("exp2", (), (1, 1), power_of("2"), Absent(
                 "built as 2^x: the power operator computes, differentiates and prints it"),
             "2 to the power x", Example("exp2(x)", AT),
             conventions="the same as 2^x, which it is built as"),
    Function("pow", (), (2, 2), power, Absent(
                 "built as a^b: the power operator computes, differentiates and prints it"),
             "a to the power b, the same as a^b", Example("pow(a, b)", {"a": 1.5, "b": 2.5}),
             conventions="as a^b: a negative base with a non-integer exponent is NaN; at "
             "(0, 0) the gradient is (NaN, 0), JAX's convention", signature="pow(a, b)"),
    Function("hypot", (), (2, 2), broadcasting(F.hypot, "take hypot of"),
             (Node(F.hypot, "hypot", _jax_hypot, Partials(_hypot), "hypot",
                   operator_name("hypot")),),
             "sqrt(a^2 + b^2), without overflow or underflow in between",
             Example("hypot(a, b)", {"a": 3.0, "b": -4.0}),
             conventions="the gradient is (a, b) / hypot(a, b), and (1/2, 1/2) at (0, 0) as "
             "in JAX (and the Hessian 0 there); right where |a| = |b| and for tiny a or b, "
             "where JAX's own hypot gives a Hessian of 0 and a NaN gradient",
             numeric_at_constants=True, signature="hypot(a, b)"),
    Function("logaddexp", (), (2, 2), broadcasting(F.logaddexp, "take logaddexp of"),
             (Node(F.logaddexp, "logaddexp", jnp.logaddexp, Partials(_logaddexp),
                   "logaddexp", operator_name("logaddexp")),),
             "log(exp(a) + exp(b)), without overflow",
             Example("logaddexp(a, b)", {"a": 1000.0, "b": 999.0}),
             conventions="the partial derivatives are sigmoid(a - b) and sigmoid(b - a); "
             "logaddexp(-inf, -inf) = -inf, as in JAX", numeric_at_constants=True,
             signature="logaddexp(a, b)"),
    Function("sqrt", (), (1, 1), elementwise(sympy.sqrt), _AS_POWER,
             "The square root of x", Example("sqrt(x)", {"x": 2.0}),
             conventions="x >= 0, NaN below; the derivative is inf at 0"),
    Function("cbrt", (), (1, 1), elementwise(F.cbrt), (_CBRT, _CODEGEN_CBRT),
             "The real cube root of x, negative for negative x", Example("cbrt(x)", {"x": -2.0}),
             conventions="defined for every real x; the derivative is inf at 0",
             numeric_at_constants=True),
)
