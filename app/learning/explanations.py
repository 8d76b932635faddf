"""The parts of a response that explain rather than compute: ``symbolic``, and ``graph`` with
``cost`` (``explain``). Both are cold work, run like a compile: in a worker process within
the compile budget (or in a thread with ``in_process``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import numpy as np

from app.config import Limits
from app.engine.compilation import CompileSpec
from app.engine.xla import KINDS
from app.errors import TooComplex
from app.learning.explain import explain_task
from app.learning.symbolic import symbolic_task

Runner = Callable[..., Awaitable[Any]]


async def explanations(run: Runner, spec: CompileSpec, limits: Limits,
                       derivatives: Sequence[str], point: np.ndarray) -> dict[str, Any]:
    """``symbolic`` and ``graph`` + ``cost``, as ``derivatives`` asks; ``run(func, *args)``
    runs a cold task."""
    body: dict[str, Any] = {}
    if "symbolic" in derivatives:
        kinds = tuple(k for k in KINDS if k in derivatives)
        try:
            body["symbolic"] = await run(symbolic_task, spec, limits, kinds)
        except TooComplex as error:
            body["symbolic"] = {"skipped": f"SymPy could not finish: {error.detail}"}
    if "explain" in derivatives:
        body.update(await run(explain_task, spec, limits, point))
        body["nonfinite"] = _graph_nonfinite(body["graph"]["nodes"])
    return body


def _graph_nonfinite(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Where a graph value or adjoint is NaN or infinite (orjson writes it as null)."""
    report: list[dict[str, Any]] = []
    for node in nodes:
        for key in ("value", "adjoint"):
            array = np.asarray(node[key], dtype=np.float64) if node[key] is not None else None
            if array is None or array.dtype == np.bool_:
                continue
            for index in np.argwhere(~np.isfinite(array)):
                x = float(array[tuple(index)])
                kind = "nan" if np.isnan(x) else ("inf" if x > 0 else "-inf")
                report.append({"field": f"graph.{key}", "index": [node["id"], *index.tolist()],
                               "kind": kind})
    return report
