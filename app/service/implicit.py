"""POST /v1/implicit: derivatives of y defined implicitly by an equation F = G at a point.

The grammar has no ``=``: the equation is split at its one lone ``=`` (not part of ``==``,
``<=``, ``>=`` or ``!=``), each side is read on its own (so an error's position is the
equation's, and ``x) + (y = 1`` cannot pair parentheses across the sides), and H = (F) - (G)
is differentiated as any expression. With the Taylor coefficients of H at (a, b) up to
order k (``app.service.orders``), y = b + q(x - a) is solved order by order: the part of
degree j of H(a + dx, b + q(dx)) is H_y q_j plus terms of lower degree of q, so

    q_j = -[degree j of H(a + dx, b + q_<j(dx))] / H_y,      j = 1 .. k,

and ∂^g y(a) = g! q_g for each multi-index g. The point must lie on the curve (|H| within
``tolerance`` of 0, relative to max(1, |F| + |G|)) and H_y must not vanish there (else y
is not a function of x near it): both are 422 problems.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from app.errors import InputError, LimitError, NablaError, RemoteProblem
from app.learning.implicit import implicit_task
from app.service.orders import multi_indices
from app.service.pipeline import Service
from app.service.spec import text_spec
from schemas.differentiate import DifferentiateRequest
from schemas.orders import ImplicitRequest

EPS = float(np.finfo(np.float64).eps)
#: |H_y| at most this times max(1, |∇H|) counts as zero.
SINGULAR = 64 * EPS
Poly = dict[tuple[int, ...], float]


def split_equation(equation: str) -> tuple[str, str, int]:
    """The two sides of ``equation`` and where the right one starts."""
    lone = [i for i, c in enumerate(equation) if c == "=" and
            (i == 0 or equation[i - 1] not in "<>!=") and
            (i + 1 == len(equation) or equation[i + 1] != "=")]
    if len(lone) != 1:
        where = f" (at {', '.join(map(str, lone[:5]))})" if lone else ""
        raise InputError(f"The equation has {len(lone)} '='{where}; write one, between its "
                         "two sides, as in x^2 + y^2 = 1", code="bad_equation")
    cut = lone[0]
    return equation[:cut], equation[cut + 1:], cut + 1


async def implicit(service: Service, request: ImplicitRequest) -> dict[str, Any]:
    """The answer of POST /v1/implicit."""
    lhs, rhs, start = split_equation(request.equation)
    names = [*await _read(service, lhs, 0), *await _read(service, rhs, start)]
    missing = sorted(set(names) - set(request.at))
    if missing:
        raise InputError(f"The equation uses {', '.join(missing)}, which 'at' does not give; "
                         "give every variable's value", code="invalid_point")
    y = request.dependent
    if y not in request.at:
        raise InputError(f"'at' has no value for the dependent variable {y!r}; give a point "
                         "on the curve, every variable included", code="bad_dependent")
    independent = tuple(sorted(name for name in request.at if name != y))
    if not independent:
        raise InputError(f"The equation needs an independent variable besides {y!r}",
                         code="bad_dependent")
    n = len(independent)
    order = request.order if n == 1 else min(request.order, 2)
    limit = service.settings.max_derivative_order
    if order > limit:
        raise LimitError("max_derivative_order", limit, f"'order' ({order})")
    variables: dict[str, list[int]] = {name: [] for name in (*independent, y)}
    at = {name: request.at[name] for name in variables}
    sides = await service.run(DifferentiateRequest.model_validate(
        {"expression": [lhs, rhs], "variables": variables, "at": at,
         "derivatives": ["value"]}))
    difference = f"({lhs}) - ({rhs})"
    body = await service.run(DifferentiateRequest.model_validate(
        {"expression": difference, "variables": variables, "at": at,
         "derivatives": ["value"], "taylor": {"order": order}}))
    coefficients = {_dense(c["powers"], (*independent, y)): c["value"]
                    for c in body["taylor"]["coefficients"]}
    residual = coefficients[(0,) * (n + 1)]
    left, right = (float(v) for v in np.asarray(sides["value"]))
    _on_curve(residual, left, right, request.tolerance)
    slope = _slope(coefficients, n)
    q = _solve(coefficients, n, order, slope)
    answer: dict[str, Any] = {"dependent": y, "coordinates": list(independent),
                              "residual": residual}
    if n == 1:
        answer["derivatives"] = [math.factorial(j) * q.get((j,), 0.0)
                                 for j in range(1, order + 1)]
    else:
        eye = np.eye(n, dtype=int)
        answer["gradient"] = [q.get(tuple(eye[i]), 0.0) for i in range(n)]
        if order >= 2:
            answer["hessian"] = [[q.get(tuple(eye[i] + eye[j]), 0.0) * (2 if i == j else 1)
                                  for j in range(n)] for i in range(n)]
    if request.symbolic:
        parsed = await service.engine.parsed(text_spec(difference))
        answer["symbolic"] = await service.engine.task(implicit_task, parsed.program, y,
                                                        independent, order)
    return answer


async def _read(service: Service, side: str, offset: int) -> tuple[str, ...]:
    """Read one side of the equation (in a worker): its names; its errors point into the
    equation."""
    if not side.strip():
        raise InputError("A side of the equation is empty; write an expression on each "
                         "side of '='", code="bad_equation")
    try:
        parsed = await service.engine.parsed(text_spec(side))
    except NablaError as error:
        problem = error.problem()
        old = problem.get("position")
        if not isinstance(old, int):
            raise
        problem["position"] = old + offset
        problem["detail"] = str(problem["detail"]).replace(f"position {old}",
                                                           f"position {old + offset}")
        raise RemoteProblem(problem) from None
    return parsed.program.layout.names


def _dense(powers: Mapping[str, int], names: tuple[str, ...]) -> tuple[int, ...]:
    return tuple(powers.get(name, 0) for name in names)


def _on_curve(residual: float | None, left: float, right: float, tolerance: float) -> None:
    scale = max(1.0, abs(left) + abs(right))
    if residual is None or not abs(residual) <= tolerance * scale:
        shown = "not a number" if residual is None else f"{residual:.3g}"
        raise InputError(
            f"The point is not on the curve: the two sides differ by {shown} there, more "
            f"than the tolerance {tolerance:g} (relative to max(1, |F| + |G|) = {scale:.3g}); "
            "give a point that satisfies the equation", code="not_on_curve",
            residual=residual)


def _slope(coefficients: Mapping[tuple[int, ...], float | None], n: int) -> float:
    """H_y, refused when it vanishes (then y is not a function of x near the point)."""
    unit = [tuple(1 if i == j else 0 for i in range(n + 1)) for j in range(n + 1)]
    gradient = [coefficients.get(u) for u in unit]
    if any(g is None for g in gradient):
        raise InputError("The equation's derivatives are not finite at the point",
                         code="singular_point")
    slope = float(gradient[-1])  # type: ignore[arg-type]
    biggest = max(1.0, *(abs(float(g)) for g in gradient))  # type: ignore[arg-type]
    if abs(slope) <= SINGULAR * biggest:
        raise InputError(
            "The derivative of the equation by the dependent variable is 0 at the point, so "
            "the equation does not define it as a function of the others there (a vertical "
            "tangent or a singular point); choose another point or another dependent "
            "variable", code="singular_point")
    return slope


def _solve(coefficients: Mapping[tuple[int, ...], float | None], n: int, order: int,
           slope: float) -> Poly:
    """q with H(a + dx, b + q(dx)) = O(|dx|^(order+1)), q(0) = 0, degree by degree."""
    terms = [(alpha, float(c)) for alpha, c in coefficients.items()
             if c is not None and c != 0.0]
    q: Poly = {}
    for degree in range(1, order + 1):
        composed = _compose(terms, q, n, degree)
        for gamma in _degree(n, degree):
            q[gamma] = -composed.get(gamma, 0.0) / slope
    return q


def _compose(terms: list[tuple[tuple[int, ...], float]], q: Poly, n: int,
             degree: int) -> Poly:
    """The part of degree ``degree`` of H(dx, q(dx)), H given by its terms."""
    powers: list[Poly] = [{(0,) * n: 1.0}]
    for _ in range(degree):
        powers.append(_times(powers[-1], q, degree))
    out: Poly = {}
    for alpha, c in terms:
        b = alpha[-1]
        if b > degree:
            continue
        for gamma, v in powers[b].items():
            total = tuple(g + a for g, a in zip(gamma, alpha[:-1], strict=True))
            if sum(total) == degree:
                out[total] = out.get(total, 0.0) + c * v
    return out


def _times(a: Poly, b: Poly, degree: int) -> Poly:
    out: Poly = {}
    for ga, va in a.items():
        for gb, vb in b.items():
            gamma = tuple(x + y for x, y in zip(ga, gb, strict=True))
            if sum(gamma) <= degree:
                out[gamma] = out.get(gamma, 0.0) + va * vb
    return out


def _degree(n: int, degree: int) -> list[tuple[int, ...]]:
    dense = []
    for alpha in multi_indices(n, degree):
        if sum(p for _, p in alpha) == degree:
            powers = dict(alpha)
            dense.append(tuple(powers.get(i, 0) for i in range(n)))
    return dense
