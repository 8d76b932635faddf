"""Background compiles are speculation: only for programs requested again, never ahead of a
compile that a request waits for, and never in its way. Ordering is observed with compiles
held on events (in process), not with timings."""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from app.config import Settings
from app.engine import engine as engine_module
from app.engine.compilation import Compiled, CompileSpec
from app.engine.speculation import Speculation
from app.service.pipeline import Service
from schemas.differentiate import DifferentiateRequest
from tests.conftest import run_async

FOREGROUND = "x*y + 0.3141"  # needs XLA: asks for a jvp, which the first tier has not
HOT = "x*y + 0.2718"
OTHER = "x*y + 0.1618"


class HeldCompiles:
    """Replaces the engine's compile: records the order compiles start, holds the texts
    named in ``held`` until released."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.started: list[str] = []
        self.finished: list[str] = []
        self.held: dict[str, threading.Event] = {}
        self.entered: dict[str, threading.Event] = {}

    def hold(self, text: str) -> None:
        self.held[text] = threading.Event()
        self.entered[text] = threading.Event()

    def __call__(self, spec: CompileSpec, *args: Any) -> Compiled:
        text = spec.texts[0]
        self.started.append(text)
        if text in self.held and self.started.count(text) == 1:  # its first compile only
            self.entered[text].set()
            assert self.held[text].wait(60), f"{text} was never released"
        compiled: Compiled = self.real(spec, *args)
        self.finished.append(text)
        return compiled


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldCompiles]:
    held = HeldCompiles(engine_module.compile_spec)
    monkeypatch.setattr(engine_module, "compile_spec", held)
    yield held
    for event in held.held.values():
        event.set()


def request(text: str, product: bool = False) -> DifferentiateRequest:
    body: dict[str, Any] = {"expression": text, "at": {"x": 1.5, "y": -0.5}}
    if product:
        body.update(derivatives=["value", "jvp"], tangent=[1.0, 2.0])
    return DifferentiateRequest.model_validate(body)


async def until(event: threading.Event) -> None:
    """Wait for a compile held in a thread to have started (a rendezvous, not a timing)."""
    while not event.is_set():
        await asyncio.sleep(0.005)


async def compiling_in_background(service: Service, compiles: HeldCompiles) -> None:
    """HOT requested twice: hot, so XLA compiles it in the background, where it is held."""
    await service.run(request(HOT))
    await service.run(request(HOT))
    await until(compiles.entered[HOT])  # the background compile holds its worker


def test_a_program_answered_once_is_not_compiled(compiles: HeldCompiles) -> None:
    service = Service(Settings(in_process=True, interpret=True))

    async def scenario() -> None:
        await service.run(request(OTHER))
        await service.engine.drain()

    run_async(scenario())
    assert compiles.started == []
    assert len(service.cache) == 0


def test_a_program_requested_again_is_compiled_in_the_background(
        compiles: HeldCompiles) -> None:
    service = Service(Settings(in_process=True, interpret=True))

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        first = await service.run(request(HOT))
        await service.run(request(HOT))
        await service.engine.drain()
        third = await service.run(request(HOT))  # from the executable
        return first, third

    first, third = run_async(scenario())
    assert compiles.started == [HOT]
    assert service.cache.hits == 1
    assert third["value"] == pytest.approx(first["value"], rel=1e-15)
    assert third["value"] == pytest.approx(1.5 * -0.5 + 0.2718, rel=1e-15)


def test_a_compile_a_request_waits_for_starts_before_a_background_one(
        compiles: HeldCompiles) -> None:
    service = Service(Settings(in_process=True, interpret=True))
    compiles.hold(FOREGROUND)

    async def scenario() -> dict[str, Any]:
        waiting = asyncio.create_task(service.run(request(FOREGROUND, product=True)))
        await until(compiles.entered[FOREGROUND])
        await service.run(request(HOT))
        await service.run(request(HOT))  # hot now: queued behind the foreground compile
        speculation = service.engine.speculation
        assert [key.texts for key in speculation.queued()] == [(HOT,)]
        assert speculation.running is None
        assert compiles.started == [FOREGROUND]
        compiles.held[FOREGROUND].set()
        body = await waiting
        await service.engine.drain()
        return body

    body = run_async(scenario())
    assert compiles.started == [FOREGROUND, HOT]
    assert body["jvp"] == pytest.approx(-0.5 * 1.0 + 1.5 * 2.0, rel=1e-15)


def test_a_running_background_compile_is_not_in_a_requests_way(
        compiles: HeldCompiles) -> None:
    service = Service(Settings(in_process=True, interpret=True))
    compiles.hold(HOT)

    async def scenario() -> dict[str, Any]:
        await compiling_in_background(service, compiles)
        body: dict[str, Any] = await service.run(request(FOREGROUND, product=True))
        assert compiles.finished == [FOREGROUND]  # done while HOT's compile still runs
        compiles.held[HOT].set()
        await service.engine.drain()
        return body

    body = run_async(scenario())
    assert compiles.finished == [FOREGROUND, HOT]
    assert body["value"] == pytest.approx(1.5 * -0.5 + 0.3141, rel=1e-15)


def test_a_request_does_not_wait_for_the_idle_worker_compiling_its_program(
        compiles: HeldCompiles) -> None:
    """A program compiling in the background (idle priority: a busy machine may give it no
    CPU) that a request then needs from XLA (here the jets overflow, and XLA's conventions
    decide) is compiled again for the request, which does not wait for the held one."""
    service = Service(Settings(in_process=True, interpret=True))
    compiles.hold(HOT)

    async def scenario() -> dict[str, Any]:
        await compiling_in_background(service, compiles)
        overflowing = request(HOT).model_copy(update={"at": {"x": 1e200, "y": 1e200}})
        body: dict[str, Any] = await service.run(overflowing)
        assert compiles.finished == [HOT]  # the request's own compile; the first still held
        compiles.held[HOT].set()
        await service.engine.drain()
        return body

    body = run_async(scenario())
    assert compiles.started == [HOT, HOT] and compiles.finished == [HOT, HOT]
    assert body["value"] == math.inf  # 1e200 * 1e200, as float64 computes it (JSON: null)
    assert {"field": "value", "index": [], "kind": "inf"} in body["nonfinite"]


def test_the_queue_runs_one_at_a_time_first_in_first_out() -> None:
    order: list[str] = []
    gates: dict[str, asyncio.Event] = {}

    async def compile_(key: Any) -> None:
        order.append(key)
        await gates[key].wait()

    async def scenario() -> list[Any]:
        speculation = Speculation(compile_, capacity=2)
        for key in "abc":
            gates[key] = asyncio.Event()
        speculation.foreground_started()
        for key in "abcd":  # a, b and c hot; the queue holds two, d was seen once
            speculation.answered(key)
            if key != "d":
                speculation.answered(key)
        assert order == [] and not speculation.idle
        speculation.foreground_finished()
        await asyncio.sleep(0)
        snapshot = [list(order), speculation.running]
        gates["a"].set()
        gates["b"].set()
        await speculation.drain()
        return [*snapshot, list(order)]

    first, running, final = run_async(scenario())
    assert first == ["a"] and running == "a"  # one at a time
    assert final == ["a", "b"]  # c found the queue full: not queued
