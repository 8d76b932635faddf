"""The first tier's sparse jets: each node carries derivatives over its support only.

Checked against closed forms (the 100-variable Rosenbrock's gradient and tridiagonal
Hessian), against SymPy's derivatives at 30 digits (random expressions whose terms use a
few of 20 variables, some only under a conditional), and against the same walk with
dense jets (every derivative over all n coordinates): the two must give the same numbers.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest
import sympy

from app.config import Limits
from app.engine.compilation import CompileSpec, build_program
from app.engine.first_tier import SPARSE_FROM, interpret, outputs, variables
from app.engine.jets import JetEvaluator
from app.engine.xla import Program
from app.language import catalog
from app.language.build import variable_symbol
from app.language.catalog.entry import Absent, Function

KINDS = ("value", "gradient", "hessian")


def program(texts: list[str], declared: list[tuple[str, tuple[int, ...]]],
            stacked: bool = False) -> Program:
    spec = CompileSpec(tuple(texts), stacked, tuple(declared), (), KINDS, None, 1)
    return build_program(spec, Limits())


def walk(prog: Program, points: np.ndarray, dense: bool) -> dict[str, np.ndarray]:
    """The jets' outputs (B, outputs, ...) at points (B, n), with sparse or dense seeds."""
    layout = prog.layout
    with np.errstate(all="ignore"):
        evaluator = JetEvaluator(variables(layout.names, layout.shapes, points,
                                           variable_symbol, dense), layout.n, 2)
        size = 1 if prog.stacked else prog.outputs
        parts = [outputs(evaluator.walk(e), points.shape[0], size, layout.n, KINDS)
                 for e in prog.exprs]
    return {k: np.concatenate([np.asarray(p[k]) for p in parts], axis=1) for k in KINDS}


def assert_same(sparse: dict[str, np.ndarray], dense: dict[str, np.ndarray]) -> None:
    """Equal numbers where the dense jets' are finite, and non-finite in the same kinds (a
    dense jet can make NaN of inf * 0 at a coordinate a node does not depend on, where the
    sparse jet has no entry; either way the request goes to XLA)."""
    for kind in KINDS:
        s, d = sparse[kind], dense[kind]
        assert s.shape == d.shape, kind
        assert np.isfinite(s).all() == np.isfinite(d).all(), kind
        finite = np.isfinite(d)
        assert np.array_equal(s[finite], d[finite]), kind


def rosenbrock_text(n: int) -> str:
    return " + ".join(f"(1 - x{i})**2 + 100*(x{i + 1} - x{i}**2)**2" for i in range(n - 1))


def rosenbrock_closed_form(x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    n = len(x)
    f, g, h = 0.0, np.zeros(n), np.zeros((n, n))
    for i in range(n - 1):
        r = x[i + 1] - x[i] ** 2
        f += (1 - x[i]) ** 2 + 100 * r**2
        g[i] += -2 * (1 - x[i]) - 400 * x[i] * r
        g[i + 1] += 200 * r
        h[i, i] += 2 - 400 * x[i + 1] + 1200 * x[i] ** 2
        h[i, i + 1] -= 400 * x[i]
        h[i + 1, i] -= 400 * x[i]
        h[i + 1, i + 1] += 200
    return f, g, h


def test_rosenbrock_100_matches_its_closed_form_and_the_dense_jets() -> None:
    n = 100
    assert n >= SPARSE_FROM  # interpret takes the sparse path
    prog = program([rosenbrock_text(n)], [(f"x{i}", ()) for i in range(n)])
    x = np.random.default_rng(14).uniform(-2, 2, n)
    got = interpret(prog, KINDS, x, False)
    f, g, h = rosenbrock_closed_form(x)
    assert got["value"] == pytest.approx(f, rel=1e-13)
    np.testing.assert_allclose(got["gradient"], g, rtol=1e-12, atol=1e-12 * np.abs(g).max())
    np.testing.assert_allclose(got["hessian"], h, rtol=1e-12, atol=1e-12 * np.abs(h).max())
    assert (got["hessian"][h == 0] == 0).all()  # exactly tridiagonal
    sparse, dense = walk(prog, x[None], False), walk(prog, x[None], True)
    assert_same(sparse, dense)
    assert np.array_equal(sparse["hessian"][0, 0], got["hessian"])


N = 20
SYMBOLS = [sympy.Symbol(f"x{i}", real=True) for i in range(N)]
UNARY: list[tuple[str, Any]] = [("sin", sympy.sin), ("cos", sympy.cos), ("exp", sympy.exp),
                                ("tanh", sympy.tanh), ("atan", sympy.atan)]


def random_term(rng: random.Random, pool: list[int], depth: int) -> tuple[str, Any]:
    """A random term over variables of ``pool``: (text of the language, SymPy tree)."""
    if depth == 0 or rng.random() < 0.2:
        i = rng.choice(pool)
        return f"x{i}", SYMBOLS[i]
    shape = rng.random()
    if shape < 0.35:
        name, func = rng.choice(UNARY)
        text, expr = random_term(rng, pool, depth - 1)
        return f"{name}({text})", func(expr)
    if shape < 0.5:
        k = rng.randint(2, 3)
        text, expr = random_term(rng, pool, depth - 1)
        return f"({text})**{k}", expr**k
    (a, ea), (b, eb) = random_term(rng, pool, depth - 1), random_term(rng, pool, depth - 1)
    op = rng.choice("+-*")
    return f"({a} {op} {b})", {"+": ea + eb, "-": ea - eb, "*": ea * eb}[op]


def random_expression(rng: random.Random) -> tuple[str, Any, set[int]]:
    """A sum of terms over few of the N variables, one of them a conditional whose branches
    use variables that appear nowhere else; and the variables it uses."""
    variables_used = rng.sample(range(N), 9)
    texts, exprs = [], []
    for t in range(3):
        text, expr = random_term(rng, variables_used[2 * t:2 * t + 2], 3)
        texts.append(text)
        exprs.append(expr)
    c = variables_used[6]
    (a, ea), (b, eb) = (random_term(rng, [variables_used[7]], 2),
                        random_term(rng, [variables_used[8], c], 2))
    texts.append(f"where(x{c} > 0.1, {a}, {b})")
    exprs.append(sympy.Piecewise((ea, SYMBOLS[c] > 0.1), (eb, True)))
    return " + ".join(texts), sympy.Add(*exprs), set(variables_used)


def oracle(expr: Any, x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Value, gradient and Hessian by SymPy at 30 digits."""
    point = {s: sympy.Float(repr(float(v)), 30) for s, v in zip(SYMBOLS, x, strict=True)}

    def at(e: Any) -> float:
        return float(e.evalf(30, subs=point))
    grad = [sympy.diff(expr, s) for s in SYMBOLS]
    hess = [[sympy.diff(d, s) for s in SYMBOLS] for d in grad]
    return at(expr), np.array([at(d) for d in grad]), np.array([[at(e) for e in row]
                                                                for row in hess])


def close(got: np.ndarray, want: np.ndarray) -> None:
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9 * (1 + np.abs(want).max()))


@pytest.mark.parametrize("seed", range(6))
def test_random_sparse_expressions_match_sympy_and_the_dense_jets(seed: int) -> None:
    rng = random.Random(seed)
    text, expr, used = random_expression(rng)
    prog = program([text], [(f"x{i}", ()) for i in range(N)])
    points = np.random.default_rng(seed).uniform(-1.5, 1.5, (3, N))
    points[1, list(used)[:1]] = 0.0  # one coordinate at 0 (exact zeros in derivatives)
    got = interpret(prog, KINDS, points, True)
    for row, x in enumerate(points):
        value, grad, hess = oracle(expr, x)
        close(got["value"][row], value)
        close(got["gradient"][row], grad)
        close(got["hessian"][row], hess)
        unused = [i for i in range(N) if i not in used]
        assert (got["gradient"][row][unused] == 0).all()
        assert (got["hessian"][row][unused] == 0).all()
        assert (got["hessian"][row][:, unused] == 0).all()
    assert_same(walk(prog, points, False), walk(prog, points, True))


def test_a_list_of_expressions_gives_its_jacobian_over_each_ones_support() -> None:
    rng = random.Random(99)
    (a, ea, _), (b, eb, _) = random_expression(rng), random_expression(rng)
    prog = program([a, b], [(f"x{i}", ()) for i in range(N)], stacked=True)
    x = np.random.default_rng(99).uniform(-1, 1, N)
    got = interpret(prog, KINDS, x, False)
    for row, expr in enumerate((ea, eb)):
        value, grad, hess = oracle(expr, x)
        close(got["value"][row], value)
        close(got["gradient"][row], grad)
        close(got["hessian"][row], hess)
    assert_same(walk(prog, x[None], False), walk(prog, x[None], True))


def test_vector_variables_and_slices() -> None:
    """x[1:] and x[:-1] (vector operations over a vector variable's coordinates) next to a
    scalar variable that only a conditional uses."""
    n = 24
    text = "sum(100*(x[1:] - x[:-1]^2)^2 + (1 - x[:-1])^2) + where(x[0] > 0, y^2, 3*y)"
    prog = program([text], [("x", (n,)), ("y", ())])
    rng = np.random.default_rng(5)
    for point in (np.append(rng.uniform(0.1, 2, n), 0.7), np.append(-rng.uniform(0.1, 2, n),
                                                                      0.7)):
        got = interpret(prog, KINDS, point, False)
        f, g, h = rosenbrock_closed_form(point[:n])
        y = point[n]
        taken = point[0] > 0
        close(got["value"], f + (y**2 if taken else 3 * y))
        close(got["gradient"], np.append(g, 2 * y if taken else 3.0))
        full = np.zeros((n + 1, n + 1))
        full[:n, :n] = h
        full[n, n] = 2.0 if taken else 0.0
        close(got["hessian"], full)
        assert_same(walk(prog, point[None], False), walk(prog, point[None], True))


def _with_jet_rules(function: Function) -> bool:
    nodes = () if isinstance(function.nodes, Absent) else function.nodes
    return not any(isinstance(node.jet, Absent) for node in nodes)


EXAMPLES = [f for f in catalog.FUNCTIONS if _with_jet_rules(f)]


@pytest.mark.parametrize("function", EXAMPLES, ids=[f.name for f in EXAMPLES])
def test_every_catalog_example_is_the_same_sparse_and_dense(function: Function) -> None:
    """Each function's jet rule, on its example (at its point and at shifted points, where
    kinks, ties and branches differ), gives the dense jets' numbers with sparse seeds."""
    at = function.example.at
    declared = [(k, tuple(np.shape(v))) for k, v in at.items()]
    prog = program([function.example.expression], declared)
    base = np.concatenate([np.ravel(np.asarray(at[name], dtype=float))
                           for name in prog.layout.names])
    shifts = np.random.default_rng(len(function.name)).uniform(-1, 1, (3, base.size))
    points = np.vstack([base, base + shifts, base * 0.0])
    assert_same(walk(prog, points, False), walk(prog, points, True))


@pytest.mark.parametrize("n", [3, SPARSE_FROM + 4])
def test_a_subnormal_partial_product_is_flushed_as_xla_flushes_it(n: int) -> None:
    """XLA on CPU flushes subnormals (FTZ/DAZ) after each multiplication; ``interpret`` walks
    once without flushing and again, flushing, when a node or a partial product was
    subnormal. x0 * x1 * 1e20 at x0 = 1e-300, x1 = 1e-10: x0 * x1 = 1e-310 is subnormal and
    becomes 0, so the value is 0 (not 1e-290); the gradient (x1 1e20, x0 1e20) is normal."""
    others = " + ".join(f"x{i}" for i in range(2, n))
    text = f"x0 * x1 * 1e20 + 0 * ({others})"
    prog = program([text], [(f"x{i}", ()) for i in range(n)])
    point = np.array([1e-300, 1e-10, *np.ones(n - 2)])
    result = interpret(prog, KINDS, point, False)
    assert float(result["value"]) == 0.0
    assert np.array_equal(result["gradient"], [1e-10 * 1e20, 1e-300 * 1e20, *np.zeros(n - 2)])
    hessian = np.zeros((n, n))
    hessian[0, 1] = hessian[1, 0] = 1e20
    assert np.array_equal(result["hessian"], hessian)
    # Nothing subnormal at x0 = 1e-200: nothing flushed, 1e-200 * 1e-10 * 1e20 = 1e-190.
    point[0] = 1e-200
    result = interpret(prog, KINDS, point, False)
    assert float(result["value"]) == pytest.approx(1e-190, rel=1e-15)
