"""No input gives a 5xx: generated bodies, sent to the whole app in process, are answered
200 or with a 4xx problem (503 only with Retry-After, when it is honest about capacity).

The bodies are built from the grammar's tokens and the catalog's names, the request
schema's shapes (``at``, both forms of ``points``, ``grid``, ``variables``, the products'
vectors), integers at the edges of 64 bits and beyond, deep nesting of JSON, and both
transports. Hypothesis is derandomized, so a failure replays.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import ormsgpack
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from app.language.catalog import FUNCTION_NAMES, lookup
from tests.inprocess import InProcess

TOKENS = ["x", "y", "v", "t", "0", "1", "2.5", "1e308", "1e-320", ".5", "pi", "e", "+", "-",
          "*", "/", "**", "^", "(", ")", ",", "[", "]", ":", "<", "<=", "==", "!=", ">",
          "and", "or", "not", " ", "|", "%", "\u00b2", "\u207b\u00b9", "\u03c0", "\u03b8",
          "\u221a", "\u221b", "\u00b7", "\u00d7", "\u00f7", "\u2212", "\uff12", "sin^2",
          "2x", "x y", "@", ".T", "x.T", "[0, 1]", "[:, 0]", *sorted(FUNCTION_NAMES)]
NAMES = ["x", "y", "v", "t", "pi", "sin", "", "x" * 70, "é", "_x", "and"]
EXTREME_INTEGERS = [0, 1, -1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**63 + 1, 2**64 - 1, 2**64,
                    -2**63, -2**63 - 1, -2**64, 10**30, 10**400, -10**400]
EDGE_FLOATS = [0.0, -0.0, 5e-324, 1e-310, 2.2250738585072014e-308, 1e-300, 1.0, -1.0, 0.5,
               1e300, 1e308, -1.7976931348623157e308, 3.141592653589793]
DERIVATIVES = ["value", "gradient", "hessian", "jvp", "vjp", "symbolic", "explain"]
# each function with its least and its greatest arity (3 for variadic ones): log(x, b) too
ARITIES = {name: sorted({lookup(name).arity[0], lookup(name).arity[1] or 3})
           for name in FUNCTION_NAMES}

integers = st.one_of(st.sampled_from(EXTREME_INTEGERS), st.integers(-5, 5))
floats = st.one_of(st.sampled_from(EDGE_FLOATS), st.floats(allow_nan=False,
                                                           allow_infinity=False))
numbers = st.one_of(integers, floats, st.booleans())
scalars = st.one_of(numbers, st.none(), st.text(max_size=5))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4), max_leaves=12)
leaves = st.one_of(st.sampled_from(["x", "y", "x", "y", "0", "1", "2.5", "1e10", "1e-320",
                                    "1e20", "1e300", "pi", "e"]),
                   st.sampled_from([repr(f) for f in EDGE_FLOATS if f >= 0]))


def _grow(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    call = st.sampled_from(sorted(ARITIES)).flatmap(
        lambda name: st.sampled_from(ARITIES[name]).flatmap(
            lambda arity: st.lists(inner, min_size=arity, max_size=arity).map(
                lambda args: f"{name}({', '.join(args)})")))
    binary = st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "^", "<", "==", "", "%",
                                               "\u00b7"]), inner).map(
        lambda t: f"({t[0]} {t[1]} {t[2]})")
    bars = inner.map(lambda t: f"|{t}|")
    applied = st.tuples(st.sampled_from(sorted(ARITIES)), inner).map(lambda t: f"{t[0]} {t[1]}")
    return st.one_of(call, binary, bars, applied, inner.map(lambda t: f"-{t}"))


trees = st.recursive(leaves, _grow, max_leaves=8)
expressions = st.one_of(
    trees, trees, trees,
    st.lists(st.sampled_from(TOKENS), min_size=1, max_size=12).map(" ".join),
    st.text(max_size=20))
PLACEHOLDER = "@deep@"  # where the encoded body gets its deeply nested value


@st.composite
def deeply_nested(draw: st.DrawFn) -> tuple[str, int]:
    """A list or an object nested far deeper than any request needs (spliced into the
    encoded body, since neither encoder nor Hypothesis's printer recurses that deep)."""
    return draw(st.sampled_from(["list", "dict"])), draw(st.sampled_from([50, 300, 3000]))


def nested_bytes(kind: str, depth: int, msgpack: bool) -> bytes:
    if msgpack:
        return (b"\x91" if kind == "list" else b"\x81\xa1x") * depth + b"\x01"
    if kind == "list":
        return b"[" * depth + b"1" + b"]" * depth
    return b'{"x": ' * depth + b"1" + b"}" * depth


@st.composite
def well_formed(draw: st.DrawFn) -> dict[str, Any]:
    """A body that passes the schema: the scalars x and y that the expression uses (or
    both, declared), at one point, a batch or a grid."""
    expression = draw(st.one_of(expressions, st.lists(trees, min_size=1, max_size=3)))
    body: dict[str, Any] = {"expression": expression, "derivatives": draw(st.lists(
        st.sampled_from(DERIVATIVES[:5]), min_size=1, max_size=3, unique=True))}
    names = sorted(set(re.findall(r"\b[xy]\b", " ".join(expression))))
    if draw(st.booleans()):
        names = ["x", "y"]
        body["variables"] = {n: [] for n in names}
    elif draw(st.booleans()):
        body["variables"] = {n: [] for n in names}
    where = draw(st.sampled_from(["at", "rows", "columns", "grid"]))
    count = draw(st.integers(1, 3))
    if where == "at":
        body["at"] = {n: draw(floats) for n in names}
        body["derivatives"] += draw(st.sampled_from([[], ["symbolic"], ["explain"]]))
    elif where == "rows":
        body["points"] = [{n: draw(floats) for n in names} for _ in range(count)]
    elif where == "columns":
        body["points"] = {n: [draw(floats) for _ in range(count)] for n in names}
    else:
        body["grid"] = {n: {"start": draw(floats), "stop": draw(floats),
                            "num": draw(st.integers(1, 3))} for n in names}
    if "jvp" in body["derivatives"]:
        body["tangent"] = draw(st.lists(floats, min_size=1, max_size=3))
    if "vjp" in body["derivatives"] and draw(st.booleans()):
        body["cotangent"] = draw(st.one_of(floats, st.lists(floats, max_size=3)))
    body.update(draw(past_the_hessian(names, where)))
    return body


@st.composite
def past_the_hessian(draw: st.DrawFn, names: list[str], where: str) -> dict[str, Any]:
    """Often nothing; else an order, a direction, partials, a Taylor polynomial or a
    check, shaped as the schema says (issue 12)."""
    extra: dict[str, Any] = {}
    small = st.one_of(st.integers(0, 6), integers)
    if draw(st.integers(0, 3)) == 0:
        extra["order"] = draw(small)
    if draw(st.integers(0, 4)) == 0:
        extra["direction"] = {n: draw(floats) for n in names}
        extra.setdefault("order", draw(st.integers(1, 5)))
    if draw(st.integers(0, 4)) == 0:
        extra["partials"] = draw(st.lists(st.dictionaries(
            st.sampled_from([*names, "x", "z", "x[0]"]), st.integers(0, 4), max_size=2),
            min_size=1, max_size=3))
    if where == "at" and draw(st.integers(0, 4)) == 0:
        extra["taylor"] = {"order": draw(small)}
        if draw(st.booleans()):
            extra["taylor"]["remainder_at"] = {n: draw(floats) for n in names}
    if where in ("at", "rows") and draw(st.integers(0, 5)) == 0:
        extra["check"] = draw(st.one_of(st.just({}), st.fixed_dictionaries(
            {"gradient": st.lists(expressions, min_size=1, max_size=3)})))
    return extra


@st.composite
def bodies(draw: st.DrawFn) -> dict[str, Any]:
    """A well-formed body, then a few of its fields replaced by the schema's other shapes
    and edge values, or by anything at all."""
    body = draw(well_formed())
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True))
    names_or_xy = st.sampled_from(["x", "y", *names])
    axis = st.fixed_dictionaries({"start": numbers, "stop": numbers, "num": integers})
    sizes = st.lists(st.one_of(st.just([]), st.lists(integers, min_size=1, max_size=2)),
                     min_size=2, max_size=2)
    mutations = {
        "expression": st.one_of(expressions, numbers, st.none(), st.lists(expressions)),
        "variables": st.one_of(sizes.map(lambda s: dict(zip(["x", "y"], s, strict=True))),
                               st.dictionaries(names_or_xy, st.lists(integers, max_size=2),
                                               max_size=3)),
        "at": st.dictionaries(names_or_xy, values, max_size=3),
        "points": st.one_of(st.lists(st.dictionaries(names_or_xy, values, max_size=3),
                                     max_size=3),
                            st.dictionaries(names_or_xy, st.lists(values, max_size=4),
                                            max_size=3)),
        "grid": st.dictionaries(names_or_xy, axis, max_size=3),
        "derivatives": st.lists(st.sampled_from([*DERIVATIVES, "laplacian", ""]), max_size=4),
        "tangent": st.lists(numbers, max_size=4),
        "cotangent": st.one_of(numbers, st.lists(numbers, max_size=3)),
        "order": st.one_of(integers, numbers, st.none()),
        "direction": st.one_of(st.dictionaries(names_or_xy, values, max_size=3), values),
        "partials": st.one_of(st.lists(st.dictionaries(names_or_xy, integers, max_size=3),
                                       max_size=3), values),
        "taylor": st.one_of(st.fixed_dictionaries({"order": integers}), values,
                            st.fixed_dictionaries({"order": integers, "remainder_at":
                                                   st.dictionaries(names_or_xy, values)})),
        "check": st.one_of(st.just({}), values, st.fixed_dictionaries(
            {"gradient": st.lists(expressions, max_size=3)}),
            st.fixed_dictionaries({"tolerance": numbers})),
        "extra": values,
    }
    changed = draw(st.sampled_from([0, 0, 1, 1, 1, 2]))
    for key in draw(st.lists(st.sampled_from(sorted(mutations)), min_size=changed,
                             max_size=changed, unique=True)):
        if key in ("at", "points", "grid") and draw(st.booleans()):
            for other in ("at", "points", "grid"):  # the new one stands alone
                body.pop(other, None)
        body[key] = draw(mutations[key])
    if draw(st.integers(0, 3)) == 0:
        deep = st.sampled_from(["at", "at", "variables", "points", "deep"])
        body[draw(deep)] = PLACEHOLDER if draw(st.booleans()) else {names[0]: PLACEHOLDER}
    return body


def encode(body: dict[str, Any], how: str, deep: tuple[str, int]) -> tuple[bytes, str]:
    """The body as JSON, MessagePack (when it can carry it), or JSON cut short; any
    placeholder replaced by the deeply nested value ``deep``."""
    if how == "msgpack":
        try:
            packed = ormsgpack.packb(body)
        except (TypeError, OverflowError, ormsgpack.MsgpackEncodeError):
            pass  # integers past 64 bits: send JSON instead
        else:
            placeholder = ormsgpack.packb(PLACEHOLDER)
            return (packed.replace(placeholder, nested_bytes(*deep, msgpack=True)),
                    "application/msgpack")
    text = json.dumps(body).encode().replace(json.dumps(PLACEHOLDER).encode(),
                                             nested_bytes(*deep, msgpack=False))
    if how == "cut":
        return text[: len(text) // 2], "application/json"
    return text, "application/json"


@pytest.fixture(scope="module")
def nabla(event_loop_thread: asyncio.AbstractEventLoop) -> Iterator[InProcess]:
    app = InProcess(event_loop_thread)
    yield app
    app.close()


def assert_not_a_server_error(response: Any) -> None:
    status = response.status_code
    if status == 200:
        return
    assert response.headers["content-type"] == "application/problem+json", response.text
    assert status < 500 or (status == 503 and "retry-after" in response.headers), \
        response.text
    assert response.json()["status"] == status


# HUNT=N runs N examples from a random seed (pass --hypothesis-seed to replay); the suite runs
# its fixed examples
HUNT = int(os.environ.get("HUNT", "0"))
PROPERTY = settings(max_examples=HUNT or 400, derandomize=not HUNT, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


@settings(PROPERTY, max_examples=HUNT or 1000)
@given(body=bodies(), how=st.sampled_from(["json", "json", "json", "msgpack", "msgpack", "cut"]),
       deep=deeply_nested())
def test_no_body_gets_a_server_error(nabla: InProcess, body: dict[str, Any], how: str,
                                     deep: tuple[str, int]) -> None:
    content, media = encode(body, how, deep)
    note(f"{media}: {content[:2000]!r}")
    assert_not_a_server_error(nabla.post(content, media))


MATRIX_LEAVES = ["X", "X", "Y", "v", "X.T", "X[0, 0]", "X[0]", "X[:, 1]", "X[1:, :]",
                 "eye(2)", "2", "0.5", "1e30", "v[-1]"]
MATRIX_OPS = ["@", "*", "+", "-", "/", "**", ">"]
MATRIX_CALLS = ["det", "logdet", "inv", "trace", "transpose", "diag", "sum", "mean", "norm",
                "exp", "sin", "abs", "max", "dot", "outer", "solve", "eye", "sum({}, 0)",
                "sum({}, 5)", "mean({}, -1)", "where({} > 0, X, 0)"]


def _matrix_grow(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    def call(name: str, args: list[str]) -> str:
        return name.format(args[0]) if "{}" in name else f"{name}({', '.join(args)})"
    calls = st.tuples(st.sampled_from(MATRIX_CALLS), st.lists(inner, min_size=1, max_size=2))
    binary = st.tuples(inner, st.sampled_from(MATRIX_OPS), inner).map(
        lambda t: f"({t[0]} {t[1]} {t[2]})")
    return st.one_of(calls.map(lambda t: call(*t)), binary, inner.map(lambda t: f"({t}).T"),
                     inner.map(lambda t: f"({t})[0, :]"))


matrix_trees = st.recursive(st.sampled_from(MATRIX_LEAVES), _matrix_grow, max_leaves=6)
rows = st.lists(st.lists(floats, min_size=1, max_size=3), min_size=1, max_size=3)


@st.composite
def matrix_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """Matrix variables (issue 13): shapes [m, n] declared or not, values as nested lists
    (often of the wrong shape, or ragged), in 'at' or 'points', with products' vectors."""
    m, n = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    shapes = {"X": [m, n], "Y": draw(st.sampled_from([[n, m], [m, n], [2, 2], [n]])),
              "v": [draw(st.integers(1, 3))]}
    body: dict[str, Any] = {"expression": draw(matrix_trees), "derivatives": draw(st.lists(
        st.sampled_from(DERIVATIVES), min_size=1, max_size=3, unique=True))}
    used = set(re.findall(r"\b[XYv]\b", body["expression"]))
    shapes = {k: s for k, s in shapes.items() if k in used or draw(st.integers(0, 19)) == 0}
    if draw(st.booleans()):
        body["variables"] = shapes

    def value(shape: list[int]) -> Any:
        if draw(st.integers(0, 4)) == 0:
            return draw(st.one_of(rows, values))
        return np.round(np.asarray(draw(st.lists(
            floats.filter(lambda f: abs(f) < 1e6), min_size=max(1, int(np.prod(shape))),
            max_size=max(1, int(np.prod(shape)))))).reshape(shape), 3).tolist()
    if draw(st.booleans()):
        body["at"] = {k: value(s) for k, s in shapes.items()}
    else:
        body["points"] = [{k: value(s) for k, s in shapes.items()}
                          for _ in range(draw(st.integers(1, 2)))]
        body["derivatives"] = [d for d in body["derivatives"] if d != "explain"] or ["value"]
    if "jvp" in body["derivatives"]:
        body["tangent"] = draw(st.lists(floats, min_size=1, max_size=12))
    if "vjp" in body["derivatives"] and draw(st.booleans()):
        body["cotangent"] = draw(st.one_of(floats, st.lists(floats, max_size=9)))
    return body


@settings(PROPERTY, max_examples=HUNT or 300)
@given(body=matrix_bodies(), how=st.sampled_from(["json", "msgpack"]))
def test_no_matrix_body_gets_a_server_error(nabla: InProcess, body: dict[str, Any],
                                            how: str) -> None:
    content, media = encode(body, how, ("list", 1))
    note(f"{media}: {content[:2000]!r}")
    assert_not_a_server_error(nabla.post(content, media))


@PROPERTY
@given(expression=expressions, start=floats,
       span=st.one_of(st.sampled_from([1.0, 1e-300, 1e300]), floats, numbers),
       num=st.one_of(st.integers(2, 40), integers),
       variable=st.one_of(st.none(), st.none(), st.sampled_from(NAMES)),
       order=st.one_of(st.integers(1, 5), integers),
       taylor=st.one_of(st.none(), st.none(), st.tuples(floats, st.one_of(st.none(),
                                                                         st.integers(0, 4),
                                                                         integers))))
def test_no_plot_gets_a_server_error(nabla: InProcess, expression: str, start: float,
                                     span: Any, num: int, variable: str | None,
                                     order: int, taylor: Any) -> None:
    stop = start + span if isinstance(span, float) else span
    params = {"expression": expression, "start": start, "stop": stop, "num": num,
              "order": order, **({"variable": variable} if variable is not None else {})}
    if taylor is not None:
        params["taylor_at"] = taylor[0]
        if taylor[1] is not None:
            params["taylor_order"] = taylor[1]
    assert_not_a_server_error(nabla.request("GET", "/v1/plot", params=params))


@pytest.mark.parametrize("params", [
    {"expression": "x", "start": 0, "stop": 1.7976931348623157e308, "num": 4},
    {"expression": "1e300 + 0*x", "start": 0, "stop": 1, "num": 3},
    {"expression": "x", "start": -8e307, "stop": 8.9e307, "num": 7},
], ids=str)
def test_plots_at_the_edges_of_float64_are_drawn(nabla: InProcess,
                                                 params: dict[str, Any]) -> None:
    """Found by the property test: np.linspace overflowed, and a flat curve of 1e300 divided
    by a span of 0."""
    response = nabla.request("GET", "/v1/plot", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("image/svg+xml")


equations = st.one_of(
    st.tuples(expressions, expressions).map(lambda t: f"{t[0]} = {t[1]}"),
    expressions, st.text(max_size=20),
    st.lists(st.sampled_from([*TOKENS, "=", "="]), min_size=1, max_size=12).map(" ".join))


@PROPERTY
@given(equation=equations, dependent=st.one_of(st.sampled_from(["x", "y", "z"]), st.text(
           max_size=3), integers),
       at=st.one_of(st.fixed_dictionaries({"x": floats, "y": floats}),
                    st.dictionaries(st.sampled_from(NAMES), values, max_size=3)),
       order=st.one_of(st.integers(1, 4), integers, numbers),
       tolerance=st.one_of(st.just(1e-9), numbers), symbolic=st.booleans())
def test_no_implicit_request_gets_a_server_error(nabla: InProcess, equation: str,
                                                 dependent: Any, at: Any, order: Any,
                                                 tolerance: Any, symbolic: bool) -> None:
    body = {"equation": equation, "dependent": dependent, "at": at, "order": order,
            "tolerance": tolerance, "symbolic": symbolic}
    note(json.dumps(body, default=str)[:2000])
    try:
        content = json.dumps(body).encode()
    except ValueError:
        return
    response = nabla.request("POST", "/v1/implicit", content=content,
                             headers={"content-type": "application/json"})
    assert_not_a_server_error(response)
