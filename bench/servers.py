"""Servers started by the benchmark: uvicorn on 127.0.0.1 and a free port, always stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
# The same uvicorn settings for nabla and for the echo baseline: one worker, no access log
# (nabla writes its own per-request log line, as in production), warnings only.
UVICORN_ARGS = ("--workers", "1", "--no-access-log", "--log-level", "warning")


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def rss_bytes(pid: int) -> int:
    """Resident memory of one process (VmRSS in /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _rss_or_zero(pid: int) -> int:
    try:
        return rss_bytes(pid)
    except OSError:  # it exited meanwhile
        return 0


def _role(pid: int) -> str:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "exited"
    if "resource_tracker" in command:
        return "resource tracker"
    return "compile worker" if "spawn_main" in command else "other"


def _stat_fields(pid: int) -> list[str] | None:
    # Fields of /proc/PID/stat after the command name: [0] state, [1] ppid, [19] start time.
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (children, grandchildren, ...)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        fields = _stat_fields(int(entry.name)) if entry.name.isdigit() else None
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[int] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def _start_time(pid: int) -> str | None:
    fields = _stat_fields(pid)
    return fields[19] if fields is not None and len(fields) > 19 else None


class Server:
    """``python -m uvicorn APP`` in a subprocess; a context manager that always stops it."""

    def __init__(self, app: str, env: dict[str, str] | None = None, ready_path: str = "/readyz",
                 name: str = "server") -> None:
        self.app = app
        self.env = env or {}
        self.ready_path = ready_path
        self.name = name
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
            prefix=f"nabla-bench-{name}-", suffix=".log", delete=False)
        self.log_path = Path(self._log.name)

    def start(self, timeout: float = 120.0) -> Server:
        """Start the server and wait until ``ready_path`` answers 200."""
        env = {**os.environ, **self.env}
        command = [sys.executable, "-m", "uvicorn", self.app, "--host", HOST,
                   "--port", str(self.port), *UVICORN_ARGS]
        self.proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.url, timeout=5.0) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; "
                                       f"log: {self.tail()}")
                try:
                    if client.get(self.ready_path).status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
        raise RuntimeError(f"{self.name} was not ready within {timeout:.0f} s; {self.tail()}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def memory(self) -> dict[str, Any]:
        """RSS of the server process and the sum over its child processes."""
        children = {pid: _rss_or_zero(pid) for pid in descendants(self.pid)}
        return {"server": rss_bytes(self.pid), "children": sum(children.values()),
                "child_count": len(children),
                "child_rss": {f"{pid} {_role(pid)}": rss for pid, rss in children.items()}}

    def tail(self, lines: int = 15) -> str:
        """The last lines of the server's output."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM, then SIGKILL; also any of its children that outlive it. The log is kept
        (and its path printed) only if the server had exited by itself."""
        died = self.proc is not None and self.proc.poll() is not None
        if self.proc is not None and self.proc.poll() is None:
            # (pid, start time): a pid that was reused meanwhile is never signalled.
            children = [(pid, _start_time(pid)) for pid in descendants(self.proc.pid)]
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            time.sleep(0.2)
            for pid, started in children:
                if started is not None and _start_time(pid) == started:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)
        self._log.close()
        if died:
            print(f"{self.name} log: {self.log_path}", flush=True)
        else:
            self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> Server:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()


def nabla(**env: str) -> Server:
    """A nabla server (``app.main:app``) with extra ``NABLA_*`` settings; without a
    persistent compile cache unless ``NABLA_CACHE_DIR`` is given, so first requests are
    first in every run."""
    return Server("app.main:app", env={"NABLA_CACHE_DIR": "", **env}, name="nabla")


def echo() -> Server:
    """The bare FastAPI echo baseline (``bench.echo_app:app``)."""
    return Server("bench.echo_app:app", ready_path="/livez", name="echo")
