"""``grid``: the Cartesian product in variable order, outputs shaped [k_x, k_y, ...]."""

from __future__ import annotations

from typing import Any

import numpy as np


def test_grid_shapes_and_values(run: Any) -> None:
    grid = {"x": {"start": -1, "stop": 1, "num": 4}, "y": {"start": 0, "stop": 2, "num": 3},
            "z": {"start": 0.5, "stop": 0.5, "num": 1}}
    body = run(expression="sin(x) * y^2 + z", grid=grid)
    x, y, z = np.meshgrid(np.linspace(-1, 1, 4), np.linspace(0, 2, 3), [0.5], indexing="ij")
    assert body["coordinates"] == ["x", "y", "z"]
    assert body["value"].shape == (4, 3, 1)
    assert body["gradient"].shape == (4, 3, 1, 3)
    assert body["hessian"].shape == (4, 3, 1, 3, 3)
    np.testing.assert_allclose(body["value"], np.sin(x) * y**2 + z, rtol=1e-14)
    np.testing.assert_allclose(body["gradient"][..., 0], np.cos(x) * y**2, rtol=1e-14)
    np.testing.assert_allclose(body["gradient"][..., 1], 2 * np.sin(x) * y, rtol=1e-14)
    np.testing.assert_allclose(body["hessian"][..., 0, 1], 2 * np.cos(x) * y, rtol=1e-14)


def test_grid_follows_declared_variable_order(run: Any) -> None:
    grid = {"x": {"start": 0, "stop": 1, "num": 2}, "y": {"start": 0, "stop": 3, "num": 4}}
    body = run(expression="x - y", variables={"y": [], "x": []}, grid=grid,
               derivatives=["value"])
    assert body["value"].shape == (4, 2)
    assert body["value"][3, 1] == 1.0 - 3.0


def test_grid_of_a_vector_valued_f_with_products(run: Any) -> None:
    grid = {"x": {"start": 0, "stop": 2, "num": 5}}
    body = run(expression=["x^2", "3*x"], grid=grid, derivatives=["value", "gradient", "jvp"],
               tangent=[2])
    assert body["value"].shape == (5, 2)
    assert body["jacobian"].shape == (5, 2, 1)
    np.testing.assert_allclose(body["jvp"][:, 0], 4 * np.linspace(0, 2, 5))
    np.testing.assert_allclose(body["jvp"][:, 1], 6.0)


def test_grid_nonfinite_index_is_a_grid_index(run: Any) -> None:
    body = run(expression="log(x) + y", derivatives=["value"],
               grid={"x": {"start": -1, "stop": 1, "num": 3},
                     "y": {"start": 0, "stop": 1, "num": 2}})
    listed = [(e["index"], e["kind"]) for e in body["nonfinite"]]
    assert listed == [([0, 0], "nan"), ([0, 1], "nan"), ([1, 0], "-inf"), ([1, 1], "-inf")]


def test_grid_spanning_nearly_all_of_float64_is_finite(run: Any) -> None:
    """np.linspace(0, 1.797e308, 4) overflows: 3 * (span / 3) rounds past the largest float."""
    top = 1.7976931348623157e308
    body = run(expression="x", grid={"x": {"start": 0, "stop": top, "num": 4}},
               derivatives=["value"])
    third = top / 3
    np.testing.assert_allclose(body["value"], [0.0, third, third + third, top], rtol=1e-15)
    assert "nonfinite" not in body
