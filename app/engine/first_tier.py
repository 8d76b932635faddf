"""The first tier for a new expression: forward-mode jets over NumPy (``app.engine.jets``).

XLA needs 50 ms to seconds to compile a new expression; the jets answer small problems in
milliseconds without compiling. ``interpretable`` says when a request is small enough;
the engine answers with ``interpret`` (``app.engine.tiers.JetTier``) and compiles in the
background for the next one.

Both tiers must give the same numbers, and at a pole, a kink or an overflow the NaN and
infinities of a derivative depend on how each operation's rule is composed (JAX takes the
Hessian as forward mode over reverse mode; the jets carry forward derivatives). So
the jets answer only when every number they computed is finite: otherwise ``interpret``
raises ``NotFinite`` and the request is answered by XLA, whose conventions are the
service's.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import sympy

from app.engine.jets import Jet, JetEvaluator, NotInterpretable, program_interpretable
from app.engine.xla import KINDS, Program
from app.language.build import variable_symbol
from app.language.ieee import flush

Arr = np.ndarray
#: Nodes of the program's trees, at most: the size of the text, whatever its names are
#: called (a limit of 4,000 characters, before, sent a 100-variable Rosenbrock to XLA, 3 s
#: instead of 45 ms, once its variables had names of two letters). A text of 4,000
#: characters has up to about 2,000 nodes; the 100-variable Rosenbrock 1,783; a compile bomb
#: of 500 factors 3,001 (refused, not answered by jets: ``app.engine.planning``).
MAX_NODES = 2_000
MAX_COORDINATES = 128
#: Bound on points x outputs x n (x n with the Hessian) x nodes: the jets' work and memory.
MAX_JET_ENTRIES = 30_000_000
#: From this many coordinates on, each jet carries derivatives over its support only (the
#: coordinates it depends on); below, over all n, where scattering would cost more than it
#: saves.
SPARSE_FROM = 16

__all__ = ["MAX_NODES", "NotFinite", "NotInterpretable", "interpret", "interpretable",
           "program_interpretable"]


class NotFinite(NotInterpretable):
    """A result of the jets is NaN or infinite: XLA's conventions decide that answer. The
    jets' results stand only if XLA cannot compile the expression."""

    def __init__(self, kind: str, results: dict[str, np.ndarray]) -> None:
        super().__init__(f"the {kind} has NaN or infinite entries")
        self.results = results


def variables(layout_names: tuple[str, ...], layout_shapes: tuple[tuple[int, ...], ...],
              points: Arr, symbol: Callable[[str], sympy.Symbol],
              dense: bool = False) -> dict[sympy.Symbol, Jet]:
    """The jets of the variables at the points (B, n): seeds of the forward mode. Each
    variable's jet is over its own coordinates (its support), or over all n if ``dense``
    (the same numbers, at the cost of carrying n-by-n Hessians through every node)."""
    n = points.shape[1]
    env: dict[sympy.Symbol, Jet] = {}
    offset = 0
    for name, shape in zip(layout_names, layout_shapes, strict=True):
        size = shape[0] if shape else 1
        if dense:
            seed = np.zeros((1, size, n))
            seed[0, np.arange(size), offset + np.arange(size)] = 1.0
            support = None
        else:
            seed = np.eye(size)[None]
            support = tuple(range(offset, offset + size))
        env[symbol(name)] = Jet(points[:, offset:offset + size], seed, None, support)
        offset += size
    return env


def outputs(jet: Jet, batch: int, size: int, n: int, kinds: tuple[str, ...]) -> dict[str, Arr]:
    """A jet as value (B, size), gradient (B, size, n) and Hessian (B, size, n, n) arrays:
    its derivatives over its support, placed among zeros."""
    out: dict[str, Arr] = {}
    if "value" in kinds:
        out["value"] = np.broadcast_to(jet.v, (batch, size))
    if "gradient" in kinds:
        g = np.zeros((1, 1, n)) if jet.g is None else dense(jet.g, jet.s, n, 1)
        out["gradient"] = np.broadcast_to(g, (batch, size, n))
    if "hessian" in kinds:
        h = np.zeros((1, 1, n, n)) if jet.h is None else dense(flush(jet.h), jet.s, n, 2)
        out["hessian"] = np.broadcast_to(h, (batch, size, n, n))
    return out


def dense(x: Arr, support: tuple[int, ...] | None, n: int, axes: int) -> Arr:
    """A derivative over ``support`` (None: all n coordinates) as one over all n."""
    if support is None:
        return x
    out = np.zeros(x.shape[:-axes] + (n,) * axes)
    index = np.asarray(support)
    if axes == 1:
        out[..., index] = x
    else:
        out[..., index[:, None], index] = x
    return out


def interpretable(nodes: int, n: int, size: int, count: int, kinds: tuple[str, ...]) -> bool:
    """Whether jets answer cheaply: a small program (``nodes``), few coordinates, a small
    total of work (``size``: outputs x tree nodes)."""
    if nodes > MAX_NODES or n > MAX_COORDINATES or not set(kinds) <= set(KINDS):
        return False
    per_point = size * (1 + n + (n * n if "hessian" in kinds else 0))
    return count * per_point <= MAX_JET_ENTRIES


def _walk(evaluator: JetEvaluator, program: Program, kinds: tuple[str, ...],
          batch: int) -> dict[str, Arr]:
    """The program's outputs, each (B, outputs, ...)."""
    n = program.layout.n
    if program.stacked:
        parts = [outputs(evaluator.walk(e), batch, 1, n, kinds) for e in program.exprs]
        return {k: np.concatenate([p[k] for p in parts], axis=1) for k in kinds}
    return outputs(evaluator.walk(program.exprs[0]), batch, program.outputs, n, kinds)


def interpret(program: Program, kinds: tuple[str, ...], points: np.ndarray,
              batched: bool) -> dict[str, np.ndarray]:
    """Value, gradient, Hessian at a point (n,) or points (N, n), shaped as ``evaluate``'s."""
    layout = program.layout
    z = flush(points if batched else points[None, :])
    batch, n = z.shape[0], layout.n
    order = 2 if "hessian" in kinds else 1
    with np.errstate(all="ignore"):
        env = variables(layout.names, layout.shapes, z, variable_symbol, n < SPARSE_FROM)
        evaluator = JetEvaluator(env, n, order, flush_each=False)
        result = _walk(evaluator, program, kinds, batch)
        if evaluator.subnormal():  # rare: walk again, flushing each node as XLA does
            result = _walk(JetEvaluator(env, n, order), program, kinds, batch)
    if not program.vector_valued:
        result = {k: v[:, 0] for k, v in result.items()}
    if not batched:
        result = {k: v[0] for k, v in result.items()}
    result = {k: np.array(v, dtype=np.float64) for k, v in result.items()}
    for kind, values in result.items():
        if not np.isfinite(values).all():
            raise NotFinite(kind, result)
    return result
