"""The rows of issue 4: each measures nabla and its baseline in the same run."""

from __future__ import annotations

import statistics
import tempfile
from contextlib import ExitStack
from typing import Any

import httpx
import numpy as np
import orjson
import ormsgpack

from bench import expressions as ex
from bench import servers
from bench.baselines import WARMUP_CASE
from bench.core import GIB, Bench, Row, baseline, check, ms
from bench.load import (
    DECODERS,
    JSON,
    MSGPACK,
    run_wrk,
    timed_post,
    until_compiled,
    write_temp,
)


def warm(bench: Bench) -> Row:
    """Requests/s of a cached request against a bare FastAPI endpoint, both under wrk.

    Every request is the same body, so nabla's response memo answers it."""
    return _warm(bench, "warm", "warm: req/s, cached 3-var value+grad+Hessian / bare FastAPI",
                 distinct=False)


def warm_computed(bench: Bench) -> Row:
    """The same with a new point in every request: nothing is memoized, all is computed."""
    return _warm(bench, "warm_computed", "warm, every request computed (a new point each) "
                 "/ bare FastAPI, same bodies", distinct=True)


def _warm(bench: Bench, name_: str, figure: str, distinct: bool) -> Row:
    """nabla and the echo, each under wrk in turn, ``plan.warm_rounds`` times: the best
    round of each counts (other load on the machine only ever lowers a rate, and
    alternating exposes both servers to it alike)."""
    plan = bench.plan
    row = Row(name_, figure, ">= 0.8")
    body = ex.warm_body()
    rounds: dict[str, list[Any]] = {"nabla": [], "echo": []}
    with ExitStack() as stack:
        found = {"nabla": bench.main_server(), "echo": stack.enter_context(servers.echo())}
        for name, server in found.items():
            with httpx.Client(base_url=server.url, timeout=60) as client:
                _, response = timed_post(client, body)
                check(response, name)
                if name == "nabla":  # rates of XLA's answers, not of the first tier's
                    until_compiled(client, lambda i: orjson.dumps(
                        {**body, "at": {k: v + i * 1e-9 for k, v in body["at"].items()}}),
                        JSON)
            row.data[name] = {"response_bytes": len(response.content)}
            run_wrk(server.url, body, plan.warmup_seconds, distinct=distinct)
        for _ in range(plan.warm_rounds):
            for name, server in found.items():
                rounds[name].append(run_wrk(server.url, body, plan.warm_seconds,
                                            distinct=distinct))
    best = {name: max(results, key=lambda r: r.requests_per_second)
            for name, results in rounds.items()}
    for name, result in best.items():
        row.data[name].update(result.__dict__, rounds=[r.requests_per_second
                                                         for r in rounds[name]])
    nabla, echo = best["nabla"], best["echo"]
    row.nabla = f"{nabla.requests_per_second:,.0f} req/s"
    row.baseline = f"{echo.requests_per_second:,.0f} req/s"
    row.ratio = nabla.requests_per_second / echo.requests_per_second
    bad = sum(r.non_2xx + r.socket_errors for r in rounds["nabla"])
    row.met = row.ratio >= 0.8 and bad == 0
    shown = {name: "/".join(f"{r.requests_per_second:,.0f}" for r in results)
             for name, results in rounds.items()}
    row.details = (f"wrk 16 connections, 1 thread, best of {plan.warm_rounds} alternating "
                   f"rounds of {plan.warm_seconds:g} s after {plan.warmup_seconds:g} s warm-up "
                   f"(nabla {shown['nabla']}, echo {shown['echo']} req/s); p50/p99 of the best "
                   f"nabla {ms(nabla.latency_p50_s or 0)}/{ms(nabla.latency_p99_s or 0)}, echo "
                   f"{ms(echo.latency_p50_s or 0)}/{ms(echo.latency_p99_s or 0)}; errors "
                   f"nabla {bad}, echo "
                   f"{sum(r.non_2xx + r.socket_errors for r in rounds['echo'])}; response "
                   f"bytes nabla {row.data['nabla']['response_bytes']}, "
                   f"echo {row.data['echo']['response_bytes']}")
    return row


def _cold_cases(bench: Bench) -> list[dict[str, Any]]:
    return [{"expression": e, "names": list(ex.VARIABLES3), "point": [0.3, 0.7, 1.1]}
            for e in ex.cold_expressions(bench.plan.cold_count, bench.plan.seed)]


def cold_nabla(bench: Bench) -> list[float]:
    """First-request seconds of each never-seen expression, over HTTP (measured once)."""
    if "cold_nabla" not in bench.memo:
        server = bench.main_server()
        seconds = []
        with httpx.Client(base_url=server.url, timeout=120) as client:
            # The baselines' one throwaway case (bench.baselines.WARMUP_CASE), sent first
            # here too, in its variables, so both sides start from the same warm-up.
            warmup = WARMUP_CASE
            check(timed_post(client, {"expression": warmup["expression"], "at": dict(
                zip(warmup["names"], warmup["point"], strict=True))})[1], "cold warm-up")
            for case in _cold_cases(bench):
                elapsed, response = timed_post(client, ex.cold_body(case["expression"]))
                check(response, f"cold {case['expression']!r}")
                seconds.append(elapsed)
        bench.memo["cold_nabla"] = seconds
    result: list[float] = bench.memo["cold_nabla"]
    return result


def _median_ratio(row: Row, ours: list[float], theirs: list[float], goal: float) -> None:
    """The row's figures: each side's median seconds, their ratio, met when at most ``goal``."""
    ours_median, theirs_median = statistics.median(ours), statistics.median(theirs)
    row.nabla, row.baseline = ms(ours_median), ms(theirs_median)
    row.ratio = ours_median / theirs_median
    row.met = row.ratio <= goal


def _cold_row(bench: Bench, key: str, mode: str, figure: str, goal: float) -> Row:
    row = Row(key, figure, f"<= {goal:g}")
    ours = cold_nabla(bench)
    theirs = baseline(mode, {"cases": _cold_cases(bench)})
    _median_ratio(row, ours, theirs, goal)
    row.details = (f"{len(ours)} random expressions (seed {bench.plan.seed}); median; range "
                   f"nabla {ms(min(ours))}-{ms(max(ours))}, {mode} "
                   f"{ms(min(theirs))}-{ms(max(theirs))}")
    row.data = {"nabla_s": ours, f"{mode}_s": theirs}
    return row


def cold(bench: Bench) -> Row:
    """Median first request of never-seen expressions / the naive JAX way."""
    return _cold_row(bench, "cold", "naive", "cold: median first request, new 3-var expr / "
                     "naive JAX", 0.5)


def cold_symbolic(bench: Bench) -> Row:
    """The same median / SymPy's symbolic derivatives lambdified to NumPy."""
    return _cold_row(bench, "cold_symbolic", "symbolic", "cold vs symbolic: the same / "
                     "sympy.diff + lambdify(numpy)", 1.0)


def cold_symengine(bench: Bench) -> Row:
    """The same median / SymEngine's diff + Lambdify with LLVM, in process."""
    return _cold_row(bench, "cold_symengine", "symengine_llvm", "cold vs SymEngine: the same "
                     "/ SymEngine diff + Lambdify(llvm), in process", 1.0)


def scale_symengine(bench: Bench) -> Row:
    """First requests of new 100-variable Rosenbrocks / SymEngine's lambda backend."""
    n = bench.plan.rosenbrock_n
    row = Row("scale_symengine", f"cold {n}-var Rosenbrock v+g+H / SymEngine diff + "
              "Lambdify(lambda), in process", "<= 1.0")
    bodies = [ex.rosenbrock_body(n, name) for name in ("s", "t", "u")]
    server = bench.main_server()
    ours = []
    with httpx.Client(base_url=server.url, timeout=600) as client:
        for body in bodies:
            seconds, response = timed_post(client, body)
            check(response, "scale_symengine")
            ours.append(seconds)
    cases = [{"expression": b["expression"], "names": list(b["variables"]),
              "point": list(b["at"].values())} for b in bodies]
    theirs = baseline("symengine_lambda", {"cases": cases})
    _median_ratio(row, ours, theirs, 1.0)
    row.details = (f"median of 3 texts new to each (variables s, t, u); nabla "
                   f"{'/'.join(ms(t) for t in ours)}, SymEngine "
                   f"{'/'.join(ms(t) for t in theirs)}")
    row.data = {"nabla_s": ours, "symengine_lambda_s": theirs}
    return row


def scale(bench: Bench) -> Row:
    """First request of the expanded 100-variable Rosenbrock / the naive JAX way."""
    n = bench.plan.rosenbrock_n
    row = Row("scale", f"scale: first request, {n}-var expanded Rosenbrock / naive JAX",
              "<= 0.25")
    body = ex.rosenbrock_body(n)
    server = bench.main_server()
    with httpx.Client(base_url=server.url, timeout=600) as client:
        ours, response = timed_post(client, body)
    check(response, "scale")
    case = {"expression": body["expression"], "names": list(body["variables"]),
            "point": list(body["at"].values())}
    [theirs] = baseline("naive", {"cases": [case]})
    row.nabla, row.baseline, row.ratio = ms(ours), ms(theirs), ours / theirs
    row.met = row.ratio <= 0.25
    row.details = (f"{len(body['expression']):,} characters; Hessian {n}x{n}; "
                   f"response {len(response.content):,} bytes")
    row.data = {"nabla_s": ours, "naive_s": theirs}
    return row


def restart(bench: Bench) -> Row:
    """First request (value+grad) of a term-by-term Rosenbrock that a previous server compiled
    into the same persistent cache folder / the first request of a new one, on the same
    restarted server. The first server's compile of the known one is reported too."""
    n = bench.plan.restart_n
    row = Row("restart", f"first request after a restart, known {n}-var Rosenbrock (v+g) / "
              "a new one on the same server", "<= 0.25")

    def body(name: str) -> dict[str, Any]:
        return {**ex.rosenbrock_body(n, name=name), "derivatives": ["value", "gradient"]}

    known, new = body(f"k{bench.plan.seed}_"), body(f"n{bench.plan.seed}_")
    with tempfile.TemporaryDirectory(prefix="nabla-bench-cache-") as folder:
        with servers.nabla(NABLA_CACHE_DIR=folder) as first, \
                httpx.Client(base_url=first.url, timeout=600) as client:
            before, response = timed_post(client, known)
            check(response, "restart: first server")
        with servers.nabla(NABLA_CACHE_DIR=folder) as second, \
                httpx.Client(base_url=second.url, timeout=600) as client:
            after, response = timed_post(client, known)
            check(response, "restart: known")
            fresh, response = timed_post(client, new)
            check(response, "restart: new")
            hits = [line for line in client.get("/metrics").text.splitlines()
                    if line.startswith("nabla_persistent_cache_compiles_total")]
    row.nabla, row.baseline, row.ratio = ms(after), ms(fresh), after / fresh
    row.met = row.ratio <= 0.25
    row.details = (f"{len(known['expression']):,} characters; the same text's first request "
                   f"on the first server took {ms(before)}; {'; '.join(hits)}")
    row.data = {"after_restart_s": after, "new_s": fresh, "first_server_s": before}
    return row


def vectorised(bench: Bench) -> Row:
    """First request of the vectorised Rosenbrock of 100,000 elements: value and gradient."""
    n = bench.plan.vector_n
    row = Row("vectorised", f"vectorised: first request, x of {n:,}, value+grad (absolute)",
              "<= 2 s")
    payload = orjson.dumps(ex.vector_body(n))
    server = bench.main_server()
    with httpx.Client(base_url=server.url, timeout=600) as client:
        seconds, response = timed_post(client, payload)
    check(response, "vectorised")
    row.nabla = ms(seconds)
    row.met = seconds <= 2.0
    row.details = (f"{ex.VECTOR_EXPRESSION}; body {len(payload) / 1e6:.1f} MB, response "
                   f"{len(response.content) / 1e6:.1f} MB; the goal is absolute, no baseline")
    row.data = {"nabla_s": seconds}
    return row


def speculation(bench: Bench) -> Row:
    """The vectorised first request sent right after a new 100-variable Rosenbrock was
    requested twice (so it is hot, and XLA compiles it in the background) / the same
    request alone. Each is new to the server: a vector of another length is another
    compile of the same cost."""
    n = bench.plan.vector_n
    row = Row("speculation", f"vectorised first request (x of {n:,}, value+grad) right after "
              "a hot 100-var Rosenbrock / alone", "<= 2 s")
    server = bench.main_server()
    with httpx.Client(base_url=server.url, timeout=600) as client:
        alone, response = timed_post(client, orjson.dumps(ex.vector_body(n + 2)))
        check(response, "speculation alone")
        rosenbrock = ex.rosenbrock_body(bench.plan.rosenbrock_n, name="r")
        hot = []
        for step in range(2):  # the second answer makes it hot: its compile starts now
            rosenbrock["at"]["r0"] += step  # another point: not from the response memo
            seconds, response = timed_post(client, rosenbrock)
            check(response, "speculation rosenbrock")
            hot.append(seconds)
        after, response = timed_post(client, orjson.dumps(ex.vector_body(n + 1)))
        check(response, "speculation after")
    row.nabla, row.baseline, row.ratio = ms(after), ms(alone), after / alone
    row.met = after <= 2.0
    row.details = (f"the Rosenbrock's two first-tier answers took {ms(hot[0])} and "
                   f"{ms(hot[1])}; its XLA compile (seconds) runs meanwhile on the idle-priority "
                   "background worker; the goal is absolute")
    row.data = {"after_s": after, "alone_s": alone, "rosenbrock_s": hot}
    return row


def matrix(bench: Bench) -> Row:
    """Gradient and Hessian of tr(XᵀAX), X and A of 10 x 10 (200 coordinates): nabla's first
    and warm requests over HTTP / the same written directly in JAX, first and warm calls."""
    m, repeats = 10, 5
    row = Row("matrix", f"matrix: grad + Hessian of trace(X.T @ A @ X), {m}x{m}, first "
              "request / JAX first call", "reported")
    rng = np.random.default_rng(bench.plan.seed)
    points = [rng.normal(size=2 * m * m) for _ in range(repeats + 1)]
    server = bench.main_server()
    ours = []
    with httpx.Client(base_url=server.url, timeout=600) as client:
        for point in points:  # a new point each time: the memo cannot answer
            body = {"expression": "trace(X.T @ A @ X)",
                    "variables": {"X": [m, m], "A": [m, m]},
                    "at": {"X": point[:m * m].reshape(m, m).tolist(),
                           "A": point[m * m:].reshape(m, m).tolist()},
                    "derivatives": ["gradient", "hessian"]}
            elapsed, response = timed_post(client, body)
            check(response, "matrix")
            ours.append(elapsed)
    theirs = baseline("matrix", {"m": m, "points": [p.tolist() for p in points]})
    warm_ours, warm_theirs = statistics.median(ours[1:]), statistics.median(theirs[1:])
    row.nabla, row.baseline = ms(ours[0]), ms(theirs[0])
    row.ratio = ours[0] / theirs[0]  # no goal yet: issue 13 asks for the row
    row.details = (f"warm (median of {repeats}, a new point each): nabla {ms(warm_ours)} over "
                   f"HTTP, JAX {ms(warm_theirs)} in process; Hessian 200 x 200")
    row.data = {"nabla_s": ours, "jax_s": theirs}
    return row


def _batch_payload(bench: Bench) -> dict[str, Any]:
    """The request of the batch and transport rows: the warm expression, column-wise."""
    return ex.batch_body(bench.plan.batch_points)


def _timed_repeats(client: httpx.Client, payload: bytes, what: str, repeats: int,
                   media: str = JSON, decode: bool = False
                   ) -> tuple[float, list[float], httpx.Response]:
    """A first request, then (once XLA has compiled the program, so that every timed request
    is answered by the same tier) ``repeats`` timed ones: first seconds, the repeats'
    seconds and the last answer."""
    first, response = timed_post(client, payload, media, decode)
    check(response, what)
    until_compiled(client, payload, media)
    seconds = []
    for _ in range(repeats):
        elapsed, response = timed_post(client, payload, media, decode)
        check(response, what)
        seconds.append(elapsed)
    return first, seconds, response


def batch(bench: Bench) -> Row:
    """A warm batch of 100,000 points / decode + warm jitted vmap + encode, in process."""
    plan = bench.plan
    row = Row("batch", f"batch: {plan.batch_points:,} points x 3 vars, warm / orjson + jit(vmap)",
              "<= 2.0")
    payload = orjson.dumps(_batch_payload(bench))
    server = bench.main_server()
    with httpx.Client(base_url=server.url, timeout=600) as client:
        first, ours, response = _timed_repeats(client, payload, "batch", plan.batch_repeats)
    body_file = write_temp(payload, ".json")
    try:
        case = {"expression": ex.WARM_EXPRESSION, "names": list(ex.VARIABLES3), "point": []}
        theirs = baseline("batch", {"cases": [case], "body_file": str(body_file),
                                    "repeats": plan.batch_repeats})
    finally:
        body_file.unlink()
    _median_ratio(row, ours, theirs, 2.0)
    row.details = (f"median of {plan.batch_repeats}, answered by XLA, after a first request "
                   f"of {ms(first)}; body {len(payload) / 1e6:.1f} MB, response "
                   f"{len(response.content) / 1e6:.1f} MB; nabla over HTTP (loopback), "
                   "baseline in process")
    row.data = {"nabla_first_s": first, "nabla_s": ours, "baseline_s": theirs}
    return row


def transport(bench: Bench) -> Row:
    """The batch row's request with MessagePack in and out / with JSON in and out: both
    over HTTP to the same server, the client's decoding of the answer included."""
    plan = bench.plan
    row = Row("transport", f"transport: the batch row's {plan.batch_points:,} points, warm, "
              "msgpack / JSON (HTTP + client decode)", "< 1")
    body = _batch_payload(bench)
    payloads = {JSON: orjson.dumps(body), MSGPACK: ormsgpack.packb(body)}
    server = bench.main_server()
    runs: dict[str, dict[str, Any]] = {}
    with httpx.Client(base_url=server.url, timeout=600) as client:
        for media, payload in payloads.items():  # JSON first: its requests make XLA compile
            first, seconds, response = _timed_repeats(
                client, payload, f"transport {media}", plan.batch_repeats, media, decode=True)
            if response.headers.get("content-type", "").split(";")[0] != media:
                raise RuntimeError(f"transport: asked for {media}, got "
                                   f"{response.headers.get('content-type')!r}")
            # Only the bytes are kept: a decoded answer alive (millions of objects) would
            # slow the garbage collector during the other transport's timed decoding.
            runs[media] = {"first_s": first, "seconds": seconds, "answer": response.content,
                           "body_bytes": len(payload), "response_bytes": len(response.content)}
    as_json = DECODERS[JSON](runs[JSON]["answer"])
    as_msgpack = DECODERS[MSGPACK](runs[MSGPACK]["answer"])
    for field in ("value", "gradient", "hessian"):  # the same numbers either way
        if not np.array_equal(np.asarray(as_json[field]), np.asarray(as_msgpack[field])):
            raise RuntimeError(f"transport: msgpack's {field} differs from JSON's")
    json_median = statistics.median(runs[JSON]["seconds"])
    msgpack_median = statistics.median(runs[MSGPACK]["seconds"])
    row.nabla, row.baseline = ms(msgpack_median), ms(json_median)
    row.ratio = msgpack_median / json_median
    row.met = row.ratio < 1
    mb = {media: (run["body_bytes"] / 1e6, run["response_bytes"] / 1e6)
          for media, run in runs.items()}
    row.details = (f"informational; the batch row's request (value+gradient+Hessian), median "
                   f"of {plan.batch_repeats} each, answered by XLA, after an untimed first request "
                   f"(JSON {ms(runs[JSON]['first_s'])}; msgpack "
                   f"{ms(runs[MSGPACK]['first_s'])}); timed from sending the pre-encoded body "
                   "to the decoded answer (orjson.loads / ormsgpack.unpackb); body JSON "
                   f"{mb[JSON][0]:.1f} MB, msgpack {mb[MSGPACK][0]:.1f} MB; response JSON "
                   f"{mb[JSON][1]:.1f} MB, msgpack {mb[MSGPACK][1]:.1f} MB")
    row.data = {name: {key: value for key, value in runs[media].items() if key != "answer"}
                for name, media in (("json", JSON), ("msgpack", MSGPACK))}
    return row


def memory(bench: Bench, rows_run: list[str]) -> Row:
    """Resident memory of the server process, and of its compile workers, after the rows."""
    row = Row("memory", "memory: server RSS after the rows above (absolute)", "<= 1.5 GiB")
    server = bench.main_server()
    usage = server.memory()
    row.nabla = f"{usage['server'] / GIB:.2f} GiB"
    row.met = usage["server"] <= 1.5 * GIB
    before = ", ".join(rows_run) or "none"
    children = ", ".join(f"{name.split(' ', 1)[1]} {rss / GIB:.2f} GiB"
                         for name, rss in usage["child_rss"].items())
    row.details = (f"server process {usage['server'] / GIB:.2f} GiB (VmRSS); its "
                   f"{usage['child_count']} child processes {usage['children'] / GIB:.2f} GiB "
                   f"together ({children}); after rows: {before}")
    row.data = usage
    return row
