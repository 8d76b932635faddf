"""A real ``redis-server`` for tests: on a free loopback port, in a temporary folder.

scripts/test.sh installs Debian's ``redis-server`` when it is missing; without it a CI run
(``CI=true``) fails, and a local run skips the tests that need it, saying why.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis

from bench.servers import free_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
STARTUP_SECONDS = 20


def require_redis_server() -> None:
    """Fail (in CI) or skip (elsewhere) when ``redis-server`` is not installed."""
    if Path(REDIS_SERVER).is_file():
        return
    reason = (f"redis-server ({REDIS_SERVER}) is missing: scripts/test.sh installs it "
              "(apt-get install redis-server)")
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


class RedisServer:
    """One redis-server process: no persistence, loopback only; stop, pause and restart it."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        require_redis_server()
        self.folder = folder
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        """Start the server (again, on the same port) and wait until it answers PING."""
        command = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
                   "--dir", str(self.folder), "--save", "", "--appendonly", "no"]
        with (self.folder / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            try:  # a plain connect first: redis-py's client backs off between its retries
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            except OSError:
                time.sleep(0.02)
                continue
            with redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5) as client:
                if client.ping():
                    return
        self.stop()
        raise RuntimeError(f"redis-server did not answer:\n{self.log()}")

    def log(self) -> str:
        """What the server wrote."""
        return (self.folder / "redis.log").read_text(errors="replace")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and wait for it."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # in case it is paused
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def pause(self) -> None:
        """SIGSTOP: the server keeps its connections and answers nothing."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after ``pause``."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)
