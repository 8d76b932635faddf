"""The workloads: request bodies and expressions, built deterministically from a seed.

Every expression is written in the syntax both nabla and SymPy's ``parse_expr`` read
(``**`` for power), so that nabla and the baselines work on the very same text.
"""

from __future__ import annotations

import random
from typing import Any

import orjson

WARM_EXPRESSION = "x**2*y + sin(z)*x"
WARM_POINT = {"x": 0.5123456789012345, "y": 1.4987654321098765, "z": 2.0246813579246813}
VARIABLES3 = ("x", "y", "z")
VECTOR_EXPRESSION = "sum(100*(x[1:] - x[:-1]^2)^2 + (1 - x[:-1])^2)"
_UNARY = ("sin", "cos", "exp", "tanh", "atan")
_BINARY = ("+", "-", "*")


def warm_body() -> dict[str, Any]:
    """The cached request of the warm and isolation rows: value, gradient and Hessian."""
    return {"expression": WARM_EXPRESSION, "at": dict(WARM_POINT)}


def _tree(rng: random.Random, depth: int) -> str:
    text = _subtree(rng, depth)
    # A subtree of constants only can fold to an integer beyond 64 bits (9**4**4...), which
    # the lambdify baselines cannot evaluate; every subtree keeps a variable.
    return text if any(v in text for v in VARIABLES3) else rng.choice(VARIABLES3)


def _subtree(rng: random.Random, depth: int) -> str:
    if depth == 0 or rng.random() < 0.15:
        if rng.random() < 0.8:
            return rng.choice(VARIABLES3)
        return str(rng.randint(2, 9))
    shape = rng.random()
    if shape < 0.35:
        return f"{rng.choice(_UNARY)}({_tree(rng, depth - 1)})"
    if shape < 0.5:
        return f"({_tree(rng, depth - 1)})**{rng.randint(2, 4)}"
    operator = rng.choice(_BINARY)
    return f"({_tree(rng, depth - 1)} {operator} {_tree(rng, depth - 1)})"


def cold_expressions(count: int, seed: int) -> list[str]:
    """``count`` distinct random trees of sin/cos/exp/tanh/atan, products, sums and powers
    in x, y and z (each uses all three); the structure varies, not only the constants."""
    rng = random.Random(seed)
    found: list[str] = []
    while len(found) < count:
        text = f"{_tree(rng, rng.randint(3, 4))} + {rng.randint(1, 999)}*x*y*z"
        if text not in found:
            found.append(text)
    return found


def cold_body(expression: str) -> dict[str, Any]:
    """A first request: one point, value, gradient and Hessian."""
    return {"expression": expression, "variables": {v: [] for v in VARIABLES3},
            "at": {"x": 0.3, "y": 0.7, "z": 1.1}}


def rosenbrock(n: int, name: str = "x") -> str:
    """The n-variable Rosenbrock function written out term by term."""
    return " + ".join(f"(1 - {name}{i})**2 + 100*({name}{i + 1} - {name}{i}**2)**2"
                      for i in range(n - 1))


def rosenbrock_body(n: int, name: str = "x") -> dict[str, Any]:
    """Value, gradient and Hessian of the expanded Rosenbrock at one point (variables
    ``name``0, ``name``1, ...: another name makes another text, new to the server)."""
    names = [f"{name}{i}" for i in range(n)]
    return {"expression": rosenbrock(n, name), "variables": {v: [] for v in names},
            "at": {v: 0.5 + 0.01 * i for i, v in enumerate(names)}}


def vector_body(n: int) -> dict[str, Any]:
    """The vectorised Rosenbrock of one vector of ``n`` elements: value and gradient."""
    rng = random.Random(n)
    return {"expression": VECTOR_EXPRESSION, "variables": {"x": [n]},
            "at": {"x": [rng.uniform(-2, 2) for _ in range(n)]},
            "derivatives": ["value", "gradient"]}


def batch_body(count: int, seed: int = 6) -> dict[str, Any]:
    """The warm expression at ``count`` points, column-wise: value, gradient and Hessian."""
    rng = random.Random(seed)
    return {"expression": WARM_EXPRESSION,
            "points": {v: [rng.uniform(-1, 1) for _ in range(count)] for v in VARIABLES3}}


def bomb(salt: int, factors: int = 500, variables: int = 25) -> str:
    """A compile bomb: a product of 500 sines of 25 variables (its Hessian takes minutes);
    ``salt`` changes one constant so that each bomb is new to the server."""
    terms = [f"sin(x{i % variables} * {i + 1} + x{(i * 7) % variables})" for i in range(factors)]
    terms[0] = f"sin(x0 * {salt + 1} + x0)"
    return " * ".join(terms)


def bomb_body(salt: int, variables: int = 25) -> dict[str, Any]:
    """A bomb with its Hessian at one point."""
    return {"expression": bomb(salt, variables=variables),
            "at": {f"x{i}": 0.1 * (i + 1) for i in range(variables)}}


def wrk_script(body: dict[str, Any], distinct: bool = False, first: int = 0) -> str:
    """A wrk Lua script that POSTs ``body`` as JSON to /v1/differentiate; with ``distinct``,
    each request moves the first coordinate of ``at`` a little, so no two bodies are equal
    (no response memo can answer: every request is computed). Its n-th request moves it by
    (``first`` + n) 1e-9: give each run of wrk its own ``first`` (``run_wrk`` does), or a run
    repeats the bodies of the one before, which the memo then answers."""
    payload = orjson.dumps(body).decode()
    script = ('wrk.method = "POST"\n'
              'wrk.path = "/v1/differentiate"\n'
              'wrk.headers["Content-Type"] = "application/json"\n'
              f"wrk.body = [==[{payload}]==]\n")
    if not distinct:
        return script
    name, value = next(iter(body["at"].items()))
    marker = f'"{name}":{orjson.dumps(value).decode()}'
    head, tail = payload.split(marker, 1)
    return script + (
        f"local n = {first}\n"
        "request = function()\n"
        "  n = n + 1\n"
        f'  local b = [==[{head}"{name}":]==] .. string.format("%.17g", {value} + n * 1e-9)'
        f" .. [==[{tail}]==]\n"
        '  return wrk.format("POST", "/v1/differentiate", nil, b)\n'
        "end\n")
