"""The SVG line chart at the edges of float64: no division by zero, no overflow."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from app.learning.svg import BOTTOM, HEIGHT, LEFT, RIGHT, TOP, WIDTH, line_chart

SVG = "{http://www.w3.org/2000/svg}"
LARGEST = float(np.finfo(np.float64).max)


def pixels(svg: str) -> np.ndarray:
    """Every polyline point of the chart as (x, y) pixels."""
    root = ET.fromstring(svg)
    points = [p.split(",") for line in root.iter(f"{SVG}polyline")
              for p in line.attrib["points"].split()]
    return np.array(points, dtype=float)


@pytest.mark.parametrize("level", [0.0, 1.0, 1e300, -1e300, LARGEST, -LARGEST])
def test_a_constant_curve_is_drawn_across_the_frame(level: float) -> None:
    """Mid-height, or on the frame's edge for the largest float64 (no room beyond it)."""
    x = np.linspace(0.0, 1.0, 5)
    drawn = pixels(line_chart("f", x, [("f", np.full(5, level))]))
    np.testing.assert_allclose(drawn[:, 0], np.linspace(LEFT, WIDTH - RIGHT, 5))
    middle = (TOP + HEIGHT - BOTTOM) / 2
    if abs(level) < LARGEST:
        np.testing.assert_allclose(drawn[:, 1], middle)
    else:
        np.testing.assert_allclose(drawn[:, 1], TOP if level > 0 else HEIGHT - BOTTOM)


def test_a_range_over_all_of_float64_maps_onto_the_frame() -> None:
    x = np.array([-LARGEST, 0.0, LARGEST])
    drawn = pixels(line_chart("f", x, [("f", x)]))
    middle_x, middle_y = (LEFT + WIDTH - RIGHT) / 2, (TOP + HEIGHT - BOTTOM) / 2
    expected = np.array([[LEFT, HEIGHT - BOTTOM], [middle_x, middle_y], [WIDTH - RIGHT, TOP]],
                        dtype=float)
    np.testing.assert_allclose(drawn, expected)
