"""SymPy tree -> JAX function: ONE table from node type to a ``jax.numpy`` callable, and a walk.

The table holds the operators (here) and every function of the catalog
(``app.language.catalog``, where each function's JAX implementation is declared).
No source is generated and nothing is ``lambdify``-ed: the walk (``walk.Walker``) visits
each distinct node once, in an explicit post-order, and applies the table. Node types with
structure the table cannot express (``Pow``'s integer exponents, ``Piecewise``, vector
operations with their lengths) have handlers of their own.
A product divides by each factor ``y**-1`` (``x/y`` stays a division, as written).
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
# JAX's own persistent cache stays off whatever JAX_COMPILATION_CACHE_DIR says: an executable
# it loads cannot be serialized again for the server (app.engine.disk_cache keeps them).
jax.config.update("jax_enable_compilation_cache", False)  # type: ignore[no-untyped-call]

import jax.numpy as jnp  # noqa: E402 - float64 must be on before any array exists
import sympy  # noqa: E402
from sympy.logic.boolalg import BooleanFalse, BooleanTrue  # noqa: E402

from app.errors import InputError  # noqa: E402
from app.language import catalog  # noqa: E402
from app.language import functions as F  # noqa: E402
from app.language.ieee import SMALLEST_NORMAL, flush_number  # noqa: E402
from app.language.matrix_ops import ARRAY_OPS  # noqa: E402
from app.language.walk import Walker, divides, integer_args  # noqa: E402

Array = Any


def _sum(*args: Array) -> Array:
    return functools.reduce(operator.add, args)


def _product(*args: Array) -> Array:
    return functools.reduce(operator.mul, args)


def _quotient(args: list[Array], divisors: tuple[bool, ...]) -> Array:
    """A product in the order written, dividing by the factors marked as divisors."""
    result = 1.0 / args[0] if divisors[0] else args[0]
    for value, divides_by in zip(args[1:], divisors[1:], strict=True):
        result = result / value if divides_by else result * value
    return result


#: The operators: arithmetic, comparisons and logic (functions come from the catalog).
OPERATORS: dict[type, Callable[..., Array]] = {
    sympy.Add: _sum,
    sympy.Mul: _product,
    sympy.StrictLessThan: jnp.less, sympy.LessThan: jnp.less_equal,
    sympy.StrictGreaterThan: jnp.greater, sympy.GreaterThan: jnp.greater_equal,
    sympy.Equality: jnp.equal, sympy.Unequality: jnp.not_equal,
    sympy.And: lambda *a: functools.reduce(jnp.logical_and, a),
    sympy.Or: lambda *a: functools.reduce(jnp.logical_or, a),
    sympy.Not: jnp.logical_not,
    # SymPy writes a condition on a piecewise value (where(c, a, b) >= 0) as ITE(c, a >= 0,
    # b >= 0): an if-then-else of conditions
    sympy.ITE: jnp.where,
}
#: Node type -> callable on the evaluated arguments: the operators and every function of
#: the catalog. ``Pow`` and ``Piecewise`` have handlers of their own in ``Evaluator``.
TABLE: dict[type, Callable[..., Array]] = {
    **OPERATORS,
    **{t: f for t, f in catalog.JAX.items() if not issubclass(t, F.VectorOp)},
}
#: Vector operations: callables on the operands, then the integer arguments.
VECTOR_TABLE: dict[type, Callable[..., Array]] = {
    t: f for t, f in catalog.JAX.items() if issubclass(t, F.VectorOp)}

assert set(ARRAY_OPS) == set(VECTOR_TABLE), "every vector op needs a compiler entry"


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
            return jnp.asarray(flush_number(float(node)), dtype=jnp.float64)
        if isinstance(node, sympy.Piecewise):
            return self._piecewise(node)
        return None

    def apply(self, node: sympy.Basic, args: list[Array]) -> Array:
        if isinstance(node, sympy.Mul):
            return _quotient(args, divides(node))
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
            gate = _Gate(mask, jnp.ndim(mask) == 0 or not expr.atoms(*ARRAY_OPS))
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


@jax.custom_jvp
def flushed(x: Array) -> Array:
    """``x`` with subnormals made 0 (sign kept), with derivative 1. XLA flushes them in
    every arithmetic operation, but its compositions (atan2, abs, select) see a subnormal
    input as it is: flushed at the start, every operation agrees with the first tier."""
    return jnp.where(jnp.abs(x) < SMALLEST_NORMAL, x * 0.0, x)


flushed.defjvps(lambda tangent, answer, x: tangent)


def evaluate_constant(expr: sympy.Basic) -> float:
    """A constant expression in float64, by the same table as compiled code."""
    return float(Evaluator({}).walk(expr))
