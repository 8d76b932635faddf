"""nabla's LALR loop (``app.language.syntax._Feeder``) against Lark's own: the same syntax
tree for every text, and a refusal at the same token.

The loop takes the rules that only pass a child up (each level of precedence) in one step;
everything else is Lark's ``ParserState.feed_token``. Lark's interactive parser, fed the
same tokens, is the reference."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from lark.exceptions import UnexpectedCharacters, UnexpectedToken

from app.config import Limits
from app.engine.compilation import syntax_limits
from app.errors import NablaError
from app.language import catalog, syntax
from app.language.readings import READINGS
from app.language.tokens import classify
from bench.expressions import cold_expressions, rosenbrock_body

TEXTS = sorted({r.text for r in READINGS}
               | {f.example.expression for f in catalog.FUNCTIONS if f.example}
               | set(cold_expressions(40, seed=3))
               | {rosenbrock_body(12)["expression"], "x < 1 and not y >= 2 or z == 3",
                  "[x, y][0] + X.T @ A @ X", "|x| + ||y| - 1|", "sin^2 x + 2 sin x cos x",
                  "x[1:-1:2] + x[:3]", "(x, y)", "-x^-2^3", "2(x+1)(x-1) x y"})


@contextmanager
def reading(text: str) -> Iterator[None]:
    """The context ``syntax.parse`` sets for the builder's callbacks."""
    tokens = (syntax._limits.set(syntax_limits(Limits())), syntax._variables.set(()),
              syntax._typed.set(text))
    try:
        yield
    finally:
        for var, token in zip((syntax._limits, syntax._variables, syntax._typed), tokens,
                              strict=True):
            var.reset(token)


def tokens_of(text: str) -> list[object]:
    transcript = syntax.transcribe(text)
    return classify(syntax._lex(transcript.text), transcript, ())


def outcome(parse: Callable[[list[object]], object], tokens: list[object]) -> object:
    """The tree, the refused token's index, or the error a builder's callback raised."""
    try:
        return parse(tokens)
    except NablaError as error:
        return ("error", error.code, str(error))


def lark_parse(tokens: list[object]) -> object:
    """Lark's interactive parser over ``tokens``; the index of the refused token, if any."""
    parser = syntax._LARK.parse_interactive()
    for i, token in enumerate(tokens):
        try:
            parser.feed_token(token)
        except UnexpectedToken:
            return ("stuck", i)
    try:
        return parser.feed_eof(tokens[-1] if tokens else None)
    except UnexpectedToken:
        return ("stuck", len(tokens))


def feeder_parse(tokens: list[object]) -> object:
    try:
        return syntax._FEEDER.parse(tokens)
    except syntax._Stuck as stuck:
        return ("stuck", stuck.index)


@pytest.mark.parametrize("text", TEXTS)
def test_the_same_tree_as_larks_loop(text: str) -> None:
    tokens = tokens_of(text)
    with reading(text):
        assert outcome(feeder_parse, tokens) == outcome(lark_parse, tokens)


def test_refused_token_sequences_stop_where_larks_loop_stops() -> None:
    """Random cuts and swaps of valid texts' tokens (a fixed seed): mostly refused, each at
    the same token as Lark's own loop, or the same tree when still valid."""
    rng = random.Random(11)
    valid = [(text, tokens_of(text)) for text in TEXTS[:60]]
    refused = 0
    for _ in range(400):
        text, chosen = rng.choice(valid)
        tokens = list(chosen)
        if len(tokens) > 2:
            if rng.random() < 0.5:
                del tokens[rng.randrange(len(tokens))]
            else:
                i, j = rng.randrange(len(tokens)), rng.randrange(len(tokens))
                tokens[i], tokens[j] = tokens[j], tokens[i]
        with reading(text):
            ours, theirs = outcome(feeder_parse, tokens), outcome(lark_parse, tokens)
        assert ours == theirs
        refused += isinstance(theirs, tuple) and theirs[0] == "stuck"
    assert refused > 100  # the property was exercised on refusals, not only on valid texts


# The lexer: nabla's loop over Lark's patterns against Lark's own lexer --------------------

def lexed(lex: Callable[[str], list[Any]], text: str) -> object:
    """(type, value, start, end) of each token, or where the lexer refused the text."""
    try:
        return [tuple(t) if isinstance(t, tuple) else (t.type, t.value, t.start_pos, t.end_pos)
                for t in lex(text)]
    except UnexpectedCharacters as error:
        return ("refused", error.pos_in_stream)


@pytest.mark.parametrize("text", TEXTS)
def test_the_same_tokens_as_larks_lexer(text: str) -> None:
    transcribed = syntax.transcribe(text).text
    assert lexed(syntax._lex, transcribed) == lexed(syntax._lark_lex, transcribed)


def test_random_texts_lex_as_lark_lexes_them() -> None:
    """Texts made of the language's pieces and some characters no terminal takes (a fixed
    seed): the same tokens, keywords and refusals as Lark's lexer."""
    rng = random.Random(20261128)
    pieces = ["x", "y1", "x_2", "and", "or", "not", "andx", "if", "else", "sin", "pi", "e",
              "1", "2.5", "1e-3", ".5", "3.", "1E+2", "0x1", "+", "-", "*", "/", "^", "**",
              "(", ")", "[", "]", "|", ",", ":", "<", "<=", ">=", "==", "!=", "'", ".T", "@",
              " ", "  ", "\t", "\n", "#", "$", "?", "{", ";", "\\", "~", "`"]
    refused = 0
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randrange(1, 14)))
        ours, theirs = lexed(syntax._lex, text), lexed(syntax._lark_lex, text)
        assert ours == theirs, text
        refused += isinstance(theirs, tuple)
    assert 300 < refused < 2700  # both kinds of text were tried
