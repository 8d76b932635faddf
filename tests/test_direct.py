"""POST /v1/differentiate answered in front of the router (app.api.direct) gives exactly
what the route gives: the same status, headers that matter and bytes, for answers and for
every kind of problem; the metrics still label it by its route."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import ormsgpack
import pytest
from fastapi import FastAPI
from starlette.requests import ClientDisconnect

from app.api.direct import DirectRoute
from app.config import Settings
from app.main import create_app
from tests.conftest import run_async

CASES: dict[str, tuple[bytes, dict[str, str]]] = {
    "answer": (orjson.dumps({"expression": "x^2*y + sin(z)*x",
                             "at": {"x": 0.5, "y": 1.5, "z": 2.0}}), {}),
    "vector": (orjson.dumps({"expression": "sum(x^3)", "variables": {"x": [3]},
                             "points": [{"x": [1, 2, 3]}, {"x": [0, -1, 0.5]}]}), {}),
    "msgpack": (ormsgpack.packb({"expression": "exp(x)", "at": {"x": 0.25}}),
                {"content-type": "application/msgpack", "accept": "application/msgpack"}),
    "nonfinite": (orjson.dumps({"expression": "log(x)", "at": {"x": 0}}), {}),
    "syntax_error": (orjson.dumps({"expression": "sin(x", "at": {"x": 1}}), {}),
    "invalid_request": (orjson.dumps({"expression": "x", "at": {"x": "one"}}), {}),
    "invalid_json": (b'{"expression": "x", "at": ', {}),
    "nan_token": (b'{"expression": "x", "at": {"x": NaN}}', {}),
    "media_type": (b"expression=x", {"content-type": "text/plain"}),
    "unknown_variable": (orjson.dumps({"expression": "x", "at": {"y": 1}}), {}),
    "too_many_points": (orjson.dumps({"expression": "x", "points": {"x": [1.0] * 11}}), {}),
}


def without_direct(app: FastAPI) -> FastAPI:
    """``app`` with the direct path taken out: every request goes through the router."""
    app.user_middleware = [m for m in app.user_middleware if m.cls is not DirectRoute]
    return app


async def answers(app: FastAPI) -> dict[str, httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=transport, base_url="http://nabla") as client:
        found = {}
        for name, (body, headers) in CASES.items():
            found[name] = await client.post("/v1/differentiate", content=body, headers={
                "content-type": "application/json", **headers})
        found["metrics"] = await client.get("/metrics")
        return found


@pytest.fixture(scope="module")
def both() -> tuple[dict[str, httpx.Response], dict[str, httpx.Response]]:
    settings = Settings(in_process=True, interpret=False, max_points=10,
                        response_cache_bytes=0)
    direct = run_async(answers(create_app(settings)))
    routed = run_async(answers(without_direct(create_app(settings))))
    return direct, routed


def _significant(response: httpx.Response) -> dict[str, Any]:
    return {"status": response.status_code, "content-type": response.headers["content-type"],
            "retry-after": response.headers.get("retry-after"), "body": response.content}


@pytest.mark.parametrize("case", list(CASES))
def test_the_direct_path_answers_as_the_route_does(
        both: tuple[dict[str, httpx.Response], dict[str, httpx.Response]], case: str) -> None:
    direct, routed = both
    assert _significant(direct[case]) == _significant(routed[case])


def test_the_cases_cover_answers_and_problems(
        both: tuple[dict[str, httpx.Response], dict[str, httpx.Response]]) -> None:
    statuses = {name: response.status_code for name, response in both[0].items()}
    assert statuses["answer"] == statuses["msgpack"] == statuses["nonfinite"] == 200
    assert {statuses[c] for c in ("syntax_error", "invalid_request", "invalid_json",
                                  "nan_token", "media_type", "unknown_variable",
                                  "too_many_points")} == {400, 415, 422}
    assert orjson.loads(both[0]["answer"].content)["gradient"] == pytest.approx(
        [2 * 0.5 * 1.5 + 0.9092974268256817, 0.25, 0.5 * -0.4161468365471424], rel=1e-15)


def test_metrics_label_the_direct_path_by_its_route(
        both: tuple[dict[str, httpx.Response], dict[str, httpx.Response]]) -> None:
    text = both[0]["metrics"].text
    assert 'route="/v1/differentiate",status="200"' in text
    assert "<unmatched>" not in text


def test_other_methods_and_paths_reach_the_router() -> None:
    async def scenario() -> list[int]:
        app = create_app(Settings(in_process=True, interpret=False))
        transport = httpx.ASGITransport(app=app)
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=transport, base_url="http://nabla") as client:
            return [(await client.get("/v1/differentiate")).status_code,
                    (await client.post("/v1/differentiates", json={})).status_code,
                    (await client.get("/v1/functions")).status_code]

    assert run_async(scenario()) == [405, 404, 200]


def test_a_client_that_leaves_mid_body_is_not_answered() -> None:
    sent: list[dict[str, Any]] = []

    async def scenario() -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            raise AssertionError("the direct path passed the request on")

        messages = [{"type": "http.request", "body": b'{"expr', "more_body": True},
                    {"type": "http.disconnect"}]

        async def receive() -> dict[str, Any]:
            return messages.pop(0)

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        direct = DirectRoute(app, service=None)  # type: ignore[arg-type]
        scope = {"type": "http", "method": "POST", "path": "/v1/differentiate",
                 "headers": []}
        with pytest.raises(ClientDisconnect):
            await direct(scope, receive, send)

    run_async(scenario())
    assert sent == []


def test_the_direct_path_is_the_one_that_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.api import direct

    calls: list[bytes] = []
    real = direct.answer

    async def counting(service: Any, raw: bytes, *args: Any) -> tuple[bytes, str]:
        calls.append(raw)
        return await real(service, raw, *args)

    monkeypatch.setattr(direct, "answer", counting)
    body, _ = CASES["answer"]
    found = run_async(answers(create_app(Settings(in_process=True, interpret=False))))
    assert found["answer"].status_code == 200
    assert calls.count(body) == 1
