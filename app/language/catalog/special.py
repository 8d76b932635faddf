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


def _sig(a: Any) -> Any:
    return special.expit(a)


def _gamma(a: Any) -> Any:
    return (special.gamma(a), special.gamma(a) * special.digamma(a),
            lambda: special.gamma(a) * (special.digamma(a) ** 2 + special.polygamma(1, a)))


def _polygamma(n: Any, x: Any) -> Any:
    return jsp.polygamma(jnp.asarray(n).astype(jnp.int32), x)


_POLYGAMMA = Node(sympy.polygamma, "polygamma", _polygamma,
                  Absent("not written for the first tier yet: XLA answers polygamma"),
                  "polygamma", SYMPY_LATEX)

FUNCTIONS = (
    unary("erf", sympy.erf, jsp.erf,
          Chain(lambda a: (special.erf(a), 2 / SQRT_PI * np.exp(-a * a),
                           lambda: -4 * a / SQRT_PI * np.exp(-a * a))),
          "The error function", Example("erf(x)", AT), numeric=True),
    unary("erfc", sympy.erfc, jsp.erfc,
          Chain(lambda a: (special.erfc(a), -2 / SQRT_PI * np.exp(-a * a),
                           lambda: 4 * a / SQRT_PI * np.exp(-a * a))),
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
          Chain(lambda a: (_sig(a), _sig(a) * (1 - _sig(a)),
                           lambda: _sig(a) * (1 - _sig(a)) * (1 - 2 * _sig(a)))),
          "The logistic function 1 / (1 + exp(-x))", Example("sigmoid(x)", AT),
          numeric=True, latex=operator_name("sigmoid")),
    unary("softplus", F.softplus, jax.nn.softplus,
          Chain(lambda a: (np.logaddexp(0, a), _sig(a), lambda: _sig(a) * (1 - _sig(a)))),
          "log(1 + exp(x)), a smooth relu", Example("softplus(x)", AT),
          numeric=True, latex=operator_name("softplus")),
)
