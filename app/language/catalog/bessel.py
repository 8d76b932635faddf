"""The modified Bessel functions that JAX provides: i0, i1 and their scaled forms i0e, i1e.

JAX computes i0 and i1 as ``exp(|x|) * i0e(x)``, so its derivative of i0 at 0 is 1 (from
``abs'(0) = 1``) where i0 is smooth with i0'(0) = 0: nabla gives i0 and i1 JVP rules of
their own (``i0' = i1``, ``i1' = i0 - i1/x``, 1/2 at 0, and ``i1''`` by its series near 0,
where the closed form cancels). i0e and i1e have a kink at 0
(the factor ``exp(-|x|)``); there their derivatives are JAX's (0 and 1/2), from JAX's own
rules, which the first tier mirrors. JAX's ``bessel_jn`` is left out: it is NaN at 0 and
loses all its digits beyond x = 30 or so (it runs a fixed 50 steps of a recurrence).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp
import numpy as np
from scipy import special

from app.language import functions as F
from app.language.catalog.entry import Chain, Example, Latex, operator_name, unary
from app.language.ieee import integer_power

TITLE = "Bessel functions"
AT = {"x": 1.5}
_EPS = float(np.finfo(np.float64).eps)


@jax.custom_jvp
def _jax_i0(x: Any) -> Any:
    return jsp.i0(x)


@_jax_i0.defjvp
def _jax_i0_jvp(primals: Any, tangents: Any) -> Any:
    (x,), (t,) = primals, tangents
    return _jax_i0(x), t * _jax_i1(x)


@jax.custom_jvp
def _jax_i1(x: Any) -> Any:
    return jsp.i1(x)


#: i1(x) = sum_k x^(2k+1) / (2^(2k+1) k! (k+1)!), so i1''(x) = sum_{k>=1} CURVE[k-1] x^(2k-1):
#: used for |x| < 1, where the closed form i1 - i0/x + 2 i1/x^2 cancels (at x = 0.01 it
#: keeps 11 digits of 16); 12 terms leave less than 1e-17 there.
_CURVE = tuple((2 * k + 1) * 2 * k / (2 ** (2 * k + 1) * math.factorial(k) * math.factorial(k + 1))
               for k in range(1, 13))


def _i1_curve(xp: Any, x: Any, i0: Any, i1: Any) -> Any:
    """i1''(x) on NumPy or JAX arrays (``xp``), given i0 and i1 as functions."""
    small = xp.abs(x) < 1
    safe = xp.where(small, 1.0, x)
    closed = i1(safe) * (1 + 2 / (safe * safe)) - i0(safe) / safe
    x2 = x * x
    series = _CURVE[-1] + 0 * x2
    for c in reversed(_CURVE[:-1]):
        series = series * x2 + c
    return xp.where(small, x * series, closed)


@jax.custom_jvp
def _i1_slope(x: Any) -> Any:
    """i1'(x) = i0(x) - i1(x)/x, and 1/2 where |x| <= eps (as JAX's rule for i1e)."""
    tiny = jnp.abs(x) <= _EPS
    safe = jnp.where(tiny, _EPS, x)
    return jnp.where(tiny, 0.5, _jax_i0(safe) - _jax_i1(safe) / safe)


@_i1_slope.defjvp
def _i1_slope_jvp(primals: Any, tangents: Any) -> Any:
    (x,), (t,) = primals, tangents
    return _i1_slope(x), t * _i1_curve(jnp, x, jsp.i0, jsp.i1)


@_jax_i1.defjvp
def _jax_i1_jvp(primals: Any, tangents: Any) -> Any:
    (x,), (t,) = primals, tangents
    return _jax_i1(x), t * _i1_slope(x)


def _scaled(a: Any, scaled: Any) -> Any:
    """exp(|x|) * i0e(x), as JAX computes i0 and i1 (so both overflow alike)."""
    return np.exp(np.abs(a)) * scaled(a)


def _i0(a: Any) -> Any:
    return _scaled(a, special.i0e), _scaled(a, special.i1e), lambda: _i1(a)[1]


def _i1(a: Any) -> Any:
    """i1, its derivative and its second derivative, as the JAX rules above."""
    value = _scaled(a, special.i1e)
    tiny = np.abs(a) <= _EPS
    safe = np.where(tiny, _EPS, a)
    slope = np.where(tiny, 0.5, _scaled(safe, special.i0e) - _scaled(safe, special.i1e) / safe)
    return value, slope, lambda: _i1_curve(np, a, lambda x: _scaled(x, special.i0e),
                                           lambda x: _scaled(x, special.i1e))


def _i1e_slope(a: Any, y: Any) -> tuple[Any, Any, Any, Any]:
    """JAX's rule for i1e': i0e(x) - i1e(x) * (sign(x) + 1/x), 1/2 where |x| <= eps."""
    tiny = np.abs(a) <= _EPS
    safe = np.where(tiny, _EPS, a)
    slope = np.where(tiny, 0.5, special.i0e(safe) - y * (np.sign(safe) + 1.0 / safe))
    return slope, tiny, safe, np.sign(safe)


def _i0e(a: Any) -> Any:
    """JAX's rule: i0e' = i1e(x) - sign(x) * i0e(x)."""
    y = special.i0e(a)
    slope = special.i1e(a) - np.sign(a) * y
    return y, slope, lambda: _i1e_slope(a, special.i1e(a))[0] - np.sign(a) * slope


def _i1e(a: Any) -> Any:
    y = special.i1e(a)
    slope, tiny, safe, sign = _i1e_slope(a, y)

    def second() -> Any:
        i0e_slope = special.i1e(safe) - sign * special.i0e(safe)
        inner = i0e_slope - (slope * (sign + 1.0 / safe) + y * -integer_power(safe, -2))
        return np.where(tiny, 0.0, inner)
    return y, slope, second


FUNCTIONS = (
    unary("i0", F.i0, _jax_i0, Chain(_i0),
          "The modified Bessel function of the first kind of order 0, I_0(x)",
          Example("i0(x)", AT),
          conventions="even, smooth: i0'(0) = 0 (JAX's own i0 says 1 there); overflows to "
          "inf beyond |x| = 713 (use i0e)", numeric=True, latex=Latex("I_{0}")),
    unary("i0e", F.i0e, jsp.i0e, Chain(_i0e),
          "The exponentially scaled I_0: exp(-|x|) i0(x)", Example("i0e(x)", AT),
          conventions="a kink at 0, where the derivative is 0, as in JAX", numeric=True,
          latex=operator_name("i0e")),
    unary("i1", F.i1, _jax_i1, Chain(_i1),
          "The modified Bessel function of the first kind of order 1, I_1(x)",
          Example("i1(x)", AT),
          conventions="odd, smooth: i1'(0) = 1/2; overflows to inf beyond |x| = 713 "
          "(use i1e)", numeric=True, latex=Latex("I_{1}")),
    unary("i1e", F.i1e, jsp.i1e, Chain(_i1e),
          "The exponentially scaled I_1: exp(-|x|) i1(x)", Example("i1e(x)", AT),
          conventions="its derivative has a kink at 0, where it is 1/2, as in JAX",
          numeric=True, latex=operator_name("i1e")),
)
