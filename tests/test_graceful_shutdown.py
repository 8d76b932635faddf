"""Requests in flight when the server gets SIGTERM still finish, with 200."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.ops_support import Server, start_server

pytestmark = pytest.mark.slow

# The first request of a 30-variable Rosenbrock function with its Hessian compiles for
# about a second: long enough to be in flight when the signal arrives. (The first tier
# would answer it in tens of milliseconds, so the server compiles every request.)
N = 30
ROSENBROCK = " + ".join(f"100*(x{i + 1} - x{i}^2)^2 + (1 - x{i})^2" for i in range(N - 1))


def in_progress(server: Server) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith('nabla_http_requests_in_progress{method="POST"}'):
            return float(line.split()[-1])
    return 0.0


def wait_until_in_flight(server: Server, done: threading.Event) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not done.is_set():
        if in_progress(server) >= 1:
            return
        time.sleep(0.01)
    pytest.fail("the request was never seen in flight")


def test_request_in_flight_at_sigterm_completes(tmp_path: Path) -> None:
    server = start_server(log=tmp_path / "server.log", env={"NABLA_INTERPRET": "false"})
    responses: list[httpx.Response] = []
    done = threading.Event()

    def send() -> None:
        try:
            point = {f"x{i}": 1.5 for i in range(N)}
            responses.append(httpx.post(f"{server.url}/v1/differentiate", timeout=120,
                                        json={"expression": ROSENBROCK, "at": point},
                                        headers={"X-Request-ID": "in-flight"}))
        finally:
            done.set()

    sender = threading.Thread(target=send)
    try:
        sender.start()
        wait_until_in_flight(server, done)
        server.process.terminate()
        sender.join(timeout=120)
        status = server.process.wait(timeout=60)
    finally:
        server.stop()
    (response,) = responses
    assert response.status_code == 200
    assert response.json()["value"] == pytest.approx((N - 1) * (100 * 0.75**2 + 0.25))
    # uvicorn re-raises the signal once it has shut down cleanly.
    assert status in (0, -signal.SIGTERM)
    events = [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]
    messages = [e.get("message") for e in events]
    shutting_down = messages.index("Shutting down")
    finished = next(i for i, e in enumerate(events) if e.get("request_id") == "in-flight"
                    and e.get("logger") == "nabla.access")
    assert finished > shutting_down, "the request finished before the signal; not a test"
    assert events[finished]["status"] == 200
