"""How a function call is built: arity, shapes and the SymPy node, one builder per form.

The catalog (``app.language.catalog``) gives each function one of these builders; the
builder of expressions (``app.language.build``) looks the name up there and calls it with a
``Call``. Messages name the function as the user spelled it (``Max``, ``ceiling``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import sympy

from app.errors import ExpressionError, ShapeError
from app.language.terms import SMALL_NARY, Shape, Term, broadcast
from app.language.tree import Syntax

Arity = tuple[int, int | None]  # fewest and most arguments; None: no most


class Builds(Protocol):
    """What a call's builder needs of the expression builder."""

    def value(self, node: Syntax) -> Term: ...

    def condition(self, node: Syntax) -> Term: ...

    def settle(self, func: Any, *args: Any, numeric: bool = False) -> Any: ...

    def divide(self, a: Any, b: Any) -> Any: ...


@dataclass(frozen=True)
class Call:
    """One call being built: its syntax node, and its function's arity and settling."""

    builder: Builds
    node: Syntax
    arity: Arity
    numeric: bool  # constants computed in float64 (the catalog's ``numeric_at_constants``)

    @property
    def args(self) -> list[Syntax]:
        """The argument nodes."""
        return [a for a in self.node.args if a is not None]

    def values(self, check_arity: bool = True) -> list[Term]:
        """The arguments built as numbers or vectors, then their count checked."""
        terms = [self.builder.value(a) for a in self.args]
        if check_arity:
            low, high = self.arity
            wrong_arity(self.node, len(terms), low, high)
        return terms

    def settle(self, func: Any, *args: Any) -> Any:
        """``func(*args)``, settled as the function's catalog entry says."""
        return self.builder.settle(func, *args, numeric=self.numeric)

    def divide(self, a: Any, b: Any) -> Any:
        """``a / b``, one division (``app.language.terms.quotient``)."""
        return self.builder.divide(a, b)

    def term(self, expr: Any, shape: Shape) -> Term:
        """The term of this call."""
        return Term(expr, shape, self.node.pos)


Build = Callable[[Call], Term]


def wrong_arity(node: Syntax, count: int, low: int, high: int | None) -> None:
    """Refuse ``count`` arguments outside ``low`` to ``high``."""
    if low <= count <= (count if high is None else high):
        return
    wanted = str(low) if low == high else f"at least {low}" if high is None else f"{low} to {high}"
    raise ExpressionError(
        f"{node.text} at position {node.pos} takes {wanted} argument"
        f"{'' if wanted == '1' else 's'}, got {count}", node.pos, code="wrong_arity")


def elementwise(func: Any) -> Build:
    """f(x), elementwise on a vector."""
    def build(call: Call) -> Term:
        (x,) = call.values()
        return call.term(call.settle(func, x.expr), x.shape)
    return build


def broadcasting(func: Any, verb: str) -> Build:
    """f(a, b, ...) of arguments that broadcast together, such as log(x, b)."""
    def build(call: Call) -> Term:
        terms = call.values()
        shape = broadcast(terms, call.node, verb)
        return call.term(call.settle(func, *(t.expr for t in terms)), shape)
    return build


def extremum(func: Any, of_vector: Any, name: str) -> Build:
    """max(a, b, ...) elementwise, or max(v), the largest element of one vector."""
    def build(call: Call) -> Term:
        terms, node = call.values(check_arity=False), call.node
        if len(terms) == 1 and len(terms[0].shape) > 1:
            raise not_of_matrix(call, terms[0].shape)
        if len(terms) == 1 and terms[0].shape != ():
            return call.term(call.settle(of_vector, terms[0].expr, terms[0].shape[0]), ())
        if len(terms) < 2:
            raise ExpressionError(
                f"{node.text} at position {node.pos} takes two or more arguments, or one "
                "vector", node.pos, code="wrong_arity")
        shape = broadcast(terms, node, f"take the {name} of")
        args = [t.expr for t in terms]
        if len(args) > SMALL_NARY:  # SymPy compares every pair of arguments: quadratic or worse
            return call.term(func(*args, evaluate=False), shape)
        return call.term(call.settle(func, *args), shape)
    return build


def with_order(func: Any, order_first: bool) -> Build:
    """diracdelta(x[, k]) and polygamma(k, x): an order k that is a small constant integer."""
    def build(call: Call) -> Term:
        terms, node = call.values(), call.node
        if len(terms) == 1:
            return call.term(call.settle(func, terms[0].expr), terms[0].shape)
        order_term, x = (terms[0], terms[1]) if order_first else (terms[1], terms[0])
        order = order_term.expr
        if not (order_term.shape == () and order.is_Integer and 0 <= int(order) <= 20):
            raise ExpressionError(
                f"The order of {node.text} at position {node.pos} must be a constant integer "
                "from 0 to 20", node.pos, code="bad_order")
        args = (order, x.expr) if order_first else (x.expr, order)
        return call.term(call.settle(func, *args), x.shape)
    return build


def power(call: Call) -> Term:
    """pow(a, b): built as the power operator ``a^b`` is, limits on the exponent included."""
    call.values()  # the arguments and their count
    base, exponent = call.args
    return call.builder.value(_power_node(base, exponent))


def power_of(base: str) -> Build:
    """exp2(x) and the like: ``base^x``, built as the power operator is."""
    def build(call: Call) -> Term:
        call.values()
        (x,) = call.args
        return call.builder.value(_power_node(Syntax("number", x.pos, text=base), x))
    return build


def _power_node(base: Syntax, exponent: Syntax) -> Syntax:
    """The syntax of ``base ^ exponent``, so that a call builds exactly what ``^`` builds."""
    return Syntax("power", base.pos, (base, exponent), ops=("^",),
                  op_positions=(exponent.pos,))


def dot(op: Any) -> Build:
    """dot(a, b) of two vectors of the same length."""
    def build(call: Call) -> Term:
        a, b = call.values()
        if len(a.shape) != 1 or a.shape != b.shape:
            raise ShapeError(
                f"dot at position {call.node.pos} needs two vectors of the same length, got "
                f"shapes {list(a.shape)} and {list(b.shape)}", position=call.node.pos)
        return call.term(call.settle(op, a.expr, b.expr, a.shape[0]), ())
    return build


def reduction(op: Any, of_scalar: Any = None) -> Build:
    """sum(v) and the like: ``op`` of a vector; of a scalar, the scalar itself or the SymPy
    function ``of_scalar`` of it (norm: abs)."""
    def build(call: Call) -> Term:
        (v,) = call.values()
        if v.shape == ():
            return call.term(v.expr if of_scalar is None else call.settle(of_scalar, v.expr), ())
        if len(v.shape) > 1:
            raise not_of_matrix(call, v.shape)
        return call.term(call.settle(op, v.expr, v.shape[0]), ())
    return build


def vector_map(op: Any) -> Build:
    """softmax(v) and the like: a vector of v's length, each element made from all of v."""
    def build(call: Call) -> Term:
        (v,) = call.values()
        if v.shape == ():
            raise ShapeError(
                f"{call.node.text} at position {call.node.pos} needs a vector, such as "
                f"{call.node.text}(v) with v declared in variables as [n]",
                position=call.node.pos)
        if len(v.shape) > 1:
            raise not_of_matrix(call, v.shape)
        return call.term(call.settle(op, v.expr, v.shape[0]), v.shape)
    return build


def not_of_matrix(call: Call, shape: Shape) -> ShapeError:
    """The error of a vector operation given a matrix."""
    node = call.node
    return ShapeError(f"{node.text} at position {node.pos} takes a vector, got a matrix of "
                      f"shape {list(shape)}; sum, mean and norm take matrices, and X[i, :] "
                      "is a row", position=node.pos)


def where(call: Call) -> Term:
    """where(cond, a, b)."""
    args, node = call.args, call.node
    if len(args) != 3:
        raise ExpressionError(
            f"where at position {node.pos} takes 3 arguments (condition, a, b), "
            f"got {len(args)}", node.pos, code="wrong_arity")
    cond = call.builder.condition(args[0])
    a, b = call.builder.value(args[1]), call.builder.value(args[2])
    shape = broadcast([cond, a, b], node, "choose between")
    return call.term(conditional((a.expr, cond.expr), (b.expr, sympy.true)), shape)


def piecewise(call: Call) -> Term:
    """piecewise((a, cond1), (b, cond2), ...)."""
    args, node = call.args, call.node
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
        value, cond = call.builder.value(value_node), call.builder.condition(cond_node)
        pieces.append((value.expr, cond.expr))
        terms += [value, cond]
    shape = broadcast(terms, node, "choose between")
    return call.term(conditional(*pieces), shape)


def conditional(*pieces: tuple[Any, Any]) -> Any:
    """A Piecewise of (value, condition) pairs, unevaluated: SymPy would rewrite conditions
    and merge pieces by its own rules; the tiers take the first piece whose condition holds."""
    return sympy.Piecewise(*pieces, evaluate=False)
