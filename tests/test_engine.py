"""The engine: each text is read once, off the event loop, within the configured limits; the
caches stay bounded and evict the least recently used; the tiers hand over."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import httpx
import numpy as np
import pytest

from app.api.memo import ResponseMemo
from app.config import Settings
from app.engine import tiers
from app.engine.caches import Counted
from app.engine.first_tier import NotInterpretable
from app.language import syntax
from app.main import create_app
from app.service.pipeline import Service
from schemas.differentiate import DifferentiateRequest
from tests.conftest import run_async
from tests.test_memo import counting_app, entry_size, post


class CountingParser:
    """Wraps the grammar's parser: records each text parsed and whether on an event loop."""

    def __init__(self, parser: Any) -> None:
        self.parser = parser
        self.calls: list[tuple[str, bool]] = []

    def parse(self, text: str) -> Any:
        try:
            asyncio.get_running_loop()
            on_loop = True
        except RuntimeError:
            on_loop = False
        self.calls.append((text, on_loop))
        return self.parser.parse(text)


@pytest.fixture
def parser(monkeypatch: pytest.MonkeyPatch) -> CountingParser:
    counting = CountingParser(syntax._PARSER)
    monkeypatch.setattr(syntax, "_PARSER", counting)
    return counting


@pytest.mark.parametrize("interpret", [True, False], ids=["jets-first", "xla-only"])
def test_a_cold_request_with_symbolic_and_explain_parses_once(parser: CountingParser,
                                                               interpret: bool) -> None:
    service = Service(Settings(in_process=True, interpret=interpret))
    text = "x*exp(x) + sin(x) + 0.4817"  # a constant of its own: no other test parses it
    request = DifferentiateRequest.model_validate(
        {"expression": text, "at": {"x": 1.0},
         "derivatives": ["value", "gradient", "symbolic", "explain"]})

    async def scenario() -> dict[str, Any]:
        body = await service.run(request)
        await service.run(request)  # requested again: the jets' answer compiles it
        await service.engine.drain()  # the background compile, if the jets answered
        return body

    body = run_async(scenario())
    # symbolic.by_variable parses its formulas to check them: other texts, in the worker
    assert [call for call in parser.calls if call[0] == text] == [(text, False)]
    assert not any(on_loop for _, on_loop in parser.calls)
    assert len(service.cache) == 1  # compiled (now or in the background) from that parse
    assert body["value"] == pytest.approx(math.e + math.sin(1) + 0.4817, rel=1e-14)
    assert body["gradient"][0] == pytest.approx(2 * math.e + math.cos(1), rel=1e-14)
    assert body["symbolic"]["gradient"] and body["graph"]["nodes"]


@pytest.mark.parametrize("interpret", [True, False], ids=["jets-first", "xla-only"])
def test_concurrent_cold_requests_share_one_parse_and_one_compile(
        parser: CountingParser, interpret: bool) -> None:
    service = Service(Settings(in_process=True, interpret=interpret))
    text = "atan2(y, x) * 0.6173"
    request = DifferentiateRequest.model_validate(
        {"expression": text, "at": {"x": 1.0, "y": 1.0}, "derivatives": ["value"]})

    async def scenario() -> list[dict[str, Any]]:
        bodies = await asyncio.gather(*(service.run(request) for _ in range(4)))
        await service.engine.drain()
        return list(bodies)

    bodies = run_async(scenario())
    assert parser.calls == [(text, False)]
    assert service.cache.misses == 4 and len(service.cache) == 1
    for body in bodies:
        assert body["value"] == pytest.approx(math.pi / 4 * 0.6173, rel=1e-14)


def plot(settings: Settings, **params: Any) -> httpx.Response:
    """GET /v1/plot on an in-process app."""
    app = create_app(settings)

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://nabla") as client:
            return await client.get("/v1/plot", params=params)

    response: httpx.Response = run_async(go())
    return response


@pytest.mark.parametrize("interpret", [True, False], ids=["jets-first", "xla-only"])
def test_plot_reads_its_text_once_and_off_the_event_loop(parser: CountingParser,
                                                         interpret: bool) -> None:
    text = "t^3 - 2*t + 0.5129"
    response = plot(Settings(in_process=True, interpret=interpret), expression=text,
                    start=-1, stop=1, num=5, order=2)
    assert response.status_code == 200, response.text
    # Finding the axis and computing the grid share one parse, made in a thread.
    assert parser.calls == [(text, False)]


def test_plot_honours_max_name_chars(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NABLA_MAX_NAME_CHARS", "100")
    settings = Settings(in_process=True)
    assert settings.max_name_chars == 100
    long, longer = "a" * 70, "b" * 120  # over the parser's default of 64, and over 100
    assert plot(settings, expression=f"{long}^2", start=0, stop=1).status_code == 200
    refused = plot(settings, expression=f"{longer}^2", start=0, stop=1)
    assert refused.status_code == 422
    problem = refused.json()
    assert problem["limit"] == "max_name_chars" and problem["limit_value"] == 100


def test_jets_hand_over_to_xla_when_a_node_has_no_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_rule(*args: Any) -> Any:
        raise NotInterpretable("a node the screen let through")

    monkeypatch.setattr(tiers, "interpret", no_rule)
    service = Service(Settings(in_process=True, interpret=True))
    request = DifferentiateRequest.model_validate(
        {"expression": "x^3 * y - 0.3717", "at": {"x": 2.0, "y": 0.5}})
    body = run_async(service.run(request))
    assert service.cache.misses == 1 and len(service.cache) == 1  # XLA answered
    assert body["value"] == pytest.approx(4 - 0.3717, rel=1e-14)
    np.testing.assert_allclose(body["gradient"], [6.0, 8.0], rtol=1e-14)
    np.testing.assert_allclose(body["hessian"], [[6.0, 12.0], [12.0, 0.0]], rtol=1e-14)


def test_programs_kept_are_bounded() -> None:
    service = Service(Settings(in_process=True, interpret=True, compile_cache_size=2))
    service.engine.compile_later = lambda spec: None  # type: ignore[method-assign]
    for i in range(4):
        request = DifferentiateRequest.model_validate(
            {"expression": f"x + {i + 0.25}", "at": {"x": 1.0}})
        assert run_async(service.run(request))["value"] == i + 1.25
    assert len(service.engine.programs) == 2


def test_the_executable_cache_evicts_the_least_recently_used() -> None:
    cache: Counted[str, int] = Counted(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # now b is the least recently used
    cache.put("c", 3)
    assert cache.peek("b") is None and cache.peek("a") == 1 and cache.peek("c") == 3
    assert (cache.hits, cache.misses, len(cache), cache.capacity) == (1, 0, 2, 2)
    assert cache.get("b") is None and cache.misses == 1
    assert cache.hit("b") is None and cache.misses == 1  # the fast path's lookup
    assert cache.hit("c") == 3 and cache.hits == 2


def test_the_response_memo_evicts_the_least_recently_used() -> None:
    inner, seen = counting_app()
    memo = ResponseMemo(inner, max_bytes=3 * entry_size(b"a"), paths=("/v1/differentiate",))
    for body in (b"a", b"b", b"c"):  # 1 byte in, 10 out: room for these three
        post(memo, body)
        post(memo, body)  # kept the second time
    assert len(memo) == 3
    post(memo, b"a")  # answered from memory: now b is the least recently used
    post(memo, b"d")
    post(memo, b"d")  # 11 more bytes: one must go
    assert len(memo) == 3
    post(memo, b"a")
    post(memo, b"b")
    # a was kept, b was computed again
    assert seen == [b"a", b"a", b"b", b"b", b"c", b"c", b"d", b"d", b"b"]
