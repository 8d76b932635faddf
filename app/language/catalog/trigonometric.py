"""Trigonometric and hyperbolic functions, their inverses, and atan2.

The first tier's derivatives are written as JAX's JVP rules compute them (asin' as
``rsqrt(1 - x*x)``, atan' as ``1 / (1 + x*x)``), and second derivatives as the JVP of
those expressions, so that both tiers overflow and meet ``0 * inf`` at the same points.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np
import sympy

from app.language.calls import broadcasting
from app.language.catalog.entry import (
    SYMPY_LATEX,
    Chain,
    Example,
    Function,
    Node,
    Partials,
    unary,
)
from app.language.ieee import integer_power

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
          "The inverse sine, in [-pi/2, pi/2]", Example("asin(x)", AT),
          conventions="x in [-1, 1], NaN outside; the derivative is inf at -1 and 1"),
    unary("acos", sympy.acos, jnp.arccos,
          Chain(_acos),
          "The inverse cosine, in [0, pi]", Example("acos(x)", AT),
          conventions="x in [-1, 1], NaN outside; the derivative is -inf at -1 and 1"),
    unary("atan", sympy.atan, jnp.arctan,
          Chain(_atan),
          "The inverse tangent, in (-pi/2, pi/2)", Example("atan(x)", AT)),
    Function("atan2", (), (2, 2), broadcasting(sympy.atan2, "take atan2 of"),
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
          "The inverse hyperbolic sine", Example("asinh(x)", AT)),
    unary("acosh", sympy.acosh, jnp.arccosh,
          Chain(_acosh),
          "The inverse hyperbolic cosine, at least 0", Example("acosh(x)", {"x": 1.5}),
          conventions="x >= 1, NaN below; the derivative is inf at 1"),
    unary("atanh", sympy.atanh, jnp.arctanh,
          Chain(_atanh),
          "The inverse hyperbolic tangent", Example("atanh(x)", AT),
          conventions="x in (-1, 1); -inf and inf at -1 and 1, NaN beyond"),
)
