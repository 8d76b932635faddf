"""Wrong numbers and 500s found at the edges of float64 (issue 15), each on both tiers.

Every expected number is IEEE float64 of the expression as written, as NumPy computes it,
with subnormals flushed to zero as XLA on CPU does (docs/numerics.md), or JAX's own
derivative where the question is JAX's convention.
"""

from __future__ import annotations

import math
import pickle
from typing import Any

import httpx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy

from app.config import Limits, Settings
from app.engine.compilation import CompileSpec, build_program
from app.engine.evaluator import Evaluator
from app.language.build import variable_symbol
from app.main import create_app
from tests.conftest import run_async

jax.config.update("jax_enable_x64", True)  # type: ignore[no-untyped-call]

NAN = {"kind": "nan"}


def value_of(out: dict[str, Any]) -> float:
    return float(out["value"])


def listed(out: dict[str, Any], field: str) -> list[str]:
    return [e["kind"] for e in out.get("nonfinite", []) if e["field"] == field]


# --- subnormals: flushed on both tiers, as XLA on CPU computes --------------------------

@pytest.mark.parametrize(("expression", "x", "value"), [
    ("sqrt(x)", 4e-320, 0.0),          # was 2.0e-160 before compiling, 0.0 after
    ("log(x)", 1e-310, -math.inf),     # was -713.8 before compiling, -inf after
    ("x", 1e-310, 0.0),                # an input passed through is flushed too
    ("x * 1e200", 1e-310, 0.0),
    ("1 / x", -5e-324, -math.inf),     # the sign of a flushed subnormal is kept
    ("atan2(1e-310, x)", -1.0, math.pi),
    ("atan2(x, x)", 5e-324, 0.0),      # XLA's atan2 saw the subnormal itself: pi/2
    ("x * 1e-10 * 1e20", 1e-300, 0.0),  # a partial product is flushed: 1e-290 before
], ids=str)
def test_subnormals_are_flushed_on_both_tiers(run: Any, expression: str, x: float,
                                              value: float) -> None:
    out = run(expression=expression, at={"x": x}, derivatives=["value"])
    assert value_of(out) == value and math.copysign(1, value_of(out)) == math.copysign(1, value)


def test_sqrt_at_a_subnormal_has_the_derivatives_of_sqrt_at_0(run: Any) -> None:
    out = run(expression="sqrt(x)", at={"x": 4e-320})
    assert value_of(out) == 0.0
    assert listed(out, "gradient") == ["inf"] and listed(out, "hessian") == ["-inf"]


# --- SymPy's simplifications never change a value or a domain ---------------------------

@pytest.mark.parametrize(("expression", "x"), [
    ("exp(log(x))", -1.0), ("sqrt(x)^2", -4.0), ("x/x", 0.0), ("0*log(x)", -1.0),
    ("log(x) - log(x)", -1.0), ("sin(asin(x))", 2.0), ("cosh(acosh(x))", 0.5),
    ("(x*log(x))/log(x)", -2.0), ("sign(exp(log(x)))", -1.0),
], ids=str)
def test_what_ieee_makes_nan_stays_nan(run: Any, expression: str, x: float) -> None:
    out = run(expression=expression, at={"x": x}, derivatives=["value"])
    assert math.isnan(value_of(out))
    assert out["nonfinite"] == [{"field": "value", "index": [], **NAN}]


@pytest.mark.parametrize(("expression", "x", "value"), [
    ("log(exp(x))", 1000.0, math.inf),            # exp overflows first
    ("x + x - x", 1e308, math.inf),               # x + x overflows first
    ("log(x^2.5)", -1.0, math.nan),               # XLA: 2.5 * log(abs(x)) = 0
    ("exp(x)*exp(-x)", 800.0, math.nan),          # XLA: exp(x + -x) = 1
    ("x/x", 1e308, 1.0),                          # a division, not x * (1/x) = 0
    ("sqrt(x^2)", 1e200, math.inf),               # not abs(x)
    ("(x + x)/2", 1e308, math.inf),
    ("1e200*1e200 - 1e200*1e200 + x", 1.0, math.nan),  # constants overflow too
    ("x^(0/0)", 2.0, math.nan),                   # a NaN exponent is no limit exceeded
    ("sin(exp(1e300)) + x", 1.0, math.nan),       # sin(inf): NaN, not SymPy's set [-1, 1]
    ("cos(1/0) * x", 1.0, math.nan),
    ("max(x, 0, acosh(0))", 1.0, math.nan),       # SymPy: Max sorts by value, NaN: a 500
    ("min(acosh(0), 1) + x", 1.0, math.nan),
    ("max(x, acosh(0), 0/0)", 1.0, math.nan),
], ids=str)
def test_values_are_what_float64_computes_as_written(run: Any, expression: str, x: float,
                                                     value: float) -> None:
    out = run(expression=expression, at={"x": x}, derivatives=["value"])
    assert value_of(out) == value or (math.isnan(value) and math.isnan(value_of(out)))


@pytest.mark.parametrize(("condition", "x", "taken"), [
    ("not (log(x) > 0)", -1.0, True),             # SymPy: log(x) <= 0, False at NaN
    ("(log(x) > 0) or (log(x) <= 0)", -1.0, False),  # SymPy: True
    ("log(x) == log(x)", -1.0, False),            # SymPy: True
    ("0/0 < 1", 1.0, False),                      # SymPy: TypeError, a 500
    ("x < 0/0", 1.0, False),
], ids=str)
def test_conditions_are_ieee_comparisons(run: Any, condition: str, x: float,
                                         taken: bool) -> None:
    out = run(expression=f"where({condition}, 1, 2) + 0*x", at={"x": x},
              derivatives=["value"])
    assert value_of(out) == (1.0 if taken else 2.0)


def test_a_division_is_one_division(run: Any) -> None:
    """x * (1/y) flushes 1/1e308 to 0; x / y is 1."""
    out = run(expression="x/y", at={"x": 1e308, "y": 1e308}, derivatives=["value"])
    assert value_of(out) == 1.0


# --- log(x, b) is log(x) / log(b) --------------------------------------------------------

@pytest.mark.parametrize(("expression", "at", "value"), [
    ("log(x, 1)", {"x": 2.0}, math.inf), ("log(x, 1)", {"x": 0.5}, -math.inf),
    ("log(x, 1)", {"x": 1.0}, math.nan), ("log(x, -1)", {"x": 2.0}, math.nan),
    ("log(0, x)", {"x": 2.0}, -math.inf), ("log(x, b)", {"x": 8.0, "b": 1.0}, math.inf),
    ("log(x, 2)", {"x": 8.0}, math.log(8.0) / math.log(2.0)),
], ids=str)
def test_log_with_a_base_divides_in_float64(run: Any, expression: str, at: dict[str, float],
                                            value: float) -> None:
    out = run(expression=expression, at=at, derivatives=["value", "gradient"])
    assert value_of(out) == value or (math.isnan(value) and math.isnan(value_of(out)))


def test_log_with_base_1_answers_200_over_http() -> None:
    app = create_app(Settings(in_process=True))

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://nabla") as client:
            return await client.post("/v1/differentiate",
                                     json={"expression": "log(x, 1)", "at": {"x": 2}})

    response: httpx.Response = run_async(post())
    assert response.status_code == 200, response.text
    assert response.json()["value"] is None
    assert {"field": "value", "index": [], "kind": "inf"} in response.json()["nonfinite"]


# --- derivatives: JAX's conventions, on both tiers ---------------------------------------

def test_power_at_0_0_follows_jax(run: Any) -> None:
    out = run(expression="x^y", at={"x": 0.0, "y": 0.0}, derivatives=["value", "gradient"])
    expected = [float(jax.grad(lambda x, y: jnp.power(x, y), argnums=i)(0.0, 0.0))
                for i in (0, 1)]
    assert np.isnan(expected[0]) and expected[1] == 0.0  # JAX: d/dy 0^y = 0, not 0*log 0
    np.testing.assert_array_equal(out["gradient"], expected)


@pytest.mark.parametrize(("expression", "x", "gradient"), [
    ("max(sqrt(x), 1)", 0.0, math.nan),   # JAX weighs the unchosen operand by 0: 0 * inf
    ("floor(sqrt(x))", 0.0, 0.0),         # JAX: the derivative of floor is exactly 0
    ("relu(x)", 0.0, 0.0),
    ("abs(sqrt(x))", 0.0, math.inf),
], ids=str)
def test_derivatives_at_singular_points_follow_jax(run: Any, expression: str, x: float,
                                                   gradient: float) -> None:
    out = run(expression=expression, at={"x": x}, derivatives=["gradient"])
    got = float(out["gradient"][0])
    assert got == gradient or (math.isnan(gradient) and math.isnan(got))


def test_hessian_of_asinh_at_1e308_is_what_jax_computes(run: Any) -> None:
    """JAX's asinh'' is -0.5 * rsqrt(u)/u * 2x with u = x*x + 1 = inf: 0 * inf."""
    out = run(expression="log(asinh(x))", at={"x": 1e308}, derivatives=["hessian"])
    assert listed(out, "hessian") == ["nan"]


# --- deep nesting answers, never a 500 ---------------------------------------------------

def test_sin_nested_190_deep_answers_with_symbolic_skipped(run: Any) -> None:
    expression = "sin(" * 190 + "x" + ")" * 190
    out = run(expression=expression, at={"x": 0.5},
              derivatives=["value", "gradient", "hessian", "symbolic"])
    value = 0.5
    for _ in range(190):
        value = math.sin(value)
    assert value_of(out) == pytest.approx(value, rel=1e-12)
    assert "nested 191 levels deep" in out["symbolic"]["skipped"]


@pytest.mark.parametrize("expression", ["-" * 199 + "x", "abs(" * 199 + "x" + ")" * 199,
                                        "x^" * 150 + "1"], ids=lambda e: e[:12])
def test_deep_trees_build_and_evaluate(run: Any, expression: str) -> None:
    out = run(expression=expression, at={"x": 0.5}, derivatives=["value", "gradient"])
    assert "value" in out


# --- trees travel between processes as built ---------------------------------------------

@pytest.mark.parametrize("text", ["x/x", "exp(log(x))", "0*log(x) + sqrt(x)^2",
                                  "where(not (log(x) > 0) or (x <= 0), max(x, 1, x), 2)",
                                  "x + x + 2*x*x*3 - x*(x - 1)*x/x + (x*x)*x + 0*x*1",
                                  "sum(100*(x - x^2)^2 + (1 - x)^2 + x*x*x)"])
def test_a_pickled_program_is_the_same_tree(text: str) -> None:
    spec = CompileSpec((text,), False, (("x", ()),), (), ("value",), None, 1)
    program = build_program(spec, Limits())
    again = pickle.loads(pickle.dumps(program))
    assert again.exprs == program.exprs
    assert [sympy.srepr(e) for e in again.exprs] == [sympy.srepr(e) for e in program.exprs]
    value = Evaluator({variable_symbol("x"): jnp.asarray(-1.0)}).walk(again.exprs[0])
    expected = Evaluator({variable_symbol("x"): jnp.asarray(-1.0)}).walk(program.exprs[0])
    np.testing.assert_array_equal(value, expected)


@pytest.mark.slow
@pytest.mark.parametrize(("expression", "at", "value"), [
    ("exp(log(x)) + 0*y", {"x": -1.0, "y": 1.0}, None),
    ("sqrt(x) + 0*y", {"x": 4e-320, "y": 1.0}, 0.0),
    ("log(x, 1) + y", {"x": 2.0, "y": 1.0}, None),
    ("x/y", {"x": 1e308, "y": 1e308}, 1.0),
], ids=str)
def test_the_same_numbers_through_the_worker_processes(api: httpx.Client, expression: str,
                                                       at: dict[str, float],
                                                       value: float | None) -> None:
    """Parsed in a worker, pickled to the server, compiled in a worker, run in the server:
    the answer of the first request (the first tier) and of later ones (XLA) is the same."""
    answers = []
    for _ in range(3):
        response = api.post("/v1/differentiate", json={"expression": expression, "at": at})
        assert response.status_code == 200, response.text
        answers.append(response.json())
    assert all(a == answers[0] for a in answers)
    assert answers[0]["value"] == value


@pytest.mark.parametrize("expression", ["exp(log(x))", "x/x + y", "sqrt(x)^2 * log(x, 2)",
                                        "where(not (log(x) > 0), x*y, y/x)", "x^y + 0*log(x)"])
def test_symbolic_formulas_parse_back_and_agree_where_defined(run: Any,
                                                              expression: str) -> None:
    """Where a number and its formula are both defined (finite), they agree; inside the
    domain both always are. (At x = 0, d/dy x^y is 0 by JAX's convention, while SymPy's
    formula x^y*log(x) is NaN there.)"""
    points = {"x": [1.7, 0.3, -1.0, 0.0, 2.0], "y": [0.5, -2.0, 1.5, 2.0, 0.0]}
    out = run(expression=expression, variables={"x": [], "y": []}, points=points,
              derivatives=["value", "gradient", "symbolic"])
    texts = [out["symbolic"]["value"], *out["symbolic"]["gradient"]]
    again = run(expression=texts, variables={"x": [], "y": []}, points=points,
                derivatives=["value"])["value"]
    expected = np.column_stack([out["value"], out["gradient"]])
    defined = np.isfinite(expected) & np.isfinite(again)
    assert defined[:2].all()  # the first two points are inside every domain
    np.testing.assert_allclose(again[defined], expected[defined], rtol=1e-12, atol=1e-12)


def test_the_graph_shows_a_division_as_one_node(run: Any) -> None:
    body = run(expression="x/y", at={"x": 3.0, "y": 2.0},
               derivatives=["value", "gradient", "explain"])
    nodes = body["graph"]["nodes"]
    (division,) = [n for n in nodes if n["op"] == "div"]
    assert division["params"] == [1] and division["value"] == 1.5
    names = [nodes[i]["name"] for i in division["inputs"]]
    assert names == ["x", "y"]
    adjoints = {n["name"]: n["adjoint"] for n in nodes if n["op"] == "variable"}
    assert [adjoints["x"], adjoints["y"]] == pytest.approx(body["gradient"].tolist())
