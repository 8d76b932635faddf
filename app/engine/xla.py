"""Value, gradient / Jacobian and Hessian from JAX's own transforms: jitted, cached, batched.

A ``Program`` is everything needed to compile: the SymPy trees and their ``Signature``
(the input layout and the output shape). ``compile_executable`` traces, lowers and
compiles one fused function of all requested outputs (``vmap``-ed for a batch) ahead of
time, for one input shape; the result can be serialized, so this runs in a worker process
(``app.engine.workers``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import sympy

from app.engine import kinds as kinds_of
from app.engine import taylor
from app.engine.evaluator import Evaluator, flushed
from app.language.build import variable_symbol
from app.language.ieee import flush
from app.language.packing import Packed, pack, unpack
from app.language.terms import Shape as Shape  # re-exported: layouts are made of shapes

#: The derivatives of f itself; the first tier computes these and only these.
KINDS = ("value", "gradient", "hessian")
#: Products with a vector given at run time (an input of the executable, not a constant):
#: jvp = J·tangent (tangent: n numbers), vjp = cotangentᵀ·J (cotangent: m numbers).
PRODUCTS = ("jvp", "vjp")
COMPILED_KINDS = KINDS + PRODUCTS
#: XLA's algebraic simplifier rewrites without regard to float64: log(exp(a)) -> a,
#: exp(a) * exp(b) -> exp(a + b), log(a**b) -> b * log(abs(a)), sqrt(a*a) -> abs(a), which
#: change values where a term overflows and domains where one is NaN. Without it, compiles
#: take about as long and programs run about as fast (docs/numerics.md has the figures).
COMPILER_OPTIONS: dict[str, Any] = {"xla_disable_hlo_passes": "algsimp"}


@dataclass(frozen=True)
class Layout:
    """The inputs in order, and how they are laid out in the flat coordinate vector."""

    names: tuple[str, ...]
    shapes: tuple[Shape, ...]

    @cached_property
    def sizes(self) -> tuple[int, ...]:
        return tuple(int(np.prod(s, dtype=np.int64)) for s in self.shapes)

    @cached_property
    def n(self) -> int:
        """The number of coordinates."""
        return sum(self.sizes)

    def coordinates(self) -> list[str]:
        """Coordinate names: ``y`` for a scalar, ``x[0]``, ``x[1]``, ... for a vector,
        ``X[0,0]``, ``X[0,1]``, ... for a matrix (row-major, as NumPy's reshape)."""
        return list(self._coordinates)

    @cached_property
    def _coordinates(self) -> tuple[str, ...]:
        # Made once per layout: a vector of 100,000 would cost 100,000 strings per request.
        out: list[str] = []
        for name, shape in zip(self.names, self.shapes, strict=True):
            if len(shape) == 2:
                out += [f"{name}[{i},{j}]" for i in range(shape[0]) for j in range(shape[1])]
            else:
                out += [name] if shape == () else [f"{name}[{i}]" for i in range(shape[0])]
        return tuple(out)

    def unflatten(self, z: Any) -> dict[sympy.Symbol, Any]:
        """Variables from the flat coordinate vector ``z``, subnormals flushed."""
        z = flushed(z)
        env: dict[sympy.Symbol, Any] = {}
        offset = 0
        for name, shape, size in zip(self.names, self.shapes, self.sizes, strict=True):
            env[variable_symbol(name)] = z[offset:offset + size].reshape(shape)
            offset += size
        return env


@dataclass(frozen=True)
class Signature:
    """What the server needs to know of a program to call it: inputs and output shape."""

    layout: Layout
    out_shape: Shape
    stacked: bool  # True when f is a list of scalar expressions

    @property
    def vector_valued(self) -> bool:
        return self.out_shape != ()

    @cached_property
    def outputs(self) -> int:
        """m, the number of outputs of f (1 for a scalar f; m x k for a matrix-valued f)."""
        return math.prod(self.out_shape)

    @classmethod
    def of(cls, program: Signature) -> Signature:
        """The signature alone, without a program's trees (small to send between processes)."""
        return cls(program.layout, program.out_shape, program.stacked)


@dataclass(frozen=True)
class Program(Signature):
    """A function of the flat coordinates: its signature and its SymPy trees."""

    exprs: tuple[Any, ...]

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle would rebuild each SymPy node evaluated (x/x as 1): the trees travel packed.
        packed = tuple(pack(e) for e in self.exprs)
        return (_unpacked_program, (self.layout, self.out_shape, self.stacked, packed))

    def function(self) -> Callable[[Any], Any]:
        """f: flat coordinates (n,) -> output of ``out_shape``, in float64."""

        def f(z: Any) -> Any:
            evaluator = Evaluator(self.layout.unflatten(z))
            if self.stacked:
                out = jnp.stack([jnp.broadcast_to(evaluator.walk(e), ()) for e in self.exprs])
            else:
                out = jnp.broadcast_to(evaluator.walk(self.exprs[0]), self.out_shape)
            return out.astype(jnp.float64)

        return f


def _unpacked_program(layout: Layout, out_shape: Shape, stacked: bool,
                      packed: tuple[Packed, ...]) -> Program:
    return Program(layout, out_shape, stacked, tuple(unpack(p) for p in packed))


def output_sizes(n: int, out: Shape, kinds: Sequence[str]) -> dict[str, Shape]:
    """The shape of each requested output at one point, for n inputs and output shape out:
    beyond the Hessian, a tensor of order j is out + [n]*j, and the derivatives 1 .. k
    along P directions are (P, k) + out (``app.engine.taylor``)."""
    shapes = {"value": out, "gradient": (*out, n), "hessian": (*out, n, n), "jvp": out,
              "vjp": (n,)}
    sizes: dict[str, Shape] = {}
    for kind in kinds:
        order, series = kinds_of.tensor_order(kind), kinds_of.series_shape(kind)
        if order is not None:
            sizes[kind] = (*out, *(n,) * order)
        elif series is not None:
            sizes[kind] = (series[1], series[0], *out)
        else:
            sizes[kind] = shapes[kind]
    return sizes


def product_inputs(program: Program, kinds: Sequence[str]) -> list[Shape]:
    """The shapes of the run-time inputs after the point: a tangent, a cotangent, then the
    directions of a series (P, n)."""
    shapes = {"jvp": (program.layout.n,), "vjp": (program.outputs,)}
    inputs = [shapes[k] for k in PRODUCTS if k in kinds]
    return inputs + [(series[1], program.layout.n) for k in kinds
                     if (series := kinds_of.series_shape(k)) is not None]


def fused_function(program: Program, kinds: tuple[str, ...]) -> Callable[..., dict[str, Any]]:
    """One function of the coordinates (and of the tangent / cotangent of ``jvp`` / ``vjp``)
    returning every requested output, from JAX's transforms."""
    f = program.function()
    n, m = program.layout.n, program.outputs
    first = (jax.jacfwd(f) if n <= m else jax.jacrev(f)) if program.vector_valued else jax.grad(f)
    transforms = {"value": f, "gradient": first, "hessian": jax.hessian(f)}

    products = [k for k in PRODUCTS if k in kinds]
    serieses = [(k, taylor.series_function(f, shape[0])) for k in kinds
                if (shape := kinds_of.series_shape(k)) is not None]
    orders = [o for k in kinds if (o := kinds_of.tensor_order(k)) is not None]
    tensors = taylor.tensor_functions(f, orders, n) if orders else None

    def fused(z: Any, *vectors: Any) -> dict[str, Any]:
        out = {kind: transforms[kind](z) for kind in kinds if kind in transforms}
        if tensors is not None:
            out.update(tensors(z))
        for (kind, series), directions in zip(serieses, vectors[len(products):], strict=True):
            out[kind] = series(z, directions)
        given = dict(zip(products, vectors[:len(products)], strict=True))
        if "jvp" in given:
            out["jvp"] = jax.jvp(f, (z,), (given["jvp"],))[1]
        if "vjp" in given:
            _, pullback = jax.vjp(f, z)
            out["vjp"] = pullback(given["vjp"].reshape(program.out_shape))[0]
        return out

    return fused


Outputs = tuple[tuple[str, Shape], ...]


def output_layout(signature: Signature, kinds: Sequence[str]) -> Outputs:
    """The outputs in the order an executable writes them into its one flat buffer."""
    return tuple(output_sizes(signature.layout.n, signature.out_shape, kinds).items())


def flat_function(program: Program, kinds: tuple[str, ...]) -> Callable[..., Any]:
    """``fused_function`` with every output raveled into one float64 vector, in the order of
    ``output_layout``: one buffer to hand back, convert and flush instead of one per output."""
    fused = fused_function(program, kinds)
    names = [name for name, _ in output_layout(program, kinds)]

    def flat(z: Any, *vectors: Any) -> Any:
        out = fused(z, *vectors)
        parts = [jnp.ravel(out[name]).astype(jnp.float64) for name in names]
        return jnp.concatenate(parts) if parts else jnp.zeros((0,), jnp.float64)

    return flat


def compile_executable(program: Program, kinds: tuple[str, ...], batch: int | None) -> Any:
    """Trace, lower and compile the flat function for one point or a batch of ``batch``."""
    fused = flat_function(program, kinds)
    n = program.layout.n
    vectors = [_spec(s) for s in product_inputs(program, kinds)]
    if batch is None:
        return jax.jit(fused).lower(_spec((n,)), *vectors).compile(COMPILER_OPTIONS)
    batched = jax.vmap(fused, in_axes=(0, *(None for _ in vectors)))
    return jax.jit(batched).lower(_spec((batch, n)), *vectors).compile(COMPILER_OPTIONS)


def _spec(shape: Shape) -> Any:
    return jax.ShapeDtypeStruct(shape, jnp.float64)  # type: ignore[no-untyped-call]


def bucket(count: int) -> int:
    """Batch sizes are padded to 2^k or 3·2^(k-1), so few shapes are ever compiled."""
    size = 1
    while size < count:
        size *= 2
    return size * 3 // 4 if size >= 4 and size * 3 // 4 >= count else size


def evaluate(executable: Any, outputs: Outputs, points: np.ndarray, batch: int | None,
             vectors: Sequence[np.ndarray] = ()) -> dict[str, np.ndarray]:
    """Run a compiled executable at one point (n,) or a batch (N, n), padded to ``batch``;
    ``vectors`` are the tangent and cotangent of ``jvp`` and ``vjp``, if asked for. Its one
    flat buffer is cut into the ``outputs`` (views, no copies).

    XLA on CPU flushes subnormals to zero in every operation, but an output that is an
    input passed through unchanged keeps it: outputs are flushed too, so no answer holds
    a subnormal, and both tiers agree."""
    # NumPy arrays go to the executable as they are: jnp.asarray would cost a dispatch.
    extra = [np.asarray(v, dtype=np.float64) for v in vectors]
    if batch is None:
        return cut(flush(np.asarray(executable(points, *extra))), outputs, ())
    count = points.shape[0]
    if batch != count:
        filler = np.broadcast_to(points[:1], (batch - count, points.shape[1]))
        points = np.concatenate([points, filler])
    flat = np.asarray(executable(np.ascontiguousarray(points), *extra))
    return cut(flush(flat[:count]), outputs, (count,))


def cut(flat: np.ndarray, outputs: Outputs, lead: Shape = ()) -> dict[str, np.ndarray]:
    """The outputs of a flat buffer (..., total): each a view, shaped ``lead + shape``."""
    results: dict[str, np.ndarray] = {}
    start = 0
    for name, shape in outputs:
        stop = start + math.prod(shape)
        results[name] = flat[..., start:stop].reshape((*lead, *shape))
        start = stop
    return results
