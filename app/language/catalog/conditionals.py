"""Conditionals: where and piecewise, both built as SymPy's Piecewise."""

from __future__ import annotations

from app.language.calls import piecewise, where
from app.language.catalog.entry import Absent, Example, Function

TITLE = "Conditionals"
_STRUCTURE = Absent(
    "builds a Piecewise node, which each tier handles as structure: the compiler's double "
    "where, the first tier's choice of the taken branch's jet, the printer's piecewise(...)")
_BRANCHES = ("a branch that is not taken never makes a derivative NaN, even where it is "
             "undefined (the double where)")

FUNCTIONS = (
    Function("where", (), (3, 3), where, _STRUCTURE,
             "Elementwise, a where cond holds and b elsewhere (as NumPy's where)",
             Example("where(x > 0, sqrt(x), -x)", {"x": -1.5}), conventions=_BRANCHES,
             signature="where(cond, a, b)"),
    Function("piecewise", ("Piecewise",), (1, None), piecewise, _STRUCTURE,
             "The value of the first pair (value, condition) whose condition is true; "
             "NaN if none is",
             Example("piecewise((x^2, x < 0), (x, x < 1), (1, True))", {"x": 0.5}),
             conventions=_BRANCHES, signature="piecewise((a, cond), (b, cond2), ...)"),
)
