"""Response parts that explain a derivative (``symbolic``, ``graph``, ``cost``), and the
OpenAPI examples of the learner's questions (d2l.ai, "Automatic Differentiation")."""

from __future__ import annotations

from typing import Any, TypeAlias

from pydantic import BaseModel, ConfigDict, Field

Entry: TypeAlias = float | bool | None
Nested: TypeAlias = Entry | list[Any]
Formulas: TypeAlias = str | list[str] | list[list[str]] | list[list[list[str]]]


class BySkipped(BaseModel):
    """Why no formula is given for a variable."""

    model_config = ConfigDict(extra="forbid")

    skipped: str


class Symbolic(BaseModel):
    """Formulas in nabla's expression language: each can be posted back as an expression."""

    model_config = ConfigDict(extra="forbid")

    value: Formulas | None = Field(None, description="f")
    gradient: list[str] | None = Field(None, description="scalar f: d f / d coordinate j")
    jacobian: list[list[str]] | None = Field(None, description="vector f: m x n")
    hessian: list[list[str]] | list[list[list[str]]] | None = Field(
        None, description="n x n, or m x n x n")
    tensors: dict[str, Any] | None = Field(None, description="with 'order' >= 3: order -> "
                                           "the tensor's formulas")
    directional: list[str] | list[list[str]] | None = Field(
        None, description="with 'direction': the derivatives along it")
    partials: list[str] | list[list[str]] | None = Field(
        None, description="with 'partials': one per multi-index")
    latex: dict[str, Formulas | dict[str, Any]] | None = Field(
        None, description="the same keys, in LaTeX")
    by_variable: dict[str, str | BySkipped] | None = Field(
        None, description="scalar f: d f / d each whole variable in matrix notation (an "
        "expression of the variable's shape, such as 4*x or (A + A.T) @ x), returned only "
        "after it agreed with the numeric gradient at random points; else why not")
    skipped: str | None = Field(None, description="why no formulas were written (too big, "
                                "or SymPy ran out of time)")


class GraphNode(BaseModel):
    """One distinct subexpression: its operation, inputs, value and adjoint d f / d node."""

    model_config = ConfigDict(extra="forbid")

    id: int
    op: str = Field(description="'variable', 'constant', 'add', 'mul', 'pow', 'sin', 'dot', "
                    "'piecewise', '>', ...")
    inputs: list[int] = Field(description="ids of the nodes it is computed from")
    value: Nested = Field(description="its value at the point (true/false for a condition)")
    adjoint: Nested = Field(description="d f / d node (null for a condition)")
    name: str | None = Field(None, description="a variable's name")
    params: list[int] | None = Field(
        None, description="integer arguments: an integer exponent, an index, a length")


class Graph(BaseModel):
    """The computational graph from the variables to f, inputs before their uses."""

    model_config = ConfigDict(extra="forbid")

    nodes: list[GraphNode]
    output: int = Field(description="the id of f's node (its adjoint is 1)")


class Cost(BaseModel):
    """Floating point operations of each computation compiled alone (XLA cost analysis)."""

    model_config = ConfigDict(extra="forbid")

    value: float
    gradient: float
    hessian: float
    transcendentals: dict[str, float] | None = None
    bytes_accessed: dict[str, float] | None = None


LEARNER_EXAMPLES: dict[str, dict[str, Any]] = {
    "symbolic": {
        "summary": "How do we get that the gradient of 2·xᵀx is 4x? Ask for the formulas",
        "value": {"expression": "2*dot(x, x)", "variables": {"x": [4]},
                  "at": {"x": [0, 1, 2, 3]}, "derivatives": ["gradient", "symbolic"]},
    },
    "backward": {
        "summary": "y.backward(torch.ones_like(y)) in PyTorch is 'vjp' with the default "
        "cotangent (all ones): the gradient of sum(y)",
        "value": {"expression": "x * x", "at": {"x": [0, 1, 2, 3]},
                  "derivatives": ["value", "vjp"]},
    },
    "jvp": {
        "summary": "Forward mode: the Jacobian times a tangent (a directional derivative)",
        "value": {"expression": ["x*y", "x + y^2"], "at": {"x": 2, "y": 3},
                  "derivatives": ["jvp", "vjp"], "tangent": [1, 0], "cotangent": [1, 1]},
    },
    "grid": {
        "summary": "f and its gradient on a 3 x 2 grid (outputs gain the axes [3, 2])",
        "value": {"expression": "x * y", "derivatives": ["value", "gradient"],
                  "grid": {"x": {"start": 0, "stop": 1, "num": 3},
                           "y": {"start": 0, "stop": 2, "num": 2}}},
    },
    "explain": {
        "summary": "The computational graph with values and adjoints, and what each "
        "derivative costs",
        "value": {"expression": "x * exp(x) + sin(x)", "at": {"x": 1},
                  "derivatives": ["value", "gradient", "explain"]},
    },
    "control_flow": {
        "summary": "d2l's f(a) with its while loop and if: gradient f(a)/a",
        "value": {"expression": "where(a > 0, 2*a*2^max(ceil(log2(500/abs(a))), 0), "
                                "200*a*2^max(ceil(log2(500/abs(a))), 0))",
                  "at": {"a": 0.3}, "derivatives": ["value", "gradient"]},
    },
}
