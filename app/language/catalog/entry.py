"""The shape of a catalog entry: a function, the SymPy nodes it builds, and each node's rules.

A ``Function`` is what a user calls (names, arity, how it is built, what it means). Each
SymPy node type it builds is a ``Node`` with one rule per tier: the JAX implementation
(compiled code), the first-tier jet rule (NumPy, no compile), how it prints back into the
language and into LaTeX. A tier without a rule holds ``Absent(reason)`` instead, so a
missing rule is always a decision with a reason, never an oversight.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import sympy

from app.language.calls import Arity, Build, elementwise

Arr = Any  # a NumPy array
Jet = Any  # a value with its derivatives, as the first tier represents it


class JetAlgebra(Protocol):
    """Jet arithmetic, as the first tier (``app.engine.jets.Rules``) implements it."""

    def chain(self, a: Jet, f0: Arr, f1: Arr,
              f2: Arr | Callable[[], Arr | None] | None) -> Jet: ...

    def combine(self, value: Arr, weighted: list[tuple[Arr, Jet]]) -> Jet: ...

    def binary(self, a: Jet, b: Jet, f: Arr, fa: Arr, fb: Arr,
               second: Callable[[], tuple[Arr, Arr, Arr]]) -> Jet: ...

    def add(self, a: Jet, b: Jet) -> Jet: ...

    def mul(self, a: Jet, b: Jet) -> Jet: ...

    def divide(self, a: Jet, b: Jet) -> Jet: ...

    def select(self, mask: Arr, a: Jet, b: Jet) -> Jet: ...

    def power(self, a: Jet, k: int) -> Jet: ...

    def lift(self, value: Arr) -> Jet: ...

    def vector(self, a: Jet, length: int) -> Jet: ...

    def reduce_sum(self, a: Jet) -> Jet: ...

    def take(self, a: Jet, index: Any) -> Jet: ...


@dataclass(frozen=True)
class Absent:
    """A tier in which an entry deliberately has no rule, and why."""

    reason: str


@dataclass(frozen=True)
class Chain:
    """f(a) from f, f' and (lazily) f'' at the value of a, on NumPy arrays. f' and f'' are
    computed as JAX computes them (f' by the primitive's JVP rule, f'' by the JVP of that
    rule's expression), so that where one tier overflows or meets 0 * inf, so does the
    other; f'' is None where it is exactly 0."""

    rule: Callable[[Arr], tuple[Arr, Arr, Callable[[], Arr | None] | None]]

    def apply(self, algebra: JetAlgebra, args: Sequence[Jet], ints: tuple[int, ...]) -> Jet:
        """The jet of the node from its operands' jets."""
        (a,) = args
        return algebra.chain(a, *self.rule(a.v))


@dataclass(frozen=True)
class Partials:
    """f(a, b) from f, its two partial derivatives and (lazily) the three second ones."""

    rule: Callable[[Arr, Arr], tuple[Arr, Arr, Arr, Callable[[], tuple[Arr, Arr, Arr]]]]

    def apply(self, algebra: JetAlgebra, args: Sequence[Jet], ints: tuple[int, ...]) -> Jet:
        """The jet of the node from its operands' jets."""
        a, b = args
        return algebra.binary(a, b, *self.rule(a.v, b.v))


@dataclass(frozen=True)
class Flat:
    """A step: its value from the operands' values; its derivatives are zero."""

    rule: Callable[..., Arr]

    def apply(self, algebra: JetAlgebra, args: Sequence[Jet], ints: tuple[int, ...]) -> Jet:
        """The jet of the node from its operands' jets."""
        return algebra.lift(self.rule(*(a.v for a in args)))


@dataclass(frozen=True)
class Composite:
    """Written in jet arithmetic: ``rule(algebra, *operands, *integer arguments)``."""

    rule: Callable[..., Jet]

    def apply(self, algebra: JetAlgebra, args: Sequence[Jet], ints: tuple[int, ...]) -> Jet:
        """The jet of the node from its operands' jets."""
        return self.rule(algebra, *args, *ints)


JetRule = Chain | Partials | Flat | Composite


@dataclass(frozen=True)
class Components:
    """How a vector operation is written out: from its operands' components and integers."""

    rule: Callable[[list[list[Any]], tuple[int, ...]], Any]


@dataclass(frozen=True)
class Latex:
    r"""A LaTeX form: SymPy's own (``command`` None) or ``\operatorname{name}``."""

    command: str | None = None


SYMPY_LATEX = Latex()


def operator_name(name: str) -> Latex:
    r"""LaTeX ``\operatorname{name}(...)``, for functions SymPy has no form of."""
    return Latex(rf"\operatorname{{{name}}}")


@dataclass(frozen=True)
class Node:
    """A SymPy node type and its rule in each tier (``Absent`` where it has none)."""

    type: type
    name: str  # its op in the computational graph, and its name when printed
    jax: Callable[..., Any]  # on the evaluated operands, then the integer arguments
    jet: JetRule | Absent
    printer: str | Components | Absent  # printed as name(args), or written out
    latex: Latex | Absent


@dataclass(frozen=True)
class Function:
    """A function of the language, declared once."""

    name: str
    aliases: tuple[str, ...]
    arity: Arity
    build: Build
    nodes: tuple[Node, ...] | Absent  # Absent: it builds only operator nodes (sqrt: Pow)
    description: str
    example: Example
    conventions: str = ""
    numeric_at_constants: bool = False  # exact SymPy evaluation is costly or unlike JAX
    signature: str = field(default="", kw_only=True)  # how it is called: log(x), log(x, b)

    @property
    def names(self) -> tuple[str, ...]:
        """The canonical name and the aliases."""
        return (self.name, *self.aliases)

    @property
    def usage(self) -> str:
        """How it is called (one argument x unless the entry says otherwise)."""
        return self.signature or f"{self.name}(x)"


@dataclass(frozen=True)
class Example:
    """An example call: an expression and a point, posted as they are."""

    expression: str
    at: Mapping[str, float | list[float] | list[list[float]]]


@dataclass(frozen=True)
class Constant:
    """A named constant of the language."""

    name: str
    aliases: tuple[str, ...]
    value: sympy.Basic
    description: str

    @property
    def names(self) -> tuple[str, ...]:
        """The canonical name and the aliases."""
        return (self.name, *self.aliases)


def unary(name: str, func: Any, jax: Callable[..., Any], jet: JetRule | Absent,
          description: str, example: Example, *, aliases: tuple[str, ...] = (),
          conventions: str = "", numeric: bool = False,
          latex: Latex | Absent = SYMPY_LATEX) -> Function:
    """An elementwise function of one argument that builds the one node ``func``."""
    node = Node(func, name, jax, jet, name, latex)
    return Function(name, aliases, (1, 1), elementwise(func), (node,), description, example,
                    conventions, numeric)
