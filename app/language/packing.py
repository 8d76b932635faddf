"""SymPy trees across processes, exactly as built: no node is evaluated on the way.

Pickle makes a SymPy node again by calling its class on its arguments, which evaluates it:
an unevaluated ``x/x`` (``app.language.terms``) would arrive as ``1``, ``exp(log(x))`` as
``x`` and ``not (a > b)`` as ``a <= b``. ``pack`` lists the distinct nodes of a tree,
each after its arguments, as plain data (an atom as it is, any other node as its type and
the positions of its arguments); ``unpack`` makes each node again with ``unevaluated``.
A ``Program`` (``app.engine.xla``) pickles its trees this way, between the parse worker,
the server and the compile workers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sympy
from sympy.core.operations import AssocOp, LatticeOp
from sympy.functions.elementary.piecewise import ExprCondPair

#: A packed tree: one entry per distinct node, arguments first, the root last. An entry is
#: ``(atom,)`` or ``(type, positions of its arguments)``.
Packed = tuple[tuple[Any, ...], ...]


def unevaluated(kind: type, args: Sequence[Any]) -> Any:
    """The node ``kind(*args)`` as it is, without any of SymPy's rewriting."""
    if issubclass(kind, LatticeOp):  # And, Or, Min, Max filter and rewrite their arguments
        # even with evaluate=False: the node is made directly, with the argument set that
        # SymPy's lattice operations keep beside their arguments.
        node = sympy.Basic.__new__(kind, *args)
        node._argset = frozenset(args)
        return node
    if kind is ExprCondPair:
        return ExprCondPair(*args)
    if issubclass(kind, AssocOp):  # Add, Mul: what evaluate=False does, without sympifying,
        # dropping identities (a built tree has none) or the cache: half of the 5 ms it
        # takes to make a 100-variable Rosenbrock's 800 nodes again
        made: Any = kind
        return made._exec_constructor_postprocessors(made._from_args(args))
    return kind(*args, evaluate=False)


def pack(root: sympy.Basic) -> Packed:
    """The distinct nodes of ``root``'s tree, each after its arguments (no recursion)."""
    position: dict[sympy.Basic, int] = {}
    entries: list[tuple[Any, ...]] = []
    stack: list[tuple[sympy.Basic, bool]] = [(root, False)]
    while stack:
        node, ready = stack.pop()
        if node in position:
            continue
        if ready or not node.args:
            position[node] = len(entries)
            entries.append((type(node), tuple(position[a] for a in node.args))
                           if node.args else (node,))
            continue
        stack.append((node, True))
        stack.extend((a, False) for a in reversed(node.args) if a not in position)
    return tuple(entries)


def unpack(packed: Packed) -> Any:
    """The tree that ``pack`` listed, every node made again unevaluated."""
    made: list[Any] = []
    for entry in packed:
        if len(entry) == 1:
            made.append(entry[0])
        else:
            kind, positions = entry
            made.append(unevaluated(kind, [made[i] for i in positions]))
    return made[-1]
