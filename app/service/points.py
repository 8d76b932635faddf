"""Request points -> one float64 array of flat coordinates, (n,) or (N, n)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from app.engine.xla import Layout, Shape
from app.errors import LimitError, PointError, ShapeError
from app.language.suggest import did_you_mean, suggestions


def _array(name: str, value: Any, where: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except ValueError:
        raise PointError(
            f"The value of {name!r} {where} is a ragged list; give a number or a list of "
            "numbers of the variable's shape (a matrix: a list of rows of one length)") from None
    return arr


def check_names(given: Mapping[str, Any], layout: Layout, subject: str,
                what: str = "a value") -> None:
    """Refuse ``given`` unless it names exactly the layout's variables."""
    missing = [n for n in layout.names if n not in given]
    if missing:
        found = suggestions(missing[0], [n for n in given if n not in layout.names])
        raise PointError(f"{subject} lacks the variable {missing[0]!r}; give {what} "
                         f"for each of {', '.join(layout.names)}{did_you_mean(found)}",
                         variable=missing[0], suggestions=found)
    extra = [n for n in given if n not in layout.names]
    if extra:
        shown = extra[0] if len(extra[0]) <= 64 else extra[0][:64] + "..."
        raise PointError(f"{subject} gives {shown!r}, which is not a variable of "
                         f"the expression (the variables are {', '.join(layout.names)})",
                         variable=shown)


def _flat(name: str, arr: np.ndarray, shape: Shape, where: str, batch: int | None) -> np.ndarray:
    want = shape if batch is None else (batch, *shape)
    if arr.shape != want:
        shown = "a number" if want == () else f"shape {list(want)}"
        raise ShapeError(f"The value of {name!r} {where} has shape {list(arr.shape)}; "
                         f"expected {shown}", variable=name)
    return arr.reshape(-1) if batch is None else arr.reshape(batch, -1)


def from_point(point: Mapping[str, Any], layout: Layout, where: str = "in 'at'") -> np.ndarray:
    """One point as flat coordinates (n,)."""
    check_names(point, layout, f"The point {where}")
    parts = [_flat(name, _array(name, point[name], where), shape, where, None)
             for name, shape in zip(layout.names, layout.shapes, strict=True)]
    return np.concatenate(parts) if parts else np.zeros(0)


def scalar_point(point: Mapping[str, float], layout: Layout) -> np.ndarray:
    """``from_point`` for a point of numbers only (JSON numbers, as read): the same array
    without an array per variable when it names exactly the layout's scalar variables."""
    if len(point) == layout.n == len(layout.names) and all(n in point for n in layout.names):
        return np.array([point[n] for n in layout.names], dtype=np.float64)
    return from_point(point, layout)  # an error to report, or a vector variable


def from_points(
    points: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
    layout: Layout,
    max_points: int,
) -> np.ndarray:
    """A batch as flat coordinates (N, n), from the list form or the column-wise form."""
    if isinstance(points, Mapping):
        check_names(points, layout, "The point in 'points'")
        counts = {name: len(points[name]) for name in layout.names}
        count = next(iter(counts.values()), 0)
        if any(c != count for c in counts.values()):
            raise ShapeError("The columns of 'points' have different lengths: " + ", ".join(
                f"{k}: {v}" for k, v in counts.items()) + "; give every variable N values")
        _check_count(count, max_points)
        parts = [_flat(name, _array(name, points[name], "in 'points'"), shape, "in 'points'",
                      count) for name, shape in zip(layout.names, layout.shapes, strict=True)]
        return np.concatenate(parts, axis=1) if parts else np.zeros((count, 0))
    _check_count(len(points), max_points)
    return np.stack([from_point(p, layout, f"points[{i}]") for i, p in enumerate(points)])


def _check_count(count: int, max_points: int) -> None:
    if count == 0:
        raise PointError("'points' is empty; give at least one point")
    if count > max_points:
        raise LimitError("max_points", max_points, f"The number of points ({count})")
