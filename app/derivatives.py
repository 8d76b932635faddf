"""Value, gradient / Jacobian and Hessian from JAX's own transforms: jitted, cached, batched.

A ``Program`` is everything needed to compile: the SymPy trees, the input layout and the
output shape. Its ``key`` is canonical (SymPy's ``srepr`` of the trees with the shapes),
so equal expressions share one compilation whatever their spelling. The compiled kernels
are immutable and kept in a bounded LRU cache that is safe under threads; no lock is
held while JAX traces or compiles.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import sympy

from app.expressions.build import variable_symbol
from app.expressions.compiler import Evaluator

Shape = tuple[int, ...]
KINDS = ("value", "gradient", "hessian")


@dataclass(frozen=True)
class Layout:
    """The inputs in order, and how they are laid out in the flat coordinate vector."""

    names: tuple[str, ...]
    shapes: tuple[Shape, ...]

    @cached_property
    def sizes(self) -> tuple[int, ...]:
        return tuple(int(np.prod(s, dtype=np.int64)) for s in self.shapes)

    @property
    def n(self) -> int:
        """The number of coordinates."""
        return sum(self.sizes)

    def coordinates(self) -> list[str]:
        """Coordinate names: ``y`` for a scalar, ``x[0]``, ``x[1]``, ... for a vector."""
        out: list[str] = []
        for name, shape in zip(self.names, self.shapes, strict=True):
            out += [name] if shape == () else [f"{name}[{i}]" for i in range(shape[0])]
        return out

    def unflatten(self, z: Any) -> dict[sympy.Symbol, Any]:
        """Variables from the flat coordinate vector ``z``."""
        env: dict[sympy.Symbol, Any] = {}
        offset = 0
        for name, shape, size in zip(self.names, self.shapes, self.sizes, strict=True):
            env[variable_symbol(name)] = z[offset:offset + size].reshape(shape)
            offset += size
        return env


@dataclass(frozen=True)
class Program:
    """A function of the flat coordinates: SymPy trees, input layout, output shape."""

    exprs: tuple[Any, ...]
    layout: Layout
    out_shape: Shape
    stacked: bool  # True when f is a list of scalar expressions

    @cached_property
    def key(self) -> tuple[Any, ...]:
        return (tuple(sympy.srepr(e) for e in self.exprs), self.layout.names,
                self.layout.shapes, self.out_shape, self.stacked)

    @property
    def vector_valued(self) -> bool:
        return self.out_shape != ()

    def function(self) -> Callable[[Any], Any]:
        """f: flat coordinates (n,) -> output of ``out_shape``, in float64."""

        def f(z: Any) -> Any:
            evaluator = Evaluator(self.layout.unflatten(z))
            if self.stacked:
                out = jnp.stack([jnp.broadcast_to(evaluator.eval(e), ()) for e in self.exprs])
            else:
                out = jnp.broadcast_to(evaluator.eval(self.exprs[0]), self.out_shape)
            return out.astype(jnp.float64)

        return f


def output_sizes(program: Program, kinds: Sequence[str]) -> dict[str, Shape]:
    """The shape of each requested output at one point."""
    n, out = program.layout.n, program.out_shape
    shapes = {"value": out, "gradient": (*out, n), "hessian": (*out, n, n)}
    return {k: shapes[k] for k in kinds}


@dataclass(frozen=True)
class Kernels:
    """The jitted computations of one program and one set of derivative kinds."""

    single: Callable[[Any], dict[str, Any]]
    batch: Callable[[Any], dict[str, Any]]


def build_kernels(program: Program, kinds: tuple[str, ...]) -> Kernels:
    """One fused function of value and derivatives, jitted for a point and for a batch."""
    f = program.function()
    n, m = program.layout.n, (program.out_shape[0] if program.vector_valued else 1)
    first = (jax.jacfwd(f) if n <= m else jax.jacrev(f)) if program.vector_valued else jax.grad(f)
    transforms = {"value": f, "gradient": first, "hessian": jax.hessian(f)}

    def fused(z: Any) -> dict[str, Any]:
        return {kind: transforms[kind](z) for kind in kinds}

    return Kernels(single=jax.jit(fused), batch=jax.jit(jax.vmap(fused)))


@dataclass
class KernelCache:
    """A bounded LRU of compiled kernels, safe under threads."""

    capacity: int
    _items: OrderedDict[tuple[Any, ...], Kernels] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    hits: int = 0
    misses: int = 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, program: Program, kinds: tuple[str, ...]) -> Kernels:
        """The kernels of ``program``, built on a miss (outside the lock)."""
        key = (program.key, kinds)
        with self._lock:
            kernels = self._items.get(key)
            if kernels is not None:
                self._items.move_to_end(key)
                self.hits += 1
                return kernels
            self.misses += 1
        kernels = build_kernels(program, kinds)
        with self._lock:
            self._items[key] = kernels
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return kernels


def bucket(count: int) -> int:
    """Batch sizes are padded to 2^k or 3·2^(k-1), so few shapes are ever compiled."""
    size = 1
    while size < count:
        size *= 2
    return size * 3 // 4 if size >= 4 and size * 3 // 4 >= count else size


def evaluate(kernels: Kernels, points: np.ndarray, batched: bool) -> dict[str, np.ndarray]:
    """Run the kernels at one point (n,) or a batch (N, n); results as NumPy arrays."""
    if not batched:
        return {k: np.asarray(v) for k, v in kernels.single(jnp.asarray(points)).items()}
    count = points.shape[0]
    padded = bucket(count)
    if padded != count:
        filler = np.broadcast_to(points[:1], (padded - count, points.shape[1]))
        points = np.concatenate([points, filler])
    results = kernels.batch(jnp.asarray(points))
    return {k: np.asarray(v)[:count] for k, v in results.items()}
