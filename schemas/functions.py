"""Response model of ``GET /v1/functions``: what the expression language offers."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from schemas.differentiate import Tensor


class FunctionExample(BaseModel):
    """A call of the function at a point: post it as it is to ``POST /v1/differentiate``."""

    model_config = ConfigDict(extra="forbid")

    expression: str
    at: dict[str, Tensor]


class FunctionInfo(BaseModel):
    """One function of the language."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="the canonical name, as derivatives are printed")
    aliases: list[str] = Field(description="other spellings that are accepted (SymPy's)")
    arity: tuple[int, int | None] = Field(
        description="the fewest and the most arguments (null: no most)")
    signature: str = Field(description="how it is called, such as 'log(x), log(x, b)'")
    description: str
    conventions: str = Field(description="domain, and derivatives at kinks (as in JAX); "
                             "empty when there is nothing to say")
    example: FunctionExample


class ConstantInfo(BaseModel):
    """One named constant of the language."""

    model_config = ConfigDict(extra="forbid")

    name: str
    aliases: list[str]
    description: str


class FunctionsResponse(BaseModel):
    """The functions and constants that expressions may use."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{
                "functions": [{
                    "name": "log", "aliases": [], "arity": [1, 2],
                    "signature": "log(x), log(x, b)",
                    "description": "The natural logarithm of x; log(x, b) is the logarithm "
                                   "to base b",
                    "conventions": "x > 0; log(0) is -inf and log(x < 0) is NaN, as in JAX "
                                   "(never SymPy's complex value)",
                    "example": {"expression": "log(x, b)", "at": {"x": 5.0, "b": 2.0}},
                }],
                "constants": [{"name": "e", "aliases": ["E"],
                               "description": "Euler's number, the base of the natural "
                                              "logarithm"}],
            }]
        },
    )

    functions: list[FunctionInfo]
    constants: list[ConstantInfo]
