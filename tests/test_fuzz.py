"""Fuzzing: any text gives a tree or a 422-class error, never anything else.

Random text (all of unicode), random strings over the language's own alphabet, and random
token sequences; each goes through the parser and the SymPy builder. A sentinel file
proves that nothing the fuzzer wrote was executed.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.config import Limits
from app.engine.compilation import CompileSpec, build_program
from app.engine.xla import Program
from app.errors import InputError

LIMITS = Limits()
SENTINEL = Path("/tmp/nabla-fuzz-sentinel")
TOKENS = [
    "x", "y", "v", "1", "2.5", "1e3", "0", "pi", "e", "True", "+", "-", "*", "/", "**", "^",
    "(", ")", ",", "[", "]", ":", "<", "<=", "==", "!=", ">", "and", "or", "not", "sin",
    "log", "sqrt", "where", "piecewise", "dot", "sum", "max", "atan2", " ", "__import__",
    "'os'", ".", "lambda", "open", f"'{SENTINEL}'", "=", ";", "\x00", "\u0455",
]


def outcome(text: str) -> str:
    spec = CompileSpec((text,), False, (("x", ()), ("y", ()), ("v", (3,))), (), ("value",),
                       None, 1)
    try:
        program = build_program(spec, LIMITS)
    except InputError as error:
        problem = error.problem()
        assert problem["status"] == 422
        assert problem["detail"]
        if "position" in problem:
            assert 0 <= problem["position"] <= len(text)
        return "refused"
    assert isinstance(program, Program)
    return "built"


FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.text(max_size=200))
def test_any_unicode_text(text: str) -> None:
    outcome(text)
    assert not SENTINEL.exists()


@FUZZ
@given(st.text(alphabet="xyv0123456789.e+-*/^()[],:<>=! sincolgqrtpa", max_size=60))
def test_text_over_the_language_alphabet(text: str) -> None:
    outcome(text)


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=30))
def test_token_sequences(tokens: list[str]) -> None:
    outcome(" ".join(tokens))
    assert not SENTINEL.exists()


def test_the_fuzzers_reach_both_outcomes() -> None:
    assert outcome("sin(x) + y^2 * v[0]") == "built"
    assert outcome("sin(x") == "refused"
