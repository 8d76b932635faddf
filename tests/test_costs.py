"""Costs bounded before the work: a compile bomb is refused at once by its estimate, a long
but cheap product is answered (by the first tier) with its numbers, an answer's size is
checked before anything is parsed, and answers being made at once share a budget of bytes."""

from __future__ import annotations

import random
from typing import Any

import httpx
import mpmath
import numpy as np
import pytest

from app.config import Limits, Settings
from app.engine import engine as engine_module
from app.engine.compilation import CompileSpec, build_program
from app.engine.costs import compile_seconds, hopeless, program_cost
from app.engine.planning import Policy, parse_and_plan, plan
from app.engine.xla import KINDS
from app.errors import NablaError, TooComplex
from app.language import syntax
from app.main import create_app
from app.service.pipeline import Service
from schemas.differentiate import DifferentiateRequest
from tests.conftest import run_async
from tests.test_isolation import BOMB

FACTORS, VARIABLES = 500, 10
CHEAP = " * ".join(f"(1 + x{i % VARIABLES}/{i + 1})" for i in range(FACTORS))
SEED = 20261127


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> list[CompileSpec]:
    """Every compile XLA is asked for (none is made: each would take minutes)."""
    asked: list[CompileSpec] = []

    def refuse(spec: CompileSpec, *args: Any) -> Any:
        asked.append(spec)
        raise AssertionError("XLA was asked to compile")

    monkeypatch.setattr(engine_module, "compile_spec", refuse)
    return asked


def request(expression: str, n: int, **extra: Any) -> DifferentiateRequest:
    return DifferentiateRequest.model_validate(
        {"expression": expression, "at": {f"x{i}": 0.1 for i in range(n)}, **extra})


def test_a_compile_bomb_is_refused_at_once_by_its_estimate(compiles: list[CompileSpec]) -> None:
    service = Service(Settings(in_process=True))
    with pytest.raises(NablaError) as refused:
        run_async(service.run(request(BOMB, 25)))
    problem = refused.value.problem()
    assert (problem["status"], problem["code"]) == (422, "too_complex")
    assert problem["limit"] == "compile_timeout_seconds" and problem["limit_value"] == 20
    assert problem["estimated_seconds"] > 2 * 20
    assert "estimate" in problem["detail"]
    assert compiles == []


def test_a_refusal_is_made_where_the_text_is_read() -> None:
    policy = Policy(budget=20.0, interpret=True)
    with pytest.raises(TooComplex):  # in the worker: the bomb's trees never reach the server
        parse_and_plan(CompileSpec((BOMB,), False, None, (), KINDS, None, 1), Limits(), policy)
    values = CompileSpec((BOMB,), False, None, (), ("value",), None, 1)
    assert plan(values, parse_and_plan(values, Limits(), policy), policy) == "xla"


def closed_form(x: list[float]) -> tuple[Any, list[Any], list[list[Any]]]:
    """The product, its gradient and Hessian at ``x``, at 40 digits: with k_i = i + 1,
    d/dx_j log f = sum over i of x_j's factors of 1/(k_i + x_j)."""
    mpmath.mp.dps = 40
    xs = [mpmath.mpf(v) for v in x]
    value = mpmath.fprod(1 + xs[i % VARIABLES] / (i + 1) for i in range(FACTORS))
    first = [mpmath.fsum(1 / (i + 1 + xs[j]) for i in range(j, FACTORS, VARIABLES))
             for j in range(VARIABLES)]
    second = [mpmath.fsum(1 / (i + 1 + xs[j]) ** 2 for i in range(j, FACTORS, VARIABLES))
              for j in range(VARIABLES)]
    gradient = [value * g for g in first]
    hessian = [[value * (first[j] * first[k] - (second[j] if j == k else 0))
                for k in range(VARIABLES)] for j in range(VARIABLES)]
    return value, gradient, hessian


def test_a_long_cheap_product_is_answered_with_its_numbers(compiles: list[CompileSpec]) -> None:
    rng = random.Random(SEED)
    x = [rng.uniform(-0.9, 2.0) for _ in range(VARIABLES)]
    service = Service(Settings(in_process=True))
    body = run_async(service.run(DifferentiateRequest.model_validate(
        {"expression": CHEAP, "at": {f"x{i}": v for i, v in enumerate(x)}})))
    run_async(service.engine.drain())
    value, gradient, hessian = closed_form(x)
    assert body["value"] == pytest.approx(float(value), rel=1e-12)
    np.testing.assert_allclose(body["gradient"], [float(g) for g in gradient], rtol=1e-12)
    np.testing.assert_allclose(body["hessian"], [[float(h) for h in row] for row in hessian],
                               rtol=1e-11, atol=1e-12 * float(abs(value)))
    assert compiles == []  # not now, nor in the background: XLA would take minutes


def estimate(expression: str) -> float:
    spec = CompileSpec((expression,), False, None, (), KINDS, None, 1)
    return compile_seconds(program_cost(build_program(spec, Limits()).exprs), KINDS)


def test_the_estimate_admits_the_contracts_workloads_and_grows_with_products() -> None:
    rosenbrock = " + ".join(f"100*(x{i + 1} - x{i}^2)^2 + (1 - x{i})^2" for i in range(99))
    assert not hopeless(estimate(rosenbrock), 20.0)  # docs/api-v1.md promises it
    assert not hopeless(estimate("sin(x) * y + exp(z)"), 1.0)
    product = [estimate(" * ".join(f"(1 + x{i % 10}/{i + 1})" for i in range(k)))
               for k in (100, 200)]
    assert 3 < product[1] / product[0] < 4.5  # Hessians of products: about k^2
    assert hopeless(estimate(BOMB), 20.0) and hopeless(estimate(CHEAP), 20.0)


GRID = {"expression": "x*y*z*w", "grid": {v: {"start": 0, "stop": 1, "num": 31}
                                          for v in "xyzw"}}


def test_an_answer_too_big_is_refused_before_anything_is_parsed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    class Refusing:
        def parse(self, text: str) -> Any:
            raise AssertionError("parsed")

    monkeypatch.setattr(syntax, "_PARSER", Refusing())
    service = Service(Settings(in_process=True))
    with pytest.raises(NablaError) as refused:  # 31^4 points x 21 numbers: 289 MB of JSON
        run_async(service.run(DifferentiateRequest.model_validate(GRID)))
    problem = refused.value.problem()
    assert (problem["status"], problem["code"]) == (422, "limit_exceeded")
    assert problem["limit"] == "max_response_bytes" and problem["limit_value"] == 64 * 2**20


def post(app: Any, body: dict[str, Any], accept: str = "application/json") -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://nabla") as client:
            return await client.post("/v1/differentiate", json=body, headers={"accept": accept})

    response: httpx.Response = run_async(go())
    return response


def test_messagepack_answers_may_hold_more_numbers_than_json() -> None:
    app = create_app(Settings(in_process=True, max_response_bytes=1_000_000))
    body = {"expression": "x*y + z", "grid": {"x": {"start": 0, "stop": 1, "num": 17},
                                              "y": {"start": 0, "stop": 1, "num": 17},
                                              "z": {"start": 0, "stop": 1, "num": 16}}}
    # 4,624 points x 13 numbers: 1.44 MB of JSON at 24 bytes a number, 541 kB at 9
    refused = post(app, body)
    assert refused.status_code == 422 and refused.json()["limit"] == "max_response_bytes"
    assert post(app, body, accept="application/msgpack").status_code == 200


def test_answers_being_made_at_once_share_a_budget_of_bytes() -> None:
    app = create_app(Settings(in_process=True, max_response_bytes_in_flight=10_000))
    budget = app.state.service.output_bytes
    assert budget.take(9_000)  # as if other requests were being answered
    body = {"expression": "x^2", "points": {"x": list(range(100))}}  # 200 numbers, 4,800 B
    busy = post(app, body)
    assert busy.status_code == 503 and busy.json()["code"] == "output_budget_full"
    assert busy.headers["content-type"] == "application/problem+json"
    assert int(busy.headers["retry-after"]) >= 1
    budget.give(9_000)
    assert post(app, body).status_code == 200
    assert budget.in_use == 0  # given back once answered
