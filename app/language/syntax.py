"""Expression text -> syntax tree, through an allow-listed LALR grammar (``grammar.lark``).

Why Lark and not Python's ``ast``: ``ast.parse`` accepts all of Python, recurses in C
(``"-" * 5000 + "x"`` raises ``RecursionError``, 5,000 ``**`` raise ``MemoryError``),
reports byte offsets and Python's own messages, and reads ``^`` as XOR. A grammar of
exactly our language parses with an explicit stack, gives character positions for every
token, and can only ever produce the node kinds listed below: nothing else exists to
refuse. The tree is built bottom-up during the parse (Lark's inline transformer), so
depth and size limits stop a hostile input before it is whole.
"""

from __future__ import annotations

import contextvars
import unicodedata
from dataclasses import dataclass
from importlib import resources
from typing import Any, cast

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from app.errors import ExpressionError, LimitError

#: Node kinds: number, name, call, tuple, unary, power, term, arith, compare, and, or, not,
#: index, slice. ``ops`` holds the operator tokens of n-ary kinds.


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


@dataclass(frozen=True, slots=True)
class SyntaxLimits:
    """The bounds checked while parsing."""

    max_chars: int
    max_depth: int
    max_nodes: int
    max_name_chars: int = 64


_limits: contextvars.ContextVar[SyntaxLimits] = contextvars.ContextVar("syntax_limits")

_TOKEN_NAMES = {
    "NAME": "a name",
    "NUMBER": "a number",
    "ADD_OP": "'+' or '-'",
    "MUL_OP": "'*', '/' or '%'",
    "POW_OP": "'**' or '^'",
    "COMP_OP": "a comparison",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "COMMA": "','",
    "COLON": "':'",
    "_AND": "'and'",
    "_OR": "'or'",
    "_NOT": "'not'",
    "$END": "the end of the expression",
}


def _node(kind: str, pos: int, args: tuple[Syntax | None, ...], **fields: Any) -> Syntax:
    children = [a for a in args if a is not None]
    depth = 1 + max((c.depth for c in children), default=0)
    size = 1 + sum(c.size for c in children)
    limits = _limits.get()
    if depth > limits.max_depth:
        raise LimitError("max_depth", limits.max_depth, "The nesting depth of the expression")
    if size > limits.max_nodes:
        raise LimitError("max_nodes", limits.max_nodes, "The number of terms in the expression")
    return Syntax(kind, pos, args, depth=depth, size=size, **fields)


def _nary(kind: str, items: list[Any]) -> Syntax:
    """``a op b op c`` as one node, so that a long sum is shallow."""
    operands = tuple(items[0::2])
    tokens: list[Token] = items[1::2]
    return _node(
        kind,
        operands[0].pos,
        operands,
        ops=tuple(str(t) for t in tokens),
        op_positions=tuple(t.start_pos or 0 for t in tokens),
    )


def _check_name(token: Token) -> None:
    limit = _limits.get().max_name_chars
    if len(token) > limit:
        raise LimitError("max_name_chars", limit,
                         f"The name at position {token.start_pos} ({len(token)} characters)")


class _Builder(Transformer[Token, Syntax]):
    """Lark callbacks: one per grammar alias, each returning a ``Syntax`` node."""

    def number(self, items: list[Token]) -> Syntax:
        return _node("number", items[0].start_pos or 0, (), text=str(items[0]))

    def name(self, items: list[Token]) -> Syntax:
        _check_name(items[0])
        return _node("name", items[0].start_pos or 0, (), text=str(items[0]))

    def call(self, items: list[Any]) -> Syntax:
        fn: Token = items[0]
        _check_name(fn)
        args = tuple(a for a in items[1:] if a is not None)
        return _node("call", fn.start_pos or 0, args, text=str(fn))

    def tuple(self, items: list[Any]) -> Syntax:
        lpar: Token = items[0]
        return _node("tuple", lpar.start_pos or 0, tuple(a for a in items[1:] if a is not None))

    def unary(self, items: list[Any]) -> Syntax:
        op: Token = items[0]
        return _node("unary", op.start_pos or 0, (items[1],), text=str(op))

    def power(self, items: list[Any]) -> Syntax:
        return _nary("power", items)

    def term(self, items: list[Any]) -> Syntax:
        if all(str(op) != "%" for op in items[1::2]):
            return _nary("term", items)
        # a % b binds as * and /, left to right: it is the call mod(a, b) of the product
        # so far, as in Python (2*7 % 4 is (2*7) % 4; 7 % 4 * 2 is (7 % 4) * 2).
        pending: list[Any] = [items[0]]
        for op, operand in zip(items[1::2], items[2::2], strict=True):
            if str(op) == "%":
                left = pending[0] if len(pending) == 1 else _nary("term", pending)
                pending = [_node("call", op.start_pos or 0, (left, operand), text="mod")]
            else:
                pending += [op, operand]
        return pending[0] if len(pending) == 1 else _nary("term", pending)

    def arith(self, items: list[Any]) -> Syntax:
        return _nary("arith", items)

    def compare(self, items: list[Any]) -> Syntax:
        return _nary("compare", items)

    def and_(self, items: list[Syntax]) -> Syntax:
        return _node("and", items[0].pos, tuple(items))

    def or_(self, items: list[Syntax]) -> Syntax:
        return _node("or", items[0].pos, tuple(items))

    def not_(self, items: list[Syntax]) -> Syntax:
        return _node("not", items[0].pos, tuple(items))

    def subscript(self, items: list[Any]) -> Syntax:
        target, bracket, sub = items
        return _node(sub.kind, bracket.start_pos or 0, (target, *sub.args))

    def index(self, items: list[Syntax]) -> Syntax:
        return Syntax("index", items[0].pos, (items[0],))

    def slice(self, items: list[Any]) -> Syntax:
        start, colon, stop, _colon2, step = items
        return Syntax("slice", colon.start_pos or 0, (start, stop, step))


_GRAMMAR = resources.files("app.language").joinpath("grammar.lark").read_text()
_PARSER = Lark(
    _GRAMMAR, parser="lalr", lexer="contextual", maybe_placeholders=True, transformer=_Builder()
)


def parse(text: str, limits: SyntaxLimits) -> Syntax:
    """Parse expression text into a syntax tree, or raise ``ExpressionError``/``LimitError``."""
    if len(text) > limits.max_chars:
        raise LimitError("max_expression_chars", limits.max_chars, "The expression's length")
    if not text.strip():
        raise ExpressionError("The expression is empty; write one, such as sin(x)", 0,
                              code="empty_expression")
    token = _limits.set(limits)
    try:
        tree = cast(Syntax, _PARSER.parse(text))
    except UnexpectedInput as error:
        raise _syntax_error(text, error) from None
    finally:
        _limits.reset(token)
    return tree


def _syntax_error(text: str, error: UnexpectedInput) -> ExpressionError:
    if isinstance(error, UnexpectedCharacters):
        pos = error.pos_in_stream or 0
        char = text[pos]
        name = unicodedata.name(char, f"U+{ord(char):04X}")
        hint = _char_hint(char)
        return ExpressionError(
            f"Unexpected character {char!r} ({name}) at position {pos}{hint}", pos,
            code="syntax_error",
        )
    expected = _expected(error)
    if isinstance(error, UnexpectedEOF) or (
        isinstance(error, UnexpectedToken) and error.token.type == "$END"
    ):
        return ExpressionError(
            f"The expression ends too early; expected {expected} at position {len(text)}",
            len(text), code="syntax_error",
        )
    assert isinstance(error, UnexpectedToken)
    pos = error.token.start_pos if error.token.start_pos is not None else 0
    return ExpressionError(
        f"Unexpected {error.token.value!r} at position {pos}; expected {expected}", pos,
        code="syntax_error",
    )


def _expected(error: UnexpectedInput) -> str:
    expected = getattr(error, "expected", ())
    names = sorted({_TOKEN_NAMES.get(str(t), str(t).lower()) for t in expected})
    if not names:
        return "something else"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _char_hint(char: str) -> str:
    if char in "'\"":
        return "; strings are not part of the language"
    if char == ".":
        return "; attributes are not part of the language"
    if char in "{}=;@&|~`$!?\\#":
        return "; only + - * / % ** ^, comparisons, and, or, not, calls and x[i] are allowed"
    if not char.isascii():
        return "; names and operators are plain ASCII"
    return ""
