"""Syntax tree -> SymPy tree, with names resolved, shapes checked and constants tamed.

One method per syntax kind builds its node; calls are built as the catalog
(``app.language.catalog``) says, and every node is made through ``settle``
(``app.language.terms``): unevaluated, as written, over variables (SymPy's simplifications
change values and domains), and exact at constants only when small, real, finite and normal.
Nodes are built deepest first, without recursion, so a tree as deep as the parser allows
cannot exhaust Python's stack. The constant evaluator is injected (``Builder.constant``):
the engine passes its JAX table's, so the language imports nothing from above it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sympy
from sympy.logic.boolalg import Boolean

from app.errors import ExpressionError, LimitError, NablaError, ShapeError
from app.language import functions as F
from app.language.calls import Call
from app.language.catalog import CONSTANTS, FUNCTION_NAMES, lookup, matrices
from app.language.suggest import did_you_mean, suggestions
from app.language.terms import (
    ConstantEvaluator,
    Shape,
    Term,
    broadcast,
    has_variables,
    is_constant,
    logic_node,
    quotient,
    relation,
    settle,
)
from app.language.tree import Syntax


def variable_symbol(name: str) -> sympy.Symbol:
    """The SymPy symbol of a variable (real, as every input is)."""
    return sympy.Symbol(name, real=True)


def free_names(tree: Syntax, called: bool = False) -> list[str]:
    """The variable names the expression uses, in order of first appearance; with
    ``called``, the names written right before ``(`` instead (``x`` of ``x(y+1)``), which
    are variables only when declared or given a value (else unknown functions)."""
    seen: dict[str, None] = {}
    stack = [tree]
    while stack:
        node = stack.pop()
        if (node.kind == "name" and node.text not in CONSTANTS
                and (node.form == "called") == called):
            seen.setdefault(node.text, None)
        stack.extend(reversed([a for a in node.args if a is not None]))
    return list(seen)


@dataclass
class Builder:
    """Builds the SymPy tree of one expression for the given variable shapes."""

    shapes: Mapping[str, Shape]
    max_exponent: float
    max_literal: float
    constant: ConstantEvaluator  # a constant tree in float64, as compiled code computes it
    #: Each syntax node built so far (by id), or the error its building raised.
    built: dict[int, Term | NablaError] = field(default_factory=dict, repr=False)

    def build(self, node: Syntax) -> Term:
        """Build ``node`` and its subtree: every node after the nodes under it, each once.

        A node's error is kept and raised when its parent asks for it, so errors come in
        the order a recursive builder would raise them."""
        if id(node) not in self.built:
            for each in _deepest_first(node):
                if id(each) not in self.built:
                    self.built[id(each)] = self._make(each)
        term = self.built[id(node)]
        if isinstance(term, NablaError):
            raise term
        return term

    def _make(self, node: Syntax) -> Term | NablaError:
        method: Callable[[Syntax], Term] = getattr(self, f"_{node.kind}")
        try:
            return method(node)
        except NablaError as error:
            return error

    def value(self, node: Syntax) -> Term:
        """Build a node that must be a number or vector, not a condition."""
        term = self.build(node)
        if term.is_condition:
            raise ExpressionError(
                f"A condition at position {node.pos} is used as a number; conditions go "
                "in where(cond, a, b), piecewise((a, cond), ...), and, or, not",
                node.pos, code="condition_as_value")
        return term

    def condition(self, node: Syntax) -> Term:
        """Build a node that must be a condition."""
        term = self.build(node)
        if not term.is_condition:
            raise ExpressionError(
                f"Expected a condition (such as x > 0) at position {node.pos}",
                node.pos, code="expected_condition")
        return term

    # --- leaves -------------------------------------------------------------------

    def _number(self, node: Syntax) -> Term:
        text = node.text
        if text.isdigit() and len(text) <= 15:
            return Term(sympy.Integer(int(text)), (), node.pos)
        value = float(text)
        if not abs(value) <= self.max_literal:
            raise LimitError("max_literal", self.max_literal, f"The number {text[:40]}")
        if text.isdigit() or (value.is_integer() and abs(value) < 2**53 and "." not in text):
            return Term(sympy.Integer(int(value)), (), node.pos)
        return Term(sympy.Float(value), (), node.pos)

    def _name(self, node: Syntax) -> Term:
        name = node.text
        if name in self.shapes:  # a declared variable, even if named like a constant
            return Term(variable_symbol(name), self.shapes[name], node.pos)
        if name in CONSTANTS:
            value = CONSTANTS[name]
            return Term(value, (), node.pos, is_condition=isinstance(value, Boolean))
        if node.form == "called":
            found = suggestions(name, self.shapes, called=True)
            raise ExpressionError(
                f"Unknown function {name!r} at position {node.pos}{did_you_mean(found)} "
                f"(the functions are listed by GET /v1/functions); if {name} is a variable, "
                f"declare it in variables or write {name}*(...)", node.pos,
                code="unknown_function", suggestions=found)
        if name in FUNCTION_NAMES:
            raise ExpressionError(
                f"{name!r} at position {node.pos} is a function; call it, as in {name}(x), "
                f"or declare {name} in variables to use it as a variable",
                node.pos, code="function_as_name")
        found = suggestions(name, self.shapes)
        raise ExpressionError(
            f"Unknown name {name!r} at position {node.pos}{did_you_mean(found)} "
            "(a name of several letters is one name); declare it in variables",
            node.pos, code="unknown_name", suggestions=found)

    def _tuple(self, node: Syntax) -> Term:
        raise ExpressionError(
            f"A tuple at position {node.pos} is allowed only as an argument of piecewise",
            node.pos, code="misplaced_tuple")

    # --- operators ----------------------------------------------------------------

    def _unary(self, node: Syntax) -> Term:
        operand = self.value(_arg(node, 0))
        expr = operand.expr if node.text == "+" else self.settle(sympy.Mul, -1, operand.expr)
        return Term(expr, operand.shape, node.pos)

    def _arith(self, node: Syntax) -> Term:
        terms = [self.value(_arg(node, i)) for i in range(len(node.args))]
        shape = broadcast(terms, node, "add or subtract")
        parts = [terms[0].expr] + [
            t.expr if op == "+" else self.settle(sympy.Mul, -1, t.expr)
            for op, t in zip(node.ops, terms[1:], strict=True)
        ]
        return Term(self._left_to_right(sympy.Add, parts), shape, node.pos)

    def _term(self, node: Syntax) -> Term:
        factors = [self.value(_arg(node, i)) for i in range(len(node.args))]
        if "@" in node.ops:
            return self._products(node, factors)
        shape = broadcast(factors, node, "multiply or divide")
        parts = [factors[0].expr] + [  # a division stays one: 1/y may overflow where x/y not
            f.expr if op == "*" else sympy.Pow(f.expr, -1, evaluate=False)
            for op, f in zip(node.ops, factors[1:], strict=True)
        ]
        return Term(self._left_to_right(sympy.Mul, parts), shape, node.pos)

    def _products(self, node: Syntax, factors: list[Term]) -> Term:
        """``a @ b * c / d``: left to right, as in Python (``@`` binds as ``*`` does)."""
        result = factors[0]
        for op, at, factor in zip(node.ops, node.op_positions, factors[1:], strict=True):
            if op == "@":
                result = matrices.matmul(result, factor, at)
                continue
            shape = broadcast([result, factor], node, "multiply or divide")
            expr = (self.settle(sympy.Mul, result.expr, factor.expr) if op == "*"
                    else self.divide(result.expr, factor.expr))
            result = Term(expr, shape, node.pos)
        return Term(result.expr, result.shape, node.pos)

    def _transpose(self, node: Syntax) -> Term:
        return matrices.transpose(self.value(_arg(node, 0)), node.pos)

    def _juxt(self, node: Syntax) -> Term:
        """Factors side by side, ``2x`` or ``x(y+1)``: their product."""
        for left, right in zip(node.args, node.args[1:], strict=False):
            if left is not None and left.form == "called" and right is not None and (
                    right.kind == "tuple"):
                raise ExpressionError(
                    f"{left.text!r} at position {left.pos} is a variable, not a function: "
                    f"it cannot take arguments", left.pos, code="misplaced_tuple")
        factors = [self.value(_arg(node, i)) for i in range(len(node.args))]
        arrays = [f for f in factors if f.shape != ()]
        if len(arrays) > 1 and any(len(f.shape) > 1 for f in arrays):
            at = node.span[0]
            raise ExpressionError(
                f"Matrices side by side at position {at} could mean their matrix product "
                "or their elementwise product; write @ for the one (X.T @ A @ X) or * for "
                "the other", at, code="ambiguous", readings=["@", "*"])
        shape = broadcast(factors, node, "multiply")
        return Term(self._left_to_right(sympy.Mul, [f.expr for f in factors]), shape, node.pos)

    def _left_to_right(self, func: Any, parts: list[Any]) -> Any:
        """``func`` of ``parts`` in the order written: the leading constants settled one
        pair at a time, then one node, unevaluated, with the rest."""
        expr, rest = parts[0], parts[1:]
        while rest and is_constant(expr) and is_constant(rest[0]):
            expr, rest = self.settle(func, expr, rest[0]), rest[1:]
        return self.settle(func, expr, *rest) if rest else expr

    def _power(self, node: Syntax) -> Term:
        base, exponent = (self.value(_arg(node, i)) for i in range(2))
        shape = broadcast([base, exponent], node, "raise to a power")
        if exponent.expr.is_number and not has_variables(exponent.expr):
            size = exponent.expr
            magnitude = float("nan") if size is sympy.nan else (  # x^NaN costs nothing
                abs(float(size)) if size.is_finite else float("inf"))
            if magnitude > self.max_exponent:
                raise LimitError("max_exponent", self.max_exponent,
                                 f"The exponent at position {node.op_positions[0]}")
        return Term(self.settle(sympy.Pow, base.expr, exponent.expr), shape, node.pos)

    def _compare(self, node: Syntax) -> Term:
        terms = [self.value(_arg(node, i)) for i in range(len(node.args))]
        shape = broadcast(terms, node, "compare")
        relations = {"<": sympy.Lt, "<=": sympy.Le, ">": sympy.Gt, ">=": sympy.Ge,
                     "==": sympy.Eq, "!=": sympy.Ne}
        links = [relation(relations[op], a.expr, b.expr)
                 for op, a, b in zip(node.ops, terms, terms[1:], strict=False)]
        return Term(logic_node(sympy.And, links), shape, node.pos, is_condition=True)

    def _and(self, node: Syntax) -> Term:
        return self._logic(node, sympy.And)

    def _or(self, node: Syntax) -> Term:
        return self._logic(node, sympy.Or)

    def _not(self, node: Syntax) -> Term:
        return self._logic(node, sympy.Not)

    def _logic(self, node: Syntax, op: Any) -> Term:
        terms = [self.condition(_arg(node, i)) for i in range(len(node.args))]
        shape = broadcast(terms, node, "combine")
        return Term(logic_node(op, [t.expr for t in terms]), shape, node.pos,
                    is_condition=True)

    # --- subscripts ---------------------------------------------------------------

    def _index(self, node: Syntax) -> Term:
        if len(self.value(_arg(node, 0)).shape) > 1:  # X[i]: row i
            return self._entry(node)
        target = self._vector(_arg(node, 0), "index")
        length = target.shape[0]
        i = self._integer(_arg(node, 1))
        if not -length <= i < length:
            raise ShapeError(
                f"Index {i} at position {node.pos} is out of range for a vector of "
                f"length {length}", position=node.pos)
        return Term(F.Index(target.expr, i % length, length), (), node.pos)

    def _slice(self, node: Syntax) -> Term:
        if len(self.value(_arg(node, 0)).shape) > 1:  # X[a:b]: rows a to b
            return self._entry(node)
        target = self._vector(_arg(node, 0), "slice")
        length = target.shape[0]
        bounds = [None if a is None else self._integer(a) for a in node.args[1:]]
        if bounds[2] == 0:
            raise ShapeError(f"The slice step at position {node.pos} is zero", position=node.pos)
        start, stop, step = slice(*bounds).indices(length)
        count = len(range(start, stop, step))
        if count == 0:
            raise ShapeError(f"The slice at position {node.pos} is empty", position=node.pos)
        expr = F.Slice(target.expr, start, stop, step, length)
        return Term(expr, (count,), node.pos)

    def _vector(self, node: Syntax, what: str) -> Term:
        target = self.value(node)
        if len(target.shape) != 1:
            raise ShapeError(
                f"Only a vector or a matrix can be {what}ed; the value at position {node.pos} "
                "is a scalar", position=node.pos)
        return target

    def _entry(self, node: Syntax) -> Term:
        """``X[i, j]``, ``X[i, :]``, ``X[a:b, j]``, and ``X[i]`` (a row) of a matrix."""
        target = self.value(_arg(node, 0))
        if target.shape == ():
            raise ShapeError(f"Only a vector or a matrix can be indexed; the value at "
                             f"position {node.pos} is a scalar", position=node.pos)
        if node.kind in ("index", "slice"):  # one key, written X[i] or X[a:b]
            key_nodes = [Syntax("axis_" + node.kind, node.pos, node.args[1:])]
        else:
            key_nodes = [_arg(node, i) for i in range(1, len(node.args))]
        keys: list[int | tuple[int | None, int | None, int | None]] = []
        for key in key_nodes:
            if key.kind == "axis_index":
                keys.append(self._integer(_arg(key, 0)))
            else:
                start, stop, step = (None if a is None else self._integer(a) for a in key.args)
                keys.append((start, stop, step))
        return matrices.entry(target, keys, node.pos)

    def _axis_index(self, node: Syntax) -> Term:
        return Term(sympy.Integer(0), (), node.pos)  # read by _entry

    def _axis_slice(self, node: Syntax) -> Term:
        return Term(sympy.Integer(0), (), node.pos)  # read by _entry

    def _integer(self, node: Syntax) -> int:
        term = self.value(node)
        if not (term.expr.is_Integer and term.shape == ()):
            raise ExpressionError(
                f"An index at position {node.pos} must be a constant integer",
                node.pos, code="bad_index")
        return int(term.expr)

    # --- calls --------------------------------------------------------------------

    def _call(self, node: Syntax) -> Term:
        function = lookup(node.text)
        if function is None:
            found = suggestions(node.text, self.shapes, called=True)
            raise ExpressionError(
                f"Unknown function {node.text!r} at position {node.pos}{did_you_mean(found)}",
                node.pos, code="unknown_function", suggestions=found)
        if node.form == "bars" and self.value(_arg(node, 0)).shape != ():
            raise ExpressionError(
                f"|...| at position {node.pos} holds a vector: it could mean its norm or the "
                "absolute value of each element; write norm(...) or abs(...)", node.pos,
                code="ambiguous", readings=["norm(...)", "abs(...)"])
        if node.form == "applied" and node.text in self.shapes:
            name = node.text
            raise ExpressionError(
                f"{name!r} at position {node.pos} is ambiguous: it is a variable of this "
                f"expression and a function applied to what follows; write {name}(...) for "
                f"the function or {name}*... for the product", node.pos, code="ambiguous",
                readings=[f"{name}(...)", f"{name}*..."])
        call = Call(self, node, function.arity, function.numeric_at_constants)
        return function.build(call)

    def settle(self, func: Any, *args: Any, numeric: bool = False) -> Any:
        """``func(*args)``, a constant result settled as ``terms.settle`` says."""
        return settle(self.constant, func, *args, numeric=numeric)

    def divide(self, a: Any, b: Any) -> Any:
        """``a / b``, a division as ``terms.quotient`` makes it."""
        return quotient(self.constant, a, b)


def _deepest_first(root: Syntax) -> list[Syntax]:
    """The nodes under ``root`` (and it), each after every node under it."""
    order: list[Syntax] = []
    stack = [root]
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(a for a in node.args if a is not None)
    order.reverse()
    return order


def _arg(node: Syntax, i: int) -> Syntax:
    arg = node.args[i]
    assert arg is not None
    return arg
