"""Random expressions over the catalog's elementwise functions and the operators, with an
oracle for each: NumPy and SciPy in float64, operation by operation (subnormals flushed as
docs/numerics.md says), and mpmath at any precision. Used by ``test_differential``; the
draws are fixed by ``SEED``, so a failure can be replayed.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np
from scipy import special

SEED = 20261127
CASES = 60
POINTS = 10
NAMES = ("x", "y")
EDGES = (0.0, -0.0, 5e-324, 1e-310, -1e-310, 1e308, -1e308, 1.0, -1.0, 0.5)
SMALLEST_NORMAL = np.finfo(np.float64).tiny
Oracle = Callable[..., Any]


def flush(x: Any) -> Any:
    """A subnormal as 0 (sign kept): what every operation of XLA on CPU reads and writes."""
    x = np.asarray(x, dtype=np.float64)
    return np.where((x != 0) & (np.abs(x) < SMALLEST_NORMAL), x * 0.0, x)


#: name -> (NumPy / SciPy float64, mpmath, smooth): the functions the generator calls.
UNARY: dict[str, tuple[Oracle, Oracle, bool]] = {
    "sin": (np.sin, mpmath.sin, True), "cos": (np.cos, mpmath.cos, True),
    "tan": (np.tan, mpmath.tan, True), "asin": (np.arcsin, mpmath.asin, True),
    "acos": (np.arccos, mpmath.acos, True), "atan": (np.arctan, mpmath.atan, True),
    "sinh": (np.sinh, mpmath.sinh, True), "cosh": (np.cosh, mpmath.cosh, True),
    "tanh": (np.tanh, mpmath.tanh, True), "asinh": (np.arcsinh, mpmath.asinh, True),
    "acosh": (np.arccosh, mpmath.acosh, True), "atanh": (np.arctanh, mpmath.atanh, True),
    "exp": (np.exp, mpmath.exp, True), "expm1": (np.expm1, mpmath.expm1, True),
    "log": (np.log, mpmath.log, True), "log1p": (np.log1p, mpmath.log1p, True),
    "log2": (np.log2, lambda a: mpmath.log(a, 2), True),
    "log10": (np.log10, mpmath.log10, True),
    "sqrt": (np.sqrt, mpmath.sqrt, True), "cbrt": (np.cbrt, mpmath.cbrt, True),
    "erf": (special.erf, mpmath.erf, True), "erfc": (special.erfc, mpmath.erfc, True),
    "gamma": (special.gamma, mpmath.gamma, True),
    "lgamma": (special.gammaln, lambda a: mpmath.log(abs(mpmath.gamma(a))), True),
    "sigmoid": (special.expit, lambda a: 1 / (1 + mpmath.exp(-a)), True),
    "softplus": (lambda a: np.logaddexp(0.0, a), lambda a: mpmath.log(1 + mpmath.exp(a)),
                 True),
    "abs": (np.abs, abs, False), "sign": (np.sign, mpmath.sign, False),
    "floor": (np.floor, mpmath.floor, False), "ceil": (np.ceil, mpmath.ceil, False),
    "relu": (lambda a: np.maximum(a, 0.0), lambda a: max(a, 0), False),
}
BINARY: dict[str, tuple[Oracle, Oracle, bool]] = {
    "+": (np.add, lambda a, b: a + b, True), "-": (np.subtract, lambda a, b: a - b, True),
    "*": (np.multiply, lambda a, b: a * b, True), "/": (np.divide, lambda a, b: a / b, True),
    "^": (np.power, lambda a, b: a**b, True),
    "atan2": (np.arctan2, mpmath.atan2, True),
    "log": (lambda a, b: flush(np.log(a)) / flush(np.log(b)),
            lambda a, b: mpmath.log(a) / mpmath.log(b), True),
    "max": (np.maximum, max, False), "min": (np.minimum, min, False),
}
CONSTANTS = ("0", "1", "2", "3", "0.5", "2.5", "1e-300", "1e300", "1e-310")
EXPONENTS = ("2", "3", "-1", "-2", "0.5")


@dataclass(frozen=True)
class Expr:
    """A drawn expression: an operator or function and its operands, or a leaf."""

    op: str
    args: tuple[Expr, ...] = ()

    def text(self) -> str:
        """As nabla reads it, every operand in parentheses."""
        a = [arg.text() for arg in self.args]
        if not a:
            return self.op
        if self.op == "neg":
            return f"-({a[0]})"
        if self.op == "where":
            return f"where(({a[0]}) < ({a[1]}), {a[2]}, {a[3]})"
        if self.op in ("+", "-", "*", "/", "^"):
            return f"({a[0]}) {self.op} ({a[1]})"
        return f"{self.op}({', '.join(a)})"

    def smooth(self) -> bool:
        """Whether every operation is smooth (no kinks, jumps or branches)."""
        table = UNARY if len(self.args) == 1 else BINARY
        own = self.op not in ("where",) and (not self.args or self.op == "neg"
                                              or table[self.op][2])
        return own and all(a.smooth() for a in self.args)

    def ieee(self, env: dict[str, np.ndarray]) -> np.ndarray:
        """Operation by operation in float64, each input and result flushed."""
        if not self.args:
            return flush(env[self.op] if self.op in env else float(self.op))
        a = [arg.ieee(env) for arg in self.args]
        with np.errstate(all="ignore"):
            if self.op == "neg":
                return flush(-a[0])
            if self.op == "where":
                return np.where(a[0] < a[1], a[2], a[3])
            table = UNARY if len(a) == 1 else BINARY
            return flush(table[self.op][0](*a))

    def exact(self, env: dict[str, Any]) -> Any:
        """In mpmath, at its working precision (smooth expressions only)."""
        if not self.args:
            return env[self.op] if self.op in env else mpmath.mpf(self.op)
        a = [arg.exact(env) for arg in self.args]
        if self.op == "neg":
            return -a[0]
        table = UNARY if len(a) == 1 else BINARY
        return table[self.op][1](*a)


def draw(rng: random.Random, depth: int) -> Expr:
    """A random expression of at most ``depth`` levels."""
    if depth == 0 or rng.random() < 0.2:
        return Expr(rng.choice(NAMES)) if rng.random() < 0.7 else Expr(rng.choice(CONSTANTS))
    kind = rng.random()
    if kind < 0.45:
        return Expr(rng.choice(sorted(UNARY)), (draw(rng, depth - 1),))
    if kind < 0.55:
        base = draw(rng, depth - 1)
        exponent = Expr(rng.choice(EXPONENTS)) if rng.random() < 0.6 else draw(rng, depth - 1)
        return Expr("^", (base, exponent))
    if kind < 0.9:
        op = rng.choice(sorted(set(BINARY) - {"^"}))
        return Expr(op, (draw(rng, depth - 1), draw(rng, depth - 1)))
    if kind < 0.95:
        return Expr("neg", (draw(rng, depth - 1),))
    return Expr("where", tuple(draw(rng, depth - 1) for _ in range(4)))


def points(rng: np.random.Generator) -> dict[str, list[float]]:
    """Ordinary points and points with an edge value in one coordinate or both."""
    coordinates = rng.normal(0.0, 2.0, size=(POINTS, len(NAMES)))
    for row in range(POINTS // 2, POINTS):
        columns = rng.choice(len(NAMES), size=rng.integers(1, len(NAMES) + 1), replace=False)
        coordinates[row, columns] = rng.choice(EDGES, size=len(columns))
    return {name: coordinates[:, i].tolist() for i, name in enumerate(NAMES)}


def generate() -> list[tuple[Expr, dict[str, list[float]]]]:
    """The cases, the same on every run."""
    rng, point_rng = random.Random(SEED), np.random.default_rng(SEED)
    return [(draw(rng, 3), points(point_rng)) for _ in range(CASES)]


GENERATED = generate()
