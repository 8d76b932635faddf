"""The data path of one request: texts -> syntax -> SymPy -> program -> arrays -> body.

    request model -> parse (syntax.py) -> resolve variables -> build SymPy trees (build.py)
    -> Program (derivatives.py) -> kernels from the cache -> evaluate -> response body
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.config import Settings
from app.derivatives import KINDS, KernelCache, Layout, Program, Shape, evaluate, output_sizes
from app.errors import ExpressionError, InputError, LimitError, ShapeError
from app.expressions.build import CONSTANTS, FUNCTION_NAMES, Builder, free_names
from app.expressions.syntax import Syntax, SyntaxLimits, parse
from app.points import from_point, from_points, infer_shape
from schemas.differentiate import DifferentiateRequest

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
MAX_NONFINITE_LISTED = 1000


@dataclass
class Differentiator:
    """Turns requests into response bodies; holds the caches of one process."""

    settings: Settings
    kernels: KernelCache = field(init=False)
    _programs: OrderedDict[tuple[Any, ...], Program] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.kernels = KernelCache(self.settings.compile_cache_size)

    def run(self, request: DifferentiateRequest) -> dict[str, Any]:
        """Compute what ``request`` asks for; raises ``NablaError`` subclasses on bad input."""
        texts = [request.expression] if isinstance(request.expression, str) else request.expression
        program = self.program(texts, isinstance(request.expression, list), request)
        kinds = tuple(k for k in KINDS if k in request.derivatives)
        layout = program.layout
        if request.at is not None:
            points, batched = from_point(request.at, layout), False
        else:
            assert request.points is not None
            points, batched = from_points(request.points, layout, self.settings.max_points), True
        self._check_output(program, kinds, points.shape[0] if batched else 1)
        results = evaluate(self.kernels.get(program, kinds), points, batched)
        return assemble(program, results)

    def program(self, texts: Sequence[str], stacked: bool,
                request: DifferentiateRequest) -> Program:
        """The program of the texts for the request's variables (cached by text and shapes)."""
        limits = self.settings
        if len(texts) > limits.max_expressions:
            raise LimitError("max_expressions", limits.max_expressions,
                             f"The number of expressions ({len(texts)})")
        syntax_limits = SyntaxLimits(limits.max_expression_chars, limits.max_depth,
                                     limits.max_nodes)
        trees = [parse(t, syntax_limits) for t in texts]
        if sum(t.size for t in trees) > limits.max_nodes:
            raise LimitError("max_nodes", limits.max_nodes,
                             "The number of terms in all expressions")
        layout = resolve_layout(request, trees, limits)
        key = (tuple(texts), stacked, layout)
        with self._lock:
            cached = self._programs.get(key)
            if cached is not None:
                self._programs.move_to_end(key)
                return cached
        program = build_program(trees, layout, stacked, limits)
        with self._lock:
            self._programs[key] = program
            while len(self._programs) > limits.compile_cache_size:
                self._programs.popitem(last=False)
        return program

    def _check_output(self, program: Program, kinds: Sequence[str], count: int) -> None:
        per_point = sum(int(np.prod(s, dtype=np.int64)) for s in
                        output_sizes(program, kinds).values())
        total = per_point * count
        if total > self.settings.max_output_entries:
            raise LimitError("max_output_entries", self.settings.max_output_entries,
                             f"The size of the result ({total} numbers)")


def resolve_layout(request: DifferentiateRequest, trees: Sequence[Syntax],
                   limits: Settings) -> Layout:
    """The inputs: declared in ``variables``, or the free names sorted, shaped by the point."""
    if request.variables is not None:
        declared = request.variables
        for name in declared:
            _check_variable_name(name)
        shapes = {name: tuple(shape) for name, shape in declared.items()}
    else:
        names = sorted({n for t in trees for n in free_names(t)})
        sample = _sample_point(request)
        shapes = {name: _sample_shape(sample, name, request.points) for name in names}
    if len(shapes) > limits.max_variables:
        raise LimitError("max_variables", limits.max_variables,
                         f"The number of variables ({len(shapes)})")
    for name, shape in shapes.items():
        if len(shape) > 1:
            raise ShapeError(f"The variable {name!r} has shape {list(shape)}; only scalars "
                             "([]) and vectors ([n]) are supported", variable=name)
        if shape and shape[0] < 1:
            raise ShapeError(f"The vector {name!r} has length 0; give it at least one element",
                             variable=name)
    layout = Layout(tuple(shapes), tuple(shapes.values()))
    if layout.n > limits.max_coordinates:
        raise LimitError("max_coordinates", limits.max_coordinates,
                         f"The number of coordinates ({layout.n})")
    return layout


def _check_variable_name(name: str) -> None:
    if not _NAME.fullmatch(name) or name in ("and", "or", "not"):
        raise InputError(f"{name!r} is not a valid variable name; names are letters, digits "
                         "and _, starting with a letter", code="bad_variable_name")
    if name in CONSTANTS or name in FUNCTION_NAMES:
        raise InputError(f"{name!r} is a constant or function of the language and cannot be "
                         "a variable; choose another name", code="bad_variable_name")


def _sample_point(request: DifferentiateRequest) -> Mapping[str, Any]:
    if request.at is not None:
        return request.at
    if isinstance(request.points, list):
        return request.points[0] if request.points else {}
    return request.points or {}


def _sample_shape(sample: Mapping[str, Any], name: str, points: Any) -> Shape:
    if name not in sample:
        return ()
    shape = infer_shape(sample[name])
    return shape[1:] if isinstance(points, Mapping) else shape


def build_program(trees: Sequence[Syntax], layout: Layout, stacked: bool,
                  limits: Settings) -> Program:
    """Build the SymPy trees and the program's output shape."""
    builder = Builder(dict(zip(layout.names, layout.shapes, strict=True)),
                      limits.max_exponent, limits.max_literal)
    terms = [builder.value(t) for t in trees]
    if stacked:
        for tree, term in zip(trees, terms, strict=True):
            if term.shape != ():
                raise ExpressionError(
                    "Each expression of a list must be a scalar; one starting at position "
                    f"{tree.pos} is a vector of length {term.shape[0]}", tree.pos,
                    code="vector_in_list")
        out_shape: Shape = (len(terms),)
    else:
        out_shape = terms[0].shape
    return Program(tuple(t.expr for t in terms), layout, out_shape, stacked)


def assemble(program: Program, results: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The response body: coordinates, the outputs, and where any are not finite."""
    body: dict[str, Any] = {"coordinates": program.layout.coordinates()}
    names = {"value": "value", "hessian": "hessian",
             "gradient": "jacobian" if program.vector_valued else "gradient"}
    nonfinite: list[dict[str, Any]] = []
    count = 0
    for kind in KINDS:
        if kind not in results:
            continue
        array = results[kind]
        field_name = names[kind]
        bad = ~np.isfinite(array)
        if bad.any():
            count += int(bad.sum())
            for index in np.argwhere(bad)[: MAX_NONFINITE_LISTED - len(nonfinite)]:
                x = float(array[tuple(index)])
                label = "nan" if np.isnan(x) else ("inf" if x > 0 else "-inf")
                nonfinite.append({"field": field_name, "index": index.tolist(), "kind": label})
        body[field_name] = float(array) if array.ndim == 0 else np.ascontiguousarray(array)
    if count:
        body["nonfinite"] = nonfinite
        if count > len(nonfinite):
            body["nonfinite_count"] = count
    return body
