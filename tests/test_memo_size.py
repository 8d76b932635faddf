"""The response memo counts what its entries hold in memory, measured with tracemalloc."""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

import orjson

from app.api.memo import ResponseMemo
from tests.conftest import run_async


def orjson_app() -> Any:
    """An ASGI app answering like nabla's: orjson's bytes, with its usual headers."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        body = (await receive())["body"]
        answer = orjson.dumps({"value": len(body), "echo": body.decode(), "gradient": [1.5]})
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-length", str(len(answer)).encode()),
            (b"content-type", b"application/json"), (b"x-request-id", b"r" * 32)]})
        await send({"type": "http.response.body", "body": answer})

    return app


async def fill(memo: ResponseMemo, first: int, count: int) -> None:
    """``count`` distinct requests, each with its own header objects, as a server makes;
    each twice, so that the memo keeps its answer."""
    for i in [i for i in range(first, first + count) for _ in range(2)]:
        scope = {"type": "http", "method": "POST", "path": "/v1/differentiate",
                 "headers": [(b"content-type", bytes(bytearray(b"application/json"))),
                             (b"accept", bytes(bytearray(b"*/*")))]}
        body = orjson.dumps({"expression": "x^2 + y", "at": {"x": i / 7, "y": 1}})
        sent: list[Any] = []

        async def receive(body: bytes = body) -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Any, sent: list[Any] = sent) -> None:
            sent.append(message)

        await memo(scope, receive, send)


def test_the_memo_counts_what_its_entries_hold_in_memory() -> None:
    memo = ResponseMemo(orjson_app(), max_bytes=2**30, paths=("/v1/differentiate",))
    count = 2000
    run_async(fill(memo, 0, 10))  # the memo's own first allocations
    gc.collect()
    counted_before = memo._items.currsize
    # What is allocated under ``fill`` and still held: not what other threads do meanwhile.
    mine = [tracemalloc.Filter(True, __file__, all_frames=True)]
    tracemalloc.start(64)
    try:
        before = tracemalloc.take_snapshot().filter_traces(mine)
        run_async(fill(memo, 10, count))
        gc.collect()
        after = tracemalloc.take_snapshot().filter_traces(mine)
    finally:
        tracemalloc.stop()
    held = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    counted = memo._items.currsize - counted_before
    assert len(memo) == 10 + count
    # The count includes the header objects a server makes per request and the LRU's
    # bookkeeping at its largest, so it may exceed what is held, a little: never by more
    # than half, and never fall short by more than a fifth (dict growth steps).
    assert 0.8 <= counted / held <= 1.5, (counted / count, held / count)
