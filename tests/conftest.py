"""Shared fixtures: settings, a differentiator, and a real uvicorn server with a client."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import ormsgpack
import pytest

from app.api.transport import JSON, MSGPACK, encode_response
from app.config import Settings
from app.service.pipeline import Service
from bench.servers import free_port
from schemas.differentiate import DifferentiateRequest, DifferentiateResponse

ROOT = Path(__file__).resolve().parent.parent
# Tests start cold: no persistent compile cache (in the user's folder) unless a test sets one;
# the servers tests start inherit this.
os.environ.setdefault("NABLA_CACHE_DIR", "")


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings(in_process=True, interpret=False)


@pytest.fixture(scope="session")
def xla_differentiator(settings: Settings) -> Service:
    """Every request compiled by XLA."""
    return Service(settings)


@pytest.fixture(scope="session")
def jets_differentiator() -> Service:
    """Every small request answered by the first tier (jets), never compiled."""
    differentiator = Service(Settings(in_process=True, interpret=True))
    differentiator.engine.compile_later = lambda spec: None  # type: ignore[method-assign]
    return differentiator


@pytest.fixture(scope="session", params=["xla", "jets"])
def differentiator(request: pytest.FixtureRequest, xla_differentiator: Service,
                   jets_differentiator: Service) -> Service:
    """Both tiers, in turn: each test using ``run`` runs against each."""
    return xla_differentiator if request.param == "xla" else jets_differentiator


@pytest.fixture(scope="session")
def event_loop_thread() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop on a thread of its own (Playwright's sync API holds the main one)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)
    loop.close()


def answering(service: Service, loop: asyncio.AbstractEventLoop) -> Any:
    """A function that differentiates a request given as a dict with ``service`` on
    ``loop``, in process (no HTTP), and checks the answer against the response model."""

    def _run(**body: Any) -> dict[str, Any]:
        request = DifferentiateRequest.model_validate(body)
        future = asyncio.run_coroutine_threadsafe(service.run(request), loop)
        result: dict[str, Any] = future.result()
        check_answer(bytes(encode_response(result, msgpack=False).body))
        return result

    return _run


@pytest.fixture(scope="session")
def run(differentiator: Service, event_loop_thread: asyncio.AbstractEventLoop) -> Any:
    """Differentiate a request given as a dict, in process (no HTTP)."""
    return answering(differentiator, event_loop_thread)


def run_async(coroutine: Any) -> Any:
    """Run a coroutine to the end on a fresh loop in a thread of its own (Playwright's sync
    API may be holding this thread's event loop)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def start_server(env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> tuple[
        subprocess.Popen[bytes], str]:
    """Start ``uvicorn app.main:app`` on a free loopback port; wait until /livez answers."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning", *args],
        cwd=ROOT, env={**os.environ, **(env or {})},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    proc, url = start_server()
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def check_answer(body: bytes, media_type: str = JSON) -> None:
    """The answer matches the documented response model exactly (no field more, none
    mistyped), so the schema and the real answer cannot drift apart."""
    if media_type.startswith(MSGPACK):
        DifferentiateResponse.model_validate(ormsgpack.unpackb(body), strict=True)
    else:
        DifferentiateResponse.model_validate_json(body, strict=True)


def check_differentiate_answer(response: httpx.Response) -> None:
    """An httpx response hook: every 200 answer of POST /v1/differentiate passes
    ``check_answer``."""
    request = response.request
    if (request.method, request.url.path, response.status_code) == (
            "POST", "/v1/differentiate", 200):
        check_answer(response.read(), response.headers.get("content-type", JSON))


@pytest.fixture(scope="session")
def api(server_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server_url, timeout=120,
                      event_hooks={"response": [check_differentiate_answer]}) as client:
        yield client


# Hypothesis draws the same examples on every run and machine (seeded from each test, no
# example database), so a failure can be replayed; HYPOTHESIS_PROFILE=explore draws new
# ones, for a search on purpose.
hypothesis.settings.register_profile("nabla", derandomize=True, database=None)
hypothesis.settings.register_profile("explore", derandomize=False)
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "nabla"))
