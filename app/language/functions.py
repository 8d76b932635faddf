"""SymPy node types that SymPy lacks: activations, NumPy's functions and the vector
operations.

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


class sinc(RealFunction):
    """NumPy's normalised sinc: sin(pi x) / (pi x), and 1 at 0 (SymPy's own ``sinc`` is
    sin(x) / x). The derivative (cos(pi x) - sinc(x)) / x is 0/0 at 0; it is written with
    its Taylor term -pi^2 x / 3 there, whose value (0) and derivative (-pi^2/3) are
    sinc's at 0, so that symbolic gradients and Hessians are right at 0 too."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> Any:
        x = self.args[0]
        return sympy.Piecewise((-sympy.pi**2 * x / 3, sympy.Eq(x, 0, evaluate=False)),
                               ((sympy.cos(sympy.pi * x) - sinc(x)) / x, True),
                               evaluate=False)


class hypot(RealFunction):
    """sqrt(x^2 + y^2) without overflow."""

    nargs = 2

    def fdiff(self, argindex: int = 1) -> Any:
        return self.args[argindex - 1] / self


class logaddexp(RealFunction):
    """log(exp(x) + exp(y)) without overflow."""

    nargs = 2

    def fdiff(self, argindex: int = 1) -> Any:
        x, y = self.args if argindex == 1 else reversed(self.args)
        return sigmoid(x - y)


class mod(RealFunction):
    """x - y*floor(x/y), NumPy's and Python's modulo: the sign of y. Its derivatives are
    JAX's: 1 in x and -floor(x/y) in y (jumps included)."""

    nargs = 2

    def fdiff(self, argindex: int = 1) -> Any:
        x, y = self.args
        return sympy.Integer(1) if argindex == 1 else -sympy.floor(x / y)


class Round(RealFunction):
    """The nearest integer, ties to even (NumPy's ``round``); derivative 0, as in JAX."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> Any:
        return sympy.Integer(0)


class trunc(RealFunction):
    """x rounded toward 0; derivative 0, as in JAX."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> Any:
        return sympy.Integer(0)


class i0(RealFunction):
    """The modified Bessel function of the first kind of order 0."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> Any:
        return i1(self.args[0])


class i1(RealFunction):
    """The modified Bessel function of the first kind of order 1. Its derivative
    i0(x) - i1(x)/x is 0/0 at 0, where it is 1/2 (and the second derivative 0)."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> Any:
        x = self.args[0]
        return sympy.Piecewise((sympy.Rational(1, 2), sympy.Eq(x, 0, evaluate=False)),
                               (i0(x) - i1(x) / x, True), evaluate=False)


class i0e(RealFunction):
    """exp(-|x|) i0(x), which does not overflow."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> Any:
        x = self.args[0]
        return i1e(x) - sympy.sign(x) * i0e(x)


class i1e(RealFunction):
    """exp(-|x|) i1(x), which does not overflow; its derivative is 1/2 at 0, as JAX's."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> Any:
        x = self.args[0]
        return sympy.Piecewise((sympy.Rational(1, 2), sympy.Eq(x, 0, evaluate=False)),
                               (i0e(x) - i1e(x) * (sympy.sign(x) + 1 / x), True),
                               evaluate=False)


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


class VecLogSumExp(VectorOp):
    """logsumexp(v): log(sum(exp(v))) without overflow."""

    nargs = 2


class Softmax(VectorOp):
    """softmax(v): exp(v) / sum(exp(v)), a vector of the operand's length."""

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
    VecSum, VecProd, VecMean, VecNorm, VecMax, VecMin, VecLogSumExp, Softmax, Dot, Index,
    Slice,
)
