"""The first tier: value, gradient and Hessian by forward-mode "jets" over NumPy, no compile.

A new expression answers in milliseconds this way while XLA compiles it in a worker for
the requests that follow. Each node carries a jet: its value ``v`` (B, k), gradient ``g``
(B, k, n) and Hessian ``h`` (B, k, n, n) with respect to the n coordinates, for B points;
``None`` stands for an exact zero. The rules follow JAX's conventions at kinks (``abs'(0)
= 1``, ties of ``max`` split 0.5/0.5, ``relu'(0) = 0``), and a conditional selects the
taken branch's whole jet, so an untaken branch can never leak NaN into a derivative.
Nodes the rules do not cover raise ``NotInterpretable``; ``program_interpretable`` screens a
program for them first, and ``app.engine.tiers.JetTier`` falls back to XLA if one slips by.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy
from scipy import special
from sympy.codegen.cfunctions import Cbrt, expm1, log1p, log2, log10
from sympy.functions.elementary.piecewise import ExprCondPair
from sympy.logic.boolalg import BooleanFalse, BooleanTrue

from app.language import functions as F
from app.language.walk import Walker, integer_args

Arr = np.ndarray


class NotInterpretable(Exception):
    """The tree holds a node the jet rules do not cover."""


@dataclass
class Jet:
    """A value with its first and (optionally) second derivatives; None means zero."""

    v: Arr
    g: Arr | None = None
    h: Arr | None = None


def _outer(a: Arr, b: Arr) -> Arr:
    product: Arr = a[..., :, None] * b[..., None, :]
    return product


def _add(a: Arr | None, b: Arr | None) -> Arr | None:
    return b if a is None else a if b is None else a + b


def _scale(c: Arr, a: Arr | None, axes: int) -> Arr | None:
    return None if a is None else c.reshape(c.shape + (1,) * axes) * a


class Rules:
    """Jet arithmetic for a given derivative order (1: gradient, 2: Hessian too)."""

    def __init__(self, order: int) -> None:
        self.order = order

    def chain(self, a: Jet, f0: Arr, f1: Arr, f2: Arr | Callable[[], Arr]) -> Jet:
        """f(a) from f, f' and f'' at a."""
        g = _scale(f1, a.g, 1)
        h = None
        if self.order >= 2 and a.g is not None:
            second = f2() if callable(f2) else f2
            h = _add(_scale(f1, a.h, 2), _scale(second, _outer(a.g, a.g), 2))
        return Jet(f0, g, h)

    def binary(self, a: Jet, b: Jet, f: Arr, fa: Arr, fb: Arr,
               second: Callable[[], tuple[Arr, Arr, Arr]]) -> Jet:
        """f(a, b) from its partial derivatives (``second`` gives faa, fab, fbb)."""
        g = _add(_scale(fa, a.g, 1), _scale(fb, b.g, 1))
        h = None
        if self.order >= 2 and g is not None:
            faa, fab, fbb = second()
            h = _add(_scale(fa, a.h, 2), _scale(fb, b.h, 2))
            if a.g is not None:
                h = _add(h, _scale(faa, _outer(a.g, a.g), 2))
            if b.g is not None:
                h = _add(h, _scale(fbb, _outer(b.g, b.g), 2))
            if a.g is not None and b.g is not None:
                h = _add(h, _scale(fab, _outer(a.g, b.g) + _outer(b.g, a.g), 2))
        return Jet(f, g, h)

    def add(self, a: Jet, b: Jet) -> Jet:
        return Jet(a.v + b.v, _add(a.g, b.g), _add(a.h, b.h))

    def mul(self, a: Jet, b: Jet) -> Jet:
        g = _add(_scale(a.v, b.g, 1), _scale(b.v, a.g, 1))
        h = None
        if self.order >= 2:
            h = _add(_scale(a.v, b.h, 2), _scale(b.v, a.h, 2))
            if a.g is not None and b.g is not None:
                h = _add(h, _outer(a.g, b.g) + _outer(b.g, a.g))
        return Jet(a.v * b.v, g, h)

    def select(self, mask: Arr, a: Jet, b: Jet) -> Jet:
        """where(mask, a, b) on whole jets."""
        v = np.where(mask, a.v, b.v)
        g = None if a.g is None and b.g is None else np.where(
            mask[..., None], _zero_if_none(a.g, a.v), _zero_if_none(b.g, b.v))
        h = None if a.h is None and b.h is None else np.where(
            mask[..., None, None], _zero_if_none(a.h, a.v, 2), _zero_if_none(b.h, b.v, 2))
        return Jet(v, g, h)

    def power(self, a: Jet, k: int) -> Jet:
        return self.chain(a, a.v**k, k * a.v ** (k - 1),
                          lambda: k * (k - 1) * a.v ** (k - 2) if k != 1 else 0 * a.v)

    def broadcast(self, a: Jet, length: int, n: int) -> Jet:
        """A jet as a vector of ``length`` (a folded scalar is repeated)."""
        shape = (a.v.shape[0], length)
        g = None if a.g is None else np.broadcast_to(a.g, (*shape, a.g.shape[-1]))
        h = None if a.h is None else np.broadcast_to(a.h, (*shape, n, n))
        return Jet(np.broadcast_to(a.v, shape), g, h)

    def reduce_sum(self, a: Jet) -> Jet:
        return Jet(a.v.sum(1, keepdims=True),
                   None if a.g is None else a.g.sum(1, keepdims=True),
                   None if a.h is None else a.h.sum(1, keepdims=True))

    def take(self, a: Jet, index: Any) -> Jet:
        return Jet(a.v[:, index], None if a.g is None else a.g[:, index],
                   None if a.h is None else a.h[:, index])


def _zero_if_none(x: Arr | None, like: Arr, axes: int = 1) -> Arr:
    return np.zeros(like.shape + (1,) * axes) if x is None else x


def _constant(value: float | bool) -> Jet:
    return Jet(np.asarray([[value]]))


SQRT_PI = math.sqrt(math.pi)


def _cbrt(a: Arr) -> tuple[Arr, Arr, Callable[[], Arr]]:
    return np.cbrt(a), 1 / (3 * np.cbrt(a) ** 2), lambda: -2 / (9 * np.cbrt(a) ** 5)


def _unary_rules() -> dict[type, Callable[[Arr], tuple[Arr, Arr, Callable[[], Arr]]]]:
    """f, f' and (lazily) f'' of each elementwise function, as NumPy/SciPy compute them."""
    def sig(a: Arr) -> Arr:
        return special.expit(a)  # type: ignore[no-any-return]

    zero = np.zeros_like
    return {
        sympy.sin: lambda a: (np.sin(a), np.cos(a), lambda: -np.sin(a)),
        sympy.cos: lambda a: (np.cos(a), -np.sin(a), lambda: -np.cos(a)),
        sympy.tan: lambda a: (np.tan(a), 1 + np.tan(a) ** 2,
                              lambda: 2 * np.tan(a) * (1 + np.tan(a) ** 2)),
        sympy.asin: lambda a: (np.arcsin(a), 1 / np.sqrt(1 - a * a),
                               lambda: a / (1 - a * a) ** 1.5),
        sympy.acos: lambda a: (np.arccos(a), -1 / np.sqrt(1 - a * a),
                               lambda: -a / (1 - a * a) ** 1.5),
        sympy.atan: lambda a: (np.arctan(a), 1 / (1 + a * a),
                               lambda: -2 * a / (1 + a * a) ** 2),
        sympy.sinh: lambda a: (np.sinh(a), np.cosh(a), lambda: np.sinh(a)),
        sympy.cosh: lambda a: (np.cosh(a), np.sinh(a), lambda: np.cosh(a)),
        sympy.tanh: lambda a: (np.tanh(a), 1 - np.tanh(a) ** 2,
                               lambda: -2 * np.tanh(a) * (1 - np.tanh(a) ** 2)),
        sympy.asinh: lambda a: (np.arcsinh(a), 1 / np.sqrt(a * a + 1),
                                lambda: -a / (a * a + 1) ** 1.5),
        sympy.acosh: lambda a: (np.arccosh(a), 1 / np.sqrt(a * a - 1),
                                lambda: -a / (a * a - 1) ** 1.5),
        sympy.atanh: lambda a: (np.arctanh(a), 1 / (1 - a * a),
                                lambda: 2 * a / (1 - a * a) ** 2),
        sympy.exp: lambda a: (np.exp(a), np.exp(a), lambda: np.exp(a)),
        expm1: lambda a: (np.expm1(a), np.exp(a), lambda: np.exp(a)),
        sympy.log: lambda a: (np.log(a), 1 / a, lambda: -1 / (a * a)),
        log1p: lambda a: (np.log1p(a), 1 / (1 + a), lambda: -1 / (1 + a) ** 2),
        log2: lambda a: (np.log2(a), 1 / (a * math.log(2)), lambda: -1 / (a * a * math.log(2))),
        log10: lambda a: (np.log10(a), 1 / (a * math.log(10)),
                          lambda: -1 / (a * a * math.log(10))),
        Cbrt: _cbrt, F.cbrt: _cbrt,
        sympy.Abs: lambda a: (np.abs(a), np.where(a >= 0, 1.0, -1.0), lambda: zero(a)),
        sympy.sign: lambda a: (np.sign(a), zero(a), lambda: zero(a)),
        sympy.floor: lambda a: (np.floor(a), zero(a), lambda: zero(a)),
        sympy.ceiling: lambda a: (np.ceil(a), zero(a), lambda: zero(a)),
        sympy.erf: lambda a: (special.erf(a), 2 / SQRT_PI * np.exp(-a * a),
                              lambda: -4 * a / SQRT_PI * np.exp(-a * a)),
        sympy.erfc: lambda a: (special.erfc(a), -2 / SQRT_PI * np.exp(-a * a),
                               lambda: 4 * a / SQRT_PI * np.exp(-a * a)),
        sympy.gamma: lambda a: (special.gamma(a), special.gamma(a) * special.digamma(a),
                                lambda: special.gamma(a) * (special.digamma(a) ** 2
                                                            + special.polygamma(1, a))),
        sympy.loggamma: lambda a: (special.gammaln(a), special.digamma(a),
                                   lambda: special.polygamma(1, a)),
        F.sigmoid: lambda a: (sig(a), sig(a) * (1 - sig(a)),
                              lambda: sig(a) * (1 - sig(a)) * (1 - 2 * sig(a))),
        F.softplus: lambda a: (np.logaddexp(0, a), sig(a), lambda: sig(a) * (1 - sig(a))),
        F.relu: lambda a: (np.maximum(a, 0), (a > 0).astype(float), lambda: zero(a)),
    }


UNARY = _unary_rules()
COMPARISONS: dict[type, Callable[[Arr, Arr], Arr]] = {
    sympy.StrictLessThan: np.less, sympy.LessThan: np.less_equal,
    sympy.StrictGreaterThan: np.greater, sympy.GreaterThan: np.greater_equal,
    sympy.Equality: np.equal, sympy.Unequality: np.not_equal,
}
LOGIC: dict[type, Callable[..., Arr]] = {
    sympy.And: lambda *a: np.logical_and.reduce(np.broadcast_arrays(*a)),
    sympy.Or: lambda *a: np.logical_or.reduce(np.broadcast_arrays(*a)),
    sympy.Not: np.logical_not,
}


class JetEvaluator(Walker[Any]):
    """Evaluates a SymPy tree to jets (numbers) and boolean arrays (conditions)."""

    def __init__(self, env: dict[sympy.Symbol, Jet], n: int, order: int) -> None:
        super().__init__()
        self.env = env
        self.n = n
        self.rules = Rules(order)

    def leaf(self, node: sympy.Basic) -> Any:
        if isinstance(node, sympy.Symbol):
            if node not in self.env:
                raise NotInterpretable(f"unbound {node}")
            return self.env[node]
        if isinstance(node, BooleanTrue | BooleanFalse):
            return np.asarray([[bool(node)]])
        if node.is_Number or isinstance(node, sympy.NumberSymbol):
            return _constant(float(node))
        if isinstance(node, sympy.Piecewise):
            return self._piecewise(node)
        return None

    def apply(self, node: sympy.Basic, args: list[Any]) -> Any:
        kind = type(node)
        rules = self.rules
        if kind is sympy.Add:
            return _fold(rules.add, args)
        if kind is sympy.Mul:
            return _fold(rules.mul, args)
        if kind is sympy.Pow:
            return self._pow(node, args)
        if kind in UNARY:
            (a,) = args
            return rules.chain(a, *UNARY[kind](a.v))
        if kind in COMPARISONS:
            return COMPARISONS[kind](args[0].v, args[1].v)
        if kind in LOGIC:
            return LOGIC[kind](*args)
        if kind in (sympy.Max, sympy.Min):
            return _fold(lambda a, b: self._extremum(a, b, kind is sympy.Max), args)
        if kind is sympy.atan2:
            return self._atan2(*args)
        if kind is sympy.Heaviside:
            return Jet(np.heaviside(args[0].v, args[1].v if len(args) > 1 else 0.5))
        if kind in VECTOR_RULES:
            return VECTOR_RULES[kind](self, *args, *integer_args(node))
        raise NotInterpretable(kind.__name__)

    def _pow(self, node: sympy.Basic, args: list[Jet]) -> Jet:
        if node.exp.is_Integer:
            return self.rules.power(args[0], int(node.exp))
        a, b = args
        if b.g is None:  # constant exponent
            p = b.v
            return self.rules.chain(a, a.v**p, p * a.v ** (p - 1),
                                    lambda: p * (p - 1) * a.v ** (p - 2))
        f = a.v**b.v
        log_a = np.log(np.where(a.v == 0, 1.0, a.v))  # JAX: d/db 0^b = 0, not 0 * log 0
        return self.rules.binary(
            a, b, f, b.v * a.v ** (b.v - 1), f * log_a,
            lambda: (b.v * (b.v - 1) * a.v ** (b.v - 2), a.v ** (b.v - 1) * (1 + b.v * log_a),
                     f * log_a**2))

    def _extremum(self, a: Jet, b: Jet, is_max: bool) -> Jet:
        first = a.v > b.v if is_max else a.v < b.v
        tie = a.v == b.v
        half = self.rules.mul(self.rules.add(a, b), _constant(0.5))
        return self.rules.select(first, a, self.rules.select(tie, half, b))

    def _atan2(self, y: Jet, x: Jet) -> Jet:
        r2 = x.v * x.v + y.v * y.v
        return self.rules.binary(
            y, x, np.arctan2(y.v, x.v), x.v / r2, -y.v / r2,
            lambda: (-2 * x.v * y.v / r2**2, (y.v * y.v - x.v * x.v) / r2**2,
                     2 * x.v * y.v / r2**2))

    def _piecewise(self, node: sympy.Piecewise) -> Jet:
        taken: list[Arr] = []
        earlier: Arr = np.asarray([[False]])
        for _, cond in node.args:
            c = self.walk(cond)
            taken.append(np.logical_and(c, np.logical_not(earlier)))
            earlier = np.logical_or(earlier, c)
        result = _constant(math.nan)
        for (expr, _), mask in reversed(list(zip(node.args, taken, strict=True))):
            result = self.rules.select(mask, self.walk(expr), result)
        return result

    # --- vector operations ------------------------------------------------------------

    def vector(self, a: Jet, length: int) -> Jet:
        return self.rules.broadcast(a, length, self.n)

    def vec_sum(self, v: Jet, n: int) -> Jet:
        return self.rules.reduce_sum(self.vector(v, n))

    def vec_mean(self, v: Jet, n: int) -> Jet:
        return self.rules.mul(self.vec_sum(v, n), _constant(1 / n))

    def vec_prod(self, v: Jet, n: int) -> Jet:
        full = self.vector(v, n)
        product: Jet = _fold(self.rules.mul,
                             [self.rules.take(full, slice(i, i + 1)) for i in range(n)])
        return product

    def vec_norm(self, v: Jet, n: int) -> Jet:
        total = self.vec_sum(self.rules.power(v, 2), n)
        return self.rules.chain(total, *_sqrt(total.v))

    def vec_extremum(self, v: Jet, n: int, is_max: bool) -> Jet:
        full = self.vector(v, n)
        best = full.v.max(1, keepdims=True) if is_max else full.v.min(1, keepdims=True)
        weights = (full.v == best).astype(float)
        weights /= weights.sum(1, keepdims=True)
        return self.rules.reduce_sum(self.rules.mul(full, Jet(weights)))

    def dot(self, a: Jet, b: Jet, n: int) -> Jet:
        return self.rules.reduce_sum(self.rules.mul(self.vector(a, n), self.vector(b, n)))

    def index(self, v: Jet, i: int, n: int) -> Jet:
        return self.rules.take(self.vector(v, n), slice(i, i + 1))

    def slice(self, v: Jet, start: int, stop: int, step: int, n: int) -> Jet:
        return self.rules.take(self.vector(v, n), slice(start, None if stop < 0 else stop, step))


def _fold(op: Callable[[Any, Any], Any], items: list[Any]) -> Any:
    result = items[0]
    for item in items[1:]:
        result = op(result, item)
    return result


def _sqrt(a: Arr) -> tuple[Arr, Arr, Callable[[], Arr]]:
    return np.sqrt(a), 0.5 / np.sqrt(a), lambda: -0.25 / (a * np.sqrt(a))


VECTOR_RULES: dict[type, Callable[..., Jet]] = {
    F.VecSum: JetEvaluator.vec_sum, F.VecMean: JetEvaluator.vec_mean,
    F.VecProd: JetEvaluator.vec_prod, F.VecNorm: JetEvaluator.vec_norm,
    F.VecMax: lambda self, v, n: self.vec_extremum(v, n, True),
    F.VecMin: lambda self, v, n: self.vec_extremum(v, n, False),
    F.Dot: JetEvaluator.dot, F.Index: JetEvaluator.index, F.Slice: JetEvaluator.slice,
}


def variables(layout_names: tuple[str, ...], layout_shapes: tuple[tuple[int, ...], ...],
              points: Arr, symbol: Callable[[str], sympy.Symbol]) -> dict[sympy.Symbol, Jet]:
    """The jets of the variables at the points (B, n): seeds of the forward mode."""
    n = points.shape[1]
    env: dict[sympy.Symbol, Jet] = {}
    offset = 0
    for name, shape in zip(layout_names, layout_shapes, strict=True):
        size = shape[0] if shape else 1
        seed = np.zeros((1, size, n))
        seed[0, np.arange(size), offset + np.arange(size)] = 1.0
        env[symbol(name)] = Jet(points[:, offset:offset + size], seed)
        offset += size
    return env


def outputs(jet: Jet, batch: int, size: int, n: int, kinds: tuple[str, ...]) -> dict[str, Arr]:
    """A jet as value (B, size), gradient (B, size, n) and Hessian (B, size, n, n) arrays."""
    out: dict[str, Arr] = {}
    if "value" in kinds:
        out["value"] = np.broadcast_to(jet.v, (batch, size))
    if "gradient" in kinds:
        g = np.zeros((1, 1, n)) if jet.g is None else jet.g
        out["gradient"] = np.broadcast_to(g, (batch, size, n))
    if "hessian" in kinds:
        h = np.zeros((1, 1, n, n)) if jet.h is None else jet.h
        out["hessian"] = np.broadcast_to(h, (batch, size, n, n))
    return out


def program_interpretable(program: Any) -> int:
    """The number of nodes of the program's trees, or 0 if one of them has no jet rule."""
    known = set(UNARY) | set(COMPARISONS) | set(LOGIC) | set(VECTOR_RULES) | {
        sympy.Add, sympy.Mul, sympy.Pow, sympy.Max, sympy.Min, sympy.atan2, sympy.Heaviside,
        sympy.Piecewise, sympy.Symbol, ExprCondPair}
    nodes = 0
    for expr in program.exprs:
        for node in sympy.preorder_traversal(expr):
            nodes += 1
            if node.args and type(node) not in known and not isinstance(node, sympy.Number):
                return 0
    return nodes
