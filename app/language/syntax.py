"""Expression text -> syntax tree, through an allow-listed LALR grammar (``grammar.lark``).

Why Lark and not Python's ``ast``: ``ast.parse`` accepts all of Python, recurses in C
(``"-" * 5000 + "x"`` raises ``RecursionError``, 5,000 ``**`` raise ``MemoryError``),
reports byte offsets and Python's own messages, and reads ``^`` as XOR. A grammar of
exactly our language parses with an explicit stack, gives character positions for every
token, and can only ever produce the node kinds of ``app.language.tree``: nothing else
exists to refuse. The tree is built bottom-up during the parse (Lark's inline
transformer), so depth and size limits stop a hostile input before it is whole.

Reading a text takes three steps: pasted notation becomes the language's characters
(``app.language.notation``: ``x²`` is ``x^(2)``), Lark's lexer splits it and
``app.language.tokens`` tells functions, called names and bars apart (which needs the
declared variables), and the LALR parser builds the tree from those tokens. Positions are
the user's throughout. A refused token is reported with exactly the tokens that could
stand there, found by running the parser to that point again.
"""

from __future__ import annotations

import contextvars
import dataclasses
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from importlib import resources
from typing import Any, cast

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedInput
from lark.lexer import LexerThread, UnlessCallback
from lark.parse_tree_builder import ExpandSingleChild
from lark.parsers.lalr_analysis import Shift

from app.errors import ExpressionError, LimitError
from app.language import ambiguity
from app.language.catalog import FUNCTION_NAMES
from app.language.notation import transcribe
from app.language.tokens import ENDS_OPERAND, Lexeme, classify
from app.language.tree import Syntax

__all__ = ["Syntax", "SyntaxLimits", "parse"]


@dataclass(frozen=True, slots=True)
class SyntaxLimits:
    """The bounds checked while parsing."""

    max_chars: int
    max_depth: int
    max_nodes: int
    max_name_chars: int = 64


_limits: contextvars.ContextVar[SyntaxLimits] = contextvars.ContextVar("syntax_limits")
_variables: contextvars.ContextVar[Collection[str]] = contextvars.ContextVar(
    "declared_variables", default=())
_typed: contextvars.ContextVar[str] = contextvars.ContextVar("typed_text", default="")

_TOKEN_NAMES = {
    "NAME": "a name",
    "CALLED": "a name",
    "FUNC": "a function",
    "NUMBER": "a number",
    "ADD_OP": "'+' or '-'",
    "MUL_OP": "'*', '/', '%' or '@'",
    "TRANSPOSE": "'.T'",
    "POW_OP": "'**' or '^'",
    "COMP_OP": "a comparison",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "COMMA": "','",
    "COLON": "':'",
    "LBAR": "'|'",
    "RBAR": "'|'",
    "ROOT": "'√'",
    "_AND": "'and'",
    "_OR": "'or'",
    "_NOT": "'not'",
    "$END": "the end of the expression",
}


def _node(kind: str, pos: int, args: tuple[Syntax | None, ...], span: tuple[int, int] | None = None,
          **fields: Any) -> Syntax:
    children = [a for a in args if a is not None]
    depth = 1 + max((c.depth for c in children), default=0)
    size = 1 + sum(c.size for c in children)
    limits = _limits.get()
    if depth > limits.max_depth:
        raise LimitError("max_depth", limits.max_depth, "The nesting depth of the expression")
    if size > limits.max_nodes:
        raise LimitError("max_nodes", limits.max_nodes, "The number of terms in the expression")
    if span is None:
        span = (min([pos, *(c.span[0] for c in children)]),
                max([pos, *(c.span[1] for c in children)]))
    return Syntax(kind, pos, args, depth=depth, size=size, span=span, **fields)


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


def _span(token: Token) -> tuple[int, int]:
    return (token.start_pos or 0, token.end_pos or 0)


def _leaf(kind: str, token: Token, form: str = "") -> Syntax:
    return _node(kind, token.start_pos or 0, (), _span(token), text=str(token), form=form)


def _call(fn: Token, args: list[Any], end: int, form: str = "") -> Syntax:
    _check_name(fn)
    operands = tuple(a for a in args if isinstance(a, Syntax))
    return _node("call", fn.start_pos or 0, operands, (fn.start_pos or 0, end), text=str(fn),
                 form=form)


def _inverse(name: str) -> str | None:
    return f"a{name}" if f"a{name}" in FUNCTION_NAMES else None


class _Builder(Transformer[Token, Syntax]):
    """Lark callbacks: one per grammar alias, each returning a ``Syntax`` node."""

    def number(self, items: list[Token]) -> Syntax:
        return _leaf("number", items[0])

    def name(self, items: list[Token]) -> Syntax:
        _check_name(items[0])
        return _leaf("name", items[0])

    def called(self, items: list[Token]) -> Syntax:
        _check_name(items[0])
        return _leaf("name", items[0], "called")

    def call(self, items: list[Any]) -> Syntax:
        return _call(items[0], items[1:], items[-1].end_pos or 0)

    def bars(self, items: list[Any]) -> Syntax:
        left, inner, right = items
        return _node("call", left.start_pos or 0, (inner,), (left.start_pos or 0,
                     right.end_pos or 0), text="abs", form="bars")

    def root(self, items: list[Any]) -> Syntax:
        sign, radicand = items
        name = "sqrt" if sign == "√" else "cbrt"
        return _node("call", sign.start_pos or 0, (radicand,), text=name, form="root")

    def apply(self, items: list[Any]) -> Syntax:
        fn, argument = items[0], items[-1]
        call = _call(fn, [argument], argument.span[1], "applied")
        if len(items) == 2:
            return call
        return self._function_power(call, items[1], items[2], "applied")

    def apply_call(self, items: list[Any]) -> Syntax:
        fn, pow_op, exponent = items[:3]
        call = _call(fn, items[3:], items[-1].end_pos or 0)
        return self._function_power(call, pow_op, exponent, "")

    def _function_power(self, call: Syntax, pow_op: Token, exponent: Syntax,
                        form: str) -> Syntax:
        """``sin^2 x`` and ``sin^2(x)``: sin(x)^2 (``sin^-1(x)`` is refused)."""
        ambiguity.check_function_power(call.text, exponent, _typed.get(), _inverse(call.text),
                                       pow_op.start_pos or 0)
        return _node("power", call.pos, (call, exponent), (call.span[0], call.span[1]),
                     ops=(str(pow_op),), op_positions=(pow_op.start_pos or 0,), form=form)

    def coefficient(self, items: list[Any]) -> Syntax:
        return self.juxt([self.number(items[:1]), items[1]])

    def group(self, items: list[Any]) -> Syntax:
        left, inner, right = items
        assert isinstance(inner, Syntax)
        return dataclasses.replace(inner, span=(left.start_pos or 0, right.end_pos or 0),
                                   form="group")

    def tuple(self, items: list[Any]) -> Syntax:
        lpar: Token = items[0]
        return _node("tuple", lpar.start_pos or 0, tuple(a for a in items[1:-1] if a is not None),
                     (lpar.start_pos or 0, items[-1].end_pos or 0))

    def unary(self, items: list[Any]) -> Syntax:
        op: Token = items[0]
        return _node("unary", op.start_pos or 0, (items[1],), text=str(op))

    def power(self, items: list[Any]) -> Syntax:
        if isinstance(items[0], Token):  # a function's name as a variable: gamma^2
            items = [self.name(items[:1]), *items[1:]]
        return _nary("power", items)

    def juxt(self, items: list[Syntax]) -> Syntax:
        ambiguity.check_product(items, _typed.get())
        return _node("juxt", items[0].pos, tuple(items))

    def term(self, items: list[Any]) -> Syntax:
        node = _nary("term", items)
        ambiguity.check_divisors(node, _typed.get())  # x/2y; a % b is not a division
        if all(str(op) != "%" for op in items[1::2]):
            return node
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
        target, bracket, subs = items
        if len(subs) == 1:
            sub = subs[0]
            return _node(sub.kind, bracket.start_pos or 0, (target, *sub.args))
        # X[i, j], X[i, :]: each key a node of its own kind (axis_index, axis_slice)
        keys = tuple(_node("axis_" + s.kind, s.pos, s.args, span=s.span) for s in subs)
        return _node("entry", bracket.start_pos or 0, (target, *keys))

    def subscripts(self, items: list[Syntax]) -> list[Syntax]:
        return items

    def transpose(self, items: list[Any]) -> Syntax:
        target, mark = items
        return _node("transpose", mark.start_pos or 0, (target,),
                     span=(target.span[0], mark.end_pos or 0))

    def index(self, items: list[Syntax]) -> Syntax:
        return Syntax("index", items[0].pos, (items[0],), span=items[0].span)

    def slice(self, items: list[Any]) -> Syntax:
        start, colon, stop, _colon2, step = items
        return Syntax("slice", colon.start_pos or 0, (start, stop, step),
                      span=_span(colon))


class _LexOnly:
    """Keeps ``|`` in the lexer: the grammar has only the bars ``tokens`` makes of it."""

    always_accept = ("BAR",)

    def process(self, stream: Any) -> Any:
        return stream


_GRAMMAR = resources.files("app.language").joinpath("grammar.lark").read_text()
_LARK = Lark(_GRAMMAR, parser="lalr", lexer="basic", maybe_placeholders=True,
             transformer=_Builder(), postlex=_LexOnly())
#: The same grammar building nothing: it replays a refused text to find what could follow.
_CHECKER = Lark(_GRAMMAR, parser="lalr", lexer="basic", maybe_placeholders=True,
                postlex=_LexOnly())
#: One lexer for every text: ``Lark.lex`` builds a new one (and compiles its regular
#: expressions) on every call when the parser is LALR, a quarter of a short text's parse.
_LEXER = _LARK._build_lexer()


#: Lark's lexer, as the regular expressions it matches (highest priority first) and the
#: terminals it skips (positions are all nabla reads of a token: no line counting).
_PATTERNS = tuple(_LEXER.scanner._mres)
_SKIPPED = frozenset(_LEXER.ignore_types)
#: Terminals whose text may be a keyword's (``and`` is a NAME by its pattern): Lark's
#: ``UnlessCallback`` retypes them by the keywords' own scanner, as ``_lex`` does.
_RETYPED = {kind: cast(UnlessCallback, callback).scanner
            for kind, callback in _LEXER.callback.items()}
assert all(isinstance(c, UnlessCallback) for c in _LEXER.callback.values()), _LEXER.callback


def _lex(text: str) -> list[Lexeme]:
    """The tokens of ``text`` as (type, value, start, end), matched as Lark's lexer matches
    them (``_PATTERNS`` in order, the first that matches at a position), without Lark's
    ``Token`` for each, line counting and its state: half of a long text's lexing and
    classifying (``tests/test_parser_loop.py`` compares the two). A character no terminal
    matches is left to Lark's lexer, for its ``UnexpectedCharacters``."""
    out: list[Lexeme] = []
    pos, end = 0, len(text)
    while pos < end:
        for pattern in _PATTERNS:
            match = pattern.match(text, pos)
            if match is not None:
                break
        else:
            return [(t.type, t.value, t.start_pos or 0, t.end_pos or 0) for t in _lark_lex(text)]
        kind, stop, value = cast(str, match.lastgroup), match.end(), match.group()
        if kind not in _SKIPPED:
            keywords = _RETYPED.get(kind)
            if keywords is not None:
                kind = keywords.fullmatch(value) or kind
            out.append((kind, value, pos, stop))
        pos = stop
    return out


def _lark_lex(text: str) -> list[Token]:
    """Lark's own lexer over ``text`` (``_LexOnly`` passes its tokens through unchanged)."""
    return list(LexerThread.from_text(_LEXER, text).lex(None))  # type: ignore[no-untyped-call]


class _Feeder:
    """Lark's LALR loop (``ParserState.feed_token``), with one shortcut: a rule of one symbol
    that only passes its child up (each level of precedence, ``?arith: term``) changes the
    state and nothing else. A name in ``x + y`` climbs about fifteen such levels, and Lark
    slices the stack and calls a wrapper at each: a third of a long text's parse."""

    def __init__(self, lark: Lark) -> None:
        parser = lark.parser.parser.parser
        table = parser.parse_table
        self.states: dict[Any, dict[str, tuple[Any, Any]]] = table.states
        self.start, self.end = table.start_states["start"], table.end_states["start"]
        self.callbacks = parser.callbacks
        self.passing = frozenset(rule for rule, callback in self.callbacks.items()
                                 if len(rule.expansion) == 1
                                 and isinstance(callback, ExpandSingleChild))
        self._climbs: dict[tuple[Any, Any, str], Any] = {}

    def _climb(self, below: Any, state: Any, lookahead: str) -> Any:
        """The state after every passing rule that ``state`` reduces on ``lookahead`` in a
        row, over ``below`` (which they leave in place): known after its first time."""
        key = (below, state, lookahead)
        found = self._climbs.get(key)
        if found is None:
            found = state
            while True:
                action, rule = self.states[found].get(lookahead, (None, None))
                if action is Shift or rule not in self.passing:
                    break
                found = self.states[below][rule.origin.name][1]
            self._climbs[key] = found
        return found

    def parse(self, tokens: list[Token]) -> Any:
        """The value of ``tokens`` (built by the callbacks); ``_Stuck`` at the first token
        that cannot follow (at ``len(tokens)``: the text cannot end there)."""
        states, callbacks, passing = self.states, self.callbacks, self.passing
        state_stack: list[Any] = [self.start]
        value_stack: list[Any] = []
        last = tokens[-1] if tokens else None
        end = (Token.new_borrow_pos("$END", "", last) if last is not None
               else Token("$END", "", 0, 1, 1))
        for i, token in enumerate((*tokens, end)):
            while True:
                state = state_stack[-1]
                try:
                    action, arg = states[state][token.type]
                except KeyError:
                    raise _Stuck(i) from None
                if action is Shift:
                    state_stack.append(arg)
                    value_stack.append(callbacks[token.type](token)
                                       if token.type in callbacks else token)
                    break
                rule = arg
                if rule in passing:  # the value stays; only the state changes
                    state_stack[-1] = self._climb(state_stack[-2], state, token.type)
                    if token is end and state_stack[-1] == self.end:
                        return value_stack[-1]
                    continue
                size = len(rule.expansion)
                children = value_stack[-size:] if size else []
                if size:
                    del state_stack[-size:]
                    del value_stack[-size:]
                value = callbacks[rule](children)
                state_stack.append(states[state_stack[-1]][rule.origin.name][1])
                value_stack.append(value)
                if token is end and state_stack[-1] == self.end:
                    return value_stack[-1]
        raise _Stuck(len(tokens))  # not reached: $END ends the parse or is refused


class _Stuck(Exception):
    """The token at ``index`` cannot follow what came before it."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


_FEEDER = _Feeder(_LARK)


class _Reader:
    """Typed text -> syntax tree: transcribe, lex, classify, parse (see the docstring)."""

    def parse(self, text: str) -> Syntax:
        """The tree of ``text``, for the variables of ``parse``'s context."""
        transcript = transcribe(text)
        try:
            lexed = _lex(transcript.text)
        except UnexpectedCharacters as error:
            raise _bad_character(text, transcript.origin(error.pos_in_stream or 0)) from None
        tokens = classify(lexed, transcript, _variables.get())
        try:
            return cast(Syntax, _FEEDER.parse(tokens))
        except _Stuck as stuck:
            raise _unexpected(text, tokens, stuck.index) from None


_PARSER = _Reader()


def parse(text: str, limits: SyntaxLimits, variables: Collection[str] = ()) -> Syntax:
    """Parse expression text into a syntax tree, or raise ``ExpressionError``/``LimitError``.
    A name in ``variables`` is a variable, even where it names a function."""
    if len(text) > limits.max_chars:
        raise LimitError("max_expression_chars", limits.max_chars, "The expression's length")
    if not text.strip():
        raise ExpressionError("The expression is empty; write one, such as sin(x)", 0,
                              code="empty_expression")
    tokens = (_limits.set(limits), _variables.set(variables), _typed.set(text))
    try:
        return _PARSER.parse(text)
    except UnexpectedInput as error:  # not expected: the reader raises its own errors
        raise ExpressionError(f"The expression does not parse: {error}", 0,
                              code="syntax_error") from None
    finally:
        _typed.reset(tokens[2])
        _variables.reset(tokens[1])
        _limits.reset(tokens[0])


def _bad_character(text: str, pos: int) -> ExpressionError:
    char = text[pos]
    name = unicodedata.name(char, f"U+{ord(char):04X}")
    return ExpressionError(
        f"Unexpected character {char!r} ({name}) at position {pos}{_char_hint(char)}", pos,
        code="syntax_error")


def _unexpected(text: str, tokens: list[Token], i: int) -> ExpressionError:
    expected = _expected(tokens[:i])
    if i == len(tokens):
        return ExpressionError(
            f"The expression ends too early; expected {expected} at position {len(text)}",
            len(text), code="syntax_error")
    token = tokens[i]
    pos = token.start_pos or 0
    hint = ""
    if token.type == "NUMBER" and i > 0 and tokens[i - 1].type in ENDS_OPERAND:
        hint = ("; only the first factor of a product can be a number (2x, not x 2): "
                "write * between the factors")
    shown = text[pos:token.end_pos or pos + 1] or str(token)
    return ExpressionError(f"Unexpected {shown!r} at position {pos}; expected {expected}{hint}",
                           pos, code="syntax_error")


def _expected(before: list[Token]) -> str:
    """The tokens that could follow ``before``: the parser replayed to that point."""
    parser = _CHECKER.parse_interactive()
    for token in before:
        parser.feed_token(token)
    accepted: set[str] = parser.accepts()  # type: ignore[no-untyped-call]
    names = sorted({_TOKEN_NAMES.get(t, t.lower()) for t in accepted})
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
