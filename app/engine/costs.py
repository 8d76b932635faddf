"""What a new expression will cost, known before it is compiled: XLA's compile time,
estimated from the program's trees, and the first tier's work.

XLA's compile time grows with the nodes of the trees, and, with the Hessian, with a
product's length times its size: JAX's Hessian of a product of k factors is a chain that
XLA compiles in time about k^2. Measured on the development machine (2 cores, value,
gradient and Hessian; the model's estimate in brackets):

    product of k factors (1 + x_i/j), 10 variables   k = 25: 0.63 s [0.78]   50: 2.6 s [2.6]
                                                     100: 9.2 s [9.3]       200: 45 s [36]
    product of k factors sin(x_i*j + x_l), 25 vars   k = 25: 1.5 s [1.2]    50: 3.8 s [4.1]
                                                     100: 18 s [15]
    the same, value and gradient only                k = 100: 1.4 s [1.2]
    sum of 500 sines, 25 variables                   6.2 s [6.3]
    Rosenbrock function of 100 variables             2.7 s [3.3]

So a product of 500 factors would take minutes (the compile bomb of tests/test_isolation.py:
about 340 s by the model). A program whose estimate is over ``REFUSE_FACTOR`` times the
compile budget is not sent to XLA: the first tier answers it if its work is small,
otherwise it is refused at once (422 ``too_complex``) instead of after the whole budget.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import sympy

from app.engine import kinds as taylor_kinds

#: Seconds of any compile (trace, lower, XLA's fixed passes).
BASE_SECONDS = 0.05
#: Seconds per weighted node, by derivative order (0: values, 1: first derivatives, 2: Hessian).
NODE_SECONDS = (2e-4, 1.4e-3, 1.5e-3)
#: Seconds per unit of product work (factors x their weighted nodes), with the Hessian.
PRODUCT_SECONDS = 1.7e-4
#: Seconds of each level of nested ``jacfwd`` past the Hessian, besides its growth.
TENSOR_LEVEL_SECONDS = 0.25
#: Taylor mode along directions: a fixed part, and seconds per node x order^2.
SERIES_BASE_SECONDS = 0.15
SERIES_SECONDS = 4.2e-4
#: Functions (sin, exp, erf, ...) weigh this many nodes: XLA expands them into polynomials.
FUNCTION_WEIGHT = 3
#: Estimates within this factor of the budget are tried (the model is right within 1.3x).
REFUSE_FACTOR = 2.0
#: The first tier answers a program XLA cannot compile when its work, points x outputs x
#: nodes x (1 + n + n^2), is at most this: about 10 ms of the server's CPU (measured: 277,000
#: entries, a product of 500 factors over 10 variables with its Hessian, take 9.6 ms).
STANDING_JET_ENTRIES = 1_000_000


@dataclass(frozen=True)
class ProgramCost:
    """What a program's compile time depends on, read once from its trees (in a worker)."""

    nodes: int = 0  # nodes, functions weighing FUNCTION_WEIGHT
    products: int = 0  # over every product: its factors x their weighted nodes


def program_cost(exprs: Iterable[sympy.Basic]) -> ProgramCost:
    """The cost features of the trees ``exprs``."""
    nodes = products = 0
    for expr in exprs:
        weights: dict[sympy.Basic, int] = {}
        for node in sympy.postorder_traversal(expr):
            own = FUNCTION_WEIGHT if isinstance(node, sympy.Function) else 1
            weight = own + sum(weights.get(arg, 1) for arg in node.args)
            weights[node] = weight
            nodes += own
            if isinstance(node, sympy.Mul):
                products += len(node.args) * (weight - own)
    return ProgramCost(nodes, products)


def order(kinds: Iterable[str]) -> int:
    """The highest derivative that ``kinds`` asks for: 2 with the Hessian, 1 with first
    derivatives (gradient, jvp, vjp), else 0."""
    asked = set(kinds)
    return 2 if "hessian" in asked else 1 if asked & {"gradient", "jvp", "vjp"} else 0


def compile_seconds(cost: ProgramCost, kinds: Iterable[str]) -> float:
    """XLA's compile time for a program of ``cost`` and the outputs ``kinds``, estimated."""
    kinds = tuple(kinds)
    degree = order(kinds)
    seconds = BASE_SECONDS + NODE_SECONDS[degree] * cost.nodes
    seconds += PRODUCT_SECONDS * cost.products if degree == 2 else 0.0
    return seconds + higher_order_seconds(cost, kinds)


def higher_order_seconds(cost: ProgramCost, kinds: Iterable[str]) -> float:
    """What derivatives beyond the Hessian add (``app.engine.taylor``). Measured (2 cores):
    a tensor of order k by nested ``jacfwd`` costs about the Hessian's compile doubled for
    each order past 2, plus ``TENSOR_LEVEL_SECONDS`` a level (small programs: 0.27 s, 0.51 s,
    0.79 s for orders 3, 4, 5); Taylor mode along directions grows as nodes x k^2 (sin(x)
    nested in a 221-node sum: 0.2 s, 1.0 s, 1.8 s, 9.3 s for k = 2, 4, 6, 10)."""
    seconds = 0.0
    hessian = NODE_SECONDS[2] * cost.nodes + PRODUCT_SECONDS * cost.products
    for kind in kinds:
        k = taylor_kinds.tensor_order(kind)
        if k is not None:
            seconds = max(seconds, hessian * 2.0 ** (k - 2) + TENSOR_LEVEL_SECONDS * (k - 2))
    series = max((s[0] for kind in kinds
                  if (s := taylor_kinds.series_shape(kind)) is not None), default=0)
    if series:
        seconds += SERIES_BASE_SECONDS + SERIES_SECONDS * cost.nodes * series**2
    return seconds


def hopeless(seconds: float, budget: float) -> bool:
    """Whether a compile estimated at ``seconds`` has no chance within ``budget``."""
    return seconds > REFUSE_FACTOR * budget


def jet_entries(n: int, size: int, count: int, kinds: Iterable[str]) -> int:
    """The first tier's work: points x (outputs x nodes) x (1 + n, + n^2 with the Hessian)."""
    return count * size * (1 + n + (n * n if "hessian" in set(kinds) else 0))


def retry_seconds(seconds: float) -> int:
    """A Retry-After for something expected to take ``seconds``: whole seconds, at least 1."""
    return max(1, math.ceil(seconds))
