"""POST /v1/implicit: derivatives of a variable defined implicitly by an equation."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from app.api.deps import ServiceDep
from app.service.implicit import implicit as implicit_derivatives
from schemas.orders import IMPLICIT_EXAMPLES, ImplicitRequest, ImplicitResponse
from schemas.problem import PROBLEM_RESPONSES

router = APIRouter(prefix="/v1", tags=["derivatives"])


@router.post("/implicit", response_model=ImplicitResponse, response_model_exclude_none=True,
             responses=PROBLEM_RESPONSES,
             summary="dy/dx, d2y/dx2, ... of y defined by an equation F = G")
async def implicit(
    request: Annotated[ImplicitRequest, Body(openapi_examples=IMPLICIT_EXAMPLES)],
    service: ServiceDep,
) -> Any:
    """Implicit differentiation at a point on the curve (or surface), and symbolically."""
    return await implicit_derivatives(service, request)
