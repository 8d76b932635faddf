"""Issue 3's row: warm-request p99 latency with compile bombs beside them / without."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
import orjson

from bench import expressions as ex
from bench import servers
from bench.core import Bench, Row, check, ms
from bench.load import closed_loop, timed_post


@dataclass
class Bomber:
    """A thread that keeps sending new, distinct compile bombs, one after the other."""

    url: str
    stop: threading.Event = field(default_factory=threading.Event)
    outcomes: list[tuple[int, float]] = field(default_factory=list)
    thread: threading.Thread | None = None

    def run(self) -> None:
        salt = 0
        with httpx.Client(base_url=self.url, timeout=120) as client:
            while not self.stop.is_set():
                salt += 1
                try:
                    seconds, response = timed_post(client, ex.bomb_body(salt))
                    self.outcomes.append((response.status_code, seconds))
                except httpx.HTTPError:
                    self.outcomes.append((0, float("nan")))

    def __enter__(self) -> Bomber:
        self.thread = threading.Thread(target=self.run, name="bomber", daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=120)


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
        quiet = closed_loop(server.url, body, count)
        with Bomber(server.url) as bomber:
            time.sleep(1.0)  # the first bomb is in a compile worker by now
            busy = closed_loop(server.url, body, count)
            during = len(bomber.outcomes)
        memory = server.memory()
    statuses = Counter(str(status) for status, _ in bomber.outcomes)
    bomb_seconds = [s for _, s in bomber.outcomes if s == s]
    ours, theirs = busy.percentile(99), quiet.percentile(99)
    row.nabla, row.baseline, row.ratio = ms(ours), ms(theirs), ours / theirs
    failures = quiet.failures + busy.failures
    row.met = row.ratio <= 1.5 and failures == 0
    row.details = (
        f"{count} closed-loop requests per phase (one connection); p50 "
        f"{ms(busy.percentile(50))} with bombs, {ms(quiet.percentile(50))} without; window "
        f"{busy.wall_s:.1f} s with bombs; {len(bomber.outcomes)} bombs sent "
        f"({during} answered within the window), answers {dict(statuses)}, each "
        f"{ms(min(bomb_seconds, default=0))}-{ms(max(bomb_seconds, default=0))}; compile "
        f"budget {plan.bomb_timeout_seconds} s; failed warm requests {failures}; "
        f"server RSS after {memory['server'] / 1024**3:.2f} GiB")
    row.data = {"p99_bombs_s": ours, "p99_quiet_s": theirs, "p50_bombs_s":
                busy.percentile(50), "p50_quiet_s": quiet.percentile(50),
                "bomb_statuses": dict(statuses), "bomb_seconds": bomb_seconds,
                "window_s": busy.wall_s, "failures": failures}
    return row
