"""SymPy node types of the matrix operations (``@``, ``transpose``, ``det``, ``inv``, ...).

A matrix variable stays ONE symbol in the tree, as a vector does (``app.language.functions``).
SymPy may fold an operand into a scalar (``X - X`` becomes ``0``), so every matrix operation
carries the shape of each operand after its operands, as integers: for each operand its
number of axes, then its sizes; then the operation's own integers (an axis, an index).
The compiler broadcasts each operand to its shape first (``operand_shapes``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import sympy

from app.language import functions as F

Shape = tuple[int, ...]
#: The most entries an array made inside an expression may hold (outer(x, x) of a long x,
#: eye(n), broadcasting a column against a row): 32 MB of float64.
MAX_ENTRIES = 4_000_000
#: The most multiply-adds of one matrix product.
MAX_PRODUCT_WORK = 1_000_000_000


class MatrixOp(F.VectorOp):
    """A matrix operation: operands, then their shapes encoded, then its own integers."""

    #: How many integers of its own follow the shapes.
    params: ClassVar[int] = 0

    @property
    def length(self) -> int:  # never a vector's length: the shapes are in the arguments
        raise TypeError("a matrix operation has shapes, not a length")


def encode(shapes: Sequence[Shape]) -> tuple[int, ...]:
    """The shapes of the operands as integers: each one's number of axes, then its sizes."""
    return tuple(x for shape in shapes for x in (len(shape), *shape))


def operand_shapes(ints: Sequence[int], count: int) -> tuple[list[Shape], tuple[int, ...]]:
    """The shapes of ``count`` operands from a node's integers, and the integers after them."""
    shapes: list[Shape] = []
    at = 0
    for _ in range(count):
        ndim = ints[at]
        shapes.append(tuple(ints[at + 1:at + 1 + ndim]))
        at += 1 + ndim
    return shapes, tuple(ints[at:])


def make(op: type[MatrixOp], operands: Sequence[Any], shapes: Sequence[Shape],
         *params: int) -> Any:
    """The node ``op`` of ``operands`` with their shapes, unevaluated."""
    ints = [sympy.Integer(i) for i in (*encode(shapes), *params)]
    return op(*operands, *ints, evaluate=False)


class MatMul(MatrixOp):
    """a @ b."""

    operands = 2


class Transpose(MatrixOp):
    """transpose(X), X.T."""


class Trace(MatrixOp):
    """trace(X)."""


class Det(MatrixOp):
    """det(X)."""


class LogDet(MatrixOp):
    """logdet(X): log det X, NaN where det X <= 0."""


class Inv(MatrixOp):
    """inv(X)."""


class Solve(MatrixOp):
    """solve(A, b): x with A x = b."""

    operands = 2


class Outer(MatrixOp):
    """outer(a, b)."""

    operands = 2


class Diag(MatrixOp):
    """diag(v): a diagonal matrix; diag(X): the diagonal."""


class Eye(MatrixOp):
    """eye(n): no operands, the size as its own integer."""

    operands = 0
    params = 1


class Norm(MatrixOp):
    """norm(X), the Frobenius norm of a matrix."""


class Reduce(MatrixOp):
    """sum, mean of a matrix along an axis (-1: all of them); its integers: kind, axis."""

    params = 2


class Entry(MatrixOp):
    """X[i, j] and X[i, :], X[a:b, j], ...: per axis, an index (start) or a slice
    (start, stop, step) resolved; its integers: for each axis, kind (0 index, 1 slice),
    start, stop, step."""

    params = 8


MATRIX_OPS: tuple[type[MatrixOp], ...] = (
    MatMul, Transpose, Trace, Det, LogDet, Inv, Solve, Outer, Diag, Eye, Norm, Reduce, Entry)
#: Every operation whose integer arguments are not operands: vectors' and matrices'.
ARRAY_OPS: tuple[type[F.VectorOp], ...] = (*F.VECTOR_OPS, *MATRIX_OPS)
REDUCTIONS = ("sum", "mean")
