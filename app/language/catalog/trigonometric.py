"""Trigonometric and hyperbolic functions, their inverses, and atan2."""

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

TITLE = "Trigonometric and hyperbolic"
AT = {"x": 0.5}


def _atan2(y: Any, x: Any) -> Any:
    r2 = x * x + y * y
    return (np.arctan2(y, x), x / r2, -y / r2,
            lambda: (-2 * x * y / r2**2, (y * y - x * x) / r2**2, 2 * x * y / r2**2))


FUNCTIONS = (
    unary("sin", sympy.sin, jnp.sin,
          Chain(lambda a: (np.sin(a), np.cos(a), lambda: -np.sin(a))),
          "The sine of x (radians)", Example("sin(x)", AT)),
    unary("cos", sympy.cos, jnp.cos,
          Chain(lambda a: (np.cos(a), -np.sin(a), lambda: -np.cos(a))),
          "The cosine of x (radians)", Example("cos(x)", AT)),
    unary("tan", sympy.tan, jnp.tan,
          Chain(lambda a: (np.tan(a), 1 + np.tan(a) ** 2,
                           lambda: 2 * np.tan(a) * (1 + np.tan(a) ** 2))),
          "The tangent of x (radians)", Example("tan(x)", AT),
          conventions="poles at pi/2 + k pi"),
    unary("asin", sympy.asin, jnp.arcsin,
          Chain(lambda a: (np.arcsin(a), 1 / np.sqrt(1 - a * a),
                           lambda: a / (1 - a * a) ** 1.5)),
          "The inverse sine, in [-pi/2, pi/2]", Example("asin(x)", AT),
          conventions="x in [-1, 1], NaN outside; the derivative is inf at -1 and 1"),
    unary("acos", sympy.acos, jnp.arccos,
          Chain(lambda a: (np.arccos(a), -1 / np.sqrt(1 - a * a),
                           lambda: -a / (1 - a * a) ** 1.5)),
          "The inverse cosine, in [0, pi]", Example("acos(x)", AT),
          conventions="x in [-1, 1], NaN outside; the derivative is -inf at -1 and 1"),
    unary("atan", sympy.atan, jnp.arctan,
          Chain(lambda a: (np.arctan(a), 1 / (1 + a * a), lambda: -2 * a / (1 + a * a) ** 2)),
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
          Chain(lambda a: (np.tanh(a), 1 - np.tanh(a) ** 2,
                           lambda: -2 * np.tanh(a) * (1 - np.tanh(a) ** 2))),
          "The hyperbolic tangent of x", Example("tanh(x)", AT)),
    unary("asinh", sympy.asinh, jnp.arcsinh,
          Chain(lambda a: (np.arcsinh(a), 1 / np.sqrt(a * a + 1),
                           lambda: -a / (a * a + 1) ** 1.5)),
          "The inverse hyperbolic sine", Example("asinh(x)", AT)),
    unary("acosh", sympy.acosh, jnp.arccosh,
          Chain(lambda a: (np.arccosh(a), 1 / np.sqrt(a * a - 1),
                           lambda: -a / (a * a - 1) ** 1.5)),
          "The inverse hyperbolic cosine, at least 0", Example("acosh(x)", {"x": 1.5}),
          conventions="x >= 1, NaN below; the derivative is inf at 1"),
    unary("atanh", sympy.atanh, jnp.arctanh,
          Chain(lambda a: (np.arctanh(a), 1 / (1 - a * a), lambda: 2 * a / (1 - a * a) ** 2)),
          "The inverse hyperbolic tangent", Example("atanh(x)", AT),
          conventions="x in (-1, 1); -inf and inf at -1 and 1, NaN beyond"),
)
