"""SymPy node types that SymPy lacks: activations and the vector operations.

A vector stays ONE symbol in the tree (``x`` with shape ``(n,)``), so that a vector of
100,000 elements costs no more to parse and compile than one of 4. Because SymPy may
fold a vector subexpression into a scalar (``x - x`` becomes ``0``), every vector
operation carries the length ``n`` of its operand as its last argument, and the compiler
broadcasts the operand to that length first.
"""

from __future__ import annotations

from typing import Any, ClassVar

import sympy


class RealFunction(sympy.Function):  # type: ignore[misc]
    """A function that is real-valued on real arguments."""

    def _eval_is_extended_real(self) -> bool | None:
        return all(arg.is_extended_real for arg in self.args) or None


class sigmoid(RealFunction):
    """The logistic function 1 / (1 + exp(-x))."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> Any:
        return self * (1 - self)

    def _eval_rewrite_as_exp(self, arg: Any, **kwargs: Any) -> Any:
        return 1 / (1 + sympy.exp(-arg))


class softplus(RealFunction):
    """log(1 + exp(x)), the smooth ReLU."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> Any:
        return sigmoid(self.args[0])

    def _eval_rewrite_as_exp(self, arg: Any, **kwargs: Any) -> Any:
        return sympy.log(1 + sympy.exp(arg))


class relu(RealFunction):
    """max(x, 0), with derivative 0 at 0 as in JAX."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> Any:
        return sympy.Heaviside(self.args[0], 0)


class cbrt(RealFunction):
    """The real cube root, defined for negative x too (SymPy's ``Cbrt`` differentiates to
    ``x**(-2/3)/3``, which is NaN at negative x in float64)."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> Any:
        return 1 / (3 * cbrt(self.args[0]) ** 2)


class VectorOp(RealFunction):
    """A vector operation; its last argument is the operand length ``n``."""

    #: How many leading arguments are operands; the rest are integers (lengths, indices,
    #: slice bounds).
    operands: ClassVar[int] = 1

    @property
    def length(self) -> int:
        return int(self.args[-1])


class VecSum(VectorOp):
    """sum(v)."""

    nargs = 2


class VecProd(VectorOp):
    """prod(v)."""

    nargs = 2


class VecMean(VectorOp):
    """mean(v)."""

    nargs = 2


class VecNorm(VectorOp):
    """norm(v), the Euclidean norm."""

    nargs = 2


class VecMax(VectorOp):
    """max(v), the largest element."""

    nargs = 2


class VecMin(VectorOp):
    """min(v), the smallest element."""

    nargs = 2


class Dot(VectorOp):
    """dot(a, b) of two vectors of length n."""

    nargs = 3
    operands = 2


class Index(VectorOp):
    """v[i]: args (v, i, n)."""

    nargs = 3


class Slice(VectorOp):
    """v[start:stop:step] as a vector: args (v, start, stop, step, n), bounds resolved."""

    nargs = 5


VECTOR_OPS: tuple[type[VectorOp], ...] = (
    VecSum, VecProd, VecMean, VecNorm, VecMax, VecMin, Dot, Index, Slice,
)
