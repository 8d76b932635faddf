"""The catalog of functions: every tier covered or deliberately absent, names unique, every
example right against SymPy at 30 digits, and everything derived from it in step."""

from __future__ import annotations

import ast
import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import sympy
from sympy.functions.elementary.piecewise import ExprCondPair

from app.config import Limits, Settings
from app.engine.compilation import CompileSpec, build_program
from app.engine.evaluator import TABLE, VECTOR_TABLE
from app.engine.first_tier import program_interpretable
from app.errors import NablaError
from app.language import catalog
from app.language import functions as F
from app.language.catalog.entry import (
    Absent,
    Chain,
    Components,
    Composite,
    Flat,
    Function,
    Latex,
    Partials,
)
from app.language.catalog.table import markdown
from app.language.printing import to_text
from app.main import create_app
from schemas.functions import FunctionsResponse
from tests.conftest import ROOT, run_async

S = sympy.Symbol
Oracle = Callable[..., Any]


#: For each function, its example written independently in SymPy (or a closed form).
#: Arguments come in the order of the example's ``at``; a vector comes as a list of symbols.
ORACLES: dict[str, Oracle] = {
    "sin": sympy.sin, "cos": sympy.cos, "tan": sympy.tan, "asin": sympy.asin,
    "acos": sympy.acos, "atan": sympy.atan, "atan2": sympy.atan2, "sinh": sympy.sinh,
    "cosh": sympy.cosh, "tanh": sympy.tanh, "asinh": sympy.asinh, "acosh": sympy.acosh,
    "atanh": sympy.atanh,
    "exp": sympy.exp, "expm1": lambda x: sympy.exp(x) - 1,
    "log": lambda x, b: sympy.log(x) / sympy.log(b), "log1p": lambda x: sympy.log(1 + x),
    "log2": lambda x: sympy.log(x) / sympy.log(2), "log10": lambda x: sympy.log(x) / sympy.log(10),
    "sqrt": sympy.sqrt, "cbrt": lambda x: sympy.sign(x) * sympy.Abs(x) ** sympy.Rational(1, 3),
    "erf": sympy.erf, "erfc": lambda x: 1 - sympy.erf(x), "gamma": sympy.gamma,
    "lgamma": lambda x: sympy.log(sympy.gamma(x)),  # gamma > 0 at the example
    "polygamma": lambda x: sympy.polygamma(1, x),
    "sigmoid": lambda x: 1 / (1 + sympy.exp(-x)),
    "softplus": lambda x: sympy.log(1 + sympy.exp(x)),
    "abs": sympy.Abs, "sign": sympy.sign, "floor": sympy.floor, "ceil": sympy.ceiling,
    "relu": lambda x: sympy.Max(x, 0),
    "min": lambda x, y: sympy.Min(x, y, sympy.Rational(1, 2)),
    "max": lambda x, y: sympy.Max(x, y, sympy.Rational(1, 2)),
    "heaviside": lambda x: sympy.Heaviside(x, 0), "diracdelta": sympy.DiracDelta,
    "dot": lambda v, w: sum(a * b for a, b in zip(v, w, strict=True)),
    "sum": lambda v: sum(v), "prod": lambda v: sympy.Mul(*v),
    "mean": lambda v: sum(v) / len(v), "norm": lambda v: sympy.sqrt(sum(a**2 for a in v)),
    "where": lambda x: sympy.Piecewise((sympy.sqrt(x), x > 0), (-x, True)),
    "piecewise": lambda x: sympy.Piecewise((x**2, x < 0), (x, x < 1), (1, True)),
    # matrices come as sympy.Matrix of symbols, vectors as lists
    "transpose": lambda X: X.T, "trace": lambda X: X.trace(), "det": lambda X: X.det(),
    "logdet": lambda X: sympy.log(X.det()), "inv": lambda X: X.inv(),
    "solve": lambda X, b: X.LUsolve(sympy.Matrix(b)), "outer": lambda v, w: sympy.Matrix(
        [[a * c for c in w] for a in v]),
    "diag": lambda X: sympy.Matrix([X[0, 0], X[1, 1]]),
    "eye": lambda X: X.trace(),
}
NAMES = [f.name for f in catalog.FUNCTIONS]


def missing_tiers(function: Function) -> list[str]:
    """The tiers in which ``function`` has neither a rule nor a reason for having none."""
    missing = [] if callable(function.build) else ["builder"]
    missing += [t for t in ("description", "example") if not getattr(function, t)]
    if isinstance(function.nodes, Absent):
        return missing + ([] if function.nodes.reason else ["nodes (no reason)"])
    if not function.nodes:
        missing.append("nodes")
    for node in function.nodes:
        missing += [f"{node.type.__name__}: {tier}" for tier, ok in {
            "jax": callable(node.jax) and not isinstance(node.jax, Absent),
            "jet": _ruled(node.jet, Chain | Partials | Flat | Composite),
            "printer": _ruled(node.printer, str | Components),
            "latex": _ruled(node.latex, Latex),
        }.items() if not ok]
    return missing


def _ruled(rule: Any, kinds: Any) -> bool:
    return isinstance(rule, kinds) or (isinstance(rule, Absent) and bool(rule.reason))


@pytest.mark.parametrize("function", catalog.FUNCTIONS, ids=NAMES)
def test_every_tier_has_a_rule_or_a_reason(function: Function) -> None:
    assert missing_tiers(function) == []


def test_the_coverage_check_can_fail() -> None:
    sin = catalog.lookup("sin")
    assert sin is not None and not isinstance(sin.nodes, Absent)
    broken = dataclasses.replace(sin.nodes[0], jet=None, latex=Absent(""))
    assert missing_tiers(dataclasses.replace(sin, nodes=(broken,), description="")) == [
        "description", "sin: jet", "sin: latex"]


def test_names_are_unique_and_printed_names_parse() -> None:
    names = [n for f in catalog.FUNCTIONS for n in f.names]
    names += [n for c in catalog.DECLARED_CONSTANTS for n in c.names]
    assert len(names) == len(set(names))
    assert set(names) == set(catalog.FUNCTION_NAMES) | set(catalog.CONSTANTS)
    for function in catalog.FUNCTIONS:
        nodes = () if isinstance(function.nodes, Absent) else function.nodes
        assert all(n.printer == function.name for n in nodes if isinstance(n.printer, str))


def _spec(function: Function) -> CompileSpec:
    at = function.example.at
    declared = tuple((k, np.shape(v)) for k, v in at.items())
    return CompileSpec((function.example.expression,), False, declared, (), ("value",), None, 1)


def _node_types(expr: Any) -> set[type]:
    return {type(n) for n in sympy.preorder_traversal(expr) if n.args}


ARGUMENTS = ("x", "v", "0.5", "-1", "0", "x, y", "v, v", "x, 2", "2, x", "x, 0", "v, 1", "25, 2")


def test_every_node_the_builder_makes_has_a_jax_entry() -> None:
    handled = set(TABLE) | set(VECTOR_TABLE) | {sympy.Pow, sympy.Piecewise, ExprCondPair}
    assert set(catalog.JAX) <= handled
    assert set(F.VECTOR_OPS) <= set(VECTOR_TABLE)
    own = {F.sigmoid, F.softplus, F.relu, F.cbrt, *F.VECTOR_OPS}
    assert own <= set(catalog.JAX), "a node type of functions.py is not in the catalog"
    declared = (("x", ()), ("y", ()), ("v", (3,)))
    made: set[type] = set()
    for name in sorted(catalog.FUNCTION_NAMES):
        for args in ARGUMENTS:
            spec = CompileSpec((f"{name}({args})",), False, declared, (), ("value",), None, 1)
            try:
                made |= _node_types(build_program(spec, Limits()).exprs[0])
            except NablaError:
                continue
    assert made <= handled, made - handled
    assert len(made) > 40


@pytest.mark.parametrize("function", catalog.FUNCTIONS, ids=NAMES)
def test_first_tier_answers_exactly_what_has_jet_rules(function: Function) -> None:
    program = build_program(_spec(function), Limits())
    operators = (set(TABLE) - set(catalog.JAX)) | {sympy.Pow, sympy.Piecewise, ExprCondPair}
    ruled = all(t in catalog.JET_RULES or t in operators for t in _node_types(program.exprs[0]))
    assert (program_interpretable(program) > 0) == ruled


def _symbols(at: dict[str, Any]) -> tuple[list[Any], dict[str, Any], dict[Any, sympy.Float]]:
    """One argument per variable (a list for a vector), each coordinate's symbol by its
    name in the response, and the point, exactly."""
    args: list[Any] = []
    by_name: dict[str, Any] = {}
    values: list[Any] = []
    for name, value in at.items():
        if isinstance(value, list) and isinstance(value[0], list):
            rows, cols = len(value), len(value[0])
            matrix = sympy.Matrix([[S(f"{name}{i}_{j}", real=True) for j in range(cols)]
                                   for i in range(rows)])
            args.append(matrix)
            by_name.update({f"{name}[{i},{j}]": matrix[i, j]
                            for i in range(rows) for j in range(cols)})
            values += [v for row in value for v in row]
        elif isinstance(value, list):
            args.append([S(f"{name}{i}", real=True) for i in range(len(value))])
            by_name.update({f"{name}[{i}]": p for i, p in enumerate(args[-1])})
            values += value
        else:
            args.append(S(name, real=True))
            by_name[name] = args[-1]
            values.append(value)
    point = {p: sympy.Float(v, 30) for p, v in zip(by_name.values(), values, strict=True)}
    return args, by_name, point


def _exact(expr: Any, point: dict[Any, sympy.Float]) -> float:
    # floor and ceil are constant near the examples' points (never at a jump): derivative 0
    steps = sympy.floor | sympy.ceiling
    expr = expr.replace(lambda e: isinstance(e, sympy.Derivative) and isinstance(e.expr, steps),
                        lambda e: sympy.Integer(0))
    return float(sympy.N(expr.subs(point), 30))


@pytest.mark.parametrize("function", catalog.FUNCTIONS, ids=NAMES)
def test_example_matches_sympy_at_30_digits(run: Any, function: Function) -> None:
    at = dict(function.example.at)
    answer = run(expression=function.example.expression, at=at,
                 derivatives=["value", "gradient", "hessian"])
    args, by_name, point = _symbols(at)
    f = ORACLES[function.name](*args)
    assert sorted(answer["coordinates"]) == sorted(by_name)
    coords = [by_name[c] for c in answer["coordinates"]]
    if isinstance(f, sympy.MatrixBase):  # a matrix-valued example: entry by entry
        entries, shape = list(f), list(f.shape if f.shape[1] != 1 else f.shape[:1])
        expected = {"value": [_exact(e, point) for e in entries],
                    "gradient": [[_exact(sympy.diff(e, c), point) for c in coords]
                                 for e in entries]}
        for kind, value in expected.items():
            got = np.asarray(answer["jacobian" if kind == "gradient" else kind])
            assert list(got.shape[:len(shape)]) == shape
            assert _close(got.reshape(len(entries), -1).tolist() if kind == "gradient"
                          else got.reshape(-1).tolist(), value), (kind, got, value)
        return
    gradient = [sympy.diff(f, c) for c in coords]
    expected = {"value": _exact(f, point), "gradient": [_exact(g, point) for g in gradient],
                "hessian": [[_exact(sympy.diff(g, c), point) for c in coords]
                            for g in gradient]}
    for kind, value in expected.items():
        assert _close(answer[kind], value), (kind, answer[kind], value)


def _close(got: Any, want: Any) -> bool:
    if isinstance(want, list):
        return len(got) == len(want) and all(_close(g, w) for g, w in zip(got, want, strict=True))
    return math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-13)


def test_every_function_has_an_oracle() -> None:
    assert set(ORACLES) == set(NAMES)


def test_get_functions_lists_exactly_the_catalog() -> None:
    app = create_app(Settings(in_process=True, interpret=False))

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://nabla") as client:
            return await client.get("/v1/functions")

    response: httpx.Response = run_async(get())
    assert response.status_code == 200
    body = FunctionsResponse.model_validate(response.json())
    assert [(f.name, tuple(f.aliases), f.arity) for f in body.functions] == [
        (f.name, f.aliases, f.arity) for f in catalog.FUNCTIONS]
    assert [f.example.expression for f in body.functions] == [
        f.example.expression for f in catalog.FUNCTIONS]
    assert [(c.name, tuple(c.aliases)) for c in body.constants] == [
        (c.name, c.aliases) for c in catalog.DECLARED_CONSTANTS]
    assert all(f.description for f in body.functions)


def test_docs_table_is_what_the_catalog_generates() -> None:
    committed = (Path(ROOT) / "docs" / "functions.md").read_text(encoding="utf-8")
    assert committed == markdown(), "run: python -m app.language.catalog"


SCALAR = [f for f in catalog.FUNCTIONS
          if not any(isinstance(v, list) for v in f.example.at.values())]


@pytest.mark.parametrize("function", SCALAR, ids=[f.name for f in SCALAR])
def test_printed_example_builds_the_same_tree(function: Function) -> None:
    expr = build_program(_spec(function), Limits()).exprs[0]
    text = to_text(expr)
    again = build_program(dataclasses.replace(_spec(function), texts=(text,)), Limits())
    assert again.exprs[0] == expr, text


def _imports(path: Path) -> set[str]:
    """The modules ``path`` imports anywhere: at the top, in functions, for type checking."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
    return names


def test_language_imports_nothing_above_it_and_has_no_cycle() -> None:
    root = Path(ROOT) / "app" / "language"
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
               for p in root.rglob("*.py")}
    graph = {m: {i for i in _imports(p) if i in modules and i != m} for m, p in modules.items()}
    upward = {m: sorted(i for i in _imports(p) if i.startswith(
        ("app.engine", "app.service", "app.api", "app.learning"))) for m, p in modules.items()}
    assert {m: u for m, u in upward.items() if u} == {}
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, " -> ".join((*path, module))
        if module not in done:
            for imported in graph[module]:
                visit(imported, (*path, module))
            done.add(module)

    for module in graph:
        visit(module, ())
    assert graph["app.language.build"] >= {"app.language.calls", "app.language.terms"}
