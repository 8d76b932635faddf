"""Cold work, from expression text to a serialized XLA executable, as pure functions.

``parse_program`` parses, resolves the variables and builds the SymPy trees; ``compile_spec``
does that too (unless it is given the program), checks the output limits and compiles.
Both return plain data (a ``Parsed`` program, a ``Compiled`` with the executable's bytes,
or a problem document), so they run in a worker process with a budget
(``app.engine.workers``), and the server never parses, traces or compiles on its own
threads.
"""

from __future__ import annotations

import math
import pickle
import re
import time
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from app.config import Limits
from app.engine import disk_cache
from app.engine.costs import ProgramCost, program_cost
from app.engine.evaluator import evaluate_constant
from app.engine.jets import program_interpretable
from app.engine.kinds import tensor_order
from app.engine.xla import Layout, Program, Shape, Signature, compile_executable, output_sizes
from app.errors import (
    ExpressionError,
    InputError,
    LimitError,
    NablaError,
    ShapeError,
    TooComplex,
)
from app.language.build import Builder, free_names
from app.language.catalog import FUNCTION_NAMES
from app.language.syntax import Syntax, SyntaxLimits, parse
from app.language.tokens import read_from_point

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
Shapes = tuple[tuple[str, Shape], ...]


@dataclass(frozen=True)
class CompileSpec:
    """What to compile: hashable, so it is also the key of the executable cache."""

    texts: tuple[str, ...]
    stacked: bool
    declared: Shapes | None  # the request's ``variables``, in order
    sampled: Shapes  # the shape of each value in the (first) point
    kinds: tuple[str, ...]
    batch: int | None  # padded batch size, None for one point
    count: int  # points in the request (for the output limit)

    @cached_property
    def key(self) -> CompileSpec:
        """The spec without ``count``: requests that differ only in it share an executable."""
        if self.count == 0:
            return self
        return CompileSpec(self.texts, self.stacked, self.declared, self.sampled, self.kinds,
                           self.batch, 0)

    @cached_property
    def program_key(self) -> Hashable:
        """What the built program depends on. ``resolve_layout`` reads ``sampled`` only when
        nothing is declared, and there a shape of () is the default: leaving those out is
        exact, and lets more requests (and ``/v1/plot``) share one parse."""
        if self.declared is not None:
            return (self.texts, self.stacked, self.declared, None)
        read = read_from_point(self.texts, (name for name, shape in self.sampled if shape == ()))
        sampled = tuple((name, shape) for name, shape in self.sampled
                        if shape != () or name in read)
        return (self.texts, self.stacked, None, sampled)


@dataclass(frozen=True)
class Parsed:
    """A built program, with what the first tier needs to know of it."""

    program: Program
    jet_nodes: int  # nodes of its trees, 0 when one has no jet rule (app.engine.first_tier)
    seconds: float  # spent parsing and building
    cost: ProgramCost  # what compiling it will cost (app.engine.costs)


@dataclass(frozen=True)
class Compiled:
    """A compiled program: its signature and its serialized executable."""

    signature: Signature
    executable: bytes
    seconds: tuple[tuple[str, float], ...] = ()  # by phase: parse, compile
    parsed: Parsed | None = None  # the program, when this compile built it
    cached: bool = False  # read from the persistent cache (app.engine.disk_cache)


def parse_program(spec: CompileSpec, limits: Limits) -> Parsed:
    """``build_program``, timed, with the count of nodes the jets can walk."""
    started = time.perf_counter()
    program = build_program(spec, limits)
    return Parsed(program, program_interpretable(program), time.perf_counter() - started,
                  program_cost(program.exprs))


def compile_spec(spec: CompileSpec, limits: Limits, program: Program | None = None) -> Compiled:
    """Compile ``spec`` (parsing its texts unless ``program`` is given), or raise the
    ``NablaError`` that the request deserves."""
    from jax.experimental import serialize_executable

    started = time.perf_counter()
    bounds = tuple((name, getattr(limits, name)) for name in Limits.model_fields)
    stored = disk_cache.read(spec.key, bounds)
    if stored is not None:  # compiled before, by this process or another on the same folder
        signature, payload = stored
        check_output(signature.layout.n, signature.out_shape, spec.kinds, spec.count, limits)
        return Compiled(signature, payload, (("disk", time.perf_counter() - started),),
                        None, True)
    parsed = None
    if program is None:
        parsed = parse_program(spec, limits)
        program = parsed.program
    check_output(program.layout.n, program.out_shape, spec.kinds, spec.count, limits)
    started = time.perf_counter()
    executable = compile_executable(program, spec.kinds, spec.batch)
    payload = pickle.dumps(serialize_executable.serialize(executable))
    seconds: tuple[tuple[str, float], ...] = (("compile", time.perf_counter() - started),)
    if parsed is not None:
        seconds = (("parse", parsed.seconds), *seconds)
    signature = Signature.of(program)
    disk_cache.write(spec.key, bounds, (signature, payload))
    return Compiled(signature, payload, seconds, parsed)


def compile_or_problem(spec: CompileSpec, limits: Limits,
                       program: Program | None = None) -> Compiled | dict[str, Any]:
    """``compile_spec`` for a worker: a request error comes back as its problem document."""
    try:
        return compile_spec(spec, limits, program)
    except NablaError as error:
        return error.problem()
    except MemoryError:
        return TooComplex.memory().problem()


def load(compiled: Compiled) -> Any:
    """The executable of ``compiled``, loaded into this process's JAX backend."""
    from jax.experimental import serialize_executable

    parts = pickle.loads(compiled.executable)  # noqa: S301 - bytes from our own worker
    return serialize_executable.deserialize_and_load(*parts)


def build_program(spec: CompileSpec, limits: Limits) -> Program:
    """Parse the texts, resolve the variables and build the SymPy trees."""
    if len(spec.texts) > limits.max_expressions:
        raise LimitError("max_expressions", limits.max_expressions,
                         f"The number of expressions ({len(spec.texts)})")
    declared = tuple(name for name, _ in spec.declared or ())
    trees = [parse(t, syntax_limits(limits), declared) for t in spec.texts]
    if sum(t.size for t in trees) > limits.max_nodes:
        raise LimitError("max_nodes", limits.max_nodes,
                         "The number of terms in all expressions")
    layout = resolve_layout(spec.declared, dict(spec.sampled), trees, limits)
    builder = Builder(dict(zip(layout.names, layout.shapes, strict=True)),
                      limits.max_exponent, limits.max_literal, evaluate_constant)
    terms = [builder.value(t) for t in trees]
    if spec.stacked:
        for tree, term in zip(trees, terms, strict=True):
            if term.shape != ():
                what = (f"a vector of length {term.shape[0]}" if len(term.shape) == 1
                        else f"an array of shape {list(term.shape)}")
                raise ExpressionError(
                    "Each expression of a list must be a scalar; one starting at position "
                    f"{tree.pos} is {what}", tree.pos, code="vector_in_list")
        out_shape: Shape = (len(terms),)
    else:
        out_shape = terms[0].shape
    return Program(layout=layout, out_shape=out_shape, stacked=spec.stacked,
                   exprs=tuple(t.expr for t in terms))


def syntax_limits(limits: Limits) -> SyntaxLimits:
    """The bounds the parser checks, from the settings (the one place they are made)."""
    return SyntaxLimits(limits.max_expression_chars, limits.max_depth, limits.max_nodes,
                        limits.max_name_chars)


def resolve_layout(declared: Shapes | None, sampled: Mapping[str, Shape],
                   trees: Sequence[Syntax], limits: Limits) -> Layout:
    """The inputs: declared, or the free names sorted, each shaped like its sampled value.
    Undeclared, a function's name (``gamma``) or a name written as a call (``x`` of
    ``x(y+1)``) is a variable only when the point gives it a value: else the builder
    says it is a function, or an unknown one."""
    if declared is not None:
        for name, _ in declared:
            check_variable_name(name, limits.max_name_chars)
        shapes = dict(declared)
    else:
        plain = {n for t in trees for n in free_names(t)}
        called = {n for t in trees for n in free_names(t, called=True)}
        names = sorted({n for n in plain if n not in FUNCTION_NAMES or n in sampled}
                       | {n for n in called if n in sampled})
        shapes = {name: sampled.get(name, ()) for name in names}
    if len(shapes) > limits.max_variables:
        raise LimitError("max_variables", limits.max_variables,
                         f"The number of variables ({len(shapes)})")
    for name, shape in shapes.items():
        if len(shape) > 2:
            raise ShapeError(f"The variable {name!r} has shape {list(shape)}; only scalars "
                             "([]), vectors ([n]) and matrices ([m, n]) are supported",
                             variable=name)
        if len(shape) == 1 and shape[0] < 1:
            raise ShapeError(f"The vector {name!r} has length 0; give it at least one element",
                             variable=name)
        if len(shape) == 2 and min(shape) < 1:
            raise ShapeError(f"The matrix {name!r} has shape {list(shape)}; give it at least "
                             "one row and one column", variable=name)
    layout = Layout(tuple(shapes), tuple(shapes.values()))
    if layout.n > limits.max_coordinates:
        raise LimitError("max_coordinates", limits.max_coordinates,
                         f"The number of coordinates ({layout.n})")
    return layout


def check_variable_name(name: str, max_chars: int = 64) -> None:
    """Refuse a declared variable name that the language could not refer to."""
    if len(name) > max_chars:
        raise LimitError("max_name_chars", max_chars,
                         f"A variable name ({len(name)} characters)")
    if not _NAME.fullmatch(name) or name in ("and", "or", "not"):
        raise InputError(f"{name!r} is not a valid variable name; names are letters, digits "
                         "and _, starting with a letter", code="bad_variable_name")
    if name in ("True", "False"):
        raise InputError(f"{name!r} is a constant condition of the language and cannot be "
                         "a variable; choose another name", code="bad_variable_name")


def check_output(n: int, out_shape: Shape, kinds: Sequence[str], count: int,
                 limits: Limits, max_bytes: int | None = None,
                 bytes_per_number: int = 24) -> int:
    """Refuse a result (Hessian included) larger than ``max_output_entries`` numbers, or
    than ``max_bytes`` (``max_response_bytes``) at ``bytes_per_number``; its estimated bytes."""
    sizes = output_sizes(n, out_shape, kinds)
    for kind, shape in sizes.items():
        order = tensor_order(kind)
        if order is not None and math.prod(shape) > limits.max_tensor_entries:
            raise LimitError("max_tensor_entries", limits.max_tensor_entries,
                             f"The derivative tensor of order {order} ({math.prod(shape)} "
                             "numbers: outputs x coordinates^order)")
    per_point = sum(math.prod(s) for s in sizes.values())
    total = per_point * count
    if total > limits.max_output_entries:
        raise LimitError("max_output_entries", limits.max_output_entries,
                         f"The size of the result ({total} numbers)")
    nbytes = total * bytes_per_number
    if max_bytes is not None and nbytes > max_bytes:
        raise LimitError("max_response_bytes", max_bytes,
                         f"The answer ({total} numbers, about {nbytes} bytes at "
                         f"{bytes_per_number} bytes a number)")
    return nbytes
