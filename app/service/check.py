"""``"check"``: nabla's gradient and Hessian (or a claimed gradient) against an independent
referee, at each of the request's points.

    finite differences   central differences, Richardson-extrapolated: D(h) has error
                         c2 h^2 + c4 h^4, so R(h) = (4 D(h/2) - D(h)) / 3 has O(h^4); the
                         estimate is R(h/2), its own error |R(h/2) - R(h)| plus rounding
                         (4 eps max|f| / h). The gradient from values of f, the Hessian from
                         the gradient (its columns).
    Taylor remainder     step-free: r(h) = |f(x + h d) - f(x) - h g·d| shrinks as h^2 when g
                         is the gradient and as h when it is not; the observed rate is
                         log2 r(h) / r(h/2) at the smallest steps (the median of the last 3
                         of 16 halvings whose remainders are above rounding), along each axis
                         and the diagonal: an error in g shows as h takes over from h^2. A
                         remainder at rounding level throughout (f linear along d) has no
                         rate, and agrees.

A component agrees when |computed - estimate| is within ``tolerance`` times the larger of
the gradient's (or Hessian's) largest magnitude, or within the estimate's own error: a
step that straddles a kink makes the finite differences unreliable, not the derivative
wrong. Every evaluation goes through the service itself: one batch of points, value and
gradient.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import numpy as np

from app.engine.xla import Layout, Signature
from app.errors import InputError
from schemas.differentiate import DifferentiateRequest

Runner = Callable[[DifferentiateRequest], Awaitable[dict[str, Any]]]
EPS = float(np.finfo(np.float64).eps)
#: The finite differences' first step, relative to max(1, |x_i|), halved twice.
STEP = 1e-3
LEVELS = 3
#: The Taylor test's first step (relative to max(1, |x|)) and its halvings.
TAYLOR_STEP = 1e-2
HALVINGS = 16
#: Remainders within this many rounding errors of f are noise, not a rate.
ROUNDING = 1024
#: The rate is the median of the last (smallest-step) ratios above rounding: the asymptote.
TAIL = 3
#: A rate at least this counts as second order (h^2: 2, wrong gradient: 1).
RATE_AGREES = 1.5


async def check(run: Runner, request: DifferentiateRequest, signature: Signature,
                points: np.ndarray) -> dict[str, Any]:
    """The ``check`` part of the answer for ``request`` at ``points`` (n,) or (N, n)."""
    assert request.check is not None
    if signature.vector_valued:
        raise InputError("'check' compares the gradient and Hessian of a scalar f; check "
                         "each component of a vector f in a request of its own",
                         code="check_of_vector")
    layout, tolerance = signature.layout, request.check.tolerance
    single = points.ndim == 1
    x = points.reshape(-1, layout.n)
    claimed = request.check.gradient
    if claimed is not None and len(claimed) != layout.n:
        raise InputError(f"'check.gradient' has {len(claimed)} formulas; give {layout.n}, one "
                         f"per coordinate ({', '.join(layout.coordinates()[:12])})",
                         code="bad_claimed_gradient")
    if not np.all(np.abs(x) <= CHECK_RANGE):
        raise InputError(f"'check' steps away from each point to take finite differences, so "
                         f"each coordinate must be at most {CHECK_RANGE:g} in magnitude (the "
                         "steps would overflow float64 beyond it); check at a smaller point",
                         code="check_out_of_range")
    probe = Probe(x, layout.n)
    values, gradients = await _evaluate(run, request.expression, layout, probe.points)
    hessian_given = await _evaluate(run, request.expression, layout, x, hessian=True)
    # f may be infinite or NaN near a point: the differences are then what IEEE says, and
    # the answer shows them as null and not agreeing
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        at_x = probe.split(values, gradients)
        gradient = _agreement(at_x.gradient, at_x.fd_gradient, at_x.gradient_error, tolerance)
        hessian = _agreement(hessian_given, at_x.fd_hessian, at_x.hessian_error, tolerance)
        rates = [_rates(layout, at_x, at_x.gradient, i) for i in range(len(x))]
    answer: dict[str, Any] = {
        "tolerance": tolerance, "gradient": gradient, "hessian": hessian,
        "taylor": rates[0] if single else rates}
    answer["agrees"] = (gradient["agrees"] and hessian["agrees"]
                        and all(r["agrees"] for rs in rates for r in rs))
    if claimed is not None:
        answer["claimed"] = await _claimed(run, claimed, layout, at_x, tolerance, single)
    if single:
        _drop_batch_axis(answer)
    plain: dict[str, Any] = _plain(answer)
    return plain


def _plain(value: Any) -> Any:
    """Arrays as nested lists (NaN and infinities as None): the check is small."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


#: The largest coordinate a check steps from: x + h stays far from float64's overflow.
CHECK_RANGE = 1e300


class Probe:
    """The points to evaluate: x itself, x +- h e_i at the levels of the finite
    differences, and x + h d along the Taylor test's directions."""

    def __init__(self, x: np.ndarray, n: int) -> None:
        self.x, self.n = x, n
        scale = np.maximum(1.0, np.abs(x))  # (N, n)
        self.h = STEP * scale[:, None, :] / 2.0 ** np.arange(LEVELS)[None, :, None]  # N,L,n
        self.directions = np.vstack([np.eye(n), np.ones((1, n))]) if n > 1 else np.eye(1)
        reach = np.maximum(1.0, np.abs(x).max(axis=1))  # (N,)
        self.steps = TAYLOR_STEP * reach[:, None] / 2.0 ** np.arange(HALVINGS)[None, :]
        eye = np.eye(n)
        shifted = [x]
        for sign in (1.0, -1.0):  # (N, L, n, n): point, level, coordinate moved, coordinates
            shifted.append((x[:, None, None, :] + sign * self.h[..., None] * eye).reshape(-1, n))
        along = (x[:, None, None, :] + self.steps[:, None, :, None]
                 * self.directions[None, :, None, :])  # (N, D, J, n)
        shifted.append(along.reshape(-1, n))
        self.points = np.concatenate(shifted)

    def split(self, values: np.ndarray, gradients: np.ndarray) -> Measured:
        """The evaluations, back in their places."""
        N, L, n, D = len(self.x), LEVELS, self.n, len(self.directions)
        sizes = [N, N * L * n, N * L * n, N * D * HALVINGS]
        cuts = np.cumsum(sizes)[:-1]
        v0, v_plus, v_minus, v_along = np.split(values, cuts)
        g0, g_plus, g_minus, _ = np.split(gradients, cuts)
        return Measured(self, v0, g0, v_plus.reshape(N, L, n), v_minus.reshape(N, L, n),
                        g_plus.reshape(N, L, n, n), g_minus.reshape(N, L, n, n),
                        v_along.reshape(N, D, HALVINGS))


class Measured:
    """Values and gradients at the probe's points, and the finite-difference estimates."""

    def __init__(self, probe: Probe, value: np.ndarray, gradient: np.ndarray,
                 v_plus: np.ndarray, v_minus: np.ndarray, g_plus: np.ndarray,
                 g_minus: np.ndarray, along: np.ndarray) -> None:
        self.probe, self.value, self.gradient, self.along = probe, value, gradient, along
        h = probe.h  # (N, L, n)
        with np.errstate(all="ignore"):
            first = (v_plus - v_minus) / (2 * h)  # (N, L, n)
            rounding = 4 * EPS * np.maximum(np.abs(v_plus), np.abs(v_minus)).max(1) / h[:, -1]
            self.fd_gradient, self.gradient_error = _richardson(first, rounding)
            columns = (g_plus - g_minus) / (2 * h[..., None])  # (N, L, j moved, i)
            second = np.swapaxes(columns, -1, -2)  # (N, L, i, j): d g_i / d x_j
            g_size = np.maximum(np.abs(g_plus), np.abs(g_minus)).max(1)  # (N, j, i)
            rounding_h = 4 * EPS * np.swapaxes(g_size, -1, -2) / h[:, -1, None, :]
            self.fd_hessian, self.hessian_error = _richardson(second, rounding_h)


def _richardson(estimates: np.ndarray, rounding: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two Richardson steps from the levels (axis 1): the better, and its error estimate."""
    r1 = (4 * estimates[:, 1] - estimates[:, 0]) / 3
    r2 = (4 * estimates[:, 2] - estimates[:, 1]) / 3
    return r2, np.abs(r2 - r1) + rounding


def _agreement(computed: np.ndarray, estimate: np.ndarray, own_error: np.ndarray,
               tolerance: float) -> dict[str, Any]:
    with np.errstate(all="ignore"):
        error = np.abs(computed - estimate)
        axes = tuple(range(1, computed.ndim))
        scale = np.maximum(np.abs(computed).max(axis=axes, keepdims=True),
                           np.abs(estimate).max(axis=axes, keepdims=True))
        agree = (error <= tolerance * scale) | (error <= own_error)
    return {"agrees": bool(agree.all()), "computed": computed, "finite_difference": estimate,
            "error": error, "estimated_error": own_error, "agree": agree}


def _rates(layout: Layout, measured: Measured, gradient: np.ndarray,
           point: int) -> list[dict[str, Any]]:
    """The Taylor test at one point, along each direction, with ``gradient`` (N, n)."""
    probe, f0 = measured.probe, float(measured.value[point])
    names = [*layout.coordinates(), "diagonal"] if layout.n > 1 else layout.coordinates()
    steps = probe.steps[point]
    listed = []
    for d, direction in enumerate(probe.directions):
        slope = float(gradient[point] @ direction)
        with np.errstate(all="ignore"):
            remainders = np.abs(measured.along[point, d] - f0 - steps * slope)
            floor = ROUNDING * EPS * (abs(f0) + np.abs(steps * slope)) + np.finfo(float).tiny
            usable = (remainders > floor)
            ratios = np.log2(remainders[:-1] / remainders[1:])[usable[:-1] & usable[1:]]
        finite = ratios[np.isfinite(ratios)][-TAIL:]
        rate = float(np.median(finite)) if finite.size else None
        flat = not usable.any() and bool(np.isfinite(remainders).all())
        listed.append({"direction": names[d], "steps": steps.tolist(),
                       "remainders": [float(r) if np.isfinite(r) else None
                                      for r in remainders],
                       "rate": rate, "agrees": flat or (rate is not None
                                                        and rate >= RATE_AGREES)})
    return listed


async def _claimed(run: Runner, formulas: Sequence[str], layout: Layout, measured: Measured,
                   tolerance: float, single: bool) -> dict[str, Any]:
    """A claimed gradient against the finite differences, and through the Taylor test."""
    x = measured.probe.x
    claimed = (await run(DifferentiateRequest.model_validate(
        {"expression": list(formulas), "variables": _declared(layout),
         "points": _columns(layout, x), "derivatives": ["value"]})))["value"]
    claimed = np.asarray(claimed, dtype=np.float64).reshape(len(x), layout.n)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        agreement = _agreement(claimed, measured.fd_gradient, measured.gradient_error,
                               tolerance)
        rates = [_rates(layout, measured, claimed, i) for i in range(len(x))]
    per_point = [bool(agreement["agree"][i].all()) and all(r["agrees"] for r in rates[i])
                 for i in range(len(x))]
    return {"agrees": all(per_point), "formulas": list(formulas), "gradient": agreement,
            "points": per_point, "taylor": rates[0] if single else rates}


async def _evaluate(run: Runner, expression: str | list[str], layout: Layout,
                    points: np.ndarray, hessian: bool = False) -> Any:
    """Values and gradients of f at ``points`` (N, n), through the service; or its
    Hessians."""
    kinds = ["hessian"] if hessian else ["value", "gradient"]
    body = await run(DifferentiateRequest.model_validate(
        {"expression": expression, "variables": _declared(layout),
         "points": _columns(layout, points), "derivatives": kinds}))
    if hessian:
        return np.asarray(body["hessian"], dtype=np.float64).reshape(-1, layout.n, layout.n)
    return (np.asarray(body["value"], dtype=np.float64).reshape(-1),
            np.asarray(body["gradient"], dtype=np.float64).reshape(-1, layout.n))


def _declared(layout: Layout) -> dict[str, list[int]]:
    return {name: list(shape) for name, shape in zip(layout.names, layout.shapes, strict=True)}


def _columns(layout: Layout, points: np.ndarray) -> dict[str, Any]:
    """Flat coordinates (N, n) as the column-wise ``points`` of a request."""
    columns: dict[str, Any] = {}
    offset = 0
    for name, shape, size in zip(layout.names, layout.shapes, layout.sizes, strict=True):
        part = points[:, offset:offset + size]
        columns[name] = part.reshape(-1).tolist() if shape == () else part.tolist()
        offset += size
    return columns


def _drop_batch_axis(answer: Mapping[str, Any]) -> None:
    """At one point (``at``), the arrays lose their leading axis of length 1."""
    for part in (answer.get("gradient"), answer.get("hessian"),
                 (answer.get("claimed") or {}).get("gradient")):
        if part is not None:
            for key in ("computed", "finite_difference", "error", "estimated_error", "agree"):
                part[key] = part[key][0]
