"""Special functions and smooth activations: erf, gamma and its logarithm, sigmoid, softplus."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp
import numpy as np
import sympy
from scipy import special

from app.language import functions as F
from app.language.calls import with_order
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

TITLE = "Special functions and activations"
AT = {"x": 0.5}
SQRT_PI = math.sqrt(math.pi)


def _error_function(value: Any, scale: float) -> Any:
    """erf or erfc: JAX's derivative is scale * exp(-(x*x)), scale = +-2/sqrt(pi)."""
    def rule(a: Any) -> Any:
        bell = np.exp(-(a * a))
        return value(a), scale * bell, lambda: scale * (bell * -(2.0 * a))
    return rule


def _gamma(a: Any) -> Any:
    """JAX's gamma: gammasgn(x) * exp(gammaln(x)), differentiated through both."""
    sign, e, psi = special.gammasgn(a), np.exp(special.gammaln(a)), special.digamma(a)
    return (sign * e, sign * (psi * e),
            lambda: sign * (special.polygamma(1, a) * e + psi * (psi * e)))


def _sigmoid(a: Any) -> Any:
    """JAX: logistic' = ans * (1 - ans)."""
    s = special.expit(a)
    slope = s * (1 - s)
    return s, slope, lambda: slope * (1 - s) + s * -slope


def _softplus(a: Any) -> Any:
    """JAX's logaddexp(x, 0), whose derivative is exp(x - ans) (an infinite x or ans read
    as 0)."""
    out = np.logaddexp(a, 0.0)
    slope = np.exp(_finite_or_zero(a) - _finite_or_zero(out))
    return out, slope, lambda: slope * (np.where(np.isposinf(a), 0.0, 1.0)
                                        - np.where(np.isposinf(out), 0.0, slope))


def _finite_or_zero(x: Any) -> Any:
    return np.where(np.isposinf(x), 0.0, x)


def _polygamma(n: Any, x: Any) -> Any:
    return jsp.polygamma(jnp.asarray(n).astype(jnp.int32), x)


_POLYGAMMA = Node(sympy.polygamma, "polygamma", _polygamma,
                  Absent("not written for the first tier yet: XLA answers polygamma"),
                  "polygamma", SYMPY_LATEX)

FUNCTIONS = (
    unary("erf", sympy.erf, jsp.erf,
          Chain(_error_function(special.erf, 2 / SQRT_PI)),
          "The error function", Example("erf(x)", AT), numeric=True),
    unary("erfc", sympy.erfc, jsp.erfc,
          Chain(_error_function(special.erfc, -2 / SQRT_PI)),
          "The complementary error function, 1 - erf(x)", Example("erfc(x)", AT),
          numeric=True),
    unary("gamma", sympy.gamma, jsp.gamma, Chain(_gamma),
          "The gamma function; gamma(n) = (n - 1)! at positive integers",
          Example("gamma(x)", {"x": 2.5}),
          conventions="poles at 0, -1, -2, ...", numeric=True),
    unary("lgamma", sympy.loggamma, jsp.gammaln,
          Chain(lambda a: (special.gammaln(a), special.digamma(a),
                           lambda: special.polygamma(1, a))),
          "The logarithm of the absolute value of the gamma function",
          Example("lgamma(x)", {"x": 2.5}), aliases=("loggamma",),
          conventions="log|gamma(x)|, real for negative x too (JAX's gammaln)", numeric=True),
    Function("polygamma", (), (2, 2), with_order(sympy.polygamma, order_first=True),
             (_POLYGAMMA,),
             "The k-th derivative of the digamma function; polygamma(0, x) is digamma",
             Example("polygamma(1, x)", {"x": 2.5}),
             conventions="k a constant integer from 0 to 20", numeric_at_constants=True,
             signature="polygamma(k, x)"),
    unary("sigmoid", F.sigmoid, jax.nn.sigmoid,
          Chain(_sigmoid),
          "The logistic function 1 / (1 + exp(-x))", Example("sigmoid(x)", AT),
          numeric=True, latex=operator_name("sigmoid")),
    unary("softplus", F.softplus, jax.nn.softplus,
          Chain(_softplus),
          "log(1 + exp(x)), a smooth relu", Example("softplus(x)", AT),
          numeric=True, latex=operator_name("softplus")),
)
