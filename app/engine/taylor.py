"""Derivatives beyond the Hessian: k-th derivative tensors and Taylor coefficients along
directions, from JAX's own transforms.

Two ways to go past second order, chosen by what each costs (measured in ``bench/``,
``python -m bench orders``):

    tensors T_3 .. T_k   nested ``jacfwd`` on top of ``jax.hessian`` (exact; compile time
                         doubles with each order); for one coordinate, Taylor mode instead
    along a direction    Taylor mode, ``jax.experimental.jet``: the k derivatives of
                         t -> f(z + t d) in one pass, whose cost grows as k^2, not 2^k
                         (a 10th derivative compiles in 0.7 s; nested ``jvp`` takes 25 s)

Mixed partials and Taylor coefficients are combinations of such directional derivatives
(``app.service.orders``), so they never build a tensor.

``jet`` needs a rule for every primitive, and ignores ``custom_jvp`` rules (it even leaks
a tracer on them in this JAX). Here the rules nabla's functions need are added (arcsin and
its kin, tan, cbrt, lgamma and polygamma, prod, and powers x^c at x = 0, where jet's own
rules go through log x or divide by x and make NaN: there x^c's derivatives
c (c - 1) .. (c - j + 1) x^(c - j), 0 or infinite, are composed with the input series, as
nested ``jvp`` gives them), and a ``custom_jvp`` function of one
argument is expanded from its own derivative rule (so relu'(0) = 0 and the flush of
subnormals keeps derivative 1, as JAX says). A program ``jet`` still cannot trace falls back
to nested ``jvp`` up to ``NESTED_MAX_ORDER``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jax._src import core as _core
from jax.experimental import jet as _jet

from app.engine.kinds import tensor_kind
from app.errors import TooComplex

Array = Any
jet_module: Any = _jet  # untyped modules, used as they are
core: Any = _core
#: Nested ``jvp`` compiles in time about 2^k: beyond this order it is refused.
NESTED_MAX_ORDER = 6


# -- the transforms ---------------------------------------------------------------------------

def tensor_functions(f: Callable[[Array], Array], orders: Sequence[int],
                     n: int) -> Callable[[Array], dict[str, Array]]:
    """z -> {"tensor3": T3, ...}: the requested tensors, T_j shaped out + [n]*j. Nested
    ``jacfwd`` shares one chain (each level is the Jacobian of the one below); for one
    coordinate, Taylor mode along it."""
    top = max(orders)
    if n == 1:
        along = series_function(f, top)

        def by_series(z: Array) -> dict[str, Array]:
            derivatives = along(z, jnp.ones((1, 1)))[0]  # (top, *out)
            return {tensor_kind(j): derivatives[j - 1].reshape(
                derivatives.shape[1:] + (1,) * j) for j in orders}
        return by_series

    def chain(z: Array) -> tuple[Array, tuple[Array, ...]]:
        hessian = jax.hessian(f)(z)
        return hessian, (hessian,)

    level: Callable[[Array], tuple[Array, tuple[Array, ...]]] = chain
    for _ in range(3, top + 1):
        level = _one_more(level)

    def tensors(z: Array) -> dict[str, Array]:
        _, found = level(z)  # found[i] is T_(i + 2)
        return {tensor_kind(j): found[j - 2] for j in orders}
    return tensors


def _one_more(level: Callable[[Array], tuple[Array, tuple[Array, ...]]]
              ) -> Callable[[Array], tuple[Array, tuple[Array, ...]]]:
    def up(z: Array) -> tuple[Array, tuple[Array, ...]]:
        jacobian, lower = jax.jacfwd(level, has_aux=True)(z)
        return jacobian, (*lower, jacobian)
    return up


def series_function(f: Callable[[Array], Array],
                    order: int) -> Callable[[Array, Array], Array]:
    """(z, directions (P, n)) -> (P, order, *out): the derivatives d^j/dt^j f(z + t d) at
    t = 0, j = 1 .. order, for each direction d; by Taylor mode, else nested ``jvp``."""

    def along(z: Array, direction: Array) -> Array:
        def line(t: Array) -> Array:
            return f(z + t * direction)
        terms = (jnp.ones(()),) + (jnp.zeros(()),) * (order - 1)
        _, series = jet_module.jet(line, (jnp.zeros(()),), (terms,))
        return jnp.stack([jnp.asarray(s) for s in series])

    def nested(z: Array, direction: Array) -> Array:
        outputs = []
        g: Callable[[Array], Array] = f
        for _ in range(order):
            g = _derivative_along(g, direction)
            outputs.append(g(z))
        return jnp.stack(outputs)

    def series(z: Array, directions: Array) -> Array:
        try:
            return jax.vmap(along, in_axes=(None, 0))(z, directions)
        except Exception as error:  # any primitive jet has no rule for
            if order > NESTED_MAX_ORDER:
                raise TooComplex(
                    f"Derivatives of order {order} of this expression need nested forward "
                    f"mode ({error.__class__.__name__} in Taylor mode), whose compile time "
                    f"doubles with each order; at most order {NESTED_MAX_ORDER} is "
                    "computed that way: ask for a lower order",
                    limit="order", limit_value=NESTED_MAX_ORDER) from None
            return jax.vmap(nested, in_axes=(None, 0))(z, directions)
    return series


def _derivative_along(g: Callable[[Array], Array],
                      direction: Array) -> Callable[[Array], Array]:
    def derivative(z: Array) -> Array:
        return jax.jvp(g, (z,), (direction,))[1]
    return derivative


# -- jet: the rules nabla's functions need ----------------------------------------------------

def _recurrence(u: list[Array], c: list[Array], v0: Array) -> list[Array]:
    """The Taylor coefficients of v from v' = c(t) u'(t): v_k = sum_j j c_(k-j) u_j / k."""
    v = [v0]
    for k in range(1, len(u)):
        v.append(sum(j * c[k - j] * u[j] for j in range(1, k + 1)) / k)
    return v


def _deriv_rule(value: Callable[[Array], Array],
                slope: Callable[[Array], Array]) -> Callable[..., Any]:
    """A rule from f and f' (f' written with primitives that have rules)."""
    def rule(primals_in: Sequence[Array], series_in: Sequence[list[Array]],
             **_: Any) -> tuple[Array, list[Array]]:
        (x,), (series,) = primals_in, series_in
        c0, cs = jet_module.jet(slope, (x,), (series,), factorial_scaled=False)
        v = _recurrence([x, *series], [c0, *cs], value(x))
        return v[0], v[1:]
    return rule


def _compose(u: list[Array], a: list[Array], v0: Array) -> list[Array]:
    """v = f(u(t)) from a_m = f^(m)(u_0) / m!, m = 1 .. K (Faa di Bruno):
    v_k = sum_m a_m [t^k] (u(t) - u_0)^m. A term whose [t^k] (u - u_0)^m is exactly 0 is 0
    even where a_m is infinite (0^(c - m) of a power at 0): the input does not move along
    it, so inf * 0 does not make a NaN that nested ``jvp`` would not. A NaN a_m (a
    fractional power of a negative number) stays NaN, as in nested ``jvp``."""
    order = len(u) - 1
    v = [v0] + [jnp.zeros_like(v0)] * order
    power: list[Array | None] = [None, *u[1:]]  # [t^k] (u - u_0)^m, m = 1; None: no term
    for m in range(1, order + 1):
        if m > 1:  # one more factor of (u - u_0): its lowest term is t^m
            power = [None] * m + [
                sum(u[j] * power[k - j] for j in range(1, k - m + 2)
                    if power[k - j] is not None)
                for k in range(m, order + 1)]
        for k in range(m, order + 1):
            p = power[k]
            keep = (p == 0) & ~jnp.isnan(a[m - 1])
            v[k] = v[k] + jnp.where(keep, jnp.zeros_like(v0), a[m - 1] * p)
    return v


def _binomials(c: Array, order: int) -> list[Array]:
    """binom(c, m) = c (c - 1) .. (c - m + 1) / m!, m = 1 .. order (exactly 0 past a
    natural number c)."""
    out, b = [], jnp.ones_like(c)
    for m in range(1, order + 1):
        b = b * (c - (m - 1)) / m
        out.append(b)
    return out


def _power_coefficients(x: Array, c: Array, order: int,
                        power: Callable[[Array, int], Array]) -> list[Array]:
    """a_m = binom(c, m) x^(c - m), with ``power(x, m)`` = x^(c - m); 0 where the binomial
    is 0 (past a natural c: nested ``jvp`` gives 0 there too, even at x = 0)."""
    return [jnp.where(b == 0, jnp.zeros_like(x), b * power(x, m))
            for m, b in enumerate(_binomials(c, order), start=1)]


Rule = Callable[..., tuple[Array, list[Array]]]


def _recurrence_power(value: Callable[[Array], Array], r: float) -> Rule:
    """v = u^r (cbrt: r = 1/3) by v_k = sum_j ((r + 1) j - k) u_j v_(k-j) / (k u_0) (it
    divides by u_0)."""
    def rule(primals_in: Sequence[Array], series_in: Sequence[list[Array]],
             **_: Any) -> tuple[Array, list[Array]]:
        (x,), (series,) = primals_in, series_in
        u, v = [x, *series], [value(x)]
        for k in range(1, len(u)):
            v.append(sum(((r + 1) * j - k) * u[j] * v[k - j] for j in range(1, k + 1))
                     / (k * x))
        return v[0], v[1:]
    return rule


def _unreliable(x: Array, recurred: tuple[Array, list[Array]]) -> Array:
    """Where a recurrence for x^c (through log x, or dividing by x) cannot be trusted:
    x = 0, x^c flushed to 0, or a non-finite coefficient (inf - inf or 0 * inf past an
    overflow of x^(c - k), as at x = 1e-300). Elsewhere it stays as it was."""
    v0, series = recurred
    bad = (x == 0) | (v0 == 0) | ~jnp.isfinite(v0)
    for term in series:
        bad = bad | ~jnp.isfinite(term)
    return bad


def _constant_power_rule(value: Callable[[Array], Array], c: float,
                         power: Callable[[Array, int], Array], recurrence: Rule) -> Rule:
    """v = u^c for a fixed c (cbrt, a negative integer power): the rule it had
    (``recurrence``) where that is reliable, else composed from the derivatives of x^c,
    which at x = 0 are 0 or infinite as nested ``jvp`` says (the recurrences made NaN)."""
    def rule(primals_in: Sequence[Array], series_in: Sequence[list[Array]],
             **_: Any) -> tuple[Array, list[Array]]:
        (x,), (series,) = primals_in, series_in
        recurred = recurrence(primals_in, series_in)
        a = _power_coefficients(x, jnp.full_like(x, c), len(series), power)
        composed = _compose([x, *series], a, value(x))
        bad = _unreliable(x, recurred)
        return composed[0], [jnp.where(bad, f, g)
                             for f, g in zip(composed[1:], recurred[1], strict=True)]
    return rule


def _pow_rule(primals_in: Sequence[Array], series_in: Sequence[list[Array]],
              **_: Any) -> tuple[Array, list[Array]]:
    """x^y: jet's own rule (through exp(y log x)), except where y does not move (its
    series is 0 at run time) and that rule is unreliable (x = 0, overflows): there composed
    from the derivatives of x^c."""
    (x, y), (xs, ys) = primals_in, series_in
    x, y = jnp.broadcast_arrays(x, y)
    recurred = jet_module._pow_taylor(primals_in, series_in)
    a = _power_coefficients(x, y, len(xs), lambda base, m: lax.pow(base, y - m))
    composed = _compose([x, *xs], a, lax.pow(x, y))
    use = _unreliable(x, recurred)
    for term in ys:
        use = use & (term == 0)
    return composed[0], [jnp.where(use, f, g)
                         for f, g in zip(composed[1:], recurred[1], strict=True)]


def _integer_pow_rule(primals_in: Sequence[Array], series_in: Sequence[list[Array]], *,
                      y: int, **_: Any) -> tuple[Array, list[Array]]:
    """x^n: jet's products for n >= 0 (exact at 0); for n < 0, jet's 1/x recurrence where
    it is reliable, else composed (it divides by x_0)."""
    def jets(p: Sequence[Array], s: Sequence[list[Array]], **_: Any) -> tuple[Array, list[Array]]:
        out: tuple[Array, list[Array]] = jet_module._integer_pow_taylor(p, s, y=y)
        return out
    if y >= 0:
        return jets(primals_in, series_in)
    rule = _constant_power_rule(lambda x: lax.integer_pow(x, y), y,
                                lambda x, m: lax.integer_pow(x, y - m), jets)
    return rule(primals_in, series_in)


def _tan_rule(primals_in: Sequence[Array], series_in: Sequence[list[Array]],
              **_: Any) -> tuple[Array, list[Array]]:
    """v = tan(u): v' = (1 + v^2) u'."""
    (x,), (series,) = primals_in, series_in
    u, v = [x, *series], [lax.tan(x)]
    e: list[Array] = [1 + v[0] * v[0]]
    for k in range(1, len(u)):
        v.append(sum(j * e[k - j] * u[j] for j in range(1, k + 1)) / k)
        e.append(sum(v[i] * v[k - i] for i in range(k + 1)))
    return v[0], v[1:]


def _polygamma_series(m: Array, u: list[Array]) -> list[Array]:
    """The coefficients of polygamma(m, u(t)): its derivative is polygamma(m + 1, u)."""
    v0 = lax.polygamma(m, u[0])
    if len(u) == 1:
        return [v0]
    return _recurrence(u, _polygamma_series(m + 1, u[:-1]), v0)


def _polygamma_rule(primals_in: Sequence[Array], series_in: Sequence[list[Array]],
                    **_: Any) -> tuple[Array, list[Array]]:
    (m, x), (_constant, series) = primals_in, series_in  # m: a constant integer
    v = _polygamma_series(m, [x, *series])
    return v[0], v[1:]


def _digamma_rule(primals_in: Sequence[Array], series_in: Sequence[list[Array]],
                  **_: Any) -> tuple[Array, list[Array]]:
    (x,), (series,) = primals_in, series_in
    v = _polygamma_series(jnp.zeros_like(x), [x, *series])
    return v[0], v[1:]


def _lgamma_rule(primals_in: Sequence[Array], series_in: Sequence[list[Array]],
                 **_: Any) -> tuple[Array, list[Array]]:
    (x,), (series,) = primals_in, series_in
    u = [x, *series]
    c = _polygamma_series(jnp.zeros_like(x), u[:-1])
    v = _recurrence(u, c, lax.lgamma(x))
    return v[0], v[1:]


def _reduce_prod_rule(primals_in: Sequence[Array], series_in: Sequence[list[Array]], *,
                      axes: Sequence[int], **_: Any) -> tuple[Array, list[Array]]:
    """prod over ``axes`` as a cumulative product (which jet expands), its last entry."""
    def product(x: Array) -> Array:
        for axis in sorted(axes, reverse=True):
            x = lax.index_in_dim(lax.associative_scan(lax.mul, x, axis=axis), -1, axis,
                                 keepdims=False)
        return x
    primal, series = jet_module.jet(product, tuple(primals_in), tuple(series_in),
                                    factorial_scaled=False)
    return primal, list(series)


_EXPANDING = threading.local()


def _custom_jvp_call(self: Any, primitive: Any, fun: Any, jvp: Any, tracers: Any, /, *,
                     symbolic_zeros: bool) -> Any:
    """A ``custom_jvp`` function of one (elementwise) argument, expanded from its own
    derivative rule: the series of f' at u(t), then v' = f'(u) u'. Others are traced
    through their bodies, as jet itself does."""
    del primitive, symbolic_zeros
    if len(tracers) != 1 or getattr(_EXPANDING, "active", False):
        # Inside an expansion, the rule's own call of f is traced through f's body.
        with core.set_current_trace(self):
            return fun.call_wrapped(*tracers)
    x, series = self.to_primal_terms_pair(tracers[0])
    with core.set_current_trace(self.parent_trace):
        if series is jet_module.zero_series:
            return [jet_module.JetTracer(self, out, jet_module.zero_series)
                    for out in fun.call_wrapped(x)]
        series = [jnp.zeros_like(x) if t is jet_module.zero_term else t for t in series]

        def value_and_slope(p: Array) -> tuple[Array, Array]:
            value, slope = jvp.call_wrapped(p, jnp.ones_like(p))
            return value, slope
        _EXPANDING.active = True
        try:
            (value, c0), (_, cs) = jet_module.jet(value_and_slope, (x,), (series,),
                                                  factorial_scaled=False)
        finally:
            _EXPANDING.active = False
        v = _recurrence([x, *series], [c0, *cs], value)
    return [jet_module.JetTracer(self, v[0], v[1:])]


def _install() -> None:
    """Add the rules to JAX's jet (once per process)."""
    rules = jet_module.jet_rules
    rules[lax.asin_p] = _deriv_rule(lax.asin, lambda x: lax.rsqrt(1 - x * x))
    rules[lax.acos_p] = _deriv_rule(lax.acos, lambda x: -lax.rsqrt(1 - x * x))
    rules[lax.atan_p] = _deriv_rule(lax.atan, lambda x: 1 / (1 + x * x))
    rules[lax.tan_p] = _tan_rule
    rules[lax.cbrt_p] = _constant_power_rule(  # x^(1/3 - m) = cbrt(x)^(1 - 3m), real for x < 0
        lax.cbrt, 1 / 3, lambda x, m: lax.integer_pow(lax.cbrt(x), 1 - 3 * m),
        _recurrence_power(lax.cbrt, 1 / 3))
    rules[lax.pow_p] = _pow_rule  # jet's sqrt and rsqrt are x ** 0.5 and x ** -0.5: this one
    rules[lax.integer_pow_p] = _integer_pow_rule
    rules[lax.lgamma_p] = _lgamma_rule
    rules[lax.digamma_p] = _digamma_rule
    rules[lax.polygamma_p] = _polygamma_rule
    rules[lax.reduce_prod_p] = _reduce_prod_rule
    jet_module.JetTrace.process_custom_jvp_call = _custom_jvp_call


_install()


def factorials(order: int) -> list[float]:
    """0!, 1!, ..., order! as floats (exact up to 22!)."""
    return [float(math.factorial(j)) for j in range(order + 1)]
