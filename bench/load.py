"""Load generators: ``wrk`` for throughput, a closed-loop client for latency percentiles."""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import ormsgpack

from bench.expressions import wrk_script

_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


@dataclass(frozen=True)
class WrkResult:
    """What one wrk run reports."""

    requests_per_second: float
    requests: int
    non_2xx: int
    socket_errors: int
    latency_p50_s: float | None
    latency_p99_s: float | None


def _seconds(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def parse_wrk(output: str) -> WrkResult:
    """The figures of wrk's text report (run with ``--latency``)."""
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    if rate is None or total is None:
        raise RuntimeError(f"wrk reported no rate:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       output)
    percentiles = dict(re.findall(r"^\s+(50|99)(?:\.0+)?%\s+(\S+)", output, re.MULTILINE))
    return WrkResult(
        requests_per_second=float(rate.group(1)),
        requests=int(total.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(g) for g in errors.groups()) if errors else 0,
        latency_p50_s=_seconds(percentiles["50"]) if "50" in percentiles else None,
        latency_p99_s=_seconds(percentiles["99"]) if "99" in percentiles else None,
    )


def ensure_wrk() -> str:
    """The path of ``wrk``; installs the Debian package when it is missing (needs root)."""
    found = shutil.which("wrk")
    if found is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True,
                       capture_output=True)
        found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk is not installed: apt-get install wrk")
    return found


#: Distinct bodies a wrk run may send before it would repeat the next run's first one.
WRK_BODIES_PER_RUN = 10_000_000
_RUNS = itertools.count()


def run_wrk(url: str, body: dict[str, Any], seconds: float, connections: int = 16,
            threads: int = 1, distinct: bool = False) -> WrkResult:
    """POST ``body`` to ``url``/v1/differentiate for ``seconds`` with wrk; with ``distinct``,
    bodies no earlier run of this process sent (10 million a run)."""
    wrk = ensure_wrk()
    first = next(_RUNS) * WRK_BODIES_PER_RUN
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="nabla-bench-") as script:
        script.write(wrk_script(body, distinct, first))
        script.flush()
        command = [wrk, "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s",
                   "--timeout", "10s", "--latency", "-s", script.name, url]
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60,
                              check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse_wrk(done.stdout)


@dataclass(frozen=True)
class Latencies:
    """Closed-loop latencies of one request sent again and again."""

    seconds: list[float]
    failures: int
    wall_s: float

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.seconds, q))


def closed_loop(url: str, body: dict[str, Any], count: int) -> Latencies:
    """Send ``body`` ``count`` times, one after the other on one connection."""
    payload = orjson.dumps(body)
    headers = {"content-type": "application/json"}
    seconds: list[float] = []
    failures = 0
    with httpx.Client(base_url=url, timeout=30.0) as client:
        begun = time.perf_counter()
        for _ in range(count):
            started = time.perf_counter()
            response = client.post("/v1/differentiate", content=payload, headers=headers)
            seconds.append(time.perf_counter() - started)
            failures += response.status_code != 200
        wall = time.perf_counter() - begun
    return Latencies(seconds, failures, wall)


JSON = "application/json"
MSGPACK = "application/msgpack"
# How a Python client decodes an answer of each media type (into lists and floats).
DECODERS: dict[str, Callable[[bytes], Any]] = {JSON: orjson.loads, MSGPACK: ormsgpack.unpackb}


def timed_post(client: httpx.Client, body: bytes | dict[str, Any], media: str = JSON,
               decode: bool = False) -> tuple[float, httpx.Response]:
    """Seconds from sending ``body`` to having read the whole answer, and the answer.

    ``media`` is both the ``Content-Type`` of ``body`` (bytes already in that format) and
    the ``Accept`` of the answer; with ``decode``, decoding a 200 answer the way a Python
    client does (``DECODERS``) is part of the seconds too.
    """
    payload = body if isinstance(body, bytes) else orjson.dumps(body)
    headers = {"content-type": media} if media == JSON else {"content-type": media,
                                                             "accept": media}
    started = time.perf_counter()
    response = client.post("/v1/differentiate", content=payload, headers=headers)
    response.read()
    if decode and response.status_code == 200:
        DECODERS[media](response.content)
    return time.perf_counter() - started, response


def cache_hits(client: httpx.Client) -> float:
    """How many requests found their executable (the ``nabla_compile_cache_hits`` counter)."""
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("nabla_compile_cache_hits"):
            return float(line.split()[-1])
    raise RuntimeError("the server's /metrics has no nabla_compile_cache_hits")


def until_compiled(client: httpx.Client, payload: bytes | Callable[[int], bytes], media: str,
                   seconds: float = 120.0) -> None:
    """Return once XLA answers the request: the first tier answers a new program's first
    requests, and XLA compiles it in the background once it is requested again. Requests
    it until one finds its executable (the cache-hit counter moves). ``payload`` may make
    the i-th body (another point each time), for a request the response memo would answer."""
    deadline = time.monotonic() + seconds
    attempt = 0
    while True:
        attempt += 1
        hits = cache_hits(client)
        timed_post(client, payload(attempt) if callable(payload) else payload, media)
        if cache_hits(client) > hits:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"no executable was compiled within {seconds:g} s")
        time.sleep(0.05)


def write_temp(data: bytes, suffix: str) -> Path:
    """A temporary file holding ``data`` (the caller deletes it)."""
    with tempfile.NamedTemporaryFile(suffix=suffix, prefix="nabla-bench-", delete=False) as f:
        f.write(data)
        return Path(f.name)
