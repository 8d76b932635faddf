"""The catalog of the language: every function declared once, and every table derived from it.

Each family module lists its ``Function`` entries (``entry.py`` says what an entry holds).
From them come the names the builder accepts (``FUNCTION_NAMES``, ``lookup``), the JAX
table of the compiler (``JAX``), the first tier's jet rules (``JET_RULES``), the printer's
names and LaTeX forms, the graph's op names, the docs table (``python -m
app.language.catalog``) and ``GET /v1/functions`` (``capabilities``). Adding a function is
one entry here plus its oracle test (``tests/test_catalog.py``).
"""

from __future__ import annotations

from typing import Any

import sympy

from app.language.catalog import (
    bessel,
    conditionals,
    exponential,
    matrices,
    special,
    steps,
    trigonometric,
    vectors,
)
from app.language.catalog.entry import (
    Absent,
    Components,
    Constant,
    Function,
    JetRule,
    Latex,
    Node,
)

FAMILIES: tuple[tuple[str, tuple[Function, ...]], ...] = tuple(
    (family.TITLE, family.FUNCTIONS)
    for family in (trigonometric, exponential, special, bessel, steps, vectors, matrices,
                   conditionals))
FUNCTIONS: tuple[Function, ...] = tuple(f for _, functions in FAMILIES for f in functions)
DECLARED_CONSTANTS = (
    Constant("pi", (), sympy.pi, "pi, the ratio of a circle's circumference to its diameter"),
    Constant("e", ("E",), sympy.E, "Euler's number, the base of the natural logarithm"),
    Constant("True", (), sympy.true, "the condition that always holds"),
    Constant("False", (), sympy.false, "the condition that never holds"),
)

_BY_NAME: dict[str, Function] = {n: f for f in FUNCTIONS for n in f.names}
FUNCTION_NAMES = frozenset(_BY_NAME)
CONSTANTS: dict[str, sympy.Basic] = {n: c.value for c in DECLARED_CONSTANTS for n in c.names}
#: Every node type that a function (or a subscript) builds, with its rules.
NODES: tuple[Node, ...] = (
    *(n for f in FUNCTIONS if not isinstance(f.nodes, Absent) for n in f.nodes),
    *vectors.SUBSCRIPTS,
    *matrices.OPERATOR_NODES,
)
assert len(FUNCTION_NAMES) == sum(len(f.names) for f in FUNCTIONS), "a name is declared twice"
assert not FUNCTION_NAMES & set(CONSTANTS), "a name is both a function and a constant"
assert len({n.type for n in NODES}) == len(NODES), "a node type is declared twice"


def lookup(name: str) -> Function | None:
    """The function called ``name`` (or an alias), if the language has one."""
    return _BY_NAME.get(name)


JAX: dict[type, Any] = {n.type: n.jax for n in NODES}
JET_RULES: dict[type, JetRule] = {n.type: n.jet for n in NODES if not isinstance(n.jet, Absent)}
PRINTED_NAMES: dict[type, str] = {n.type: n.printer for n in NODES if isinstance(n.printer, str)}
COMPONENTS: dict[type, Components] = {
    n.type: n.printer for n in NODES if isinstance(n.printer, Components)}
LATEX_COMMANDS: dict[type, str] = {
    n.type: n.latex.command for n in NODES
    if isinstance(n.latex, Latex) and n.latex.command is not None}
OP_NAMES: dict[type, str] = {n.type: n.name for n in NODES}


def arity_text(function: Function) -> str:
    """The arity as people write it: ``1``, ``1 to 2``, ``1 or more``."""
    low, high = function.arity
    return str(low) if low == high else f"{low} or more" if high is None else f"{low} to {high}"


def capabilities() -> dict[str, Any]:
    """What ``GET /v1/functions`` answers: each function and constant, as plain data."""
    return {
        "functions": [{"name": f.name, "aliases": list(f.aliases), "arity": list(f.arity),
                       "signature": f.usage, "description": f.description,
                       "example": {"expression": f.example.expression, "at": f.example.at},
                       "conventions": f.conventions}
                      for f in FUNCTIONS],
        "constants": [{"name": c.name, "aliases": list(c.aliases), "description": c.description}
                      for c in DECLARED_CONSTANTS],
    }
