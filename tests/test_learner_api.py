"""The learner's features through a real uvicorn (worker processes): the plot, explain and
every new field's refusals as 422 problems."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import httpx
import numpy as np
import pytest

from schemas.differentiate import DIFFERENTIATE_EXAMPLES
from tests.test_api import assert_problem, post

pytestmark = pytest.mark.slow
SVG = "{http://www.w3.org/2000/svg}"


def curves(svg: str) -> tuple[dict[str, float], dict[str, list[np.ndarray]]]:
    """The plot area's ranges and each curve's polylines as (x, y) pixel arrays."""
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    area = root.find(f".//{SVG}g[@class='plot-area']")
    assert area is not None
    ranges = {k[5:]: float(v) for k, v in area.attrib.items() if k.startswith("data-")}
    found: dict[str, list[np.ndarray]] = {}
    for group in area.iter(f"{SVG}g"):
        if group.get("class") == "curve":
            lines = [np.array([[float(c) for c in p.split(",")]
                               for p in line.attrib["points"].split()])
                     for line in group.iter(f"{SVG}polyline")]
            found[group.attrib["data-label"]] = lines
    return ranges, found


def to_data(ranges: dict[str, float], pixels: np.ndarray) -> np.ndarray:
    x = ranges["x-min"] + (pixels[:, 0] - ranges["left"]) / (
        ranges["right"] - ranges["left"]) * (ranges["x-max"] - ranges["x-min"])
    y = ranges["y-min"] + (ranges["bottom"] - pixels[:, 1]) / (
        ranges["bottom"] - ranges["top"]) * (ranges["y-max"] - ranges["y-min"])
    return np.stack([x, y], axis=1)


def test_plot_of_sin_draws_f_and_its_derivatives(api: httpx.Client) -> None:
    response = api.get("/v1/plot", params={"expression": "sin(x)", "start": 0,
                                           "stop": 2 * np.pi, "num": 101, "order": 2})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("image/svg+xml")
    ranges, found = curves(response.text)
    assert set(found) == {"f", "f'", "f''"}
    tolerance = 2 * 0.01 * (ranges["y-max"] - ranges["y-min"])  # pixels are rounded
    for label, exact in (("f", np.sin), ("f'", np.cos), ("f''", lambda x: -np.sin(x))):
        (line,) = found[label]
        assert len(line) == 101
        data = to_data(ranges, line)
        np.testing.assert_allclose(data[:, 1], exact(data[:, 0]), atol=tolerance)


def test_plot_breaks_the_line_where_f_is_not_finite(api: httpx.Client) -> None:
    response = api.get("/v1/plot", params={"expression": "log(t^2)", "start": -1, "stop": 1,
                                           "num": 21, "variable": "t"})
    assert response.status_code == 200, response.text
    _, found = curves(response.text)
    assert [len(line) for line in found["f"]] == [10, 10]
    assert "f''" not in found


@pytest.mark.parametrize("params, code", [
    ({"expression": "sin(x)", "start": 1, "stop": 0}, "bad_range"),
    ({"expression": "x*y", "start": 0, "stop": 1}, "too_many_variables"),
    ({"expression": "sin(x", "start": 0, "stop": 1}, "syntax_error"),
    ({"expression": "sin(x)", "start": "nan", "stop": 1}, "invalid_request"),
    ({"expression": "sin(x)", "start": 0, "stop": 1, "order": 11}, "invalid_request"),
    ({"expression": "sin(x)", "start": 0, "stop": 1, "num": 1}, "invalid_request"),
    ({"expression": "sin(x)", "stop": 1}, "invalid_request"),
    ({"expression": "x + y", "start": 0, "stop": 1, "variable": "x"}, "unknown_name"),
], ids=lambda p: str(p))
def test_plot_refuses_bad_input(api: httpx.Client, params: dict[str, Any], code: str) -> None:
    assert_problem(api.get("/v1/plot", params=params), 422, code)


def test_explain_in_a_worker(api: httpx.Client) -> None:
    body = post(api, {"expression": "x * exp(x) + sin(x)", "at": {"x": 1},
                      "derivatives": ["value", "gradient", "explain"]}).json()
    nodes = body["graph"]["nodes"]
    assert [n["op"] for n in nodes] == ["variable", "exp", "mul", "sin", "add"]
    assert nodes[0]["adjoint"] == pytest.approx(body["gradient"][0], rel=1e-14)
    assert body["cost"]["value"] <= body["cost"]["gradient"] <= body["cost"]["hessian"]


BASE: dict[str, Any] = {"expression": ["x*y", "x + y^2"], "at": {"x": 2, "y": 3}}


@pytest.mark.parametrize("change, code", [
    ({"derivatives": ["jvp"], "tangent": [1, 2, 3]}, "bad_tangent"),
    ({"derivatives": ["jvp"]}, "invalid_request"),
    ({"derivatives": ["value"], "tangent": [1, 0]}, "invalid_request"),
    ({"derivatives": ["jvp"], "tangent": [1, "x"]}, "invalid_request"),
    ({"derivatives": ["vjp"], "cotangent": [1]}, "bad_cotangent"),
    ({"derivatives": ["value"], "cotangent": [1, 1]}, "invalid_request"),
    ({"derivatives": ["hessian", "explain"]}, "explain_needs_scalar"),
    ({"derivatives": ["explain"], "at": None, "points": {"x": [1], "y": [2]}},
     "invalid_request"),
    ({"derivatives": ["symbolik"]}, "invalid_request"),
    ({"at": None, "grid": {"x": {"start": 0, "stop": 1, "num": 2}}}, "invalid_point"),
    ({"at": None, "grid": {"x": {"start": 0, "stop": 1, "num": 2},
                           "y": {"start": 0, "stop": 1, "num": 2},
                           "z": {"start": 0, "stop": 1, "num": 2}}}, "invalid_point"),
    ({"at": None, "grid": {"x": {"start": 0, "stop": 1, "num": 0},
                           "y": {"start": 0, "stop": 1, "num": 2}}}, "invalid_request"),
    ({"at": None, "grid": {"x": {"start": 0, "stop": 1}, "y": {"start": 0, "stop": 1,
                                                              "num": 2}}}, "invalid_request"),
    ({"grid": {"x": {"start": 0, "stop": 1, "num": 2}, "y": {"start": 0, "stop": 1,
                                                             "num": 2}}}, "invalid_request"),
    ({"at": None, "grid": {"x": {"start": 0, "stop": 1, "num": 2000},
                           "y": {"start": 0, "stop": 1, "num": 2000}}}, "limit_exceeded"),
    ({"at": None, "expression": "x*y", "variables": {"x": [2], "y": []},
      "grid": {"x": {"start": 0, "stop": 1, "num": 2},
               "y": {"start": 0, "stop": 1, "num": 2}}}, "shape_mismatch"),
], ids=lambda c: str(c)[:60])
def test_new_fields_refuse_bad_input(api: httpx.Client, change: dict[str, Any],
                                     code: str) -> None:
    body = {**BASE, **change}
    body = {k: v for k, v in body.items() if v is not None}
    assert_problem(post(api, body), 422, code)


def test_a_nonfinite_cotangent_is_refused(api: httpx.Client) -> None:
    body = ('{"expression": "x*y", "at": {"x": 1, "y": 2}, "derivatives": ["vjp"], '
            '"cotangent": [1e999]}')
    response = api.post("/v1/differentiate", content=body,
                        headers={"content-type": "application/json"})
    assert_problem(response, 422, "invalid_request")


@pytest.mark.parametrize("name", sorted(DIFFERENTIATE_EXAMPLES))
def test_every_openapi_example_answers(run: Any, name: str) -> None:
    body = run(**DIFFERENTIATE_EXAMPLES[name]["value"])
    assert "coordinates" in body
    assert "nonfinite" not in body
    assert "skipped" not in body.get("symbolic", {})
