"""Arrays -> the response body: coordinates, outputs by their documented names, and where
any entry is not finite (JSON writes it as null)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from app.engine.nonfinite import NonFinite
from app.engine.xla import COMPILED_KINDS, Outputs, Signature
from app.language.ieee import SMALLEST_NORMAL


def assemble(signature: Signature, results: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The response body: coordinates, the outputs, and where any are not finite."""
    layout = signature.layout
    body: dict[str, Any] = {"coordinates": layout.coordinates()}
    if any(len(s) > 1 for s in layout.shapes):
        body["shapes"] = {n: list(s) for n, s in zip(layout.names, layout.shapes, strict=True)}
    names = output_names(signature)
    nonfinite = NonFinite()
    for kind in COMPILED_KINDS:
        if kind not in results:
            continue
        array = results[kind]
        nonfinite.add(names[kind], array)
        body[names[kind]] = float(array) if array.ndim == 0 else np.ascontiguousarray(array)
    return {**body, **nonfinite.report()}


#: A buffer of at most this many numbers may be read as Python floats (``plain_body``).
PLAIN_NUMBERS = 256


def plain_body(signature: Signature, outputs: Outputs, flat: np.ndarray) -> dict[str, Any] | None:
    """``assemble``'s body for one point's flat buffer (``outputs`` in order) of scalar
    variables, from its numbers as Python floats, when every one is finite and normal or
    zero (nothing to list or flush, the usual case): for a few numbers, a pass over a list
    costs less than NumPy's calls per output. None otherwise (a vector variable, a big
    buffer, a number to list or flush): ``assemble`` then answers."""
    layout = signature.layout
    if flat.size > PLAIN_NUMBERS or any(layout.shapes):  # vectors and matrices: assemble
        return None
    numbers = flat.tolist()
    for x in numbers:
        if not SMALLEST_NORMAL <= abs(x) < math.inf and x != 0.0:
            return None  # not finite, or subnormal
    body: dict[str, Any] = {"coordinates": layout.coordinates()}
    start = 0
    parts: dict[str, Any] = {}
    for kind, shape in outputs:
        stop = start + math.prod(shape)
        parts[kind] = _nested(numbers, start, shape)
        start = stop
    names = output_names(signature)
    for kind in COMPILED_KINDS:
        if kind in parts:
            body[names[kind]] = parts[kind]
    return body


def output_names(signature: Signature) -> dict[str, str]:
    """The body's name of each compiled output: the gradient of a vector f is its Jacobian."""
    return {"value": "value", "hessian": "hessian", "jvp": "jvp", "vjp": "vjp",
            "gradient": "jacobian" if signature.vector_valued else "gradient"}


def _nested(numbers: list[float], start: int, shape: tuple[int, ...]) -> Any:
    """The numbers from ``start`` as nested lists of ``shape`` (a number for ())."""
    if not shape:
        return numbers[start]
    if len(shape) == 1:
        return numbers[start:start + shape[0]]
    step = math.prod(shape[1:])
    return [_nested(numbers, start + i * step, shape[1:]) for i in range(shape[0])]


def add_explanations(body: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``body`` with ``symbolic``, ``graph`` and ``cost``; the graph's non-finite entries
    follow the outputs' in ``nonfinite``."""
    if extra.get("nonfinite"):
        body["nonfinite"] = body.get("nonfinite", []) + extra["nonfinite"]
    body.update({k: v for k, v in extra.items() if k != "nonfinite"})
    return body


def add_nonfinite(body: dict[str, Any], more: NonFinite) -> dict[str, Any]:
    """``body`` with ``more``'s non-finite entries listed after its own."""
    report = more.report()
    if report:
        body["nonfinite"] = body.get("nonfinite", []) + report["nonfinite"]
        if "nonfinite_count" in report or "nonfinite_count" in body:
            body["nonfinite_count"] = body.get("nonfinite_count", len(
                body["nonfinite"]) - len(report["nonfinite"])) + more.count
    return body
