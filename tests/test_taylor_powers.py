"""Powers in Taylor mode: x^c's derivatives where x^(c - j) is 0 or infinite.

jet's own rule for ``pow`` goes through exp(c log x), so at x = 0 every derivative of x^2.5
came out NaN (log 0 = -inf, times 0), where the true D1 = D2 = 0 and D3 = +inf (jet's
``sqrt`` and ``rsqrt`` are x ** 0.5 and x ** -0.5, so the same); its rule for a negative
``integer_pow`` and nabla's for ``cbrt`` divide by x, with the same NaNs at 0 and at 1e-300
(inf - inf once x^(c - j) overflows). The oracles: the
closed form D_j = c (c - 1) .. (c - j + 1) x^(c - j) in mpmath at 30 digits (real roots:
NaN for a fractional power of x < 0, as JAX says), and nested ``jax.jvp`` of the same JAX
function, which composes JAX's own first-derivative rules.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
from jax import lax
from jax.experimental import jet

from app.engine import taylor
from app.service.pipeline import Service
from schemas.differentiate import DifferentiateRequest

ORDER = 6
POINTS = [0.0, 1e-300, 2.0, -1.0]

#: nabla text, the exponent c (a Fraction-like pair for the closed form), the JAX function
#: nabla compiles it to (app.engine.evaluator: sqrt for 1/2, integer_pow for integers).
POWERS: list[tuple[str, tuple[int, int], Callable[[Any], Any]]] = [
    ("x^2.5", (5, 2), lambda x: jnp.power(x, jnp.asarray(2.5))),
    ("x^0.5", (1, 2), jnp.sqrt),
    ("sqrt(x)", (1, 2), jnp.sqrt),
    ("x^(1/3)", (1, 3), lambda x: jnp.power(x, jnp.asarray(1 / 3))),
    ("x^-1.5", (-3, 2), lambda x: jnp.power(x, jnp.asarray(-1.5))),
    ("x^(-1/2)", (-1, 2), lambda x: jnp.power(x, jnp.asarray(-0.5))),
    ("x^3", (3, 1), lambda x: x**3),
    ("x^-2", (-2, 1), lambda x: x**-2),
    ("cbrt(x)", (1, 3), jnp.cbrt),
]
IDS = [text for text, _, _ in POWERS]


@pytest.fixture(scope="module")
def run(xla_differentiator: Service, event_loop_thread: asyncio.AbstractEventLoop) -> Any:
    """A request answered by the XLA tier (Taylor mode lives there), the raw numbers."""

    def _run(**body: Any) -> dict[str, Any]:
        request = DifferentiateRequest.model_validate(body)
        future = asyncio.run_coroutine_threadsafe(xla_differentiator.run(request),
                                                  event_loop_thread)
        result: dict[str, Any] = future.result()
        return result

    return _run


def closed_form(text: str, c: tuple[int, int], x0: float, j: int) -> float:
    """D_j x^c at x0 from c (c - 1) .. (c - j + 1) x0^(c - j), at 30 digits; the real
    cube root for cbrt; 0^e = 0 for e > 0, 1 for e = 0 and signed inf for e < 0."""
    with mpmath.workdps(30):
        exponent = mpmath.mpf(c[0]) / c[1]
        falling = mpmath.mpf(1)
        for i in range(j):
            falling *= exponent - i
        if falling == 0:
            return 0.0
        e = exponent - j
        if x0 == 0:
            if e > 0:
                return 0.0
            return float(falling) if e == 0 else math.copysign(math.inf, float(falling))
        x = mpmath.mpf(x0)
        if x < 0:
            if c[1] == 1:  # an integer power: real
                return float(falling * x ** int(e))
            if text != "cbrt(x)":  # a fractional power of x < 0: NaN in JAX
                return math.nan
            root = -mpmath.cbrt(-x)  # the real cube root, to the power 1 - 3j
            return float(falling * root ** (1 - 3 * j))
        value = falling * x ** e
        return float(value)  # inf past float64, 0 below it


def nested(f: Callable[[Any], Any], x0: float) -> list[float]:
    """D_1 .. D_ORDER of f at x0 by nested jax.jvp."""
    out = []
    g = f
    for _ in range(ORDER):
        g = (lambda h: lambda x: jax.jvp(h, (x,), (jnp.ones_like(x),))[1])(g)
        out.append(float(g(jnp.asarray(x0))))
    return out


def same(got: float, want: float, rtol: float = 1e-13) -> bool:
    """Equal within rtol if finite; the same inf, or both NaN."""
    if math.isnan(want) or math.isinf(want):
        return (math.isnan(got) and math.isnan(want)) or got == want
    return abs(got - want) <= rtol * abs(want) or got == want


@pytest.mark.parametrize("x0", POINTS, ids=["0", "1e-300", "2", "-1"])
@pytest.mark.parametrize(("text", "c", "f"), POWERS, ids=IDS)
def test_directional_derivatives_of_powers(run: Any, text: str, c: tuple[int, int],
                                           f: Callable[[Any], Any], x0: float) -> None:
    """direction + order, the one-coordinate tensors and taylor: D_1 .. D_6 of x^c at x0
    against the closed form and against nested jax.jvp."""
    want = [closed_form(text, c, x0, j) for j in range(1, ORDER + 1)]
    oracle = nested(f, x0)
    for j in range(ORDER):  # the two oracles agree (so neither is misread)
        assert same(oracle[j], want[j], 1e-13), (text, x0, j + 1, oracle[j], want[j])

    body = run(expression=text, at={"x": x0}, order=ORDER, direction={"x": 1.0},
               derivatives=["value"])
    got = [float(d) for d in np.asarray(body["directional"])]
    for j in range(ORDER):
        assert same(got[j], want[j]), ("directional", text, x0, j + 1, got[j], want[j])
    listed = {tuple(e["index"]): e["kind"] for e in body.get("nonfinite", [])
              if e["field"] == "directional"}
    assert listed == {(j,): "nan" if math.isnan(w) else ("inf" if w > 0 else "-inf")
                      for j, w in enumerate(want) if not math.isfinite(w)}

    body = run(expression=text, at={"x": x0}, order=ORDER, derivatives=["value"])
    for j in range(3, ORDER + 1):  # one coordinate: the tensors by Taylor mode
        tensor = float(np.asarray(body["tensors"][str(j)]).reshape(()))
        assert same(tensor, want[j - 1]), ("tensors", text, x0, j, tensor, want[j - 1])

    body = run(expression=text, at={"x": x0}, taylor={"order": ORDER}, derivatives=["value"])
    coefficients = {e["powers"].get("x", 0): e["value"] for e in body["taylor"]["coefficients"]}
    for j in range(1, ORDER + 1):  # a non-finite coefficient is written None
        wanted = want[j - 1] / math.factorial(j)
        if not math.isfinite(wanted):
            assert coefficients[j] is None, ("taylor", text, x0, j, coefficients[j])
        else:
            assert coefficients[j] is not None, ("taylor", text, x0, j, wanted)
            assert same(coefficients[j], wanted), ("taylor", text, x0, j, coefficients[j])


def test_partials_of_a_power_at_zero(run: Any) -> None:
    """∂x^j of x^2.5 + y^3 at the origin and ∂y^3 (x does not move: no 0 * inf)."""
    body = run(expression="x^2.5 + y^3", at={"x": 0.0, "y": 0.0},
               partials=[{"x": 1}, {"x": 2}, {"x": 3}, {"x": 4}, {"y": 3}],
               derivatives=["value"])
    got = [float(p) for p in np.asarray(body["partials"])]
    assert got[:4] == [0.0, 0.0, math.inf, -math.inf]
    assert abs(got[4] - 6.0) <= 1e-12


def test_a_power_along_a_direction_it_does_not_move_in(run: Any) -> None:
    """x^2.5 * 1 + y^3 along (0, 1) at x = 0: x's series is 0, so x^2.5 contributes 0 (not
    0 * inf = NaN); the derivatives are those of y^3 alone."""
    body = run(expression="x^2.5 + y^3", at={"x": 0.0, "y": 1.0}, order=4,
               direction={"x": 0.0, "y": 1.0}, derivatives=["value"])
    np.testing.assert_allclose(np.asarray(body["directional"]), [3.0, 6.0, 6.0, 0.0],
                               rtol=1e-13, atol=1e-13)


def test_a_variable_exponent_keeps_jet_s_rule() -> None:
    """x^y with y moving: jet's own rule (through exp(y log x)), against nested jvp."""
    def f(t: Any) -> Any:
        return jnp.power(1.5 + t, 0.5 - 2 * t)

    terms = (jnp.ones(()),) + (jnp.zeros(()),) * (ORDER - 1)
    _, series = jet.jet(f, (jnp.zeros(()),), (terms,))
    assert taylor.jet_module is jet
    np.testing.assert_allclose([float(s) for s in series], nested(f, 0.0), rtol=1e-11)


def test_away_from_zero_the_rules_are_as_before() -> None:
    """Where x^c's old recurrences are reliable (x != 0, no overflow), their numbers are
    kept bit for bit: jet's exp(c log x) for pow (and so for sqrt and rsqrt, which jet
    writes as x ** 0.5 and x ** -0.5), 1/x's for a negative integer power, the power
    recurrence for cbrt."""
    rng = np.random.default_rng(7)
    rules = jet.jet_rules
    for _ in range(20):
        x = jnp.asarray(float(rng.uniform(0.05, 5.0)))
        series = [jnp.asarray(float(s)) for s in rng.normal(size=8) * 3]
        zeros = [jnp.zeros(())] * len(series)
        for c in (2.5, 1 / 3, -1.5, 0.5, -0.5):
            old = jet._pow_taylor((x, jnp.asarray(c)), (series, zeros))
            new = rules[lax.pow_p]((x, jnp.asarray(c)), (series, zeros))
            assert np.array_equal(np.asarray(new[1]), np.asarray(old[1])), c
        for n in (-1, -2, -5):
            old = jet._integer_pow_taylor((-x,), (series,), y=n)
            new = rules[lax.integer_pow_p]((-x,), (series,), y=n)
            assert np.array_equal(np.asarray(new[1]), np.asarray(old[1])), n
        for base in (x, -x):  # cbrt: the recurrence it had
            old = taylor._recurrence_power(lax.cbrt, 1 / 3)((base,), (series,))
            new = rules[lax.cbrt_p]((base,), (series,))
            assert np.array_equal(np.asarray(new[1]), np.asarray(old[1]))


def test_a_composed_inner_series_matches_nested_jvp() -> None:
    """(x + x^2)^c at 1.3 and sqrt(1 + sin x) at 0.4: a full inner series."""
    for f in (lambda x: jnp.power(x + x * x, 2.5), lambda x: jnp.sqrt(1 + jnp.sin(x)),
              lambda x: jnp.cbrt(x - x**3), lambda x: (x + x * x) ** -3):
        for x0 in (1.3, 0.4, -0.7):
            terms = (jnp.ones(()),) + (jnp.zeros(()),) * (ORDER - 1)
            _, series = jet.jet(f, (jnp.asarray(x0),), (terms,))
            want = nested(f, x0)
            got = [float(s) for s in series]
            for g, w in zip(got, want, strict=True):
                assert same(g, w, 1e-11), (x0, got, want)


def test_non_finite_taylor_numbers_are_listed(run: Any) -> None:
    """x^2.5 about 0: the coefficients of x^3.. are infinite; about 1 the remainder at 0
    is finite, about 0 at -1 the value is NaN (a fractional power of a negative number)."""
    body = run(expression="x^2.5", at={"x": 0.0}, taylor={"order": 4, "remainder_at": {"x": -1}},
               derivatives=["value"])
    coefficients = body["taylor"]["coefficients"]
    listed = {(e["field"], tuple(e["index"])): e["kind"] for e in body["nonfinite"]}
    for i, c in enumerate(coefficients):
        j = c["powers"].get("x", 0)
        if j >= 3:
            assert c["value"] is None
            assert listed[("taylor.coefficients", (i,))] == ("inf" if j % 2 else "-inf")
        else:
            assert c["value"] == 0.0 and ("taylor.coefficients", (i,)) not in listed
    remainder = body["taylor"]["remainder"]  # written null in JSON
    assert math.isnan(remainder["value"]) and math.isnan(remainder["remainder"])
    assert listed[("taylor.remainder.value", ())] == "nan"
    assert listed[("taylor.remainder.remainder", ())] == "nan"
