"""The one walk over a SymPy tree that every evaluator shares: explicit post-order, memoized.

A subclass says what a leaf is (``leaf``) and how a node combines its operands (``apply``);
the walk visits each distinct node once, without recursion, so shared subexpressions are
computed once and deep trees cannot overflow Python's stack.
"""

from __future__ import annotations

from typing import Generic, TypeVar

import sympy

from app.language.matrix_ops import ARRAY_OPS

T = TypeVar("T")

#: Vector operations and how many of their leading arguments are operands (the rest are
#: integers: lengths, indices, slice bounds), as each node type declares.
VECTOR_OPERANDS: dict[type, int] = {op: op.operands for op in ARRAY_OPS}


def operands(node: sympy.Basic) -> tuple[sympy.Basic, ...]:
    """The arguments of ``node`` that are evaluated (an integer exponent is not; a product
    divides by ``y`` where it has a factor ``y**-1``)."""
    if isinstance(node, sympy.Pow) and node.exp.is_Integer:
        return (node.base,)
    if isinstance(node, sympy.Mul):
        return tuple(a.base if d else a for a, d in zip(node.args, divides(node), strict=True))
    count = VECTOR_OPERANDS.get(type(node))
    if count is not None:
        return tuple(node.args[:count])
    return tuple(node.args)


def divides(node: sympy.Mul) -> tuple[bool, ...]:
    """Which factors of a product divide: ``x/y`` is ``Mul(x, Pow(y, -1))``, and is computed
    as one division, since ``1/y`` can overflow or underflow where ``x/y`` does not."""
    return tuple(isinstance(a, sympy.Pow) and a.exp is sympy.S.NegativeOne for a in node.args)


def integer_args(node: sympy.Basic) -> tuple[int, ...]:
    """The integer arguments of a vector operation (length, index, bounds)."""
    return tuple(int(a) for a in node.args[VECTOR_OPERANDS[type(node)]:])


class Walker(Generic[T]):
    """Evaluates SymPy trees bottom-up; subclasses give ``leaf`` and ``apply``."""

    def __init__(self) -> None:
        self.memo: dict[sympy.Basic, T] = {}

    def walk(self, root: sympy.Basic) -> T:
        """The value of ``root``, each distinct node computed once."""
        stack: list[tuple[sympy.Basic, bool]] = [(root, False)]
        memo = self.memo
        while stack:
            node, ready = stack.pop()
            if node in memo:
                continue
            leaf = self.leaf(node)
            if leaf is not None:
                memo[node] = self.finish(node, leaf)
                continue
            children = operands(node)
            if ready:
                memo[node] = self.finish(node, self.apply(node, [memo[c] for c in children]))
                continue
            stack.append((node, True))
            stack.extend((c, False) for c in children if c not in memo)
        return memo[root]

    def finish(self, node: sympy.Basic, value: T) -> T:
        """A hook on each node's computed value (identity here)."""
        return value

    def leaf(self, node: sympy.Basic) -> T | None:
        """The value of a node that needs no operands, or None."""
        raise NotImplementedError

    def apply(self, node: sympy.Basic, args: list[T]) -> T:
        """The value of ``node`` from the values of its operands."""
        raise NotImplementedError


