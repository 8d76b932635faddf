"""Exponentials, logarithms and roots."""

from __future__ import annotations

import math
from typing import Any

import jax.numpy as jnp
import numpy as np
import sympy
from sympy.codegen.cfunctions import Cbrt, expm1, log1p, log2, log10

from app.language import functions as F
from app.language.calls import Call, elementwise
from app.language.catalog.entry import (
    SYMPY_LATEX,
    Absent,
    Chain,
    Example,
    Function,
    Node,
    operator_name,
    unary,
)
from app.language.ieee import integer_power
from app.language.terms import Term, broadcast

TITLE = "Exponentials, logarithms and roots"
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
    Function("sqrt", (), (1, 1), elementwise(sympy.sqrt), _AS_POWER,
             "The square root of x", Example("sqrt(x)", {"x": 2.0}),
             conventions="x >= 0, NaN below; the derivative is inf at 0"),
    Function("cbrt", (), (1, 1), elementwise(F.cbrt), (_CBRT, _CODEGEN_CBRT),
             "The real cube root of x, negative for negative x", Example("cbrt(x)", {"x": -2.0}),
             conventions="defined for every real x; the derivative is inf at 0",
             numeric_at_constants=True),
)
