"""Vector operations: dot, the reductions, softmax, and the subscripts v[i] and v[a:b:c].

Each node's last argument is the length n of its operand (``app.language.functions``);
a scalar that SymPy folded in is broadcast to that length first.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import sympy

from app.language import functions as F
from app.language.calls import dot, reduction, vector_map
from app.language.catalog.entry import (
    Absent,
    Components,
    Composite,
    Example,
    Function,
    JetAlgebra,
    Node,
)
from app.language.catalog.matrices import array_reduction
from app.language.ieee import flush, integer_power

TITLE = "Vectors"
Jet = Any
AT = {"v": [0.5, -1.5, 2.0]}
_NO_LATEX = Absent("written out in components before LaTeX is made")


def as_vector(v: Any, n: int) -> Any:
    """``v`` as a vector of length n (a folded scalar is repeated)."""
    return jnp.broadcast_to(v, (n,))


def _slice(v: Any, start: int, stop: int, step: int, n: int) -> Any:
    return as_vector(v, n)[slice(start, None if stop < 0 else stop, step)]


def _bounds(start: int, stop: int, step: int) -> slice:
    return slice(start, None if stop < 0 else stop, step)


def _sum(algebra: JetAlgebra, v: Jet, n: int) -> Jet:
    return algebra.reduce_sum(algebra.vector(v, n))


def _prod(algebra: JetAlgebra, v: Jet, n: int) -> Jet:
    full = algebra.vector(v, n)
    return functools.reduce(algebra.mul, [algebra.take(full, slice(i, i + 1)) for i in range(n)])


def _shifted_exp(algebra: JetAlgebra, v: Jet, n: int, finite_top: bool) -> tuple[Jet, Any]:
    """exp(v - max(v)) with the max held constant (JAX's ``stop_gradient``), and the max;
    logsumexp takes a non-finite max as 0."""
    full = algebra.vector(v, n)
    top = full.v.max(1, keepdims=True)
    if finite_top:
        top = np.where(np.isfinite(top), top, 0.0)
    shifted = algebra.add(full, algebra.lift(-top))
    e = flush(np.exp(flush(shifted.v)))  # as XLA flushes each operation's result
    return algebra.chain(shifted, e, e, lambda: e), top


def _logsumexp(algebra: JetAlgebra, v: Jet, n: int) -> Jet:
    """JAX's logsumexp: log(sum(exp(v - max))) + max, the max held constant."""
    e, top = _shifted_exp(algebra, v, n, finite_top=True)
    total = algebra.reduce_sum(e)
    s = total.v
    out = algebra.chain(total, np.log(s), 1.0 / s, lambda: -integer_power(s, -2))
    return algebra.add(out, algebra.lift(top))


def _softmax(algebra: JetAlgebra, v: Jet, n: int) -> Jet:
    """jax.nn.softmax: exp(v - max) / sum(exp(v - max)), the max held constant."""
    e, _ = _shifted_exp(algebra, v, n, finite_top=False)
    return algebra.divide(e, algebra.reduce_sum(e))


def _jax_softmax(v: Any, n: int) -> Any:
    """As ``jax.nn.softmax`` computes it (without its opt-in JVP rule)."""
    x = as_vector(v, n)
    unnormalized = jnp.exp(x - jax.lax.stop_gradient(jnp.max(x)))
    return unnormalized / jnp.sum(unnormalized)


def _logaddexps(parts: list[Any]) -> Any:
    """logsumexp of components, written as nested logaddexp (no overflow, unlike
    log(exp(a) + exp(b)))."""
    return functools.reduce(F.logaddexp, parts)


def _norm(algebra: JetAlgebra, v: Jet, n: int) -> Jet:
    total = _sum(algebra, algebra.power(v, 2), n)
    a = total.v
    return algebra.chain(total, np.sqrt(a), 0.5 / np.sqrt(a), lambda: -0.25 / (a * np.sqrt(a)))


#: How symbolic derivatives write each vector operation: from its operands' components.
IN_COMPONENTS = {
    F.VecSum: Components(lambda p, ints: sympy.Add(*p[0])),
    F.VecProd: Components(lambda p, ints: sympy.Mul(*p[0])),
    F.VecMean: Components(lambda p, ints: sympy.Add(*p[0]) / len(p[0])),
    F.VecNorm: Components(lambda p, ints: sympy.sqrt(sympy.Add(*(x**2 for x in p[0])))),
    F.VecMax: Components(lambda p, ints: sympy.Max(*p[0])),
    F.VecMin: Components(lambda p, ints: sympy.Min(*p[0])),
    F.VecLogSumExp: Components(lambda p, ints: _logaddexps(p[0])),
    F.Softmax: Components(lambda p, ints: [sympy.exp(x - _logaddexps(p[0])) for x in p[0]]),
    F.Dot: Components(lambda p, ints: sympy.Add(
        *(x * y for x, y in zip(p[0], p[1], strict=True)))),
    F.Index: Components(lambda p, ints: p[0][ints[0]]),
    F.Slice: Components(lambda p, ints: p[0][_bounds(*ints[:3])]),
}


def _reduction(name: str, op: type[F.VectorOp], jax: Any, jet: Any, of_scalar: Any,
               description: str, conventions: str = "") -> Function:
    """A reduction of a vector; of a scalar, ``of_scalar`` of it (None: the scalar itself);
    sum, mean and norm also of a matrix (``matrices.array_reduction``), sum and mean along
    an axis."""
    node = Node(op, name, lambda v, n: jax(as_vector(v, n)), Composite(jet), IN_COMPONENTS[op],
                _NO_LATEX)
    build = reduction(op, of_scalar)
    arity, signature = (1, 1), f"{name}(v)"
    if name in ("sum", "mean", "norm"):
        build = array_reduction(name, build)
        if name != "norm":
            arity, signature = (1, 2), f"{name}(v), {name}(X, axis)"
    return Function(name, (), arity, build, (node,), description,
                    Example(f"{name}(v)", AT), conventions=conventions, signature=signature)


FUNCTIONS = (
    Function("dot", (), (2, 2), dot(F.Dot),
             (Node(F.Dot, "dot", lambda a, b, n: jnp.dot(as_vector(a, n), as_vector(b, n)),
                   Composite(lambda algebra, a, b, n: algebra.reduce_sum(
                       algebra.mul(algebra.vector(a, n), algebra.vector(b, n)))),
                   IN_COMPONENTS[F.Dot], _NO_LATEX),),
             "The dot product of two vectors of the same length",
             Example("dot(v, w)", {"v": [0.5, -1.5, 2.0], "w": [1.0, 2.0, 0.25]}),
             signature="dot(a, b)"),
    _reduction("sum", F.VecSum, jnp.sum, _sum, None,
               "The sum of the elements of a vector (of a scalar: itself); of a matrix, of "
               "all its entries, or along an axis (0: of each column, 1: of each row)"),
    _reduction("prod", F.VecProd, jnp.prod, _prod, None,
               "The product of the elements of a vector (of a scalar: itself)"),
    _reduction("mean", F.VecMean, jnp.mean,
               lambda algebra, v, n: algebra.mul(_sum(algebra, v, n),
                                                 algebra.lift(np.asarray([[1 / n]]))),
               None, "The mean of the elements of a vector (of a scalar: itself); of a "
               "matrix, of all its entries, or along an axis (0: of each column)"),
    _reduction("norm", F.VecNorm, jnp.linalg.norm, _norm, sympy.Abs,
               "The Euclidean norm of a vector (of a scalar: its absolute value); of a matrix, "
               "its Frobenius norm",
               conventions="the derivative at the zero vector is NaN, as in JAX"),
    _reduction("logsumexp", F.VecLogSumExp, jax.nn.logsumexp, _logsumexp, None,
               "log(sum(exp(v))) of a vector, without overflow (of a scalar: itself)",
               conventions="as JAX's logsumexp: computed from v - max(v); its gradient is "
               "softmax(v); written out in components as nested logaddexp"),
    Function("softmax", (), (1, 1), vector_map(F.Softmax),
             (Node(F.Softmax, "softmax", _jax_softmax, Composite(_softmax),
                   IN_COMPONENTS[F.Softmax], _NO_LATEX),),
             "exp(v) / sum(exp(v)): a vector of v's length, positive and summing to 1",
             Example("softmax(v)", AT),
             conventions="vector-valued, so its derivative is a Jacobian; computed from "
             "v - max(v), as JAX's softmax; an inf element makes it NaN; written out in "
             "components as exp(v[i] - logsumexp(v))", signature="softmax(v)"),
)

#: v[i] and v[start:stop:step]: operators, not functions, but vector operations all the same.
SUBSCRIPTS = (
    Node(F.Index, "index", lambda v, i, n: as_vector(v, n)[i],
         Composite(lambda algebra, v, i, n: algebra.take(algebra.vector(v, n),
                                                           slice(i, i + 1))),
         IN_COMPONENTS[F.Index], _NO_LATEX),
    Node(F.Slice, "slice", _slice,
         Composite(lambda algebra, v, start, stop, step, n: algebra.take(
             algebra.vector(v, n), _bounds(start, stop, step))),
         IN_COMPONENTS[F.Slice], _NO_LATEX),
)
