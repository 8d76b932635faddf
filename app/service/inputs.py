"""Request inputs besides ``at`` / ``points``: a Cartesian ``grid``, and the ``tangent`` and
``cotangent`` of ``jvp`` / ``vjp`` (run-time inputs of the executable, never constants)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from app.engine.xla import Layout, Shape
from app.errors import InputError, LimitError, ShapeError
from app.service.points import check_names, from_point


class Axis(Protocol):
    """One axis of a grid (``schemas.differentiate.GridAxis``)."""

    start: float
    stop: float
    num: int


def grid_count(grid: Mapping[str, Axis], max_points: int) -> int:
    """The number of grid points, refused above ``max_points``."""
    count = math.prod(axis.num for axis in grid.values())
    if count > max_points:
        raise LimitError("max_points", max_points, f"The number of grid points ({count})")
    return count


def grid_points(grid: Mapping[str, Axis], layout: Layout) -> tuple[np.ndarray, Shape]:
    """The grid as flat coordinates (N, n), in variable order, and its shape [k_x, k_y, ...]."""
    check_names(grid, layout, "'grid'", "start, stop and num")
    for name, shape in zip(layout.names, layout.shapes, strict=True):
        if shape != ():
            what = (f"a vector of length {shape[0]}" if len(shape) == 1
                    else f"a matrix of shape {list(shape)}")
            raise ShapeError(f"'grid' spans scalar variables only; {name!r} is {what}: use "
                             "'points' for it", variable=name)
    axes = [axis_values(grid[n].start, grid[n].stop, grid[n].num) for n in layout.names]
    mesh = np.meshgrid(*axes, indexing="ij")
    dims = tuple(len(a) for a in axes)
    return np.stack([m.reshape(-1) for m in mesh], axis=-1).reshape(-1, len(axes)), dims


def axis_values(start: float, stop: float, num: int) -> np.ndarray:
    """``num`` values from ``start`` to ``stop``, both included, even when ``stop - start``
    is beyond float64 (from -1e308 to 1e308) or near its edge: then as weighted means, which
    cannot overflow (``np.linspace`` steps by ``span / (num - 1)``, whose rounding can carry
    ``3 * step`` past the largest float64 when the span is near it, or steps by infinity)."""
    if abs(stop - start) < 1e300:
        return np.linspace(start, stop, num)
    weights = np.linspace(0.0, 1.0, num)
    return start * (1.0 - weights) + stop * weights


def grid_results(results: Mapping[str, np.ndarray], dims: Shape) -> dict[str, np.ndarray]:
    """Each output's leading axis of N points as the grid's axes [k_x, k_y, ...]."""
    return {k: v.reshape(*dims, *v.shape[1:]) for k, v in results.items()}


def product_vectors(tangent: Sequence[float] | Mapping[str, Any] | None, cotangent: Any,
                    kinds: Sequence[str], layout: Layout, out_shape: Shape) -> list[np.ndarray]:
    """The tangent (n,) and cotangent (m,) that ``jvp`` / ``vjp`` in ``kinds`` need, for
    the layout's n coordinates and the m outputs of f's shape. A tangent may be given by
    variable, each value shaped like it; a cotangent as nested lists shaped like f's value
    (flattened row-major)."""
    vectors: list[np.ndarray] = []
    if "jvp" in kinds:
        if isinstance(tangent, Mapping):
            vectors.append(from_point(tangent, layout, "in 'tangent'"))
        else:
            vectors.append(_vector("tangent", tangent, layout.n, "one per coordinate"))
    if "vjp" in kinds:
        given: Any = [cotangent] if isinstance(cotangent, int | float) else cotangent
        m = math.prod(out_shape)
        default = np.ones(m)
        vectors.append(default if given is None else
                       _vector("cotangent", given, m, "one per output of f", out_shape))
    return vectors


def _vector(name: str, values: Any, length: int, what: str,
            shape: Shape | None = None) -> np.ndarray:
    try:
        array = np.asarray(values if values is not None else [], dtype=np.float64)
    except ValueError:
        raise InputError(f"'{name}' is a ragged list; give {length} numbers, {what}",
                         code=f"bad_{name}") from None
    if array.ndim > 1:
        if array.shape != shape:
            raise InputError(f"'{name}' has shape {list(array.shape)}; give f's shape "
                             f"{list(shape or ())}, or {length} numbers", code=f"bad_{name}")
        array = array.reshape(-1)
    if array.shape != (length,):
        raise InputError(f"'{name}' has {array.size} numbers; give {length}, {what}",
                         code=f"bad_{name}")
    return array
