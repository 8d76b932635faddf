"""d2l's f(a) with a while loop and an if, written in the expression language (the loop
count in closed form): its value matches the Python loop, and its gradient is f(a)/a."""

from __future__ import annotations

from typing import Any

import pytest

DOUBLINGS = "max(ceil(log2(500/abs(a))), 0)"
F_OF_A = f"where(a > 0, 2*a*2^{DOUBLINGS}, 200*a*2^{DOUBLINGS})"


def f_loop(a: float) -> float:
    """The chapter's function, for a scalar a (norm is abs, sum is the value)."""
    b = a * 2
    while abs(b) < 1000:
        b = b * 2
    return b if b > 0 else 100 * b


A_VALUES = [0.3, -0.7, 1.5e-3, 12.0, -999.0, 600.0, -2e-5, 0.1234, 3.7e4, -1.0e-9]


@pytest.mark.parametrize("a", A_VALUES)
def test_value_and_gradient_match_the_loop(run: Any, a: float) -> None:
    body = run(expression=F_OF_A, at={"a": a}, derivatives=["value", "gradient", "hessian"])
    expected = f_loop(a)
    assert body["value"] == pytest.approx(expected, rel=1e-15)
    assert body["gradient"][0] == pytest.approx(expected / a, rel=1e-12)
    assert body["hessian"][0][0] == 0.0


def test_batch_and_vjp_agree(run: Any) -> None:
    body = run(expression=F_OF_A, points={"a": A_VALUES}, derivatives=["gradient", "vjp"])
    for a, gradient, vjp in zip(A_VALUES, body["gradient"], body["vjp"], strict=True):
        assert gradient[0] == pytest.approx(f_loop(a) / a, rel=1e-12)
        assert vjp[0] == gradient[0]


def test_the_documented_example(run: Any) -> None:
    body = run(expression=F_OF_A, at={"a": 0.3}, derivatives=["value", "gradient"])
    assert body["value"] == pytest.approx(1228.8, rel=1e-15)
    assert body["gradient"].tolist() == [4096.0]
