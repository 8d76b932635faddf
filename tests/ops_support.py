"""Helpers for tests that run a real server process on a free loopback port."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
STARTUP_SECONDS = 120


@dataclass
class Server:
    """A server process, its base URL and the file its output goes to."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        """Everything the process wrote so far (stdout and stderr together)."""
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM, then wait for the process to exit; its exit status."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def start_server(argv: Sequence[str] | None = None, *, log: Path,
                 env: Mapping[str, str] | None = None, cwd: Path = ROOT) -> Server:
    """Run ``argv`` (default ``python -m app.client.cli serve``) with NABLA_HOST/NABLA_PORT set to a
    free loopback port; return once ``/readyz`` answers 200 (workers warm)."""
    port = free_port()
    command = list(argv or [sys.executable, "-m", "app.client.cli", "serve"])
    environment = {**os.environ, **(env or {}), "NABLA_HOST": "127.0.0.1",
                   "NABLA_PORT": str(port)}
    with log.open("wb") as sink:
        process = subprocess.Popen(command, cwd=cwd, env=environment, stdout=sink,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = Server(process, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{server.output()}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"server did not answer /readyz:\n{server.output()}")
