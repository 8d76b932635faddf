"""Deadlines end to end: no request waits past its deadline for a compile, a shared compile,
a queued worker or a rebuild; a compile the queue cannot finish in time is refused at once
with the expected wait as Retry-After; the work waited for goes on, so the retry finds it."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from app.config import Settings
from app.engine import engine as engine_module
from app.engine.admission import ALLOWANCE, Allowance
from app.engine.compilation import CompileSpec, compile_spec
from app.engine.queueing import Queue, Task
from app.engine.workers import CompilePool
from app.errors import NablaError, Unavailable
from app.service.pipeline import Service
from schemas.differentiate import DifferentiateRequest
from tests.conftest import run_async

#: Far longer than any deadline below: a compile held this long would hang the old code.
HELD_SECONDS = 5.0


class HeldCompiles:
    """Compiles wait for ``release`` (set by a timer at the latest), and are counted."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.specs: list[CompileSpec] = []
        timer = threading.Timer(HELD_SECONDS, self.release.set)
        timer.daemon = True
        timer.start()

    def __call__(self, spec: CompileSpec, *args: Any) -> Any:
        self.specs.append(spec)
        self.release.wait()
        return compile_spec(spec, *args)


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldCompiles]:
    compiles = HeldCompiles()
    monkeypatch.setattr(engine_module, "compile_spec", compiles)
    yield compiles
    compiles.release.set()


def request(expression: str) -> DifferentiateRequest:
    return DifferentiateRequest.model_validate({"expression": expression, "at": {"x": 0.5}})


async def run_within(service: Service, body: DifferentiateRequest,
                     seconds: float) -> dict[str, Any] | NablaError:
    """The answer of ``service`` to ``body`` arriving now with a deadline ``seconds`` away."""
    token = ALLOWANCE.set(Allowance.starting_now(seconds))
    try:
        return await service.run(body)
    except NablaError as error:
        return error
    finally:
        ALLOWANCE.reset(token)


def test_a_request_waits_for_its_compile_no_longer_than_its_deadline(
        held: HeldCompiles) -> None:
    service = Service(Settings(in_process=True, interpret=False,
                               request_deadline_seconds=0.5))
    body = request("x^3 + 0.9131")

    async def scenario() -> tuple[Any, Any]:
        late = await run_within(service, body, 0.5)
        held.release.set()
        return late, await run_within(service, body, 30)  # the compile went on

    late, retried = run_async(scenario())
    assert isinstance(late, Unavailable), late
    assert late.code == "deadline_exceeded" and late.retry_after >= 1
    assert "request_deadline_seconds" in late.detail
    assert retried["value"] == pytest.approx(0.125 + 0.9131)
    assert len(held.specs) == 1


def test_a_waiter_whose_deadline_comes_stops_the_shared_compile_for_no_one(
        held: HeldCompiles) -> None:
    service = Service(Settings(in_process=True, interpret=False))
    body = request("x^3 + 0.6712")

    async def scenario() -> list[Any]:
        hurried = asyncio.ensure_future(run_within(service, body, 0.3))
        patient = asyncio.ensure_future(run_within(service, body, 60))
        late = await hurried
        held.release.set()
        return [late, await patient]

    late, answer = run_async(scenario())
    assert isinstance(late, Unavailable) and late.code == "deadline_exceeded"
    assert answer["value"] == pytest.approx(0.125 + 0.6712)
    assert len(held.specs) == 1


def test_a_compile_the_queue_cannot_finish_in_time_is_refused_at_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_module, "compile_seconds", lambda cost, kinds: 12.0)
    service = Service(Settings(in_process=True, interpret=False))
    body = request("x^3 + 0.2291")

    async def scenario() -> list[Any]:
        refused = await run_within(service, body, 5)  # 12 s of compile cannot fit in 5
        return [refused, await run_within(service, body, 60)]

    refused, answer = run_async(scenario())
    assert isinstance(refused, Unavailable), refused
    assert refused.code == "queue_too_long" and refused.retry_after >= 12
    assert answer["value"] == pytest.approx(0.125 + 0.2291)  # started for the retry


def test_the_queue_plays_its_tasks_forward_on_its_workers() -> None:
    queue = Queue()
    queue.add("running", Task(10.0, None, started=100.0))
    queue.add("a", Task(3.0, None))
    queue.add("b", Task(4.0, None))
    assert queue.wait(1, now=102.0) == pytest.approx(8 + 3 + 4)
    assert queue.wait(2, now=102.0) == pytest.approx(3 + 4)  # a, then b on the idle one
    assert queue.wait(3, now=102.0) == pytest.approx(3)  # a and b on one each
    assert queue.wait(4, now=102.0) == 0
    assert Queue().wait(1) == 0


@pytest.mark.slow
def test_a_task_queued_behind_a_busy_worker_ends_at_its_deadline() -> None:
    async def scenario() -> tuple[Any, float, float]:
        pool = CompilePool(Settings(compile_workers=1, compile_timeout_seconds=30))
        try:
            while not pool.ready:
                await asyncio.sleep(0.05)
            busy = asyncio.ensure_future(pool.call(time.sleep, 3.0))
            while not pool.queue.tasks:
                await asyncio.sleep(0.01)
            waiting = pool.expected_wait()
            try:
                late: Any = await pool.call(os.getpid, allowance=Allowance.starting_now(0.5))
            except Unavailable as error:
                late = error
            await busy
            return late, waiting, pool.expected_wait()
        finally:
            await asyncio.to_thread(pool.close)

    late, waiting, after = run_async(scenario())
    assert isinstance(late, Unavailable) and late.code == "deadline_exceeded"
    assert waiting > 0 and after == 0  # the queue said it was busy; the late task is gone
