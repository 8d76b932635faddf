"""Matrix variables (issue 13): shapes in and out, the operations, and derivatives checked
against closed forms of The Matrix Cookbook (written here in NumPy) and against central
finite differences, at seeded random matrices."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import ormsgpack
import pytest

from app.config import Limits
from app.engine.compilation import CompileSpec, build_program
from app.errors import NablaError, ShapeError
from app.language.catalog import matrices
from tests.inprocess import InProcess

Arr = np.ndarray
RNG_SEED = 1313


def _rng(salt: int) -> np.random.Generator:
    return np.random.default_rng(RNG_SEED + salt)


def _spd(n: int, rng: np.random.Generator) -> Arr:
    """A well-conditioned symmetric positive definite matrix (det > 0)."""
    q = rng.normal(size=(n, n))
    return q @ q.T + n * np.eye(n)


def _well(n: int, rng: np.random.Generator) -> Arr:
    """A well-conditioned general square matrix."""
    return rng.normal(size=(n, n)) + 3 * np.eye(n)


def _finite_differences(f: Callable[[Arr], float], x: Arr, h: float = 1e-6) -> Arr:
    """The gradient of f at x by central differences, shaped like x."""
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[index] = h
        grad[index] = (f(x + step) - f(x - step)) / (2 * h)
    return grad


def _grad(answer: dict[str, Any], name: str) -> Arr:
    """The stretch of the flat gradient that belongs to ``name``, reshaped by ``shapes``."""
    shapes = answer.get("shapes") or {}
    coords = answer["coordinates"]
    idx = [i for i, c in enumerate(coords) if c == name or c.startswith(name + "[")]
    flat = np.asarray(answer["gradient"])[idx]
    return flat.reshape(shapes.get(name, [len(idx)] if len(idx) > 1 else []))


# --- The Matrix Cookbook, each identity: (expression, variables, point maker, numpy f,
# --- closed-form gradient w.r.t. the differentiated variable "X" or "x") --------------

def _case_atxb(rng: np.random.Generator) -> tuple[dict[str, Any], Arr, Arr]:
    a, b, x = rng.normal(size=3), rng.normal(size=4), rng.normal(size=(3, 4))
    return {"a": a, "b": b, "X": x}, np.outer(a, b), x


CaseMaker = Callable[[np.random.Generator], dict[str, Arr]]
#: name -> (expression, the differentiated variable, point maker, f in NumPy, closed form)
COOKBOOK: dict[str, tuple[str, str, CaseMaker, Callable[..., float], Callable[..., Arr]]] = {
    "a^T X b": ("a @ X @ b", "X",
                lambda r: {"a": r.normal(size=3), "X": r.normal(size=(3, 4)),
                           "b": r.normal(size=4)},
                lambda a, X, b: a @ X @ b, lambda a, X, b: np.outer(a, b)),
    "a^T X^T b": ("a @ X.T @ b", "X",
                  lambda r: {"a": r.normal(size=4), "X": r.normal(size=(3, 4)),
                             "b": r.normal(size=3)},
                  lambda a, X, b: a @ X.T @ b, lambda a, X, b: np.outer(b, a)),
    "tr(AX)": ("trace(A @ X)", "X",
               lambda r: {"A": r.normal(size=(3, 3)), "X": r.normal(size=(3, 3))},
               lambda A, X: np.trace(A @ X), lambda A, X: A.T),
    "tr(X)": ("trace(X)", "X", lambda r: {"X": r.normal(size=(4, 4))},
              lambda X: np.trace(X), lambda X: np.eye(4)),
    "tr(X^T A X)": ("trace(X.T @ A @ X)", "X",
                    lambda r: {"A": r.normal(size=(3, 3)), "X": r.normal(size=(3, 2))},
                    lambda A, X: np.trace(X.T @ A @ X), lambda A, X: (A + A.T) @ X),
    "tr(X A X^T)": ("trace(X @ A @ transpose(X))", "X",
                    lambda r: {"A": r.normal(size=(2, 2)), "X": r.normal(size=(3, 2))},
                    lambda A, X: np.trace(X @ A @ X.T), lambda A, X: X @ (A + A.T)),
    "log det X": ("logdet(X)", "X", lambda r: {"X": _spd(3, r)},
                  lambda X: np.log(np.linalg.det(X)), lambda X: np.linalg.inv(X).T),
    "det X": ("det(X)", "X", lambda r: {"X": _well(3, r)},
              lambda X: np.linalg.det(X), lambda X: np.linalg.det(X) * np.linalg.inv(X).T),
    "tr(X^-1)": ("trace(inv(X))", "X", lambda r: {"X": _well(3, r)},
                 lambda X: np.trace(np.linalg.inv(X)),
                 lambda X: -np.linalg.matrix_power(np.linalg.inv(X), 2).T),
    "a^T X^-1 b": ("a @ inv(X) @ b", "X",
                   lambda r: {"a": r.normal(size=3), "X": _well(3, r), "b": r.normal(size=3)},
                   lambda a, X, b: a @ np.linalg.inv(X) @ b,
                   lambda a, X, b: -np.linalg.inv(X).T @ np.outer(a, b) @ np.linalg.inv(X).T),
    "x^T A x": ("x @ A @ x", "x",
                lambda r: {"x": r.normal(size=4), "A": r.normal(size=(4, 4))},
                lambda x, A: x @ A @ x, lambda x, A: (A + A.T) @ x),
    "x.T A x": ("x.T @ A @ x", "x",
                lambda r: {"x": r.normal(size=3), "A": r.normal(size=(3, 3))},
                lambda x, A: x @ A @ x, lambda x, A: (A + A.T) @ x),
    "||X||_F^2": ("norm(X)^2", "X", lambda r: {"X": r.normal(size=(3, 2))},
                  lambda X: np.sum(X**2), lambda X: 2 * X),
    "||X||_F": ("norm(X)", "X", lambda r: {"X": r.normal(size=(2, 3))},
                lambda X: np.linalg.norm(X), lambda X: X / np.linalg.norm(X)),
    "sum(X)": ("sum(X)", "X", lambda r: {"X": r.normal(size=(2, 3))},
               lambda X: np.sum(X), lambda X: np.ones((2, 3))),
    "||Ax - b||^2": ("norm(A @ x - b)^2", "x",
                     lambda r: {"A": r.normal(size=(4, 3)), "x": r.normal(size=3),
                                "b": r.normal(size=4)},
                     lambda A, x, b: np.sum((A @ x - b) ** 2),
                     lambda A, x, b: 2 * A.T @ (A @ x - b)),
    "b^T X^T X c": ("b @ X.T @ X @ c", "X",
                    lambda r: {"b": r.normal(size=2), "X": r.normal(size=(3, 2)),
                               "c": r.normal(size=2)},
                    lambda b, X, c: b @ X.T @ X @ c,
                    lambda b, X, c: X @ (np.outer(b, c) + np.outer(c, b))),
    "tr(A X^T)": ("trace(A @ X.T)", "X",
                  lambda r: {"A": r.normal(size=(3, 2)), "X": r.normal(size=(3, 2))},
                  lambda A, X: np.trace(A @ X.T), lambda A, X: A),
    "tr(X^2)": ("trace(X @ X)", "X", lambda r: {"X": r.normal(size=(3, 3))},
                lambda X: np.trace(X @ X), lambda X: 2 * X.T),
    "a^T x x^T b": ("sum(outer(x, x) * outer(a, b))", "x",
                    lambda r: {"a": r.normal(size=3), "b": r.normal(size=3),
                               "x": r.normal(size=3)},
                    lambda a, b, x: (a @ x) * (x @ b),
                    lambda a, b, x: np.outer(a, b) @ x + np.outer(b, a) @ x),
    "x^T solve(A, x)": ("x @ solve(A, x)", "x",
                        lambda r: {"A": _spd(3, r), "x": r.normal(size=3)},
                        lambda A, x: x @ np.linalg.solve(A, x),
                        lambda A, x: (np.linalg.inv(A) + np.linalg.inv(A).T) @ x),
}


@pytest.mark.parametrize("name", list(COOKBOOK))
def test_cookbook_gradient_against_closed_form_and_differences(run: Any, name: str) -> None:
    expression, wrt, make, f, closed = COOKBOOK[name]
    for salt in range(2):
        point = make(_rng(salt + 10 * list(COOKBOOK).index(name)))
        names = list(point)
        variables = {n: list(v.shape) for n, v in point.items()}
        answer = run(expression=expression, variables=variables,
                     at={n: v.tolist() for n, v in point.items()},
                     derivatives=["value", "gradient"])
        args = [point[n] for n in names]
        assert np.isclose(answer["value"], f(*args), rtol=1e-10, atol=1e-12)
        got = _grad(answer, wrt)
        want = closed(*args)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-10)

        def f_of(v: Arr, names: list[str] = names, args: list[Arr] = args) -> float:
            return float(f(*[v if n == wrt else a for n, a in zip(names, args, strict=True)]))

        np.testing.assert_allclose(got, _finite_differences(f_of, point[wrt]),
                                   rtol=1e-5, atol=1e-6)


def test_hessian_of_xtax_is_a_plus_at(run: Any) -> None:
    rng = _rng(99)
    a, x = rng.normal(size=(3, 3)), rng.normal(size=3)
    answer = run(expression="x @ A @ x", variables={"x": [3], "A": [3, 3]},
                 at={"x": x.tolist(), "A": a.tolist()}, derivatives=["hessian"])
    hessian = np.asarray(answer["hessian"])[:3, :3]  # x comes first: its block
    np.testing.assert_allclose(hessian, a + a.T, rtol=1e-12)


def test_hessian_of_trace_xtax_is_in_shape_plus_in_shape(run: Any) -> None:
    """JAX's convention: the Hessian of a scalar f of X has shape X.shape + X.shape; here
    d²tr(XᵀAX)/dX_ij dX_kl = (A + Aᵀ)_ik δ_jl."""
    rng = _rng(7)
    a, x = rng.normal(size=(3, 3)), rng.normal(size=(3, 2))
    answer = run(expression="trace(X.T @ A @ X)", variables={"X": [3, 2], "A": [3, 3]},
                 at={"X": x.tolist(), "A": a.tolist()}, derivatives=["hessian"])
    h = np.asarray(answer["hessian"])[:6, :6].reshape(3, 2, 3, 2)
    want = np.einsum("ik,jl->ijkl", a + a.T, np.eye(2))
    np.testing.assert_allclose(h, want, rtol=1e-12, atol=1e-14)


def test_coordinates_are_row_major_and_shapes_are_given(run: Any) -> None:
    answer = run(expression="sum(X * W)", variables={"X": [2, 3], "W": [2, 3]},
                 at={"X": [[1, 2, 3], [4, 5, 6]], "W": [[1, 0, 0], [0, 0, 2]]},
                 derivatives=["value", "gradient"])
    assert answer["coordinates"][:6] == ["X[0,0]", "X[0,1]", "X[0,2]",
                                         "X[1,0]", "X[1,1]", "X[1,2]"]
    assert answer["shapes"] == {"X": [2, 3], "W": [2, 3]}
    assert answer["value"] == 13.0
    assert list(answer["gradient"][:6]) == [1.0, 0.0, 0.0, 0.0, 0.0, 2.0]
    assert list(answer["gradient"][6:]) == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]


def test_shape_is_taken_from_the_point_without_variables(run: Any) -> None:
    answer = run(expression="det(X)", at={"X": [[1, 2], [3, 4]]})
    assert answer["shapes"] == {"X": [2, 2]}
    assert np.isclose(answer["value"], -2.0)
    np.testing.assert_allclose(answer["gradient"], [4, -3, -2, 1])


def test_matrix_valued_f_has_jacobian_out_shape_plus_n(run: Any) -> None:
    x = np.array([[1.0, 2.0], [3.0, 5.0]])
    answer = run(expression="X @ X", at={"X": x.tolist()}, derivatives=["value", "gradient"])
    np.testing.assert_allclose(answer["value"], x @ x)
    jac = np.asarray(answer["jacobian"])
    assert jac.shape == (2, 2, 4)
    # d(XX)_ij / dX_kl = δ_ik X_lj + X_ik δ_jl
    want = np.einsum("ik,lj->ijkl", np.eye(2), x) + np.einsum("ik,jl->ijkl", x, np.eye(2))
    np.testing.assert_allclose(jac.reshape(2, 2, 2, 2), want)


def test_batches_add_a_leading_axis(run: Any) -> None:
    xs = [np.array([[2.0, 1.0], [1.0, 3.0]]), np.array([[4.0, 0.0], [0.0, 0.5]])]
    answer = run(expression="logdet(X)", points=[{"X": x.tolist()} for x in xs],
                 derivatives=["value", "gradient"])
    assert np.asarray(answer["gradient"]).shape == (2, 4)
    for i, x in enumerate(xs):
        assert np.isclose(answer["value"][i], np.log(np.linalg.det(x)))
        np.testing.assert_allclose(answer["gradient"][i], np.linalg.inv(x).T.reshape(-1))
    columns = run(expression="logdet(X)", points={"X": [x.tolist() for x in xs]},
                  derivatives=["value"])
    np.testing.assert_allclose(columns["value"], answer["value"])


@pytest.mark.parametrize(("expression", "want"), [
    ("X[1, 2]", 6.0), ("X[-1, 0]", 4.0), ("sum(X[0, :])", 6.0), ("sum(X[:, 1])", 7.0),
    ("sum(X[1])", 15.0), ("sum(X[0:1, 1:])", 5.0), ("sum(X[:, ::2])", 14.0),
    ("sum(X, 0)[2]", 9.0), ("sum(X, 1)[1]", 15.0),
    ("mean(X)", 3.5), ("mean(X, -1)[0]", 2.0), ("sum(diag(X.T @ X))", 91.0),
    ("trace(outer(X[0], X[1]))", 32.0), ("sum(X + X[0])", 33.0),
    ("sum(eye(3) @ X.T)", 21.0), ("sum(2 * X / 2)", 21.0), ("sum(sin(X) ** 2 + cos(X) ** 2)", 6.0),
    ("X.T[2, 1]", 6.0), ("norm(X[0])", float(np.sqrt(14))), ("sum(X @ X.T[:, 0])", 46.0),
])
def test_operations_match_numpy(run: Any, expression: str, want: float) -> None:
    answer = run(expression=expression, variables={"X": [2, 3]},
                 at={"X": [[1, 2, 3], [4, 5, 6]]}, derivatives=["value"])
    assert np.isclose(answer["value"], want, rtol=1e-12), answer["value"]


def _build(text: str, variables: dict[str, list[int]]) -> Any:
    spec = CompileSpec((text,), False, tuple((n, tuple(s)) for n, s in variables.items()),
                       (), ("value",), None, 1)
    return build_program(spec, Limits())


@pytest.mark.parametrize(("expression", "words"), [
    ("A @ B", ["@", "position 2", "2x3 matrix", "2x3 matrix", "[2, 3] and [2, 3]"]),
    ("A + B.T", ["shapes [2, 3] and [3, 2]", "position 0", "broadcast"]),
    ("det(A)", ["det", "square matrix", "2x3"]),
    ("inv(A)", ["square"]),
    ("solve(C, x)", ["solve", "3 rows", "vector of length 4"]),
    ("A @ 2", ["@", "a scalar"]),
    ("trace(x)", ["trace", "needs a matrix"]),
    ("dot(A, A)", ["dot"]),
    ("A[2, 0]", ["Index 2", "axis 0"]),
    ("A[0, 0, 0]", ["3 indices"]),
    ("outer(A, x)", ["outer", "two vectors"]),
    ("max(A)", ["takes a vector", "[2, 3]"]),
    ("sum(A, 2)", ["axis 2"]),
    ("eye(0)", ["eye", "constant integer"]),
])
def test_shape_mismatches_say_which_shapes_met_and_where(expression: str,
                                                         words: list[str]) -> None:
    with pytest.raises(NablaError) as caught:
        _build(expression, {"A": [2, 3], "B": [2, 3], "C": [3, 3], "x": [4]})
    assert 400 <= caught.value.status < 500
    for word in words:
        assert word in caught.value.detail, (word, caught.value.detail)


def test_broadcasting_follows_numpy() -> None:
    assert _build("A + x", {"A": [2, 3], "x": [3]}).out_shape == (2, 3)
    assert _build("A * 2 + 1", {"A": [2, 3]}).out_shape == (2, 3)
    with pytest.raises(ShapeError):
        _build("A + x", {"A": [2, 3], "x": [2]})
    with pytest.raises(ShapeError, match="same length"):  # vectors: as before
        _build("x + y", {"x": [2], "y": [3]})


def test_singular_matrices_are_reported_non_finite_not_errors(run: Any) -> None:
    answer = run(expression="sum(inv(X))", at={"X": [[1, 2], [2, 4]]},
                 derivatives=["value", "gradient"])
    assert answer["nonfinite"], answer  # inf or NaN, reported where, never a 500
    logdet = run(expression="logdet(X)", at={"X": [[1, 2], [2, 1]]}, derivatives=["value"])
    assert logdet["value"] is None or np.isnan(logdet["value"])  # det = -3: NaN


def test_the_first_tier_declines_matrix_programs() -> None:
    from app.engine.first_tier import program_interpretable

    assert program_interpretable(_build("sum(X)", {"X": [2, 2]})) == 0
    assert program_interpretable(_build("sum(x * x)", {"x": [2]})) > 0


def test_catalog_describes_matrix_shapes() -> None:
    assert matrices.describe(()) == "a scalar"
    assert matrices.describe((3,)) == "a vector of length 3"
    assert matrices.describe((2, 3)) == "a 2x3 matrix"


def test_symbolic_and_explain_of_matrix_programs_answer_without_error(run: Any) -> None:
    answer = run(expression="logdet(X)", at={"X": [[2, 1], [1, 3]]},
                 derivatives=["value", "symbolic", "explain"])
    assert "matrices" in answer["symbolic"]["skipped"]
    ops = {node["op"] for node in answer["graph"]["nodes"]}
    assert "logdet" in ops
    vector = run(expression="sum(outer(x, x))", at={"x": [1, 2]}, derivatives=["symbolic"])
    assert "skipped" in vector["symbolic"]


@pytest.mark.parametrize(("expression", "variables"), [
    ("sum(outer(x, x))", {"x": [100_000]}),
    ("sum(X[:, 0:1] + X[0])", {"X": [3000, 3000]}),
    ("sum(X @ X)", {"X": [1500, 1500]}),
    ("sum(diag(x))", {"x": [3000]}),
])
def test_arrays_made_inside_an_expression_are_bounded(expression: str,
                                                      variables: dict[str, list[int]]) -> None:
    spec = CompileSpec((expression,), False, tuple((n, tuple(s)) for n, s in variables.items()),
                       (), ("value",), None, 1)
    with pytest.raises(ShapeError, match="more than"):
        build_program(spec, Limits(max_coordinates=10_000_000))


@pytest.mark.parametrize(("expression", "variables", "want"), [
    ("2*dot(x, x)", {"x": [4]}, {"x": "4*x"}),
    ("x @ A @ x", {"x": [3], "A": [3, 3]}, {"x": "A @ x + A.T @ x"}),
    ("trace(X.T @ A @ X)", {"X": [3, 2], "A": [3, 3]}, {"X": "A @ X + A.T @ X"}),
    ("trace(A @ X)", {"A": [2, 2], "X": [2, 2]}, {"X": "A.T"}),
    ("a @ X @ b", {"a": [2], "X": [2, 3], "b": [3]}, {"X": "outer(a, b.T)"}),
])
def test_by_variable_formulas_post_back_to_the_numeric_gradient(
        run: Any, expression: str, variables: dict[str, list[int]], want: dict[str, str]) -> None:
    """Each formula, posted back as an expression, evaluates to the variable's shape and to
    the gradient that nabla computes numerically (and to the closed form written here)."""
    rng = _rng(5)
    point = {}
    for name, shape in variables.items():
        value = rng.normal(size=shape)
        point[name] = value.tolist()
    answer = run(expression=expression, variables=variables, at=point,
                 derivatives=["gradient", "symbolic"])
    formulas = answer["symbolic"]["by_variable"]
    for name, text in want.items():
        assert formulas[name] == text
        back = run(expression=text, variables=variables, at=point, derivatives=["value"])
        value = np.asarray(back["value"])
        assert list(value.shape) == variables[name]
        np.testing.assert_allclose(value, _grad(answer, name), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("expression", "variables", "want"), [
    ("2*dot(x, x)", {"x": [4]}, {"x": "4 x"}),
    ("x @ A @ x", {"x": [3], "A": [3, 3]}, {"x": "A x + {A}^{\\top} x"}),
    ("a @ X @ b", {"a": [2], "X": [2, 3], "b": [3]}, {"X": "a {b}^{\\top}"}),
    ("trace(inv(X))", {"X": [3, 3]}, {"X": "- {\\left({X}^{\\top}\\right)}^{-1} "
                                            "{\\left({X}^{\\top}\\right)}^{-1}"}),
])
def test_by_variable_formulas_in_latex(run: Any, expression: str,
                                       variables: dict[str, list[int]],
                                       want: dict[str, str]) -> None:
    point = {name: (_spd(shape[0], _rng(7)) if len(shape) == 2 and shape[0] == shape[1]
                    else _rng(7).normal(size=shape)).tolist()
             for name, shape in variables.items()}
    answer = run(expression=expression, variables=variables, at=point,
                 derivatives=["gradient", "symbolic"])
    latex = answer["symbolic"]["latex"]["by_variable"]
    for name, text in want.items():
        assert latex[name] == text


@pytest.mark.parametrize(("expression", "variables"), [
    ("logdet(X)", {"X": [3, 3]}),  # SymPy: diff(log(Determinant(X)), X) = 0, not X^-T
    ("sin(trace(X))", {"X": [2, 2]}),  # SymPy: 0
])
def test_wrong_sympy_matrix_derivatives_come_back_skipped_not_zero(
        run: Any, expression: str, variables: dict[str, list[int]]) -> None:
    at = {"X": (_spd(variables["X"][0], _rng(3))).tolist()}
    answer = run(expression=expression, variables=variables, at=at,
                 derivatives=["gradient", "symbolic"])
    assert not np.allclose(answer["gradient"], 0)
    skipped = answer["symbolic"]["by_variable"]["X"]
    assert isinstance(skipped, dict) and "disagrees" in skipped["skipped"]


def test_sympy_gives_zero_for_xtax_as_an_entry_so_the_check_is_needed() -> None:
    """The issue's second wrong result: diff((x.T*A*x)[0, 0], x) is 0 in our SymPy. nabla's
    answer is A @ x + A.T @ x (above), because it never takes the [0, 0] entry, and checks."""
    import sympy

    x, a = sympy.MatrixSymbol("x", 3, 1), sympy.MatrixSymbol("A", 3, 3)
    wrong = sympy.diff((x.T * a * x)[0, 0], x)
    assert wrong == 0 or isinstance(wrong, sympy.ZeroMatrix)  # fixed SymPy: this fails


def test_jvp_and_vjp_take_tangents_and_cotangents_shaped_like_inputs_and_outputs(
        run: Any) -> None:
    rng = _rng(11)
    x, t, c = rng.normal(size=(2, 2)), rng.normal(size=(2, 2)), rng.normal(size=(2, 2))
    answer = run(expression="X @ X", at={"X": x.tolist()}, derivatives=["jvp", "vjp"],
                 tangent={"X": t.tolist()}, cotangent=c.tolist())
    np.testing.assert_allclose(answer["jvp"], t @ x + x @ t, rtol=1e-12)  # d(XX) = dX X + X dX
    np.testing.assert_allclose(np.reshape(answer["vjp"], (2, 2)), c @ x.T + x.T @ c,
                               rtol=1e-12)
    flat = run(expression="X @ X", at={"X": x.tolist()}, derivatives=["jvp", "vjp"],
               tangent=t.reshape(-1).tolist(), cotangent=c.reshape(-1).tolist())
    np.testing.assert_allclose(flat["jvp"], answer["jvp"])
    np.testing.assert_allclose(flat["vjp"], answer["vjp"])


@pytest.mark.parametrize("extra", [
    {"tangent": {"X": [[1, 2]]}, "derivatives": ["jvp"]},
    {"tangent": {"Y": [[1, 2], [3, 4]]}, "derivatives": ["jvp"]},
    {"cotangent": [[1, 2, 3, 4]], "derivatives": ["vjp"]},
    {"cotangent": [[1, 2], [3]], "derivatives": ["vjp"]},
])
def test_misshapen_tangents_are_refused(run: Any, extra: dict[str, Any]) -> None:
    import pydantic

    with pytest.raises((NablaError, pydantic.ValidationError)) as caught:
        run(expression="X @ X", at={"X": [[1, 2], [3, 4]]}, **extra)
    if isinstance(caught.value, NablaError):
        assert caught.value.status == 422


def test_the_worked_example_of_the_contract(run: Any) -> None:
    """docs/api-v1.md, Matrices: d log det X / dX = inv(X).T, with the numbers it shows."""
    answer = run(expression="logdet(X)", variables={"X": [2, 2]}, at={"X": [[2, 1], [1, 3]]},
                 derivatives=["value", "gradient"])
    assert answer["coordinates"] == ["X[0,0]", "X[0,1]", "X[1,0]", "X[1,1]"]
    assert answer["shapes"] == {"X": [2, 2]}
    assert answer["value"] == np.log(5.0)
    np.testing.assert_allclose(np.reshape(answer["gradient"], (2, 2)),
                               np.linalg.inv([[2.0, 1.0], [1.0, 3.0]]).T, rtol=1e-15)
    doc = (Path(__file__).parents[1] / "docs" / "api-v1.md").read_text(encoding="utf-8")
    assert '"gradient": [0.6000000000000001, -0.2, -0.2, 0.4]' in doc
    assert list(answer["gradient"]) == [0.6000000000000001, -0.2, -0.2, 0.4]


def test_messagepack_carries_matrices_both_ways(
        event_loop_thread: asyncio.AbstractEventLoop) -> None:
    app = InProcess(event_loop_thread)
    try:
        body = {"expression": "X @ X", "at": {"X": [[1.0, 2.0], [3.0, 5.0]]},
                "derivatives": ["value", "gradient"]}
        response = app.request("POST", "/v1/differentiate", content=ormsgpack.packb(body),
                               headers={"content-type": "application/msgpack",
                                        "accept": "application/msgpack"})
        assert response.status_code == 200, response.content
        answer = ormsgpack.unpackb(response.content)
        assert answer["shapes"] == {"X": [2, 2]}
        np.testing.assert_allclose(np.asarray(answer["value"]).reshape(2, 2),
                                   [[7.0, 12.0], [18.0, 31.0]])
        ragged = dict(body, at={"X": [[1.0, 2.0], [3.0]]})
        refused = app.request("POST", "/v1/differentiate", content=ormsgpack.packb(ragged),
                              headers={"content-type": "application/msgpack"})
        assert refused.status_code == 422
        assert refused.headers["content-type"] == "application/problem+json"
    finally:
        app.close()


@pytest.mark.parametrize(("expression", "variables", "want"), [
    ("sum(sin(x))", {"x": [3]}, {"x": "cos(x)"}),
    ("sum(x)", {"x": [3]}, {"x": "1 + 0*x"}),
    ("x*exp(y)", {"x": [], "y": []}, {"x": "exp(y)", "y": "x*exp(y)"}),
])
def test_by_variable_from_components_where_sympy_has_no_matrix_form(
        run: Any, expression: str, variables: dict[str, list[int]], want: dict[str, str]) -> None:
    point = {n: (np.arange(1, 1 + s[0]) / 4).tolist() if s else 0.5
             for n, s in variables.items()}
    answer = run(expression=expression, variables=variables, at=point,
                 derivatives=["gradient", "symbolic"])
    assert answer["symbolic"]["by_variable"] == want
    for name, text in want.items():
        back = run(expression=text, variables=variables, at=point, derivatives=["value"])
        np.testing.assert_allclose(back["value"], _grad(answer, name), rtol=1e-12)


def test_matrices_side_by_side_are_ambiguous_and_the_superscript_t_transposes() -> None:
    with pytest.raises(NablaError) as caught:
        _build("trace(Xᵀ A X)", {"X": [2, 2], "A": [2, 2]})
    assert caught.value.code == "ambiguous" and "@" in caught.value.detail
    assert caught.value.position == 6
    typed = _build("trace(Xᵀ @ A @ X)", {"X": [2, 2], "A": [2, 2]}).exprs[0]
    assert typed == _build("trace(X.T @ A @ X)", {"X": [2, 2], "A": [2, 2]}).exprs[0]
    assert _build("2X", {"X": [2, 2]}).out_shape == (2, 2)  # a scalar beside: a product


def test_a_grid_over_a_matrix_variable_is_refused_with_its_shape(run: Any) -> None:
    with pytest.raises(ShapeError, match=r"a matrix of shape \[2, 2\]"):
        run(expression="det(X)", variables={"X": [2, 2]},
            grid={"X": {"start": 0, "stop": 1, "num": 2}})
