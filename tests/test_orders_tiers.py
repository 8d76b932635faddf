"""Past the Hessian on both tiers where both serve: a gradient check's own evaluations (value
and gradient at a batch of points) run on the first tier or on XLA, and agree with the
closed form either way; every OpenAPI example of /v1/implicit answers 200."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from schemas.orders import IMPLICIT_EXAMPLES
from tests.inprocess import InProcess


def test_check_on_both_tiers(run: Any) -> None:
    """f = x y^3 + exp(x): the gradient [y^3 + exp(x), 3 x y^2], written here."""
    body = run(expression="x*y^3 + exp(x)", at={"x": 0.4, "y": -1.2},
               check={"gradient": ["y^3 + exp(x)", "3*x*y^2"]}, derivatives=["value"])
    x, y = 0.4, -1.2
    closed = [y**3 + np.exp(x), 3 * x * y**2]
    np.testing.assert_allclose(body["check"]["gradient"]["finite_difference"], closed,
                               rtol=1e-9)
    assert body["check"]["agrees"] is True
    assert body["check"]["claimed"]["agrees"] is True


@pytest.fixture(scope="module")
def nabla(event_loop_thread: asyncio.AbstractEventLoop) -> Iterator[InProcess]:
    app = InProcess(event_loop_thread)
    yield app
    app.close()


@pytest.mark.parametrize("name", sorted(IMPLICIT_EXAMPLES))
def test_implicit_examples_answer(nabla: InProcess, name: str) -> None:
    response = nabla.request("POST", "/v1/implicit", json=IMPLICIT_EXAMPLES[name]["value"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert ("derivatives" in body) != ("gradient" in body)
