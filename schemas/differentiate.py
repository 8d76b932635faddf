"""Request and response models of ``POST /v1/differentiate``, with their OpenAPI examples."""

from __future__ import annotations

from typing import Annotated, Literal, Self, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, model_validator
from typing_extensions import TypeAliasType

from schemas.learning import LEARNER_EXAMPLES, Cost, Graph, Symbolic
from schemas.orders import (
    ORDER_EXAMPLES,
    CheckRequest,
    CheckResponse,
    Order,
    Powers,
    TaylorRequest,
    TaylorResponse,
)

FiniteNumber = Annotated[float, Field(strict=True, allow_inf_nan=False)]
# A variable is a scalar, a vector or a matrix: its value at a point is a number, a list of
# numbers, or a list of rows (row-major, as NumPy's nested lists).
Tensor: TypeAlias = FiniteNumber | list[FiniteNumber] | list[list[FiniteNumber]]
Point = dict[str, Tensor]
Derivative = Literal["value", "gradient", "hessian", "jvp", "vjp", "symbolic", "explain"]

DIFFERENTIATE_EXAMPLES = {
    "d2l": {
        "summary": "The gradient of 2·xᵀx is 4x (d2l.ai, Automatic Differentiation)",
        "value": {"expression": "2*dot(x, x)", "variables": {"x": [4]},
                  "at": {"x": [0, 1, 2, 3]}},
    },
    "jacobian": {
        "summary": "A vector-valued f: the Jacobian",
        "value": {"expression": ["x*y", "x + y^2"], "at": {"x": 2, "y": 3},
                  "derivatives": ["value", "gradient"]},
    },
    "elementwise": {
        "summary": "sin of a vector is vector-valued: its Jacobian is diagonal",
        "value": {"expression": "sin(x)", "at": {"x": [0, 0.5, 1]},
                  "derivatives": ["value", "gradient"]},
    },
    "batch": {
        "summary": "sin and its derivative over a grid, column-wise (for a plot)",
        "value": {"expression": "sin(x)", "points": {"x": [0, 0.5, 1, 1.5, 2]},
                  "derivatives": ["value", "gradient"]},
    },
    "matrix": {
        "summary": "d/dX log det X = inv(X).T (The Matrix Cookbook), X a 2 x 2 matrix",
        "value": {"expression": "logdet(X)", "variables": {"X": [2, 2]},
                  "at": {"X": [[2, 1], [1, 3]]}, "derivatives": ["value", "gradient"]},
    },
    "conditional": {
        "summary": "Gradients through a conditional: never NaN from the branch not taken",
        "value": {"expression": "where(x > 0, sqrt(x), 0)", "at": {"x": -1}},
    },
    **LEARNER_EXAMPLES,
    **ORDER_EXAMPLES,
}


class GridAxis(BaseModel):
    """``num`` evenly spaced values from ``start`` to ``stop`` (both included)."""

    model_config = ConfigDict(extra="forbid")

    start: FiniteNumber
    stop: FiniteNumber
    num: int = Field(ge=1, strict=True, description="how many values (1 gives start alone); "
                     "an integer, not true or 2.0")


class DifferentiateRequest(BaseModel):
    """What to differentiate, where, and which derivatives to return."""

    model_config = ConfigDict(extra="forbid")

    expression: str | Annotated[list[str], Field(min_length=1)] = Field(
        description="f; a list of expressions makes f vector-valued",
        examples=["2*dot(x, x)", ["x*y", "x + y^2"]],
    )
    variables: dict[str, list[NonNegativeInt]] | None = Field(
        None,
        description="the inputs in order, name -> shape ([] scalar, [n] vector, [m, n] "
        "matrix); default: the expression's free names, sorted, with shapes taken from the "
        "point",
    )
    at: Point | None = Field(None, description="one point: name -> number, list, or list "
                             "of rows for a matrix")
    points: list[Point] | dict[str, list[Tensor]] | None = Field(
        None,
        description="a batch: a list of points, or column-wise name -> list of N values",
    )
    grid: Annotated[dict[str, GridAxis], Field(min_length=1)] | None = Field(
        None,
        description="a grid: name -> {start, stop, num} for every (scalar) variable; the "
        "points are the Cartesian product in variable order, and each output gains one "
        "leading axis per variable (NumPy's indexing='ij')",
    )
    derivatives: list[Derivative] = Field(
        default_factory=lambda: list[Derivative](["value", "gradient", "hessian"]),
        min_length=1,
        description="what to compute; 'gradient' gives the Jacobian for a vector f; 'jvp' "
        "and 'vjp' the products with 'tangent' and 'cotangent'; 'symbolic' the formulas; "
        "'explain' the computational graph and the cost of each computation",
    )
    tangent: list[FiniteNumber] | Point | None = Field(
        None, description="for 'jvp': n numbers, one per coordinate, in coordinate order; "
        "or name -> a value shaped like the variable (a matrix as a list of rows)")
    cotangent: Tensor | None = Field(
        None, description="for 'vjp': m numbers, one per output (default all ones; a number "
        "or a list of one for a scalar f), or nested lists shaped like f's value")
    order: Order | None = Field(
        None, description="the highest derivative order (default 2). From 3, the answer "
        "has 'tensors' of orders 3 .. order; with 'direction', 'directional' instead")
    direction: Point | None = Field(
        None, description="a direction, shaped like the variables: the answer has "
        "'directional', the derivatives of order 1 .. 'order' along it (no tensor built)")
    partials: Annotated[list[Powers], Field(min_length=1)] | None = Field(
        None, description="mixed partials by multi-index, coordinate -> power: "
        "{\"x\": 2, \"y\": 1} is ∂³f/∂x²∂y (no tensor built)")
    taylor: TaylorRequest | None = Field(
        None, description="the Taylor polynomial of this order about the point 'at'")
    check: CheckRequest | None = Field(
        None, description="check the gradient and Hessian against finite differences and "
        "a step-free Taylor test; with 'gradient', a claimed gradient too")

    @model_validator(mode="after")
    def _one_of_at_points(self) -> Self:
        given = [k for k in ("at", "points", "grid") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'at' (one point), 'points' (a batch) or "
                             "'grid' (a Cartesian grid)")
        return self

    @model_validator(mode="after")
    def _products(self) -> Self:
        if "jvp" in self.derivatives and self.tangent is None:
            raise ValueError("'jvp' needs 'tangent': n numbers, one per coordinate")
        if self.tangent is not None and "jvp" not in self.derivatives:
            raise ValueError("'tangent' is used only with 'jvp' in 'derivatives'")
        if self.cotangent is not None and "vjp" not in self.derivatives:
            raise ValueError("'cotangent' is used only with 'vjp' in 'derivatives'")
        if "explain" in self.derivatives and self.at is None:
            raise ValueError("'explain' works at one point: give 'at'")
        return self

    @model_validator(mode="after")
    def _orders(self) -> Self:
        if self.taylor is not None and self.at is None:
            raise ValueError("'taylor' expands about one point: give 'at'")
        if self.check is not None and self.grid is not None:
            raise ValueError("'check' works at 'at' or 'points', not on a 'grid'")
        return self


class NonFinite(BaseModel):
    """Where a result is not a finite number (it is written as null)."""

    model_config = ConfigDict(extra="forbid")

    field: Literal["value", "gradient", "jacobian", "hessian", "jvp", "vjp", "graph.value",
                   "graph.adjoint", "directional", "partials"] | Annotated[
        str, Field(pattern=r"^tensors\.[0-9]+$")]
    index: list[int] = Field(description="the entry's index within the field (for the "
                             "graph: the node id, then the index within its value)")
    kind: Literal["nan", "inf", "-inf"]


Entry: TypeAlias = float | None
# Any depth: a batch adds one axis and a grid one per variable, to an m x n x n Hessian.
Nested = TypeAliasType("Nested", "Entry | list[Nested]")


class DifferentiateResponse(BaseModel):
    """Values and derivatives; with ``points``, each gains a leading axis of length N."""

    coordinates: list[str] = Field(description="the inputs flattened in order (a matrix "
                                   "row-major: X[0,0], X[0,1], ...)")
    shapes: dict[str, list[int]] | None = Field(
        None, description="each variable's shape, in the order of coordinates: reshape its "
        "stretch of a gradient to it (present when a variable is a matrix)")
    value: Nested | None = Field(None, description="f: a number, or m numbers")
    gradient: Nested | None = Field(None, description="scalar f: n numbers")
    jacobian: Nested | None = Field(None, description="vector f: m x n")
    hessian: Nested | None = Field(None, description="n x n, or m x n x n for a vector f")
    jvp: Nested | None = Field(None, description="J·tangent: a number, or m numbers")
    vjp: Nested | None = Field(None, description="cotangentᵀ·J: n numbers")
    tensors: dict[str, Nested] | None = Field(
        None, description="with 'order' k >= 3: order (as text) -> the derivative tensor, "
        "[n]*j for a scalar f, [m] + [n]*j for a vector f")
    directional: Nested | None = Field(
        None, description="with 'direction': [D1, ..., Dk], the derivatives along it")
    partials: Nested | None = Field(None, description="with 'partials': one per multi-index")
    taylor: TaylorResponse | None = Field(None, description="with 'taylor'")
    check: CheckResponse | None = Field(None, description="with 'check'")
    symbolic: Symbolic | None = Field(None, description="the formulas, when asked for")
    graph: Graph | None = Field(None, description="with 'explain': the computational graph")
    cost: Cost | None = Field(None, description="with 'explain': flops of each computation")
    nonfinite: list[NonFinite] | None = Field(
        None, description="present when an entry is NaN or infinite (and written as null)"
    )
    nonfinite_count: int | None = Field(
        None, description="how many entries are non-finite, when more than are listed"
    )

    # Forbidding extra fields makes the documented schema exact: the tests validate every
    # answer against it (tests/conftest.py), so schema and answer cannot drift apart.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "coordinates": ["x[0]", "x[1]", "x[2]", "x[3]"],
                    "value": 28.0,
                    "gradient": [0.0, 4.0, 8.0, 12.0],
                    "hessian": [[4.0, 0.0, 0.0, 0.0], [0.0, 4.0, 0.0, 0.0],
                                [0.0, 0.0, 4.0, 0.0], [0.0, 0.0, 0.0, 4.0]],
                },
                {
                    "coordinates": ["x[0]", "x[1]", "x[2]", "x[3]"],
                    "gradient": [0.0, 4.0, 8.0, 12.0],
                    "symbolic": {
                        "gradient": ["4*x[0]", "4*x[1]", "4*x[2]", "4*x[3]"],
                        "latex": {"gradient": ["4 x_{0}", "4 x_{1}", "4 x_{2}", "4 x_{3}"]},
                        "by_variable": {"x": "4*x"},
                    },
                },
                {
                    "coordinates": ["X[0,0]", "X[0,1]", "X[1,0]", "X[1,1]"],
                    "shapes": {"X": [2, 2]},
                    "value": 1.6094379124341003,
                    "gradient": [0.6000000000000001, -0.2, -0.2, 0.4],
                },
                {
                    "coordinates": ["x[0]", "x[1]", "x[2]", "x[3]"],
                    "value": [0.0, 1.0, 4.0, 9.0],
                    "vjp": [0.0, 2.0, 4.0, 6.0],
                },
            ]
        }
    )
