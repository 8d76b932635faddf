"""SymPy tree -> text in nabla's own expression language, and -> LaTeX.

Every string printed here parses back (``app.language.syntax``) to an expression with
the same value: function names are ours (``abs``, ``ceil``, ``lgamma``, ``heaviside``),
conditions use ``and``/``or``/``not``, ``Piecewise`` is ``piecewise((a, cond), ...)``,
floats keep all 17 significant digits, and the components of a vector variable, which
``app.learning.symbolic`` makes into symbols of their own, print as ``x[0]``, ``x[1]``, ...
A node the language cannot write raises ``Unprintable``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import sympy
from sympy.printing.latex import LatexPrinter
from sympy.printing.precedence import precedence
from sympy.printing.str import StrPrinter

from app.language import matrix_ops as M
from app.language.catalog import LATEX_COMMANDS, PRINTED_NAMES

#: SymPy function type -> its name in the language (the catalog's canonical name).
FUNCTION_NAMES: dict[Any, str] = PRINTED_NAMES
_FUNCTIONS = tuple(FUNCTION_NAMES)
_ALLOWED: tuple[type, ...] = (
    sympy.Symbol, sympy.Integer, sympy.Rational, sympy.Float, sympy.core.numbers.Infinity,
    sympy.core.numbers.NegativeInfinity, sympy.core.numbers.NaN, sympy.core.numbers.Pi,
    sympy.core.numbers.Exp1, sympy.core.numbers.EulerGamma, sympy.Add, sympy.Mul, sympy.Pow,
    sympy.Piecewise, sympy.core.relational.Relational, sympy.And, sympy.Or, sympy.Not, sympy.ITE,
    sympy.logic.boolalg.BooleanTrue, sympy.logic.boolalg.BooleanFalse,
)
_RELATIONS = {"<": "<", "<=": "<=", ">": ">", ">=": ">=", "==": "==", "!=": "!="}


class Unprintable(ValueError):
    """The tree holds a node that the expression language cannot write."""


class NablaPrinter(StrPrinter):  # type: ignore[misc]
    """Prints a SymPy tree as an expression of nabla's language."""

    def __init__(self, names: Mapping[sympy.Symbol, str] | None = None) -> None:
        super().__init__({"order": "none"})
        self.names: dict[Any, str] = dict(names or {})

    def _print(self, expr: Any, **kwargs: Any) -> str:
        if isinstance(expr, sympy.Basic) and not isinstance(expr, _ALLOWED + _FUNCTIONS):
            raise Unprintable(f"{type(expr).__name__} has no form in the expression language")
        if type(expr) in FUNCTION_NAMES:  # before SymPy's own printers of Abs, Max, ...
            return self._print_Function(expr)
        text: str = super()._print(expr, **kwargs)
        return text

    def _print_Symbol(self, expr: sympy.Symbol) -> str:
        return self.names.get(expr, str(expr.name))

    _print_Dummy = _print_Symbol

    def _print_Function(self, expr: Any) -> str:
        name = FUNCTION_NAMES.get(type(expr))
        if name is None:
            raise Unprintable(f"{type(expr).__name__} has no form in the expression language")
        return f"{name}({self.stringify(expr.args, ', ')})"

    def _print_Float(self, expr: sympy.Float) -> str:
        value = float(expr)
        if math.isnan(value):
            return "(0/0)"
        if math.isinf(value):
            return "(1/0)" if value > 0 else "(-1/0)"
        return repr(value)

    def _print_Infinity(self, expr: Any) -> str:
        return "(1/0)"

    def _print_NegativeInfinity(self, expr: Any) -> str:
        return "(-1/0)"

    def _print_NaN(self, expr: Any) -> str:
        return "(0/0)"

    def _print_Exp1(self, expr: Any) -> str:
        return "e"

    def _print_Pi(self, expr: Any) -> str:
        return "pi"

    def _print_EulerGamma(self, expr: Any) -> str:
        return repr(float(expr))

    def _print_BooleanTrue(self, expr: Any) -> str:
        return "True"

    def _print_BooleanFalse(self, expr: Any) -> str:
        return "False"

    def _print_Relational(self, expr: Any) -> str:
        op = _RELATIONS.get(expr.rel_op)
        if op is None:
            raise Unprintable(f"the relation {expr.rel_op} has no form in the language")
        level = precedence(expr)
        return f"{self.parenthesize(expr.lhs, level)} {op} {self.parenthesize(expr.rhs, level)}"

    def _print_And(self, expr: Any) -> str:
        return " and ".join(f"({self._print(a)})" for a in expr.args)

    def _print_Or(self, expr: Any) -> str:
        return " or ".join(f"({self._print(a)})" for a in expr.args)

    def _print_ITE(self, expr: Any) -> str:
        """if c then a else b, for conditions: (c and a) or (not c and b)."""
        c, a, b = (self._print(x) for x in expr.args)
        return f"(({c}) and ({a})) or (not ({c}) and ({b}))"

    def _print_Not(self, expr: Any) -> str:
        return f"not ({self._print(expr.args[0])})"

    def _print_Piecewise(self, expr: Any) -> str:
        pieces = ", ".join(f"({self._print(e)}, {self._print(c)})" for e, c in expr.args)
        return f"piecewise({pieces})"


class NablaLatexPrinter(LatexPrinter):  # type: ignore[misc]
    """LaTeX with vector components as subscripts (``x_{0}``) and our function names."""

    def __init__(self, names: Mapping[sympy.Symbol, str] | None = None) -> None:
        super().__init__({"symbol_names": dict(names or {})})

    def _print_Function(self, expr: Any, exp: str | None = None) -> str:
        if isinstance(expr, M.MatrixOp) and exp is None:
            return self._matrix(expr)
        command = LATEX_COMMANDS.get(type(expr))
        if command is not None:
            args = ", ".join(self._print(a) for a in expr.args)
            name = command if exp is None else f"{command}^{{{exp}}}"
            return rf"{name}{{\left({args} \right)}}"
        return str(super()._print_Function(expr, exp))


    def _matrix(self, expr: Any) -> str:
        """A matrix operation in the notation of matrix calculus: A x, X^T, X^{-1}, tr X."""
        ops = expr.args[:type(expr).operands]
        bare = [self._print(a) for a in ops]
        tight = [b if a.is_Atom or (isinstance(a, M.MatrixOp) and not isinstance(
            a, M.MatMul)) else rf"\left({b}\right)" for a, b in zip(ops, bare, strict=True)]
        kind = type(expr)
        if kind in (M.Transpose, M.Inv, M.Solve) and isinstance(ops[0], (M.Transpose, M.Inv)):
            tight[0] = rf"\left({bare[0]}\right)"  # (X^T)^{-1}, not X^T^{-1}
        if kind is M.MatMul:
            return f"{tight[0]} {tight[1]}"
        if kind is M.Transpose:
            return rf"{{{tight[0]}}}^{{\top}}"
        if kind is M.Inv:
            return rf"{{{tight[0]}}}^{{-1}}"
        if kind is M.Solve:
            return rf"{{{tight[0]}}}^{{-1}} {tight[1]}"
        if kind is M.Outer:
            return rf"{tight[0]} {{{tight[1]}}}^{{\top}}"
        if kind is M.Eye:
            return rf"I_{{{int(expr.args[-1])}}}"
        if kind is M.Norm:
            return rf"\left\|{bare[0]}\right\|"
        named = {M.Trace: r"\operatorname{tr}", M.Det: r"\det", M.LogDet: r"\log\det",
                 M.Diag: r"\operatorname{diag}"}
        if kind in named:
            return rf"{named[kind]}\left({bare[0]}\right)"
        return rf"\operatorname{{{kind.__name__.lower()}}}\left({bare[0]}\right)"


for _op in M.MATRIX_OPS:  # SymPy's printer has its own _print_Transpose, _print_MatMul ...
    setattr(NablaLatexPrinter, f"_print_{_op.__name__}", NablaLatexPrinter._matrix)


def to_text(expr: Any, names: Mapping[sympy.Symbol, str] | None = None) -> str:
    """``expr`` written in the expression language; raises ``Unprintable``."""
    text: str = NablaPrinter(names).doprint(expr)
    return text


def to_latex(expr: Any, names: Mapping[sympy.Symbol, str] | None = None) -> str:
    """``expr`` in LaTeX."""
    text: str = NablaLatexPrinter(names).doprint(expr)
    return text
