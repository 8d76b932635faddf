"""Arrays -> the response body: coordinates, outputs by their documented names, and where
any entry is not finite (JSON writes it as null)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from app.engine.nonfinite import NonFinite
from app.engine.xla import COMPILED_KINDS, Signature


def assemble(signature: Signature, results: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The response body: coordinates, the outputs, and where any are not finite."""
    layout = signature.layout
    body: dict[str, Any] = {"coordinates": layout.coordinates()}
    if any(len(s) > 1 for s in layout.shapes):
        body["shapes"] = {n: list(s) for n, s in zip(layout.names, layout.shapes, strict=True)}
    names = {"value": "value", "hessian": "hessian", "jvp": "jvp", "vjp": "vjp",
             "gradient": "jacobian" if signature.vector_valued else "gradient"}
    nonfinite = NonFinite()
    for kind in COMPILED_KINDS:
        if kind not in results:
            continue
        array = results[kind]
        nonfinite.add(names[kind], array)
        body[names[kind]] = float(array) if array.ndim == 0 else np.ascontiguousarray(array)
    return {**body, **nonfinite.report()}


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
