"""The benchmark stays importable and its cheap parts work (no timing is asserted here)."""

from __future__ import annotations

import re
import socket
import threading

import httpx
import orjson
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from bench import echo_app, expressions, isolation, load, machine, report
from bench.__main__ import ROWS
from bench.core import Row
from bench.load import parse_wrk
from tests.conftest import run_async

pytestmark = pytest.mark.slow

WRK_OUTPUT = """Running 10s test @ http://127.0.0.1:8000
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     5.01ms    1.20ms  30.00ms   90.00%
  Latency Distribution
     50%    4.80ms
     75%    5.50ms
     90%    6.10ms
     99%   12.30ms
  31000 requests in 10.00s, 9.00MB read
  Non-2xx or 3xx responses: 3
Requests/sec:   3100.25
Transfer/sec:      0.90MB
"""


def test_every_issue_row_is_runnable() -> None:
    assert list(ROWS) == ["warm", "warm_computed", "cold", "cold_symbolic",
                          "cold_symengine", "scale", "scale_symengine", "restart", "vectorised",
                          "speculation", "batch", "transport", "tensor4", "taylor10", "memory",
                          "isolation", "matrix"]


def test_cold_expressions_are_distinct_and_use_three_variables() -> None:
    found = expressions.cold_expressions(20, seed=7)
    assert len(set(found)) == 20
    assert found == expressions.cold_expressions(20, seed=7)
    assert all(set(re.findall(r"[xyz]", text)) == {"x", "y", "z"} for text in found)


def test_workloads_have_the_issue_sizes() -> None:
    body = expressions.rosenbrock_body(100)
    assert len(body["variables"]) == 100 and body["expression"].count("100*") == 99
    assert expressions.bomb(1) != expressions.bomb(2)
    assert expressions.bomb(1).count("sin(") == 500
    assert len(expressions.batch_body(10)["points"]["z"]) == 10


def test_wrk_script_posts_the_body() -> None:
    script = expressions.wrk_script(expressions.warm_body())
    assert 'wrk.method = "POST"' in script
    payload = re.search(r"\[==\[(.*)\]==\]", script)
    assert payload is not None
    assert orjson.loads(payload.group(1)) == expressions.warm_body()


def test_distinct_wrk_runs_send_bodies_no_earlier_run_sent() -> None:
    """Each wrk run numbers its bodies from its own start: two runs that both started at 0
    sent the same bodies, and the response memo answered the second run's."""
    body = expressions.warm_body()
    starts = [re.search(r"local n = (\d+)", expressions.wrk_script(body, True, first))
              for first in (0, load.WRK_BODIES_PER_RUN)]
    assert [int(m.group(1)) for m in starts if m] == [0, load.WRK_BODIES_PER_RUN]
    assert "local n" not in expressions.wrk_script(body)  # one body, sent again and again


def test_wrk_report_is_parsed() -> None:
    result = parse_wrk(WRK_OUTPUT)
    assert result.requests_per_second == 3100.25
    assert result.non_2xx == 3
    assert result.latency_p99_s == pytest.approx(0.0123)


def test_echo_app_answers_like_nabla() -> None:
    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=echo_app.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://echo") as client:
            return await client.post("/v1/differentiate", json=expressions.warm_body())

    response = run_async(post())
    assert response.status_code == 200
    body = response.json()
    assert body["coordinates"] == ["x", "y", "z"]
    assert len(body["gradient"]) == 3 and len(body["hessian"]) == 3


def test_table_reports_errors_and_misses() -> None:
    rows = [Row("warm", "warm", ">= 0.8", "1 req/s", "2 req/s", 0.5, False),
            Row("cold", "cold", "-", error="RuntimeError: boom")]
    text = report.table(rows)
    assert "| 0.50 | >= 0.8 | **no** |" in text and "| error |" in text
    assert "ERROR RuntimeError: boom" in report.notes(rows)
    assert machine.describe()["nproc"] >= 1


def test_the_bomber_speaks_http_one_request_after_another_on_one_connection() -> None:
    """The isolation row's bomber writes its own requests and reads the answers' framing: a
    real uvicorn reads two bombs on one connection, and each answer is read whole."""
    app = FastAPI()
    seen: list[dict[str, object]] = []

    @app.post("/v1/differentiate")
    async def differentiate(request: Request) -> JSONResponse:
        seen.append(orjson.loads(await request.body()))
        return JSONResponse({"detail": "x" * (1000 * len(seen))}, status_code=421 + len(seen))

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            threading.Event().wait(0.05)
        statuses = []
        with socket.create_connection(("127.0.0.1", port)) as sock, sock.makefile("rb") as reader:
            for salt in (1, 2):
                sock.sendall(isolation._request("127.0.0.1", salt))
                statuses.append(isolation._response_status(reader))
    finally:
        server.should_exit = True
        thread.join(10)
    assert statuses == [422, 423]
    assert seen == [expressions.bomb_body(1), expressions.bomb_body(2)]
