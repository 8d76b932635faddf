"""The first tier: value, gradient and Hessian by forward-mode "jets" over NumPy, no compile.

A new expression answers in milliseconds this way while XLA compiles it in a worker for
the requests that follow. Each node carries a jet: its value ``v`` (B, k), gradient ``g``
(B, k, m) and Hessian ``h`` (B, k, m, m) for B points, over the m coordinates it depends on
(its support ``s``: a term of a 100-variable sum carries a 2x2 Hessian, not a 100x100 one;
below ``first_tier.SPARSE_FROM`` coordinates every jet is over all n); ``None`` stands for
an exact zero. An operation on jets of different supports works over their union.
The rules follow JAX's conventions at kinks (``abs'(0)
= 1``, ties of ``max`` split 0.5/0.5, ``relu'(0) = 0``), and a conditional selects the
taken branch's whole jet, so an untaken branch can never leak NaN into a derivative.
The rules of functions come from the catalog (``app.language.catalog``), written against
the jet arithmetic of ``Rules``; the operators' rules are here, as JAX computes them: a
product divides by each factor ``y**-1``, an integer power multiplies by repeated squaring.
XLA on CPU runs with subnormals flushed to zero (FTZ and DAZ, which no flag of XLA turns
off), so every jet is flushed the same way (``flush``): both tiers give the same numbers.
``interpret`` walks without flushing and checks every node once at the end: a walk that met
no subnormal is the flushed one; one that did is walked again, flushing each node.
A node without a rule raises ``NotInterpretable``; ``program_interpretable`` screens a
program for them first, and ``app.engine.tiers.JetTier`` falls back to XLA if one slips by.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy
from sympy.functions.elementary.piecewise import ExprCondPair
from sympy.logic.boolalg import BooleanFalse, BooleanTrue

from app.language.catalog import JET_RULES
from app.language.ieee import SMALLEST_NORMAL, flush, integer_power
from app.language.walk import VECTOR_OPERANDS, Walker, divides, integer_args

Arr = np.ndarray
#: The coordinates a jet's derivatives are over: sorted indices, or None for all n.
Support = tuple[int, ...] | None


class NotInterpretable(Exception):
    """The tree holds a node the jet rules do not cover."""


@dataclass
class Jet:
    """A value with its first and (optionally) second derivatives; None means zero.

    ``s`` is the jet's support: the sorted coordinates its derivatives may be nonzero on,
    the last axis of ``g`` and the last two of ``h``; None stands for all n coordinates."""

    v: Arr
    g: Arr | None = None
    h: Arr | None = None
    s: Support = None


def _outer(a: Arr, b: Arr) -> Arr:
    product: Arr = a[..., :, None] * b[..., None, :]
    return product


def _scale(c: Arr, a: Arr | None, axes: int) -> Arr | None:
    if a is None:
        return None
    scaled: Arr = c[..., None] * a if axes == 1 else c[..., None, None] * a
    return scaled


def _union(supports: list[Support]) -> Support:
    """The smallest support holding each of ``supports``."""
    first = supports[0]
    if len(supports) == 1 or all(s == first for s in supports):
        return first
    if any(s is None for s in supports):
        return None
    return tuple(sorted(set().union(*supports)))  # type: ignore[arg-type]


@functools.lru_cache(maxsize=4096)
def _index(s: Support, u: Support, axes: int) -> Any:
    """The index of ``out[index]`` that reaches, in a derivative over the support ``u``, the
    entries over ``s`` (a subset of ``u``): slices where ``s`` is consecutive in ``u``."""
    if u is None:
        positions = list(s)  # type: ignore[arg-type]
    else:
        at = {c: i for i, c in enumerate(u)}
        positions = [at[c] for c in s]  # type: ignore[union-attr]
    if positions[-1] - positions[0] == len(positions) - 1:
        span = slice(positions[0], positions[-1] + 1)
        return (Ellipsis, span) if axes == 1 else (Ellipsis, span, span)
    where = np.asarray(positions)
    return (Ellipsis, where) if axes == 1 else (Ellipsis, where[:, None], where)


def _widen(x: Arr, s: Support, u: Support, n: int, axes: int) -> Arr:
    """``x`` over the support ``s`` as an array over the wider support ``u``, zeros added."""
    if s == u:
        return x
    m = n if u is None else len(u)
    out = np.zeros(x.shape[:-axes] + (m,) * axes)
    out[_index(s, u, axes)] = x
    return out


def _total(terms: list[tuple[Arr | None, Support]], n: int, axes: int) -> tuple[Arr | None,
                                                                           Support]:
    """The sum of derivatives (None: zero) over their supports, added in order, and its
    support. Where a term lacks a coordinate, the dense sum would add an exact zero: the
    same number (up to the sign of a zero)."""
    present = [(x, s) for x, s in terms if x is not None]
    if not present:
        return None, None
    u = _union([s for _, s in present])
    if all(s == u for _, s in present):
        total = present[0][0]
        for x, _ in present[1:]:
            total = total + x
        return total, u
    m = n if u is None else len(u)
    prefix = present[0][0].shape[:-axes]
    if any(x.shape[:-axes] != prefix for x, _ in present):
        prefix = np.broadcast_shapes(*(x.shape[:-axes] for x, _ in present))
    out = np.zeros(prefix + (m,) * axes)
    for x, s in present:
        if s == u:
            out += x
        else:
            out[_index(s, u, axes)] += x
    return out, u


class Rules:
    """Jet arithmetic for a given derivative order (1: gradient, 2: Hessian too) and n
    coordinates: the ``JetAlgebra`` that the catalog's rules are written against. Each jet
    carries derivatives over its support only; an operation on two jets works over the
    union of their supports."""

    def __init__(self, order: int, n: int) -> None:
        self.order = order
        self.n = n

    def lift(self, value: Arr) -> Jet:
        """A jet whose derivatives are zero."""
        return Jet(value)

    def vector(self, a: Jet, length: int) -> Jet:
        """A jet as a vector of ``length`` (a folded scalar is repeated)."""
        return self.broadcast(a, length, self.n)

    def chain(self, a: Jet, f0: Arr, f1: Arr, f2: Arr | Callable[[], Arr | None] | None) -> Jet:
        """f(a) from f, f' and f'' at a (None: f'' is exactly 0, as where JAX's rule for f'
        does not depend on a, such as a select)."""
        g = _scale(f1, a.g, 1)
        h = None
        if self.order >= 2 and a.g is not None:
            second = f2() if callable(f2) else f2
            h = _scale(f1, a.h, 2)
            if second is not None:
                curve = _scale(second, _outer(a.g, a.g), 2)
                h = curve if h is None else h + curve
        return Jet(f0, g, h, a.s)

    def combine(self, value: Arr, weighted: list[tuple[Arr, Jet]]) -> Jet:
        """A jet of ``value`` whose derivatives are the weighted sums of the jets' (max and
        min, as JAX weighs them: 1, 0, or 1/2 at a tie)."""
        g, s = _total([(_scale(w, jet.g, 1), jet.s) for w, jet in weighted], self.n, 1)
        h = None
        if self.order >= 2:
            h = self._hessian([(_scale(w, jet.h, 2), jet.s) for w, jet in weighted], s)
        return Jet(value, g, h, s)

    def _hessian(self, terms: list[tuple[Arr | None, Support]], s: Support) -> Arr | None:
        """The sum of Hessian terms, over the support ``s`` of the gradient (which holds
        theirs)."""
        h, u = _total(terms, self.n, 2)
        return None if h is None else _widen(h, u, s, self.n, 2)

    def _cross(self, a: Jet, b: Jet, s: Support) -> Arr:
        """outer(a', b') + outer(b', a') over the support ``s``."""
        ag = _widen(a.g, a.s, s, self.n, 1)  # type: ignore[arg-type]
        bg = _widen(b.g, b.s, s, self.n, 1)  # type: ignore[arg-type]
        cross: Arr = _outer(ag, bg) + _outer(bg, ag)
        return cross

    def binary(self, a: Jet, b: Jet, f: Arr, fa: Arr, fb: Arr,
               second: Callable[[], tuple[Arr, Arr, Arr]]) -> Jet:
        """f(a, b) from its partial derivatives (``second`` gives faa, fab, fbb)."""
        g, s = _total([(_scale(fa, a.g, 1), a.s), (_scale(fb, b.g, 1), b.s)], self.n, 1)
        h = None
        if self.order >= 2 and g is not None:
            faa, fab, fbb = second()
            terms = [(_scale(fa, a.h, 2), a.s), (_scale(fb, b.h, 2), b.s)]
            if a.g is not None:
                terms.append((_scale(faa, _outer(a.g, a.g), 2), a.s))
            if b.g is not None:
                terms.append((_scale(fbb, _outer(b.g, b.g), 2), b.s))
            if a.g is not None and b.g is not None:
                terms.append((_scale(fab, self._cross(a, b, s), 2), s))
            h = self._hessian(terms, s)
        return Jet(f, g, h, s)

    def add(self, a: Jet, b: Jet) -> Jet:
        return self.add_all([a, b])

    def add_all(self, jets: list[Jet]) -> Jet:
        """The sum of the jets, added in order (one pass over the union of their supports,
        not one per term)."""
        v = jets[0].v
        for jet in jets[1:]:
            v = v + jet.v
        g, s = _total([(jet.g, jet.s) for jet in jets], self.n, 1)
        h = self._hessian([(jet.h, jet.s) for jet in jets], s)
        return Jet(v, g, h, s)

    def mul(self, a: Jet, b: Jet) -> Jet:
        if a.g is None or b.g is None:  # a constant factor: the other's jet, scaled
            c, x = (a, b) if a.g is None else (b, a)
            h = _scale(c.v, x.h, 2) if self.order >= 2 else None
            return Jet(a.v * b.v, _scale(c.v, x.g, 1), h, x.s)
        g, s = _total([(_scale(a.v, b.g, 1), b.s), (_scale(b.v, a.g, 1), a.s)], self.n, 1)
        h = None
        if self.order >= 2:
            terms = [(_scale(a.v, b.h, 2), b.s), (_scale(b.v, a.h, 2), a.s)]
            if a.g is not None and b.g is not None:
                terms.append((self._cross(a, b, s), s))
            h = self._hessian(terms, s)
        return Jet(a.v * b.v, g, h, s)

    def select(self, mask: Arr, a: Jet, b: Jet) -> Jet:
        """where(mask, a, b) on whole jets."""
        v = np.where(mask, a.v, b.v)
        if a.g is None and b.g is None:
            return Jet(v)
        s = _union([j.s for j in (a, b) if j.g is not None])
        g = np.where(mask[..., None], self._over(a, a.g, s, 1), self._over(b, b.g, s, 1))
        h = None if a.h is None and b.h is None else np.where(
            mask[..., None, None], self._over(a, a.h, s, 2), self._over(b, b.h, s, 2))
        return Jet(v, g, h, s)

    def _over(self, jet: Jet, x: Arr | None, s: Support, axes: int) -> Arr:
        """A derivative of ``jet`` over the support ``s`` (zeros where it is None)."""
        if x is None:
            return np.zeros(jet.v.shape + (1,) * axes)
        return _widen(x, jet.s, s, self.n, axes)

    def divide(self, a: Jet, b: Jet) -> Jet:
        """a / b, with JAX's partial derivatives: 1/b, and -a * b**-2."""
        def second() -> tuple[Arr, Arr, Arr]:
            return (np.zeros_like(a.v), -integer_power(b.v, -2),
                    -a.v * (-2.0 * integer_power(b.v, -3)))
        return self.binary(a, b, a.v / b.v, 1.0 / b.v, -a.v * integer_power(b.v, -2), second)

    def power(self, a: Jet, k: int) -> Jet:
        """a**k for an integer k, as ``lax.integer_pow`` and its derivatives."""
        if k == 0:
            return Jet(np.ones_like(a.v))
        if k == 1:
            second: Callable[[], Arr] = lambda: np.zeros_like(a.v)  # noqa: E731
        elif k == 2:  # 2 * (1 * a**0), the same numbers
            second = lambda: np.full_like(a.v, 2.0)  # noqa: E731
        else:
            second = lambda: k * ((k - 1) * integer_power(a.v, k - 2))  # noqa: E731
        return self.chain(a, integer_power(a.v, k), k * integer_power(a.v, k - 1), second)

    def broadcast(self, a: Jet, length: int, n: int) -> Jet:
        """A jet as a vector of ``length`` (a folded scalar is repeated)."""
        shape = (a.v.shape[0], length)
        g = None if a.g is None else np.broadcast_to(a.g, (*shape, a.g.shape[-1]))
        h = None if a.h is None else np.broadcast_to(a.h, (*shape, *a.h.shape[-2:]))
        return Jet(np.broadcast_to(a.v, shape), g, h, a.s)

    def reduce_sum(self, a: Jet) -> Jet:
        return Jet(a.v.sum(1, keepdims=True),
                   None if a.g is None else a.g.sum(1, keepdims=True),
                   None if a.h is None else a.h.sum(1, keepdims=True), a.s)

    def take(self, a: Jet, index: Any) -> Jet:
        return Jet(a.v[:, index], None if a.g is None else a.g[:, index],
                   None if a.h is None else a.h[:, index], a.s)


def _flush_jet(jet: Jet) -> Jet:
    """Values and gradients flushed at every node; Hessians only in the answer (``outputs``):
    a Hessian entry feeds nothing but other Hessian entries, scaled by derivatives, so an
    unflushed subnormal there moves an answer by less than 4 (1.8e308 * 2.2e-308), and only
    where a derivative exceeds 1e296. Flushing each node's n-by-n entries would cost a
    third of the time of the 100-variable Rosenbrock's Hessian."""
    return Jet(flush(jet.v), None if jet.g is None else flush(jet.g), jet.h, jet.s)


def _constant(value: float | bool) -> Jet:
    return Jet(np.asarray([[value]]))


COMPARISONS: dict[type, Callable[[Arr, Arr], Arr]] = {
    sympy.StrictLessThan: np.less, sympy.LessThan: np.less_equal,
    sympy.StrictGreaterThan: np.greater, sympy.GreaterThan: np.greater_equal,
    sympy.Equality: np.equal, sympy.Unequality: np.not_equal,
}
LOGIC: dict[type, Callable[..., Arr]] = {
    sympy.And: lambda *a: np.logical_and.reduce(np.broadcast_arrays(*a)),
    sympy.Or: lambda *a: np.logical_or.reduce(np.broadcast_arrays(*a)),
    sympy.Not: np.logical_not,
    sympy.ITE: np.where,  # a condition on a piecewise value, as SymPy writes it
}


class JetEvaluator(Walker[Any]):
    """Evaluates a SymPy tree to jets (numbers) and boolean arrays (conditions)."""

    def __init__(self, env: dict[sympy.Symbol, Jet], n: int, order: int,
                 flush_each: bool = True) -> None:
        super().__init__()
        self.env = env
        self.n = n
        self.rules = Rules(order, n)
        self.flush_each = flush_each
        # The partial products of products of three or more factors: XLA multiplies them
        # one pair at a time, each flushed, so they are steps of the walk as nodes are.
        self.steps: list[Jet] = []

    def finish(self, node: sympy.Basic, value: Any) -> Any:
        return _flush_jet(value) if self.flush_each and isinstance(value, Jet) else value

    def _step(self, jet: Jet) -> Jet:
        """A partial product: flushed as a node is, or kept for ``subnormal``'s check."""
        if self.flush_each:
            return _flush_jet(jet)
        self.steps.append(jet)
        return jet

    def subnormal(self) -> bool:
        """Whether a node's (or a partial product's) value or gradient holds a subnormal
        number. Where none does, flushing each (``flush_each``) would have changed nothing,
        so a walk without it gave the same numbers, for one check instead of one per node."""
        jets = [*self.memo.values(), *self.steps]
        parts = [x.ravel() for jet in jets if isinstance(jet, Jet)
                 for x in (jet.v, jet.g) if x is not None]
        magnitude = np.abs(np.concatenate(parts)) if parts else np.zeros(0)
        return bool(np.any((magnitude < SMALLEST_NORMAL) & (magnitude > 0)))

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
            return rules.add_all(args)
        if kind is sympy.Mul:
            result = rules.divide(_constant(1.0), args[0]) if divides(node)[0] else args[0]
            last = len(args) - 2
            for i, (factor, divisor) in enumerate(zip(args[1:], divides(node)[1:],
                                                      strict=True)):
                result = rules.divide(result, factor) if divisor else rules.mul(result, factor)
                if i < last:  # the last product is the node's, flushed by ``finish``
                    result = self._step(result)
            return result
        if kind is sympy.Pow:
            return self._pow(node, args)
        if kind in COMPARISONS:
            return COMPARISONS[kind](args[0].v, args[1].v)
        if kind in LOGIC:
            return LOGIC[kind](*args)
        rule = JET_RULES.get(kind)
        if rule is not None:
            ints = integer_args(node) if kind in VECTOR_OPERANDS else ()
            return rule.apply(rules, args, ints)
        raise NotInterpretable(kind.__name__)

    def _pow(self, node: sympy.Basic, args: list[Jet]) -> Jet:
        """Powers as JAX differentiates them: ``integer_pow``, ``sqrt`` and ``pow``."""
        if node.exp.is_Integer:
            return self.rules.power(args[0], int(node.exp))
        a, b = args
        if node.exp == sympy.S.Half:
            root = np.sqrt(a.v)
            slope = 0.5 / root
            return self.rules.chain(a, root, slope,
                                    lambda: -slope * 0.5 * integer_power(root, -2))
        if b.g is None:  # constant exponent
            p = b.v
            return self.rules.chain(a, a.v**p, p * a.v ** (p - 1),
                                    lambda: p * ((p - 1) * a.v ** (p - 2)))
        f = a.v**b.v
        log_a = np.log(np.where(a.v == 0, 1.0, a.v))  # JAX: d/db 0^b = 0, not 0 * log 0
        lowered = a.v ** (b.v - 1)

        def second() -> tuple[Arr, Arr, Arr]:
            return (b.v * ((b.v - 1) * a.v ** (b.v - 2)), lowered + b.v * (log_a * lowered),
                    log_a * (log_a * f))
        return self.rules.binary(a, b, f, b.v * lowered, log_a * f, second)

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


#: Node types with a rule: the catalog's functions, the operators, and structure.
KNOWN = frozenset(JET_RULES) | frozenset(COMPARISONS) | frozenset(LOGIC) | {
    sympy.Add, sympy.Mul, sympy.Pow, sympy.Piecewise, sympy.Symbol, ExprCondPair}


def program_interpretable(program: Any) -> int:
    """The number of nodes of the program's trees, or 0 if one of them has no jet rule."""
    shapes = (*program.layout.shapes, program.out_shape)
    if any(len(s) > 1 for s in shapes):  # matrices: compiled (matrix_ops has no jet rules)
        return 0
    nodes = 0
    for expr in program.exprs:
        for node in sympy.preorder_traversal(expr):
            nodes += 1
            if node.args and type(node) not in KNOWN and not isinstance(node, sympy.Number):
                return 0
    return nodes
