# ruff: noqa: RUF001 - the spellings people paste, as they paste them
"""How nabla reads what people type (app/language/readings.py, docs/readings.md): each
case read as its written-out form, checked against SymPy at 30 digits on both tiers and
against SymPy's own implicit reading; the ambiguous ones refused with spellings that parse;
positions as typed; the errors that teach.

Only this test calls ``parse_expr``, and only on the fixed strings of ``READINGS``."""

from __future__ import annotations

import logging
import math
import random
import re
from pathlib import Path
from typing import Any

import pytest
import sympy
from lark import Lark, logger
from sympy.parsing.sympy_parser import (
    convert_xor,
    implicit_multiplication_application,
    parse_expr,
    standard_transformations,
)

from app.config import Limits
from app.engine.compilation import CompileSpec, build_program
from app.errors import ExpressionError, InputError, NablaError
from app.language import syntax
from app.language.readings import READINGS, VECTORS, Reading, markdown
from tests.conftest import ROOT

EXPLICIT = (*standard_transformations, convert_xor)
IMPLICIT = (*EXPLICIT, implicit_multiplication_application)  # ^ is a power first, as in nabla
READ = [r for r in READINGS if r.means is not None]
REFUSED = [r for r in READINGS if r.means is None]
AGREED = [r for r in READ if not r.sympy]
DIFFERS = [r for r in READ if r.sympy]
NAMES = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
NOT_VARIABLES = {"sin", "cos", "exp", "sqrt", "abs", "cbrt", "pi", "e", "Piecewise", "True"}


def variables(reading: Reading) -> dict[str, list[int]]:
    """The variables of a case: the free names of its written-out form, in order."""
    names = dict.fromkeys(n for n in NAMES.findall(reading.means or reading.text)
                          if n not in NOT_VARIABLES)
    return {n: [VECTORS[n]] if n in VECTORS else [] for n in names}


def tree(text: str, declared: dict[str, list[int]]) -> Any:
    shapes = tuple((n, tuple(s)) for n, s in declared.items())
    spec = CompileSpec((text,), False, shapes, (), ("value",), None, 1)
    return build_program(spec, Limits()).exprs[0]


def symbols(declared: dict[str, list[int]]) -> dict[str, Any]:
    """The SymPy symbol (real) of each scalar and of each vector component (``v_0``)."""
    out: dict[str, Any] = {"e": sympy.E}
    for name, shape in declared.items():
        names = [f"{name}_{i}" for i in range(shape[0])] if shape else [name]
        out.update({n: sympy.Symbol(n, real=True) for n in names})
    return out


def sympy_reading(text: str, declared: dict[str, list[int]], implicit: bool) -> Any:
    """SymPy's reading of one of READINGS' fixed strings (``v[i]`` as the symbol v_i), over
    our real symbols. Implicit: as a user calls ``parse_expr``, telling it no names (but
    that ``e`` is Euler's number); explicit: the written-out form, over our variables."""
    syms = symbols(declared)
    if not implicit:
        plain = re.sub(r"\b([a-z])\[(\d)\]", r"\1_\2", text)
        return parse_expr(plain, local_dict=syms, transformations=EXPLICIT)
    theirs = parse_expr(text, local_dict={"e": sympy.E}, transformations=IMPLICIT)
    return theirs.subs({s: syms[s.name] for s in getattr(theirs, "free_symbols", ())
                        if s.name in syms})


def random_point(declared: dict[str, list[int]], seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    return {n: [round(rng.uniform(0.3, 1.7), 6) for _ in range(s[0])] if s else
            round(rng.uniform(0.3, 1.7), 6) for n, s in declared.items()}


def exact_point(at: dict[str, Any], syms: dict[str, Any]) -> dict[Any, Any]:
    point = {}
    for name, value in at.items():
        values = value if isinstance(value, list) else [value]
        keys = [f"{name}_{i}" for i in range(len(values))] if isinstance(value, list) else [name]
        point.update({syms[k]: sympy.Float(str(v), 30) for k, v in zip(keys, values, strict=True)})
    return point


def n30(expr: Any, point: dict[Any, Any]) -> float:
    return float(sympy.N(expr.subs(point), 30))


def close(got: Any, want: Any) -> bool:
    if isinstance(want, list):
        return len(got) == len(want) and all(close(g, w) for g, w in zip(got, want, strict=True))
    return math.isclose(got, want, rel_tol=1e-10, abs_tol=1e-12)


def test_the_docs_table_is_generated_from_the_cases() -> None:
    committed = (Path(ROOT) / "docs" / "readings.md").read_text(encoding="utf-8")
    assert committed == markdown(), "run: python -m app.language.readings"
    for reading in READINGS:
        assert reading.text.replace("|", "\\|") in committed


@pytest.mark.parametrize("reading", READ, ids=[r.text for r in READ])
def test_text_is_read_as_its_written_out_form(reading: Reading) -> None:
    assert reading.means is not None
    declared = variables(reading)
    assert sympy.srepr(tree(reading.text, declared)) == sympy.srepr(tree(reading.means, declared))


@pytest.mark.parametrize("reading", READ, ids=[r.text for r in READ])
def test_value_gradient_hessian_match_sympy_at_30_digits(run: Any, reading: Reading) -> None:
    assert reading.means is not None
    declared = variables(reading)
    oracle = sympy_reading(reading.means, declared, implicit=False)
    syms = symbols(declared)
    coordinates = [syms[f"{n}_{i}"] if s else syms[n]
                   for n, s in declared.items() for i in range(s[0] if s else 1)]
    for seed in range(2):
        at = random_point(declared, seed)
        answer = run(expression=reading.text, variables=declared, at=at)
        point = exact_point(at, syms)
        gradient = [sympy.diff(oracle, c) for c in coordinates]
        assert close(answer["value"], n30(oracle, point))
        assert close(list(answer["gradient"]), [n30(g, point) for g in gradient])
        assert close([list(r) for r in answer["hessian"]],
                     [[n30(sympy.diff(g, c), point) for c in coordinates] for g in gradient])


def _agree(a: Any, b: Any, declared: dict[str, list[int]]) -> bool:
    syms = symbols(declared)
    if not isinstance(a, sympy.Basic) or a.free_symbols - set(syms.values()):
        return False  # SymPy read other names (x*y for xy) or no expression at all
    if isinstance(a, sympy.core.relational.Relational):
        return (type(a) is type(b) and _agree(a.lhs, b.lhs, declared)
                and _agree(a.rhs, b.rhs, declared))
    for seed in range(3):
        point = exact_point(random_point(declared, 100 + seed), syms)
        if not math.isclose(n30(a, point), n30(b, point), rel_tol=1e-25, abs_tol=1e-25):
            return False
    return True


@pytest.mark.parametrize("reading", AGREED, ids=[r.text for r in AGREED])
def test_sympy_reads_it_the_same(reading: Reading) -> None:
    assert reading.means is not None
    declared = variables(reading)
    theirs = sympy_reading(reading.text, declared, implicit=True)
    ours = sympy_reading(reading.means, declared, implicit=False)
    assert _agree(theirs, ours, declared)


@pytest.mark.parametrize("reading", DIFFERS + REFUSED, ids=[r.text for r in DIFFERS + REFUSED])
def test_where_sympy_is_said_to_differ_it_does(reading: Reading) -> None:
    """SymPy reads it as the table says (``theirs``), or refuses it."""
    declared = variables(reading)
    if not reading.theirs:
        with pytest.raises(Exception):  # noqa: B017 - any refusal of SymPy's
            sympy_reading(reading.text, declared, implicit=True)
        return
    theirs = sympy_reading(reading.text, declared, implicit=True)
    written = parse_expr(reading.theirs, local_dict={"e": sympy.E}, transformations=EXPLICIT)
    written = written.subs({s: symbols(declared)[s.name] for s in written.free_symbols
                            if s.name in symbols(declared)})
    assert sympy.simplify(theirs - written) == 0
    if reading.means is not None:
        assert not _agree(theirs, sympy_reading(reading.means, declared, implicit=False),
                          declared)


@pytest.mark.parametrize("reading", REFUSED, ids=[r.text for r in REFUSED])
def test_ambiguous_spellings_are_refused_with_spellings_that_parse(run: Any,
                                                                   reading: Reading) -> None:
    declared = {"x": [], "y": []}
    with pytest.raises(ExpressionError) as caught:
        run(expression=reading.text, variables=declared, at={"x": 1, "y": 2})
    problem = caught.value.problem()
    assert problem["code"] == reading.refused
    if reading.refused == "ambiguous":
        assert len(problem["readings"]) == 2
        for spelling in problem["readings"]:
            assert spelling in problem["detail"]
            tree(spelling, declared)  # each way out parses and builds
        values = {run(expression=s, variables=declared, at={"x": 1.5, "y": 0.5},
                      derivatives=["value"])["value"] for s in problem["readings"]}
        assert len(values) == 2  # the two readings really are different functions


def test_the_grammar_conflicts_are_the_documented_ones(caplog: pytest.LogCaptureFixture) -> None:
    """Each shift/reduce conflict of the grammar, resolved as a shift, is a reading chosen on
    purpose: a function's name goes on to its argument (``sin x``, ``sin^2 x``, ``sin(``), a
    number in an argument to what it multiplies (``sin 2x``), and a radicand takes its power
    and subscript and transpose (``√x^2`` is sqrt(x^2), ``√X.T`` is sqrt(X.T))."""
    caplog.set_level(logging.DEBUG, logger=logger.name)
    Lark(syntax._GRAMMAR, parser="lalr", lexer="basic", postlex=syntax._LexOnly())
    said = [r.getMessage() for r in caplog.records if r.name == logger.name]
    found = {(re.findall(r"terminal (\w+):", said[i])[0],
              *re.findall(r"<(\w+) : ([\w ]+)>", said[i + 1])[0])
             for i in range(len(said) - 1) if said[i].startswith("Shift/Reduce")}
    starts = {"NAME", "FUNC", "CALLED", "LBAR", "LPAR", "ROOT"}
    expected = {(t, "plain", "FUNC") for t in starts | {"POW_OP"}}
    expected |= {(t, "applied", "FUNC POW_OP exponent") for t in starts}
    expected |= {(t, "argument", "NUMBER") for t in starts}
    expected |= {(t, "power", "postfix") for t in ("POW_OP", "LSQB", "TRANSPOSE")}
    assert {(t, rule, body.strip()) for t, rule, body in found} == expected


# --- positions as typed ------------------------------------------------------------------

@pytest.mark.parametrize(("text", "position", "code"), [
    ("x² + sinn(y)", 5, "unknown_function"),
    ("θ + foo(x)", 4, "unknown_function"),
    ("√x + )", 5, "syntax_error"),
    ("２x + $", 5, "syntax_error"),
    ("x⁻¹ ÷ ", 6, "syntax_error"),
    ("π·x ×× y", 5, "syntax_error"),
    ("αβ + 1/2y", 6, "ambiguous"),
    ("|x| − |", 7, "syntax_error"),
    ("x² ⊕ y", 3, "syntax_error"),
])
def test_error_positions_count_the_characters_as_typed(run: Any, text: str, position: int,
                                                       code: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        run(expression=text, variables={"x": [], "y": [], "alpha": [], "beta": [],
                                        "theta": []},
            at={"x": 1, "y": 2, "alpha": 1, "beta": 1, "theta": 1})
    problem = caught.value.problem()
    assert (problem["code"], problem["position"]) == (code, position)
    assert f"position {position}" in problem["detail"]


def test_answers_and_symbolic_forms_are_ascii(run: Any) -> None:
    out = run(expression="θ² + 2πθ + √θ", at={"theta": 1.0},
              derivatives=["value", "gradient", "symbolic"])
    assert out["coordinates"] == ["theta"]
    assert math.isclose(out["value"], 1 + 2 * math.pi + 1)
    text = str(out["symbolic"])
    assert text.isascii() and "theta" in text


# --- names --------------------------------------------------------------------------------

def test_a_declared_variable_may_be_named_like_a_constant_or_a_function(run: Any) -> None:
    out = run(expression="e*x + pi + E", variables={"e": [], "pi": [], "E": [], "x": []},
              at={"e": 2, "pi": 3, "E": 5, "x": 7}, derivatives=["value", "gradient"])
    assert out["value"] == 2 * 7 + 3 + 5
    assert list(out["gradient"]) == [7, 1, 1, 2]
    out = run(expression="1/(gamma - 1) + gamma(2)", variables={"gamma": []},
              at={"gamma": 1.4}, derivatives=["value"])
    assert math.isclose(out["value"], 1 / 0.4 + 1.4 * 2)  # gamma(2) is gamma times 2


def test_a_function_name_alone_is_a_variable_given_a_value(run: Any) -> None:
    out = run(expression="1/(gamma - 1)", at={"gamma": 1.4}, derivatives=["value"])
    assert math.isclose(out["value"], 2.5)
    assert math.isclose(run(expression="gamma(5) + x", at={"x": 1},
                            derivatives=["value"])["value"], 25.0)
    with pytest.raises(ExpressionError) as caught:
        run(expression="x + gamma", at={"x": 1})
    assert caught.value.code == "function_as_name"
    with pytest.raises(ExpressionError) as caught:
        run(expression="gamma x + 1/(gamma - 1)", at={"x": 1, "gamma": 1.4})
    assert caught.value.code == "ambiguous"


def test_a_name_before_parentheses_is_a_variable_only_with_a_value(run: Any) -> None:
    assert run(expression="x(y+1)", at={"x": 2, "y": 3}, derivatives=["value"])["value"] == 8
    with pytest.raises(ExpressionError) as caught:
        run(expression="f(y+1)", at={"y": 3})
    assert (caught.value.code, caught.value.position) == ("unknown_function", 0)


# --- errors that teach --------------------------------------------------------------------

@pytest.mark.parametrize(("text", "declared", "code", "suggested"), [
    ("sinn(x)", {"x": []}, "unknown_function", "sin"),
    ("sine(x)", {"x": []}, "unknown_function", "sin"),
    ("sinx", {"x": []}, "unknown_name", "sin(x)"),
    ("xy + 1", {"x": [], "y": []}, "unknown_name", "x*y"),
    ("2pix", {"x": []}, "unknown_name", "pi*x"),
    ("thet + 1", {"theta": []}, "unknown_name", "theta"),
])
def test_unknown_names_get_suggestions(run: Any, text: str, declared: dict[str, list[int]],
                                       code: str, suggested: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        run(expression=text, variables=declared, at=dict.fromkeys(declared, 1))
    problem = caught.value.problem()
    assert problem["code"] == code
    assert suggested in problem["suggestions"]
    assert f"did you mean {suggested}" in problem["detail"]


def test_bars_around_a_vector_are_ambiguous(run: Any) -> None:
    with pytest.raises(ExpressionError) as caught:
        run(expression="x + |v|", variables={"x": [], "v": [3]}, at={"x": 1, "v": [1, 2, 3]})
    assert (caught.value.code, caught.value.position) == ("ambiguous", 4)
    out = run(expression="|v[0]| + |-x|", variables={"x": [], "v": [3]},
              at={"x": 2, "v": [-1, 2, 3]}, derivatives=["value"])
    assert out["value"] == 3


def test_a_missing_value_suggests_the_reading_the_point_implies(run: Any) -> None:
    with pytest.raises(InputError) as caught:
        run(expression="sinx + 1", at={"x": 1})
    assert caught.value.problem()["suggestions"][0] == "sin(x)"


@pytest.mark.parametrize(("text", "expected", "not_expected"), [
    ("2 3", ["'*', '/', '%' or '@'", "a name", "the end"], ["')'", "','", "':'", "']'"]),
    ("x +* y", ["a number", "a name", "'('"], ["')'", "the end", "':'"]),
    ("(x 2", ["')'", "','"], ["']'", "':'", "the end"]),
    ("v[1 2", ["']'", "':'", "','"], ["')'"]),  # X[i, j]: a comma may follow
])
def test_expected_tokens_are_only_those_that_can_follow(text: str, expected: list[str],
                                                        not_expected: list[str]) -> None:
    with pytest.raises(NablaError) as caught:
        tree(text, {"x": [], "v": [3]})
    detail = caught.value.detail
    said = detail.split("expected", 1)[1]
    assert all(word in said for word in expected), detail
    assert not any(word in said for word in not_expected), detail


# --- over HTTP and in the CLI -----------------------------------------------------------------

@pytest.mark.parametrize(("text", "at", "value"), [
    ("3x^2 - 4x", {"x": 2}, 4.0), ("2 sin x cos x", {"x": 0.5}, math.sin(1.0)),
    ("||x| - 1|", {"x": -0.25}, 0.75), ("x²y + √y", {"x": 3, "y": 4}, 38.0),
    ("1/(γ - 1)", {"gamma": 1.4}, 2.5), ("2πr", {"r": 0.5}, math.pi),
])
def test_readings_over_http(api: Any, text: str, at: dict[str, float], value: float) -> None:
    response = api.post("/v1/differentiate", json={"expression": text, "at": at,
                                                  "derivatives": ["value"]})
    assert response.status_code == 200, response.text
    assert math.isclose(response.json()["value"], value, rel_tol=1e-12)


def test_an_ambiguous_reading_over_http_is_a_problem_with_both(api: Any) -> None:
    response = api.post("/v1/differentiate", json={"expression": "x/2y", "at": {"x": 1, "y": 2}})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert (problem["code"], problem["position"]) == ("ambiguous", 1)
    assert problem["readings"] == ["x/(2y)", "x/2*y"]


def test_unknown_function_over_http_suggests(api: Any) -> None:
    response = api.post("/v1/differentiate", json={"expression": "2 + sinn(x)", "at": {"x": 1}})
    problem = response.json()
    assert (response.status_code, problem["code"], problem["position"]) == (
        422, "unknown_function", 4)
    assert problem["suggestions"][0] == "sin"


def test_get_on_differentiate_says_to_post(api: Any) -> None:
    response = api.get("/v1/differentiate")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 405 and problem["code"] == "http_405"
    assert "use POST" in problem["detail"] and '"expression"' in problem["detail"]


def test_the_cli_reads_implicit_products_and_points_at_typed_characters(
        server_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    from app.client.cli import main

    assert main(["differentiate", "2x sin x", "--at", "x=1", "--url", server_url]) == 0
    out = capsys.readouterr().out
    assert ["f", repr(2 * math.sin(1.0))] in [line.split() for line in out.splitlines()]
    assert main(["differentiate", "x² + sinn(x)", "--at", "x=1", "--url", server_url]) == 1
    err = capsys.readouterr().err
    assert "did you mean sin" in err
    expression_line, caret_line = err.splitlines()[-2:]
    assert expression_line[caret_line.index("^"):].startswith("sinn")
