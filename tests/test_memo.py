"""The response memo: identical requests get identical bytes; it stays within its bounds."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.api.memo import ResponseMemo, entry_bytes
from tests.conftest import run_async


def counting_app() -> tuple[Any, list[bytes]]:
    """An ASGI app that answers with its request body and counts its calls."""
    seen: list[bytes] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        seen.append(body)
        status = 422 if body.startswith(b"bad") else 200
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"x-request-id", b"r1"), (b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": body * 10})

    return app, seen


def entry_size(request: bytes) -> int:
    """What the memo counts for ``counting_app``'s answer to ``request`` from ``post``."""
    key = ("/v1/differentiate", request, b"", b"*/*")
    return entry_bytes(key, ((b"content-type", b"text/plain"),), request * 10)


def post(app: Any, body: bytes, path: str = "/v1/differentiate") -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://nabla") as client:
            return await client.post(path, content=body)

    response: httpx.Response = run_async(go())
    return response


def test_repeats_are_answered_from_memory_without_the_request_id() -> None:
    inner, seen = counting_app()
    memo = ResponseMemo(inner, max_bytes=10_000, paths=("/v1/differentiate",))
    first, second, third = (post(memo, b"abc") for _ in range(3))
    assert first.content == second.content == third.content == b"abc" * 10
    assert seen == [b"abc", b"abc"]  # kept the second time it is answered
    assert "x-request-id" in second.headers and "x-request-id" not in third.headers
    post(memo, b"abd")
    assert seen == [b"abc", b"abc", b"abd"]
    assert len(memo) == 1


def test_an_answer_is_kept_only_if_its_request_was_seen_lately() -> None:
    inner, seen = counting_app()
    memo = ResponseMemo(inner, max_bytes=10_000, paths=("/v1/differentiate",), seen=3)
    for body in (b"a", b"b", b"c", b"d", b"a"):  # a's hash is the oldest of four: gone
        post(memo, body)
    assert len(memo) == 0
    post(memo, b"d")  # d was seen: kept now
    assert len(memo) == 1
    for _ in range(2):
        post(memo, b"a")  # a was noted again by the fifth request: kept now, then answered
    assert seen.count(b"a") == 3 and seen.count(b"d") == 2
    assert len(memo) == 2


def test_errors_other_paths_and_big_answers_are_not_kept() -> None:
    inner, seen = counting_app()
    memo = ResponseMemo(inner, max_bytes=10_000, paths=("/v1/differentiate",),
                        max_item_bytes=100)
    for body, path in [(b"bad", "/v1/differentiate"), (b"abc", "/v1/plot"),
                       (b"z" * 20, "/v1/differentiate")]:  # 20 in + 200 out > 100
        for _ in range(3):
            post(memo, body, path)
    assert len(seen) == 9
    assert len(memo) == 0


def test_the_memo_is_bounded_by_bytes() -> None:
    inner, seen = counting_app()
    memo = ResponseMemo(inner, max_bytes=4 * entry_size(b"a") + 40,
                        paths=("/v1/differentiate",))
    for body in (b"a", b"b", b"c", b"d"):  # all fit
        post(memo, body)
        post(memo, body)  # kept now
    assert len(memo) == 4
    for i in range(20):
        post(memo, bytes([65 + i]) * 3)  # 22 bytes more each: the oldest go
        post(memo, bytes([65 + i]) * 3)
    assert len(memo) <= 3
    post(memo, b"a")
    assert seen.count(b"a") == 3  # evicted, so computed again


@pytest.mark.slow
def test_identical_requests_get_identical_answers_and_errors_are_not_kept(
        api: httpx.Client) -> None:
    body = {"expression": "x^3 - 2*x", "points": {"x": [0.5, 1.5]}}
    first = api.post("/v1/differentiate", json=body)
    second = api.post("/v1/differentiate", json=body)
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    accept = api.post("/v1/differentiate", json=body, headers={"accept": "application/msgpack"})
    assert accept.headers["content-type"] == "application/msgpack"  # Accept is in the key
    for _ in range(2):
        refused = api.post("/v1/differentiate", json={"expression": "x +", "at": {"x": 1}})
        assert refused.status_code == 422
