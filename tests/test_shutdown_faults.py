"""Shutting down loses nothing in flight and blames no one: a SIGTERM to the whole process
group (systemd's KillMode=control-group, Ctrl-C) lets the workers finish what the server
drains; a request still waiting when the graceful timeout ends gets a 503 problem."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.ops_support import Server, start_server
from tests.test_chaos import worker_pids
from tests.test_graceful_shutdown import in_progress

pytestmark = pytest.mark.slow

N = 150  # a Rosenbrock function of 150 variables compiles with its Hessian for seconds
ROSENBROCK = " + ".join(f"100*(x{i + 1} - x{i}^2)^2 + (1 - x{i})^2" for i in range(N - 1))
SERVE = [sys.executable, "-m", "app.client.cli", "serve"]


def product(k: int, shift: float) -> str:
    """A product of k factors: XLA compiles its Hessian in about (k/100)^2 x 9 s."""
    return " * ".join(f"(1 + x{i % 5}/{i + shift})" for i in range(k))


def send(server: Server, body: dict[str, object], out: list[httpx.Response | Exception],
         done: threading.Event | None = None) -> threading.Thread:
    def go() -> None:
        try:
            out.append(httpx.post(f"{server.url}/v1/differentiate", json=body, timeout=120))
        except httpx.HTTPError as error:
            out.append(error)
        finally:
            if done is not None:
                done.set()

    thread = threading.Thread(target=go)
    thread.start()
    return thread


def wait_in_flight(server: Server, count: int) -> None:
    deadline = time.monotonic() + 60
    while in_progress(server) < count:
        assert time.monotonic() < deadline, "the requests were never seen in flight"
        time.sleep(0.02)


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_sigterm_to_the_process_group_loses_nothing_in_flight(tmp_path: Path) -> None:
    # setsid: the server leads a process group of its own, with its workers in it.
    server = start_server(["setsid", *SERVE], log=tmp_path / "server.log",
                          env={"NABLA_COMPILE_WORKERS": "1"})
    try:
        assert os.getpgid(server.process.pid) == server.process.pid
        workers = worker_pids(server.process.pid)
        answers: list[httpx.Response | Exception] = []
        threads = [send(server, {"expression": ROSENBROCK,
                                 "at": {f"x{i}": 1.5 for i in range(N)}}, answers)]
        wait_in_flight(server, 1)
        time.sleep(0.5)  # sequencing only: the compile is under way in the worker
        os.killpg(server.process.pid, signal.SIGTERM)  # the server and every worker
        for thread in threads:
            thread.join(timeout=120)
        status = server.process.wait(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.process.pid, signal.SIGKILL)
        server.stop()
    (answer,) = answers
    assert isinstance(answer, httpx.Response), answer
    assert answer.status_code == 200, answer.text
    assert answer.json()["value"] == pytest.approx((N - 1) * (100 * 0.75**2 + 0.25))
    assert status in (0, -signal.SIGTERM)
    assert "worker was lost" not in server.output()  # the workers finished their task
    assert all(gone(pid) for pid in workers)  # and were stopped by the server, after


def test_a_request_still_waiting_when_the_graceful_timeout_ends_gets_a_503(
        tmp_path: Path) -> None:
    server = start_server(SERVE, log=tmp_path / "server.log", env={
        "NABLA_COMPILE_WORKERS": "1", "NABLA_INTERPRET": "false", "NABLA_GRACEFUL_TIMEOUT": "1"})
    answers: list[httpx.Response | Exception] = []
    try:
        point = {"at": {f"x{i}": 0.5 for i in range(5)}}
        threads = [send(server, {"expression": product(80, shift), **point}, answers)
                   for shift in (1.25, 1.5)]  # compiling, and queued behind it
        wait_in_flight(server, 2)
        server.process.terminate()
        for thread in threads:
            thread.join(timeout=120)
        server.process.wait(timeout=60)
    finally:
        server.stop()
    assert len(answers) == 2
    for answer in answers:
        assert isinstance(answer, httpx.Response), answer
        assert answer.status_code == 503, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert int(answer.headers["retry-after"]) >= 1
        assert answer.json()["code"] == "shutting_down"
