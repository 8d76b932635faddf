"""Everything outside the language is refused with a 422 problem that points at the fault."""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import sympy
import sympy.parsing.sympy_parser

from app.errors import ExpressionError, InputError, LimitError, NablaError, ShapeError

# (expression, code, position or None, a word the detail must contain)
SYNTAX: list[tuple[str, str, int | None, str]] = [
    ("x +", "syntax_error", 3, "ends too early"),
    ("2 3", "syntax_error", 2, "Unexpected '3'"),
    ("(x + 1", "syntax_error", 6, "ends too early"),
    ("x + 1)", "syntax_error", 5, "Unexpected ')'"),
    ("x $ y", "syntax_error", 2, "'$'"),
    ("x.real", "syntax_error", 1, "attributes"),
    ("'x'", "syntax_error", 0, "strings"),
    ("x = 1", "syntax_error", 2, "'='"),
    ("x % % 2", "syntax_error", 4, "Unexpected '%'"),  # x % 2 is mod(x, 2)
    ("x // 2", "syntax_error", 3, "Unexpected '/'"),
    ("x[1:2:3:4]", "syntax_error", 7, "':'"),
    ("\u0455in(x)", "syntax_error", 0, "CYRILLIC"),
    ("x\x00", "syntax_error", 1, "U+0000"),
    ("", "empty_expression", 0, "empty"),
    ("   ", "empty_expression", 0, "empty"),
    ("foo(x)", "unknown_function", 0, "Unknown function 'foo'"),
    ("x + sin", "function_as_name", 4, "is a function"),
    ("sin(x, y)", "wrong_arity", 0, "takes 1 argument"),
    ("atan2(x)", "wrong_arity", 0, "takes 2 arguments"),
    ("where(x, 1, 2)", "expected_condition", 6, "condition"),
    ("where(x > 0, 1)", "wrong_arity", 0, "takes 3 arguments"),
    ("(x > 0) * 2", "condition_as_value", 1, "condition"),
    ("piecewise(x, y)", "bad_piece", 10, "pair"),
    ("(x, y)", "misplaced_tuple", 0, "piecewise"),
    ("x and y", "expected_condition", 0, "condition"),
    ("max(x)", "wrong_arity", 0, "two or more"),
    ("v[x]", "bad_index", 2, "constant integer"),
    ("v[1.5]", "bad_index", 2, "constant integer"),
]


@pytest.mark.parametrize(("expression", "code", "position", "word"), SYNTAX,
                         ids=[repr(s[0]) for s in SYNTAX])
def test_refused_with_position(run: Any, expression: str, code: str, position: int | None,
                               word: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        run(expression=expression, variables={"x": [], "y": [], "v": [3]},
            at={"x": 1, "y": 2, "v": [1, 2, 3]})
    problem = caught.value.problem()
    assert problem["code"] == code
    assert problem["status"] == 422
    assert problem["position"] == position
    assert word in problem["detail"]


SHAPES: list[tuple[str, str]] = [
    ("v + w", "same length"), ("dot(v, x)", "same length"), ("v[3]", "out of range"),
    ("v[-4]", "out of range"), ("x[0]", "scalar"), ("v[2:1]", "empty"), ("v[::0]", "zero"),
    ("dot(v, w)", "same length"),
]


@pytest.mark.parametrize(("expression", "word"), SHAPES, ids=[s[0] for s in SHAPES])
def test_shape_errors(run: Any, expression: str, word: str) -> None:
    with pytest.raises(ShapeError, match=word):
        run(expression=expression, variables={"x": [], "v": [3], "w": [2]},
            at={"x": 1, "v": [1, 2, 3], "w": [1, 2]})


@pytest.mark.parametrize(("expression", "limit"), [
    ("9**9**9**9", "max_exponent"), ("x ^ 1001", "max_exponent"), ("2 ^ 10000", "max_exponent"),
    ("1e999 * x", "max_literal"), ("9" * 400 + " * x", "max_literal"),
    ("-" * 5000 + "x", "max_depth"), ("**".join(["x"] * 5000), "max_depth"),
    ("sin(" * 300 + "x" + ")" * 300, "max_depth"), ("x + " * 20_001 + "x", "max_expression_chars"),
])
def test_limits_refused_fast(run: Any, expression: str, limit: str) -> None:
    with pytest.raises(LimitError) as caught:
        run(expression=expression, at={"x": 1})
    assert caught.value.problem()["limit"] == limit
    assert limit in caught.value.detail


def test_five_thousand_parentheses_are_harmless(run: Any) -> None:
    out = run(expression="(" * 5000 + "x" + ")" * 5000, at={"x": 2}, derivatives=["value"])
    assert out["value"] == 2.0


ATTACKS = [
    "__import__('os').system('touch {sentinel}')",
    "().__class__.__bases__[0].__subclasses__()",
    "open('{sentinel}', 'w').write('x')",
    "exec(\"open('{sentinel}', 'w')\")",
    "eval(\"open('{sentinel}', 'w')\")",
    "lambda: open('{sentinel}', 'w')",
    "[open('{sentinel}', 'w') for _ in (1,)]",
    "x.__globals__",
    "sympify(\"open('{sentinel}', 'w')\")",
    "Symbol('x').__class__",
    "getattr(x, '__class__')",
    "import os",
    "x if True else open('{sentinel}')",
    "{{'a': 1}}",
    "f'{{x}}'",
    "__builtins__",
    "_x",
]


@pytest.mark.parametrize("template", ATTACKS)
def test_attacks_are_refused_and_execute_nothing(run: Any, tmp_path: Path, template: str) -> None:
    sentinel = tmp_path / "pwned"
    expression = template.format(sentinel=sentinel)
    forbidden = mock.Mock(side_effect=AssertionError("untrusted text reached an evaluator"))
    with mock.patch.object(builtins, "eval", forbidden), \
            mock.patch.object(builtins, "exec", forbidden), \
            mock.patch.object(sympy, "sympify", forbidden), \
            mock.patch.object(sympy.parsing.sympy_parser, "parse_expr", forbidden), \
            mock.patch.object(sympy, "lambdify", forbidden), \
            pytest.raises(InputError) as caught:
        run(expression=expression, at={"x": 1})
    assert caught.value.status == 422
    assert forbidden.call_count == 0
    assert not sentinel.exists()


def test_every_error_is_a_nabla_error_with_a_problem() -> None:
    error = LimitError("max_depth", 200, "The nesting depth")
    assert isinstance(error, NablaError)
    problem = error.problem()
    assert set(problem) >= {"type", "title", "status", "detail", "code"}
    assert problem["limit_value"] == 200


@pytest.mark.parametrize(("variables", "word"), [
    ({"x": [2, 2, 2]}, "only scalars"), ({"x": [2, 0]}, "one row"), ({"x": [0]}, "length 0"),
    ({"True": []}, "constant"),
    ({"and": []}, "not a valid variable name"), ({"1x": []}, "not a valid variable name"),
])
def test_bad_variables(run: Any, variables: dict[str, list[int]], word: str) -> None:
    with pytest.raises(InputError, match=word):
        run(expression="1", variables=variables, at={k: 1 for k in variables})
