"""``explain``: the graph's adjoints agree with the gradient, and the cost is ordered."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

CASES = [
    ("x * exp(x) + sin(x)", {"x": 1.0}),
    ("sin(x*y) + (x*y)^2 + sqrt(x*y)", {"x": 0.7, "y": 1.3}),
    ("2*dot(x, x) + sum(sin(x)) * x[0]", {"x": [0.5, -1.0, 2.0]}),
    ("where(x > 0, sqrt(x), x^2) + max(x, y)", {"x": -1.5, "y": -2.0}),
    ("piecewise((log(x), x > 1), (x^3 * y, True))", {"x": 0.5, "y": 3.0}),
    ("norm(v[1:]) * w + relu(w)", {"v": [1.0, 2.0, -2.0], "w": 0.25}),
]


@pytest.mark.parametrize("expression, point", CASES, ids=[c[0] for c in CASES])
def test_adjoints_of_the_variables_are_the_gradient(run: Any, expression: str,
                                                    point: Any) -> None:
    body = run(expression=expression, at=point,
               derivatives=["value", "gradient", "explain"])
    graph = body["graph"]
    nodes = graph["nodes"]
    assert [node["id"] for node in nodes] == list(range(len(nodes)))
    output = nodes[graph["output"]]
    assert output["adjoint"] == 1.0
    assert output["value"] == pytest.approx(body["value"], rel=1e-14)
    for node in nodes:
        assert all(i < node["id"] for i in node["inputs"])  # inputs come first
    adjoints = np.concatenate([np.ravel(node["adjoint"]) for node in sorted(
        (n for n in nodes if n["op"] == "variable"), key=lambda n: sorted(point).index(
            n["name"]))])
    np.testing.assert_allclose(adjoints, body["gradient"], rtol=1e-12, atol=1e-15)
    assert "nonfinite" not in body or all(
        e["field"] == "graph.value" for e in body["nonfinite"])


def test_shared_subexpressions_appear_once(run: Any) -> None:
    body = run(expression="sin(x*y) + exp(x*y)", at={"x": 2.0, "y": 3.0},
               derivatives=["explain"])
    nodes = body["graph"]["nodes"]
    products = [n for n in nodes if n["op"] == "mul"]
    assert len(products) == 1
    product = products[0]
    assert product["value"] == 6.0
    # d f / d (x*y) = cos(6) + exp(6), summed over both uses
    assert product["adjoint"] == pytest.approx(np.cos(6.0) + np.exp(6.0), rel=1e-14)
    users = [n for n in nodes if product["id"] in n["inputs"]]
    assert {n["op"] for n in users} == {"sin", "exp"}


def test_untaken_branch_has_adjoint_zero_and_reports_its_nan(run: Any) -> None:
    body = run(expression="where(x > 0, sqrt(x), x^2)", at={"x": -4.0},
               derivatives=["gradient", "explain"])
    nodes = body["graph"]["nodes"]
    root = next(n for n in nodes if n["op"] == "sqrt")
    assert root["adjoint"] == 0.0
    assert np.isnan(root["value"])
    assert {"field": "graph.value", "index": [root["id"]], "kind": "nan"} in body["nonfinite"]
    condition = next(n for n in nodes if n["op"] == ">")
    assert condition["value"] is False and condition["adjoint"] is None
    assert body["gradient"].tolist() == [-8.0]


@pytest.mark.parametrize("expression, point, strict", [
    ("sin(x) * y + exp(x*y)", {"x": 0.3, "y": 0.2}, True),
    ("sum(sin(x) * x) + prod(x)", {"x": [0.1, 0.2, 0.3, 0.4]}, True),
    ("x^5", {"x": 2.0}, False),  # XLA folds each derivative of a power into one power
], ids=["scalars", "vector", "power"])
def test_cost_is_ordered(run: Any, expression: str, point: Any, strict: bool) -> None:
    cost = run(expression=expression, at=point, derivatives=["explain"])["cost"]
    assert 0 <= cost["value"] <= cost["gradient"] <= cost["hessian"]
    assert cost["hessian"] > cost["value"] or not strict
    assert set(cost["transcendentals"]) == {"value", "gradient", "hessian"}
