"""Fixtures for browser tests: a real uvicorn server and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, expect, sync_playwright

from bench.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
STARTUP_SECONDS = 120
# Generous, not a timing claim: the first request of an expression compiles it with JAX.
expect.set_options(timeout=60_000)


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"uvicorn exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"uvicorn did not become ready in {STARTUP_SECONDS} s:\n{log.read_text()}")


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a real nabla server on 127.0.0.1, started for this session."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("server") / "uvicorn.log"
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    command = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "warning"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    try:
        _wait_ready(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium (Playwright's own browser downloads are not used)."""
    if not Path(CHROMIUM).exists():
        # The same policy as scripts/test.sh: CI must run these tests, a local run may not.
        missing = f"Chromium ({CHROMIUM}) is missing: install it as root (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{missing}; CI runs the browser tests")
        pytest.skip(missing)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                              headless=True)
        yield chromium
        chromium.close()


@dataclass
class Watched:
    """A page with every request, page error and console error it produced."""

    page: Page
    origin: str
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    expected_console: tuple[str, ...] = ()

    def foreign_requests(self) -> list[str]:
        """Requests that went anywhere but the server under test."""
        local = (f"{self.origin}/", "data:", "blob:", "about:")
        return [url for url in self.requests if not url.startswith(local) and url != self.origin]

    def assert_clean(self) -> None:
        """No request left the server, and no JavaScript error happened."""
        assert self.requests, "the page made no requests at all"
        assert self.foreign_requests() == []
        assert self.errors == []

    def screenshot(self, name: str) -> Path:
        """A full-page screenshot in test-artifacts/."""
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


def _watch(page: Page, origin: str) -> Watched:
    watched = Watched(page, origin)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and not any(
            text in message.text for text in watched.expected_console
        ):
            watched.errors.append(f"console: {message.text}")

    def on_request(request: Request) -> None:
        watched.requests.append(request.url)

    page.on("request", on_request)
    page.on("console", on_console)
    page.on("pageerror", lambda error: watched.errors.append(f"pageerror: {error}"))
    return watched


def _open(browser: Browser, server_url: str, viewport: dict[str, int]) -> Iterator[Watched]:
    context = browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    context.set_default_timeout(60_000)
    page = context.new_page()
    try:
        yield _watch(page, server_url)
    finally:
        context.close()


@pytest.fixture
def desktop(browser: Browser, server_url: str) -> Iterator[Watched]:
    """A watched desktop-sized page."""
    yield from _open(browser, server_url, DESKTOP)


@pytest.fixture
def phone(browser: Browser, server_url: str) -> Iterator[Watched]:
    """A watched phone-sized page."""
    yield from _open(browser, server_url, PHONE)
