"""Function calls of the expression language: arity, shapes and the SymPy node of each."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sympy

from app.errors import ExpressionError, ShapeError
from app.language import functions as F

if TYPE_CHECKING:
    from app.language.build import Builder, Term
    from app.language.syntax import Syntax


def build_call(builder: Builder, node: Syntax) -> Term:
    """The term of ``name(args...)``."""
    from app.language import build as B

    name = node.text
    args = [a for a in node.args if a is not None]
    if name in ("where",):
        return _where(builder, node, args)
    if name in ("piecewise", "Piecewise"):
        return _piecewise(builder, node, args)
    if name not in B.FUNCTION_NAMES:
        raise ExpressionError(
            f"Unknown function {name!r} at position {node.pos}; the functions are: "
            + ", ".join(sorted(B.FUNCTION_NAMES)), node.pos, code="unknown_function")
    terms = [builder.value(a) for a in args]
    if name in B._ELEMENTWISE:
        _arity(node, terms, 1, 1)
        return B.Term(B.settle(B._ELEMENTWISE[name], terms[0].expr), terms[0].shape, node.pos)
    if name == "log":
        _arity(node, terms, 1, 2)
        shape = B._broadcast(terms, node, "take the log of")
        expr = B.settle(sympy.log, *(t.expr for t in terms))
        return B.Term(expr, shape, node.pos)
    if name == "atan2":
        _arity(node, terms, 2, 2)
        shape = B._broadcast(terms, node, "take atan2 of")
        return B.Term(B.settle(sympy.atan2, terms[0].expr, terms[1].expr), shape, node.pos)
    if name in ("min", "Min", "max", "Max"):
        return _extremum(node, terms, name.lower())
    if name in ("heaviside", "diracdelta", "polygamma"):
        return _distribution(node, terms, name)
    if name == "dot":
        _arity(node, terms, 2, 2)
        a, b = terms
        if a.shape == () or a.shape != b.shape:
            raise ShapeError(
                f"dot at position {node.pos} needs two vectors of the same length, got "
                f"shapes {list(a.shape)} and {list(b.shape)}", position=node.pos)
        return B.Term(B.settle(F.Dot, a.expr, b.expr, a.shape[0]), (), node.pos)
    _arity(node, terms, 1, 1)
    (v,) = terms
    if v.shape == ():
        scalar = {"sum": v.expr, "prod": v.expr, "mean": v.expr, "norm": sympy.Abs(v.expr)}
        return B.Term(scalar[name], (), node.pos)
    return B.Term(B.settle(B._REDUCTIONS[name], v.expr, v.shape[0]), (), node.pos)


def _arity(node: Syntax, terms: list[Term], low: int, high: int) -> None:
    if not low <= len(terms) <= high:
        wanted = str(low) if low == high else f"{low} to {high}"
        raise ExpressionError(
            f"{node.text} at position {node.pos} takes {wanted} argument"
            f"{'' if wanted == '1' else 's'}, got {len(terms)}", node.pos, code="wrong_arity")


def _extremum(node: Syntax, terms: list[Term], name: str) -> Term:
    from app.language import build as B

    if len(terms) == 1 and terms[0].shape != ():
        op: Any = F.VecMax if name == "max" else F.VecMin
        return B.Term(B.settle(op, terms[0].expr, terms[0].shape[0]), (), node.pos)
    if len(terms) < 2:
        raise ExpressionError(
            f"{node.text} at position {node.pos} takes two or more arguments, or one vector",
            node.pos, code="wrong_arity")
    shape = B._broadcast(terms, node, f"take the {name} of")
    func = sympy.Max if name == "max" else sympy.Min
    args = [t.expr for t in terms]
    if len(args) > B.SMALL_NARY:  # SymPy compares every pair of arguments: quadratic or worse
        return B.Term(func(*args, evaluate=False), shape, node.pos)
    return B.Term(B.settle(func, *args), shape, node.pos)


def _distribution(node: Syntax, terms: list[Term], name: str) -> Term:
    """heaviside(x[, h0]), diracdelta(x[, k]), polygamma(k, x): what SymPy's derivatives use."""
    from app.language import build as B

    _arity(node, terms, 2 if name == "polygamma" else 1, 2)
    if name == "heaviside":
        shape = B._broadcast(terms, node, "take heaviside of")
        return B.Term(B.settle(sympy.Heaviside, *(t.expr for t in terms)), shape, node.pos)
    if len(terms) == 1:
        return B.Term(B.settle(sympy.DiracDelta, terms[0].expr), terms[0].shape, node.pos)
    order_term, x = (terms[1], terms[0]) if name == "diracdelta" else (terms[0], terms[1])
    order = order_term.expr
    if not (order_term.shape == () and order.is_Integer and 0 <= int(order) <= 20):
        raise ExpressionError(
            f"The order of {name} at position {node.pos} must be a constant integer from "
            "0 to 20", node.pos, code="bad_order")
    func = sympy.DiracDelta if name == "diracdelta" else sympy.polygamma
    args = (x.expr, order) if name == "diracdelta" else (order, x.expr)
    return B.Term(B.settle(func, *args), x.shape, node.pos)


def _where(builder: Builder, node: Syntax, args: list[Syntax]) -> Term:
    from app.language import build as B

    if len(args) != 3:
        raise ExpressionError(
            f"where at position {node.pos} takes 3 arguments (condition, a, b), "
            f"got {len(args)}", node.pos, code="wrong_arity")
    cond = builder.condition(args[0])
    a, b = builder.value(args[1]), builder.value(args[2])
    shape = B._broadcast([cond, a, b], node, "choose between")
    return B.Term(sympy.Piecewise((a.expr, cond.expr), (b.expr, True)), shape, node.pos)


def _piecewise(builder: Builder, node: Syntax, args: list[Syntax]) -> Term:
    from app.language import build as B

    if not args:
        raise ExpressionError(
            f"piecewise at position {node.pos} needs pieces such as (x, x > 0), (0, True)",
            node.pos, code="wrong_arity")
    pieces: list[tuple[Any, Any]] = []
    terms: list[Term] = []
    for arg in args:
        if arg.kind != "tuple" or len(arg.args) != 2:
            raise ExpressionError(
                f"Each argument of piecewise is a pair (value, condition); the one at "
                f"position {arg.pos} is not", arg.pos, code="bad_piece")
        value_node, cond_node = (a for a in arg.args if a is not None)
        value, cond = builder.value(value_node), builder.condition(cond_node)
        pieces.append((value.expr, cond.expr))
        terms += [value, cond]
    shape = B._broadcast(terms, node, "choose between")
    return B.Term(sympy.Piecewise(*pieces), shape, node.pos)
