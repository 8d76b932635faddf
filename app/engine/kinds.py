"""The compiled outputs beyond the Hessian, named as kinds (strings, so that a compile spec
stays plain hashable data): ``tensor3`` .. ``tensorK``, the derivative tensors, and
``series:K:P``, the derivatives 1 .. K along P directions given at run time. Computed by
``app.engine.taylor``; no JAX here, so the cost model can read them.
"""

from __future__ import annotations

from collections.abc import Sequence

TENSOR = "tensor"
SERIES = "series"


def tensor_kind(order: int) -> str:
    """The kind of the derivative tensor of ``order`` (3 or more): ``"tensor3"``."""
    return f"{TENSOR}{order}"


def series_kind(order: int, directions: int) -> str:
    """The kind of the derivatives 1 .. ``order`` along ``directions`` directions given at
    run time (a matrix of shape (directions, n))."""
    return f"{SERIES}:{order}:{directions}"


def tensor_order(kind: str) -> int | None:
    """The order of a tensor kind, or None for any other kind."""
    if kind.startswith(TENSOR) and kind[len(TENSOR):].isdigit():
        return int(kind[len(TENSOR):])
    return None


def series_shape(kind: str) -> tuple[int, int] | None:
    """(order, directions) of a series kind, or None for any other kind."""
    head, _, rest = kind.partition(":")
    if head != SERIES:
        return None
    order, _, count = rest.partition(":")
    return int(order), int(count)


def highest_order(kinds: Sequence[str]) -> int:
    """The highest derivative order among ``kinds`` beyond the Hessian (0 if none)."""
    orders = [tensor_order(k) or 0 for k in kinds]
    orders += [shape[0] for k in kinds if (shape := series_shape(k)) is not None]
    return max(orders, default=0)
