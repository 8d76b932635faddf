"""SymPy tree -> JAX function: ONE table from node type to a ``jax.numpy`` callable, and a walk.

No source is generated and nothing is ``lambdify``-ed: the walk (``walk.Walker``) visits
each distinct node once, in an explicit post-order, and applies the table. Node types with
structure the table cannot express (``Pow``'s integer exponents, ``Piecewise``, vector
operations with their lengths) have handlers of their own.
``Piecewise`` uses the "double where": each branch sees its inputs through
``where(taken, x, stop_gradient(x))``, so a branch that is not taken, and may be NaN or
infinite there, contributes an exact zero to every derivative, Hessians included.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping
from typing import Any

import jax

jax.config.update("jax_enable_x64", True)  # type: ignore[no-untyped-call]

import jax.numpy as jnp  # noqa: E402 - float64 must be on before any array exists
import jax.scipy.special as jsp  # noqa: E402
import sympy  # noqa: E402
from sympy.codegen.cfunctions import Cbrt, expm1, log1p, log2, log10  # noqa: E402
from sympy.logic.boolalg import BooleanFalse, BooleanTrue  # noqa: E402

from app.errors import InputError  # noqa: E402
from app.language import functions as F  # noqa: E402
from app.language.walk import Walker, integer_args  # noqa: E402

Array = Any


def _sum(*args: Array) -> Array:
    return functools.reduce(operator.add, args)


def _product(*args: Array) -> Array:
    return functools.reduce(operator.mul, args)


def _log(x: Array, base: Array | None = None) -> Array:
    return jnp.log(x) if base is None else jnp.log(x) / jnp.log(base)


def _heaviside(x: Array, h0: Array = 0.5) -> Array:
    return jnp.heaviside(x, h0)


def _diracdelta(x: Array, k: Array = 0) -> Array:
    """0 away from 0 (as JAX differentiates sign and heaviside); at 0 inf, or NaN for k >= 1."""
    at_zero = jnp.where(jnp.asarray(k) == 0, jnp.inf, jnp.nan)
    return jnp.where(x == 0, at_zero, jnp.zeros_like(x, dtype=jnp.float64))


def _polygamma(n: Array, x: Array) -> Array:
    return jsp.polygamma(jnp.asarray(n).astype(jnp.int32), x)


def _loggamma(x: Array) -> Array:
    return jsp.gammaln(x)


#: Node type -> callable on the evaluated arguments. Checked at import: every type the
#: builder can produce is here or among the handlers of ``Evaluator``.
TABLE: dict[type, Callable[..., Array]] = {
    sympy.Add: _sum,
    sympy.Mul: _product,
    sympy.sin: jnp.sin, sympy.cos: jnp.cos, sympy.tan: jnp.tan,
    sympy.asin: jnp.arcsin, sympy.acos: jnp.arccos, sympy.atan: jnp.arctan,
    sympy.atan2: jnp.arctan2,
    sympy.sinh: jnp.sinh, sympy.cosh: jnp.cosh, sympy.tanh: jnp.tanh,
    sympy.asinh: jnp.arcsinh, sympy.acosh: jnp.arccosh, sympy.atanh: jnp.arctanh,
    sympy.exp: jnp.exp, expm1: jnp.expm1, sympy.log: _log, log1p: jnp.log1p,
    log2: jnp.log2, log10: jnp.log10, Cbrt: jnp.cbrt, F.cbrt: jnp.cbrt,
    sympy.Abs: jnp.abs, sympy.sign: jnp.sign,
    sympy.floor: jnp.floor, sympy.ceiling: jnp.ceil,
    sympy.erf: jsp.erf, sympy.erfc: jsp.erfc,
    sympy.gamma: jsp.gamma, sympy.loggamma: _loggamma, sympy.polygamma: _polygamma,
    sympy.Min: jnp.minimum, sympy.Max: jnp.maximum,
    sympy.Heaviside: _heaviside, sympy.DiracDelta: _diracdelta,
    F.sigmoid: jax.nn.sigmoid, F.softplus: jax.nn.softplus, F.relu: jax.nn.relu,
    sympy.StrictLessThan: jnp.less, sympy.LessThan: jnp.less_equal,
    sympy.StrictGreaterThan: jnp.greater, sympy.GreaterThan: jnp.greater_equal,
    sympy.Equality: jnp.equal, sympy.Unequality: jnp.not_equal,
    sympy.And: lambda *a: functools.reduce(jnp.logical_and, a),
    sympy.Or: lambda *a: functools.reduce(jnp.logical_or, a),
    sympy.Not: jnp.logical_not,
}

_BINARY_ONLY = {sympy.Min, sympy.Max}


def _pairwise(func: Callable[..., Array]) -> Callable[..., Array]:
    return lambda *args: functools.reduce(func, args)


for _t in _BINARY_ONLY:
    TABLE[_t] = _pairwise(TABLE[_t])


def _vector(v: Array, n: int) -> Array:
    return jnp.broadcast_to(v, (n,))


def _slice(v: Array, start: int, stop: int, step: int, n: int) -> Array:
    return _vector(v, n)[slice(start, None if stop < 0 else stop, step)]


#: Vector operations: callables on the operands, then the integer arguments.
VECTOR_TABLE: dict[type, Callable[..., Array]] = {
    F.VecSum: lambda v, n: jnp.sum(_vector(v, n)),
    F.VecProd: lambda v, n: jnp.prod(_vector(v, n)),
    F.VecMean: lambda v, n: jnp.mean(_vector(v, n)),
    F.VecNorm: lambda v, n: jnp.linalg.norm(_vector(v, n)),
    F.VecMax: lambda v, n: jnp.max(_vector(v, n)),
    F.VecMin: lambda v, n: jnp.min(_vector(v, n)),
    F.Dot: lambda a, b, n: jnp.dot(_vector(a, n), _vector(b, n)),
    F.Index: lambda v, i, n: _vector(v, n)[i],
    F.Slice: _slice,
}

assert set(F.VECTOR_OPS) == set(VECTOR_TABLE), "every vector op needs a compiler entry"


class CompileError(InputError):
    """The tree holds a node the compiler has no entry for."""

    code = "not_compilable"


class Evaluator(Walker[Array]):
    """Evaluates SymPy trees on JAX arrays bound to symbols; one memo per environment."""

    def __init__(self, env: Mapping[sympy.Symbol, Array],
                 nudges: Mapping[sympy.Basic, Array] | None = None) -> None:
        super().__init__()
        self.env = env
        # Added to a node's value where it is computed: d f / d nudge is the node's adjoint.
        self.nudges = nudges or {}

    def finish(self, node: sympy.Basic, value: Array) -> Array:
        nudge = self.nudges.get(node) if self.nudges else None
        return value if nudge is None else value + nudge

    def leaf(self, node: sympy.Basic) -> Array | None:
        if isinstance(node, sympy.Symbol):
            if node not in self.env:
                raise CompileError(f"The name {node} has no value", code="unbound_name")
            return self.env[node]
        if isinstance(node, BooleanTrue | BooleanFalse):
            return jnp.asarray(bool(node))
        if node.is_Number or isinstance(node, sympy.NumberSymbol):
            return jnp.asarray(float(node), dtype=jnp.float64)
        if isinstance(node, sympy.Piecewise):
            return self._piecewise(node)
        return None

    def apply(self, node: sympy.Basic, args: list[Array]) -> Array:
        if isinstance(node, sympy.Pow):
            exponent = node.exp
            if exponent.is_Integer:
                return args[0] ** int(exponent)
            if exponent == sympy.S.Half:
                return jnp.sqrt(args[0])
            return jnp.power(args[0], args[1])
        vector_op = VECTOR_TABLE.get(type(node))
        if vector_op is not None:
            return vector_op(*args, *integer_args(node))
        table_entry = TABLE.get(type(node))
        if table_entry is None:
            raise CompileError(
                f"The operation {type(node).__name__} cannot be compiled", code="not_compilable"
            )
        return table_entry(*args)

    def _piecewise(self, node: sympy.Piecewise) -> Array:
        taken: list[Array] = []
        earlier = jnp.asarray(False)
        for _, cond in node.args:
            c = self.walk(cond)
            taken.append(jnp.logical_and(c, jnp.logical_not(earlier)))
            earlier = jnp.logical_or(earlier, c)
        result: Array = jnp.asarray(jnp.nan)
        for (expr, _), mask in reversed(list(zip(node.args, taken, strict=True))):
            gate = _Gate(mask, jnp.ndim(mask) == 0 or not expr.atoms(*F.VECTOR_OPS))
            env = {s: gate(x) if s in expr.free_symbols else x for s, x in self.env.items()}
            nudges = None
            if self.nudges:
                inside = set(sympy.preorder_traversal(expr))
                nudges = {n: gate(d) for n, d in self.nudges.items() if n in inside}
            value = type(self)(env, nudges).walk(expr)
            result = jnp.where(mask, value, result)
        return result


class _Gate:
    """Inputs as a branch sees them: where it is not taken, without a gradient."""

    def __init__(self, mask: Array, elementwise: bool) -> None:
        self.elementwise = elementwise
        self.gate = mask if elementwise else jnp.any(mask)

    def __call__(self, x: Array) -> Array:
        if self.elementwise:
            x = jnp.broadcast_to(x, jnp.broadcast_shapes(jnp.shape(x), jnp.shape(self.gate)))
        return jnp.where(self.gate, x, jax.lax.stop_gradient(x))


def evaluate_constant(expr: sympy.Basic) -> float:
    """A constant expression in float64, by the same table as compiled code."""
    return float(Evaluator({}).walk(expr))
