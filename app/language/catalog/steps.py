"""Functions with kinks and jumps: abs, sign, floor, ceil, round, trunc, mod, relu, min, max,
clip and the steps that symbolic derivatives are written with (heaviside, diracdelta). Their
derivatives at the kinks follow JAX."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import sympy

from app.language import functions as F
from app.language.calls import Call, broadcasting, extremum, with_order
from app.language.catalog.entry import (
    SYMPY_LATEX,
    Absent,
    Chain,
    Composite,
    Example,
    Flat,
    Function,
    JetAlgebra,
    Node,
    Partials,
    operator_name,
    unary,
)
from app.language.catalog.vectors import IN_COMPONENTS, as_vector
from app.language.terms import Term, broadcast

TITLE = "Kinks and steps"
Jet = Any


def _flat(f: Callable[[Any], Any]) -> Flat:
    """An elementwise step: derivatives exactly zero, as JAX differentiates it."""
    return Flat(f)


def _pairwise(func: Callable[[Any, Any], Any]) -> Callable[..., Any]:
    return lambda *args: functools.reduce(func, args)


def _extremum(algebra: JetAlgebra, a: Jet, b: Jet, is_max: bool) -> Jet:
    """max(a, b) or min(a, b), whose derivatives JAX weighs by 1 for the chosen operand, 0
    for the other, and 1/2 each at a tie (a weight of 0 times an infinite derivative is
    NaN there too)."""
    value = np.maximum(a.v, b.v) if is_max else np.minimum(a.v, b.v)
    return algebra.combine(value, [(_balanced(a.v, value, b.v), a),
                                   (_balanced(b.v, value, a.v), b)])


def _balanced(x: Any, chosen: Any, other: Any) -> Any:
    """JAX's ``_balanced_eq``: 1 where x was chosen, halved where the other was too."""
    return np.where(x == chosen, 1.0, 0.0) / np.where(other == chosen, 2.0, 1.0)


def _extrema(is_max: bool) -> Composite:
    return Composite(lambda algebra, *args: functools.reduce(
        lambda a, b: _extremum(algebra, a, b, is_max), args))


def _vector_extremum(is_max: bool) -> Composite:
    """max(v) or min(v); ties share the derivative equally (as JAX)."""
    def rule(algebra: JetAlgebra, v: Jet, n: int) -> Jet:
        full = algebra.vector(v, n)
        best = full.v.max(1, keepdims=True) if is_max else full.v.min(1, keepdims=True)
        weights = (full.v == best).astype(float)
        weights /= weights.sum(1, keepdims=True)
        return algebra.reduce_sum(algebra.mul(full, algebra.lift(weights)))
    return Composite(rule)


def _heaviside(x: Any, h0: Any = 0.5) -> Any:
    return jnp.heaviside(x, h0)


def _diracdelta(x: Any, k: Any = 0) -> Any:
    """0 away from 0 (as JAX differentiates sign and heaviside); at 0 inf, or NaN for k >= 1."""
    at_zero = jnp.where(jnp.asarray(k) == 0, jnp.inf, jnp.nan)
    return jnp.where(x == 0, at_zero, jnp.zeros_like(x, dtype=jnp.float64))


def _mod(a: Any, b: Any) -> Any:
    """JAX's mod: the C remainder (``lax.rem``), plus b where its sign differs from b's;
    its derivatives are rem's: 1 in a, and -sign(a/b) * floor(|a/b|) in b (plus 1 where b
    was added), which is -floor(a/b)."""
    rem = np.fmod(a, b)
    plus = (rem != 0) & ((rem < 0) != (b < 0))
    q = a / b

    def second() -> tuple[Any, Any, Any]:
        zero = np.zeros_like(rem)
        return zero, zero, zero
    return (np.where(plus, rem + b, rem), np.ones_like(rem),
            -(np.sign(q) * np.floor(np.abs(q))) + np.where(plus, 1.0, 0.0), second)


def _clip(call: Call) -> Term:
    """clip(x, lo, hi) as JAX's: min(max(x, lo), hi), whose derivatives are max's and min's
    (1/2 each at a bound)."""
    x, lo, hi = call.values()
    shape = broadcast([x, lo, hi], call.node, "clip")
    inner = call.settle(sympy.Max, x.expr, lo.expr)
    return call.term(call.settle(sympy.Min, inner, hi.expr), shape)


def _extremum_function(name: str, alias: str, func: Any, vector_op: Any, jax_op: Any,
                       description: str) -> Function:
    is_max = name == "max"
    nodes = (Node(func, name, _pairwise(jax_op), _extrema(is_max), name, SYMPY_LATEX),
             Node(vector_op, name, lambda v, n: (jnp.max if is_max else jnp.min)(
                 as_vector(v, n)), _vector_extremum(is_max), IN_COMPONENTS[vector_op],
                 Absent("written out in components (max of the elements)")))
    return Function(name, (alias,), (1, None), extremum(func, vector_op, name), nodes,
                    description, Example(f"{name}(x, y, 0.5)", {"x": 0.25, "y": 1.5}),
                    conventions="two or more arguments, elementwise, or one vector; at a "
                    "tie the derivative is shared equally (1/2 each, as in JAX)",
                    signature=f"{name}(a, b, ...), {name}(v)")


FUNCTIONS = (
    unary("abs", sympy.Abs, jnp.abs,
          Chain(lambda a: (np.abs(a), np.where(a >= 0, 1.0, -1.0), None)),
          "The absolute value of x", Example("abs(x)", {"x": -1.5}), aliases=("Abs",),
          conventions="abs'(0) = 1, as in JAX"),
    unary("sign", sympy.sign, jnp.sign, _flat(np.sign),
          "-1, 0 or 1: the sign of x", Example("sign(x)", {"x": -1.5}),
          conventions="sign(0) = 0; the derivative is 0 everywhere, as in JAX", numeric=True),
    unary("floor", sympy.floor, jnp.floor, _flat(np.floor),
          "The largest integer not above x", Example("floor(x)", {"x": 2.5}),
          conventions="the derivative is 0 everywhere, jumps included, as in JAX",
          numeric=True),
    unary("ceil", sympy.ceiling, jnp.ceil, _flat(np.ceil),
          "The smallest integer not below x", Example("ceil(x)", {"x": 2.5}),
          aliases=("ceiling",),
          conventions="the derivative is 0 everywhere, jumps included, as in JAX",
          numeric=True),
    unary("round", F.Round, jnp.round, _flat(np.round),
          "The nearest integer, ties to even (as NumPy's round)",
          Example("round(x)", {"x": 2.5}),
          conventions="round(0.5) = 0, round(1.5) = 2; the derivative is 0 everywhere, jumps "
          "included, as in JAX", numeric=True, latex=operator_name("round")),
    unary("trunc", F.trunc, jnp.trunc, _flat(np.trunc),
          "x rounded toward 0: floor for x >= 0, ceil below", Example("trunc(x)", {"x": -2.5}),
          conventions="the derivative is 0 everywhere, jumps included, as in JAX",
          numeric=True, latex=operator_name("trunc")),
    Function("mod", (), (2, 2), broadcasting(F.mod, "take mod of"),
             (Node(F.mod, "mod", jnp.mod, Partials(_mod), "mod", operator_name("mod")),),
             "a - b floor(a / b): the remainder of a / b with the sign of b, as NumPy's mod "
             "and Python's %; also written a % b",
             Example("mod(a, b)", {"a": -7.5, "b": 2.0}),
             conventions="the partial derivatives are 1 and -floor(a / b), jumps included, as "
             "in JAX; mod(a, 0) is NaN; a % b binds as * and /", numeric_at_constants=True,
             signature="mod(a, b), a % b"),
    Function("clip", (), (3, 3), _clip,
             Absent("built as min(max(x, lo), hi): computed, differentiated and printed as "
                    "it"),
             "x limited to [lo, hi]: min(max(x, lo), hi), as NumPy's clip",
             Example("clip(x, 0, 1)", {"x": 0.25}),
             conventions="at a bound the derivative is shared: 1/2 to x and 1/2 to the bound, "
             "as in JAX; lo > hi gives hi", signature="clip(x, lo, hi)"),
    unary("relu", F.relu, jax.nn.relu,
          Chain(lambda a: (np.maximum(a, 0), (a > 0).astype(float), None)),
          "max(x, 0)", Example("relu(x)", {"x": 1.5}),
          conventions="relu'(0) = 0, as in JAX", numeric=True, latex=operator_name("relu")),
    _extremum_function("min", "Min", sympy.Min, F.VecMin, jnp.minimum,
                       "The smallest of the arguments, or of the elements of one vector"),
    _extremum_function("max", "Max", sympy.Max, F.VecMax, jnp.maximum,
                       "The largest of the arguments, or of the elements of one vector"),
    Function("heaviside", (), (1, 2), broadcasting(sympy.Heaviside, "take heaviside of"),
             (Node(sympy.Heaviside, "heaviside", _heaviside, Flat(
                 lambda x, h0=0.5: np.heaviside(x, h0)), "heaviside", SYMPY_LATEX),),
             "The unit step: 0 for x < 0, 1 for x > 0, and h0 at 0 (default 1/2)",
             Example("heaviside(x, 0)", {"x": 1.5}),
             conventions="the derivative is 0 everywhere, as JAX differentiates steps",
             numeric_at_constants=True, signature="heaviside(x), heaviside(x, h0)"),
    Function("diracdelta", (), (1, 2), with_order(sympy.DiracDelta, order_first=False),
             (Node(sympy.DiracDelta, "diracdelta", _diracdelta, Absent(
                 "not written for the first tier yet: XLA answers diracdelta"),
                 "diracdelta", SYMPY_LATEX),),
             "Dirac's delta, or its k-th derivative with diracdelta(x, k): "
             "0 away from 0", Example("diracdelta(x)", {"x": 1.5}),
             conventions="0 away from 0, as JAX differentiates sign and heaviside; at 0 "
             "inf for k = 0 and NaN otherwise; k a constant integer from 0 to 20",
             numeric_at_constants=True, signature="diracdelta(x), diracdelta(x, k)"),
)
