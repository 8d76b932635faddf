"""Expression text -> the tokens the grammar reads, at the offsets the user typed.

Lark's lexer splits the transcribed text (``app.language.notation``); this pass then says
what each token is where the grammar alone cannot:

- a name is ``FUNC`` when it is a function of the language and not a declared variable
  (a declared variable is a variable, whatever its name), else ``NAME``; a ``NAME``
  written right before ``(`` is ``CALLED`` (``x(y+1)`` is x times y+1 when x is a
  variable, and ``foo(x)`` an unknown function otherwise);
- a bar ``|`` closes the innermost open ``|`` of its bracket after an operand, and opens
  one elsewhere: ``||x| - 1|``, ``|x||y|``.

Each token's offsets are moved back to the text as typed, so every position in the syntax
tree and in every error is one the user can see.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

from lark import Token

from app.language.catalog import FUNCTION_NAMES
from app.language.notation import Transcript

#: Token types after which an operand is complete (a bar there closes).
ENDS_OPERAND = frozenset({"NAME", "FUNC", "NUMBER", "RPAR", "RSQB", "RBAR", "TRANSPOSE"})
_OPENS = frozenset({"LPAR", "LSQB"})
_CLOSES = frozenset({"RPAR", "RSQB"})


def classify(lexed: Iterable[Token], transcript: Transcript,
             variables: Collection[str]) -> list[Token]:
    """The tokens of the grammar, typed as the module docstring says, at typed offsets."""
    raw = list(lexed)
    out: list[Token] = []
    bars = [0]  # open bars in each bracket, innermost last
    for i, token in enumerate(raw):
        kind = token.type
        after = raw[i + 1] if i + 1 < len(raw) else None
        if kind == "NAME":
            if token.value in FUNCTION_NAMES and token.value not in variables:
                kind = "FUNC"
            elif after is not None and after.type == "LPAR" and after.start_pos == token.end_pos:
                kind = "CALLED"
        elif kind in _OPENS:
            bars.append(0)
        elif kind in _CLOSES and len(bars) > 1:
            bars.pop()
        elif kind == "BAR":
            closes = bool(out) and out[-1].type in ENDS_OPERAND and bars[-1] > 0
            kind = "RBAR" if closes else "LBAR"
            bars[-1] += -1 if closes else 1
        start, end = token.start_pos or 0, token.end_pos or 0
        out.append(Token(kind, token.value, transcript.origin(start), end_pos=transcript.end(end)))
    return out


def read_from_point(texts: Iterable[str], name: str) -> bool:
    """Whether the reading of ``texts`` may depend on ``name`` having a value in the point
    (without declared variables): a function's name, or a name written before ``(``.
    Cheap and never wrong in the unsafe direction: any text that is not ASCII counts."""
    if name in FUNCTION_NAMES:
        return True
    called = re.compile(rf"(?<![A-Za-z0-9_]){re.escape(name)}\(")
    return any(not text.isascii() or called.search(text) for text in texts)
