"""The two tiers: jets answer a new expression at once, XLA takes over once compiled.

Both tiers are checked against SymPy by every test that uses the ``run`` fixture; here
they are checked against each other, and the hand-over between them.
"""

from __future__ import annotations

import asyncio
import math
import re
import threading
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.config import Settings
from app.service.pipeline import Service
from schemas.differentiate import DifferentiateRequest
from tests.conftest import run_async
from tests.test_numerics import NAMES, Pair, expressions


def request(**body: Any) -> DifferentiateRequest:
    return DifferentiateRequest.model_validate(body)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pair=expressions, points=st.lists(st.tuples(*[st.floats(-2, 2)] * 3), min_size=1,
                                         max_size=5))
def test_jets_and_xla_agree(xla_differentiator: Service,
                            jets_differentiator: Service,
                            event_loop_thread: asyncio.AbstractEventLoop,
                            pair: Pair, points: list[tuple[float, ...]]) -> None:
    body = {"expression": pair[0], "variables": {n: [] for n in NAMES},
            "points": {n: [p[i] for p in points] for i, n in enumerate(NAMES)}}

    def run(d: Service) -> dict[str, Any]:
        future = asyncio.run_coroutine_threadsafe(d.run(request(**body)), event_loop_thread)
        return future.result()

    xla, jets = run(xla_differentiator), run(jets_differentiator)
    for field in ("value", "gradient", "hessian"):
        np.testing.assert_allclose(jets[field], xla[field], rtol=1e-12, atol=1e-12)
    assert jets.get("nonfinite") == xla.get("nonfinite")


def test_first_request_by_jets_then_xla_takes_over() -> None:
    differentiator = Service(Settings(in_process=True, interpret=True))
    body = {"expression": "x^3 * y + atan2(y, x)", "at": {"x": 1.5, "y": -0.5}}

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], int, int]:
        first = await differentiator.run(request(**body))
        await differentiator.engine.drain()
        assert len(differentiator.cache) == 0  # answered once: not compiled
        await differentiator.run(request(**body))  # requested again: hot
        assert differentiator.cache.hits == 0
        await differentiator.engine.drain()  # the background compile
        second = await differentiator.run(request(**body))
        return first, second, differentiator.cache.hits, len(differentiator.cache)

    first, second, hits, entries = run_async(scenario())
    assert entries == 1 and hits == 1  # the second answer came from the XLA executable
    for field in ("value", "gradient", "hessian"):
        np.testing.assert_allclose(first[field], second[field], rtol=1e-13)


def test_nodes_without_jet_rules_go_to_xla() -> None:
    differentiator = Service(Settings(in_process=True, interpret=True))
    out = run_async(differentiator.run(request(expression="x + diracdelta(x)", at={"x": 2.0})))
    assert differentiator.cache.misses == 1  # compiled, not interpreted
    assert out["value"] == 2.0


def test_big_problems_skip_the_first_tier() -> None:
    differentiator = Service(Settings(in_process=True, interpret=True))
    body = {"expression": "sum(x^2)", "variables": {"x": [300]}, "at": {"x": [1.0] * 300}}
    out = run_async(differentiator.run(request(**body)))
    assert differentiator.cache.misses == 1
    assert out["value"] == 300.0


def test_the_first_tier_takes_a_program_by_its_nodes_not_by_its_names_length() -> None:
    """A 100-variable Rosenbrock is 3,829 characters with names x0..x99, 4,126 with qv0..qv99:
    the same 1,783 nodes. A limit of 4,000 characters sent the second to XLA (3 s)."""
    n = 100
    names = [f"qv{i}" for i in range(n)]
    text = " + ".join(f"(1 - {names[i]})**2 + 100*({names[i + 1]} - {names[i]}**2)**2"
                      for i in range(n - 1))
    assert len(text) > 4_000
    x = [0.5 + 0.01 * i for i in range(n)]
    differentiator = Service(Settings(in_process=True, interpret=True))

    async def scenario() -> tuple[dict[str, Any], int]:
        out = await differentiator.run(request(
            expression=text, variables={v: [] for v in names}, at=dict(zip(names, x, strict=True)),
            derivatives=["value", "gradient"]))
        await differentiator.engine.drain()
        return out, len(differentiator.cache)

    out, compiled = run_async(scenario())
    assert compiled == 0  # answered by the first tier, not compiled
    value = math.fsum((1 - x[i]) ** 2 + 100 * (x[i + 1] - x[i] ** 2) ** 2 for i in range(n - 1))
    gradient = [0.0] * n
    for i in range(n - 1):  # the closed form, term by term
        gradient[i] += -2 * (1 - x[i]) - 400 * x[i] * (x[i + 1] - x[i] ** 2)
        gradient[i + 1] += 200 * (x[i + 1] - x[i] ** 2)
    assert out["value"] == pytest.approx(value, rel=1e-13)
    np.testing.assert_allclose(out["gradient"], gradient, rtol=1e-12, atol=1e-12)


KINKS = ["sqrt(x)", "abs(x)", "log(x)", "x^0.5", "1/x", "x^1.5", "cbrt(x)", "relu(x)",
         "max(x, 0)", "max(x, x)", "sign(x)*x", "norm(v)", "max(v)", "min(v)", "sqrt(x)*0",
         "x^0", "0^x", "x^x", "2^x", "atan2(x, x)", "log(x^2)", "exp(1000*x)", "prod(v)",
         "heaviside(x)", "floor(x)", "where(x > 0, log(x), 0)", "acosh(x)", "asin(x)",
         "acos(x)", "x/x", "erf(x)", "softplus(x)", "sigmoid(x)", "tan(x)", "log1p(x)",
         "expm1(x)", "mean(v)", "dot(v, v)", "v[0]*v[1]", "sum(v^2)^0.5",
         # issue 11's functions
         "sec(x)", "csc(x)", "cot(x)", "asec(x)", "acsc(x)", "acot(x)", "sinc(x)", "sinc(x/2)",
         "ln(x)", "exp2(x)", "pow(x, x)", "hypot(x, x)", "hypot(x, 0)", "hypot(x, 1e-200)",
         "logaddexp(x, 0)", "logaddexp(x, 2*x)", "erfinv(x)", "digamma(x)", "beta(x, 2)",
         "factorial(x)", "binomial(x + 2, 2)", "binomial(x, x)", "i0(x)", "i1(x)", "i0e(x)",
         "i1e(x)", "round(x)", "round(x + 0.5)", "trunc(x)", "mod(x, 1)", "x % 2", "mod(1, x)",
         "clip(x, -1, 1)", "clip(x, 0, 0)", "logsumexp(v)", "sum(softmax(v)*v)",
         "logsumexp(v*1000)"]


@pytest.mark.parametrize("point", [0.0, 1.0, -1.0])
@pytest.mark.parametrize("expression", KINKS)
def test_tiers_agree_at_kinks_and_edges(xla_differentiator: Service,
                                        jets_differentiator: Service,
                                        event_loop_thread: asyncio.AbstractEventLoop,
                                        expression: str, point: float) -> None:
    """Where JAX has a convention (abs'(0) = 1, d/db 0^b = 0, ...) the jets follow it; the
    non-finite results are the same too. (At poles, such as gamma(0) or atanh(1), both
    report non-finite numbers, possibly of different kinds: those are not listed here.)"""
    vector = re.search(r"\bv\b", expression) is not None
    body = {"expression": expression, "at": {"v": [point, point]} if vector else {"x": point}}

    def run(d: Service) -> dict[str, Any]:
        future = asyncio.run_coroutine_threadsafe(d.run(request(**body)), event_loop_thread)
        return future.result()

    xla, jets = run(xla_differentiator), run(jets_differentiator)
    for field in ("value", "gradient", "hessian"):
        np.testing.assert_allclose(jets[field], xla[field], rtol=1e-12, atol=0)
    assert jets.get("nonfinite") == xla.get("nonfinite")


def test_small_programs_are_interpreted_on_the_event_loop_big_ones_in_a_thread(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from app.engine import tiers

    threads: list[int] = []
    real = tiers.interpret

    def recording(*args: Any) -> Any:
        threads.append(threading.get_ident())
        return real(*args)

    monkeypatch.setattr(tiers, "interpret", recording)
    differentiator = Service(Settings(in_process=True, interpret=True))
    differentiator.engine.compile_later = lambda spec: None  # type: ignore[method-assign]
    big = " + ".join(f"sin(x{i}) * x{i + 1}" for i in range(40))

    async def scenario() -> tuple[int, list[dict[str, Any]]]:
        return threading.get_ident(), [
            await differentiator.run(request(expression="x*y + 0.25", at={"x": 2.0, "y": 3.0})),
            await differentiator.run(request(expression=big,
                                             at={f"x{i}": 0.5 for i in range(41)}))]

    loop_thread, (small, large) = run_async(scenario())
    assert threads[0] == loop_thread and threads[1] != loop_thread
    assert small["value"] == 6.25 and small["gradient"] == pytest.approx([3.0, 2.0])
    assert large["value"] == pytest.approx(40 * np.sin(0.5) * 0.5, rel=1e-14)
