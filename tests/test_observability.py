"""Request ids, JSON access logs and Prometheus metrics, in process."""

from __future__ import annotations

import concurrent.futures
import io
import json
import logging
import sys
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.config import Settings
from app.main import create_app
from app.ops import logs
from app.ops.logs import JSONFormatter
from tests.conftest import run_async

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class App:
    """A fresh application with its own caches and metrics, called through ASGI."""

    def __init__(self) -> None:
        self.app = create_app(Settings(interpret=False, response_cache_bytes=0))

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://nabla") as c:
                return await c.request(method, path, **kwargs)

        response: httpx.Response = run_async(go())
        return response

    def samples(self) -> Samples:
        response = self.request("GET", "/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        return {(s.name, frozenset(s.labels.items())): s.value
                for family in text_string_to_metric_families(response.text)
                for s in family.samples}


@pytest.fixture()
def service() -> Iterator[App]:
    yield App()


def labels(**kv: str) -> frozenset[tuple[str, str]]:
    return frozenset(kv.items())


def test_request_id_is_echoed(service: App) -> None:
    response = service.request("GET", "/livez", headers={"X-Request-ID": "trace-42.a"})
    assert response.headers["X-Request-ID"] == "trace-42.a"


@pytest.mark.parametrize("sent", [None, "", "a b", "x" * 129, "id\tforged=field"],
                         ids=["missing", "empty", "space", "too-long", "tab"])
def test_request_id_is_generated_when_missing_or_implausible(service: App,
                                                             sent: str | None) -> None:
    headers = {} if sent is None else {"X-Request-ID": sent}
    first = service.request("GET", "/livez", headers=headers).headers["X-Request-ID"]
    second = service.request("GET", "/livez", headers=headers).headers["X-Request-ID"]
    assert len(first) == 32 and int(first, 16) >= 0
    assert first != second


def test_one_json_log_line_per_request(service: App, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="nabla.access"):
        service.request("POST", "/v1/differentiate", headers={"X-Request-ID": "req-1"},
                        json={"expression": "x^2", "at": {"x": 3}})
    (record,) = [r for r in caplog.records if r.name == "nabla.access"]
    line = JSONFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["request_id"] == "req-1"
    assert entry["method"] == "POST"
    assert entry["route"] == "/v1/differentiate"
    assert entry["status"] == 200
    assert entry["duration_s"] >= 0
    assert entry["level"] == "info"


def test_the_access_line_written_directly_is_the_formatters(
        monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    logs.configure("info", "json")
    handler = next(h for h in logging.getLogger("nabla").handlers if h.formatter)
    monkeypatch.setattr(handler, "stream", stream)
    monkeypatch.setattr(logging.getLogger(), "handlers", [])  # ours alone: the direct path
    records: list[logging.LogRecord] = []
    monkeypatch.setattr(handler, "handle", records.append)  # a LogRecord would come here
    access = logging.getLogger("nabla.access")
    def write() -> None:  # in a thread without an event loop: at once (Playwright's sync
        token = logs.REQUEST_ID.set("req-7")  # API may have one in pytest's main thread)
        try:
            logs.info_line(access, "request", {"status": 200, "route": "/v1/x"})
        finally:
            logs.REQUEST_ID.reset(token)

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(write).result()
    assert records == []  # written without a LogRecord
    direct = json.loads(stream.getvalue())
    record = logging.LogRecord("nabla.access", logging.INFO, __file__, 1, "request", None, None)
    record.created = datetime.fromisoformat(direct["time"]).timestamp()
    record.fields = {"status": 200, "route": "/v1/x"}
    token = logs.REQUEST_ID.set("req-7")
    try:
        formatted = JSONFormatter().format(record)
    finally:
        logs.REQUEST_ID.reset(token)
    assert stream.getvalue() == formatted + "\n"
    assert list(direct) == ["time", "level", "logger", "message", "request_id", "status",
                            "route"]


def test_formatter_keeps_exceptions_on_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("nabla", logging.ERROR, __file__, 1, "failed", None,
                                   exc_info=sys.exc_info())
    entry = json.loads(JSONFormatter().format(record))
    assert "ValueError: boom" in entry["exception"]


def test_requests_are_counted_by_route_template_and_status(service: App) -> None:
    body = {"expression": "sin(x)", "at": {"x": 1}}
    for _ in range(2):
        assert service.request("POST", "/v1/differentiate", json=body).status_code == 200
    service.request("POST", "/v1/differentiate", json={"expression": "sin(", "at": {"x": 1}})
    service.request("GET", "/no/such/page/123")
    samples = service.samples()
    route = "/v1/differentiate"
    assert samples[("nabla_http_requests_total",
                    labels(method="POST", route=route, status="200"))] == 2
    assert samples[("nabla_http_requests_total",
                    labels(method="POST", route=route, status="422"))] == 1
    assert samples[("nabla_http_requests_total",
                    labels(method="GET", route="<unmatched>", status="404"))] == 1
    assert samples[("nabla_http_request_duration_seconds_count",
                    labels(method="POST", route=route, status="200"))] == 2
    assert not any("/no/such" in dict(lbl).get("route", "") for _, lbl in samples)


def test_compile_cache_and_compile_seconds(service: App) -> None:
    before = service.samples()
    compile_count = ("nabla_compile_seconds_count", labels(phase="compile"))
    # A constant unique to this test, so no other test has compiled this program.
    body = {"expression": "cos(x) * 1.2345678 + x^3", "at": {"x": 0.5}}
    for _ in range(3):
        assert service.request("POST", "/v1/differentiate", json=body).status_code == 200
    after = service.samples()
    assert after[("nabla_compile_cache_misses_total", labels())] == 1
    assert after[("nabla_compile_cache_hits_total", labels())] == 2
    assert after[("nabla_compile_cache_entries", labels())] == 1
    assert after[compile_count] > before.get(compile_count, 0)
    assert after[("nabla_compile_seconds_sum", labels(phase="compile"))] > 0
