"""The HTTP API through a real uvicorn: success shapes and every kind of error."""

from __future__ import annotations

import math
from typing import Any

import httpx
import numpy as np
import pytest

pytestmark = pytest.mark.slow

PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}


def post(api: httpx.Client, body: Any) -> httpx.Response:
    return api.post("/v1/differentiate", json=body)


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert set(problem) >= PROBLEM_KEYS
    assert problem["status"] == status
    assert problem["code"] == code
    assert problem["detail"]
    return problem


def test_contract_example_d2l(api: httpx.Client) -> None:
    response = post(api, {"expression": "2*dot(x, x)", "variables": {"x": [4]},
                          "at": {"x": [0, 1, 2, 3]}})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "coordinates": ["x[0]", "x[1]", "x[2]", "x[3]"], "value": 28.0,
        "gradient": [0.0, 4.0, 8.0, 12.0],
        "hessian": [[4.0, 0.0, 0.0, 0.0], [0.0, 4.0, 0.0, 0.0], [0.0, 0.0, 4.0, 0.0],
                    [0.0, 0.0, 0.0, 4.0]]}


def test_contract_example_jacobian(api: httpx.Client) -> None:
    response = post(api, {"expression": ["x*y", "x + y^2"], "at": {"x": 2, "y": 3},
                          "derivatives": ["value", "gradient"]})
    assert response.json() == {"coordinates": ["x", "y"], "value": [6.0, 11.0],
                               "jacobian": [[3.0, 2.0], [1.0, 6.0]]}


def test_scalar_function_of_scalars(api: httpx.Client) -> None:
    body = post(api, {"expression": "x^2 * y", "at": {"x": 3, "y": 2}}).json()
    assert body == {"coordinates": ["x", "y"], "value": 18.0, "gradient": [12.0, 9.0],
                    "hessian": [[4.0, 6.0], [6.0, 0.0]]}


def test_vector_valued_expression(api: httpx.Client) -> None:
    body = post(api, {"expression": "x * y", "at": {"x": [1, 2], "y": 3}}).json()
    assert body["coordinates"] == ["x[0]", "x[1]", "y"]
    assert body["value"] == [3.0, 6.0]
    assert body["jacobian"] == [[3.0, 0.0, 1.0], [0.0, 3.0, 2.0]]
    assert np.shape(body["hessian"]) == (2, 3, 3)


def test_batch_list_form_and_column_form_agree(api: httpx.Client) -> None:
    rows = post(api, {"expression": "sin(x) * y", "points": [{"x": 0, "y": 1}, {"x": 1, "y": 2},
                                                            {"x": 2, "y": 3}]}).json()
    columns = post(api, {"expression": "sin(x) * y",
                         "points": {"x": [0, 1, 2], "y": [1, 2, 3]}}).json()
    assert rows == columns
    assert np.shape(rows["value"]) == (3,)
    assert np.shape(rows["gradient"]) == (3, 2)
    assert np.shape(rows["hessian"]) == (3, 2, 2)
    assert rows["gradient"][1] == pytest.approx([2 * math.cos(1), math.sin(1)])


def test_batch_of_vector_points_column_wise(api: httpx.Client) -> None:
    body = post(api, {"expression": "dot(x, x)", "variables": {"x": [2]},
                      "points": {"x": [[1, 2], [3, 4], [5, 6]]},
                      "derivatives": ["gradient"]}).json()
    assert body == {"coordinates": ["x[0]", "x[1]"],
                    "gradient": [[2.0, 4.0], [6.0, 8.0], [10.0, 12.0]]}


def test_batch_of_a_vector_function(api: httpx.Client) -> None:
    body = post(api, {"expression": ["x", "x^2"], "points": {"x": [1, 2]}}).json()
    assert body["jacobian"] == [[[1.0], [2.0]], [[1.0], [4.0]]]
    assert np.shape(body["hessian"]) == (2, 2, 1, 1)


def test_nonfinite_is_null_and_reported(api: httpx.Client) -> None:
    response = post(api, {"expression": "log(x)", "points": {"x": [1, 0, -1]},
                          "derivatives": ["value"]})
    assert response.status_code == 200
    assert "NaN" not in response.text and "Infinity" not in response.text
    body = response.json()
    assert body["value"] == [0.0, None, None]
    assert body["nonfinite"] == [{"field": "value", "index": [1], "kind": "-inf"},
                                 {"field": "value", "index": [2], "kind": "nan"}]


def test_derivatives_subset(api: httpx.Client) -> None:
    body = post(api, {"expression": "x^3", "at": {"x": 2}, "derivatives": ["hessian"]}).json()
    assert body == {"coordinates": ["x"], "hessian": [[12.0]]}


def test_syntax_error_has_position(api: httpx.Client) -> None:
    problem = assert_problem(post(api, {"expression": "sin(x +", "at": {"x": 1}}), 422,
                             "syntax_error")
    assert problem["position"] == 7


def test_unknown_function(api: httpx.Client) -> None:
    problem = assert_problem(post(api, {"expression": "2 * frobnicate(x)", "at": {"x": 1}}),
                             422, "unknown_function")
    assert problem["position"] == 4


def test_unknown_name_with_declared_variables(api: httpx.Client) -> None:
    problem = assert_problem(post(api, {"expression": "x + y", "variables": {"x": []},
                                        "at": {"x": 1}}), 422, "unknown_name")
    assert problem["position"] == 4


def test_shape_mismatch(api: httpx.Client) -> None:
    assert_problem(post(api, {"expression": "dot(x, y)", "at": {"x": [1, 2], "y": [1, 2, 3]}}),
                   422, "shape_mismatch")
    assert_problem(post(api, {"expression": "x", "variables": {"x": [3]}, "at": {"x": [1, 2]}}),
                   422, "shape_mismatch")


def test_point_lacks_a_variable(api: httpx.Client) -> None:
    problem = assert_problem(post(api, {"expression": "x + y", "at": {"x": 1}}), 422,
                             "invalid_point")
    assert "'y'" in problem["detail"]


def test_point_names_an_unknown_variable(api: httpx.Client) -> None:
    assert_problem(post(api, {"expression": "x", "at": {"x": 1, "q": 2}}), 422, "invalid_point")


@pytest.mark.parametrize("raw", [b'{"expression": "x", "at": {"x": NaN}}',
                                 b'{"expression": "x", "at": {"x": Infinity}}',
                                 b'{"expression": "x", "at": {"x": 1e999}}'])
def test_non_finite_inputs_refused(api: httpx.Client, raw: bytes) -> None:
    response = api.post("/v1/differentiate", content=raw,
                        headers={"content-type": "application/json"})
    assert response.status_code in (400, 422)
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("value", ["1", "inf", True, None, {"a": 1}, [[[1, 2]]], [[1, "2"]]])
def test_non_numeric_inputs_refused(api: httpx.Client, value: Any) -> None:
    problem = assert_problem(post(api, {"expression": "x", "at": {"x": value}}), 422,
                             "invalid_request")
    assert problem["detail"].startswith("at.x")


@pytest.mark.parametrize(("body", "word"), [
    ({"expression": "x"}, "exactly one of"),
    ({"expression": "x", "at": {"x": 1}, "points": [{"x": 1}]}, "exactly one of"),
    ({"at": {"x": 1}}, "expression"),
    ({"expression": "x", "at": {"x": 1}, "derivatives": ["laplacian"]}, "derivatives"),
    ({"expression": "x", "at": {"x": 1}, "extra": 1}, "extra"),
    ({"expression": [], "at": {"x": 1}}, "expression"),
    ({"expression": "x", "at": {"x": 1}, "derivatives": []}, "derivatives"),
])
def test_validation_errors_are_problems(api: httpx.Client, body: Any, word: str) -> None:
    problem = assert_problem(post(api, body), 422, "invalid_request")
    assert word in problem["detail"] or any(word in str(e) for e in problem["errors"])


def test_malformed_json_is_a_problem(api: httpx.Client) -> None:
    response = api.post("/v1/differentiate", content=b'{"expression": ',
                        headers={"content-type": "application/json"})
    assert_problem(response, 400, "invalid_json")


def test_body_over_the_limit_is_413(api: httpx.Client) -> None:
    response = api.post("/v1/differentiate", content=b" " * (16 * 1024 * 1024 + 1),
                        headers={"content-type": "application/json"})
    problem = assert_problem(response, 413, "payload_too_large")
    assert problem["limit"] == "max_body_bytes"


def test_chunked_body_over_the_limit_is_413(api: httpx.Client) -> None:
    def chunks() -> Any:
        for _ in range(17):
            yield b" " * (1024 * 1024)

    response = api.post("/v1/differentiate", content=chunks(),
                        headers={"content-type": "application/json"})
    assert_problem(response, 413, "payload_too_large")


def test_limit_exceeded_names_the_limit(api: httpx.Client) -> None:
    problem = assert_problem(post(api, {"expression": "x^100000", "at": {"x": 1}}), 422,
                             "limit_exceeded")
    assert problem["limit"] == "max_exponent"
    assert "1000" in problem["detail"]


def test_hessian_output_limit(api: httpx.Client) -> None:
    problem = assert_problem(post(api, {"expression": "sum(x)", "variables": {"x": [10_000]},
                                        "at": {"x": [0.0] * 10_000}}), 422, "limit_exceeded")
    assert problem["limit"] == "max_output_entries"


def test_unknown_route_and_method_are_problems(api: httpx.Client) -> None:
    assert_problem(api.get("/v2/nothing"), 404, "http_404")
    assert_problem(api.get("/v1/differentiate"), 405, "http_405")


def test_docs_and_openapi(api: httpx.Client) -> None:
    assert api.get("/docs").status_code == 200
    assert api.get("/redoc").status_code == 200
    spec = api.get("/openapi.json").json()
    operation = spec["paths"]["/v1/differentiate"]["post"]
    examples = operation["requestBody"]["content"]["application/json"]["examples"]
    assert examples["d2l"]["value"]["expression"] == "2*dot(x, x)"
    assert {"400", "413", "422", "503"} <= set(operation["responses"])


def test_large_vector_value_and_gradient(api: httpx.Client) -> None:
    n = 100_000
    x = np.linspace(-1, 1, n)
    body = post(api, {"expression": "sum(100*(x[1:] - x[:-1]^2)^2 + (1 - x[:-1])^2)",
                      "at": {"x": x.tolist()}, "derivatives": ["value", "gradient"]}).json()
    expected = np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
    assert body["value"] == pytest.approx(expected, rel=1e-12)
    assert len(body["gradient"]) == n
