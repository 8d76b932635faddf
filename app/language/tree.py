"""The syntax tree's node: what the parser (``app.language.syntax``) makes and the builder
(``app.language.build``) reads.

Kinds: number, name, call, tuple, unary, power, term, juxt (factors side by side: ``2x``),
arith, compare, and, or, not, index, slice. ``ops`` holds the operator tokens of n-ary
kinds. ``span`` is the stretch of the typed text the node covers, brackets included, and
``form`` how it was written where that matters: ``called`` (a name right before ``(``),
``applied`` (a function without parentheses: ``sin x``), ``group`` (in parentheses).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Syntax:
    """One node of the syntax tree, with the 0-based character offset where it starts."""

    kind: str
    pos: int
    args: tuple[Syntax | None, ...] = ()
    text: str = ""
    ops: tuple[str, ...] = ()
    op_positions: tuple[int, ...] = ()
    depth: int = 1
    size: int = 1
    span: tuple[int, int] = (0, 0)
    form: str = ""
