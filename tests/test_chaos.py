"""Chaos: workers killed, stopped and continued, or sent SIGTERM from outside (as systemd's
KillMode=control-group does), at random moments under load (a real uvicorn).

After every fault, new expressions are answered 200 again within 10 s; whenever one was
refused, /readyz said 503 at that time; no answer ever blames the client (4xx), and every
answer is the right number. The faults and their moments come from a fixed seed.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from tests.ops_support import Server, start_server

pytestmark = pytest.mark.slow

SEED = 20261127
FAULTS = 8
RECOVERY_SECONDS = 10.0
WARM = "x^2 * y + sin(z)"


def worker_pids(server_pid: int) -> list[int]:
    """The server's worker processes (multiprocessing's spawned children)."""
    out = subprocess.run(["ps", "-ww", "-o", "pid=,args=", "--ppid", str(server_pid)],
                         capture_output=True, text=True, check=False).stdout
    return [int(line.split()[0]) for line in out.splitlines() if "spawn_main" in line]


def resume(pid: int) -> None:
    """SIGCONT, unless the server already replaced (killed) the stopped process."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGCONT)


@dataclass
class Log:
    """What the clients saw: (sent, answered, status) per request, and /readyz samples."""

    cold: list[tuple[float, float, int]] = field(default_factory=list)
    warm: list[int] = field(default_factory=list)
    ready: list[tuple[float, int]] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)


def cold_client(url: str, log: Log) -> None:
    """New expressions, one after another: small ones (first tier) and JVPs (XLA)."""
    with httpx.Client(base_url=url, timeout=60) as client:
        k = 0
        while not log.stop.is_set():
            k += 1
            a = 1 + k / 1000
            body: dict[str, object] = {"expression": f"{a!r}*x^2 + x", "at": {"x": 2.0}}
            if k % 2:
                body.update(derivatives=["value", "jvp"], tangent=[1.0])
            sent = time.monotonic()
            response = client.post("/v1/differentiate", json=body)
            log.cold.append((sent, time.monotonic(), response.status_code))
            if response.status_code == 200:
                data = response.json()
                derivative = data["jvp"] if k % 2 else data["gradient"][0]
                if data["value"] != pytest.approx(4 * a + 2) or derivative != pytest.approx(
                        4 * a + 1):
                    log.wrong.append(f"{body}: {data}")


def warm_client(url: str, log: Log) -> None:
    """One compiled expression at a new point each time (never from the memo)."""
    with httpx.Client(base_url=url, timeout=60) as client:
        k = 0
        while not log.stop.is_set():
            k += 1
            x = 1 + k * 1e-4
            response = client.post("/v1/differentiate", json={
                "expression": WARM, "at": {"x": x, "y": 2.0, "z": 3.0}})
            log.warm.append(response.status_code)
            if response.status_code == 200 and response.json()["gradient"][1] != \
                    pytest.approx(x * x):
                log.wrong.append(f"warm at {x}: {response.text}")
            time.sleep(0.01)


def readiness_sampler(url: str, log: Log) -> None:
    with httpx.Client(base_url=url, timeout=10) as client:
        while not log.stop.is_set():
            log.ready.append((time.monotonic(), client.get("/readyz").status_code))
            time.sleep(0.05)


def inject(rng: random.Random, server_pid: int) -> tuple[str, list[int], float]:
    """One fault: which, the pids it hit, and how long they stay stopped (0: not stopped)."""
    deadline = time.monotonic() + RECOVERY_SECONDS
    while not (pids := worker_pids(server_pid)):  # a pool may be starting its workers
        assert time.monotonic() < deadline, "the server has no worker processes"
        time.sleep(0.05)
    kind = rng.choice(["kill_one", "kill_all", "stop_all", "stop_one", "term_all"])
    hit = pids if kind.endswith("all") else [rng.choice(pids)]
    sig = {"kill": signal.SIGKILL, "stop": signal.SIGSTOP, "term": signal.SIGTERM}[kind[:4]]
    for pid in hit:
        os.kill(pid, sig)
    return kind, hit, (rng.uniform(0.5, 4.0) if sig == signal.SIGSTOP else 0.0)


@pytest.fixture(scope="module")
def chaos_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(log=tmp_path_factory.mktemp("chaos") / "server.log",
                          env={"NABLA_COMPILE_WORKERS": "1"})
    yield server
    for pid in worker_pids(server.process.pid):
        resume(pid)
    server.stop()


def test_stopped_workers_make_readyz_503_then_are_replaced(chaos_server: Server) -> None:
    url, pids = chaos_server.url, worker_pids(chaos_server.process.pid)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            time.sleep(0.5)  # stopped, not yet for STALL_SECONDS: not ready all the same
            assert client.get("/readyz").status_code == 503
            answer = client.post("/v1/differentiate", json={"expression": "x*0.77 + 1",
                                                            "at": {"x": 1}})
            assert answer.status_code == 200  # on the rebuilt pool
            assert answer.json()["value"] == pytest.approx(1.77)
            deadline = time.monotonic() + RECOVERY_SECONDS
            while client.get("/readyz").status_code != 200:
                assert time.monotonic() < deadline, "/readyz stayed 503 after the rebuild"
                time.sleep(0.05)
            metrics = client.get("/metrics").text
    finally:
        for pid in pids:
            resume(pid)
    assert 'nabla_worker_pool_rebuilds_total{pool="compile"}' in metrics
    deadline = time.monotonic() + RECOVERY_SECONDS
    while set(pids) & set(worker_pids(chaos_server.process.pid)):  # replaced, not kept
        assert time.monotonic() < deadline, "the stopped workers were not replaced"
        time.sleep(0.05)
    output = chaos_server.output()
    assert any(f"pid {pid} is stopped" in output for pid in pids)  # the worker is named


def test_new_expressions_recover_after_every_fault(chaos_server: Server) -> None:
    proc, url = chaos_server.process, chaos_server.url
    rng = random.Random(SEED)
    log = Log()
    threads = [threading.Thread(target=f, args=(url, log), daemon=True)
               for f in (cold_client, warm_client, readiness_sampler)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(FAULTS):
            time.sleep(rng.uniform(0.2, 1.5))  # a random moment, often mid-request
            kind, pids, stopped = inject(rng, proc.pid)
            if stopped:
                time.sleep(stopped)
                for pid in pids:
                    resume(pid)
            healed = time.monotonic()
            while not any(sent >= healed and status == 200 for sent, _, status in log.cold):
                assert time.monotonic() - healed < RECOVERY_SECONDS, (
                    f"no new expression answered within {RECOVERY_SECONDS} s after {kind} "
                    f"of {pids}")
                time.sleep(0.05)
    finally:
        log.stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert log.wrong == []
    assert set(log.warm) == {200}
    statuses = {status for _, _, status in log.cold}
    assert statuses <= {200, 503}, f"a fault of ours was answered {statuses - {200, 503}}"
    for sent, answered, status in log.cold:
        if status == 503:
            window = [s for t, s in log.ready if sent - 0.5 <= t <= answered + 0.5]
            assert 503 in window, "a new expression got 503 while /readyz said 200"
    assert sum(1 for *_, status in log.cold if status == 200) > FAULTS
