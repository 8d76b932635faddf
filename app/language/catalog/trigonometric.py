"""Trigonometric and hyperbolic functions, their inverses and reciprocals, atan2 and sinc.

The first tier's derivatives are written as JAX's JVP rules compute them (asin' as
``rsqrt(1 - x*x)``, atan' as ``1 / (1 + x*x)``), and second derivatives as the JVP of
those expressions, so that both tiers overflow and meet ``0 * inf`` at the same points.
JAX has no sec, csc, cot or their inverses: they are compiled as the reciprocals they are
(``1/cos(x)``, ``acos(1/x)``) and the first tier composes the same operations; acot and
sinc have JVP rules of their own (``jax.custom_jvp``), which the first tier mirrors.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import sympy

from app.language import functions as F
from app.language.calls import broadcasting
from app.language.catalog.entry import (
    SYMPY_LATEX,
    Chain,
    Composite,
    Example,
    Function,
    JetAlgebra,
    Node,
    Partials,
    operator_name,
    unary,
)
from app.language.ieee import flush, integer_power

TITLE = "Trigonometric and hyperbolic"
AT = {"x": 0.5}


def _rsqrt(u: Any) -> Any:
    return 1.0 / np.sqrt(u)


def _rsqrt_chain(u: Any, du: Any) -> tuple[Any, Any]:
    """rsqrt(u) and its derivative, JAX's ``du * (-0.5 * (rsqrt(u) / u))``."""
    r = _rsqrt(u)
    return r, du * (-0.5 * (r / u))


def _asin(a: Any) -> Any:
    r, dr = _rsqrt_chain(1 - a * a, -(2.0 * a))
    return np.arcsin(a), r, dr


def _acos(a: Any) -> Any:
    r, dr = _rsqrt_chain(1 - a * a, -(2.0 * a))
    return np.arccos(a), -r, -dr


def _atan(a: Any) -> Any:
    u = 1 + a * a
    return np.arctan(a), 1.0 / u, lambda: -(2.0 * a) * integer_power(u, -2)


def _tan(a: Any) -> Any:
    t = np.tan(a)
    slope = 1 + t * t
    return t, slope, lambda: slope * (2.0 * t)


def _tanh(a: Any) -> Any:
    t = np.tanh(a)
    slope = (1 + t) * (1 - t)
    return t, slope, lambda: slope * (1 - t) + (1 + t) * -slope


def _asinh(a: Any) -> Any:
    r, dr = _rsqrt_chain(a * a + 1, 2.0 * a)
    return np.arcsinh(a), r, dr


def _acosh(a: Any) -> Any:
    r, dr = _rsqrt_chain(a * a - 1, 2.0 * a)
    return np.arccosh(a), r, dr


def _atanh(a: Any) -> Any:
    p, q = 1 + a, 1 - a
    return (np.arctanh(a), integer_power(p, -1) * (1.0 / q),
            lambda: -integer_power(p, -2) * (1.0 / q) + integer_power(p, -1) * integer_power(
                q, -2))


def _atan2(y: Any, x: Any) -> Any:
    """atan2 and its partial derivatives, as JAX's rule: x / r2 and -y / r2, r2 = y^2 + x^2."""
    r2 = y * y + x * x
    def second() -> tuple[Any, Any, Any]:
        inverse_square = integer_power(r2, -2)
        return (-(2.0 * y) * x * inverse_square, 1.0 / r2 + -(2.0 * x) * x * inverse_square,
                -(2.0 * x) * -y * inverse_square)
    return np.arctan2(y, x), x / r2, -y / r2, second


Jet = Any
_ONE = np.asarray([[1.0]])


def _sin(a: Any) -> Any:
    return np.sin(a), np.cos(a), lambda: -np.sin(a)


def _cos(a: Any) -> Any:
    return np.cos(a), -np.sin(a), lambda: -np.cos(a)


def _reciprocal_of(inner: Any) -> Composite:
    """1 / inner(x), as JAX differentiates a division: sec, csc, cot. The inner value is
    flushed, as XLA flushes every operation's result (a node's own result is flushed by
    the first tier)."""
    def rule(algebra: JetAlgebra, a: Jet) -> Jet:
        value, slope, curve = inner(a.v)
        return algebra.divide(algebra.lift(_ONE), algebra.chain(a, flush(value), slope, curve))
    return Composite(rule)


def _of_reciprocal(outer: Any) -> Composite:
    """outer(1 / x), as JAX differentiates it (1/x by the rule of a division: -x**-2, and
    2 x**-3): asec, acsc. 1/x is flushed, as XLA flushes it (acsc(-1e308) is asin(-0))."""
    def rule(algebra: JetAlgebra, a: Jet) -> Jet:
        x = a.v
        u = algebra.chain(a, flush(1.0 / x), -integer_power(x, -2),
                          lambda: -(-2.0 * integer_power(x, -3)))
        return algebra.chain(u, *outer(u.v))
    return Composite(rule)


@jax.custom_jvp
def _jax_acot(x: Any) -> Any:
    """acot(x) = atan(1/x), pi/2 at 0 (SymPy's branch); its derivative is -1/(1 + x^2)
    everywhere, 0 included, where atan(1/x) would give 0 * inf."""
    return jnp.where(x == 0, jnp.pi / 2, jnp.arctan(1.0 / x))


@_jax_acot.defjvp
def _jax_acot_jvp(primals: Any, tangents: Any) -> Any:
    (x,), (t,) = primals, tangents
    return _jax_acot(x), t * (-1.0 / (1 + x * x))


def _acot(a: Any) -> Any:
    u = 1 + a * a
    value = np.where(a == 0, np.pi / 2, np.arctan(1.0 / np.where(a == 0, 1.0, a)))
    return value, -1.0 / u, lambda: (2.0 * a) * integer_power(u, -2)


#: sin(u)/u = sum (-1)^k u^2k / (2k+1)!: its derivative g(u) = sum_{k>=1} G[k-1] u^(2k-1)
#: and second derivative h(u) = sum_{k>=1} H[k-1] u^(2k-2), used for |u| < 1/2, where the
#: closed forms lose digits to cancellation (8 terms: below 1e-17 relative there).
_G = tuple((-1) ** k * 2 * k / math.factorial(2 * k + 1) for k in range(1, 9))
_H = tuple((-1) ** k * 2 * k * (2 * k - 1) / math.factorial(2 * k + 1) for k in range(1, 9))
_SERIES_BELOW = 0.5


def _horner(u2: Any, coefficients: tuple[float, ...]) -> Any:
    total = coefficients[-1] + 0 * u2
    for c in reversed(coefficients[:-1]):
        total = total * u2 + c
    return total


def _sinc_g(xp: Any, u: Any) -> Any:
    """d/du sin(u)/u = (u cos u - sin u) / u^2, on NumPy or JAX arrays (``xp``)."""
    small = xp.abs(u) < _SERIES_BELOW
    safe = xp.where(small, 1.0, u)
    closed = (safe * xp.cos(safe) - xp.sin(safe)) / (safe * safe)
    return xp.where(small, u * _horner(u * u, _G), closed)


def _sinc_h(xp: Any, u: Any) -> Any:
    """d2/du2 sin(u)/u = ((2 - u^2) sin u - 2 u cos u) / u^3."""
    small = xp.abs(u) < _SERIES_BELOW
    safe = xp.where(small, 1.0, u)
    closed = ((2 - safe * safe) * xp.sin(safe) - 2 * safe * xp.cos(safe)) / (
        safe * safe * safe)
    return xp.where(small, _horner(u * u, _H), closed)


@jax.custom_jvp
def _jax_sinc_g(u: Any) -> Any:
    return _sinc_g(jnp, u)


@_jax_sinc_g.defjvp
def _jax_sinc_g_jvp(primals: Any, tangents: Any) -> Any:
    (u,), (t,) = primals, tangents
    return _jax_sinc_g(u), t * _sinc_h(jnp, u)


@jax.custom_jvp
def _jax_sinc(x: Any) -> Any:
    """NumPy's sinc, with derivatives accurate at and near 0 (JAX's own sinc is exact at 0,
    but its derivative at 1e-8 is off by a third: cos(u)/u - sin(u)/u^2 cancels)."""
    return jnp.sinc(x)


@_jax_sinc.defjvp
def _jax_sinc_jvp(primals: Any, tangents: Any) -> Any:
    (x,), (t,) = primals, tangents
    return _jax_sinc(x), t * (jnp.pi * _jax_sinc_g(jnp.pi * x))


def _sinc(a: Any) -> Any:
    u = np.pi * a
    return np.sinc(a), np.pi * _sinc_g(np, u), lambda: np.pi * (_sinc_h(np, u) * np.pi)


FUNCTIONS = (
    unary("sin", sympy.sin, jnp.sin,
          Chain(lambda a: (np.sin(a), np.cos(a), lambda: -np.sin(a))),
          "The sine of x (radians)", Example("sin(x)", AT)),
    unary("cos", sympy.cos, jnp.cos,
          Chain(lambda a: (np.cos(a), -np.sin(a), lambda: -np.cos(a))),
          "The cosine of x (radians)", Example("cos(x)", AT)),
    unary("tan", sympy.tan, jnp.tan,
          Chain(_tan),
          "The tangent of x (radians)", Example("tan(x)", AT),
          conventions="poles at pi/2 + k pi"),
    unary("asin", sympy.asin, jnp.arcsin,
          Chain(_asin),
          "The inverse sine, in [-pi/2, pi/2]", Example("asin(x)", AT), aliases=("arcsin",),
          conventions="x in [-1, 1], NaN outside; the derivative is inf at -1 and 1"),
    unary("acos", sympy.acos, jnp.arccos,
          Chain(_acos),
          "The inverse cosine, in [0, pi]", Example("acos(x)", AT), aliases=("arccos",),
          conventions="x in [-1, 1], NaN outside; the derivative is -inf at -1 and 1"),
    unary("atan", sympy.atan, jnp.arctan,
          Chain(_atan),
          "The inverse tangent, in (-pi/2, pi/2)", Example("atan(x)", AT),
          aliases=("arctan",)),
    Function("atan2", ("arctan2",), (2, 2), broadcasting(sympy.atan2, "take atan2 of"),
             (Node(sympy.atan2, "atan2", jnp.arctan2, Partials(_atan2), "atan2",
                   SYMPY_LATEX),),
             "The angle of the point (x, y) from the positive x axis, in (-pi, pi]",
             Example("atan2(y, x)", {"y": 0.5, "x": -1.5}),
             conventions="y first, as in NumPy; not differentiable at (0, 0)",
             signature="atan2(y, x)"),
    unary("sinh", sympy.sinh, jnp.sinh,
          Chain(lambda a: (np.sinh(a), np.cosh(a), lambda: np.sinh(a))),
          "The hyperbolic sine of x", Example("sinh(x)", AT)),
    unary("cosh", sympy.cosh, jnp.cosh,
          Chain(lambda a: (np.cosh(a), np.sinh(a), lambda: np.cosh(a))),
          "The hyperbolic cosine of x", Example("cosh(x)", AT)),
    unary("tanh", sympy.tanh, jnp.tanh,
          Chain(_tanh),
          "The hyperbolic tangent of x", Example("tanh(x)", AT)),
    unary("asinh", sympy.asinh, jnp.arcsinh,
          Chain(_asinh),
          "The inverse hyperbolic sine", Example("asinh(x)", AT), aliases=("arcsinh",)),
    unary("acosh", sympy.acosh, jnp.arccosh,
          Chain(_acosh),
          "The inverse hyperbolic cosine, at least 0", Example("acosh(x)", {"x": 1.5}),
          aliases=("arccosh",),
          conventions="x >= 1, NaN below; the derivative is inf at 1"),
    unary("atanh", sympy.atanh, jnp.arctanh,
          Chain(_atanh),
          "The inverse hyperbolic tangent", Example("atanh(x)", AT), aliases=("arctanh",),
          conventions="x in (-1, 1); -inf and inf at -1 and 1, NaN beyond"),
    unary("sec", sympy.sec, lambda x: 1.0 / jnp.cos(x), _reciprocal_of(_cos),
          "The secant 1 / cos(x)", Example("sec(x)", AT),
          conventions="poles at pi/2 + k pi"),
    unary("csc", sympy.csc, lambda x: 1.0 / jnp.sin(x), _reciprocal_of(_sin),
          "The cosecant 1 / sin(x)", Example("csc(x)", AT),
          conventions="poles at k pi"),
    unary("cot", sympy.cot, lambda x: 1.0 / jnp.tan(x), _reciprocal_of(_tan),
          "The cotangent 1 / tan(x)", Example("cot(x)", AT),
          conventions="poles at k pi"),
    unary("asec", sympy.asec, lambda x: jnp.arccos(1.0 / x), _of_reciprocal(_acos),
          "The inverse secant acos(1/x), in [0, pi]", Example("asec(x)", {"x": 1.5}),
          aliases=("arcsec",),
          conventions="|x| >= 1, NaN between -1 and 1; the derivative is inf at -1 and 1"),
    unary("acsc", sympy.acsc, lambda x: jnp.arcsin(1.0 / x), _of_reciprocal(_asin),
          "The inverse cosecant asin(1/x), in [-pi/2, pi/2]", Example("acsc(x)", {"x": -1.5}),
          aliases=("arccsc",),
          conventions="|x| >= 1, NaN between -1 and 1; the derivative is -inf at -1 and 1"),
    unary("acot", sympy.acot, _jax_acot, Chain(_acot),
          "The inverse cotangent atan(1/x), in (-pi/2, pi/2]", Example("acot(x)", AT),
          aliases=("arccot",),
          conventions="SymPy's branch: odd, with a jump at 0, where acot(0) = pi/2; the "
          "derivative is -1/(1 + x^2) everywhere, 0 included"),
    unary("sinc", F.sinc, _jax_sinc, Chain(_sinc),
          "NumPy's normalised sinc: sin(pi x) / (pi x), and 1 at 0 (SymPy's sinc is "
          "sin(x) / x)", Example("sinc(x)", AT),
          conventions="defined for every real x: sinc(0) = 1, sinc'(0) = 0, sinc''(0) = "
          "-pi^2/3, accurate near 0 too (a Taylor series for |x| < 1/(2 pi)); the symbolic "
          "derivative is written piecewise at 0", numeric=True,
          latex=operator_name("sinc")),
)
