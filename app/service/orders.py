"""Derivatives beyond the Hessian for one request: which outputs to compile, the directions
they run along, and the answer's ``tensors``, ``directional``, ``partials`` and ``taylor``.

    "order": k >= 3              -> tensors T_3 .. T_k (nested jacfwd; Taylor mode for n = 1)
    "direction" (with "order")   -> [D_1 .. D_k] along it, Taylor mode (no tensor)
    "partials": [{"x": 2, "y": 1}] -> each by the box formula below (no tensor)
    "taylor": {"order": k}       -> each coefficient ∂^alpha f(a) / alpha!, |alpha| <= k, so too

Every derivative past the Hessian that is not a tensor comes from one compiled output, the
derivatives 1 .. K of t -> f(a + t β) at t = 0 along P directions β given at run time
(``app.engine.kinds``): a mixed partial of order d = |alpha| is the alpha-th forward difference, in
β, of the d-th derivatives along the directions 0 < β <= alpha (a multi-index read as a
vector),

    ∂^alpha f(a) = Σ_{0 < β <= alpha} (-1)^(d - |β|) Π_l C(alpha_l, β_l) · D^d_β f(a) / d!,

exact for polynomials of degree d (D^d_β f / d! is the homogeneous part of degree d of f's
Taylor series at β, and only its monomial beta^alpha survives the alpha-th difference). A partial in
one coordinate is its derivative along that axis, with no difference.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from itertools import combinations_with_replacement, product
from typing import Any

import numpy as np

from app.config import Limits
from app.engine.kinds import series_kind, series_shape, tensor_kind
from app.engine.nonfinite import NonFinite
from app.engine.xla import Layout, bucket
from app.errors import InputError, LimitError, PointError
from app.service.points import from_point
from schemas.differentiate import DifferentiateRequest

DEFAULT_ORDER = 2
#: A direction: coordinate -> integer weight (by name for partials, by index for Taylor).
Weights = tuple[tuple[Any, int], ...]


@dataclass
class OrderPlan:
    """What a request asks beyond the Hessian, and the compiled kinds it needs."""

    tensor_orders: tuple[int, ...] = ()
    directional: int = 0  # k of [D_1 .. D_k] along the request's direction, 0 if none
    partials: list[Weights] = field(default_factory=list)  # by coordinate name
    taylor: int | None = None  # the polynomial's order
    remainder: bool = False
    n: int = 0  # coordinates, as the request gives them
    named: list[Weights] = field(default_factory=list)  # partials' directions, by name
    indexed: list[Weights] = field(default_factory=list)  # Taylor's, by coordinate index

    @property
    def series_order(self) -> int:
        """K: the highest derivative taken along a direction."""
        orders = [self.directional, *(sum(p for _, p in a) for a in self.partials)]
        if self.taylor is not None:
            orders.append(self.taylor + 2 if self.remainder else self.taylor)
        return max(orders, default=0)

    @property
    def direction_count(self) -> int:
        """P: the directions of the series, the request's own first, then the partials',
        Taylor's, and the remainder's."""
        return ((1 if self.directional else 0) + len(self.named) + len(self.indexed)
                + (1 if self.remainder else 0))

    @property
    def kinds(self) -> tuple[str, ...]:
        """The compiled outputs beyond the Hessian."""
        kinds = tuple(tensor_kind(k) for k in self.tensor_orders)
        if self.series_order and self.direction_count:
            kinds += (series_kind(self.series_order, bucket(self.direction_count)),)
        return kinds


def plan_orders(request: DifferentiateRequest, n: int, outputs: int,
                limits: Limits) -> OrderPlan:
    """The request's derivatives beyond the Hessian, refused over the limits before any
    work: ``max_derivative_order``, and ``max_tensor_entries`` (outputs x n^k)."""
    plan = OrderPlan(n=n)
    order = DEFAULT_ORDER if request.order is None else request.order
    _check_order("'order'", order, limits)
    asked = [name for name in ("direction", "partials", "taylor", "check")
             if getattr(request, name) is not None]
    if n == 0 and (asked or order > DEFAULT_ORDER):
        raise InputError(f"'{(asked or ['order'])[0]}' needs a variable to differentiate "
                         "by, and f has none", code="no_variables")
    if request.direction is not None:
        if order < 1:
            raise InputError("'direction' needs an 'order' of 1 or more: the derivatives "
                             "of order 1 .. order along it", code="bad_order")
        plan.directional = order
    elif request.partials is None and order >= 3:
        entries = outputs * n**order
        if entries > limits.max_tensor_entries:
            raise LimitError("max_tensor_entries", limits.max_tensor_entries,
                             f"The derivative tensor of order {order} ({outputs} output(s) "
                             f"x {n}^{order} coordinates = {entries} numbers)")
        plan.tensor_orders = tuple(range(3, order + 1))
    for powers in request.partials or []:
        alpha = tuple(sorted((name, p) for name, p in powers.items() if p > 0))
        _check_order(f"The partial {_shown(powers)}", sum(p for _, p in alpha), limits)
        plan.partials.append(alpha)
    plan.named = _union(_box(alpha) for alpha in plan.partials)
    if request.taylor is not None:
        k = request.taylor.order
        _check_order("'taylor.order'", k + (2 if request.taylor.remainder_at else 0), limits)
        count = math.comb(n + k, k)
        if count > limits.max_tensor_entries:
            raise LimitError("max_tensor_entries", limits.max_tensor_entries,
                             f"The Taylor polynomial of order {k} in {n} coordinates "
                             f"({count} coefficients)")
        plan.taylor, plan.remainder = k, request.taylor.remainder_at is not None
        plan.indexed = _union(_box(alpha) for alpha in multi_indices(n, k))
    return plan


def _check_order(what: str, order: int, limits: Limits) -> None:
    if order > limits.max_derivative_order:
        raise LimitError("max_derivative_order", limits.max_derivative_order,
                         f"{what} (order {order})")


def _shown(powers: Mapping[str, int]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in powers.items()) + "}"


def multi_indices(n: int, k: int) -> list[Weights]:
    """Every multi-index over n coordinates of order 0 .. k, lowest order first, as
    (coordinate index, power) pairs."""
    found: list[Weights] = []
    for order in range(k + 1):
        for combination in combinations_with_replacement(range(n), order):
            found.append(tuple((i, combination.count(i)) for i in sorted(set(combination))))
    return found


def _box(alpha: Weights) -> list[Weights]:
    """The directions that the partial alpha is combined from: the axis alone for a partial
    in one coordinate, else every 0 < β <= alpha."""
    if len(alpha) <= 1:
        return [((alpha[0][0], 1),)] if alpha else []
    names = [name for name, _ in alpha]
    boxes = product(*(range(p + 1) for _, p in alpha))
    return [tuple((n, b) for n, b in zip(names, beta, strict=True) if b)
            for beta in boxes if any(beta)]


def _union(groups: Iterator[list[Weights]]) -> list[Weights]:
    seen: dict[Weights, None] = {}
    for group in groups:
        seen.update(dict.fromkeys(group))
    return list(seen)


def directions(plan: OrderPlan, request: DifferentiateRequest, layout: Layout) -> np.ndarray:
    """The series' directions (P padded, n), in the plan's order, the names resolved
    against the coordinates (an unknown one is refused)."""
    index = {name: i for i, name in enumerate(layout.coordinates())}
    rows: list[np.ndarray] = []
    if plan.directional:
        assert request.direction is not None
        rows.append(from_point(request.direction, layout, "in 'direction'"))
    for weights in plan.named:
        rows.append(_vector({_coordinate(index, name): w for name, w in weights}, layout.n))
    rows += [_vector(dict(weights), layout.n) for weights in plan.indexed]
    if plan.remainder:
        assert request.taylor is not None and request.taylor.remainder_at is not None
        assert request.at is not None
        rows.append(from_point(request.taylor.remainder_at, layout, "in 'remainder_at'")
                    - from_point(request.at, layout))
    shape = series_shape(plan.kinds[-1])
    assert shape is not None
    matrix = np.zeros((shape[1], layout.n))
    matrix[:len(rows)] = np.stack(rows)
    return matrix


def _coordinate(index: Mapping[str, int], name: str) -> int:
    if name not in index:
        known = ", ".join(list(index)[:12]) + (", ..." if len(index) > 12 else "")
        raise PointError(f"'partials' names {name!r}, which is not a coordinate; the "
                         f"coordinates are {known}", variable=name)
    return index[name]


def _vector(weights: Mapping[int, int], n: int) -> np.ndarray:
    vector = np.zeros(n)
    for i, w in weights.items():
        vector[i] = w
    return vector


class Series:
    """The derivatives along the plan's directions, (P, K, *lead, *out), and the partials
    combined from them."""

    def __init__(self, plan: OrderPlan, results: Mapping[str, np.ndarray], lead: int) -> None:
        kinds = [k for k in plan.kinds if series_shape(k) is not None]
        self.values = (np.moveaxis(results[kinds[0]], [lead, lead + 1], [0, 1]) if kinds
                       else np.zeros((0, 0)))  # partials of order 0 alone: no series
        self.plan = plan
        offset = 1 if plan.directional else 0
        self.named = {w: i + offset for i, w in enumerate(plan.named)}
        offset += len(plan.named)
        self.indexed = {w: i + offset for i, w in enumerate(plan.indexed)}
        self.last = offset + len(plan.indexed)  # the remainder's direction

    def along(self, row: int, order: int) -> np.ndarray:
        """D^order along direction ``row`` (order >= 1)."""
        result: np.ndarray = self.values[row, order - 1]
        return result

    def partial(self, alpha: Weights, rows: Mapping[Weights, int],
                value: np.ndarray) -> np.ndarray:
        """∂^alpha f from the directions ``rows`` (keyed like ``alpha``); ``value`` if
        alpha = 0."""
        d = sum(p for _, p in alpha)
        if d == 0:
            return value
        if len(alpha) == 1:
            return self.along(rows[((alpha[0][0], 1),)], d)
        total: np.ndarray = np.zeros(())
        for beta in _box(alpha):
            given = dict(beta)
            weight = math.prod(math.comb(p, given.get(name, 0)) for name, p in alpha)
            sign = -1.0 if (d - sum(b for _, b in beta)) % 2 else 1.0
            total = total + sign * weight * self.along(rows[beta], d)
        return total / math.factorial(d)


def add_orders(body: dict[str, Any], plan: OrderPlan, results: Mapping[str, np.ndarray],
               lead: int, value: np.ndarray | None) -> NonFinite:
    """``tensors``, ``directional`` and ``partials`` into ``body``; ``lead`` is the number
    of leading axes (points, grid); their non-finite entries are listed."""
    nonfinite = NonFinite()
    if plan.tensor_orders:
        body["tensors"] = {}
        for k in plan.tensor_orders:
            array = np.ascontiguousarray(results[tensor_kind(k)])
            body["tensors"][str(k)] = array
            nonfinite.add(f"tensors.{k}", array)
    if not plan.directional and not plan.partials:
        return nonfinite
    series = Series(plan, results, lead)
    if plan.directional:
        stacked = np.stack([series.along(0, j) for j in range(1, plan.directional + 1)])
        body["directional"] = np.ascontiguousarray(np.moveaxis(stacked, 0, lead))
        nonfinite.add("directional", body["directional"])
    if plan.partials:
        assert value is not None or all(plan.partials)  # with_orders asks for f's value
        here = np.zeros(()) if value is None else value
        stacked = np.stack([np.broadcast_to(series.partial(a, series.named, here),
                                            here.shape if not all(plan.partials)
                                            else series.along(0, 1).shape)
                            for a in plan.partials])
        body["partials"] = np.ascontiguousarray(np.moveaxis(stacked, 0, lead))
        nonfinite.add("partials", body["partials"])
    return nonfinite


def taylor_coefficients(plan: OrderPlan, results: Mapping[str, np.ndarray],
                        value: np.ndarray) -> list[tuple[Weights, np.ndarray]]:
    """Each multi-index alpha with |alpha| <= k (by coordinate index) and ∂^alpha f(a) / alpha!."""
    assert plan.taylor is not None
    series = Series(plan, results, 0)
    out = []
    for alpha in multi_indices(plan.n, plan.taylor):
        scale = math.prod(math.factorial(p) for _, p in alpha)
        out.append((alpha, series.partial(alpha, series.indexed, value) / scale))
    return out


def next_terms(plan: OrderPlan, results: Mapping[str, np.ndarray]) -> np.ndarray:
    """The next two terms of the series at b, D^j f(a)[b - a] / j! for j = k+1, k+2: the
    remainder's leading part (two terms, so that an odd or even f, whose every other term
    is 0, is estimated too)."""
    assert plan.taylor is not None
    series = Series(plan, results, 0)
    k = plan.taylor
    return sum((series.along(series.last, j) / math.factorial(j) for j in (k + 1, k + 2)),
               start=np.zeros(()))
