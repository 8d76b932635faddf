"""Matrix operations: ``@``, transpose, trace, det, logdet, inv, solve, outer, diag, eye,
and the subscripts ``X[i, j]``, ``X[i, :]``, ``X[a:b, j]``.

Shapes are checked as the expression is built: a mismatch says which shapes met, and where.
Each node carries its operands' shapes (``app.language.matrix_ops``); the JAX rule
broadcasts a folded scalar operand to its shape first. The first tier has no rule for
them: a program with a matrix operation is compiled by XLA.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax.numpy as jnp

from app.errors import ExpressionError, ShapeError
from app.language import matrix_ops as M
from app.language.calls import Call, wrong_arity
from app.language.catalog.entry import Absent, Example, Function, Node
from app.language.terms import Shape, Term

TITLE = "Matrices"
AT = {"X": [[2.0, 1.0], [0.5, 3.0]]}
_NO_JET = Absent("the first tier serves scalars and vectors; matrix programs are compiled")
_NO_TEXT = Absent("symbolic derivatives of matrix programs are written by variable "
                  "(symbolic.by_variable)")


def describe(shape: Shape) -> str:
    """A shape as the messages name it."""
    if shape == ():
        return "a scalar"
    if len(shape) == 1:
        return f"a vector of length {shape[0]}"
    return f"a {shape[0]}x{shape[1]} matrix"


def _jax(func: Callable[..., Any], count: int) -> Callable[..., Any]:
    """``func`` on the operands broadcast to their shapes, then the node's own integers."""
    def rule(*args: Any) -> Any:
        shapes, params = M.operand_shapes(args[count:], count)
        operands = [jnp.broadcast_to(a, s) for a, s in zip(args[:count], shapes, strict=True)]
        return func(*operands, *params)
    return rule


def _logdet(x: Any) -> Any:
    sign, logabs = jnp.linalg.slogdet(x)
    return jnp.where(sign > 0, logabs, jnp.nan)


def _reduce(x: Any, kind: int, axis: int) -> Any:
    func = jnp.sum if kind == 0 else jnp.mean
    return func(x, axis=None if axis < 0 else axis)


def _entry(x: Any, *params: int) -> Any:
    keys: list[Any] = []
    for axis in range(len(params) // 4):
        kind, start, stop, step = params[4 * axis:4 * axis + 4]
        keys.append(start if kind == 0 else slice(start, None if stop < 0 else stop, step))
    return x[tuple(keys[:x.ndim])]


def _node(op: type[M.MatrixOp], name: str, func: Callable[..., Any]) -> Node:
    return Node(op, name, _jax(func, op.operands), _NO_JET, _NO_TEXT,
                Absent("written in matrix notation by symbolic.by_variable"))


NODES = {
    M.MatMul: _node(M.MatMul, "matmul", jnp.matmul),
    M.Transpose: _node(M.Transpose, "transpose", jnp.transpose),
    M.Trace: _node(M.Trace, "trace", jnp.trace),
    M.Det: _node(M.Det, "det", jnp.linalg.det),
    M.LogDet: _node(M.LogDet, "logdet", _logdet),
    M.Inv: _node(M.Inv, "inv", jnp.linalg.inv),
    M.Solve: _node(M.Solve, "solve", jnp.linalg.solve),
    M.Outer: _node(M.Outer, "outer", jnp.outer),
    M.Diag: _node(M.Diag, "diag", jnp.diag),
    M.Eye: _node(M.Eye, "eye", lambda n: jnp.eye(n, dtype=jnp.float64)),
    M.Norm: _node(M.Norm, "norm", jnp.linalg.norm),
    M.Reduce: _node(M.Reduce, "reduce", _reduce),
    M.Entry: _node(M.Entry, "entry", _entry),
}


# --- shapes -------------------------------------------------------------------------


def sized(shape: Shape, pos: int, what: str) -> Shape:
    """``shape``, refused when it holds more than ``MAX_ENTRIES`` entries."""
    if math.prod(shape) > M.MAX_ENTRIES:
        raise ShapeError(f"{what} at position {pos} would make an array of shape "
                         f"{list(shape)}, more than {M.MAX_ENTRIES} entries", position=pos)
    return shape


def matmul(a: Term, b: Term, pos: int) -> Term:
    """``a @ b`` as NumPy's matmul: vectors and matrices, inner sizes equal."""
    if a.shape == () or b.shape == () or len(a.shape) > 2 or len(b.shape) > 2:
        raise ShapeError(
            f"@ at position {pos} multiplies vectors and matrices; it met {describe(a.shape)} "
            f"and {describe(b.shape)} (for a scalar, write *)", position=pos)
    inner_a, inner_b = a.shape[-1], b.shape[0]
    if inner_a != inner_b:
        raise ShapeError(
            f"@ at position {pos} cannot multiply {describe(a.shape)} by {describe(b.shape)}: "
            f"shapes {list(a.shape)} and {list(b.shape)} do not fit ({inner_a} != {inner_b})",
            position=pos)
    shape = sized((*a.shape[:-1], *b.shape[1:]), pos, "@")
    if math.prod(shape) * inner_a > M.MAX_PRODUCT_WORK:
        raise ShapeError(f"@ at position {pos} of shapes {list(a.shape)} and {list(b.shape)} "
                         f"is more than {M.MAX_PRODUCT_WORK} multiply-adds", position=pos)
    return Term(M.make(M.MatMul, (a.expr, b.expr), (a.shape, b.shape)), shape, pos)


def transpose(x: Term, pos: int) -> Term:
    """``x.T``: a matrix transposed; a vector or a scalar is itself (as in NumPy)."""
    if len(x.shape) < 2:
        return Term(x.expr, x.shape, pos)
    return Term(M.make(M.Transpose, (x.expr,), (x.shape,)), x.shape[::-1], pos)


def _square(call: Call, x: Term) -> int:
    if len(x.shape) != 2 or x.shape[0] != x.shape[1]:
        raise ShapeError(
            f"{call.node.text} at position {call.node.pos} needs a square matrix, got "
            f"{describe(x.shape)}", position=call.node.pos)
    return x.shape[0]


def _matrix(call: Call, x: Term) -> None:
    if len(x.shape) != 2:
        raise ShapeError(f"{call.node.text} at position {call.node.pos} needs a matrix, got "
                         f"{describe(x.shape)}", position=call.node.pos)


def _one(op: type[M.MatrixOp], check: Callable[[Call, Term], Any],
         shape: Callable[[Shape], Shape]) -> Callable[[Call], Term]:
    def build(call: Call) -> Term:
        (x,) = call.values()
        check(call, x)
        return call.term(M.make(op, (x.expr,), (x.shape,)), shape(x.shape))
    return build


def _transpose(call: Call) -> Term:
    (x,) = call.values()
    return transpose(x, call.node.pos)


def _solve(call: Call) -> Term:
    a, b = call.values()
    n = _square(call, a)
    if len(b.shape) not in (1, 2) or b.shape[0] != n:
        raise ShapeError(
            f"solve at position {call.node.pos} needs b with {n} rows for a {n}x{n} matrix, "
            f"got {describe(b.shape)}", position=call.node.pos)
    return call.term(M.make(M.Solve, (a.expr, b.expr), (a.shape, b.shape)), b.shape)


def _outer(call: Call) -> Term:
    a, b = call.values()
    for x in (a, b):
        if len(x.shape) != 1:
            raise ShapeError(f"outer at position {call.node.pos} needs two vectors, got "
                             f"{describe(a.shape)} and {describe(b.shape)}",
                             position=call.node.pos)
    shape = sized((a.shape[0], b.shape[0]), call.node.pos, "outer")
    return call.term(M.make(M.Outer, (a.expr, b.expr), (a.shape, b.shape)), shape)


def _diag(call: Call) -> Term:
    (x,) = call.values()
    if len(x.shape) == 1:
        shape: Shape = sized((x.shape[0], x.shape[0]), call.node.pos, "diag")
    elif len(x.shape) == 2:
        shape = (min(x.shape),)
    else:
        raise ShapeError(f"diag at position {call.node.pos} needs a vector (to make a "
                         "diagonal matrix) or a matrix (to take its diagonal), got a scalar",
                         position=call.node.pos)
    return call.term(M.make(M.Diag, (x.expr,), (x.shape,)), shape)


MAX_EYE = 2000


def _eye(call: Call) -> Term:
    (size,) = call.values()
    node = call.node
    if not (size.shape == () and size.expr.is_Integer and 1 <= int(size.expr) <= MAX_EYE):
        raise ExpressionError(
            f"eye at position {node.pos} takes a constant integer from 1 to {MAX_EYE}",
            node.pos, code="bad_size")
    n = int(size.expr)
    return call.term(M.make(M.Eye, (), (), n), (n, n))


def array_reduction(name: str, vector: Callable[[Call], Term]) -> Callable[[Call], Term]:
    """sum(x[, axis]), mean(x[, axis]), norm(x): of a vector without an axis as before
    (``vector``), else over a matrix, all of it or along one axis."""
    def build(call: Call) -> Term:
        terms = call.values(check_arity=False)
        node = call.node
        wrong_arity(node, len(terms), 1, 1 if name == "norm" else 2)
        x = terms[0]
        if len(terms) == 1 and len(x.shape) < 2:
            return vector(call)
        if name == "norm":
            return call.term(M.make(M.Norm, (x.expr,), (x.shape,)), ())
        axis = -1
        shape: Shape = ()
        if len(terms) == 2:
            axis = _axis(call, terms[1], len(x.shape))
            shape = tuple(s for i, s in enumerate(x.shape) if i != axis)
        kind = M.REDUCTIONS.index(name)
        if x.shape == ():
            return call.term(x.expr, ())
        return call.term(M.make(M.Reduce, (x.expr,), (x.shape,), kind, axis), shape)
    return build


def _axis(call: Call, term: Term, ndim: int) -> int:
    node = call.node
    if not (term.shape == () and term.expr.is_Integer):
        raise ExpressionError(f"The axis of {node.text} at position {node.pos} must be a "
                              "constant integer", node.pos, code="bad_index")
    axis = int(term.expr)
    if not -ndim <= axis < ndim:
        raise ShapeError(f"{node.text} at position {node.pos} has axis {axis}, out of range "
                         f"for {'a scalar' if ndim == 0 else f'{ndim} axes'}",
                         position=node.pos)
    return axis % ndim


def entry(target: Term, keys: Sequence[int | tuple[int | None, int | None, int | None]],
          pos: int) -> Term:
    """``X[k0, k1]`` (or ``X[k0]``, a row or rows): each key an index or a slice's bounds."""
    shape = target.shape
    if len(keys) > len(shape):
        raise ShapeError(f"The subscript at position {pos} has {len(keys)} indices for "
                         f"{describe(shape)}", position=pos)
    params: list[int] = []
    out: list[int] = []
    for axis, key in enumerate(keys):
        size = shape[axis]
        if isinstance(key, int):
            if not -size <= key < size:
                raise ShapeError(f"Index {key} at position {pos} is out of range for axis "
                                 f"{axis} of length {size} ({describe(shape)})", position=pos)
            params += [0, key % size, 0, 0]
            continue
        if key[2] == 0:
            raise ShapeError(f"The slice step at position {pos} is zero", position=pos)
        start, stop, step = slice(*key).indices(size)
        count = len(range(start, stop, step))
        if count == 0:
            raise ShapeError(f"The slice at position {pos} is empty", position=pos)
        params += [1, start, stop, step]
        out.append(count)
    out += list(shape[len(keys):])
    params += [1, 0, -1, 1] * (2 - len(keys))
    return Term(M.make(M.Entry, (target.expr,), (shape,), *params), tuple(out), pos)


def _function(name: str, build: Callable[[Call], Term], nodes: tuple[Node, ...],
              description: str, expression: str, signature: str,
              arity: tuple[int, int] = (1, 1), conventions: str = "",
              at: dict[str, Any] | None = None) -> Function:
    return Function(name, (), arity, build, nodes, description,
                    Example(expression, AT if at is None else at), conventions=conventions,
                    signature=signature)


FUNCTIONS = (
    _function("transpose", _transpose, (NODES[M.Transpose],),
              "A matrix transposed, also written X.T (a vector or a scalar is itself)",
              "transpose(X)", "transpose(X)"),
    _function("trace", _one(M.Trace, _matrix, lambda s: ()), (NODES[M.Trace],),
              "The sum of the diagonal of a matrix", "trace(X)", "trace(X)"),
    _function("det", _one(M.Det, _square, lambda s: ()), (NODES[M.Det],),
              "The determinant of a square matrix", "det(X)", "det(X)"),
    _function("logdet", _one(M.LogDet, _square, lambda s: ()), (NODES[M.LogDet],),
              "The logarithm of the determinant of a square matrix", "logdet(X)", "logdet(X)",
              conventions="NaN where det X <= 0"),
    _function("inv", _one(M.Inv, _square, lambda s: s), (NODES[M.Inv],),
              "The inverse of a square matrix", "inv(X)", "inv(X)",
              conventions="a singular matrix gives infinities or NaN, reported as non-finite"),
    _function("solve", _solve, (NODES[M.Solve],),
              "The solution x of A x = b, for a square matrix A and a vector or matrix b",
              "solve(X, b)", "solve(A, b)", arity=(2, 2),
              at={"X": AT["X"], "b": [1.0, 2.0]}),
    _function("outer", _outer, (NODES[M.Outer],),
              "The outer product of two vectors, a matrix", "outer(v, w)", "outer(a, b)",
              arity=(2, 2), at={"v": [1.0, 2.0], "w": [0.5, -1.0, 3.0]}),
    _function("diag", _diag, (NODES[M.Diag],),
              "The diagonal matrix of a vector, or the diagonal of a matrix", "diag(X)",
              "diag(v)"),
    _function("eye", _eye, (NODES[M.Eye],),
              "The n x n identity matrix (n a constant integer)", "trace(eye(2) @ X)",
              "eye(n)"),
)
#: Built by the subscripts, ``@``, ``x.T`` and the reductions of matrices, not by a name.
OPERATOR_NODES = (NODES[M.MatMul], NODES[M.Norm], NODES[M.Reduce], NODES[M.Entry])
