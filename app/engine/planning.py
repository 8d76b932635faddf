"""What to do with a new program, decided from its estimated costs (``app.engine.costs``):

    the first tier can answer it, and XLA can compile it        -> "jets" (XLA compiles later)
    XLA's estimate is hopeless, the first tier's work is small   -> "jets_for_good"
    the first tier cannot answer it, XLA can compile it          -> "xla"
    neither                                                      -> refused: 422 too_complex

``parse_and_plan`` runs in the parse worker: a program that would be refused is not sent
back to the server (unpickling the SymPy trees of a compile bomb takes the server 30 ms),
only its problem.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from app.config import Limits
from app.engine.compilation import CompileSpec, Parsed, parse_program
from app.engine.costs import STANDING_JET_ENTRIES, compile_seconds, hopeless, jet_entries
from app.engine.first_tier import MAX_COORDINATES, interpretable
from app.engine.xla import KINDS
from app.errors import TooComplex

Route = Literal["jets", "jets_for_good", "xla"]


@dataclass(frozen=True)
class Policy:
    """The settings a plan depends on."""

    budget: float  # compile_timeout_seconds
    interpret: bool  # whether the first tier answers at all


def plan(spec: CompileSpec, parsed: Parsed, policy: Policy) -> Route:
    """How to answer ``spec`` with its program ``parsed``; raises ``TooComplex`` when
    neither tier can afford it."""
    seconds = compile_seconds(parsed.cost, spec.kinds)
    never = hopeless(seconds, policy.budget)
    program, kinds = parsed.program, spec.kinds
    if policy.interpret and parsed.jet_nodes and set(kinds) <= set(KINDS):
        n, size = program.layout.n, program.outputs * parsed.jet_nodes
        if interpretable(parsed.jet_nodes, n, size, spec.count, kinds):
            return "jets_for_good" if never else "jets"
        if never and n <= MAX_COORDINATES and (
                jet_entries(n, size, spec.count, kinds) <= STANDING_JET_ENTRIES):
            return "jets_for_good"
        if never:
            raise too_costly(seconds, policy.budget, ", and the first tier would take too "
                             "long as well")
    if never:
        raise too_costly(seconds, policy.budget)
    return "xla"


def coordinates(spec: CompileSpec) -> int:
    """The coordinates the request's values (or declared variables) give: exactly the
    program's, or the request is refused later for naming other variables."""
    shapes = spec.declared if spec.declared is not None else spec.sampled
    return sum(math.prod(shape) for _, shape in shapes)


def surely_xla(spec: CompileSpec, policy: Policy) -> bool:
    """Whether only XLA can answer ``spec``, known before its text is read."""
    return (not policy.interpret or not set(spec.kinds) <= set(KINDS)
            or coordinates(spec) > MAX_COORDINATES)


def too_costly(seconds: float, budget: float, also: str = "") -> TooComplex:
    """The problem of a compile estimated far over the budget."""
    return TooComplex(
        f"Compiling this expression would take about {seconds:.0f} s by our estimate, over "
        f"the budget of {budget:g} s (compile_timeout_seconds){also}; simplify it (long "
        "products cost the most), use fewer variables, or ask for fewer derivatives (the "
        "Hessian costs the most)", limit="compile_timeout_seconds", limit_value=budget,
        estimated_seconds=round(seconds, 1))


def parse_and_plan(spec: CompileSpec, limits: Limits, policy: Policy) -> Parsed:
    """``parse_program``, refusing (``TooComplex``) a program no tier can afford for
    ``spec`` before it leaves the worker."""
    parsed = parse_program(spec, limits)
    plan(spec, parsed, policy)
    return parsed
