"""Rate limits (429) and API keys (401) of /v1/: per client, in memory or shared through a
real Redis, failing over to memory when Redis fails; probes, metrics and docs never limited.

The apps here are real ``create_app`` instances served in process (httpx's ASGI transport);
``GET /v1/functions`` is the cheapest /v1/ request. Client addresses are only labels in the
ASGI scope: no traffic leaves the process, except to the test's own redis-server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.api import ratelimit
from app.api.apikeys import key_hash
from app.config import Settings
from app.main import create_app
from tests.conftest import run_async
from tests.ops_support import ROOT
from tests.redis_support import RedisServer

PROBLEM = "application/problem+json"
FIELDS = ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "ratelimit-policy")
KEY_A, KEY_B = "nabla-test-key-a-7Yq2", "nabla-test-key-b-Jc9w"


class Served:
    """A ``create_app`` instance with its lifespan running, on the tests' one event loop
    (a server has one: Redis connections belong to it)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, **settings: Any) -> None:
        self.loop = loop
        self.app = create_app(Settings(in_process=True, interpret=False, **settings))
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task: asyncio.Future[None] | None = None
        self._lifespan("startup")

    def _lifespan(self, event: str) -> None:
        async def step() -> None:
            if self.task is None:
                scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
                self.task = asyncio.ensure_future(
                    self.app(scope, self.inbox.get, self.outbox.put))
            await self.inbox.put({"type": f"lifespan.{event}"})
            reply = await self.outbox.get()
            assert reply["type"] == f"lifespan.{event}.complete", reply

        asyncio.run_coroutine_threadsafe(step(), self.loop).result(timeout=60)

    def stop(self) -> None:
        """Shut the app down (its lifespan closes the Redis connections)."""
        self._lifespan("shutdown")

    def get(self, paths: list[str], client: str = "127.0.0.2",
            headers: dict[str, str] | None = None) -> list[httpx.Response]:
        """GET each path in turn as the client at address ``client``."""
        async def go() -> list[httpx.Response]:
            transport = httpx.ASGITransport(app=self.app, client=(client, 50000))
            async with httpx.AsyncClient(transport=transport, base_url="http://nabla",
                                         headers=headers) as http:
                return [await http.get(path) for path in paths]

        return asyncio.run_coroutine_threadsafe(go(), self.loop).result(timeout=60)


@pytest.fixture
def serve(event_loop_thread: asyncio.AbstractEventLoop) -> Iterator[Callable[..., Served]]:
    """Start apps with the given settings; each is shut down after the test."""
    started: list[Served] = []

    def start(**settings: Any) -> Served:
        started.append(Served(event_loop_thread, **settings))
        return started[-1]

    yield start
    for served in started:
        served.stop()


def statuses(responses: list[httpx.Response]) -> list[int]:
    return [r.status_code for r in responses]


def assert_rate_limited(response: httpx.Response, limit: int, window: int) -> None:
    assert response.status_code == 429
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["code"] == "rate_limited" and problem["status"] == 429
    assert (problem["limit"], problem["limit_value"], problem["window_seconds"]) == (
        "rate_limit", limit, window)
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= window
    assert int(response.headers["ratelimit-reset"]) == retry_after
    assert response.headers["ratelimit-remaining"] == "0"
    assert response.headers["ratelimit-limit"] == str(limit)
    assert response.headers["ratelimit-policy"] == f"{limit};w={window}"


Serve = Callable[..., Served]
API = ["/v1/functions"]


def test_a_client_over_its_limit_gets_429_with_retry_after_and_the_ratelimit_fields(
        serve: Serve) -> None:
    responses = serve(rate_limit="3/minute").get(API * 5)
    assert statuses(responses) == [200, 200, 200, 429, 429]
    assert [r.headers["ratelimit-remaining"] for r in responses[:3]] == ["2", "1", "0"]
    assert all(set(FIELDS) <= set(r.headers) for r in responses)
    assert "retry-after" not in responses[0].headers
    assert_rate_limited(responses[3], 3, 60)


def test_each_address_has_its_own_limit(serve: Serve) -> None:
    app = serve(rate_limit="2/minute")
    assert statuses(app.get(API * 3, client="127.0.0.2")) == [200, 200, 429]
    assert statuses(app.get(API * 3, client="127.0.0.3")) == [200, 200, 429]


def test_probes_metrics_docs_and_the_page_are_never_limited(serve: Serve) -> None:
    app = serve(rate_limit="1/minute")
    assert statuses(app.get(API * 2)) == [200, 429]
    others = ["/livez", "/readyz", "/metrics", "/docs", "/openapi.json", "/"] * 3
    for response in app.get(others):
        assert response.status_code == 200, response.request.url
        assert not set(FIELDS) & set(response.headers)


def test_several_limits_report_the_one_nearest_to_refusing(serve: Serve) -> None:
    responses = serve(rate_limit="100/hour;2/minute").get(API * 3)
    assert statuses(responses) == [200, 200, 429]
    assert responses[1].headers["ratelimit-limit"] == "2"
    assert responses[1].headers["ratelimit-policy"] == "100;w=3600, 2;w=60"
    assert responses[2].json()["limit_value"] == 2


def test_no_limit_by_default(serve: Serve) -> None:
    assert Settings().rate_limit == ""
    responses = serve().get(API * 30)
    assert statuses(responses) == [200] * 30
    assert not set(FIELDS) & set(responses[-1].headers)


def test_a_bad_rate_limit_is_refused_at_startup() -> None:
    with pytest.raises(ValueError, match="NABLA_RATE_LIMIT='lots' is not a rate limit"):
        create_app(Settings(rate_limit="lots"))


def test_memory_counters_are_swept_once_a_second_not_after_every_request() -> None:
    # limits' memory storage swept every client's counters after nearly every request:
    # O(clients) on the event loop each time (1.3 ms a request with 10,000 clients).
    sweeps = 0
    storage = ratelimit.SweptMemoryStorage()
    sweep = storage._MemoryStorage__expire_events  # type: ignore[attr-defined]

    async def counted() -> None:
        nonlocal sweeps
        sweeps += 1
        await sweep()

    storage._MemoryStorage__expire_events = counted  # type: ignore[attr-defined]
    limiter = ratelimit.Limiter(ratelimit.parse_limits("1000/minute"))
    limiter.local = ratelimit.SlidingWindowCounterRateLimiter(storage)

    async def requests() -> None:
        for client in range(200):
            await limiter.hit(f"ip:127.0.0.{client % 50}")
            await asyncio.sleep(0)

    run_async(requests())  # a loop of its own (Playwright may hold this thread's)
    assert 1 <= sweeps <= 2


# API keys ---------------------------------------------------------------------------------

HASHES = f"{key_hash(KEY_A)}, {key_hash(KEY_B)}"


@pytest.mark.parametrize("headers", [None, {"Authorization": "Bearer wrong-key"},
                                     {"X-API-Key": "wrong-key"}, {"Authorization": KEY_A}],
                         ids=["none", "wrong-bearer", "wrong-header", "no-scheme"])
def test_without_a_known_key_the_api_answers_401(serve: Serve,
                                                 headers: dict[str, str] | None) -> None:
    (response,) = serve(api_key_hashes=HASHES).get(API, headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"].startswith("Bearer")
    problem = response.json()
    assert problem["code"] == "unauthorized" and "Authorization: Bearer" in problem["detail"]
    assert "wrong-key" not in response.text and KEY_A not in response.text


@pytest.mark.parametrize("headers", [{"Authorization": f"Bearer {KEY_A}"},
                                     {"authorization": f"bearer {KEY_B}"},
                                     {"X-API-Key": KEY_A}], ids=["bearer", "lower", "x-api-key"])
def test_a_known_key_is_served(serve: Serve, headers: dict[str, str]) -> None:
    assert statuses(serve(api_key_hashes=HASHES).get(API, headers=headers)) == [200]


def test_keys_guard_only_the_api(serve: Serve) -> None:
    app = serve(api_key_hashes=HASHES)
    assert statuses(app.get(["/livez", "/readyz", "/metrics", "/docs", "/"])) == [200] * 5


def test_limits_are_per_key_not_per_address_when_keys_are_configured(serve: Serve) -> None:
    app = serve(api_key_hashes=HASHES, rate_limit="2/minute")
    key_a, key_b = {"Authorization": f"Bearer {KEY_A}"}, {"X-API-Key": KEY_B}
    assert statuses(app.get(API * 3, headers=key_a)) == [200, 200, 429]
    assert statuses(app.get(API * 2, headers=key_b)) == [200, 200]
    assert statuses(app.get(API, client="127.0.0.9", headers=key_a)) == [429]


def test_keys_are_never_logged(serve: Serve, caplog: pytest.LogCaptureFixture) -> None:
    app = serve(api_key_hashes=HASHES, rate_limit="1/minute")
    with caplog.at_level(logging.DEBUG):
        app.get(API * 2, headers={"Authorization": f"Bearer {KEY_A}"})
        app.get(API, headers={"X-API-Key": "not-a-key-Zx81"})
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "/v1/functions" in logged  # the access log saw the requests
    assert KEY_A not in logged and "not-a-key-Zx81" not in logged


def test_the_configuration_holds_hashes_never_keys(serve: Serve, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="never the key itself") as raised:
        create_app(Settings(api_key_hashes=f"{key_hash(KEY_B)},{KEY_A}"))
    assert KEY_A not in str(raised.value) and "number 2" in str(raised.value)
    listed = tmp_path / "keys"
    listed.write_text(f"# the team's keys\n{key_hash(KEY_A)}  # alice\n\n{key_hash(KEY_B)}\n")
    app = serve(api_key_file=str(listed))
    for key in (KEY_A, KEY_B):
        assert statuses(app.get(API, headers={"X-API-Key": key})) == [200]
    assert statuses(app.get(API)) == [401]


@pytest.mark.slow
def test_the_server_does_not_start_without_its_key_file(tmp_path: Path) -> None:
    env = {**os.environ, "NABLA_API_KEY_FILE": str(tmp_path / "missing")}
    done = subprocess.run([sys.executable, "-c", "import app.main"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "FileNotFoundError" in done.stderr


# Shared through Redis ---------------------------------------------------------------------

@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    yield server
    server.stop()


def test_replicas_share_one_limit_through_redis(serve: Serve, redis_server: RedisServer) -> None:
    first, second = (serve(rate_limit="4/minute", redis_url=redis_server.url) for _ in "12")
    seen = [app.get(API)[0] for app in (first, second, first, second, first)]
    assert statuses(seen) == [200, 200, 200, 200, 429]
    assert [r.headers["ratelimit-remaining"] for r in seen] == ["3", "2", "1", "0", "0"]
    assert_rate_limited(seen[4], 4, 60)
    assert statuses(second.get(API)) == [429]
    assert statuses(second.get(API, client="127.0.0.3")) == [200]


def test_redis_down_fails_over_to_memory_and_back(serve: Serve, redis_server: RedisServer,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(ratelimit, "REDIS_RETRY_SECONDS", 0.0)  # try Redis on every request
    app = serve(rate_limit="3/minute", redis_url=redis_server.url)
    assert statuses(app.get(API)) == [200]  # counted in Redis
    redis_server.stop()
    with caplog.at_level(logging.WARNING, logger="nabla.ratelimit"):
        down = app.get(API * 4)
    assert statuses(down) == [200, 200, 200, 429]  # still up, still limited, in memory
    assert "Redis failed" in caplog.text
    redis_server.start()  # the same port, empty: Redis counts again, from zero
    assert statuses(app.get(API * 4)) == [200, 200, 200, 429]


def test_a_silent_redis_costs_a_timeout_not_a_hang(serve: Serve,
                                                   redis_server: RedisServer) -> None:
    app = serve(rate_limit="2/minute", redis_url=redis_server.url)
    assert statuses(app.get(API)) == [200]
    redis_server.pause()
    try:
        # The first request waits for Redis's socket timeout, then memory counts; the next
        # ones skip Redis for REDIS_RETRY_SECONDS.
        assert statuses(app.get(API * 3)) == [200, 200, 429]
    finally:
        redis_server.resume()
