"""Special functions and smooth activations: erf and its inverse, gamma and what is made of
it (lgamma, digamma and polygamma, beta, factorial, binomial), sigmoid, softplus."""

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
from app.language.calls import Call, broadcasting, conditional, elementwise, with_order
from app.language.catalog.entry import (
    SYMPY_LATEX,
    Absent,
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
from app.language.terms import Term, broadcast, logic_node, relation

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


def _polygamma_jet(algebra: JetAlgebra, k: Any, x: Any) -> Any:
    """polygamma(k, x): JAX's derivative in x is polygamma(k + 1, x); k is a constant."""
    n = int(np.asarray(k.v).flat[0])
    return algebra.chain(x, special.polygamma(n, x.v), special.polygamma(n + 1, x.v),
                         lambda: special.polygamma(n + 2, x.v))


_POLYGAMMA = Node(sympy.polygamma, "polygamma", _polygamma, Composite(_polygamma_jet),
                  "polygamma", SYMPY_LATEX)


def _erfinv(a: Any) -> Any:
    """JAX: erfinv' = sqrt(pi)/2 * exp(ans**2)."""
    y = special.erfinv(a)
    e = np.exp(y * y)
    slope = (SQRT_PI / 2) * e
    return y, slope, lambda: (SQRT_PI / 2) * (e * (2.0 * y * slope))


def _jax_beta(a: Any, b: Any) -> Any:
    """beta through gamma: the signs of the three gammas times exp(lgamma(a) + lgamma(b) -
    lgamma(a + b)), the larger argument's lgamma less lgamma(a + b) first, since those two
    cancel (beta(1e-300, 1e300) is 1e300, not exp(0)). (JAX's own beta is off by 2.5e-8 at
    (12, 30).)"""
    sign = jsp.gammasgn(a) * jsp.gammasgn(b) * jsp.gammasgn(a + b)
    la, lb, ls = jsp.gammaln(a), jsp.gammaln(b), jsp.gammaln(a + b)
    return sign * jnp.exp(jnp.where(a >= b, lb + (la - ls), la + (lb - ls)))


def _beta(a: Any, b: Any) -> Any:
    """beta and its partial derivatives: beta * (digamma(a) - digamma(a + b)), ..."""
    s = a + b
    sign = special.gammasgn(a) * special.gammasgn(b) * special.gammasgn(s)
    la, lb, ls = special.gammaln(a), special.gammaln(b), special.gammaln(s)
    f = sign * np.exp(np.where(a >= b, lb + (la - ls), la + (lb - ls)))
    psi_s = special.digamma(s)
    la, lb = special.digamma(a) - psi_s, special.digamma(b) - psi_s

    def second() -> tuple[Any, Any, Any]:
        tri_s = special.polygamma(1, s)
        return (f * (la * la + (special.polygamma(1, a) - tri_s)), f * (la * lb - tri_s),
                f * (lb * lb + (special.polygamma(1, b) - tri_s)))
    return f, f * la, f * lb, second


def _factorial(call: Call) -> Term:
    """factorial(x) as JAX's: gamma(x + 1), and 0 for x < 0."""
    (x,) = call.values()
    gamma = call.settle(sympy.gamma, call.settle(sympy.Add, x.expr, sympy.Integer(1)))
    negative = relation(sympy.Lt, x.expr, sympy.Integer(0))
    return call.term(_choose((sympy.Integer(0), negative), gamma), x.shape)


def _binomial(call: Call) -> Term:
    """binomial(n, k) as JAX's comb: exp(lgamma(n + 1) - lgamma(k + 1) - lgamma(n - k + 1))
    where 0 <= k <= n, and 0 elsewhere."""
    n, k = call.values()
    shape = broadcast([n, k], call.node, "take binomial of")
    one = sympy.Integer(1)

    def lgamma_of(*terms: Any) -> Any:
        return call.settle(sympy.loggamma, call.settle(sympy.Add, *terms, one))

    minus_k = call.settle(sympy.Mul, sympy.Integer(-1), k.expr)
    exponent = call.settle(
        sympy.Add, lgamma_of(n.expr),
        call.settle(sympy.Mul, sympy.Integer(-1), lgamma_of(k.expr)),
        call.settle(sympy.Mul, sympy.Integer(-1), lgamma_of(n.expr, minus_k)))
    inside = logic_node(sympy.And, [relation(sympy.Le, k.expr, n.expr),
                                    relation(sympy.Ge, n.expr, sympy.Integer(0)),
                                    relation(sympy.Ge, k.expr, sympy.Integer(0))])
    value = call.settle(sympy.exp, exponent)
    return call.term(_choose((value, inside), sympy.Integer(0)), shape)


def _choose(piece: tuple[Any, Any], otherwise: Any) -> Any:
    """The piece where its condition holds, else ``otherwise``; decided now if it is
    constant."""
    value, condition = piece
    if condition is sympy.true:
        return value
    if condition is sympy.false:
        return otherwise
    return conditional(piece, (otherwise, sympy.true))


def _digamma(x: Any, evaluate: bool = True) -> Any:
    return sympy.polygamma(sympy.Integer(0), x, evaluate=evaluate)

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
    Function("digamma", (), (1, 1), elementwise(_digamma),
             Absent("built as polygamma(0, x): computed, differentiated and printed as it"),
             "The digamma function, the derivative of lgamma: polygamma(0, x)",
             Example("digamma(x)", {"x": 2.5}),
             conventions="poles at 0, -1, -2, ...", numeric_at_constants=True),
    unary("erfinv", sympy.erfinv, jsp.erfinv, Chain(_erfinv),
          "The inverse of erf: erfinv(erf(x)) = x", Example("erfinv(x)", AT),
          conventions="x in (-1, 1); -inf and inf at -1 and 1, NaN beyond", numeric=True),
    Function("beta", (), (2, 2), broadcasting(sympy.beta, "take beta of"),
             (Node(sympy.beta, "beta", _jax_beta, Partials(_beta), "beta", SYMPY_LATEX),),
             "The beta function gamma(a) gamma(b) / gamma(a + b)",
             Example("beta(a, b)", {"a": 2.5, "b": 1.5}),
             conventions="computed as exp(lgamma(a) + lgamma(b) - lgamma(a + b)) with the "
             "gammas' signs, so it does not overflow where the gammas do; poles where a or b "
             "is 0, -1, -2, ...", numeric_at_constants=True, signature="beta(a, b)"),
    Function("factorial", (), (1, 1), _factorial,
             Absent("built as where(x < 0, 0, gamma(x + 1)): computed, differentiated and "
                    "printed as it"),
             "x!, through gamma: gamma(x + 1), for every real x >= 0",
             Example("factorial(x)", {"x": 4.5}),
             conventions="0 for x < 0, as JAX's and SciPy's factorial (not gamma(x + 1), "
             "which has poles there); the derivative there is 0",
             numeric_at_constants=True),
    Function("binomial", (), (2, 2), _binomial,
             Absent("built as where(0 <= k <= n, exp(lgamma(n + 1) - lgamma(k + 1) - "
                    "lgamma(n - k + 1)), 0): computed, differentiated and printed as it"),
             "The binomial coefficient n choose k, through gamma: "
             "gamma(n + 1) / (gamma(k + 1) gamma(n - k + 1)) for real n and k",
             Example("binomial(n, k)", {"n": 7.5, "k": 2.0}),
             conventions="0 unless 0 <= k <= n, as JAX's comb; computed through lgamma, as "
             "JAX's comb, so binomial(1000, 500) does not overflow, but its relative error "
             "grows with lgamma(n + 1): 2e-15 at n = 20, 7e-13 at n = 1000, 1e-10 at "
             "n = 1e6", numeric_at_constants=True,
             signature="binomial(n, k)"),
    unary("sigmoid", F.sigmoid, jax.nn.sigmoid,
          Chain(_sigmoid),
          "The logistic function 1 / (1 + exp(-x))", Example("sigmoid(x)", AT),
          numeric=True, latex=operator_name("sigmoid")),
    unary("softplus", F.softplus, jax.nn.softplus,
          Chain(_softplus),
          "log(1 + exp(x)), a smooth relu", Example("softplus(x)", AT),
          numeric=True, latex=operator_name("softplus")),
)
