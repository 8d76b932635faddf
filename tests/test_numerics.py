"""Values, gradients and Hessians agree with SymPy's own symbolic derivatives.

Random expression trees are drawn as pairs: the text that nabla parses, and a SymPy tree
built independently from the same draw. SymPy differentiates the tree symbolically and
evaluates at 50 digits; nabla's float64 answers must match to 1e-9 relative.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import sympy
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

NAMES = ("x", "y", "z")
SYMBOLS = {n: sympy.Symbol(n, real=True) for n in NAMES}
Pair = tuple[str, Any]

# Each unary form keeps its argument inside the function's smooth domain.
UNARY: list[tuple[str, Any]] = [
    ("sin({})", sympy.sin), ("cos({})", sympy.cos), ("tanh({})", sympy.tanh),
    ("atan({})", sympy.atan), ("erf({})", sympy.erf), ("asinh({})", sympy.asinh),
    ("sigmoid({})", lambda a: 1 / (1 + sympy.exp(-a))),
    ("softplus({})", lambda a: sympy.log(1 + sympy.exp(a))),
    ("exp(sin({}))", lambda a: sympy.exp(sympy.sin(a))),
    ("sqrt(1 + ({})^2)", lambda a: sympy.sqrt(1 + a**2)),
    ("log(1 + ({})^2)", lambda a: sympy.log(1 + a**2)),
    ("log1p(({})**2)", lambda a: sympy.log(1 + a**2)),
    ("cbrt(2 + cos({}))", lambda a: sympy.cbrt(2 + sympy.cos(a))),
    ("expm1(tanh({}))", lambda a: sympy.exp(sympy.tanh(a)) - 1),
    ("log2(3 + sin({}))", lambda a: sympy.log(3 + sympy.sin(a), 2)),
    ("-({})", lambda a: -a),
]
BINARY: list[tuple[str, Any]] = [
    ("({}) + ({})", lambda a, b: a + b),
    ("({}) - ({})", lambda a, b: a - b),
    ("({}) * ({})", lambda a, b: a * b),
    ("({}) / (2 + cos({}))", lambda a, b: a / (2 + sympy.cos(b))),
    ("atan2({}, 1 + ({})^2)", lambda a, b: sympy.atan2(a, 1 + b**2)),
    ("hypot", lambda a, b: sympy.sqrt(a**2 + b**2 + 1)),
]


def leaves() -> st.SearchStrategy[Pair]:
    variables = st.sampled_from(NAMES).map(lambda n: (n, SYMBOLS[n]))
    integers = st.integers(1, 5).map(lambda k: (str(k), sympy.Integer(k)))
    decimals = st.sampled_from(["0.5", "1.25", "2.5"]).map(
        lambda t: (t, sympy.Rational(t)))
    return st.one_of(variables, variables, integers, decimals)


def extend(children: st.SearchStrategy[Pair]) -> st.SearchStrategy[Pair]:
    def unary(draw: Any) -> Pair:
        form, func = draw(st.sampled_from(UNARY))
        text, expr = draw(children)
        return form.format(text), func(expr)

    def binary(draw: Any) -> Pair:
        form, func = draw(st.sampled_from(BINARY))
        (ta, a), (tb, b) = draw(children), draw(children)
        if form == "hypot":
            return f"sqrt(({ta})^2 + ({tb})^2 + 1)", func(a, b)
        return form.format(ta, tb), func(a, b)

    def power(draw: Any) -> Pair:
        text, expr = draw(children)
        k = draw(st.integers(2, 3))
        op = draw(st.sampled_from(["^", "**"]))
        return f"({text}){op}{k}", expr**k

    return st.one_of(st.composite(unary)(), st.composite(binary)(), st.composite(power)())


expressions = st.recursive(leaves(), extend, max_leaves=8)
coordinates = st.floats(-1.5, 1.5, allow_nan=False).map(lambda v: round(v, 6))


def close(actual: Any, expected: Any) -> None:
    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    scale = max(1.0, float(np.max(np.abs(expected))))
    np.testing.assert_allclose(actual, expected, rtol=1e-9, atol=1e-9 * scale)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pair=expressions, point=st.tuples(coordinates, coordinates, coordinates))
def test_value_gradient_hessian_match_sympy(run: Any, pair: Pair, point: tuple[float, ...]) -> None:
    text, expr = pair
    variables = [SYMBOLS[n] for n in NAMES]
    subs = {s: sympy.Float(v, 50) for s, v in zip(variables, point, strict=True)}
    value = expr.evalf(50, subs=subs)
    assume(value.is_finite and abs(value) < 1e12)
    gradient = [sympy.diff(expr, v).evalf(50, subs=subs) for v in variables]
    hessian = [[sympy.diff(expr, a, b).evalf(50, subs=subs) for b in variables]
               for a in variables]
    out = run(expression=text, variables={n: [] for n in NAMES},
              at=dict(zip(NAMES, point, strict=True)))
    close(out["value"], float(value))
    close(out["gradient"], [float(g) for g in gradient])
    close(out["hessian"], [[float(h) for h in row] for row in hessian])


def test_d2l_gradient_of_2_xTx_is_4x(run: Any) -> None:
    out = run(expression="2*dot(x, x)", variables={"x": [4]}, at={"x": [0, 1, 2, 3]})
    assert out["coordinates"] == ["x[0]", "x[1]", "x[2]", "x[3]"]
    assert out["value"] == 28.0
    assert out["gradient"].tolist() == [0.0, 4.0, 8.0, 12.0]
    assert out["hessian"].tolist() == (4 * np.eye(4)).tolist()


def test_d2l_sin_over_a_grid_has_derivative_cos(run: Any) -> None:
    grid = np.linspace(-2 * math.pi, 2 * math.pi, 101)
    out = run(expression="sin(x)", points={"x": grid.tolist()})
    np.testing.assert_allclose(out["value"], np.sin(grid), rtol=0, atol=1e-15)
    np.testing.assert_allclose(out["gradient"][:, 0], np.cos(grid), rtol=0, atol=1e-15)
    np.testing.assert_allclose(out["hessian"][:, 0, 0], -np.sin(grid), rtol=0, atol=1e-15)


def test_d2l_jacobian_of_a_vector_function(run: Any) -> None:
    out = run(expression=["x*y", "x + y^2"], at={"x": 2, "y": 3})
    assert out["value"].tolist() == [6.0, 11.0]
    assert out["jacobian"].tolist() == [[3.0, 2.0], [1.0, 6.0]]
    assert out["hessian"].tolist() == [[[0.0, 1.0], [1.0, 0.0]], [[0.0, 0.0], [0.0, 2.0]]]


def test_elementwise_function_of_a_vector_has_a_diagonal_jacobian(run: Any) -> None:
    x = np.array([0.0, 0.5, 1.0])
    out = run(expression="sin(x)", at={"x": x.tolist()})
    np.testing.assert_allclose(out["jacobian"], np.diag(np.cos(x)), atol=1e-16)
    hessian = np.zeros((3, 3, 3))
    for i in range(3):
        hessian[i, i, i] = -math.sin(x[i])
    np.testing.assert_allclose(out["hessian"], hessian, atol=1e-16)


def test_vector_expression_against_sympy_components(run: Any) -> None:
    x = sympy.symbols("x0:3", real=True)
    f = sum((1 - x[i]) ** 2 + 100 * (x[i + 1] - x[i] ** 2) ** 2 for i in range(2))
    point = [0.3, -0.7, 1.1]
    subs = dict(zip(x, point, strict=True))
    out = run(expression="sum((1 - v[:-1])^2 + 100*(v[1:] - v[:-1]^2)^2)", at={"v": point})
    close(out["value"], float(f.subs(subs)))
    close(out["gradient"], [float(sympy.diff(f, a).subs(subs)) for a in x])
    close(out["hessian"], [[float(sympy.diff(f, a, b).subs(subs)) for b in x] for a in x])


@pytest.mark.parametrize(("expression", "point"), [
    ("where(x > 0, sqrt(x), 0)", -1.0), ("where(x > 0, sqrt(x), 0)", 0.0),
    ("where(x > 0, log(x), x)", -2.0), ("piecewise((log(x), x > 0), (x^2, True))", 0.0),
    ("where(x < 1, 1, sqrt(x - 1))", 0.5), ("where(x != 0, sin(x)/x, 1)", 0.0),
    ("where(x > 0, x * log(x), 0)", 0.0),
])
def test_untaken_branch_never_makes_nan(run: Any, expression: str, point: float) -> None:
    out = run(expression=expression, at={"x": point})
    assert "nonfinite" not in out
    assert np.all(np.isfinite(out["gradient"])) and np.all(np.isfinite(out["hessian"]))


def test_untaken_branch_elementwise_on_vectors(run: Any) -> None:
    out = run(expression="where(v > 0, sqrt(v), -v)", at={"v": [-1.0, 0.0, 4.0]})
    assert "nonfinite" not in out
    np.testing.assert_allclose(np.diag(out["jacobian"]), [-1.0, -1.0, 0.25])


def test_kinks_follow_jax_conventions(run: Any) -> None:
    assert run(expression="abs(x)", at={"x": 0.0})["gradient"].tolist() == [1.0]
    assert run(expression="max(x, 0)", at={"x": 0.0})["gradient"].tolist() == [0.5]
    assert run(expression="relu(x)", at={"x": 0.0})["gradient"].tolist() == [0.0]
    out = run(expression="sqrt(x)", at={"x": 0.0})
    assert {"field": "gradient", "index": [0], "kind": "inf"} in out["nonfinite"]
