"""The two ways to evaluate a spec, behind one interface: ``signature`` and ``evaluate``.

    XlaTier   a compiled XLA executable (``app.engine.xla``): warm requests, big problems
    JetTier   forward-mode jets over NumPy (``app.engine.first_tier``): a new, small
              expression, answered while XLA compiles it in the background

``app.engine.engine.Engine.tier`` picks one; the service then runs the same steps for both.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from starlette.concurrency import run_in_threadpool

from app.engine.compilation import CompileSpec
from app.engine.first_tier import NotFinite, NotInterpretable, interpret
from app.engine.xla import Outputs, Program, Signature, cut, evaluate
from app.errors import NablaError
from app.language.ieee import flush

#: Evaluations whose points x (1 + n)^2 x outputs is at most this run on the event loop
#: (~50 us): a thread hop would cost more.
INLINE_WORK = 4096
#: The first tier runs on the event loop for programs of at most this many nodes and this
#: much work (points x outputs x nodes x (1 + n + n^2)): about 0.5 ms at most (each node
#: costs a few NumPy calls of ~1 us), less than a thread hop costs a loaded machine.
INLINE_JET_NODES = 64
INLINE_JET_ENTRIES = 50_000
Results = dict[str, np.ndarray]


class Tier(Protocol):
    """A way to evaluate one spec's outputs at points."""

    @property
    def signature(self) -> Signature:
        """The inputs' layout and the output shape."""
        ...

    async def evaluate(self, points: np.ndarray, vectors: Sequence[np.ndarray],
                       batch: int | None) -> Results:
        """The outputs at one point (n,) or a batch (N, n) padded to ``batch``."""
        ...


@dataclass(frozen=True)
class XlaTier:
    """A loaded XLA executable, its signature, and the outputs it writes, in order."""

    signature: Signature
    executable: Any
    outputs: Outputs

    def inline(self, count: int) -> bool:
        """Whether ``count`` points are little enough work to run on the event loop."""
        return count * (1 + self.signature.layout.n) ** 2 * self.signature.outputs <= INLINE_WORK

    async def evaluate(self, points: np.ndarray, vectors: Sequence[np.ndarray],
                       batch: int | None) -> Results:
        """Run the executable: inline when the work is tiny, else in a thread."""
        if self.inline(1 if batch is None else points.shape[0]):
            return evaluate(self.executable, self.outputs, points, batch, vectors)
        return await run_in_threadpool(evaluate, self.executable, self.outputs, points, batch,
                                       vectors)

    def run_now(self, point: np.ndarray) -> np.ndarray:
        """The executable's flat buffer at one point (n,), as it wrote it (not flushed), on
        this thread (for ``inline(1)`` work); ``results`` makes it what ``evaluate`` gives."""
        return np.asarray(self.executable(point))

    def results(self, flat: np.ndarray) -> Results:
        """One point's outputs from ``run_now``'s buffer: flushed, cut into views."""
        return cut(flush(flat), self.outputs)


@dataclass(frozen=True)
class JetTier:
    """A program interpreted with jets; once it has answered, XLA may compile the spec."""

    program: Program
    spec: CompileSpec
    compile_later: Callable[[CompileSpec], None]
    compiled: Callable[[CompileSpec], Awaitable[XlaTier]]
    inline: bool = False  # small enough to interpret on the event loop (no thread hop)

    @property
    def signature(self) -> Signature:
        """The program's signature."""
        return Signature.of(self.program)

    async def evaluate(self, points: np.ndarray, vectors: Sequence[np.ndarray],
                       batch: int | None) -> Results:
        """The jets' outputs (in a thread); XLA's if a node turns out to have no jet rule, or
        if a result is not finite (where XLA's conventions decide)."""
        try:
            if self.inline:
                results = interpret(self.program, self.spec.kinds, points, batch is not None)
            else:
                results = await run_in_threadpool(interpret, self.program, self.spec.kinds,
                                                  points, batch is not None)
        except NotFinite as unsettled:
            try:
                return await (await self.compiled(self.spec)).evaluate(points, vectors, batch)
            except NablaError:  # XLA cannot compile it now: the jets' answer stands
                return unsettled.results
        except NotInterpretable:  # the engine screens programs first: this is a safety net
            return await (await self.compiled(self.spec)).evaluate(points, vectors, batch)
        self.compile_later(self.spec)
        return results
