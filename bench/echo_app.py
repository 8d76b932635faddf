"""The bare FastAPI baseline of the warm row: parse nabla's request body, answer in kind.

One POST endpoint that validates the same JSON body with a pydantic model (finite floats,
as nabla's) and returns an answer of the same shape and size as nabla's value, gradient
and Hessian, computed trivially. It is what FastAPI and uvicorn cost with no work done.
"""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Tensor = Number | list[Number]


class EchoRequest(BaseModel):
    """The fields of nabla's request body."""

    model_config = ConfigDict(extra="forbid")

    expression: str | list[str]
    variables: dict[str, list[int]] | None = None
    at: dict[str, Tensor] | None = None
    points: list[dict[str, Tensor]] | dict[str, list[Tensor]] | None = None
    derivatives: list[str] = Field(default_factory=lambda: ["value", "gradient", "hessian"])


class EchoResponse(BaseModel):
    """An answer shaped like nabla's for a scalar f at one point."""

    coordinates: list[str]
    value: float
    gradient: list[float]
    hessian: list[list[float]]


app = FastAPI(title="echo")


@app.get("/livez")
async def livez() -> dict[str, str]:
    """Liveness, for the benchmark to wait on."""
    return {"status": "ok"}


@app.post("/v1/differentiate")
async def differentiate(body: EchoRequest) -> EchoResponse:
    """Answer with full-precision numbers made cheaply from the point (not derivatives)."""
    point = body.at or {}
    names = sorted(point)
    values = [float(v) if isinstance(v, float) else float(sum(v)) for v in point.values()]
    return EchoResponse(coordinates=names, value=math.sin(sum(values)),
                        gradient=[math.cos(v) for v in values],
                        hessian=[[round(math.sin(a * b), 12) for b in values] for a in values])
