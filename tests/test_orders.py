"""Derivatives beyond the Hessian against independent oracles: SymPy's ``diff`` and
``series`` at 30 digits, closed forms written here; and the limits, refused before work.

Tensors, directional derivatives, partials and Taylor coefficients are computed by XLA only
(the first tier stops at the Hessian), so these run on the XLA tier.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from itertools import product
from typing import Any

import numpy as np
import pytest
import sympy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.config import Settings
from app.engine.kinds import series_kind, series_shape, tensor_kind, tensor_order
from app.errors import LimitError, PointError
from app.service.pipeline import Service
from tests.conftest import answering

X, Y = sympy.symbols("x y", real=True)
DIGITS = 30


@pytest.fixture(scope="module")
def run(xla_differentiator: Service, event_loop_thread: asyncio.AbstractEventLoop) -> Any:
    """A request as a dict, answered by the XLA tier in process; the answer is checked
    against the documented response model."""
    return answering(xla_differentiator, event_loop_thread)


def exact(expr: sympy.Expr, at: dict[sympy.Symbol, float]) -> float:
    """``expr`` at ``at``, to 30 digits, as a float."""
    return float(sympy.N(expr.subs({s: sympy.Float(v, DIGITS) for s, v in at.items()}),
                         DIGITS))


def close(got: float, want: float, rtol: float) -> bool:
    return abs(got - want) <= rtol * max(1.0, abs(want))


# -- random smooth expressions of x and y, as nabla text and as a SymPy tree -----------------

UNARY: dict[str, Callable[[Any], Any]] = {
    "sin": sympy.sin, "cos": sympy.cos, "exp": sympy.exp, "tanh": sympy.tanh,
    "atan": sympy.atan, "erf": sympy.erf, "sigmoid": lambda a: 1 / (1 + sympy.exp(-a)),
}


def _leaf() -> st.SearchStrategy[tuple[str, Any]]:
    return st.sampled_from([("x", X), ("y", Y), ("0.5", sympy.Rational(1, 2)),
                            ("2", sympy.Integer(2))])


def _grow(inner: st.SearchStrategy[tuple[str, Any]]) -> st.SearchStrategy[tuple[str, Any]]:
    unary = st.tuples(st.sampled_from(sorted(UNARY)), inner).map(
        lambda t: (f"{t[0]}({t[1][0]})", UNARY[t[0]](t[1][1])))
    binary = st.tuples(inner, st.sampled_from(["+", "-", "*"]), inner).map(
        lambda t: (f"({t[0][0]}) {t[1]} ({t[2][0]})",
                   {"+": t[0][1] + t[2][1], "-": t[0][1] - t[2][1],
                    "*": t[0][1] * t[2][1]}[t[1]]))
    special = inner.flatmap(lambda a: st.sampled_from([
        (f"log(1 + ({a[0]})^2)", sympy.log(1 + a[1] ** 2)),
        (f"sqrt(2 + ({a[0]})^2)", sympy.sqrt(2 + a[1] ** 2)),
        (f"({a[0]}) / (1 + ({a[0]})^2)", a[1] / (1 + a[1] ** 2)),
        (f"({a[0]})^3", a[1] ** 3)]))
    return st.one_of(unary, binary, special)


expressions = st.recursive(_leaf(), _grow, max_leaves=5).filter(
    lambda e: e[1].has(X) or e[1].has(Y))
points = st.tuples(st.floats(-1.5, 1.5), st.floats(-1.5, 1.5))
ORACLE = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow,
                                         HealthCheck.function_scoped_fixture])


@ORACLE
@given(expression=expressions, point=points, order=st.integers(3, 4))
def test_tensors_match_sympy(run: Any, expression: tuple[str, Any], point: tuple[float, float],
                             order: int) -> None:
    text, f = expression
    at = {"x": point[0], "y": point[1]}
    body = run(expression=text, variables={"x": [], "y": []}, at=at, order=order,
               derivatives=["value"])
    for k in range(3, order + 1):
        tensor = np.asarray(body["tensors"][str(k)])
        assert tensor.shape == (2,) * k
        for index in product(range(2), repeat=k):
            want = exact(sympy.diff(f, *[(X, Y)[i] for i in index]), {X: at["x"], Y: at["y"]})
            assert close(float(tensor[index]), want, 1e-9), (text, index, tensor[index], want)


@ORACLE
@given(expression=expressions, point=points, order=st.integers(3, 6),
       direction=st.tuples(st.sampled_from([-1.0, 0.5, 1.0, 2.0]),
                           st.sampled_from([-0.5, 0.0, 1.0])))
def test_directional_derivatives_match_sympy(run: Any, expression: tuple[str, Any],
                                             point: tuple[float, float], order: int,
                                             direction: tuple[float, float]) -> None:
    """Taylor mode along a direction: D^j f = d^j/dt^j f(a + t d) at 0, j = 1 .. order."""
    text, f = expression
    t = sympy.Symbol("t", real=True)
    line = f.subs({X: point[0] + t * sympy.Float(direction[0], DIGITS),
                   Y: point[1] + t * sympy.Float(direction[1], DIGITS)}, simultaneous=True)
    body = run(expression=text, variables={"x": [], "y": []}, at={"x": point[0], "y": point[1]},
               order=order, direction={"x": direction[0], "y": direction[1]},
               derivatives=["value"])
    assert "tensors" not in body  # no tensor is built
    got = body["directional"]
    assert len(got) == order
    derivative = line
    for j in range(order):
        derivative = sympy.diff(derivative, t)
        want = exact(derivative, {t: 0.0})
        assert close(float(got[j]), want, 1e-8), (text, j + 1, got[j], want)


@ORACLE
@given(expression=expressions, point=points,
       partials=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1,
                         max_size=3))
def test_mixed_partials_match_sympy(run: Any, expression: tuple[str, Any],
                                    point: tuple[float, float],
                                    partials: list[tuple[int, int]]) -> None:
    text, f = expression
    asked = [{k: v for k, v in (("x", a), ("y", b)) if v} for a, b in partials]
    body = run(expression=text, variables={"x": [], "y": []}, at={"x": point[0], "y": point[1]},
               partials=asked, derivatives=["value"])
    assert len(body["partials"]) == len(asked)
    for (a, b), got in zip(partials, body["partials"], strict=True):
        want = exact(sympy.diff(f, X, a, Y, b) if a + b else f, {X: point[0], Y: point[1]})
        assert close(float(got), want, 1e-7), (text, a, b, got, want)


def test_tensor_of_one_coordinate_to_order_ten(run: Any) -> None:
    """k = 10 for one coordinate (the default limit admits it), by Taylor mode."""
    f = sympy.sin(X) * sympy.exp(X) / (1 + X**2)
    body = run(expression="sin(x)*exp(x)/(1 + x^2)", at={"x": 0.7}, order=10,
               derivatives=["value"])
    for k in range(3, 11):
        got = float(np.asarray(body["tensors"][str(k)]).reshape(()))
        assert close(got, exact(sympy.diff(f, X, k), {X: 0.7}), 1e-9), k


def test_fourth_order_tensor_of_ten_coordinates(run: Any) -> None:
    """k = 4 for 10 coordinates: 10^4 numbers, checked entry by entry on a closed form.
    f = sum_i x_i^4 / 24 + x_0 x_1 x_2 x_3: T4[i,i,i,i] = 1, T4 of (0,1,2,3) permuted = 1."""
    body = run(expression="sum(v^4)/24 + v[0]*v[1]*v[2]*v[3]", variables={"v": [10]},
               at={"v": [0.1 * i for i in range(10)]}, order=4, derivatives=["value"])
    tensor = np.asarray(body["tensors"]["4"])
    assert tensor.shape == (10,) * 4
    want = np.zeros((10,) * 4)
    for i in range(10):
        want[i, i, i, i] = 1.0
    from itertools import permutations
    for p in permutations(range(4)):
        want[p] = 1.0
    np.testing.assert_allclose(tensor, want, atol=1e-12)
    third = np.asarray(body["tensors"]["3"])  # T3[i,i,i] = x_i, plus x_l for (j,k,m) of 0..3
    assert third.shape == (10,) * 3
    assert close(float(third[5, 5, 5]), 0.5, 1e-12)
    assert close(float(third[0, 1, 2]), 0.3, 1e-12)


def test_tensors_of_a_vector_f_and_a_batch(run: Any) -> None:
    """A vector f has [m] + [n]*k; a batch adds its leading axis."""
    body = run(expression=["x^3*y", "x*y^3"], points=[{"x": 1, "y": 2}, {"x": 3, "y": -1}],
               order=3, derivatives=["value"])
    tensor = np.asarray(body["tensors"]["3"])
    assert tensor.shape == (2, 2, 2, 2, 2)
    assert tensor[0, 0, 0, 0, 0] == 6 * 2  # d3/dx3 x^3 y = 6y at (1, 2)
    assert tensor[1, 1, 1, 1, 1] == 6 * 3  # d3/dy3 x y^3 = 6x at (3, -1)
    assert tensor[0, 0, 0, 0, 1] == 6  # d3/dx2dy x^3 y = 6x at (1, 2)
    assert tensor[1, 0, 0, 0, 1] == 18  # and at (3, -1)


def test_symbolic_tensors_partials_and_directional(run: Any) -> None:
    body = run(expression="x^3*y^2", at={"x": 1, "y": 1}, order=3,
               derivatives=["value", "symbolic"])
    assert body["symbolic"]["tensors"]["3"][0][0][0] == "6*y**2"
    assert body["symbolic"]["tensors"]["3"][0][0][1] == "12*x*y"
    assert body["symbolic"]["tensors"]["3"][0][1][1] == "6*x**2"
    body = run(expression="x^3*y^2", at={"x": 1, "y": 1},
               partials=[{"x": 2, "y": 1}], derivatives=["value", "symbolic"])
    assert body["symbolic"]["partials"] == ["12*x*y"]
    assert close(float(np.asarray(body["partials"])[0]), 12.0, 1e-13)
    body = run(expression="exp(x)*y", at={"x": 0, "y": 2}, order=2, direction={"x": 1, "y": 0},
               derivatives=["symbolic"])
    assert body["symbolic"]["directional"] == ["y*exp(x)", "y*exp(x)"]
    assert "latex" in body["symbolic"]


def test_symbolic_tensors_too_big_are_skipped(run: Any) -> None:
    body = run(expression="sum(v^4)", variables={"v": [10]}, at={"v": [1.0] * 10}, order=4,
               derivatives=["value", "symbolic"])
    assert "11000 entries" in body["symbolic"]["skipped"]  # T3 and T4
    assert np.asarray(body["tensors"]["4"]).shape == (10,) * 4


# -- Taylor polynomials ------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "f", "a", "k"), [
    ("sin(x)", sympy.sin(X), 0.0, 7),
    ("exp(x)/(1 + x^2)", sympy.exp(X) / (1 + X**2), 0.5, 6),
    ("log(1 + x)", sympy.log(1 + X), 0.3, 10),
    ("atan(x)*cosh(x)", sympy.atan(X) * sympy.cosh(X), -0.4, 5),
], ids=["sin", "exp-rational", "log1p-order10", "atan-cosh"])
def test_taylor_coefficients_match_sympy_series(run: Any, text: str, f: sympy.Expr, a: float,
                                                k: int) -> None:
    body = run(expression=text, at={"x": a}, taylor={"order": k}, derivatives=["gradient"])
    taylor = body["taylor"]
    h = sympy.Symbol("h")
    series = sympy.series(f.subs(X, sympy.Float(a, DIGITS) + h), h, 0, k + 1).removeO()
    coefficients = {c["powers"].get("x", 0): c["value"] for c in taylor["coefficients"]}
    assert sorted(coefficients) == list(range(k + 1))
    for j in range(k + 1):
        want = float(sympy.N(series.coeff(h, j), DIGITS))
        assert close(coefficients[j], want, 1e-9), (text, j, coefficients[j], want)
    assert "value" not in body  # not asked for


def test_taylor_polynomial_text_posts_back(run: Any) -> None:
    """The polynomial's text is an expression of the language: posted back, it gives the
    polynomial's value (the coefficients summed by hand here)."""
    body = run(expression="exp(x)*sin(y)", at={"x": 0.5, "y": -1.0}, taylor={"order": 3},
               derivatives=["value"])
    taylor = body["taylor"]
    assert len(taylor["coefficients"]) == math.comb(2 + 3, 3)
    b = {"x": 0.7, "y": -0.8}
    by_hand = sum(c["value"] * (b["x"] - 0.5) ** c["powers"].get("x", 0)
                  * (b["y"] + 1.0) ** c["powers"].get("y", 0) for c in taylor["coefficients"])
    posted = run(expression=taylor["polynomial"], variables={"x": [], "y": []}, at=b,
                 derivatives=["value"])
    assert close(posted["value"], by_hand, 1e-14)
    # and against the closed form: exp(x) sin(y) to third order about (0.5, -1)
    fx = sympy.exp(X) * sympy.sin(Y)
    dx, dy = sympy.Float(0.2, DIGITS), sympy.Float(0.2, DIGITS)
    closed = sum(sympy.diff(fx, X, i, Y, j).subs({X: 0.5, Y: -1.0}) * dx**i * dy**j
                 / (math.factorial(i) * math.factorial(j))
                 for i in range(4) for j in range(4 - i))
    assert close(by_hand, float(closed), 1e-12)
    assert taylor["latex"].startswith(f"{taylor['coefficients'][0]['value']:.10g}"[:6])


def test_taylor_remainder_and_its_estimate(run: Any) -> None:
    """sin about 0 to order 5 at 1: the remainder is sin(1) - (1 - 1/6 + 1/120); the next
    nonzero term, -1/5040, estimates it."""
    body = run(expression="sin(x)", at={"x": 0}, taylor={"order": 5, "remainder_at": {"x": 1}},
               derivatives=["value"])
    remainder = body["taylor"]["remainder"]
    polynomial = 1 - 1 / 6 + 1 / 120
    assert close(remainder["polynomial"], polynomial, 1e-15)
    assert close(remainder["remainder"], math.sin(1) - polynomial, 1e-12)
    assert close(remainder["estimate"], -1 / 5040, 1e-12)


def test_taylor_of_a_vector_f_is_refused(run: Any) -> None:
    from app.errors import InputError
    with pytest.raises(InputError, match="scalar"):
        run(expression=["x", "x^2"], at={"x": 1}, taylor={"order": 2})


# -- limits, refused before work ----------------------------------------------------------------

def test_default_limits_admit_the_issue_s_workloads() -> None:
    limits = Settings()
    assert limits.max_tensor_entries >= 1 * 10**4 and limits.max_derivative_order >= 10


@pytest.mark.parametrize(("body", "limit"), [
    ({"expression": "sum(v^2)", "variables": {"v": [20]}, "at": {"v": [0.0] * 20}, "order": 4},
     "max_tensor_entries"),
    ({"expression": "x", "at": {"x": 1}, "order": 11}, "max_derivative_order"),
    ({"expression": "x*y", "at": {"x": 1, "y": 1}, "partials": [{"x": 6, "y": 6}]},
     "max_derivative_order"),
    ({"expression": "x", "at": {"x": 1}, "taylor": {"order": 9, "remainder_at": {"x": 2}}},
     "max_derivative_order"),
    ({"expression": "sum(v)", "variables": {"v": [30]}, "at": {"v": [0.0] * 30},
      "taylor": {"order": 5}}, "max_tensor_entries"),
], ids=["tensor-20^4", "order-11", "partial-12", "taylor-9-plus-2", "taylor-30-vars"])
def test_over_a_limit_is_refused_naming_it(run: Any, body: dict[str, Any], limit: str) -> None:
    with pytest.raises(LimitError) as refused:
        run(**body)
    assert refused.value.extra["limit"] == limit
    assert limit in refused.value.detail


def test_unknown_coordinate_in_partials(run: Any) -> None:
    with pytest.raises(PointError, match="not a coordinate"):
        run(expression="x*y", at={"x": 1, "y": 1}, partials=[{"x": 1, "z": 1}])


def test_kinds_round_trip() -> None:
    assert tensor_order(tensor_kind(7)) == 7
    assert series_shape(series_kind(5, 12)) == (5, 12)
    assert tensor_order("hessian") is None and series_shape("value") is None


# -- the Taylor-mode rules nabla adds to jet ------------------------------------------------

V = sympy.Symbol("v", real=True)


@pytest.mark.parametrize(("text", "f", "a"), [
    ("asin(x)", sympy.asin(X), 0.3), ("acos(x)", sympy.acos(X), -0.4),
    ("atan(x)", sympy.atan(X), 1.7), ("tan(x)", sympy.tan(X), 0.9),
    ("cbrt(x)", sympy.cbrt(X), 2.5), ("cbrt(x)", -sympy.cbrt(-X), -2.5),
    ("lgamma(x)", sympy.loggamma(X), 3.3), ("polygamma(1, x)", sympy.polygamma(1, X), 1.4),
    ("gamma(x)", sympy.gamma(X), 2.2), ("softplus(x)", sympy.log(1 + sympy.exp(X)), -0.6),
    ("prod(v)", None, 0.0),
], ids=["asin", "acos", "atan", "tan", "cbrt", "cbrt-negative", "lgamma", "polygamma",
        "gamma", "softplus", "prod"])
def test_taylor_mode_rules(run: Any, text: str, f: sympy.Expr | None, a: float) -> None:
    """The derivatives 1 .. 6 along an axis, by the rules added to jet, against SymPy."""
    if f is None:  # prod of (1 + t, 2 + 2t, 3 - t): a cubic in t
        t = sympy.Symbol("t")
        g = (1 + t) * (2 + 2 * t) * (3 - t)
        body = run(expression=text, variables={"v": [3]}, at={"v": [1.0, 2.0, 3.0]}, order=6,
                   direction={"v": [1.0, 2.0, -1.0]}, derivatives=["value"])
        want = [float(sympy.diff(g, t, j).subs(t, 0)) for j in range(1, 7)]
        np.testing.assert_allclose(np.asarray(body["directional"]), want, atol=1e-12)
        return
    body = run(expression=text, at={"x": a}, order=6, direction={"x": 1.0},
               derivatives=["value"])
    for j in range(1, 7):
        want = exact(sympy.diff(f, X, j), {X: a})
        assert close(float(body["directional"][j - 1]), want, 1e-9), (text, j)


def test_taylor_mode_keeps_jax_s_kink_conventions(run: Any) -> None:
    """relu'(0) = 0 and abs'(0) = 1, as JAX's own rules say (jet alone would ignore relu's
    custom rule and average max's tie to 1/2)."""
    body = run(expression="relu(x) + abs(y)", at={"x": 0.0, "y": 0.0}, order=3,
               direction={"x": 1.0, "y": 1.0}, derivatives=["value", "gradient"])
    assert np.asarray(body["directional"]).tolist() == [1.0, 0.0, 0.0]
    assert np.asarray(body["gradient"]).tolist() == [0.0, 1.0]
