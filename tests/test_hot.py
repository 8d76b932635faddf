"""The hot path (app.api.hot): warm one-point requests answered where they are read give the
full path's bytes, agree with SymPy at 30 digits, and every other body goes the full way."""

from __future__ import annotations

import random
from typing import Any

import httpx
import mpmath
import numpy as np
import orjson
import pytest
import sympy
from fastapi import FastAPI
from starlette.middleware import Middleware

from app.api.hot import HotPath, form_of
from app.api.memo import ResponseMemo
from app.config import Settings
from app.engine.admission import ALLOWANCE, Allowance
from app.main import create_app
from app.service.pipeline import Service
from tests.conftest import run_async

SETTINGS = Settings(in_process=True, interpret=False, response_cache_bytes=0)
X, Y, Z = sympy.symbols("x y z")
# (expression, derivatives or None, point generator); the points are seeded below.
FORMS: list[tuple[Any, list[str] | None, list[str]]] = [
    ("x**2*y + sin(z)*x", None, ["x", "y", "z"]),
    ("x**2*y + sin(z)*x", ["gradient"], ["z", "y", "x"]),  # another order of the point
    ("x**2*y + sin(z)*x", ["hessian", "value"], ["x", "y", "z"]),
    (["x*y", "x + y^2", "atan2(y, x)"], ["value", "gradient"], ["x", "y"]),
    ("log(x) + exp(y)", None, ["x", "y"]),  # log(0), exp(800): non-finite, listed
    ("where(x > 0, sqrt(x), 0)", ["value", "gradient"], ["x"]),
    ("x*1e-300", None, ["x"]),  # subnormal results, flushed as XLA's
    ("2*pi", ["value"], []),  # no variables
]
SPECIAL = [0.0, -0.0, 1, -3, 2**53, 1e308, 5e-324, 1e-10, 800.0]


def points(names: list[str], rng: random.Random, count: int) -> list[dict[str, Any]]:
    """``count`` points: random floats, and one value of ``SPECIAL`` in each of the first."""
    out = []
    for i in range(count):
        point: dict[str, Any] = {n: rng.uniform(-3, 3) for n in names}
        if names and i < len(SPECIAL):
            point[names[i % len(names)]] = SPECIAL[i]
        out.append(point)
    return out


def bodies(count: int = 12) -> list[bytes]:
    rng = random.Random(20261127)
    out = []
    for expression, derivatives, names in FORMS:
        for point in points(names, rng, count):
            body: dict[str, Any] = {"expression": expression, "at": point}
            if derivatives is not None:
                body["derivatives"] = derivatives
            out.append(orjson.dumps(body))
    return out


def without_hot(app: FastAPI) -> FastAPI:
    """``app`` with the hot path taken out of the memo: the full path answers everything."""
    app.user_middleware = [
        Middleware(m.cls, *m.args, **{**m.kwargs, "hot": None}) if m.cls is ResponseMemo
        else m for m in app.user_middleware]
    return app


async def post_all(app: FastAPI, payloads: list[bytes], headers: dict[str, str] | None = None,
                   ) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=transport, base_url="http://nabla") as client:
        found = [await client.post("/v1/differentiate", content=body,
                                   headers=headers or {"content-type": "application/json"})
                 for body in payloads]
        found.append(await client.get("/metrics"))
        return found


@pytest.fixture(scope="module")
def answered(monkeypatch_module: pytest.MonkeyPatch,
             ) -> tuple[list[httpx.Response], list[httpx.Response], list[bytes]]:
    """The same bodies through an app with the hot path and one without; and the bodies the
    hot path answered."""
    hot_answers: list[bytes] = []
    real = HotPath.answer

    def spying(self: HotPath, body: bytes, *args: Any) -> bytes | None:
        answer = real(self, body, *args)
        if answer is not None:
            hot_answers.append(body)
        return answer

    monkeypatch_module.setattr(HotPath, "answer", spying)
    payloads = bodies()
    hot = run_async(post_all(create_app(SETTINGS), payloads))
    full = run_async(post_all(without_hot(create_app(SETTINGS)), payloads))
    return hot, full, hot_answers


@pytest.fixture(scope="module")
def monkeypatch_module() -> Any:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_the_hot_path_gives_the_full_paths_bytes(
        answered: tuple[list[httpx.Response], list[httpx.Response], list[bytes]]) -> None:
    hot, full, _ = answered
    for mine, theirs in zip(hot[:-1], full[:-1], strict=True):
        assert mine.status_code == theirs.status_code == 200, mine.text
        assert mine.headers["content-type"] == theirs.headers["content-type"]
        assert mine.content == theirs.content


def test_the_hot_path_answers_every_warm_request(
        answered: tuple[list[httpx.Response], list[httpx.Response], list[bytes]]) -> None:
    _, _, hot_answers = answered
    payloads = bodies()
    # The first of each form goes the full way (it compiles, and its form is noted); the
    # second is planned, and it and every later one are hot.
    per_form = len(payloads) // len(FORMS)
    expected = [b for i, b in enumerate(payloads) if i % per_form != 0]
    assert hot_answers == expected
    # They cover non-finite entries, and subnormal inputs and results.
    texts = b" ".join(answered[0][i].content for i, b in enumerate(payloads) if b in expected)
    assert b'"nonfinite"' in texts


def test_metrics_label_hot_answers_by_their_route(
        answered: tuple[list[httpx.Response], list[httpx.Response], list[bytes]]) -> None:
    metrics = answered[0][-1].text
    assert 'route="/v1/differentiate",status="200"' in metrics
    assert "<unmatched>" not in metrics


def _number(value: Any) -> mpmath.mpf:
    return mpmath.mpf(value)


def test_hot_answers_agree_with_sympy_at_30_digits(
        answered: tuple[list[httpx.Response], list[httpx.Response], list[bytes]]) -> None:
    hot, _, hot_answers = answered
    payloads = bodies()
    f = X**2 * Y + sympy.sin(Z) * X
    gradient = [sympy.diff(f, v) for v in (X, Y, Z)]
    hessian = [[sympy.diff(g, v) for v in (X, Y, Z)] for g in gradient]
    checked = 0
    for body, response in zip(payloads, hot, strict=False):
        request = orjson.loads(body)
        if (body not in hot_answers or request["expression"] != "x**2*y + sin(z)*x"
                or "derivatives" in request):
            continue
        at = request["at"]
        if any(abs(v) > 1e100 or 0 < abs(v) < 1e-300 for v in at.values()):
            continue  # overflow and subnormals: the byte-for-byte test covers them
        answer = orjson.loads(response.content)
        assert answer["coordinates"] == ["x", "y", "z"]
        env = {X: sympy.Float(at["x"], 30), Y: sympy.Float(at["y"], 30),
               Z: sympy.Float(at["z"], 30)}
        expected = [f, *gradient, *(h for row in hessian for h in row)]
        got = [answer["value"], *answer["gradient"], *(h for row in answer["hessian"]
                                                       for h in row)]
        for exact, number in zip(expected, got, strict=True):
            truth = exact.evalf(30, subs=env)
            assert abs(_number(number) - truth) <= 4e-16 * max(1, abs(truth)), (body, exact)
        checked += 1
    assert checked >= 8


@pytest.fixture(scope="module")
def warm_service() -> Any:
    """A service whose executable of ``WARM`` is compiled, and an allowance to call it in."""
    service = Service(SETTINGS)
    allowance = Allowance.starting_now(60)
    token = ALLOWANCE.set(allowance)
    request = {"expression": "x^2 + y", "at": {"x": 1.5, "y": 2.0}}
    from app.api.routes.differentiate import answer

    run_async(answer(service, orjson.dumps(request), "application/json", None))
    hot = HotPath(service)
    assert hot.answer(orjson.dumps(request), None, None) is None  # its form is noted
    yield hot
    ALLOWANCE.reset(token)


def call(hot: HotPath, body: Any, content_type: bytes | None = b"application/json",
         accept: bytes | None = None) -> bytes | None:
    payload = body if isinstance(body, bytes) else orjson.dumps(body)

    async def inside() -> bytes | None:  # in the context the allowance was set in
        return hot.answer(payload, content_type, accept)

    return run_async(inside()) if ALLOWANCE.get() is None else hot.answer(
        payload, content_type, accept)


WARM = {"expression": "x^2 + y", "at": {"x": 0.25, "y": -1.0}}


@pytest.mark.parametrize(("body", "content_type", "accept"), [
    ({**WARM, "order": 2}, b"application/json", None),  # another field
    ({**WARM, "variables": {"x": [], "y": []}}, b"application/json", None),
    ({**WARM, "at": {"x": [0.25], "y": -1.0}}, b"application/json", None),  # a list
    ({**WARM, "at": {"x": True, "y": -1.0}}, b"application/json", None),  # a bool
    ({**WARM, "at": {"x": "1", "y": -1.0}}, b"application/json", None),
    ({**WARM, "at": {"x": None, "y": -1.0}}, b"application/json", None),
    ({**WARM, "at": {"x": 2**53 + 1, "y": -1.0}}, b"application/json", None),
    ({**WARM, "derivatives": None}, b"application/json", None),
    ({**WARM, "derivatives": ["value", "symbolic"]}, b"application/json", None),
    ({**WARM, "derivatives": ["explain"]}, b"application/json", None),
    ({**WARM, "derivatives": ["jvp"]}, b"application/json", None),  # invalid: no tangent
    ({**WARM, "at": {"x": 0.25, "z": -1.0}}, b"application/json", None),  # not its variable
    ({**WARM, "at": {"x": 0.25}}, b"application/json", None),  # lacks y
    ({"expression": "x^3 + y", "at": {"x": 1.0, "y": 2.0}}, b"application/json", None),
    ({"expression": 3, "at": {"x": 1.0}}, b"application/json", None),
    ([WARM], b"application/json", None),
    (b'{"expression": "x^2 + y", "at": {"x": NaN, "y": 1}}', b"application/json", None),
    (b'{"expression": "x^2 + y", "at": {"x": 1e999, "y": 1}}', b"application/json", None),
    (b'{"expression": "x^2 + y", "at": ', b"application/json", None),
    (WARM, b"application/msgpack", None),
    (WARM, b"text/plain", None),
    (WARM, b"application/json", b"application/msgpack"),
])
def test_other_bodies_go_the_full_way(warm_service: HotPath, body: Any, content_type: bytes,
                                      accept: bytes | None) -> None:
    for _ in range(2):  # the second time, a form is planned
        assert call(warm_service, body, content_type, accept) is None


def test_a_warm_body_is_answered_here(warm_service: HotPath) -> None:
    """The control of the test above: the same form with only its numbers changed."""
    for body, accept in [(WARM, None), ({**WARM, "at": {"x": 3, "y": 0.5}}, b"*/*"),
                         ({**WARM, "at": {"x": -2.0, "y": 2**53}}, b"application/json")]:
        answer = call(warm_service, body, b"application/json; charset=utf-8", accept)
        assert answer is not None
        x, y = float(body["at"]["x"]), float(body["at"]["y"])  # type: ignore[index]
        assert orjson.loads(answer) == {"coordinates": ["x", "y"], "value": x * x + y,
                                        "gradient": [2 * x, 1.0],
                                        "hessian": [[2.0, 0.0], [0.0, 0.0]]}
    assert call(warm_service, WARM, None) is not None  # no Content-Type reads as JSON


def test_the_forms_kept_are_bounded() -> None:
    hot = HotPath(Service(SETTINGS), forms=4)
    for i in range(10):
        for _ in range(2):
            call(hot, {"expression": f"x + {i}", "at": {"x": 1.0}})
    assert len(hot) == 4 and len(hot._seen) == 0
    for i in range(20):
        call(hot, {"expression": f"y + {i}", "at": {"y": 1.0}})
    assert len(hot._seen) == 16  # four times the forms kept


def test_a_form_is_planned_the_second_time_it_is_seen(warm_service: HotPath) -> None:
    body = {"expression": "x^2 + y", "at": {"y": 1.0, "x": 0.5}}  # another order: a new form
    assert call(warm_service, body) is None  # noted
    assert orjson.loads(call(warm_service, body) or b"null")["value"] == 1.25


def test_the_form_of_a_body() -> None:
    assert form_of({"expression": "x", "at": {"x": 1.0, "y": 2}}) == ("x", None, ("x", "y"))
    assert form_of({"expression": ["a", "b"], "at": {}, "derivatives": ["value"]}) == (
        ("a", "b"), ("value",), ())
    assert form_of({"expression": "x", "at": {"x": 1.0}, "grid": {}}) is None
    assert form_of({"expression": "x"}) is None


@pytest.mark.slow
def test_over_http_hot_and_full_answers_are_the_same(api: httpx.Client) -> None:
    """A real server: the form answered hot, and the same request made to go the full way
    (``order`` 2 is the default, and a field the hot path leaves alone)."""
    rng = random.Random(7)
    for i in range(6):
        at = {"u": rng.uniform(-2, 2), "v": rng.uniform(0.1, 2)}
        hot = api.post("/v1/differentiate", json={"expression": "u*log(v) + u^3", "at": at})
        full = api.post("/v1/differentiate",
                        json={"expression": "u*log(v) + u^3", "at": at, "order": 2})
        assert hot.status_code == full.status_code == 200
        assert hot.content == full.content, i
        assert hot.headers["x-request-id"] != full.headers["x-request-id"]
        u, v = at["u"], at["v"]
        assert orjson.loads(hot.content)["gradient"] == pytest.approx(
            [math_log(v) + 3 * u * u, u / v], rel=1e-14)


def math_log(v: float) -> float:
    return float(mpmath.log(v))


@pytest.mark.parametrize(("expression", "at"), [
    ("x**2*y + sin(z)*x", {"x": 0.5, "y": -1.25, "z": 3.0}),
    (["x*y", "x + y^2", "atan2(y, x)"], {"x": 0.5, "y": -1.25}),
    ("exp(-x*x)", {"x": 40.0}),  # exp(-1600) is 0, its derivatives are 0 (normal or zero)
])
def test_plain_bodies_are_assembled_bodies(expression: Any, at: dict[str, float]) -> None:
    """The hot path's body from Python floats is ``assemble``'s from the arrays, byte for
    byte; a buffer with a number to list or flush is left to ``assemble``."""
    from app.engine.tiers import XlaTier
    from app.service.response import assemble, plain_body

    service = Service(SETTINGS)
    request = {"expression": expression, "at": at}
    from app.api.routes.differentiate import answer

    run_async(answer(service, orjson.dumps(request), "application/json", None))
    (tier,) = [t for t in service.engine.executables._items.values()
               if isinstance(t, XlaTier)]
    point = np.array([float(at[n]) for n in tier.signature.layout.names])
    flat = tier.run_now(point)
    plain = plain_body(tier.signature, tier.outputs, flat)
    assert plain is not None
    assert orjson.dumps(plain, option=orjson.OPT_SERIALIZE_NUMPY) == orjson.dumps(
        assemble(tier.signature, tier.results(flat)), option=orjson.OPT_SERIALIZE_NUMPY)
    for bad in (np.nan, np.inf, -np.inf, 5e-324, -2e-310):
        spoiled = flat.copy()
        spoiled[-1] = bad
        assert plain_body(tier.signature, tier.outputs, spoiled) is None
