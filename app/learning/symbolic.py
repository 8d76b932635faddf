"""Symbolic derivatives, printed in nabla's own language and in LaTeX.

A vector variable stays one symbol in the tree (``app.language.functions``); here, for
small vectors only, it is expanded into one symbol per component, every vector operation
into its components (``dot(x, x)`` -> ``x0*x0 + x1*x1 + ...``), and ``sympy.diff`` works on
scalars. The results print back as ``x[0]``, ``x[1]``, ..., so each string can be posted
as an ``expression``. SymPy may be slow: ``symbolic_task`` runs in a worker process with
the compile budget (``app.engine.workers``), and what is too big is skipped with a reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sympy
from sympy.logic.boolalg import Boolean

from app.engine.xla import KINDS, Layout, Program
from app.language import functions as F
from app.language.build import variable_symbol
from app.language.catalog import COMPONENTS
from app.language.matrix_ops import MATRIX_OPS
from app.language.packing import unevaluated
from app.language.printing import Unprintable, to_latex, to_text
from app.language.walk import integer_args, operands
from app.learning.by_variable import by_variable

MAX_COORDINATES = 12  # n: the Hessian has n² strings per output
MAX_BY_VARIABLE = 2_500  # n: each formula is checked against the gradient at random points
MAX_OUTPUTS = 12  # m
MAX_OPERATIONS = 400  # SymPy operations in f, after vectors are expanded
MAX_HIGHER_FORMULAS = 1_000  # formulas of the tensors past the Hessian
MAX_SIMPLIFY_OPERATIONS = 60  # sympy.simplify only below this size
#: sympy.simplify simplifies a function's argument before the function, and again inside:
#: its time doubles with each level of nesting (sin nested 20 deep: 80 s).
MAX_SIMPLIFY_DEPTH = 8
#: SymPy's diff, simplify and printers recurse, several frames a level: deeper trees would
#: exhaust Python's stack (the parser allows 200 levels).
MAX_DEPTH = 60

Scalar = Any
Expanded = Scalar | list[Scalar]  # a scalar tree, or the components of a vector


class Skipped(Exception):
    """Symbolic work is not done for this request; the message says why."""


@dataclass(frozen=True)
class Higher:
    """The derivatives past the Hessian a request asks for (``app.service.orders``)."""

    tensors: tuple[int, ...] = ()  # orders 3 .. k
    direction: tuple[float, ...] | None = None  # flat, in coordinate order
    directional: int = 0  # [D_1 .. D_k] along the direction
    partials: tuple[tuple[tuple[str, int], ...], ...] = ()  # coordinate name -> power


def symbolic_task(program: Program, kinds: tuple[str, ...],
                  higher: Higher | None = None) -> dict[str, Any]:
    """The ``symbolic`` part of a response (or ``{"skipped": reason}``), with ``by_variable``
    for a scalar f; runs in a worker."""
    try:
        result = symbolic(program, kinds, higher)
    except Skipped as reason:
        result = {"skipped": str(reason)}
    if "gradient" in (kinds or KINDS) and not program.vector_valued and not program.stacked:
        if program.layout.n > MAX_BY_VARIABLE:
            why = (f"f has {program.layout.n} coordinates; by_variable is written only "
                   f"for up to {MAX_BY_VARIABLE}")
            result["by_variable"] = {name: {"skipped": why} for name in program.layout.names}
        else:
            answers, latex = by_variable(program, _vectorized(program.layout, result))
            result["by_variable"] = answers
            if latex:
                result.setdefault("latex", {})["by_variable"] = latex
    return result


def _vectorized(layout: Layout, result: dict[str, Any]) -> dict[str, str]:
    """Each variable's derivative from the component formulas, where they are one formula
    written per component: ``4*x[0]``, ``4*x[1]``, ... is ``4*x``; a scalar's is its own.
    ``by_variable`` still checks it against the numeric gradient."""
    gradient = result.get("gradient")
    if not isinstance(gradient, list):
        return {}
    out: dict[str, str] = {}
    at = 0
    for name, shape, size in zip(layout.names, layout.shapes, layout.sizes, strict=True):
        texts = gradient[at:at + size]
        at += size
        if shape == ():
            out[name] = texts[0]
            continue
        if len(shape) != 1:
            continue
        written = {re.sub(rf"\b{re.escape(name)}\[{i}\]", name, text)
                   for i, text in enumerate(texts)}
        if len(written) == 1:
            common = written.pop()
            if not re.search(rf"\b{re.escape(name)}\b(?!\[)", common):
                common = f"{common} + 0*{name}"  # a constant gradient, shaped like x
            out[name] = common
    return out


def symbolic(program: Program, kinds: Sequence[str],
             higher: Higher | None = None) -> dict[str, Any]:
    """Value, first and second derivatives of ``program`` (and those past the Hessian) as
    text and LaTeX."""
    layout = program.layout
    if any(len(s) > 1 for s in (*layout.shapes, program.out_shape)) or any(
            e.has(*MATRIX_OPS) for e in program.exprs):
        raise Skipped("f has matrices; symbolic derivatives are written out in components "
                      "only for scalars and vectors")
    if layout.n > MAX_COORDINATES:
        raise Skipped(f"f has {layout.n} coordinates; symbolic derivatives are written out "
                      f"only for up to {MAX_COORDINATES}")
    deepest = max(depth(e) for e in program.exprs)
    if deepest > MAX_DEPTH:
        raise Skipped(f"f is nested {deepest} levels deep; symbolic derivatives are written "
                      f"out only up to {MAX_DEPTH} levels")
    coords, symbols = _components(layout)
    outputs = _outputs(program, symbols)
    if len(outputs) > MAX_OUTPUTS:
        raise Skipped(f"f has {len(outputs)} outputs; symbolic derivatives are written out "
                      f"only for up to {MAX_OUTPUTS}")
    size = sum(sympy.count_ops(f) for f in outputs)
    if size > MAX_OPERATIONS:
        raise Skipped(f"f has {size} operations once vectors are expanded; symbolic "
                      f"derivatives are written out only up to {MAX_OPERATIONS}")
    higher = higher or Higher()
    strings = len(outputs) * sum(layout.n**k for k in higher.tensors)
    if strings > MAX_HIGHER_FORMULAS:
        raise Skipped(f"the tensors have {strings} entries; their formulas are written out "
                      f"only up to {MAX_HIGHER_FORMULAS} (ask for 'partials' instead)")
    try:
        return _written(program, coords, outputs, kinds, higher)
    except RecursionError:  # a safety net: MAX_DEPTH keeps SymPy within Python's stack
        raise Skipped("f is nested too deeply for symbolic derivatives") from None


def _written(program: Program, coords: list[sympy.Symbol], outputs: list[Scalar],
             kinds: Sequence[str], higher: Higher) -> dict[str, Any]:
    """The derivatives as text and LaTeX."""
    layout = program.layout
    trees = _derivatives(outputs, coords, program.vector_valued, kinds)
    trees.update(_higher(outputs, coords, layout.coordinates(), program.vector_valued, higher))
    names = {c: n for c, n in zip(coords, layout.coordinates(), strict=True)}
    latex_names = {c: _latex_name(n) for c, n in names.items()}
    try:
        texts = {k: _nested(t, lambda e: to_text(e, names)) for k, t in trees.items()}
    except Unprintable as error:
        raise Skipped(f"a derivative cannot be written in the language: {error}") from None
    latex = {k: _nested(t, lambda e: to_latex(e, latex_names)) for k, t in trees.items()}
    return {**texts, "latex": latex}


def _latex_name(coordinate: str) -> str:
    name, _, index = coordinate.partition("[")
    return f"{name}_{{{index[:-1]}}}" if index else name


def _components(layout: Layout) -> tuple[list[sympy.Symbol], dict[sympy.Symbol, Expanded]]:
    """A symbol per coordinate, and each variable's expansion (a symbol or components)."""
    coords: list[sympy.Symbol] = []
    symbols: dict[sympy.Symbol, Expanded] = {}
    for name, shape in zip(layout.names, layout.shapes, strict=True):
        symbol = variable_symbol(name)
        if shape == ():
            coords.append(symbol)
            symbols[symbol] = symbol
        else:
            parts = [sympy.Dummy(f"{name}{i}", real=True) for i in range(shape[0])]
            coords += parts
            symbols[symbol] = parts
    return coords, symbols


def _outputs(program: Program, symbols: dict[sympy.Symbol, Expanded]) -> list[Scalar]:
    expand = _Expander(symbols)
    if program.stacked:
        return [expand.scalar(e) for e in program.exprs]
    result = expand(program.exprs[0])
    if program.vector_valued:
        return _as_list(result, program.outputs)
    return [result]


def _derivatives(outputs: list[Scalar], coords: list[sympy.Symbol], vector_valued: bool,
                 kinds: Sequence[str]) -> dict[str, Any]:
    wanted = [k for k in KINDS if k in kinds] or list(KINDS)
    first = [[_tidy(sympy.diff(f, c)) for c in coords] for f in outputs]
    trees: dict[str, Any] = {}
    if "value" in wanted:
        trees["value"] = [_tidy(f) for f in outputs]
    if "gradient" in wanted:
        trees["jacobian" if vector_valued else "gradient"] = first
    if "hessian" in wanted:
        trees["hessian"] = [[[_tidy(sympy.diff(d, c)) for c in coords] for d in row]
                            for row in first]
    if not vector_valued:
        trees = {k: v[0] for k, v in trees.items()}
    return trees


def _higher(outputs: list[Scalar], coords: list[sympy.Symbol], names: list[str],
            vector_valued: bool, higher: Higher) -> dict[str, Any]:
    """Tensors, directional derivatives and partials past the Hessian, as trees."""
    trees: dict[str, Any] = {}
    partial = _Partials(coords)
    if higher.tensors:
        trees["tensors"] = {}
        for k in higher.tensors:
            tensor = [_tensor(partial, f, k, len(coords)) for f in outputs]
            trees["tensors"][str(k)] = tensor if vector_valued else tensor[0]
    if higher.directional and higher.direction is not None:
        t = sympy.Dummy("t", real=True)
        shift = {c: c + t * _number(d) for c, d in zip(coords, higher.direction, strict=True)}
        along = []
        for f in outputs:
            g, row = f.subs(shift, simultaneous=True), []
            for _ in range(higher.directional):
                g = sympy.diff(g, t)
                row.append(_tidy(g.subs(t, 0)))
            along.append(row)
        trees["directional"] = [list(r) for r in zip(*along, strict=True)] if vector_valued \
            else along[0]
    if higher.partials:
        index = {name: i for i, name in enumerate(names)}
        listed = [[partial(f, tuple(sorted(i for name, p in alpha for i in
                                           [index[name]] * p))) for f in outputs]
                  for alpha in higher.partials]
        trees["partials"] = listed if vector_valued else [row[0] for row in listed]
    return trees


def _number(value: float) -> Any:
    return sympy.Integer(int(value)) if float(value).is_integer() else sympy.Float(value)


class _Partials:
    """∂^alpha f by sorted tuples of coordinate indices, each differentiated once from the
    partial one order lower (the tensors' entries repeat by symmetry)."""

    def __init__(self, coords: list[sympy.Symbol]) -> None:
        self.coords = coords
        self.memo: dict[tuple[Any, tuple[int, ...]], Any] = {}

    def __call__(self, f: Any, indices: tuple[int, ...]) -> Any:
        key = (f, indices)
        if key not in self.memo:
            if not indices:
                self.memo[key] = f
            else:
                lower = self(f, indices[:-1])
                self.memo[key] = _tidy(sympy.diff(lower, self.coords[indices[-1]]))
        return self.memo[key]


def _tensor(partial: _Partials, f: Any, k: int, n: int) -> Any:
    """The tensor of order k of f, nested lists of trees."""
    def build(prefix: tuple[int, ...]) -> Any:
        if len(prefix) == k:
            return partial(f, tuple(sorted(prefix)))
        return [build((*prefix, i)) for i in range(n)]
    return build(())


def _tidy(expr: Any) -> Any:
    """floor' and ceil' are 0 (as in JAX); then the simpler of expr and simplify(expr)."""
    expr = expr.replace(
        lambda e: isinstance(e, sympy.Derivative) and isinstance(e.expr, sympy.floor
                                                                  | sympy.ceiling),
        lambda e: sympy.Integer(0))
    if (sympy.count_ops(expr) > MAX_SIMPLIFY_OPERATIONS or depth(expr) > MAX_SIMPLIFY_DEPTH
            or expr.has(sympy.Piecewise)):  # SymPy rewrites conditions for real numbers,
        return expr                            # not float64: not (a > b) becomes a <= b
    simpler = sympy.simplify(expr)
    try:
        to_text(simpler)
    except Unprintable:
        return expr
    if simpler.has(sympy.I, sympy.zoo) or sympy.count_ops(simpler) > sympy.count_ops(expr):
        return expr
    return simpler


def depth(expr: Any) -> int:
    """The number of levels of ``expr``'s tree (an atom is 1), without recursion."""
    deepest, stack = 0, [(expr, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((a, level + 1) for a in node.args)
    return deepest


def _nested(value: Any, func: Callable[[Any], str]) -> Any:
    if isinstance(value, dict):
        return {k: _nested(v, func) for k, v in value.items()}
    if isinstance(value, list):
        return [_nested(v, func) for v in value]
    return func(value)


def _as_list(value: Expanded, n: int) -> list[Scalar]:
    return list(value) if isinstance(value, list) else [value] * n


class _Expander:
    """Rewrites a tree over vector symbols into scalars over component symbols."""

    def __init__(self, symbols: dict[sympy.Symbol, Expanded]) -> None:
        self.symbols = symbols
        self.memo: dict[Any, Expanded] = {}

    def scalar(self, expr: Any) -> Scalar:
        result = self(expr)
        assert not isinstance(result, list)
        return result

    def __call__(self, expr: Any) -> Expanded:
        if expr not in self.memo:
            self.memo[expr] = self._expand(expr)
        return self.memo[expr]

    def _expand(self, expr: Any) -> Expanded:
        if isinstance(expr, sympy.Symbol):
            return self.symbols.get(expr, expr)
        if isinstance(expr, F.VectorOp):
            return self._vector_op(expr)
        if not expr.args or isinstance(expr, sympy.Number):
            return expr
        if isinstance(expr, sympy.Piecewise):
            pairs = [(self(e), self(c)) for e, c in expr.args]
            return _elementwise(lambda *a: sympy.Piecewise(*zip(a[::2], a[1::2], strict=True),
                                                           evaluate=False),
                                [x for pair in pairs for x in pair])
        if isinstance(expr, Boolean):  # conditions as written: SymPy would rewrite
            kind = type(expr)          # not (a > b) as a <= b, false where a is NaN
            return _elementwise(lambda *a: unevaluated(kind, a), [self(a) for a in expr.args])
        return _elementwise(expr.func, [self(a) for a in expr.args])

    def _vector_op(self, expr: Any) -> Expanded:
        n = expr.length
        parts = [_as_list(self(a), n) for a in operands(expr)]
        return COMPONENTS[type(expr)].rule(parts, integer_args(expr))


def _elementwise(func: Callable[..., Any], args: list[Expanded]) -> Expanded:
    """``func`` of the arguments, per component when any of them is a vector."""
    lengths = {len(a) for a in args if isinstance(a, list)}
    if not lengths:
        return func(*args)
    n = lengths.pop()
    return [func(*(a[i] if isinstance(a, list) else a for a in args)) for i in range(n)]


def tidy(expr: Any) -> Any:
    """``expr`` simplified where that is cheap and shorter (as every formula here is)."""
    return _tidy(expr)
