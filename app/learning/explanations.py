"""The parts of a response that explain rather than compute: ``symbolic``, and ``graph`` with
``cost`` (``explain``). Both are cold work, run like a compile: in a worker process within
the compile budget (or in a thread with ``in_process``), from the program the request's
text was parsed into once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import numpy as np

from app.engine.nonfinite import NonFinite
from app.engine.xla import KINDS, Program
from app.errors import TooComplex
from app.learning.explain import explain_task
from app.learning.symbolic import Higher, symbolic_task

Runner = Callable[..., Awaitable[Any]]


async def explanations(run: Runner, program: Program, derivatives: Sequence[str],
                       point: np.ndarray, higher: Higher | None = None) -> dict[str, Any]:
    """``symbolic`` and ``graph`` + ``cost``, as ``derivatives`` asks; ``run(func, *args)``
    runs a cold task."""
    body: dict[str, Any] = {}
    if "symbolic" in derivatives:
        kinds = tuple(k for k in KINDS if k in derivatives)
        try:
            body["symbolic"] = await run(symbolic_task, program, kinds, higher)
        except TooComplex as error:
            body["symbolic"] = {"skipped": f"SymPy could not finish: {error.detail}"}
    if "explain" in derivatives:
        body.update(await run(explain_task, program, point))
        body["nonfinite"] = graph_nonfinite(body["graph"]["nodes"])
    return body


def graph_nonfinite(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Where a graph value or adjoint is NaN or infinite (orjson writes it as null)."""
    listing = NonFinite(limit=None)  # all listed: explain caps a graph's numbers already
    for node in nodes:
        for key in ("value", "adjoint"):
            if node[key] is not None:
                listing.add(f"graph.{key}", np.asarray(node[key], dtype=np.float64),
                            (node["id"],))
    return listing.listed


def symbolic_orders(plan: Any, direction: np.ndarray | None) -> Higher:
    """What ``symbolic`` writes past the Hessian for a request's plan
    (``app.service.orders``) and its flat direction: plain data, sent to a worker."""
    along = None if direction is None else tuple(float(x) for x in direction)
    return Higher(tuple(plan.tensor_orders), along, plan.directional, tuple(plan.partials))
