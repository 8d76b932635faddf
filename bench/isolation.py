"""Issue 3's row: warm-request p99 latency with compile bombs beside them / without."""

from __future__ import annotations

import multiprocessing
import socket
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from bench import expressions as ex
from bench import servers
from bench.core import Bench, Row, check, ms
from bench.load import Latencies, closed_loop, timed_post

#: Bombs the bomber prepares before it starts (a bomb takes the server ~45 ms to refuse, so a
#: window of a few seconds uses about a hundred; past these, it makes each as it goes).
PREPARED_BOMBS = 400
#: The row's requests are sent in blocks, without bombs and with them in turn, so that a
#: drift of the machine's speed during the row weighs on both sides alike.
BLOCKS = 4


def _bomb(url: str, stop: Any, go: Any, paused: Any, results: Any) -> None:
    """The bomber process: new, distinct compile bombs, one after the other, while ``go`` is
    set (``paused`` is set while it waits for it), until ``stop``; then its (status,
    seconds) of each, and its own CPU seconds, sent on ``results``.

    It stands in for clients on other machines, so it takes as little of this machine's CPU
    as it can, as wrk does: its requests are made before it starts, and it speaks HTTP/1.1
    on a socket itself (httpx took 2 ms of CPU a bomb, more than the server's 1.3 ms)."""
    host, port = url.removeprefix("http://").split(":")
    prepared = [_request(host, salt) for salt in range(1, PREPARED_BOMBS + 1)]
    outcomes: list[tuple[int, float]] = []
    cpu = time.process_time()
    with socket.create_connection((host, int(port))) as sock, sock.makefile("rb") as reader:
        salt = 0
        while not stop.is_set():
            if not go.is_set():
                paused.set()
                go.wait(0.05)
                continue
            paused.clear()
            salt += 1
            request = prepared[salt - 1] if salt <= PREPARED_BOMBS else _request(host, salt)
            started = time.perf_counter()
            try:
                sock.sendall(request)
                status = _response_status(reader)
                outcomes.append((status, time.perf_counter() - started))
            except OSError:
                outcomes.append((0, float("nan")))
                break
    results.send((outcomes, time.process_time() - cpu))


def _request(host: str, salt: int) -> bytes:
    """The whole HTTP request of bomb number ``salt``."""
    body = orjson.dumps(ex.bomb_body(salt))
    return (f"POST /v1/differentiate HTTP/1.1\r\nHost: {host}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body


def _response_status(reader: Any) -> int:
    """Read one whole response (the server always sends its length); its status."""
    status = int(reader.readline().split()[1])
    length = 0
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if reader.read(length) is None:
        raise OSError("the connection closed")
    return status


@dataclass
class Bomber:
    """A process that sends bombs while it is not paused. A process, not a thread: a thread
    of the measuring process would take the GIL from the closed-loop client, whose latency
    the row reports."""

    url: str
    outcomes: list[tuple[int, float]] = field(default_factory=list)
    cpu_seconds: float = 0.0
    _context: Any = field(default_factory=lambda: multiprocessing.get_context("spawn"))
    _stop: Any = None
    _go: Any = None
    _paused: Any = None
    _process: Any = None
    _results: Any = None

    def __enter__(self) -> Bomber:
        self._stop, self._go, self._paused = (self._context.Event() for _ in range(3))
        self._results, sending = self._context.Pipe(duplex=False)
        self._process = self._context.Process(
            target=_bomb, name="bomber", daemon=True,
            args=(self.url, self._stop, self._go, self._paused, sending))
        self._process.start()
        self.pause()  # once it has made its requests
        return self

    def pause(self) -> None:
        """Stop sending bombs; returns once the one in flight is answered."""
        self._go.clear()
        self._paused.clear()
        if not self._paused.wait(120):
            raise RuntimeError("the bomber did not pause")

    def resume(self) -> None:
        self._go.set()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._go.set()
        if self._results.poll(120):
            self.outcomes, self.cpu_seconds = self._results.recv()
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()


def _joined(parts: list[Latencies]) -> Latencies:
    return Latencies([s for part in parts for s in part.seconds],
                     sum(part.failures for part in parts), sum(part.wall_s for part in parts))


def isolation(bench: Bench) -> Row:
    """p99 of closed-loop warm requests while bombs compile / the same p99 with none."""
    plan = bench.plan
    count = plan.isolation_requests
    row = Row("isolation", "isolation: warm p99 latency with compile bombs / without",
              "<= 1.5")
    body = ex.warm_body()
    env = {"NABLA_COMPILE_TIMEOUT_SECONDS": str(plan.bomb_timeout_seconds)}
    with servers.nabla(**env) as server:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            _, response = timed_post(client, orjson.dumps(body))
        check(response, "isolation warm request")
        closed_loop(server.url, body, 300)  # warm-up
        quiet_parts, busy_parts = [], []
        with Bomber(server.url) as bomber:
            for _ in range(BLOCKS):
                bomber.pause()
                quiet_parts.append(closed_loop(server.url, body, count // BLOCKS))
                bomber.resume()
                time.sleep(0.2)  # its first bomb is in a worker
                busy_parts.append(closed_loop(server.url, body, count // BLOCKS))
            bomber.pause()
        memory = server.memory()
    quiet, busy = _joined(quiet_parts), _joined(busy_parts)
    statuses = Counter(str(status) for status, _ in bomber.outcomes)
    bomb_seconds = [s for _, s in bomber.outcomes if s == s]
    ours, theirs = busy.percentile(99), quiet.percentile(99)
    row.nabla, row.baseline, row.ratio = ms(ours), ms(theirs), ours / theirs
    failures = quiet.failures + busy.failures
    row.met = row.ratio <= 1.5 and failures == 0
    row.details = (
        f"{count} closed-loop requests per phase (one connection), in {BLOCKS} blocks of each "
        f"in turn; p50 "
        f"{ms(busy.percentile(50))} with bombs, {ms(quiet.percentile(50))} without; window "
        f"{busy.wall_s:.1f} s with bombs; {len(bomber.outcomes)} bombs answered (from a "
        f"process of their own, from 0.2 s before each block with bombs to its end), answers "
        f"{dict(statuses)}, each "
        f"{ms(min(bomb_seconds, default=0))}-{ms(max(bomb_seconds, default=0))}, the "
        f"bomber's CPU {ms(bomber.cpu_seconds / max(1, len(bomber.outcomes)))} a bomb; compile "
        f"budget {plan.bomb_timeout_seconds} s; failed warm requests {failures}; "
        f"server RSS after {memory['server'] / 1024**3:.2f} GiB")
    row.data = {"p99_bombs_s": ours, "p99_quiet_s": theirs, "p50_bombs_s":
                busy.percentile(50), "p50_quiet_s": quiet.percentile(50),
                "bomb_statuses": dict(statuses), "bomb_seconds": bomb_seconds,
                "window_s": busy.wall_s, "failures": failures,
                "bomber_cpu_s": bomber.cpu_seconds}
    return row
