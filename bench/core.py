"""What every row shares: the plan of a run, a row of the table, the main server."""

from __future__ import annotations

import subprocess
import sys
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from bench import servers
from bench.load import write_temp

GIB = 1024**3


@dataclass(frozen=True)
class Plan:
    """How big and how long each row is (``quick`` makes a smaller, faster run)."""

    quick: bool = False
    seed: int = 0
    warm_seconds: float = 5.0
    warm_rounds: int = 3
    warmup_seconds: float = 2.0
    cold_count: int = 20
    rosenbrock_n: int = 100
    restart_n: int = 150
    vector_n: int = 100_000
    batch_points: int = 100_000
    batch_repeats: int = 5
    isolation_requests: int = 8000
    bomb_timeout_seconds: int = 10

    @classmethod
    def make(cls, quick: bool, seed: int) -> Plan:
        if not quick:
            return cls(seed=seed)
        return cls(quick=True, seed=seed, warm_seconds=2.0, warm_rounds=2, warmup_seconds=1.0,
                   cold_count=6,
                   rosenbrock_n=30, restart_n=40, batch_points=20_000, batch_repeats=2,
                   isolation_requests=1500)


@dataclass
class Row:
    """One line of the table, with what it is based on."""

    key: str
    figure: str
    goal: str
    nabla: str = "-"
    baseline: str = "-"
    ratio: float | None = None
    met: bool | None = None
    details: str = ""
    error: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


class Bench:
    """Shared state of a run: the plan, the main nabla server (started lazily), memos."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.stack = ExitStack()
        self.server: servers.Server | None = None
        self.memo: dict[str, Any] = {}

    def main_server(self) -> servers.Server:
        """The nabla server of rows 1 to 7, started on first use."""
        if self.server is None:
            self.server = self.stack.enter_context(servers.nabla())
        if self.server.proc is not None and self.server.proc.poll() is not None:
            raise RuntimeError(f"the nabla server has exited; log:\n{self.server.tail()}")
        return self.server

    def close(self) -> None:
        """Stop every server started so far."""
        self.stack.close()
        self.server = None


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds >= 0.1 else f"{seconds * 1000:.1f} ms"


def check(response: httpx.Response, what: str) -> None:
    if response.status_code != 200:
        raise RuntimeError(f"{what}: HTTP {response.status_code}: {response.text[:300]}")


def baseline(mode: str, job: dict[str, Any], timeout: float = 900) -> list[float]:
    """Run ``python -m bench.baselines MODE`` in a fresh subprocess; its seconds."""
    path = write_temp(orjson.dumps(job), ".json")
    try:
        done = subprocess.run([sys.executable, "-m", "bench.baselines", mode, str(path)],
                              cwd=servers.ROOT, capture_output=True, text=True,
                              timeout=timeout, check=False)
    finally:
        path.unlink()
    if done.returncode != 0:
        raise RuntimeError(f"baseline {mode} failed: {done.stderr[-2000:]}")
    seconds: list[float] = orjson.loads(done.stdout.strip().splitlines()[-1])["seconds"]
    return seconds


