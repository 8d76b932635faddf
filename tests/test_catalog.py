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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
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
    # issue 11: each written from its definition, never from nabla's own node types
    "sec": lambda x: 1 / sympy.cos(x), "csc": lambda x: 1 / sympy.sin(x),
    "cot": lambda x: sympy.cos(x) / sympy.sin(x), "asec": lambda x: sympy.acos(1 / x),
    "acsc": lambda x: sympy.asin(1 / x), "acot": lambda x: sympy.atan(1 / x),
    "sinc": lambda x: sympy.sin(sympy.pi * x) / (sympy.pi * x), "ln": sympy.log,
    "exp2": lambda x: 2**x, "pow": lambda a, b: a**b,
    "hypot": lambda a, b: sympy.sqrt(a**2 + b**2),
    "logaddexp": lambda a, b: sympy.log(sympy.exp(a) + sympy.exp(b)),
    "digamma": lambda x: sympy.polygamma(0, x), "erfinv": sympy.erfinv,
    "beta": lambda a, b: sympy.gamma(a) * sympy.gamma(b) / sympy.gamma(a + b),
    "factorial": lambda x: sympy.gamma(x + 1),
    "binomial": lambda n, k: sympy.gamma(n + 1) / (sympy.gamma(k + 1) * sympy.gamma(n - k + 1)),
    "i0": lambda x: sympy.besseli(0, x), "i1": lambda x: sympy.besseli(1, x),
    "i0e": lambda x: sympy.exp(-sympy.Abs(x)) * sympy.besseli(0, x),
    "i1e": lambda x: sympy.exp(-sympy.Abs(x)) * sympy.besseli(1, x),
    "round": lambda x: _half_to_even(x),
    "trunc": lambda x: sympy.sign(x) * sympy.floor(sympy.Abs(x)),
    "mod": lambda a, b: a - b * sympy.floor(a / b),
    "clip": lambda x: sympy.Min(sympy.Max(x, 0), 1),
    "logsumexp": lambda v: sympy.log(sum(sympy.exp(a) for a in v)),
    "softmax": lambda v: [sympy.exp(a) / sum(sympy.exp(b) for b in v) for a in v],
    # matrices come as sympy.Matrix of symbols, vectors as lists
    "transpose": lambda X: X.T, "trace": lambda X: X.trace(), "det": lambda X: X.det(),
    "logdet": lambda X: sympy.log(X.det()), "inv": lambda X: X.inv(),
    "solve": lambda X, b: X.LUsolve(sympy.Matrix(b)), "outer": lambda v, w: sympy.Matrix(
        [[a * c for c in w] for a in v]),
    "diag": lambda X: sympy.Matrix([X[0, 0], X[1, 1]]),
    "eye": lambda X: X.trace(),
}
NAMES = [f.name for f in catalog.FUNCTIONS]


def _half_to_even(x: Any) -> Any:
    """The nearest integer, and at a tie the even one: floor(x + 1/2), less 1 where x + 1/2
    is an odd integer."""
    up = sympy.floor(x + sympy.Rational(1, 2))
    odd_tie = sympy.Eq(sympy.Mod(x + sympy.Rational(1, 2), 2), 1)
    return sympy.Piecewise((up - 1, odd_tie), (up, True))


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
    # floor and ceil are constant near the points tested (never at a jump): derivative 0
    steps = sympy.floor | sympy.ceiling
    expr = expr.replace(lambda e: isinstance(e, sympy.Derivative) and isinstance(e.expr, steps),
                        lambda e: sympy.Integer(0))
    expr = expr.replace(lambda e: isinstance(e, sympy.Subs), lambda e: e.doit())  # floor(a/b)'
    return float(sympy.N(expr.subs(point), 30))


@pytest.mark.parametrize("function", catalog.FUNCTIONS, ids=NAMES)
def test_example_matches_sympy_at_30_digits(run: Any, function: Function) -> None:
    at = dict(function.example.at)
    answer = run(expression=function.example.expression, at=at,
                 derivatives=["value", "gradient", "hessian"])
    args, by_name, point = _symbols(at)
    assert sorted(answer["coordinates"]) == sorted(by_name)
    coords = [by_name[c] for c in answer["coordinates"]]
    f = ORACLES[function.name](*args)
    if isinstance(f, sympy.MatrixBase):  # a matrix-valued example: entry by entry
        entries, shape = list(f), list(f.shape if f.shape[1] != 1 else f.shape[:1])
        expected_matrix = {"value": [_exact(e, point) for e in entries],
                           "gradient": [[_exact(sympy.diff(e, c), point) for c in coords]
                                        for e in entries]}
        for kind, value in expected_matrix.items():
            got = np.asarray(answer["jacobian" if kind == "gradient" else kind])
            assert list(got.shape[:len(shape)]) == shape
            assert _close(got.reshape(len(entries), -1).tolist() if kind == "gradient"
                          else got.reshape(-1).tolist(), value), (kind, got, value)
        return
    expected = _derivatives(f, coords)
    for kind, exprs in expected.items():
        value = _map(lambda e: _exact(e, point), exprs)
        assert _close(answer[kind], value), (kind, answer[kind], value)


def _derivatives(f: Any, coords: list[Any]) -> dict[str, Any]:
    """f's value, gradient (or Jacobian, for a list f) and Hessian, as SymPy trees, keyed
    as the answer's fields."""
    if isinstance(f, list):
        parts = [_derivatives(g, coords) for g in f]
        return {"value": [p["value"] for p in parts],
                "jacobian": [p["gradient"] for p in parts],
                "hessian": [p["hessian"] for p in parts]}
    gradient = [sympy.diff(f, c) for c in coords]
    return {"value": f, "gradient": gradient,
            "hessian": [[sympy.diff(g, c) for c in coords] for g in gradient]}


def _map(func: Callable[[Any], Any], nested: Any) -> Any:
    return [_map(func, n) for n in nested] if isinstance(nested, list) else func(nested)


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


# --- every function of issue 11 at random points of its domain --------------------------

Draw = Any  # a Hypothesis strategy of one point: name -> value (a list for a vector)


def _within(low: float, high: float) -> Any:
    """Normal floats (XLA flushes subnormals to 0, as docs/numerics.md says)."""
    return st.floats(low, high, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def _away_from(points: tuple[float, ...], low: float, high: float) -> Any:
    """Floats in [low, high] but not at a kink (tested on its own below)."""
    return _within(low, high).filter(lambda x: x not in points)


def _either_sign(low: float, high: float) -> Any:
    """|x| in [low, high], of either sign."""
    return st.tuples(_within(low, high), st.sampled_from([-1.0, 1.0])).map(lambda p: p[0] * p[1])


def _points(**coordinates: Any) -> Any:
    return st.fixed_dictionaries(coordinates)


def _n_and_k() -> Any:
    """0 <= k <= n, the domain where binomial is the gamma quotient (JAX's comb is 0 outside)."""
    return st.tuples(_within(0, 20), _within(0, 1)).map(lambda p: {"n": p[0], "k": p[0] * p[1]})


@dataclasses.dataclass(frozen=True)
class Domain:
    """Where a function is tested: its expression, the points drawn, and the tolerance the
    float64 algorithm is held to (relative; absolute as a fraction of the largest entry)."""

    expression: str
    points: Any
    rtol: float = 1e-12
    written: Any = None  # where the symbolic forms are posted back, if not at ``points``


#: For each function of issue 11: points of its domain, away from poles and jumps (the
#: kinks have tests of their own below). The oracle is ORACLES[name] at 30 digits.
DOMAINS: dict[str, Domain] = {
    "sec": Domain("sec(x)", _points(x=_within(-1.4, 1.4))),
    "csc": Domain("csc(x)", _points(x=_either_sign(0.1, 3.0))),
    "cot": Domain("cot(x)", _points(x=_either_sign(0.1, 3.0))),
    "asec": Domain("asec(x)", _points(x=_either_sign(1.05, 20))),
    "acsc": Domain("acsc(x)", _points(x=_either_sign(1.05, 20))),
    "acot": Domain("acot(x)", _points(x=_either_sign(1e-3, 50))),
    # the series serves |x| < 0.16; the written derivative (cos(pi x) - sinc(x)) / x cancels
    # near 0 (at 1e-3 it keeps 11 digits, at 1e-6 five), so it is posted back farther out
    "sinc": Domain("sinc(x)", _points(x=_either_sign(1e-6, 4)),
                   written=_points(x=_either_sign(0.05, 4))),
    "ln": Domain("ln(x)", _points(x=_within(1e-3, 1e3))),
    "exp2": Domain("exp2(x)", _points(x=_within(-30, 30))),
    "pow": Domain("pow(a, b)", _points(a=_within(0.05, 5), b=_within(-4, 4))),
    "hypot": Domain("hypot(a, b)", _points(a=_either_sign(1e-3, 1e3), b=_within(-1e3, 1e3))),
    "logaddexp": Domain("logaddexp(a, b)", _points(a=_within(-50, 50), b=_within(-50, 50))),
    "digamma": Domain("digamma(x)", _points(x=_within(0.05, 30))),
    "erfinv": Domain("erfinv(x)", _points(x=_within(-0.999, 0.999))),
    "beta": Domain("beta(a, b)", _points(a=_within(0.05, 20), b=_within(0.05, 20))),
    "factorial": Domain("factorial(x)", _points(x=_within(0, 20))),
    "binomial": Domain("binomial(n, k)", _n_and_k(), rtol=1e-11),
    "i0": Domain("i0(x)", _points(x=_within(-30, 30))),
    "i1": Domain("i1(x)", _points(x=_either_sign(1e-2, 30))),
    "i0e": Domain("i0e(x)", _points(x=_either_sign(1e-3, 30))),
    "i1e": Domain("i1e(x)", _points(x=_either_sign(1e-2, 30))),
    "round": Domain("round(x)", _points(x=_within(-50, 50))),
    "trunc": Domain("trunc(x)", _points(x=_away_from((0.0,), -50, 50))),
    "mod": Domain("mod(a, b)", _points(a=_within(-50, 50), b=_either_sign(0.5, 7))),
    "clip": Domain("clip(x, 0, 1)", _points(x=_away_from((0.0, 1.0), -2, 3))),
    "logsumexp": Domain("logsumexp(v)", _points(v=st.lists(_within(-30, 30), min_size=3,
                                                          max_size=3))),
    "softmax": Domain("softmax(v)", _points(v=st.lists(_within(-8, 8), min_size=3,
                                                      max_size=3))),
}
ISSUE_11 = sorted(DOMAINS)
_EXPECTED: dict[tuple[str, str], dict[str, Any]] = {}


def _oracle_at(name: str, point: dict[str, Any]) -> dict[str, Any]:
    """ORACLES[name]'s value, gradient or Jacobian, and Hessian at ``point``, at 30 digits;
    kept, since both tiers draw the same points."""
    key = (name, repr(point))
    if key not in _EXPECTED:
        args, by_name, exact = _symbols(point)
        coords = list(by_name.values())
        trees = _derivatives(ORACLES[name](*args), coords)
        _EXPECTED[key] = {k: _map(lambda e: _exact(e, exact), t) for k, t in trees.items()}
    return _EXPECTED[key]


def _agrees(got: Any, want: Any, rtol: float, scale: float) -> bool:
    """Equal to ``rtol`` relative to each entry, or, for an entry below a thousandth of the
    largest number at the point (``scale``), to ``rtol`` times that thousandth: sinc(1) is
    3.9e-17 in float64 (sin of the double nearest pi), and a derivative 1 - s, with s
    near 1 (logaddexp's), keeps its absolute error, not its relative one."""
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    bound = rtol * np.maximum(np.abs(want), 1e-3 * scale) + 1e-300  # a subnormal is 0
    return bool(np.all(np.abs(got - want) <= bound))


@pytest.mark.parametrize("name", ISSUE_11)
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_points_match_sympy_at_30_digits(run: Any, name: str, data: Any) -> None:
    """Value, gradient (Jacobian) and Hessian at 4 random points of the domain, on each
    tier, against SymPy at 30 digits."""
    domain, function = DOMAINS[name], catalog.lookup(name)
    assert function is not None
    order = list(function.example.at)  # the oracle's arguments, and the coordinates
    points = [{k: p[k] for k in order}
              for p in data.draw(st.lists(domain.points, min_size=4, max_size=4))]
    answer = run(expression=domain.expression, points=points,
                 variables={k: [len(v)] if isinstance(v, list) else []
                            for k, v in points[0].items()},
                 derivatives=["value", "gradient", "hessian"])
    for i, point in enumerate(points):
        expected = _oracle_at(name, point)
        scale = max(float(np.max(np.abs(np.asarray(w, dtype=float)))) for w in expected.values())
        for kind, want in expected.items():
            got = answer[kind][i]
            assert _agrees(got, want, domain.rtol, scale), (name, point, kind, got, want)


def test_every_new_function_has_a_domain() -> None:
    new = {"sec", "csc", "cot", "asec", "acsc", "acot", "sinc", "ln", "exp2", "pow", "hypot",
           "logaddexp", "digamma", "erfinv", "beta", "factorial", "binomial", "i0", "i1",
           "i0e", "i1e", "round", "trunc", "mod", "clip", "logsumexp", "softmax"}
    assert new == set(DOMAINS) and new <= set(NAMES)


@pytest.mark.parametrize("name", ISSUE_11)
@settings(max_examples=1, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_symbolic_forms_posted_back_give_the_same_numbers(run: Any, name: str,
                                                          data: Any) -> None:
    """Each symbolic formula (value, gradient or Jacobian, Hessian), printed in nabla's
    language, posted back as an expression, gives the numbers of the first answer, at 4
    random points. The formulas are other float64 algorithms (sinc' as (cos(pi x) -
    sinc(x)) / x, asec' as 1 / (x^2 sqrt(1 - 1/x^2))): equal to 1e-10."""
    domain, function = DOMAINS[name], catalog.lookup(name)
    assert function is not None
    order = list(function.example.at)
    drawn = domain.points if domain.written is None else domain.written
    points = [{k: p[k] for k in order} for p in data.draw(st.lists(drawn, min_size=4,
                                                                   max_size=4))]
    variables = {k: [len(v)] if isinstance(v, list) else [] for k, v in points[0].items()}
    first = run(expression=domain.expression, points=points, variables=variables,
                derivatives=["value", "gradient", "hessian", "symbolic"])
    symbolic = first["symbolic"]
    assert "skipped" not in symbolic, symbolic
    first_kind = "jacobian" if "jacobian" in first else "gradient"
    kinds = ("value", first_kind, "hessian")
    texts = [t for kind in kinds for t in np.ravel(np.asarray(symbolic[kind], dtype=object))]
    numbers = np.column_stack([np.asarray(first[k], dtype=float).reshape(len(points), -1)
                               for k in kinds])
    again = run(expression=texts, points=points, variables=variables, derivatives=["value"])
    got = np.asarray(again["value"], dtype=float)
    for row, want in zip(got, numbers, strict=True):
        scale = float(np.max(np.abs(want)))
        assert _agrees(row, want, 1e-10, scale), (name, texts, row, want)


def test_aliases_build_the_same_tree() -> None:
    """arcsin is asin, arctan2 is atan2, ...: every alias of every function."""
    aliased = [(f, a) for f in catalog.FUNCTIONS for a in f.aliases]
    assert {a for _, a in aliased} >= {"arcsin", "arccos", "arctan", "arctan2", "arcsinh",
                                       "arccosh", "arctanh", "arcsec", "arccsc", "arccot"}
    for function, alias in aliased:
        spec = _spec(function)
        text = spec.texts[0].replace(f"{function.name}(", f"{alias}(")
        assert text != spec.texts[0]
        again = dataclasses.replace(spec, texts=(text,))
        assert build_program(again, Limits()).exprs == build_program(spec, Limits()).exprs


# --- kinks: JAX's conventions where JAX defines them, and nabla's documented ones ---------

def _jax_derivatives(func: Callable[..., Any], args: list[float]) -> dict[str, Any]:
    """Value, gradient and Hessian of ``func`` as JAX computes them, eagerly."""
    import jax

    argnums = tuple(range(len(args)))
    arrays = [np.float64(a) for a in args]
    return {"value": func(*arrays),
            "gradient": jax.grad(func, argnums)(*arrays),
            "hessian": jax.hessian(func, argnums)(*arrays)}


def _jax_kinks() -> list[tuple[str, dict[str, float], Callable[..., Any]]]:
    import jax.numpy as jnp
    import jax.scipy.special as jsp

    return [
        *[("round(x)", {"x": x}, jnp.round) for x in (0.5, 1.5, 2.5, -0.5, -1.5, 3.0)],
        *[("trunc(x)", {"x": x}, jnp.trunc) for x in (2.0, -2.0, -0.5, 0.0)],
        *[("mod(a, b)", {"a": a, "b": b}, jnp.mod)
          for a, b in ((6.0, 2.0), (-6.0, 2.0), (7.5, -2.0), (-7.5, 2.0), (0.0, 3.0),
                       (5.0, 0.0), (1e17, 3.0))],
        *[("a % b", {"a": a, "b": b}, jnp.mod) for a, b in ((-6.0, 2.0), (7.5, -2.0))],
        *[("clip(x, lo, hi)", {"x": x, "lo": lo, "hi": hi}, jnp.clip)
          for x, lo, hi in ((0.0, 0.0, 1.0), (1.0, 0.0, 1.0), (0.5, 0.5, 0.5),
                            (2.0, 1.0, 0.0), (0.25, 0.0, 1.0))],
        *[("hypot(a, b)", {"a": a, "b": b}, jnp.hypot)
          for a, b in ((0.0, 0.0), (0.0, 3.0), (1e200, 1e-200), (-0.0, 0.0))],
        *[("logaddexp(a, b)", {"a": a, "b": b}, jnp.logaddexp)
          for a, b in ((0.0, 0.0), (1e308, 1e308), (-1e308, -1e308), (-800.0, 0.0))],
        *[("i0e(x)", {"x": x}, jsp.i0e) for x in (0.0, 1.0, -1.0)],
        *[("i1e(x)", {"x": x}, jsp.i1e) for x in (0.0, 1e-17, -1.0)],
        *[("factorial(x)", {"x": x}, jsp.factorial) for x in (-0.5, 0.0, 3.0)],
        *[("binomial(n, k)", {"n": n, "k": k}, jsp.comb)
          for n, k in ((3.0, 5.0), (5.0, 5.0), (5.0, 0.0), (-1.0, 2.0), (4.0, -1.0),
                       (2.5, 1.5))],
    ]


JAX_KINKS = _jax_kinks()


@pytest.mark.parametrize("case", JAX_KINKS, ids=[f"{e}@{list(a.values())}"
                                                 for e, a, _ in JAX_KINKS])
def test_kinks_follow_jax(run: Any, case: tuple[str, dict[str, float], Any]) -> None:
    """At jumps, kinks, ties and the edges of the domain, value, gradient and Hessian are
    what JAX computes for its own function (``jax.grad`` of ``jnp.round`` is 0, of
    ``jnp.clip`` at a bound 1/2), on both tiers."""
    expression, at, func = case
    answer = run(expression=expression, at=at, variables={k: [] for k in at},
                 derivatives=["value", "gradient", "hessian"])
    expected = _jax_derivatives(func, list(at.values()))
    for kind, want in expected.items():
        got = np.asarray([np.nan if v is None else v for v in np.ravel(
            np.asarray(answer[kind], dtype=object))], dtype=float)
        np.testing.assert_allclose(got, np.ravel(np.asarray(want, dtype=float)), rtol=1e-14,
                                   atol=0, err_msg=f"{expression} {at} {kind}")


PI2 = math.pi**2
#: Where nabla's function is smooth and JAX's composition is not (i0 at 0), or has no JAX
#: function: the values the catalog's conventions document.
OWN_KINKS = [
    ("sinc(x)", 0.0, (1.0, 0.0, -PI2 / 3)),
    ("sinc(x)", 1e-8, (1.0, -PI2 / 3 * 1e-8, -PI2 / 3)),
    ("sinc(x)", -1e-3, (math.sin(-math.pi * 1e-3) / (-math.pi * 1e-3),
                        float(sympy.N(sympy.diff(sympy.sin(sympy.pi * S("x")) / (
                            sympy.pi * S("x")), S("x")).subs(S("x"), sympy.Rational(-1, 1000)),
                            30)),
                        float(sympy.N(sympy.diff(sympy.sin(sympy.pi * S("x")) / (
                            sympy.pi * S("x")), S("x"), 2).subs(S("x"), sympy.Rational(
                                -1, 1000)), 30)))),
    ("acot(x)", 0.0, (math.pi / 2, -1.0, 0.0)),
    ("acot(x)", -1.0, (-math.pi / 4, -0.5, -0.5)),
    # JAX's factorial is where(x < 0, 0, ...) without the double where: its gradient at -1
    # is NaN (0 times digamma's pole); nabla's is 0, as everywhere below 0
    ("factorial(x)", -1.0, (0.0, 0.0, 0.0)),
    # JAX's hypot has a Hessian of 0 where |a| = |b|: see test_hypot_hessian_at_a_tie
    ("i0(x)", 0.0, (1.0, 0.0, 0.5)),
    ("i1(x)", 0.0, (0.0, 0.5, 0.0)),
    ("asec(x)", 0.5, (math.nan, math.nan, math.nan)),
    ("exp2(x)", 10.0, (1024.0, 1024.0 * math.log(2), 1024.0 * math.log(2) ** 2)),
    ("round(x)", -0.5, (-0.0, 0.0, 0.0)),
]


@pytest.mark.parametrize("case", OWN_KINKS, ids=[f"{e}@{x}" for e, x, _ in OWN_KINKS])
def test_documented_conventions(run: Any, case: tuple[str, float, tuple[float, ...]]) -> None:
    expression, x, expected = case
    answer = run(expression=expression, at={"x": x},
                 derivatives=["value", "gradient", "hessian"])
    got = [answer["value"], answer["gradient"][0], answer["hessian"][0][0]]
    got = [math.nan if g is None else g for g in got]
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=0, err_msg=expression)
    if expected[0] == 0:
        assert math.copysign(1, got[0]) == math.copysign(1, expected[0])


def test_hypot_hessian_at_a_tie(run: Any) -> None:
    """At |a| = |b| the Hessian is (1/h^3) [[b^2, -ab], [-ab, a^2]] (JAX's own hypot, whose
    max and min share the tie, says 6e-18); at (1e-200, 0) the gradient is (1, 0) (JAX's:
    NaN, from 0 * inf)."""
    for a, b in ((3.0, 3.0), (-3.0, 3.0), (1e-200, -1e-200), (1e-200, 0.0)):
        answer = run(expression="hypot(a, b)", at={"a": a, "b": b},
                     derivatives=["value", "gradient", "hessian"])
        h = math.hypot(a, b)
        expected = [[(b / h) ** 2 / h, -(a / h) * (b / h) / h],
                    [-(a / h) * (b / h) / h, (a / h) ** 2 / h]]
        np.testing.assert_allclose(answer["hessian"], expected, rtol=1e-14)
        np.testing.assert_allclose(answer["gradient"], [a / h, b / h], rtol=1e-15)


def test_vector_functions_at_ties_follow_jax(run: Any) -> None:
    """logsumexp and softmax of equal elements, and of one much larger, as JAX's own."""
    import jax

    for v in ([1.0, 1.0, 1.0], [0.0, 800.0, -800.0], [2.0, -1.0, 2.0]):
        z = np.asarray(v)
        for expression, func in (("logsumexp(v)", jax.nn.logsumexp),
                                 ("softmax(v)", jax.nn.softmax)):
            answer = run(expression=expression, at={"v": v},
                         derivatives=["value", "gradient", "hessian"])
            first = "jacobian" if "jacobian" in answer else "gradient"
            jacobian = jax.jacfwd(func)(z)
            for got, want in ((answer["value"], func(z)), (answer[first], jacobian),
                              (answer["hessian"], jax.hessian(func)(z))):
                np.testing.assert_allclose(np.asarray(got, dtype=float), np.asarray(want),
                                           rtol=1e-13, atol=1e-300, err_msg=expression)


# --- the operator % -------------------------------------------------------------------

#: a % b binds as * and / (left to right), below unary minus and ^, as in Python.
PERCENT = [
    ("x % 4 * 2", 7.0, (7.0 % 4) * 2, 2.0),
    ("2 * x % 4", 7.0, (2 * 7.0) % 4, 2.0),
    ("x + 7 % 4", 7.0, 7.0 + 3, 1.0),
    ("-x % 4", 7.0, -7.0 % 4, -1.0),
    ("x ^ 2 % 5", 3.0, 9.0 % 5, 6.0),
    ("x % 4 % 3", 11.0, (11.0 % 4) % 3, 1.0),
    ("x / 2 % 3", 9.0, (9.0 / 2) % 3, 0.5),
    ("x % 3 / 2", 10.0, (10.0 % 3) / 2, 0.5),
    ("7.5 % x", -2.0, 7.5 % -2.0, -float(math.floor(7.5 / -2.0))),
    ("x % 2 < 1", 3.0, None, None),
]


@pytest.mark.parametrize("case", PERCENT, ids=[c[0] for c in PERCENT])
def test_percent_is_mod_at_the_level_of_times(run: Any, case: tuple[Any, ...]) -> None:
    expression, x, value, slope = case
    if value is None:  # a condition: only usable inside where
        answer = run(expression=f"where({expression}, 1, 2)", at={"x": x})
        assert answer["value"] == 2.0
        return
    answer = run(expression=expression, at={"x": x}, derivatives=["value", "gradient"])
    assert answer["value"] == value and answer["gradient"] == [slope]


def test_percent_builds_mod_and_prints_as_mod() -> None:
    declared = (("a", ()), ("b", ()), ("v", (3,)))

    def tree(text: str) -> Any:
        spec = CompileSpec((text,), False, declared, (), ("value",), None, 1)
        return build_program(spec, Limits()).exprs[0]

    assert tree("a % b") == tree("mod(a, b)")
    assert tree("a * b % 3 / a") == tree("mod(a * b, 3) / a")
    assert tree("v % 2") == tree("mod(v, 2)")
    assert to_text(tree("a % b")) == "mod(a, b)"
    with pytest.raises(NablaError, match="ends too early"):
        tree("a %")
    with pytest.raises(NablaError, match="Unexpected '%'"):
        tree("% a")


def test_a_condition_on_a_piecewise_value(run: Any) -> None:
    """binomial(factorial(x), y) compares factorial's piecewise value with y; SymPy writes
    such a condition as ITE(c, a, b) of conditions, which both tiers compute and the
    printer writes as (c and a) or (not c and b). (It was a 422 not_compilable before.)"""
    cases = [("where(where(x > 0, x, y) >= 0, 1, 2) * x", {"x": -1.0, "y": 2.0}, -1.0, [1.0, 0.0]),
             ("where(where(x > 0, x, y) >= 0, 1, 2) * x", {"x": -1.0, "y": -2.0}, -2.0,
              [2.0, 0.0]),
             ("binomial(factorial(x), y)", {"x": 3.0, "y": 2.0}, 15.0, None)]
    for expression, at, value, gradient in cases:
        answer = run(expression=expression, at=at, variables={k: [] for k in at},
                     derivatives=["value", "gradient", "symbolic"])
        assert math.isclose(answer["value"], value, rel_tol=1e-13)
        if gradient is not None:
            assert list(answer["gradient"]) == gradient
        written = answer["symbolic"]["value"]
        again = run(expression=written, at=at, variables={k: [] for k in at})
        assert math.isclose(again["value"], value, rel_tol=1e-13), written


def test_gamma_made_functions_at_huge_arguments(run: Any) -> None:
    """Answered at once in float64: factorial overflows to inf; beta of a tiny and a huge
    argument keeps lgamma(a) (its other two lgammas cancel first)."""
    answer = run(expression="factorial(10**10) * x", at={"x": 1.0}, derivatives=["value"])
    assert answer["value"] == math.inf
    answer = run(expression="beta(1e-300, x)", at={"x": 1e300}, derivatives=["value"])
    assert math.isclose(answer["value"], 1e300, rel_tol=1e-13)
    answer = run(expression="beta(x, 1e-300)", at={"x": 1e300}, derivatives=["value"])
    assert math.isclose(answer["value"], 1e300, rel_tol=1e-13)
