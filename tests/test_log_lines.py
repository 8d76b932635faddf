"""Access-log lines on an event loop are written once per turn of the loop, in order."""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import json
import logging
from typing import Any

import pytest

from app.ops import logs
from tests.conftest import run_async


class CountingStream(io.StringIO):
    """A stream that counts its writes."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


@pytest.fixture()
def stream(monkeypatch: pytest.MonkeyPatch) -> CountingStream:
    """Our JSON handler, writing to a counting stream."""
    logs.configure("info", "json")
    counting = CountingStream()
    monkeypatch.setattr(ours(), "stream", counting)
    return counting


def ours() -> logging.Handler:
    return next(h for h in logging.getLogger("nabla").handlers
                if getattr(h, "_nabla_handler", False))


def alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Our handler alone on the ``nabla`` loggers: pytest adds its capturing handlers after
    the fixtures, so each test calls this first."""
    nabla = logging.getLogger("nabla")
    monkeypatch.setattr(nabla, "handlers", [ours()])
    monkeypatch.setattr(nabla, "propagate", False)


def off_loop(func: Any, *args: Any) -> Any:
    """``func(*args)`` in a thread of its own: pytest's main thread may have an event loop
    registered (Playwright's sync API, in browser tests)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(func, *args).result()


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_lines_of_one_turn_are_one_write_at_its_end(stream: CountingStream,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    alone(monkeypatch)
    access = logging.getLogger("nabla.access")
    seen: list[int] = []

    async def scenario() -> None:
        for i in range(5):
            logs.info_line(access, "request", {"n": i})
        seen.append(stream.writes)  # none yet: the turn is not over
        await asyncio.sleep(0)
        seen.append(stream.writes)
        logs.info_line(access, "request", {"n": 5})
        await asyncio.sleep(0)
        seen.append(stream.writes)

    run_async(scenario())
    assert seen == [0, 1, 2]
    assert [entry["n"] for entry in lines(stream)] == [0, 1, 2, 3, 4, 5]


def test_another_record_comes_after_the_lines_before_it(stream: CountingStream,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    alone(monkeypatch)
    access, other = logging.getLogger("nabla.access"), logging.getLogger("nabla.engine")

    async def scenario() -> None:
        logs.info_line(access, "request", {"n": 0})
        other.warning("after the first request")
        logs.info_line(access, "request", {"n": 1})

    run_async(scenario())
    assert [(e["logger"], e.get("n")) for e in lines(stream)] == [
        ("nabla.access", 0), ("nabla.engine", None), ("nabla.access", 1)]


def test_off_a_loop_a_line_is_written_at_once(stream: CountingStream,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    alone(monkeypatch)
    off_loop(logs.info_line, logging.getLogger("nabla.access"), "request", {"n": 7})
    assert stream.writes == 1 and lines(stream)[0]["n"] == 7


def test_a_line_left_by_a_loop_that_stopped_is_written_by_the_next(
        stream: CountingStream, monkeypatch: pytest.MonkeyPatch) -> None:
    alone(monkeypatch)
    access = logging.getLogger("nabla.access")
    loop = asyncio.new_event_loop()

    async def one_line() -> None:
        with monkeypatch.context() as patch:  # the write is due on a turn that never comes
            patch.setattr(loop, "call_soon", lambda *args, **kwargs: None)
            logs.info_line(access, "request", {"n": 0})

    try:
        off_loop(loop.run_until_complete, one_line())
    finally:
        loop.close()
    assert stream.writes == 0

    async def next_line() -> None:
        logs.info_line(access, "request", {"n": 1})

    run_async(next_line())
    assert [entry["n"] for entry in lines(stream)] == [0, 1]
    assert stream.writes == 1
