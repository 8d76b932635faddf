"""Symbolic formulas: printed in our language, simplified, and every one round-trips
through the API (posted back as an expression, it gives the same numbers)."""

from __future__ import annotations

import zlib
from typing import Any

import httpx
import numpy as np
import pytest
import sympy

from app.language import functions as F
from app.language.printing import Unprintable, to_text

pytestmark = pytest.mark.slow

# (expression, variables, sampling range of every coordinate)
CASES: list[tuple[str | list[str], dict[str, list[int]], tuple[float, float]]] = [
    ("2*dot(x, x)", {"x": [4]}, (-3, 3)),
    ("sin(x)*y + exp(x*y)/(1 + y^2)", {"x": [], "y": []}, (-2, 2)),
    ("relu(x) + abs(y) + max(x, y) + min(x, 2*y)", {"x": [], "y": []}, (-2, 2)),
    ("where(x > 0, sqrt(x), x^2) * y", {"x": [], "y": []}, (-2, 2)),
    ("sum(sin(x)) + norm(x) + prod(x) + mean(x) + x[0]*x[-1]", {"x": [3]}, (-2, 2)),
    ("lgamma(x) + sigmoid(x) + softplus(x) + floor(x)*x + erf(x) + erfc(x)", {"x": []},
     (0.5, 3)),
    ("cbrt(x) + gamma(x + 3) + polygamma(1, x + 3)", {"x": []}, (-2, 2)),
    (["x*y", "atan2(y, x)", "log(x, 2) + log10(y) + log2(x) + expm1(y) + log1p(x)"],
     {"x": [], "y": []}, (0.5, 3)),
    ("x[1:] - x[:-1]^2", {"x": [3]}, (-2, 2)),
    ("piecewise((x^3, x < -1), (tanh(x), (x < 1) and (y > 0)), (asinh(x) + y, True))",
     {"x": [], "y": []}, (-3, 3)),
    ("sign(x)*x^2 + ceil(x) + heaviside(x, 0)*y", {"x": [], "y": []}, (-2, 2)),
    ("atan(x) + asin(x/4) + acos(x/4) + cosh(x) + sinh(x) + tan(x) + 2.5e-3*x^2 + x/3 + pi*e",
     {"x": []}, (-1, 1)),
]


def numbers(value: Any, count: int) -> np.ndarray:
    """A response field as floats (null -> NaN), one row per point."""
    array = np.array(value, dtype=object)
    array[array == None] = np.nan  # noqa: E711 - elementwise comparison
    return array.astype(np.float64).reshape(count, -1)


def formulas(symbolic: dict[str, Any], keys: list[str]) -> list[str]:
    return [str(s) for key in keys for s in np.ravel(np.array(symbolic[key], dtype=object))]


@pytest.mark.parametrize("case", CASES, ids=lambda c: str(c[0])[:40])
def test_every_formula_round_trips(api: httpx.Client, case: Any) -> None:
    expression, variables, (low, high) = case
    rng = np.random.default_rng(zlib.crc32(str(expression).encode()))  # not hash(): salted
    n = sum(shape[0] if shape else 1 for shape in variables.values())
    count = 5
    coordinates = rng.uniform(low, high, size=(count, n))
    points = []
    for row in coordinates:
        point, offset = {}, 0
        for name, shape in variables.items():
            size = shape[0] if shape else 1
            point[name] = row[offset:offset + size].tolist() if shape else float(row[offset])
            offset += size
        points.append(point)
    first = api.post("/v1/differentiate", json={
        "expression": expression, "variables": variables, "points": points,
        "derivatives": ["value", "gradient", "hessian", "symbolic"]})
    assert first.status_code == 200, first.text
    body = first.json()
    symbolic = body["symbolic"]
    assert "skipped" not in symbolic, symbolic
    keys = ["value", "jacobian" if "jacobian" in body else "gradient", "hessian"]
    by_variable = {"by_variable"} if "gradient" in keys else set()
    assert set(symbolic) == {*keys, "latex", *by_variable}
    given = {name for name, f in symbolic.get("by_variable", {}).items() if isinstance(f, str)}
    assert set(symbolic["latex"]) == set(keys) | ({"by_variable"} if given else set())
    assert set(symbolic["latex"].get("by_variable", {})) == given
    texts = formulas(symbolic, keys)
    expected = np.concatenate([numbers(body[k], count) for k in keys], axis=1)
    assert len(texts) == expected.shape[1]
    second = api.post("/v1/differentiate", json={
        "expression": texts, "variables": variables, "points": points,
        "derivatives": ["value"]})
    assert second.status_code == 200, (second.text, texts)
    got = numbers(second.json()["value"], count)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9, equal_nan=True,
                               err_msg=str(texts))


def test_gradient_of_2_xtx_is_4x(run: Any) -> None:
    body = run(expression="2*dot(x, x)", variables={"x": [4]}, at={"x": [0, 1, 2, 3]},
               derivatives=["value", "gradient", "hessian", "symbolic"])
    symbolic = body["symbolic"]
    assert symbolic["gradient"] == ["4*x[0]", "4*x[1]", "4*x[2]", "4*x[3]"]
    assert symbolic["hessian"] == [["4" if i == j else "0" for j in range(4)]
                                   for i in range(4)]
    assert symbolic["value"] == "2*x[0]**2 + 2*x[1]**2 + 2*x[2]**2 + 2*x[3]**2"
    assert symbolic["latex"]["gradient"] == ["4 x_{0}", "4 x_{1}", "4 x_{2}", "4 x_{3}"]
    assert symbolic["by_variable"] == {"x": "4*x"}  # the d2l answer in one line


def test_symbolic_follows_the_requested_kinds(run: Any) -> None:
    body = run(expression="x^3", at={"x": 2}, derivatives=["hessian", "symbolic"])
    assert body["symbolic"] == {"hessian": [["6*x"]], "latex": {"hessian": [["6 x"]]}}
    alone = run(expression="x^3", at={"x": 2}, derivatives=["symbolic"])
    assert set(alone["symbolic"]) == {"value", "gradient", "hessian", "latex", "by_variable"}
    assert alone["symbolic"]["by_variable"] == {"x": "3*x**2"}
    assert set(alone) == {"coordinates", "symbolic"}


def test_big_vectors_are_skipped_with_a_reason(run: Any) -> None:
    body = run(expression="sum(sin(x))", variables={"x": [100]}, at={"x": [0.5] * 100},
               derivatives=["gradient", "symbolic"])
    assert "100 coordinates" in body["symbolic"]["skipped"]
    assert len(body["gradient"]) == 100


@pytest.mark.parametrize("expr, text", [
    (sympy.Abs(sympy.Symbol("x")), "abs(x)"),
    (sympy.ceiling(sympy.Symbol("x")), "ceil(x)"),
    (sympy.loggamma(sympy.Symbol("x")), "lgamma(x)"),
    (sympy.Heaviside(sympy.Symbol("x")), "heaviside(x, 1/2)"),
    (2 * sympy.DiracDelta(sympy.Symbol("x"), 1), "2*diracdelta(x, 1)"),
    (F.sigmoid(sympy.Symbol("x")), "sigmoid(x)"),
    (sympy.Float(0.1) * sympy.Symbol("x"), "0.1*x"),
    (sympy.Float(1 / 3), "0.3333333333333333"),
    (sympy.Eq(sympy.Symbol("x"), 0) | sympy.Not(sympy.Symbol("x") > 1),
     "(x == 0) or (x <= 1)"),
    (sympy.Piecewise((1, sympy.Symbol("x") > 0), (0, True)), "piecewise((1, x > 0), (0, True))"),
    (sympy.pi + sympy.E, "e + pi"),
], ids=str)
def test_printer_writes_our_language(expr: Any, text: str) -> None:
    assert to_text(expr) == text


def test_printer_refuses_what_the_language_cannot_write() -> None:
    with pytest.raises(Unprintable):
        to_text(sympy.besselj(0, sympy.Symbol("x")))
    with pytest.raises(Unprintable):
        to_text(sympy.I * sympy.Symbol("x"))


@pytest.mark.parametrize("expression, x, value", [
    ("heaviside(x)", 0.0, 0.5), ("heaviside(x, 0)", 0.0, 0.0), ("heaviside(x, 0)", 2.0, 1.0),
    ("diracdelta(x)", 1.5, 0.0), ("diracdelta(x, 2)", -1.0, 0.0),
    ("polygamma(1, x)", 2.0, np.pi**2 / 6 - 1), ("polygamma(0, x)", 1.0, -np.euler_gamma),
    ("cbrt(x)", -8.0, -2.0),
], ids=str)
def test_functions_that_derivatives_use(run: Any, expression: str, x: float,
                                        value: float) -> None:
    body = run(expression=expression, at={"x": x}, derivatives=["value"])
    assert body["value"] == pytest.approx(value, rel=1e-14)


def test_diracdelta_at_zero_is_reported_infinite(run: Any) -> None:
    body = run(expression="diracdelta(x)", at={"x": 0}, derivatives=["value"])
    assert body["nonfinite"] == [{"field": "value", "index": [], "kind": "inf"}]


def test_cbrt_has_a_finite_derivative_at_negative_x(run: Any) -> None:
    body = run(expression="cbrt(x)", at={"x": -8.0}, derivatives=["gradient", "symbolic"])
    assert body["gradient"][0] == pytest.approx(1 / 12, rel=1e-14)
    assert body["symbolic"]["gradient"] == ["1/(3*cbrt(x)**2)"]


@pytest.mark.parametrize("expression", ["polygamma(x, x)", "polygamma(1.5, x)",
                                        "diracdelta(x, -1)", "polygamma(99, x)",
                                        "heaviside(x, 0, 1)"])
def test_bad_orders_are_refused(run: Any, expression: str) -> None:
    from app.errors import ExpressionError

    with pytest.raises(ExpressionError):
        run(expression=expression, at={"x": 1.0}, derivatives=["value"])
