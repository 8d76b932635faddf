"""``symbolic.by_variable``: the derivative of a scalar f with respect to each whole variable,
in matrix notation in nabla's language (``(A + A.T) @ x``, ``4*x``, ``inv(X).T``).

f is rewritten in SymPy's matrix expressions (a vector is a column ``MatrixSymbol``), each
variable's derivative is taken by SymPy's matrix calculus (term by term over sums and
constant factors), and printed back in the language. SymPy's matrix calculus is wrong in
places (``diff(log(Determinant(X)), X)`` is 0 in the version we use), so a formula is
returned only after it was built back by nabla's own parser, has the variable's shape, and
agrees with JAX's gradient at random points; otherwise the answer is ``{"skipped": why}``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import numpy as np
import sympy
from sympy.matrices.expressions import MatrixExpr, ZeroMatrix

from app.config import Limits
from app.engine.compilation import CompileSpec, build_program
from app.engine.xla import Program
from app.errors import NablaError
from app.language import functions as F
from app.language import matrix_ops as M
from app.language.printing import to_latex
from app.language.walk import integer_args

#: Random points at which a formula must agree with JAX's gradient.
CHECK_POINTS = 3
RTOL, ATOL = 1e-8, 1e-10
MAX_CHARS = 2_000
_SCALAR_FUNCTIONS = {sympy.sin: "sin", sympy.cos: "cos", sympy.tan: "tan", sympy.exp: "exp",
                     sympy.log: "log", sympy.sinh: "sinh", sympy.cosh: "cosh",
                     sympy.tanh: "tanh", sympy.Abs: "abs"}


class Unsupported(Exception):
    """f or a derivative has no form here; the message says which part."""


def by_variable(program: Program, written: Mapping[str, str] | None = None,
                ) -> tuple[dict[str, Any], dict[str, str]]:
    """Each variable's name -> its derivative formula, or ``{"skipped": reason}``, and the
    LaTeX of each formula given; ``written``: formulas from the derivatives in components,
    tried when SymPy's matrix calculus gives none (and checked all the same)."""
    layout = program.layout
    if program.vector_valued or program.stacked:
        reason = "by_variable is written for a scalar f"
        return {name: {"skipped": reason} for name in layout.names}, {}
    converter = _ToMatrices(dict(zip(layout.names, layout.shapes, strict=True)))
    f: Any = None
    failed = ""
    try:
        f = converter(program.exprs[0])
    except Unsupported as error:
        failed = f"f has no matrix form here: {error}"
    checker = _Checker(program)
    answers: dict[str, Any] = {}
    latex: dict[str, str] = {}
    for name, shape in zip(layout.names, layout.shapes, strict=True):
        wrt = converter.symbols[name]
        reason = failed
        tries: list[Any] = [] if f is None else [False, True]
        if written and name in written:
            tries.append(written[name])
        for attempt in tries:  # xᵀAx as written, as tr(xᵀAx), then the components' formula
            try:
                text = (attempt if isinstance(attempt, str)
                        else _text(_diff(f, wrt, attempt), wrt))
                formula = checker.check(name, shape, text)
            except Unsupported as error:
                reason = reason or str(error)
                continue
            except RecursionError:
                reason = reason or "the derivative is nested too deeply"
                continue
            except Exception as error:
                reason = reason or f"SymPy failed: {type(error).__name__}"  # its own errors
                continue
            answers[name] = text
            with contextlib.suppress(Exception):  # LaTeX is a courtesy: the text is the answer
                latex[name] = to_latex(formula.exprs[0])
            break
        else:
            answers[name] = {"skipped": reason}
    return answers, latex


class _ToMatrices:
    """nabla's tree -> SymPy matrix expressions: vectors as columns, scalars as they are."""

    def __init__(self, shapes: dict[str, tuple[int, ...]]) -> None:
        self.symbols: dict[str, Any] = {}
        self.by_symbol: dict[sympy.Symbol, Any] = {}
        for name, shape in shapes.items():
            symbol = sympy.Symbol(name, real=True)
            if shape == ():
                value: Any = symbol
            else:
                rows, cols = (shape[0], 1) if len(shape) == 1 else shape
                value = sympy.MatrixSymbol(name, rows, cols)
            self.symbols[name] = value
            self.by_symbol[symbol] = value

    def __call__(self, expr: Any) -> Any:
        if isinstance(expr, sympy.Symbol):
            return self.by_symbol[expr]
        if isinstance(expr, sympy.Number | sympy.NumberSymbol):
            return expr
        if isinstance(expr, M.MatrixOp):
            return self._matrix_op(expr)
        if isinstance(expr, F.Dot):
            a, b = (self(x) for x in expr.args[:2])
            return _vector(a, "dot").T * _vector(b, "dot")
        if isinstance(expr, sympy.Add):
            parts = [self(a) for a in expr.args]
            if all(_is_matrix(p) for p in parts) or not any(_is_matrix(p) for p in parts):
                return sympy.Add(*parts) if not _is_matrix(parts[0]) else sympy.MatAdd(*parts)
            raise Unsupported("a scalar added to an array (broadcasting)")
        if isinstance(expr, sympy.Mul):
            parts = [self(a) for a in expr.args]
            matrices = [p for p in parts if _is_matrix(p) and p.shape != (1, 1)]
            if len(matrices) > 1:
                raise Unsupported("an elementwise product of arrays")
            return sympy.Mul(*parts) if not matrices else sympy.MatMul(*parts)
        if isinstance(expr, sympy.Pow):
            base, exponent = self(expr.base), self(expr.exp)
            if _is_matrix(base) or _is_matrix(exponent):
                raise Unsupported("a power of an array (elementwise)")
            return sympy.Pow(base, exponent)
        for func in _SCALAR_FUNCTIONS:
            if isinstance(expr, func):
                (arg,) = (self(a) for a in expr.args)
                if _is_matrix(arg):
                    raise Unsupported(f"{_SCALAR_FUNCTIONS[func]} of an array (elementwise)")
                return func(arg)
        raise Unsupported(f"{type(expr).__name__} has no matrix form in SymPy")

    def _matrix_op(self, expr: Any) -> Any:
        ops = [self(a) for a in expr.args[:expr.operands]]
        shapes, _ = M.operand_shapes(integer_args(expr), expr.operands)
        if any(not _is_matrix(o) for o in ops):
            raise Unsupported(f"{type(expr).__name__.lower()} of a scalar")
        kind = type(expr)
        if kind is M.MatMul:
            a, b = ops
            if len(shapes[0]) == 1 and len(shapes[1]) == 1:
                return a.T * b
            if len(shapes[0]) == 1:
                return (a.T * b).T  # a vector on the left: still a column here
            return a * b
        simple = {M.Transpose: lambda x: x.T, M.Trace: sympy.Trace,
                  M.Det: sympy.Determinant, M.LogDet: lambda x: sympy.log(sympy.Determinant(x)),
                  M.Inv: sympy.Inverse}
        if kind in simple:
            return simple[kind](ops[0])
        if kind is M.Solve:
            return sympy.Inverse(ops[0]) * ops[1]
        if kind is M.Outer:
            return ops[0] * ops[1].T
        raise Unsupported(f"{kind.__name__.lower()} has no matrix form in SymPy")


def _is_matrix(value: Any) -> bool:
    return isinstance(value, MatrixExpr)


def _vector(value: Any, where: str) -> Any:
    if not _is_matrix(value):
        raise Unsupported(f"{where} of a scalar")
    return value


def _diff(f: Any, wrt: Any, traced: bool) -> Any:
    """d f / d wrt, term by term over sums and constant factors, each by SymPy; with
    ``traced``, a 1 x 1 product p as tr(p)."""
    if isinstance(f, sympy.Add | sympy.MatAdd):
        parts = [d for d in (_diff(a, wrt, traced) for a in f.args) if not _zero(d)]
        if not parts:
            return sympy.Integer(0)
        return parts[0] if len(parts) == 1 else sympy.MatAdd(*parts) if _is_matrix(
            parts[0]) else sympy.Add(*parts)
    if isinstance(f, sympy.Mul | sympy.MatMul):
        constants = [a for a in f.args if a.is_number]
        if constants and len(constants) < len(f.args):
            rest = [a for a in f.args if not a.is_number]
            inner = rest[0] if len(rest) == 1 else type(f)(*rest)
            d = _diff(inner, wrt, traced)
            return sympy.Integer(0) if _zero(d) else sympy.Mul(*constants) * d
    if _is_matrix(f) and f.shape == (1, 1):
        if not _is_matrix(wrt):
            raise Unsupported("a 1 x 1 product differentiated by a scalar")
        if traced:
            f = sympy.Trace(f)
    return sympy.diff(f, wrt)


def _zero(expr: Any) -> bool:
    return isinstance(expr, ZeroMatrix) or expr == 0


def _text(expr: Any, wrt: Any) -> str:
    """A derivative in nabla's language; the zero matrix as ``0*X``."""
    if _zero(expr):
        return f"0*{wrt.name}" if _is_matrix(wrt) else "0"
    text = _Printer()(expr)
    if len(text) > MAX_CHARS:
        raise Unsupported(f"the formula has more than {MAX_CHARS} characters")
    return text


class _Printer:
    """SymPy matrix expressions -> nabla's language, parentheses around every compound."""

    def __call__(self, expr: Any) -> str:
        if isinstance(expr, sympy.MatrixSymbol | sympy.Symbol):
            return str(expr.name)
        if isinstance(expr, sympy.Integer):
            return str(int(expr))
        if isinstance(expr, sympy.Rational):
            return f"({expr.p}/{expr.q})"
        if isinstance(expr, sympy.Float):
            return repr(float(expr))
        if expr is sympy.pi:
            return "pi"
        if expr is sympy.E:
            return "e"
        if isinstance(expr, sympy.Add | sympy.MatAdd):
            return " + ".join(self(a) for a in expr.args).replace("+ -", "- ")
        if isinstance(expr, sympy.Mul | sympy.MatMul):
            return self._product(expr)
        if isinstance(expr, sympy.Pow):
            exponent = self(expr.exp)
            if not (expr.exp.is_Integer and expr.exp >= 0):
                exponent = f"({exponent})"
            return f"{self._group(expr.base)}**{exponent}"
        if isinstance(expr, sympy.Transpose):
            return f"{self._group(expr.arg)}.T"
        if isinstance(expr, sympy.Inverse):
            return f"inv({self(expr.arg)})"
        if isinstance(expr, sympy.MatPow) and expr.exp.is_Integer and expr.exp != 0:
            base = self(expr.base) if expr.exp > 0 else f"inv({self(expr.base)})"
            return " @ ".join([base] * abs(int(expr.exp)))
        if isinstance(expr, sympy.Identity):
            return f"eye({int(expr.shape[0])})"
        if isinstance(expr, sympy.Trace):
            return f"trace({self(expr.arg)})"
        if isinstance(expr, sympy.Determinant):
            return f"det({self(expr.arg)})"
        for func, name in _SCALAR_FUNCTIONS.items():
            if isinstance(expr, func):
                return f"{name}({self(expr.args[0])})"
        raise Unsupported(f"SymPy's answer holds {type(expr).__name__}, which has no form "
                          "in the language")

    def _group(self, expr: Any) -> str:
        text = self(expr)
        atomic = isinstance(expr, (sympy.MatrixSymbol, sympy.Symbol, sympy.Integer,
                                   sympy.Inverse, sympy.Trace, sympy.Determinant,
                                   sympy.Transpose, sympy.Identity, sympy.Pow,
                                   *_SCALAR_FUNCTIONS))
        return text if atomic and not text.startswith("-") else f"({text})"

    def _product(self, expr: Any) -> str:
        scalars = [a for a in expr.args if not _is_matrix(a)]
        arrays = [a for a in expr.args if _is_matrix(a)]
        sign = ""
        if scalars and scalars[0] == -1:
            sign, scalars = "-", scalars[1:]
        parts = [self._group(a) for a in scalars]
        if arrays:
            parts.append(self._arrays(arrays))
        return sign + "*".join(parts)

    def _arrays(self, arrays: list[Any]) -> str:
        """A product of arrays; a column times a row is written with outer, a column times
        a 1 x 1 product as a scalar times the vector (a vector is 1-D in the language)."""
        whole = _matmul(arrays)
        if whole.shape != (1, 1):
            for i in range(1, len(arrays)):
                left, right = _matmul(arrays[:i]), _matmul(arrays[i:])
                if left.shape[1] != 1 or right.shape[0] != 1:
                    continue
                if left.shape[0] > 1 and right.shape[1] > 1:
                    return f"outer({self(left)}, {self(right)})"
                return f"({self(left)})*({self(right)})"
        return " @ ".join(self._group(a) for a in arrays)


def _matmul(arrays: list[Any]) -> Any:
    return arrays[0] if len(arrays) == 1 else sympy.MatMul(*arrays)


class _Checker:
    """A formula is kept only if nabla builds it with the variable's shape and it agrees
    with JAX's gradient of f at random points."""

    def __init__(self, program: Program) -> None:
        import jax

        self.program = program
        layout = program.layout
        rng = np.random.default_rng(20131313)
        points = []
        for _ in range(CHECK_POINTS):
            parts = []
            for shape in layout.shapes:
                value = rng.normal(size=shape)
                if len(shape) == 2 and shape[0] == shape[1]:  # det > 0 most likely
                    value = value @ value.T + shape[0] * np.eye(shape[0])
                parts.append(np.ravel(value))
            points.append(np.concatenate(parts) if parts else np.zeros(0))
        self.points = points
        grad = jax.jit(jax.grad(program.function()))
        self.gradients = [np.asarray(grad(z)) for z in points]
        offsets = np.cumsum([0, *layout.sizes])
        self.stretch = {name: slice(int(offsets[i]), int(offsets[i + 1]))
                        for i, name in enumerate(layout.names)}

    def check(self, name: str, shape: tuple[int, ...], text: str) -> Program:
        """The formula built, once it agrees with JAX's gradient; else ``Unsupported``."""
        layout = self.program.layout
        spec = CompileSpec((text,), False, tuple(zip(layout.names, layout.shapes, strict=True)),
                           (), ("value",), None, 1)
        try:
            formula = build_program(spec, Limits())
        except NablaError as error:
            raise Unsupported(f"SymPy's formula {text!r} does not build: {error.detail}") \
                from None
        if formula.out_shape != shape:
            raise Unsupported(f"SymPy's formula {text!r} has shape {list(formula.out_shape)}, "
                              f"not {list(shape)}")
        f = formula.function()
        compared = 0
        for z, gradient in zip(self.points, self.gradients, strict=True):
            want = gradient[self.stretch[name]].reshape(shape)
            got = np.asarray(f(z))
            finite = np.isfinite(want)
            if not finite.all():
                continue
            compared += 1
            if not np.allclose(got, want, rtol=RTOL, atol=ATOL):
                raise Unsupported(f"SymPy's formula {text!r} disagrees with the numeric "
                                  "derivative at random points (SymPy's matrix calculus is "
                                  "wrong here)")
        if compared == 0:
            raise Unsupported("the derivative is not finite at the random points, so no "
                              "formula could be checked")
        return formula
