"""JVP and VJP against the Jacobian, batched, with the tangent and cotangent as run-time
inputs (one compiled program serves every vector)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

RNG = np.random.default_rng(5)


@pytest.mark.parametrize("expression, point", [
    (["x*y", "x + y^2", "sin(x)*exp(y)"], {"x": 0.7, "y": -0.3}),
    ("sin(x) * y", {"x": [0.1, 0.5, 2.0], "y": 1.5}),
    ("dot(x, x) + y^3", {"x": [1.0, -2.0], "y": 0.5}),
], ids=["list", "elementwise", "scalar"])
def test_products_match_the_jacobian(run: Any, expression: Any, point: Any) -> None:
    full = run(expression=expression, at=point, derivatives=["value", "gradient"])
    jacobian = np.atleast_2d(full.get("jacobian", full.get("gradient")))
    m, n = jacobian.shape
    tangent, cotangent = RNG.normal(size=n), RNG.normal(size=m)
    body = run(expression=expression, at=point, derivatives=["jvp", "vjp"],
               tangent=tangent.tolist(), cotangent=cotangent.tolist())
    np.testing.assert_allclose(np.atleast_1d(body["jvp"]), jacobian @ tangent, rtol=1e-12)
    np.testing.assert_allclose(body["vjp"], cotangent @ jacobian, rtol=1e-12)
    assert np.shape(body["jvp"]) == np.shape(full["value"])


def test_default_cotangent_is_what_backward_leaves_in_grad(run: Any) -> None:
    # y = x * x; y.backward(torch.ones_like(y)); x.grad == 2 * x, the gradient of sum(y)
    body = run(expression="x * x", at={"x": [0, 1, 2, 3]}, derivatives=["value", "vjp"])
    assert body["vjp"].tolist() == [0.0, 2.0, 4.0, 6.0]
    summed = run(expression="sum(x * x)", at={"x": [0, 1, 2, 3]}, derivatives=["gradient"])
    assert body["vjp"].tolist() == summed["gradient"].tolist()


def test_scalar_cotangent_may_be_a_number(run: Any) -> None:
    body = run(expression="x^2 * y", at={"x": 3, "y": 2}, derivatives=["vjp"], cotangent=0.5)
    assert body["vjp"].tolist() == [6.0, 4.5]


def test_products_are_batched(run: Any) -> None:
    xs = np.array([0.0, 0.5, 1.0, 1.5, 2.0])
    body = run(expression=["sin(x) * y", "x * y"], points={"x": xs.tolist(), "y": [2] * 5},
               derivatives=["gradient", "jvp", "vjp"],
               tangent=[1, 0], cotangent=[1, 1])
    jacobians = np.asarray(body["jacobian"])
    assert np.shape(body["jvp"]) == (5, 2)
    assert np.shape(body["vjp"]) == (5, 2)
    np.testing.assert_allclose(body["jvp"], jacobians[:, :, 0], rtol=1e-12)
    np.testing.assert_allclose(body["vjp"], jacobians.sum(axis=1), rtol=1e-12)


def test_new_vectors_reuse_the_compiled_program(run: Any, differentiator: Any) -> None:
    request = {"expression": "exp(x) * y", "at": {"x": 1, "y": 2}, "derivatives": ["jvp"]}
    first = run(**request, tangent=[1, 0])
    misses = differentiator.cache.misses
    second = run(**request, tangent=[0, 1])
    assert differentiator.cache.misses == misses
    assert first["jvp"] == pytest.approx(2 * np.e)
    assert second["jvp"] == pytest.approx(np.e)
