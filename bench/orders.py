"""Rows of issue 12: derivatives past the Hessian, each beside the same work written directly
in JAX, in the same run.

- ``tensor4``: the 4th-order derivative tensor of a 10-variable expression (10^4 numbers);
  JAX: ``jit(jacfwd(jacfwd(hessian(f))))``, nabla's own method.
- ``taylor10``: the Taylor polynomial of order 10 of a one-variable expression; JAX:
  ``jit`` of ``jax.experimental.jet`` along the axis (Taylor mode), and, to show why nabla
  uses it, 10 nested ``jvp``s (the transform-nesting alternative), both timed here.

"cold" is the first answer of a new expression (nabla: parse, plan, XLA compile, over HTTP;
JAX: trace, compile, first call); "warm" the median of later answers at new points (nabla
over HTTP, its memo never hit; JAX a call of the compiled function). The baselines run in a
fresh subprocess: ``python -m bench.orders MODE SEED``.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from typing import Any

import httpx
import orjson

from bench import servers
from bench.core import Bench, Row, check, ms
from bench.load import timed_post

WARM_REPEATS = 20


def _tensor_text(seed: int) -> str:
    return f"sum(sin(v)*v[::-1]) + prod(1 + v/10) + {seed}e-9*v[0]"


def _taylor_text(seed: int) -> str:
    return f"sin(x)*exp(x)/(1 + x^2) + {seed}e-9*x"


def tensor4(bench: Bench) -> Row:
    """The 4th-order tensor of 10 variables: nabla over HTTP, and jacfwd^2(hessian) in JAX."""
    row = Row("tensor4", "4th-order tensor, 10 variables: cold / warm, nabla vs JAX direct",
              "-")
    seed = bench.plan.seed
    nabla = _nabla(bench, lambda i: {
        "expression": _tensor_text(seed), "variables": {"v": [10]},
        "at": {"v": [0.1 * j + 1e-3 * i for j in range(10)]}, "order": 4,
        "derivatives": ["value"]})
    jax = _baseline("tensor", seed)
    return _fill(row, nabla, jax, "nested jacfwd over jax.hessian in both; 10^4 numbers")


def taylor10(bench: Bench) -> Row:
    """The Taylor polynomial of order 10 in one variable: nabla, JAX's jet, nested jvp."""
    row = Row("taylor10", "Taylor polynomial of order 10, 1 variable: cold / warm, nabla vs "
              "JAX jet direct", "-")
    seed = bench.plan.seed
    nabla = _nabla(bench, lambda i: {
        "expression": _taylor_text(seed), "at": {"x": 0.7 + 1e-3 * i},
        "taylor": {"order": 10}, "derivatives": ["value"]})
    jax = _baseline("taylor", seed)
    nested = _baseline("nested", seed) if not bench.plan.quick else None
    also = ("10 nested jvp (the alternative), JAX direct: "
            f"cold {nested['cold']:.2f} s, warm {ms(nested['warm'])}" if nested else
            "nested jvp not timed in a quick run (it compiles for about 25 s)")
    return _fill(row, nabla, jax, f"Taylor mode (jet) in both; {also}", nested)


def _nabla(bench: Bench, body: Any) -> dict[str, float]:
    server = bench.main_server()
    with httpx.Client(base_url=server.url, timeout=300) as client:
        cold, response = timed_post(client, body(0))
        check(response, "nabla")
        warm = []
        for i in range(1, WARM_REPEATS + 1):
            seconds, response = timed_post(client, body(i))
            check(response, "nabla")
            warm.append(seconds)
    return {"cold": cold, "warm": statistics.median(warm)}


def _fill(row: Row, nabla: dict[str, float], jax: dict[str, float], details: str,
          nested: dict[str, float] | None = None) -> Row:
    row.nabla = f"cold {nabla['cold']:.2f} s, warm {ms(nabla['warm'])}"
    row.baseline = f"cold {jax['cold']:.2f} s, warm {ms(jax['warm'])}"
    row.ratio = nabla["cold"] / jax["cold"]
    row.details = (f"ratio is cold/cold; warm nabla/JAX = {nabla['warm'] / jax['warm']:.0f}x "
                   f"(an HTTP round trip against an in-process call); {details}")
    row.data = {"nabla": nabla, "jax": jax, **({"nested_jvp": nested} if nested else {})}
    return row


def _baseline(mode: str, seed: int) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-m", "bench.orders", mode, str(seed)],
                          cwd=servers.ROOT, capture_output=True, text=True, timeout=900,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"baseline {mode} failed: {done.stderr[-2000:]}")
    result: dict[str, float] = orjson.loads(done.stdout.strip().splitlines()[-1])
    return result


# -- the baselines, in their own process ---------------------------------------------------

def _timed(function: Any, points: list[Any]) -> dict[str, float]:
    import jax

    started = time.perf_counter()
    compiled = jax.jit(function)
    jax.block_until_ready(compiled(points[0]))
    cold = time.perf_counter() - started
    warm = []
    for point in points[1:]:
        started = time.perf_counter()
        jax.block_until_ready(compiled(point))
        warm.append(time.perf_counter() - started)
    return {"cold": cold, "warm": statistics.median(warm)}


def run_baseline(mode: str, seed: int) -> dict[str, float]:
    """Seconds of the same work written directly in JAX (float64)."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from jax.experimental import jet

    jax.jit(jax.hessian(lambda v: jnp.sum(jnp.sin(v))))(jnp.ones(2))  # start JAX: not timed
    c = seed * 1e-9
    if mode == "tensor":
        def f(v: Any) -> Any:
            return jnp.sum(jnp.sin(v) * v[::-1]) + jnp.prod(1 + v / 10) + c * v[0]
        tensor = jax.jacfwd(jax.jacfwd(jax.hessian(f)))
        return _timed(tensor, [jnp.arange(10) * 0.1 + 1e-3 * i
                               for i in range(WARM_REPEATS + 1)])

    def g(x: Any) -> Any:
        return jnp.sin(x) * jnp.exp(x) / (1 + x**2) + c * x

    if mode == "taylor":
        def coefficients(a: Any) -> Any:
            _, series = jet.jet(g, (a,), ((1.0,) + (0.0,) * 9,))
            return jnp.stack(series)
        function = coefficients
    else:
        def nested(a: Any) -> Any:
            h = g
            outputs = []
            for _ in range(10):
                h = _derivative(h)
                outputs.append(h(a))
            return jnp.stack(outputs)
        function = nested
    return _timed(function, [jnp.asarray(0.7 + 1e-3 * i) for i in range(WARM_REPEATS + 1)])


def _derivative(h: Any) -> Any:
    import jax

    return lambda a: jax.jvp(h, (a,), (1.0,))[1]


if __name__ == "__main__":
    print(orjson.dumps(run_baseline(sys.argv[1], int(sys.argv[2]))).decode())
