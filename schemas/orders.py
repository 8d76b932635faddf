"""Derivatives beyond the Hessian (issue 12): the request's ``taylor`` and ``check``, the
response's ``taylor`` and ``check``, ``POST /v1/implicit``, and their OpenAPI examples."""

from __future__ import annotations

from typing import Annotated, Any, TypeAlias

from pydantic import BaseModel, ConfigDict, Field

FiniteNumber = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Tensor: TypeAlias = FiniteNumber | list[FiniteNumber]
Point = dict[str, Tensor]
Order = Annotated[int, Field(strict=True, ge=0, description="a derivative order; the "
                             "service's limit is max_derivative_order")]
#: A multi-index: coordinate name ("x", "v[1]") -> how often to differentiate by it.
Powers = dict[str, Annotated[int, Field(strict=True, ge=0)]]
Entry: TypeAlias = float | None


class TaylorRequest(BaseModel):
    """The Taylor polynomial of order ``order`` of f about the point ``at``."""

    model_config = ConfigDict(extra="forbid")

    order: Order
    remainder_at: Point | None = Field(
        None, description="a second point: the answer then has the remainder there, "
        "f minus the polynomial, and its estimate by the next terms of the series")


class CheckRequest(BaseModel):
    """Check nabla's gradient and Hessian against finite differences; and a claimed
    gradient, if given."""

    model_config = ConfigDict(extra="forbid")

    gradient: Annotated[list[str], Field(min_length=1)] | None = Field(
        None, description="a claimed gradient: one formula per coordinate, in coordinate "
        "order, in the expression language (\"check my answer\")")
    tolerance: Annotated[float, Field(strict=True, gt=0, le=1, allow_inf_nan=False)] = Field(
        1e-6, description="relative agreement asked of each component (of the error "
        "scaled by the larger of 1 and the component's magnitude)")


class Coefficient(BaseModel):
    """One coefficient of a Taylor polynomial: the power of each coordinate's displacement."""

    model_config = ConfigDict(extra="forbid")

    powers: dict[str, int] = Field(description="coordinate -> its power (zero powers left "
                                   "out; {} is the constant term)")
    value: Entry = Field(description="∂^alpha f(a) / alpha!")


class Remainder(BaseModel):
    """How far the polynomial is from f at a second point b."""

    model_config = ConfigDict(extra="forbid")

    at: Point
    value: Entry = Field(description="f(b)")
    polynomial: Entry = Field(description="the polynomial at b")
    remainder: Entry = Field(description="f(b) minus the polynomial at b")
    estimate: Entry = Field(description="the next two terms of the series at b (orders "
                            "k + 1 and k + 2): the remainder's leading part, its estimate "
                            "near a")


class TaylorResponse(BaseModel):
    """The Taylor polynomial of order k about ``center``."""

    model_config = ConfigDict(extra="forbid")

    order: int
    center: dict[str, Any] = Field(description="the point a it is expanded about")
    polynomial: str = Field(description="the polynomial in the expression language (post it "
                            "back as an expression); coefficients with all 17 digits")
    latex: str
    coefficients: list[Coefficient] = Field(description="by multi-index, lowest order first")
    remainder: Remainder | None = None


class Agreement(BaseModel):
    """One derivative against its finite-difference estimate, component by component."""

    model_config = ConfigDict(extra="forbid")

    agrees: bool = Field(description="every component agrees (at every point)")
    computed: Any = Field(description="the derivative checked: nabla's, or the claimed one")
    finite_difference: Any = Field(description="central differences, Richardson-extrapolated")
    error: Any = Field(description="|computed - finite difference| per component")
    estimated_error: Any = Field(description="the finite differences' own error estimate")
    agree: Any = Field(description="per component: within tolerance")


class Rate(BaseModel):
    """The step-free test along one direction: the first-order remainder
    |f(x + h d) - f(x) - h g·d| shrinks as h^2 when g is the gradient, as h otherwise."""

    model_config = ConfigDict(extra="forbid")

    direction: str = Field(description="a coordinate's name, or 'diagonal' (all at once)")
    steps: list[float]
    remainders: list[Entry]
    rate: Entry = Field(description="the observed order: log2 of successive remainders' ratio "
                        "(median); null when the remainder is at rounding level throughout")
    agrees: bool = Field(description="the rate is about 2, or the remainder is at rounding "
                         "level (f is linear along d)")


class ClaimedCheck(BaseModel):
    """A claimed gradient against nabla's."""

    model_config = ConfigDict(extra="forbid")

    agrees: bool
    formulas: list[str]
    gradient: Agreement
    points: list[bool] = Field(description="per point: whether the claim matches there")
    taylor: list[Rate] | list[list[Rate]]


class CheckResponse(BaseModel):
    """nabla's gradient and Hessian checked against finite differences."""

    model_config = ConfigDict(extra="forbid")

    agrees: bool = Field(description="gradient, Hessian and every rate agree")
    tolerance: float
    gradient: Agreement
    hessian: Agreement
    taylor: list[Rate] | list[list[Rate]] = Field(description="per direction (per point "
                                                  "with several points)")
    claimed: ClaimedCheck | None = None


class ImplicitRequest(BaseModel):
    """An equation F = G and the variable it defines implicitly."""

    model_config = ConfigDict(extra="forbid")

    equation: str = Field(description="two expressions separated by one '='",
                          examples=["x^2 + y^2 = 1"])
    dependent: str = Field(description="the variable the equation defines, such as y")
    at: dict[str, FiniteNumber] = Field(description="a point on the curve: every variable, "
                                        "the dependent one included")
    order: Annotated[int, Field(strict=True, ge=1)] = Field(
        2, description="derivatives 1 .. order (one independent variable); with several, "
        "order 1 gives the gradient and 2 the Hessian too")
    tolerance: Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)] = Field(
        1e-9, description="how close F - G must be to 0 at the point, relative to the "
        "larger of 1 and |F| + |G|")
    symbolic: Annotated[bool, Field(strict=True)] = Field(
        True, description="also the formulas (bounded: 'skipped' when too big)")


class ImplicitResponse(BaseModel):
    """dy/dx, d2y/dx2, ... at the point, and as formulas."""

    model_config = ConfigDict(extra="forbid")

    dependent: str
    coordinates: list[str] = Field(description="the independent variables")
    residual: float = Field(description="F - G at the point")
    derivatives: list[Entry] | None = Field(None, description="one independent variable: "
                                            "dy/dx, d2y/dx2, ... up to order")
    gradient: list[Entry] | None = Field(None, description="several: ∂y/∂x_i")
    hessian: list[list[Entry]] | None = Field(None, description="several: ∂²y/∂x_i∂x_j")
    symbolic: Any | None = Field(None, description="the same as formulas (with 'latex'), "
                                 "or {'skipped': why}")


ORDER_EXAMPLES: dict[str, dict[str, Any]] = {
    "third_order": {
        "summary": "The third and fourth derivative tensors ('tensors')",
        "value": {"expression": "x^3*y^2", "at": {"x": 2, "y": 3}, "order": 4,
                  "derivatives": ["value"]},
    },
    "directional": {
        "summary": "Derivatives of order 1 to 5 along a direction, no tensor built",
        "value": {"expression": "exp(x)*sin(y)", "at": {"x": 0, "y": 1}, "order": 5,
                  "direction": {"x": 1, "y": 1}, "derivatives": ["value"]},
    },
    "partials": {
        "summary": "Mixed partials by multi-index: ∂³f/∂x²∂y",
        "value": {"expression": "x^3*y^2 + sin(x*y)", "at": {"x": 1, "y": 2},
                  "partials": [{"x": 2, "y": 1}, {"y": 2}], "derivatives": ["value"]},
    },
    "taylor": {
        "summary": "The Taylor polynomial of order 5 of sin about 0, with its remainder at 1",
        "value": {"expression": "sin(x)", "at": {"x": 0},
                  "taylor": {"order": 5, "remainder_at": {"x": 1}}, "derivatives": ["value"]},
    },
    "check": {
        "summary": "Check my answer: is the gradient of x^2*y equal to [2*x*y, x]?",
        "value": {"expression": "x^2*y", "at": {"x": 1.5, "y": -2},
                  "check": {"gradient": ["2*x*y", "x"]}, "derivatives": ["value"]},
    },
}

IMPLICIT_EXAMPLES: dict[str, dict[str, Any]] = {
    "circle": {
        "summary": "dy/dx and d2y/dx2 on the unit circle",
        "value": {"equation": "x^2 + y^2 = 1", "dependent": "y", "at": {"x": 0.6, "y": 0.8},
                  "order": 2},
    },
    "surface": {
        "summary": "A surface z(x, y): gradient and Hessian",
        "value": {"equation": "x^2 + y^2 + z^2 = 3", "dependent": "z",
                  "at": {"x": 1, "y": 1, "z": 1}},
    },
}
