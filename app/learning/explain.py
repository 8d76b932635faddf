"""The computational graph of a scalar f at one point, with adjoints, and the cost of each
compiled computation.

Nodes are the distinct subexpressions of the SymPy tree (shared ones appear once), in an
order where every input comes before its use. A node's value is what the compiler's
``Evaluator`` computes; its adjoint d f / d node comes from ``jax.grad`` with respect to a
"nudge" added to the node's value where it is computed (the nudge is 0, so values do not
change); a variable's adjoint is the gradient itself. The cost of value, gradient and
Hessian is the flop count of XLA's cost analysis of each compiled function alone.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import sympy
from sympy.logic.boolalg import Boolean

from app.engine.evaluator import Evaluator
from app.engine.xla import COMPILER_OPTIONS, KINDS, Program, fused_function
from app.errors import InputError, LimitError
from app.language import functions as F
from app.language.catalog import OP_NAMES
from app.language.walk import divides, operands

MAX_GRAPH_NODES = 2_000
MAX_GRAPH_NUMBERS = 100_000
_OPS = {sympy.Add: "add", sympy.Mul: "mul", sympy.Pow: "pow", sympy.Piecewise: "piecewise",
        sympy.And: "and", sympy.Or: "or", sympy.Not: "not", **OP_NAMES}


def explain_task(program: Program, point: np.ndarray) -> dict[str, Any]:
    """``graph`` and ``cost`` of a scalar f at ``point`` (flat coordinates); for a worker."""
    if program.vector_valued:
        raise InputError("'explain' needs a scalar f; this f has "
                         f"{program.outputs} outputs: explain one of them at a time",
                         code="explain_needs_scalar")
    nodes = graph_nodes(program.exprs[0])
    if len(nodes) > MAX_GRAPH_NODES:
        raise LimitError("max_graph_nodes", MAX_GRAPH_NODES,
                         f"The number of nodes of the graph ({len(nodes)})")
    z = jnp.asarray(point, dtype=jnp.float64)
    values = _values(program, nodes, z)
    if sum(np.size(v) for v in values) > MAX_GRAPH_NUMBERS:
        raise LimitError("max_graph_numbers", MAX_GRAPH_NUMBERS,
                         "The number of values in the graph")
    adjoints = _adjoints(program, nodes, values, z)
    ids = {node: i for i, node in enumerate(nodes)}
    described = [_describe(node, ids, values[i], adjoints[i]) for i, node in enumerate(nodes)]
    return {"graph": {"nodes": described, "output": ids[program.exprs[0]]},
            "cost": cost(program)}


def graph_nodes(root: Any) -> list[Any]:
    """The distinct nodes under ``root``, inputs first (an explicit post-order walk)."""
    order: list[Any] = []
    seen: set[Any] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, ready = stack.pop()
        if node in seen:
            continue
        if ready:
            seen.add(node)
            order.append(node)
            continue
        stack.append((node, True))
        stack.extend((c, False) for c in reversed(inputs(node)) if c not in seen)
    return order


def inputs(node: Any) -> tuple[Any, ...]:
    """The nodes whose values ``node`` is computed from (as the compiler sees them)."""
    if isinstance(node, sympy.Symbol) or node.is_Number or isinstance(node, sympy.NumberSymbol):
        return ()
    if isinstance(node, sympy.Piecewise):
        return tuple(x for pair in node.args for x in pair)
    if isinstance(node, sympy.Pow) and node.exp == sympy.S.Half:
        return (node.base,)  # compiled as sqrt
    return tuple(operands(node))


def _values(program: Program, nodes: list[Any], z: Any) -> list[np.ndarray]:
    evaluator = Evaluator(program.layout.unflatten(z))
    return [np.asarray(evaluator.walk(node)) for node in nodes]


def _adjoints(program: Program, nodes: list[Any], values: list[np.ndarray],
              z: Any) -> list[np.ndarray | None]:
    nudged = [i for i, n in enumerate(nodes)
              if not isinstance(n, sympy.Symbol | Boolean) and values[i].dtype != np.bool_]
    root = program.exprs[0]

    def f(z: Any, nudges: list[Any]) -> Any:
        env = program.layout.unflatten(z)
        by_node = {nodes[i]: d for i, d in zip(nudged, nudges, strict=True)}
        return jnp.sum(Evaluator(env, by_node).walk(root))

    zeros = [jnp.zeros(values[i].shape, dtype=jnp.float64) for i in nudged]
    dz, dnudges = jax.grad(f, argnums=(0, 1))(z, zeros)
    env_adjoints = program.layout.unflatten(dz)
    adjoints: list[np.ndarray | None] = [None] * len(nodes)
    for i, d in zip(nudged, dnudges, strict=True):
        adjoints[i] = np.asarray(d)
    for i, node in enumerate(nodes):
        if isinstance(node, sympy.Symbol):
            adjoints[i] = np.asarray(env_adjoints[node])
    return adjoints


def _describe(node: Any, ids: dict[Any, int], value: np.ndarray,
              adjoint: np.ndarray | None) -> dict[str, Any]:
    described: dict[str, Any] = {"id": ids[node], "op": _op(node),
                                 "inputs": [ids[c] for c in inputs(node)],
                                 "value": value.tolist(),
                                 "adjoint": None if adjoint is None else adjoint.tolist()}
    if isinstance(node, sympy.Symbol):
        described["name"] = node.name
    params = _params(node)
    if params:
        described["params"] = params
    return described


def _op(node: Any) -> str:
    if isinstance(node, sympy.Symbol):
        return "variable"
    if node.is_Number or (isinstance(node, sympy.NumberSymbol | Boolean) and not node.args):
        return "constant"
    if isinstance(node, sympy.Pow) and node.exp == sympy.S.Half:
        return "sqrt"
    if isinstance(node, sympy.core.relational.Relational):
        return str(node.rel_op)
    if isinstance(node, sympy.Mul) and any(divides(node)):
        return "div"
    return _OPS.get(type(node), type(node).__name__.lower())


def _params(node: Any) -> list[int]:
    """The integer arguments that are not inputs: an integer exponent, an index, a length;
    for a division, the positions of the inputs that divide."""
    if isinstance(node, sympy.Pow) and node.exp.is_Integer:
        return [int(node.exp)]
    if isinstance(node, sympy.Mul):
        return [i for i, d in enumerate(divides(node)) if d]
    if isinstance(node, F.VectorOp):
        return [int(a) for a in node.args[len(inputs(node)):]]
    return []


def cost(program: Program) -> dict[str, Any]:
    """Flops (and transcendentals, bytes accessed) of value, gradient, Hessian compiled alone."""
    spec = jax.ShapeDtypeStruct((program.layout.n,), jnp.float64)  # type: ignore[no-untyped-call]
    analyses = {}
    for kind in KINDS:
        compiled = jax.jit(fused_function(program, (kind,))).lower(spec).compile(
            COMPILER_OPTIONS)
        analysis = compiled.cost_analysis()
        analyses[kind] = (analysis[0] if isinstance(analysis, list) else analysis) or {}
    report: dict[str, Any] = {k: float(a.get("flops", 0.0)) for k, a in analyses.items()}
    report["transcendentals"] = {k: float(a.get("transcendentals", 0.0))
                                 for k, a in analyses.items()}
    report["bytes_accessed"] = {k: float(a.get("bytes accessed", 0.0))
                                for k, a in analyses.items()}
    return report
