"""A compile bomb in flight never stops warm requests: a real uvicorn, real HTTP."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import start_server

pytestmark = pytest.mark.slow

BOMB = " * ".join(f"sin(x{i % 25} * {i + 1} + x{(i * 7) % 25})" for i in range(500))
WARM = {"expression": "x^2 * y + sin(z)", "at": {"x": 1, "y": 2, "z": 3}}


@pytest.fixture(scope="module")
def budget_server() -> Iterator[str]:
    proc, url = start_server({"NABLA_COMPILE_TIMEOUT_SECONDS": "4", "NABLA_COMPILE_WORKERS": "1"})
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def start_bomb(url: str) -> tuple[threading.Thread, dict[str, httpx.Response]]:
    """Send the compile bomb from a thread; its response lands in the dict."""
    outcome: dict[str, httpx.Response] = {}

    def send_bomb() -> None:
        with httpx.Client(base_url=url, timeout=60) as bomber:
            outcome["bomb"] = bomber.post("/v1/differentiate", json={
                "expression": BOMB, "at": {f"x{i}": 0.1 for i in range(25)}})

    thread = threading.Thread(target=send_bomb)
    thread.start()
    return thread, outcome


def warm_at(x: float) -> dict[str, object]:
    """The warm request at a new point: computed, not answered by the response memo."""
    return {**WARM, "at": {**WARM["at"], "x": x}}  # type: ignore[dict-item]


def test_bomb_is_refused_within_budget_while_warm_requests_succeed(budget_server: str) -> None:
    with httpx.Client(base_url=budget_server, timeout=60) as client:
        assert client.post("/v1/differentiate", json=WARM).status_code == 200  # compiled
        thread, outcome = start_bomb(budget_server)
        answered = 0
        while thread.is_alive() and answered < 2000:
            x = 1 + answered * 1e-3
            response = client.post("/v1/differentiate", json=warm_at(x))
            assert response.status_code == 200
            assert response.json()["gradient"][1] == pytest.approx(x * x)  # d/dy x^2*y
            assert client.get("/livez").status_code == 200
            answered += 1
        thread.join(timeout=60)
        assert answered > 10  # warm requests went on while the bomb compiled
        bomb = outcome["bomb"]
        assert bomb.status_code == 422, bomb.text
        assert bomb.headers["content-type"] == "application/problem+json"
        assert bomb.json()["code"] == "too_complex"
        assert bomb.json()["limit"] == "compile_timeout_seconds"
        # the killed worker was replaced: a new expression still compiles
        fresh = client.post("/v1/differentiate", json={"expression": "cos(q)", "at": {"q": 0}})
        assert fresh.status_code == 200
        assert fresh.json()["value"] == 1.0


def test_overload_gets_503_with_retry_after_and_probes_still_answer() -> None:
    proc, url = start_server({"NABLA_MAX_CONCURRENT_REQUESTS": "1",
                              "NABLA_COMPILE_TIMEOUT_SECONDS": "3"})
    try:
        bomb, outcome = start_bomb(url)
        refused: list[httpx.Response] = []
        with httpx.Client(base_url=url, timeout=10) as client:
            # Sequencing only: the bomb takes the one slot first (it holds it while a worker
            # reads it and refuses it by its estimate, about half a second).
            while 'in_progress{method="POST"} 1.0' not in client.get("/metrics").text:
                assert bomb.is_alive(), "the bomb was never seen in progress"
            while bomb.is_alive():
                assert client.get("/livez").status_code == 200
                assert client.get("/readyz").status_code == 200
                response = client.post("/v1/differentiate", json={"expression": "x^2",
                                                                  "at": {"x": 1}})
                assert response.status_code in (200, 503)
                if response.status_code == 503:
                    refused.append(response)
        bomb.join()
        assert outcome["bomb"].status_code == 422
        assert refused, "no request was refused while the only slot was taken"
        for response in refused:
            assert response.headers["content-type"] == "application/problem+json"
            assert int(response.headers["retry-after"]) >= 1
            assert response.json()["code"] == "overloaded"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
