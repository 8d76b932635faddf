"""Gradient checks (a known-wrong derivative is caught, a right one accepted) and implicit
differentiation against SymPy's ``idiff`` at 30 digits; both over HTTP too."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import sympy

from app.errors import InputError
from app.service.pipeline import Service
from schemas.orders import ImplicitResponse
from tests.conftest import answering
from tests.inprocess import InProcess

X, Y, Z = sympy.symbols("x y z", real=True)


@pytest.fixture(scope="module")
def run(xla_differentiator: Service, event_loop_thread: asyncio.AbstractEventLoop) -> Any:
    """A request as a dict, answered by the XLA tier in process, its answer checked."""
    return answering(xla_differentiator, event_loop_thread)


# -- gradient checks -------------------------------------------------------------------------

def test_nabla_s_own_gradient_and_hessian_agree(run: Any) -> None:
    check = run(expression="exp(x)*sin(y) + x^3/y", at={"x": 0.7, "y": 1.3}, check={},
                derivatives=["value"])["check"]
    assert check["agrees"] is True
    assert check["gradient"]["agree"] == [True, True]
    assert np.max(check["gradient"]["error"]) < 1e-8
    assert np.max(check["hessian"]["error"]) < 1e-7
    # the referee is independent: the closed form of the gradient, written here
    x, y = 0.7, 1.3
    closed = [np.exp(x) * np.sin(y) + 3 * x**2 / y, np.exp(x) * np.cos(y) - x**3 / y**2]
    np.testing.assert_allclose(check["gradient"]["finite_difference"], closed, rtol=1e-9)
    for rate in check["taylor"]:
        assert rate["rate"] is not None and abs(rate["rate"] - 2) < 0.2, rate


@pytest.mark.parametrize(("claimed", "wrong"), [
    (["2*x*y^2 + cos(x)", "2*x^2*y"], None),
    (["2*x*y^2 - cos(x)", "2*x^2*y"], "x"),  # a sign
    (["2*x*y^2 + cos(x)", "2*x^2*y + 1e-3"], "y"),  # off by 1e-3
    (["x*y^2 + cos(x)", "2*x^2*y"], "x"),  # the power rule forgotten
], ids=["right", "wrong-sign", "slightly-off", "power-rule"])
def test_check_my_answer(run: Any, claimed: list[str], wrong: str | None) -> None:
    """A claimed gradient of x^2 y^2 + sin(x): a right one is accepted, a wrong one caught,
    and the Taylor test's rate is 1 along the wrong coordinate and 2 along the right one."""
    body = run(expression="x^2*y^2 + sin(x)",
               points=[{"x": 1.5, "y": -2}, {"x": -0.3, "y": 0.8}],
               check={"gradient": claimed}, derivatives=["value"])
    mine = body["check"]["claimed"]
    assert mine["agrees"] is (wrong is None)
    assert mine["points"] == [wrong is None] * 2
    assert body["check"]["agrees"] is True  # nabla's own gradient is right
    for point in mine["taylor"]:
        rates = {r["direction"]: r for r in point}
        for name in ("x", "y"):
            expected = 1.0 if name == wrong else 2.0
            assert abs(rates[name]["rate"] - expected) < 0.25, (name, rates[name])
            assert rates[name]["agrees"] is (name != wrong)


def test_a_claim_right_at_some_points_only(run: Any) -> None:
    """d/dx x^3 is 3x^2; the claim 3x agrees where x = 0 or 1, and nowhere else."""
    body = run(expression="x^3", points={"x": [0.0, 1.0, 2.0, -1.0]},
               check={"gradient": ["3*x"]}, derivatives=["value"])
    assert body["check"]["claimed"]["points"] == [True, True, False, False]


def test_a_linear_direction_is_flat_not_wrong(run: Any) -> None:
    check = run(expression="3*x + y^2", at={"x": 1, "y": 2}, check={},
                derivatives=["value"])["check"]
    rates = {r["direction"]: r for r in check["taylor"]}
    assert rates["x"]["rate"] is None and rates["x"]["agrees"] is True
    assert abs(rates["y"]["rate"] - 2) < 0.1


def test_a_claim_of_the_wrong_length_is_refused(run: Any) -> None:
    with pytest.raises(InputError, match="give 2"):
        run(expression="x*y", at={"x": 1, "y": 2}, check={"gradient": ["y"]})


def test_check_of_a_vector_f_is_refused(run: Any) -> None:
    with pytest.raises(InputError, match="scalar f"):
        run(expression=["x", "y"], at={"x": 1, "y": 2}, check={})


@pytest.mark.parametrize("x", [-1.7976931348623157e308, 1e301])
def test_a_check_where_its_steps_would_overflow_is_refused(run: Any, x: float) -> None:
    """Found by the property test: x + h overflowed (a 500 under warnings as errors)."""
    with pytest.raises(InputError, match="at most 1e\\+300") as caught:
        run(expression="x", points=[{"x": x}], derivatives=["value"], check={})
    assert caught.value.code == "check_out_of_range"


@pytest.mark.parametrize("expression", ["sqrt(x) + y", "log(x)*y", "x*y/0"])
def test_a_check_where_f_is_not_finite_says_it_does_not_agree(run: Any,
                                                              expression: str) -> None:
    """Found by the property test: inf * 0 in the Taylor test was a 500 under warnings as
    errors; IEEE gives NaN, and the check says it does not agree."""
    out = run(expression=expression, at={"x": 0.0, "y": 1.0}, derivatives=["value"], check={})
    assert out["check"]["agrees"] is False


def test_a_check_at_1e300_is_computed(run: Any) -> None:
    out = run(expression="x*y", at={"x": 1e300, "y": 2.0}, derivatives=["value"], check={})
    assert out["check"]["gradient"]["agree"] == [True, True]


# -- implicit differentiation ---------------------------------------------------------------

@pytest.fixture(scope="module")
def nabla(event_loop_thread: asyncio.AbstractEventLoop) -> Iterator[InProcess]:
    app = InProcess(event_loop_thread)
    yield app
    app.close()


def implicit(nabla: InProcess, **body: Any) -> httpx.Response:
    response = nabla.request("POST", "/v1/implicit", json=body)
    if response.status_code == 200:
        ImplicitResponse.model_validate_json(response.content, strict=True)
    return response


def exact(expr: sympy.Expr, at: dict[sympy.Symbol, float]) -> float:
    return float(sympy.N(expr.subs({s: sympy.Float(v, 30) for s, v in at.items()}), 30))


@pytest.mark.parametrize(("equation", "F", "at", "order"), [
    ("x^2 + y^2 = 1", X**2 + Y**2 - 1, {"x": 0.6, "y": 0.8}, 4),
    ("exp(x*y) + y = 2", sympy.exp(X * Y) + Y - 2, {"x": 0.0, "y": 1.0}, 5),
    ("y^3 + x*y = sin(x) + 2", Y**3 + X * Y - sympy.sin(X) - 2, None, 3),
    ("x*cos(y) = y - 1", X * sympy.cos(Y) - Y + 1, {"x": 0.0, "y": 1.0}, 4),
], ids=["circle", "exp", "cubic", "cos"])
def test_implicit_derivatives_match_idiff(nabla: InProcess, equation: str, F: sympy.Expr,
                                          at: dict[str, float] | None, order: int) -> None:
    if at is None:  # a point on the curve: y solved at x = 0.5 to 30 digits
        y0 = sympy.nsolve(F.subs(X, sympy.Rational(1, 2)), Y, 1.2, prec=30)
        at = {"x": 0.5, "y": float(y0)}
    response = implicit(nabla, equation=equation, dependent="y", at=at, order=order)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["coordinates"] == ["x"]
    point = {X: at["x"], Y: at["y"]}
    for j in range(1, order + 1):
        want = exact(sympy.idiff(F, Y, X, j), point)
        got = body["derivatives"][j - 1]
        assert abs(got - want) <= 1e-7 * max(1.0, abs(want)), (equation, j, got, want)
    if order <= 4:  # the formulas, posted back, give idiff's numbers too
        for j, text in enumerate(body["symbolic"]["derivatives"], start=1):
            value = nabla.post(
                ("{" + f'"expression": "{text}", "at": {{"x": {at["x"]!r}, "y": {at["y"]!r}}},'
                 ' "derivatives": ["value"]' + "}").encode()).json()["value"]
            want = exact(sympy.idiff(F, Y, X, j), point)
            assert abs(value - want) <= 1e-9 * max(1.0, abs(want)), (text, value, want)


def test_implicit_surface_gradient_and_hessian(nabla: InProcess) -> None:
    """x^2 + y^2 + z^2 = 3 at (1, 1, 1): z = sqrt(3 - x^2 - y^2), so z_x = -x/z,
    z_xx = -(x^2 + z^2)/z^3, z_xy = -x y / z^3."""
    response = implicit(nabla, equation="x^2 + y^2 + z^2 = 3", dependent="z",
                        at={"x": 1, "y": 1, "z": 1})
    body = response.json()
    assert body["coordinates"] == ["x", "y"]
    np.testing.assert_allclose(body["gradient"], [-1, -1], rtol=1e-12)
    np.testing.assert_allclose(body["hessian"], [[-2, -1], [-1, -2]], rtol=1e-9)
    z = sympy.sqrt(3 - X**2 - Y**2)
    for i, a in enumerate((X, Y)):
        for j, b in enumerate((X, Y)):
            assert abs(body["hessian"][i][j] - exact(sympy.diff(z, a, b), {X: 1, Y: 1})) < 1e-9
    assert body["symbolic"]["gradient"] == ["-x/z", "-y/z"]


@pytest.mark.parametrize(("body", "code"), [
    ({"equation": "x^2 + y^2 = 1", "dependent": "y", "at": {"x": 0.6, "y": 0.7}},
     "not_on_curve"),
    ({"equation": "x^2 + y^2 = 1", "dependent": "y", "at": {"x": 1, "y": 0}}, "singular_point"),
    ({"equation": "x^2 + y^2 == 1", "dependent": "y", "at": {"x": 1, "y": 0}}, "bad_equation"),
    ({"equation": "x = y = 1", "dependent": "y", "at": {"x": 1, "y": 0}}, "bad_equation"),
    ({"equation": " = 1", "dependent": "y", "at": {"x": 1, "y": 0}}, "bad_equation"),
    ({"equation": "x + y = 1", "dependent": "z", "at": {"x": 1, "y": 0}}, "bad_dependent"),
    ({"equation": "y = 1", "dependent": "y", "at": {"y": 1}}, "bad_dependent"),
    ({"equation": "x + y = q", "dependent": "y", "at": {"x": 1, "y": 0}}, "invalid_point"),
    ({"equation": "x + y = 1", "dependent": "y", "at": {"x": 1, "y": 0}, "order": 11},
     "limit_exceeded"),
], ids=["off-curve", "dF/dy=0", "no-lone-equals", "two-equals", "empty-side",
        "dependent-not-in-at", "no-independent", "unknown-name", "order-over-limit"])
def test_implicit_refusals(nabla: InProcess, body: dict[str, Any], code: str) -> None:
    response = implicit(nabla, **body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code


def test_implicit_syntax_error_points_into_the_equation(nabla: InProcess) -> None:
    """Each side is read alone: the position is the equation's own, and parentheses cannot
    pair across the '='."""
    response = implicit(nabla, equation="x^2 + y^2 = sin(", dependent="y",
                        at={"x": 1, "y": 0})
    assert response.status_code == 422
    assert response.json()["position"] >= len("x^2 + y^2 = ")
    response = implicit(nabla, equation="x) + (y = 1", dependent="y", at={"x": 1, "y": 0})
    assert response.status_code == 422 and response.json()["position"] == 1


# -- over HTTP, a real server --------------------------------------------------------------

def test_orders_taylor_check_and_implicit_over_http(api: httpx.Client) -> None:
    r = api.post("/v1/differentiate", json={"expression": "x^3*y^2", "at": {"x": 2, "y": 3},
                                            "order": 4, "derivatives": ["value"]})
    assert r.status_code == 200, r.text
    assert r.json()["tensors"]["4"][0][0][1][1] == 24.0  # d4/dx2dy2 x^3 y^2 = 12x
    r = api.post("/v1/differentiate", json={"expression": "sin(x)", "at": {"x": 0},
                                            "taylor": {"order": 3}, "derivatives": ["value"]})
    assert r.json()["taylor"]["polynomial"].startswith("x - 0.166666666666666")
    r = api.post("/v1/differentiate", json={"expression": "x^2", "at": {"x": 3},
                                            "check": {"gradient": ["x"]},
                                            "derivatives": ["value"]})
    assert r.json()["check"]["claimed"]["agrees"] is False
    r = api.post("/v1/implicit", json={"equation": "x^2 + y^2 = 1", "dependent": "y",
                                       "at": {"x": 0.6, "y": 0.8}})
    assert r.status_code == 200 and abs(r.json()["derivatives"][0] + 0.75) < 1e-12
    r = api.post("/v1/differentiate", json={"expression": "sum(v^2)", "variables": {"v": [20]},
                                            "at": {"v": [0.0] * 20}, "order": 4})
    assert r.status_code == 422 and r.json()["limit"] == "max_tensor_entries"
    r = api.get("/v1/plot", params={"expression": "sin(x)", "start": 0, "stop": 3,
                                    "order": 4, "taylor_at": 1})
    assert r.status_code == 200
    assert 'data-label="f⁽⁴⁾"' in r.text and 'data-label="T4 at 1"' in r.text
